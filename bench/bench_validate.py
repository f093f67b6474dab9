"""Time the whole ``mlflow_hitl.validate(...)`` at scale against the model's own ``predict_proba``.

    /work/main/.venv/bin/python bench/bench_validate.py                 # 1,000,000 real rows
    /work/main/.venv/bin/python bench/bench_validate.py --rows 100000   # quick run
    /work/main/.venv/bin/python bench/bench_validate.py --model hgb     # a slower model

The question (the issue's requirement): does the full ``validate()`` on 1,000,000 real rows cost little
beyond the model's own predictions?

Data, all seeded: a *real* labelled frame and a *production* frame of ``--rows`` rows each, and a
*synthetic* training frame of ``--synthetic-rows`` rows. 20 feature columns: 10 correlated normal
floats, 2 lognormal amounts, 2 Poisson counts, 4 string categoricals (4 to 30 levels) and 2 string
sensitive columns (``sex``: 2 groups, ``group``: 4) that are also model inputs, as in
``examples/arrests_demo.py``; the binary target ``label`` is ``"no"``/``"yes"``. The synthetic set is
"too clean" (less noise, a small shift), amplifies a bias (a third of group ``B``'s ``yes`` flipped to
``no``) and holds 1% verbatim copies of real rows; production drifts in 3 columns. Categoricals are
``object`` strings, as ``pd.read_csv`` gives them.

Model (``--model``): ``logreg`` (default) is ``make_pipeline(make_column_transformer(OneHotEncoder,
StandardScaler), LogisticRegression)`` as in the demo; ``hgb`` is a ``HistGradientBoostingClassifier``
(``max_iter=100``) after an ``OrdinalEncoder`` of the string columns. Either is fitted on the synthetic set.

Steps, in one process, each with wall and CPU time, the ratio of its wall time to the model's
``predict_proba`` on the real rows (the floor), and its extra peak resident memory (the process's
peak is reset through ``/proc/self/clear_refs`` before each step and read from ``VmHWM`` after):

(a) ``model.predict_proba(real[features])``;
(b) ``validate(model, real=..., target=..., synthetic=..., production=..., sensitive_features=...,
    log=False)`` in full;
(c) the same with ``checks=[name]`` for each check (each includes validate's shared work: input
    checks and the one ``predict_proba`` on the real rows);
(d) the full validate with logging, inside ``mlflow.start_run()`` on a fresh SQLite store in a temp dir
    (the store's creation and the run's start are timed separately, not in the step);
(e) every check but ``generator`` (the only one that does not involve the model);
(f) every check with two existing settings turned down: ``generator.max_dcr_rows`` 2,000 (from
    10,000) and ``drift.render_report`` False (no evidently HTML page);
(g) the full validate with ``reuse=True`` (the default; every other step passes ``reuse=False`` so
    that it computes everything): the first model, which computes drift and the generator check and
    stores them under the data's fingerprint;
(h) then a second model (``logreg`` with ``C=0.1``, or ``hgb`` with 50 iterations), fitted on the
    same synthetic set and validated on the same frames: drift and the generator check, which read
    data only, are reused. This is the model-selection loop. Its floor is step (a2), the second
    model's own ``predict_proba`` on the real rows, timed like (a1), the first model's again: step (a)
    runs on fresh memory and pays its page faults, so it is the higher of the two floors.

A warm-up ``validate`` on ``--warmup-rows`` rows runs first and is reported as step (0): the first
call in a process pays one-time lazy imports (evidently, plotly, matplotlib), which would otherwise
land in step (b).

For (b), (d), (f) and (h) the script also prints where the time went inside validate: light timing wrappers
are set, from this script, on the names the orchestrator calls (``check_frame``, each
``<check>_check``, ``log_validation`` ...) and the model is wrapped to count every prediction it is
asked for (rows and seconds). ``--profile FILE`` additionally runs the full validate once under
cProfile and prints the top functions.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import io
import os
import platform
import pstats
import resource
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlflow_hitl.checks.registry import CHECK_NAMES as CHECKS

TARGET = "label"
SENSITIVE = ["sex", "group"]
CATEGORICAL = {"region": 8, "channel": 4, "product": 30, "segment": 5}
FLOATS = [f"x{i}" for i in range(10)]
AMOUNTS = ["amount_a", "amount_b"]
COUNTS = ["count_a", "count_b"]
NUMERIC = FLOATS + AMOUNTS + COUNTS
STRINGS = list(CATEGORICAL) + SENSITIVE
FEATURES = NUMERIC + STRINGS


# --- data ------------------------------------------------------------------------------------------


def make_rows(
    rng: np.random.Generator, rows: int, *, noise: float = 1.0, shift: float = 0.0, drift: bool = False
) -> pd.DataFrame:
    """One frame of the population (``noise`` < 1 and ``shift`` make it "too clean" and moved)."""
    latent = rng.normal(size=(rows, 4))
    mix = np.random.default_rng(12345).normal(size=(4, len(FLOATS)))  # the same structure in every frame
    data: dict[str, Any] = {}
    floats = latent @ mix * 0.5 + noise * rng.normal(size=(rows, len(FLOATS))) + shift
    if drift:  # production: two columns move, one widens
        floats[:, 0] += 0.25
        floats[:, 3] *= 1.3
    for j, name in enumerate(FLOATS):
        data[name] = floats[:, j]
    data["amount_a"] = np.exp(3.0 + 0.6 * latent[:, 0] + 0.4 * noise * rng.normal(size=rows))
    data["amount_b"] = np.exp(1.0 + 0.8 * noise * rng.normal(size=rows))
    data["count_a"] = rng.poisson(np.exp(1.0 + 0.3 * latent[:, 1]))
    data["count_b"] = rng.poisson(4.0, size=rows)
    for k, (name, levels) in enumerate(CATEGORICAL.items()):
        weights = np.linspace(2.0, 1.0, levels)
        if drift and name == "region":
            weights = weights[::-1]
        # the category leans on a latent, so it carries signal
        score = latent[:, k % 4] + noise * rng.gumbel(size=rows)
        cuts = np.quantile(score, np.cumsum(weights / weights.sum())[:-1])
        labels = np.array([f"{name}_{i}" for i in range(levels)], dtype=object)
        data[name] = labels[np.searchsorted(cuts, score)]
    sex = rng.random(rows) < 0.48
    data["sex"] = np.where(sex, "F", "M").astype(object)
    group = rng.choice(4, size=rows, p=[0.55, 0.25, 0.12, 0.08])
    data["group"] = np.array(["A", "B", "C", "D"], dtype=object)[group]
    logit = (
        0.9 * latent[:, 0]
        - 0.7 * latent[:, 1]
        + 0.4 * latent[:, 2]
        + 0.3 * (np.log(data["amount_b"]) - 1.0)
        - 0.3 * (group == 1)
        + 0.1 * sex
    )
    yes = rng.random(rows) < 1.0 / (1.0 + np.exp(-logit / max(noise, 0.3)))
    data[TARGET] = np.where(yes, "yes", "no").astype(object)
    return pd.DataFrame(data)


def make_data(rows: int, synthetic_rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    real = make_rows(rng, rows)
    production = make_rows(rng, rows, drift=True).drop(columns=[TARGET])
    synthetic = make_rows(rng, synthetic_rows, noise=0.6, shift=0.05)
    # Amplified bias: a third of group B's "yes" become "no".
    b_yes = np.flatnonzero((synthetic["group"] == "B").to_numpy() & (synthetic[TARGET] == "yes").to_numpy())
    flipped = rng.choice(b_yes, size=len(b_yes) // 3, replace=False)
    synthetic.loc[flipped, TARGET] = "no"
    # Leaked rows: 1% verbatim copies of real rows.
    leaked = rng.choice(rows, size=synthetic_rows // 100, replace=False)
    at = rng.choice(synthetic_rows, size=len(leaked), replace=False)
    synthetic.iloc[at] = real.iloc[leaked].to_numpy()
    synthetic = synthetic.astype({c: real[c].dtype for c in real.columns})
    return synthetic, real, production


def make_model(kind: str):
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    if kind == "logreg":
        return make_pipeline(
            make_column_transformer(
                (OneHotEncoder(handle_unknown="ignore"), STRINGS), (StandardScaler(), NUMERIC)
            ),
            LogisticRegression(max_iter=1000),
        )
    return make_pipeline(
        make_column_transformer(
            (OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), STRINGS),
            ("passthrough", NUMERIC),
        ),
        HistGradientBoostingClassifier(
            max_iter=100, categorical_features=list(range(len(STRINGS))), random_state=0
        ),
    )


# --- measurement -----------------------------------------------------------------------------------

TIMES: dict[str, float] = defaultdict(float)  # component -> wall seconds, inside the current step
CALLS: dict[str, int] = defaultdict(int)
MODEL_ROWS: list[int] = []


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Peak:
    """Process peak RSS over the whole run, and each step's extra peak over its starting RSS."""

    def __init__(self) -> None:
        self.process_kb = 0
        self.resettable = os.path.exists("/proc/self/clear_refs")

    def start(self) -> int:
        self.process_kb = max(self.process_kb, _status_kb("VmHWM"))
        if self.resettable:
            with open("/proc/self/clear_refs", "w") as clear:
                clear.write("5")  # reset VmHWM to the current RSS
        return _status_kb("VmRSS")

    def stop(self, before_kb: int) -> float:
        peak = _status_kb("VmHWM")
        self.process_kb = max(self.process_kb, peak)
        return (peak - before_kb) / 1024 if self.resettable else float("nan")


def timed_wrapper(label: str, fn):
    @functools.wraps(fn)
    def call(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            TIMES[label] += time.perf_counter() - start
            CALLS[label] += 1

    return call


class CountingModel:
    """Delegates to a fitted scikit-learn model; records every prediction validate asks of it."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.classes_ = model.classes_
        self.feature_names_in_ = model.feature_names_in_

    def _timed(self, method: str, frame: pd.DataFrame):
        start = time.perf_counter()
        try:
            return getattr(self._model, method)(frame)
        finally:
            TIMES[f"model.{method} (all calls)"] += time.perf_counter() - start
            CALLS[f"model.{method} (all calls)"] += 1
            MODEL_ROWS.append(len(frame))

    def predict(self, frame: pd.DataFrame):
        return self._timed("predict", frame)

    def predict_proba(self, frame: pd.DataFrame):
        return self._timed("predict_proba", frame)


def install_wrappers() -> None:
    """Time the orchestrator's callees by rebinding the module attributes it looks up at call time."""
    import importlib

    import mlflow_hitl._validate as orchestrator
    import mlflow_hitl.adapter.logging as logging_adapter
    import mlflow_hitl.adapter.validation as public_validate
    import mlflow_hitl.checks._drift as drift
    from mlflow_hitl.checks import registry

    for name in ("check_frame", "check_labels", "_classes_and_proba", "_unknown_labels"):
        setattr(orchestrator, name, timed_wrapper(f"validate: {name}", getattr(orchestrator, name)))
    public_validate.as_classifier = timed_wrapper("validate: as_classifier", public_validate.as_classifier)
    for check in CHECKS:
        # Each check's SPEC.run calls its function through its module's globals, looked up at call time.
        module, attr = importlib.import_module(registry.CHECKS[check].module), f"{check}_check"
        setattr(module, attr, timed_wrapper(f"check: {check}", getattr(module, attr)))
    import mlflow_hitl.checks._adversarial as adversarial
    import mlflow_hitl.checks._calibration as calibration
    import mlflow_hitl.checks._drift_report as drift_report
    import mlflow_hitl.checks._fairness as fairness
    import mlflow_hitl.checks._generator as generator

    for name, label in (("_render", "evidently HTML (_render)"), ("drift_table", "drift_table")):
        if callable(getattr(drift, name, None)):
            setattr(drift, name, timed_wrapper(f"  drift: {label}", getattr(drift, name)))
    # Private names: wrapped only while they exist, so a refactoring of a check cannot break the bench.
    for name in ("_encode", "_fidelity_table", "_exact_copies", "_c2st", "_distances_to_closest_record"):
        if callable(getattr(generator, name, None)):
            setattr(generator, name, timed_wrapper(f"  generator: {name}", getattr(generator, name)))
    for module in (adversarial, calibration, drift_report, fairness, generator):  # every PNG chart
        if callable(getattr(module, "to_png", None)):
            module.to_png = timed_wrapper("  (all checks: PNG charts, to_png)", module.to_png)
    orchestrator.Fingerprints.of = timed_wrapper("validate: data fingerprints", orchestrator.Fingerprints.of)
    public_validate.log_validation = timed_wrapper("log: log_validation", public_validate.log_validation)
    if callable(getattr(logging_adapter, "_write_artifacts", None)):
        logging_adapter._write_artifacts = timed_wrapper(
            "  log: _write_artifacts (+report.html)", logging_adapter._write_artifacts
        )


def ordered(times: dict[str, float]) -> list[str]:
    """Top-level components by time, each followed by its own parts ("  drift: ..." under "check: drift")."""
    top = sorted((k for k in times if not k.startswith(" ")), key=lambda k: -times[k])
    out = []
    for name in top:
        out.append(name)
        owner = name.split(": ", 1)[-1].split("_")[0]  # "check: drift" -> drift, "log: log_validation" -> log
        out += sorted((k for k in times if k.startswith(f"  {owner}:")), key=lambda k: -times[k])
    return out + [k for k in times if k not in out]


def reset_components() -> None:
    TIMES.clear()
    CALLS.clear()
    MODEL_ROWS.clear()


# --- main ------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in real and in production")
    parser.add_argument("--synthetic-rows", type=int, default=200_000, help="rows in the synthetic set")
    parser.add_argument("--model", choices=("logreg", "hgb"), default="logreg")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup-rows", type=int, default=5_000, help="rows per frame in the warm-up call")
    parser.add_argument(
        "--no-warmup", action="store_true", help="let step (b) pay the first call's lazy imports"
    )
    parser.add_argument("--no-per-check", action="store_true", help="skip step (c)")
    parser.add_argument("--no-log", action="store_true", help="skip step (d)")
    parser.add_argument("--no-levers", action="store_true", help="skip steps (e) and (f)")
    parser.add_argument("--no-reuse", action="store_true", help="skip steps (g) and (h)")
    parser.add_argument("--profile", metavar="FILE", help="also profile one full validate (cProfile) to FILE")
    args = parser.parse_args()

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import mlflow
    import sklearn

    import mlflow_hitl

    peak = Peak()
    rows: list[tuple[str, float, float, float]] = []  # step, wall, cpu, extra MB

    def step(label: str, fn):
        before = peak.start()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        rows.append((label, wall, cpu, peak.stop(before)))
        print(f"  {label:<44} {wall:8.2f} s wall {cpu:8.2f} s CPU", flush=True)
        return out

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"scikit-learn {sklearn.__version__}, mlflow {mlflow.__version__}; {os.cpu_count()} CPUs; "
        f"load average {os.getloadavg()[0]:.2f}; {time.strftime('%Y-%m-%d %H:%M:%S')}",
        flush=True,
    )
    start = time.perf_counter()
    synthetic, real, production = make_data(args.rows, args.synthetic_rows, args.seed)
    mb = {
        name: f.memory_usage(deep=True).sum() / 1e6
        for name, f in (("real", real), ("production", production), ("synthetic", synthetic))
    }
    print(
        f"data in {time.perf_counter() - start:.1f} s: real {real.shape} {mb['real']:.0f} MB, production "
        f"{production.shape} {mb['production']:.0f} MB, synthetic {synthetic.shape} {mb['synthetic']:.0f} MB "
        f"(deep); {len(NUMERIC)} numeric, {len(CATEGORICAL)} categorical, {len(SENSITIVE)} sensitive columns",
        flush=True,
    )
    start = time.perf_counter()
    fitted = make_model(args.model).fit(synthetic[FEATURES], synthetic[TARGET])
    print(f"model {args.model}: {fitted!r:.60}... fitted on synthetic in {time.perf_counter() - start:.1f} s")
    model = CountingModel(fitted)
    install_wrappers()
    X_real = real[FEATURES]
    common = dict(
        real=real,
        target=TARGET,
        synthetic=synthetic,
        production=production,
        sensitive_features=SENSITIVE,
        reuse=False,
    )
    breakdowns: dict[str, tuple[dict[str, float], dict[str, int], list[int], float]] = {}

    def validate_step(label: str, validated: Any = model, **kwargs):
        reset_components()
        out = step(label, lambda: mlflow_hitl.validate(validated, **{**common, **kwargs}))
        breakdowns[label] = (dict(TIMES), dict(CALLS), list(MODEL_ROWS), rows[-1][1])
        return out

    print("steps:", flush=True)
    if not args.no_warmup:  # pays the one-time lazy imports (evidently, plotly, matplotlib) up front
        small = {k: v.head(args.warmup_rows) if isinstance(v, pd.DataFrame) else v for k, v in common.items()}
        step(
            f"(0) warm-up: validate on {args.warmup_rows:,} rows",
            lambda: mlflow_hitl.validate(model, **small, log=False),
        )
    step("(a) model.predict_proba(real)", lambda: fitted.predict_proba(X_real))
    result = validate_step("(b) validate, all checks, log=False", log=False)
    if not args.no_per_check:
        for check in CHECKS:
            validate_step(f"(c) validate, checks=[{check!r}]", checks=[check], log=False)

    if not args.no_levers:
        validate_step(
            "(e) validate, all checks but generator",
            checks=[c for c in CHECKS if c != "generator"],
            log=False,
        )
        lean = validate_step(
            "(f) validate, all checks, lean settings",
            config={"generator": {"max_dcr_rows": 2_000}, "drift": {"render_report": False}},
            log=False,
        )

    if not args.no_reuse:
        start = time.perf_counter()
        second = make_model(args.model)
        second.set_params(
            **(
                {"logisticregression__C": 0.1}
                if args.model == "logreg"
                else {"histgradientboostingclassifier__max_iter": 50}
            )
        )
        second = CountingModel(second.fit(synthetic[FEATURES], synthetic[TARGET]))
        print(f"  (second model fitted in {time.perf_counter() - start:.1f} s, not counted)")
        # (a) ran cold, on fresh memory; by now the process has freed pages to reuse, and the floor is lower.
        step("(a1) first model: predict_proba(real) again", lambda: fitted.predict_proba(X_real))
        step("(a2) second model: predict_proba(real)", lambda: second._model.predict_proba(X_real))
        validate_step("(g) validate, reuse=True, first model", reuse=True, log=False)
        reused = validate_step("(h) validate, reuse=True, second model", second, reuse=True, log=False)
        print(f"  reused in (h): {reused.details.get('reused')}")

    if not args.no_log:
        with tempfile.TemporaryDirectory() as tmp:
            wall0 = time.perf_counter()
            mlflow.set_tracking_uri(f"sqlite:///{Path(tmp) / 'mlflow.db'}")
            experiment = mlflow.create_experiment("bench", artifact_location=(Path(tmp) / "art").as_uri())
            with mlflow.start_run(experiment_id=experiment) as run:
                setup = time.perf_counter() - wall0
                print(f"  (fresh SQLite store created and run started in {setup:.2f} s, not counted)")
                logged = validate_step("(d) validate, all checks, logged to MLflow")
            artifacts = mlflow.MlflowClient().list_artifacts(run.info.run_id, "hitl")
            print(
                f"  logged run {run.info.run_id}: {len(artifacts)} entries under hitl/; "
                f"run_id on result: {logged.run_id == run.info.run_id}"
            )

    floors = {label.split()[0]: wall for label, wall, _, _ in rows if label.startswith(("(a)", "(a2)"))}
    floor = floors["(a)"]
    print(f"\n{'step':<44} {'wall s':>8} {'CPU s':>8} {'x predict_proba':>16} {'extra peak RSS MB':>18}")
    for label, wall, cpu, extra in rows:
        own_floor = floors.get("(a2)", floor) if label.startswith(("(a2)", "(h)")) else floor
        print(f"{label:<44} {wall:8.2f} {cpu:8.2f} {wall / own_floor:16.1f} {extra:18.0f}")
    usage_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"peak RSS of the process: {max(usage_kb, peak.process_kb) / 1024:.0f} MB "
        f"(getrusage ru_maxrss {usage_kb / 1024:.0f} MB; frames, deep: {sum(mb.values()):.0f} MB)"
    )

    for label in breakdowns:
        if not label.startswith(("(b)", "(d)", "(f)", "(h)")):
            continue
        times, calls, model_rows, total = breakdowns[label]
        print(f"\nwhere the time went in {label} ({total:.2f} s wall):")
        for name in ordered(times):
            seconds = times[name]
            print(f"  {name:<44} {seconds:8.2f} s {100 * seconds / total:5.1f}%  {calls[name]:>3} call(s)")
        print(
            f"  model calls: {len(model_rows)}, {sum(model_rows):,} rows in all "
            f"({sum(model_rows) / args.rows:.2f}x the real rows)"
        )
        if label.startswith(("(b)", "(h)")):
            own = sum(v for k, v in times.items() if k.startswith("model."))
            label_floor = floors["(a2)" if label.startswith("(h)") else "(a)"]
            print(
                f"  validate beyond the model's own predictions: {total - own:.2f} s "
                f"= {(total - own) / label_floor:.1f}x its predict_proba on the real rows"
            )

    print("\nverdicts:")
    for name, check in result.checks.items():
        print(f"  {name:<12} {check.status.value:<22} {check.summary[:110]}")
    for name, reason in result.skipped.items():
        print(f"  {name:<12} skipped: {reason}")
    if not args.no_levers:
        full_g, lean_g = result.checks["generator"], lean.checks["generator"]
        print(
            "  lean settings (f): statuses "
            + ", ".join(f"{n}={c.status.value}" for n, c in lean.checks.items())
            + f"; near_copy_share {lean_g.metrics['near_copy_share']:.4f} on 2,000 queries vs "
            f"{full_g.metrics['near_copy_share']:.4f} on 10,000"
        )

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        mlflow_hitl.validate(model, **common, log=False)
        profiler.disable()
        profiler.dump_stats(args.profile)
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text).strip_dirs()
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(25)
        print(f"\ncProfile of one full validate (log=False), saved to {args.profile}:")
        print(text.getvalue())
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
