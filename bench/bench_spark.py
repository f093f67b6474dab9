"""The Spark path at scale: wall time per check and driver peak memory, beside the pandas path and evidently.

    /work/main/.venv/bin/python bench/bench_spark.py                                  # 1,000,000 rows
    /work/main/.venv/bin/python bench/bench_spark.py --rows 1000000 10000000 50000000   # the issue's sizes
    /work/main/.venv/bin/python bench/bench_spark.py --rows 200000 --skip-evidently     # a quick run
    nice -n 10 /work/main/.venv/bin/python bench/bench_spark.py --rows 10000000 --only-all --only-spark

Data, generated IN Spark (``spark.range(n)`` and column expressions, seeded; no pandas): a *real*
labelled frame, a *production* frame and a *synthetic* frame of ``n`` rows each, with the 20 feature
columns of ``bench_validate.py``: 10 correlated normal floats, 2 lognormal amounts, 2 counts, 4 string
categoricals (4 to 30 levels) and the 2 sensitive string columns ``sex`` and ``group``; the target
``label`` is ``"no"``/``"yes"``. Production drifts (a float moves, another widens, ``region`` is
re-weighted); synthetic is "too clean" (less noise, a small shift), flips a third of group B's "yes"
to "no" and holds 1% verbatim copies of real rows. The model, a scikit-learn pipeline (one-hot and
scaling, logistic regression), is fitted on 50,000 synthetic rows (the only rows brought to the driver).

The session is ``local[2]`` with the settings ``docs/spark.md`` recommends for local mode,
``spark.driver.memory=512m``, the parallel collector and ``MALLOC_ARENA_MAX=2`` (``--conf`` changes the
first two, the environment the third): in local mode the
executors are threads of the driver's JVM, so that JVM's heap holds everything Spark holds, and a run
that finishes proves the bound. Steps, each timed (wall, and CPU seconds of the driver, the JVM and the Python workers: the
work done, which a loaded machine does not inflate as it does the wall time; the 1-minute load average
is printed beside) with the driver's peak memory: the Python driver's peak resident
size (``VmHWM`` after ``/proc/self/clear_refs``; the whole run's ``resource.getrusage`` peak is printed
at the end) and the JVM's (``VmHWM`` of the java process, reset the same way):

- ``count``: the three frames generated and counted (the floor: generation alone);
- ``queue``: a review queue of the 300 least confident production rows, split across ``group``,
  ranked on the executors (``mlflow_hitl.spark.queue_for_review``);
- ``validate:<check>``: ``mlflow_hitl.validate(model, real=, target=, synthetic=, production=,
  sensitive_features=, checks=[check], log=False, reuse=False)`` on the Spark frames, for each check,
  then ``validate:all``, whose lines ``all › <check>`` time each check inside that one call (from its
  ``progress`` callback; ``all › inputs+scoring`` is the inputs' checks and the model's scoring). A
  check ``validate`` does not accept on Spark yet is reported with its error. ``--only-all`` runs
  ``validate:all`` alone (each check is then timed by its line), ``--only-spark`` skips the pandas path
  and evidently: at 10M rows and above, what fits in the time.

At sizes up to ``--pandas-max-rows`` (1,000,000) the same rows are written to Parquet by Spark and read
by pandas, and the pandas path runs the same steps; evidently's ``DataDriftPreset`` (real vs production
features) runs at those sizes too unless ``--skip-evidently``. The table puts them side by side, with
the ratio of the Spark wall time to the pandas one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlflow_hitl.checks.registry import CHECK_NAMES as CHECKS

TARGET = "label"
SENSITIVE = ["sex", "group"]
CATEGORICAL = {"region": 8, "channel": 4, "product": 30, "segment": 5}
FLOATS = [f"x{i}" for i in range(10)]
NUMERIC = [*FLOATS, "amount_a", "amount_b", "count_a", "count_b"]
STRINGS = [*CATEGORICAL, *SENSITIVE]
FEATURES = NUMERIC + STRINGS
QUEUE_SIZE = 300
TRAIN_ROWS = 50_000
ROWS_PER_PARTITION = 250_000


# --- data, in Spark ---------------------------------------------------------------------------------


def make_rows(
    spark: Any, rows: int, seed: int, *, noise: float = 1.0, shift: float = 0.0, drift: bool = False
):
    """One frame of the population as Spark expressions over ``spark.range(rows)``, seeded per column."""
    from pyspark.sql import functions as F

    seeds = iter(range(seed * 1000, seed * 1000 + 1000))
    frame = spark.range(0, rows, numPartitions=max(2, rows // ROWS_PER_PARTITION))
    latent = [f"l{i}" for i in range(4)]
    frame = frame.select("id", *[F.randn(next(seeds)).alias(name) for name in latent])
    mix = np.random.default_rng(12345).normal(size=(4, len(FLOATS)))  # the same structure in every frame
    columns: dict[str, Any] = {}
    for j, name in enumerate(FLOATS):
        value = sum(0.5 * float(mix[i, j]) * F.col(latent[i]) for i in range(4))
        value = value + noise * F.randn(next(seeds)) + shift
        if drift and j == 0:
            value = value + 0.25
        if drift and j == 3:
            value = value * 1.3
        columns[name] = value
    columns["amount_a"] = F.exp(3.0 + 0.6 * F.col("l0") + 0.4 * noise * F.randn(next(seeds)))
    columns["amount_b"] = F.exp(1.0 + 0.8 * noise * F.randn(next(seeds)))
    # Counts: exponential waiting times floored, a Poisson-like count with the latent's rate.
    columns["count_a"] = F.floor(F.exp(1.0 + 0.3 * F.col("l1")) * -F.log(1.0 - F.rand(next(seeds)))).cast(
        "long"
    )
    columns["count_b"] = F.floor(F.rand(next(seeds)) * 9).cast("long")
    for k, (name, levels) in enumerate(CATEGORICAL.items()):
        # the category leans on a latent, so it carries signal; production re-weights region
        score = F.col(latent[k % 4]) + noise * F.randn(next(seeds))
        unit = 1.0 / (1.0 + F.exp(-score))
        if drift and name == "region":
            unit = F.pow(unit, 0.7)
        level = F.least(F.floor(unit * levels), F.lit(levels - 1)).cast("int")
        columns[name] = F.concat(F.lit(f"{name}_"), level.cast("string"))
    columns["sex"] = F.when(F.rand(next(seeds)) < 0.48, "F").otherwise("M")
    draw = F.rand(next(seeds))
    columns["group"] = F.when(draw < 0.55, "A").when(draw < 0.80, "B").when(draw < 0.92, "C").otherwise("D")
    frame = frame.select("id", *latent, *[value.alias(name) for name, value in columns.items()])
    logit = (
        0.9 * F.col("l0")
        - 0.7 * F.col("l1")
        + 0.4 * F.col("l2")
        + 0.3 * (F.log("amount_b") - 1.0)
        - 0.3 * (F.col("group") == "B").cast("double")
        + 0.1 * (F.col("sex") == "F").cast("double")
    )
    yes = F.rand(next(seeds)) < 1.0 / (1.0 + F.exp(-logit / max(noise, 0.3)))
    return frame.withColumn(TARGET, F.when(yes, "yes").otherwise("no")).drop(*latent)


def make_data(spark: Any, rows: int, seed: int):
    """(synthetic, real, production) Spark frames of ``rows`` rows each; production has no label."""
    from pyspark.sql import functions as F

    real = make_rows(spark, rows, seed)
    production = make_rows(spark, rows, seed + 1, drift=True).drop(TARGET)
    synthetic = make_rows(spark, rows, seed + 2, noise=0.6, shift=0.05)
    # Amplified bias: a third of group B's "yes" become "no".
    flip = (F.col("group") == "B") & (F.col(TARGET) == "yes") & (F.col("id") % 3 == 0)
    synthetic = synthetic.withColumn(TARGET, F.when(flip, "no").otherwise(F.col(TARGET)))
    # Leaked rows: 1% verbatim copies of real rows, in place of synthetic ones.
    synthetic = synthetic.filter(F.col("id") % 100 != 0).unionByName(real.filter(F.col("id") % 100 == 0))
    return synthetic.drop("id"), real.drop("id"), production.drop("id")


def make_model():
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), STRINGS), (StandardScaler(), NUMERIC)
        ),
        LogisticRegression(max_iter=1000),
    )


# --- measurement ------------------------------------------------------------------------------------


def _status_kb(pid: int | str, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def _reset_peak(pid: int | str) -> None:
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as clear:
            clear.write("5")  # the peak resident size restarts from the current one
    except OSError:
        pass


def java_pid(spark: Any) -> int | None:
    """The JVM pyspark launched: the gateway's process (spark-submit execs java), else its java child."""
    launched = spark.sparkContext._gateway.proc.pid
    for pid in [launched, *_children(launched)]:
        with open(f"/proc/{pid}/comm") as comm:
            if comm.read().strip() == "java":
                return pid
    return None


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found += [int(entry.name), *_children(int(entry.name))]
    return found


def cpu_seconds(jvm: int | None) -> float:
    """CPU time so far of the Python driver, the JVM and the JVM's descendants (the Python workers; a
    worker that exited counts in its parent's waited-for children's time)."""
    total = sum(os.times()[:2])
    for pid in [] if jvm is None else [jvm, *_children(jvm)]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime
    return total


def _mark(jvm: int | None) -> tuple[float, float]:
    """(wall clock, CPU seconds) now: the start of a span."""
    return time.perf_counter(), cpu_seconds(jvm)


def measure(label: str, step: Callable[[], Any], jvm: int | None) -> dict[str, Any]:
    """Run ``step``; its wall time, its CPU time (driver, JVM and Python workers) and the Python driver's
    and the JVM's peak resident sizes during it."""
    for pid in ("self", jvm):
        if pid is not None:
            _reset_peak(pid)
    start = _mark(jvm)
    error = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            step()
    except Exception as exc:  # a check the Spark path does not take yet: reported, the bench goes on
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:160]
    run = {"step": label, **_peaks(start, jvm), "error": error}
    _show(run)
    return run


def _peaks(start: tuple[float, float], jvm: int | None) -> dict[str, Any]:
    """Wall and CPU seconds since ``start``, the peak resident sizes since the last reset, the 1-minute
    load average. On a loaded machine the CPU seconds still measure the work; the wall time does not."""
    return {
        "seconds": time.perf_counter() - start[0],
        "cpu_seconds": cpu_seconds(jvm) - start[1],
        "python_peak_mb": _status_kb("self", "VmHWM") / 1024,
        "jvm_peak_mb": _status_kb(jvm, "VmHWM") / 1024 if jvm else None,
        "load": os.getloadavg()[0],
    }


def _show(run: dict[str, Any]) -> None:
    shown = (
        f"{run['seconds']:8.1f} s  cpu {run['cpu_seconds']:7.1f} s  python {run['python_peak_mb']:7.0f} MB"
    )
    if run["jvm_peak_mb"] is not None:
        shown += f"  jvm {run['jvm_peak_mb']:7.0f} MB"
    shown += f"  load {run['load']:5.1f}"
    error = run.get("error")
    print(f"  {run['step']:<24}{shown}{'  ' + error if error else ''}", flush=True)


class Splits:
    """``validate``'s ``progress`` callback: the wall time and peak memory of each check inside one call.

    ``progress(done, total)`` comes before each check and once at the end, so the span from one call to
    the next is check ``done``'s; the span before the first is the inputs' checks and the model's scoring.
    """

    def __init__(self, prefix: str, names: list[str], jvm: int | None) -> None:
        self.prefix, self.names, self.jvm = prefix, names, jvm
        self.runs: list[dict[str, Any]] = []
        self.start()

    def start(self) -> None:
        """The call begins: its first span is the inputs' checks and the model's scoring."""
        self._start = _mark(self.jvm)
        self._label = f"{self.prefix} inputs+scoring"

    def __call__(self, done: int, total: int) -> None:
        run = {"step": self._label, **_peaks(self._start, self.jvm)}
        self.runs.append(run)
        _show(run)
        for pid in ("self", self.jvm):
            if pid is not None:
                _reset_peak(pid)
        self._start = _mark(self.jvm)
        if done < total:
            self._label = f"{self.prefix} {self.names[done]}"


# --- the steps --------------------------------------------------------------------------------------


def queue_step(store_dir: Path, name: str, production: Any, model: Any) -> Callable[[], Any]:
    from mlflow_hitl.review import ReviewStore, queue_for_review

    def run() -> Any:
        store = ReviewStore(f"sqlite:///{store_dir / 'hitl.db'}")
        if hasattr(production, "toPandas"):
            from mlflow_hitl.spark import queue_for_review as spark_queue

            return spark_queue(
                store,
                name,
                rows=production,
                predict_proba=model.predict_proba,
                features=FEATURES,
                classes=list(model.classes_),
                size=QUEUE_SIZE,
                group_column="group",
                actor="bench",
            )
        proba = model.predict_proba(production[FEATURES])
        return queue_for_review(
            store,
            name,
            rows=production,
            y_prob=proba,
            classes=list(model.classes_),
            size=QUEUE_SIZE,
            groups=production["group"],
            actor="bench",
        )

    return run


def validate_step(
    model: Any, frames: tuple[Any, Any, Any], checks: list[str] | None, splits: Splits | None = None
) -> Callable[[], Any]:
    import mlflow_hitl

    synthetic, real, production = frames

    def run() -> Any:
        if splits is not None:
            splits.start()
        return mlflow_hitl.validate(
            model,
            real=real,
            target=TARGET,
            synthetic=synthetic,
            production=production,
            sensitive_features=SENSITIVE,
            features=FEATURES,
            checks=checks,
            log=False,
            reuse=False,
            progress=splits,
        )

    return run


def evidently_step(real: Any, production: Any) -> Callable[[], Any]:
    def run() -> Any:
        from evidently import Report
        from evidently.presets import DataDriftPreset

        return Report([DataDriftPreset()]).run(production[FEATURES], real[FEATURES])

    return run


def steps(
    frames: tuple[Any, Any, Any],
    model: Any,
    store_dir: Path,
    tag: str,
    args: argparse.Namespace,
    splits: Splits | None = None,
) -> list[tuple[str, Callable]]:
    listed = [(f"queue ({QUEUE_SIZE})", queue_step(store_dir, f"bench-{tag}", frames[2], model))]
    if args.only_queue:
        return listed
    if not args.only_all:
        listed += [(f"validate:{check}", validate_step(model, frames, [check])) for check in CHECKS]
    listed.append(("validate:all", validate_step(model, frames, None, splits)))
    return listed


def bench_size(spark: Any, rows: int, args: argparse.Namespace, jvm: int | None, model: Any) -> list[dict]:
    import pandas as pd

    print(
        f"\n{rows:,} rows x {len(FEATURES)} features (+ label), {max(2, rows // ROWS_PER_PARTITION)} partitions"
    )
    frames = make_data(spark, rows, args.seed)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        conf = spark.sparkContext.getConf()
        print(
            f" spark (local[2], driver {conf.get('spark.driver.memory')}, {conf.get('spark.driver.extraJavaOptions')})"
        )
        count = measure("count", lambda: [f.count() for f in frames], jvm)
        results.append({"engine": "spark", "rows": rows, **count})
        splits = Splits("  all ›", list(CHECKS), jvm)
        for label, step in steps(frames, model, Path(tmp), f"spark-{rows}", args, splits):
            results.append({"engine": "spark", "rows": rows, **measure(label, step, jvm)})
        results += [{"engine": "spark-split", "rows": rows, "error": None, **run} for run in splits.runs]
        if rows > args.pandas_max_rows or args.only_spark:
            return results
        paths = []
        for name, frame in zip(("synthetic", "real", "production"), frames, strict=True):
            frame.write.parquet(f"{tmp}/{name}")  # Spark writes, pandas reads: nothing through the driver
            paths.append(f"{tmp}/{name}")
        local = tuple(pd.read_parquet(p) for p in paths)
        print(" pandas")
        for label, step in steps(local, model, Path(tmp), f"pandas-{rows}", args):
            results.append({"engine": "pandas", "rows": rows, **measure(label, step, None)})
        if not args.skip_evidently:
            print(" evidently")
            evidently = measure("evidently DataDriftPreset", evidently_step(local[1], local[2]), None)
            results.append({"engine": "evidently", "rows": rows, **evidently})
    return results


def side_by_side(results: list[dict]) -> None:
    print("\nside by side (wall seconds; Spark's CPU seconds; driver peak MB: python / jvm)")
    print(
        f"{'rows':>12}  {'step':<26}{'spark':>10}{'cpu s':>9}{'py MB':>8}{'jvm MB':>8}{'pandas':>10}{'py MB':>8}"
        f"{'spark/pandas':>14}"
    )
    by = {(r["engine"], r["rows"], r["step"]): r for r in results}
    for r in (r for r in results if r["engine"] in ("spark", "spark-split")):
        other = by.get(("pandas", r["rows"], r["step"])) or by.get(("evidently", r["rows"], r["step"]))
        spark = "error" if r["error"] else f"{r['seconds']:.1f}"
        pandas = "" if other is None else "error" if other["error"] else f"{other['seconds']:.1f}"
        ratio = ""
        if other is not None and not (r["error"] or other["error"]):
            ratio = f"{r['seconds'] / other['seconds']:.2f}x"
        print(
            f"{r['rows']:>12,}  {r['step']:<26}{spark:>10}{r['cpu_seconds']:>9.1f}{r['python_peak_mb']:>8.0f}{r['jvm_peak_mb'] or 0:>8.0f}"
            f"{pandas:>10}{'' if other is None else format(other['python_peak_mb'], '.0f'):>8}{ratio:>14}"
        )
    for r in (r for r in results if r["engine"] == "evidently"):
        ours = by.get(("spark", r["rows"], "validate:drift"))
        ratio = "" if ours is None or ours["error"] else f"{ours['seconds'] / r['seconds']:.2f}x (drift)"
        print(
            f"{r['rows']:>12,}  {'evidently DataDriftPreset':<26}{'':>35}{r['seconds']:>10.1f}"
            f"{r['python_peak_mb']:>8.0f}{ratio:>14}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000], help="sizes, rows per frame")
    parser.add_argument(
        "--pandas-max-rows", type=int, default=1_000_000, help="largest size the pandas path runs"
    )
    parser.add_argument("--skip-evidently", action="store_true", help="no evidently DataDriftPreset")
    parser.add_argument("--only-queue", action="store_true", help="time the queue step only (no validate)")
    parser.add_argument(
        "--only-all",
        action="store_true",
        help="validate all checks in one call only (each check's time from its progress), not each alone",
    )
    parser.add_argument(
        "--only-spark", action="store_true", help="the Spark path only: no pandas path, no evidently"
    )
    parser.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Spark setting for the session, on top of the bench's (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write every measurement to this file")
    args = parser.parse_args()

    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # The JVM (started below, inheriting this environment) then keeps glibc to 2 malloc arenas instead of
    # up to 8 per core: 40-50 MB less resident at 1M rows, the same CPU (docs/spark.md).
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    builder = (
        SparkSession.builder.master("local[2]")
        .appName("bench-spark")
        .config("spark.driver.memory", "512m")
        .config("spark.driver.extraJavaOptions", "-XX:+UseParallelGC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    for setting in args.conf:
        key, _, value = setting.partition("=")
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    jvm = java_pid(spark)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"Spark {spark.version}, java pid {jvm}, MALLOC_ARENA_MAX={os.environ['MALLOC_ARENA_MAX']}; load average {os.getloadavg()}; {' '.join(sys.argv[1:])}"
    )
    train = make_data(spark, TRAIN_ROWS, args.seed + 100)[0].toPandas()  # the model's 50,000 training rows
    model = make_model().fit(train[FEATURES], train[TARGET])
    del train
    results = []
    for rows in args.rows:
        results += bench_size(spark, rows, args, jvm, model)
    side_by_side(results)
    spark_runs = [r for r in results if r["engine"] in ("spark", "spark-split")]
    python_spark = max(r["python_peak_mb"] for r in spark_runs)
    jvm_peak = max((r["jvm_peak_mb"] or 0) for r in spark_runs)
    python_run = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\ndriver peak in the Spark steps: python {python_spark:.0f} MB, jvm {jvm_peak:.0f} MB (VmHWM); "
        f"python over the whole run, pandas path included: {python_run:.0f} MB (getrusage); "
        f"load average at the end {os.getloadavg()}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    spark.stop()


if __name__ == "__main__":
    main()
