"""Cold starts: what a person waits for the first time, not in a warm loop.

    /work/main/.venv/bin/python bench/bench_cold_start.py            # both parts, 5 repeats
    /work/main/.venv/bin/python bench/bench_cold_start.py --repeats 3 --skip-server

1. **A store-only command.** ``mlflow-hitl roles list --store-uri sqlite:///<tmp>/hitl.db`` as a new
   process, ``--repeats`` times (the first run also creates the store's schema and is reported apart).
   Then the heavy libraries that process imported, if any (``-X importtime`` of one more run): the aim
   is none of scikit-learn, fairlearn, scipy, matplotlib or evidently.
2. **The first gated request to a freshly started server.** A SQLite MLflow store with one registered
   model version and its HITL evidence (the tests' set-up: ``tests/hitl_support.py``), the tests' lenient
   policy; then, ``--repeats`` times: start ``mlflow server --app-name hitl`` (basic auth, one worker),
   wait for ``/health``, and time the first ``POST /api/2.0/mlflow/registered-models/alias`` for the
   protected alias ``champion`` by the admin (refused with 403: the fairness sign-off is missing), then a
   second identical request (warm), then stop the server. Aim: the first < 2 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from hitl_support import (  # noqa: E402
    LENIENT_POLICY,
    basic_auth_env,
    log_run_with_evidence,
    make_arrests_model,
    mlflow_hitl_server,
    split_arrests,
)

HEAVY = ("sklearn", "fairlearn", "scipy", "matplotlib", "evidently")
ADMIN, PASSWORD = "admin", "Adm1n-pass-word!"
CLI = str(Path(sys.executable).with_name("mlflow-hitl"))


def store_only_command(tmp: Path, repeats: int) -> None:
    store = f"sqlite:///{tmp / 'roles-hitl.db'}"
    command = [CLI, "roles", "list", "--store-uri", store]

    def run(argv: list[str]) -> tuple[float, subprocess.CompletedProcess]:
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return time.perf_counter() - started, done

    first, _ = run(command)
    times = [run(command)[0] for _ in range(repeats)]
    print(f"  first run (creates the schema): {first:.2f} s")
    print(
        f"  median of {repeats}: {statistics.median(times):.2f} s   (min {min(times):.2f}, max {max(times):.2f})"
    )
    traced = [
        sys.executable,
        "-X",
        "importtime",
        "-c",
        "from mlflow_hitl.cli import cli; cli()",
        *command[1:],
    ]
    _, done = run(traced)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}
    heavy = sorted(imported & set(HEAVY))
    print(f"  heavy libraries imported: {', '.join(heavy) or 'none'}")


def first_gated_request(tmp: Path, repeats: int) -> None:
    import mlflow
    import requests
    from sklego.datasets import load_arrests

    from mlflow_hitl.adapter.gate import set_policy
    from mlflow_hitl.review import ReviewStore

    backend = f"sqlite:///{tmp / 'mlflow.db'}"
    store_uri = f"sqlite:///{tmp / 'hitl.db'}"
    mlflow.set_tracking_uri(backend)
    mlflow.set_registry_uri(backend)
    mlflow.set_experiment("cold-start")
    synthetic, real, _ = split_arrests(load_arrests(as_frame=True))
    run_id = log_run_with_evidence(make_arrests_model(synthetic), synthetic, real)
    mlflow.register_model(f"runs:/{run_id}/model", "cold")
    store = ReviewStore(store_uri)
    store.grant_role("root", "admin", actor="root")
    set_policy(store, "cold", LENIENT_POLICY, actor="root")
    store.close()

    env = {**os.environ, **basic_auth_env(tmp, store_uri, admin=ADMIN, password=PASSWORD)}
    env.pop("MLFLOW_TRACKING_URI", None)
    body = {"name": "cold", "alias": "champion", "version": "1"}
    firsts, warms, ups = [], [], []
    for attempt in range(repeats):
        started = time.perf_counter()
        with mlflow_hitl_server(
            backend, artifacts=tmp / "artifacts", env=env, log_path=tmp / f"server-{attempt}.log"
        ) as url:
            ups.append(time.perf_counter() - started)
            route = f"{url}/api/2.0/mlflow/registered-models/alias"
            for bucket in (firsts, warms):
                sent = time.perf_counter()
                answer = requests.post(route, json=body, auth=(ADMIN, PASSWORD), timeout=120)
                bucket.append(time.perf_counter() - sent)
                assert answer.status_code == 403, answer.text[:300]
    print(f"  server up (until /health answers): median {statistics.median(ups):.1f} s")
    print(
        f"  first gated request: median {statistics.median(firsts):.2f} s (min {min(firsts):.2f}, max {max(firsts):.2f})"
    )
    print(f"  second gated request: median {statistics.median(warms) * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-server", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        print("1. mlflow-hitl roles list (a store-only command), new process each time")
        store_only_command(tmp, args.repeats)
        if not args.skip_server:
            print("\n2. the first gated request to a freshly started mlflow server --app-name hitl")
            first_gated_request(tmp, args.repeats)


if __name__ == "__main__":
    main()
