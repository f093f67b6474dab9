"""Time a registry gate check for one model version while the registry holds many versions.

    /work/main/.venv/bin/python bench/bench_gate.py                     # 1 model x 1,000 versions, N=200
    /work/main/.venv/bin/python bench/bench_gate.py --models 100        # 100 models x 10 versions
    /work/main/.venv/bin/python bench/bench_gate.py --audit-events 100000 --skip-server  # a long audit chain

Everything lives in a temporary directory that is removed at the end: a SQLite MLflow store
(``sqlite:///<tmp>/mlflow.db``, artifacts under ``<tmp>/artifacts``) and the review store beside it
(``sqlite:///<tmp>/hitl.db``).

Setup (timed, not benchmarked): one run trains the scikit-learn pipeline of the tests on
``sklego.datasets.load_arrests`` (seeded split), logs it and real HITL evidence
(``mlflow_hitl.validate(..., checks=["calibration", "fairness"])``); the run's author is set to
``alice`` (the ``mlflow.user`` tag). The run's model is registered once with ``mlflow.register_model``
and then ``MlflowClient.create_model_version(name, source, run_id, model_id=...)`` is called in a loop
(no waiting for READY: the SQL registry creates versions READY) until ``--versions`` versions exist,
spread evenly over ``--models`` registered models. The review store gets ``root`` (admin), ``dana``
(fairness-reviewer), dana's fairness sign-off of the run, and the tests' lenient policy on every
model (champion alias and Production stage protected, calibration ECE <= 0.5, one fairness sign-off,
separation of duties). ``--audit-events`` pads the audit chain with that many extra events.

1. **Local.** ``check_gate(name, <middle version>, "alias:champion", store=store, actor=...,
   record=False)`` ``-n`` times each for a passing actor (``rita``) and a blocked one (``alice``, the
   run's author: only ``duties.promoter`` is unmet), then with ``record=True`` (an audit event and a
   model-version tag per check, so the chain grows by ``-n``). p50 / p95 / mean in ms. Then each step
   of ``collect_evidence`` alone (median of ``-n``), and a cProfile of ``--profile`` checks.
2. **Server.** ``mlflow server --app-name hitl`` on 127.0.0.1 and a free port, same backend, basic auth
   (``default_permission = MANAGE``), one worker. Users ``rita`` and ``alice`` are created through
   MLflow's user API. ``-n`` timed ``POST /api/2.0/mlflow/registered-models/alias`` each (one
   keep-alive ``requests.Session`` per case, after ``--warmup`` untimed requests): the protected
   alias ``champion`` as ``alice`` (403, blocked by the gate), as ``rita`` (200, passes and sets the
   alias), and an unprotected alias ``candidate`` as ``rita`` (200: the server's own floor, which
   still runs the guard's prompt lookup and policy read), plus ``GET /health`` (no auth) for the
   transport alone. The server is terminated and waited for.
3. **The server's app in-process.** ``--in-process`` passing alias POSTs through
   ``mlflow_hitl.adapter.app.create_app()`` with Flask's test client: the guard and its parts
   (``is_exempt``, ``enforce``, ``collect_evidence``, ``_record``) are wrapped in timers, the rest is
   MLflow (basic-auth, the alias handler); Python's full garbage collections are counted. Then
   ``--profile-server`` more under cProfile.

``--auth-cache-ttl`` sets MLflow basic-auth's ``auth_cache_ttl_seconds`` (default 0, MLflow's default:
every authentication runs werkzeug's scrypt password check).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from unittest import mock

import numpy as np

# The set-up of the gate tests (data, model, evidence, policy, server), so the bench times what they test.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from hitl_support import (  # noqa: E402
    LENIENT_POLICY,
    basic_auth_env,
    create_users,
    log_run_with_evidence,
    make_arrests_model,
    mlflow_hitl_server,
    server_home,
    split_arrests,
)

AUTHOR, PROMOTER = "alice", "rita"
ADMIN, ADMIN_PASSWORD = "admin", "Adm1n-pass-word!"
PASSWORDS = {AUTHOR: "Alice-pass-word-1", PROMOTER: "Rita-pass-word-1"}
TARGET_ALIAS, FREE_ALIAS = "champion", "candidate"


def stats_line(label: str, seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    out = {
        "p50": float(np.percentile(ms, 50)),
        "p95": float(np.percentile(ms, 95)),
        "mean": float(ms.mean()),
        "min": float(ms.min()),
        "max": float(ms.max()),
    }
    print(
        f"  {label:<46} p50 {out['p50']:7.1f}  p95 {out['p95']:7.1f}  mean {out['mean']:7.1f}"
        f"  min {out['min']:6.1f}  max {out['max']:7.1f} ms  (n={len(ms)})"
    )
    return out


def repeat(fn, n: int, warmup: int = 0) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def model_names(models: int) -> list[str]:
    return ["gate-bench"] if models == 1 else [f"gate-bench-{i:03d}" for i in range(models)]


# -- setup ----------------------------------------------------------------------------------------


def train_and_log(tmp: Path) -> str:
    """One run with the model and real HITL evidence (calibration, fairness), as the tests make it."""
    import mlflow
    from sklego.datasets import load_arrests

    synthetic, real, _ = split_arrests(load_arrests(as_frame=True))
    experiment_id = mlflow.create_experiment("gate-bench", artifact_location=(tmp / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment_id)
    # The gate reads the author from the records: locally, who registered the evidence.
    with mock.patch.dict(os.environ, {"MLFLOW_HITL_USER": AUTHOR}):
        run_id = log_run_with_evidence(
            make_arrests_model(synthetic), synthetic, real, tags={"mlflow.user": AUTHOR}
        )
    status = mlflow.MlflowClient().get_run(run_id).data.tags["hitl.status"]
    print(f"  run {run_id}: hitl status {status}")
    return run_id


def register_versions(run_id: str, names: list[str], total: int) -> float:
    """``total`` versions of the run's model spread over ``names``; returns the seconds the loop took."""
    import mlflow

    client = mlflow.MlflowClient()
    first = mlflow.register_model(f"runs:/{run_id}/model", names[0])
    per_model = total // len(names)
    start = time.perf_counter()
    for index, name in enumerate(names):
        if index:
            client.create_registered_model(name)
        for _ in range(per_model - (1 if index == 0 else 0)):
            client.create_model_version(
                name, first.source, run_id, model_id=first.model_id, await_creation_for=0
            )
    return time.perf_counter() - start


def record_creators(store, run_id: str, names: list[str], per_model: int) -> None:
    """What the server records when alice creates the run and the versions through it: the loop above
    wrote them straight to the database, and without a record separation of duties has no author."""
    from mlflow_hitl.adapter.identity import record_run_created, record_version_created

    record_run_created(store, run_id=run_id, user=AUTHOR)
    for name in names:
        for version in range(1, per_model + 1):
            record_version_created(
                store, name=name, version=str(version), user=AUTHOR, run_id=run_id, source=None
            )


def pad_audit_chain(store, events: int) -> None:
    """Append ``events`` annotation-shaped audit events in one transaction (as bench_review does)."""
    with store._write() as tx:
        for seq in range(events):
            tx.event(
                actor=f"rater{seq % 50}@example.org",
                action="annotation.create",
                subject=f"queue:padding/item:{seq // 3}",
                payload={"label": "yes", "source": "bench"},
            )


# -- 1. local -------------------------------------------------------------------------------------


def print_profile(profiler: cProfile.Profile, count: int, what: str, top: int = 25) -> None:
    """The ``top`` entries by cumulative and by own time, then every mlflow_hitl function (cumulative)."""
    for key, restrictions in (
        ("cumulative", (top,)),
        ("tottime", (top,)),
        ("cumulative", ("mlflow_hitl", 30)),
    ):
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).sort_stats(key).print_stats(*restrictions)
        lines = buffer.getvalue().splitlines()
        header = next(i for i, line in enumerate(lines) if "ncalls" in line)
        only = " (mlflow_hitl only)" if restrictions[0] == "mlflow_hitl" else ""
        print(f"  cProfile of {count} {what}, by {key}{only}; divide the times by {count} for one:")
        print("\n".join("    " + line for line in lines[header:] if line.strip()))


def bench_local(store, name: str, version: str, run_id: str, n: int, warmup: int, profile: int) -> dict:
    import mlflow

    from mlflow_hitl.adapter import gate
    from mlflow_hitl.adapter.evidence import (
        RunArtifacts,
        chained_signoffs,
        run_events,
        verified_metrics,
        verify_folder,
    )
    from mlflow_hitl.adapter.registration import version_model_digest
    from mlflow_hitl.gate import decide

    target = f"alias:{TARGET_ALIAS}"
    results: dict = {}

    passing = gate.check_gate(name, version, target, store=store, actor=PROMOTER, record=False)
    blocked = gate.check_gate(name, version, target, store=store, actor=AUTHOR, record=False)
    assert passing.passed, passing.summary()
    assert not blocked.passed and [r.name for r in blocked.unmet()] == ["duties.promoter"], blocked.summary()
    print(f"  audit chain: {store.audit_head()[0]:,} events")

    def check(actor: str, record: bool):
        return lambda: gate.check_gate(name, version, target, store=store, actor=actor, record=record)

    results["passing"] = stats_line(
        "check_gate, passing (rita), record=False", repeat(check(PROMOTER, False), n, warmup)
    )
    results["blocked"] = stats_line(
        "check_gate, blocked (alice), record=False", repeat(check(AUTHOR, False), n, warmup)
    )

    # Each step of collect_evidence (and the registered-model read the server's guard adds) alone.
    client = mlflow.MlflowClient()
    run = client.get_run(run_id)
    policy, _ = gate.policy_for(store, name)
    evidence = gate.collect_evidence(name, version, target, store=store, actor=PROMOTER)

    def artifacts_step():
        artifacts = RunArtifacts(run)
        root = artifacts.folder()
        summary_bytes = (root / "summary.json").read_bytes()
        summary = json.loads(summary_bytes)
        verified_metrics(root, summary, verify_folder(root, summary_bytes, []))
        artifacts.close()

    steps = {
        "policy_for (review store read + TOML parse)": lambda: gate.policy_for(store, name),
        "MlflowClient() + get_model_version": lambda: mlflow.MlflowClient().get_model_version(name, version),
        "get_run": lambda: client.get_run(run_id),
        "store.snapshots()": store.snapshots,
        "artifacts: summary + re-hash manifest + metrics": artifacts_step,
        "store.verify_audit(): the whole chain (audit verify)": store.verify_audit,
        "store.verify_audit(incremental=True): what the gate walks": lambda: store.verify_audit(
            incremental=True
        ),
        "chained_signoffs": lambda: chained_signoffs(store, run_id),
        "store.audit_events(run:<id>): registrations, sign-offs, author": lambda: run_events(store, run_id),
        "version_model_digest: the version's model files": lambda: version_model_digest(
            client, client.get_model_version(name, version)
        ),
        "decide": lambda: decide(policy, evidence),
        "[server guard] get_registered_model (_is_prompt)": lambda: client.get_registered_model(name),
    }
    print("  steps alone (median ms):")
    medians = {}
    for label, fn in steps.items():
        medians[label] = float(np.median(repeat(fn, n, 2)) * 1000)
        print(f"    {label:<50} {medians[label]:7.2f}")
    print(f"    {'sum of the collect_evidence + decide steps':<50} {sum(list(medians.values())[:-1]):7.2f}")

    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(profile):
            gate.check_gate(name, version, target, store=store, actor=PROMOTER, record=False)
        profiler.disable()
        print_profile(profiler, profile, "passing checks (record=False)")

    before = store.audit_head()[0]
    results["recorded"] = stats_line(
        "check_gate, passing (rita), record=True", repeat(check(PROMOTER, True), n)
    )
    print(
        f"  audit chain after record=True: {store.audit_head()[0]:,} events (+{store.audit_head()[0] - before})"
    )
    tag = mlflow.MlflowClient().get_model_version(name, version).tags.get("hitl.gate.alias.champion")
    assert tag and json.loads(tag)["passed"] is True, tag
    # What record=True adds (each call appends an audit event or rewrites a tag).
    writes = {
        "[record] store.record_event": lambda: store.record_event(
            actor=PROMOTER, action="gate.check", subject=f"model:{name}/{version}", payload={"bench": True}
        ),
        # A new value each time, as the gate's tag (its audit_seq changes): an unchanged value writes nothing.
        "[record] set_model_version_tag": lambda: client.set_model_version_tag(
            name, version, "bench", str(time.perf_counter_ns())
        ),
    }
    print("  what record=True adds, alone (median ms):")
    for label, fn in writes.items():
        medians[label] = float(np.median(repeat(fn, n, 2)) * 1000)
        print(f"    {label:<50} {medians[label]:7.2f}")
    print(f"  audit chain: {store.audit_head()[0]:,} events")
    results["steps"] = medians
    return results


# -- 2. server ------------------------------------------------------------------------------------


def server_env(folder: Path, store_uri: str, auth_cache_ttl: int) -> dict[str, str]:
    """The environment of tests/test_server.py, with basic-auth's credential cache set to ``auth_cache_ttl``."""
    folder.mkdir(parents=True, exist_ok=True)
    return basic_auth_env(
        folder,
        store_uri,
        admin=ADMIN,
        password=ADMIN_PASSWORD,
        auth_cache_ttl=auth_cache_ttl,
        secret="bench-secret",
    )


@contextlib.contextmanager
def running_server(tmp: Path, backend: str, store_uri: str, auth_cache_ttl: int):
    env = {**os.environ, **server_env(tmp, store_uri, auth_cache_ttl)}
    env.pop("MLFLOW_TRACKING_URI", None)
    started = time.perf_counter()
    with mlflow_hitl_server(
        backend, artifacts=tmp / "server-artifacts", env=env, log_path=tmp / "server.log"
    ) as url:
        print(f"  server on {url}, up after {time.perf_counter() - started:.1f} s")
        yield url
    print("  server stopped")


def bench_server(
    tmp: Path, backend: str, store, name: str, version: str, n: int, warmup: int, auth_cache_ttl: int
) -> dict:
    import requests

    results: dict = {}
    route = "api/2.0/mlflow/registered-models/alias"
    with running_server(tmp, backend, store.url, auth_cache_ttl) as url:
        create_users(url, PASSWORDS, admin=(ADMIN, ADMIN_PASSWORD))
        with requests.Session() as session:
            results["health"] = stats_line(
                "GET /health (no auth, no handler): transport",
                repeat(lambda: session.get(f"{url}/health"), n, warmup),
            )
        cases = [
            ("protected alias, blocked (alice, 403)", AUTHOR, TARGET_ALIAS, 403),
            ("protected alias, passing (rita, 200)", PROMOTER, TARGET_ALIAS, 200),
            ("unprotected alias (rita, 200): floor", PROMOTER, FREE_ALIAS, 200),
        ]
        for label, user, alias, expected in cases:
            body = {"name": name, "alias": alias, "version": version}
            with requests.Session() as session:
                session.auth = (user, PASSWORDS[user])

                def post(session=session, body=body, label=label, expected=expected):
                    response = session.post(f"{url}/{route}", json=body, timeout=60)
                    assert response.status_code == expected, (
                        label,
                        response.status_code,
                        response.text[:500],
                    )
                    if expected == 403:
                        assert "duties.promoter" in response.json()["message"], response.text[:500]

                before = store.audit_head()[0]
                results[label] = stats_line(label, repeat(post, n, warmup))
                print(f"    audit chain {before:,} -> {store.audit_head()[0]:,} events")
    return results


def server_app_in_process(
    tmp: Path, backend: str, store, name: str, version: str, count: int, profile: int, ttl: int
) -> None:
    """Passing alias POSTs through the server's own app in this process (Flask test client).

    The app is what ``mlflow server --app-name hitl`` serves (``mlflow_hitl.adapter.app.create_app``),
    with its own auth database; only the HTTP server in front of it is missing. ``count`` requests
    are timed with the guard's parts wrapped in timers (no profiler) and Python's full (generation 2)
    garbage collections counted; then ``profile`` more run under cProfile.
    """
    import base64
    import functools
    import gc

    from mlflow.server.constants import ARTIFACTS_DESTINATION_ENV_VAR, BACKEND_STORE_URI_ENV_VAR

    from mlflow_hitl.adapter import app as app_module
    from mlflow_hitl.adapter import gate, guard

    os.environ.update(server_env(tmp / "inprocess", store.url, ttl))
    # The key and anchors of the server of part 2, which signed the chain's newest events.
    os.environ["MLFLOW_HITL_SERVER_HOME"] = str(server_home(tmp))
    os.environ[BACKEND_STORE_URI_ENV_VAR] = backend
    os.environ[ARTIFACTS_DESTINATION_ENV_VAR] = str(tmp / "server-artifacts")

    timings: dict[str, list[float]] = {}

    def timed(label: str, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                timings.setdefault(label, []).append(time.perf_counter() - start)

        return wrapper

    # Module attributes looked up at call time: create_app registers the wrapped guard, the guard
    # imports enforce from the gate module on each request, enforce calls the module's helpers.
    originals = {
        (app_module, "_guard"): "guard (mlflow_hitl.adapter.app._guard)",
        (guard, "is_exempt"): "  is_exempt (policy, version, creation record)",
        (gate, "enforce"): "  enforce",
        (gate, "collect_evidence"): "    collect_evidence",
        (gate, "_record"): "    _record (audit event + version tag)",
    }
    saved = {key: getattr(*key) for key in originals}
    try:
        for (module, attribute), label in originals.items():
            setattr(module, attribute, timed(label, getattr(module, attribute)))
        client = app_module.create_app().test_client()

        def basic(user: str, password: str) -> dict[str, str]:
            return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

        created = client.post(
            "/api/2.0/mlflow/users/create",
            json={"username": PROMOTER, "password": PASSWORDS[PROMOTER]},
            headers=basic(ADMIN, ADMIN_PASSWORD),
        )
        assert created.status_code == 200, created.get_data(as_text=True)
        headers = basic(PROMOTER, PASSWORDS[PROMOTER])
        body = {"name": name, "alias": TARGET_ALIAS, "version": version}

        def post():
            response = client.post("/api/2.0/mlflow/registered-models/alias", json=body, headers=headers)
            assert response.status_code == 200, response.get_data(as_text=True)[:500]

        for _ in range(2):
            post()
        timings.clear()
        pauses: list[float] = []
        started: list[float] = []

        def on_gc(phase: str, info: dict) -> None:
            if info["generation"] == 2:
                if phase == "start":
                    started.append(time.perf_counter())
                else:
                    pauses.append(time.perf_counter() - started.pop())

        gc.callbacks.append(on_gc)
        try:
            totals = repeat(post, count)
        finally:
            gc.callbacks.remove(on_gc)
        stats_line("in-process app, passing alias POST", totals)
        for label in originals.values():
            stats_line(label, timings[label])
        stats_line(
            "outside the guard (MLflow: auth, handler)",
            list(np.subtract(totals, timings[originals[(app_module, "_guard")]])),
        )
        print(
            f"  full garbage collections during the {count} requests: {len(pauses)}"
            + (f", median pause {np.median(pauses) * 1000:.0f} ms" if pauses else "")
            + f" ({len(gc.get_objects()):,} objects tracked)"
        )
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(profile):
                post()
            profiler.disable()
            print_profile(profiler, profile, "passing alias POSTs through the app in-process", top=40)
    finally:
        for (module, attribute), original in saved.items():
            setattr(module, attribute, original)


# -- main -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--versions", type=int, default=1000, help="registered versions in all (default 1000)"
    )
    parser.add_argument(
        "--models", type=int, default=1, help="registered models to spread them over (default 1)"
    )
    parser.add_argument("-n", "--repeats", type=int, default=200, help="timed checks / requests per case")
    parser.add_argument("--warmup", type=int, default=5, help="untimed checks / requests before each case")
    parser.add_argument(
        "--audit-events", type=int, default=0, help="extra audit events to pad the chain with"
    )
    parser.add_argument("--profile", type=int, default=20, help="passing checks to cProfile (0: none)")
    parser.add_argument("--skip-server", action="store_true", help="local checks only")
    parser.add_argument(
        "--auth-cache-ttl",
        type=int,
        default=0,
        help="MLflow basic-auth auth_cache_ttl_seconds in the server's auth.ini (default 0: MLflow's default, no cache)",
    )
    parser.add_argument(
        "--in-process",
        type=int,
        default=50,
        help="passing alias POSTs through the server's app in this process, after the server run (0: none)",
    )
    parser.add_argument(
        "--profile-server",
        type=int,
        default=5,
        help="further passing alias POSTs to cProfile in-process (0: none)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if args.versions % args.models:
        parser.error("--versions must be a multiple of --models")

    warnings.filterwarnings("ignore")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    tmp = Path(tempfile.mkdtemp(prefix="hitl-gate-bench-"))
    backend, store_uri = f"sqlite:///{tmp / 'mlflow.db'}", f"sqlite:///{tmp / 'hitl.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = backend
    os.environ["MLFLOW_HITL_STORE_URI"] = store_uri
    store = None
    try:
        import mlflow

        from mlflow_hitl.adapter.gate import set_policy
        from mlflow_hitl.review import ReviewStore

        mlflow.set_tracking_uri(backend)
        mlflow.set_registry_uri(backend)
        names = model_names(args.models)
        per_model = args.versions // args.models
        print(f"setup in {tmp}: {args.models} model(s) x {per_model} versions = {args.versions:,} versions")
        print(
            f"  {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, Python {sys.version.split()[0]},"
            f" MLflow {mlflow.__version__}"
        )
        start = time.perf_counter()
        run_id = train_and_log(tmp)
        print(f"  train + log + validate: {time.perf_counter() - start:.1f} s")
        seconds = register_versions(run_id, names, args.versions)
        print(
            f"  create_model_version loop: {args.versions - 1:,} versions in {seconds:.1f} s "
            f"({seconds / max(args.versions - 1, 1) * 1000:.1f} ms each)"
        )

        store = ReviewStore(store_uri)
        store.grant_role("root", "admin", actor="root")
        store.grant_role("dana", "fairness-reviewer", actor="root")
        store.sign_off(run_id=run_id, check="fairness", user="dana", approve=True)
        for name in names:
            set_policy(store, name, LENIENT_POLICY, actor="root")
        record_creators(store, run_id, names, per_model)
        if args.audit_events:
            start = time.perf_counter()
            pad_audit_chain(store, args.audit_events)
            print(
                f"  padded the audit chain with {args.audit_events:,} events in {time.perf_counter() - start:.1f} s"
            )

        name, version = names[len(names) // 2], str(per_model // 2)
        print(f"\n1. local: check_gate({name!r}, {version!r}, 'alias:{TARGET_ALIAS}'), n={args.repeats}")
        bench_local(store, name, version, run_id, args.repeats, args.warmup, args.profile)
        if not args.skip_server:
            print(
                f"\n2. server: POST /{'api/2.0/mlflow/registered-models/alias'} for {name!r} v{version}, n={args.repeats}"
            )
            print(f"   (auth_cache_ttl_seconds = {args.auth_cache_ttl})")
            bench_server(tmp, backend, store, name, version, args.repeats, args.warmup, args.auth_cache_ttl)
            if args.in_process:
                print(f"\n3. the server's app in-process (auth_cache_ttl_seconds = {args.auth_cache_ttl})")
                server_app_in_process(
                    tmp,
                    backend,
                    store,
                    name,
                    version,
                    args.in_process,
                    args.profile_server,
                    args.auth_cache_ttl,
                )
        print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    finally:
        if store is not None:
            store.close()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
