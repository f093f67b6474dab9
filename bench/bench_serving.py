"""What routing costs a served model: added latency per request, and throughput with and without it.

    /work/main/.venv/bin/python bench/bench_serving.py --requests 5000 --rate 1000
    /work/main/.venv/bin/python bench/bench_serving.py --model arrests --requests 2000 --rate 200

Both models are real pyfuncs loaded by ``mlflow.pyfunc.load_model`` from a fresh SQLite tracking
store: the bare model, and the same model logged with ``mlflow_hitl.serving.log_routed_model``
(threshold 0.6, control share 0.02, no budget unless ``--budget``: every uncertain row is appended,
the worst case for the store) appending to a SQLite review store in a temp folder. ``--model numeric`` is a logistic
regression on 8 numeric columns (a pyfunc call costs a fraction of a millisecond, so 1,000 requests/s
fit on one core); ``--model arrests`` the test suite's scikit-learn pipeline (one-hot + scaling, a few
milliseconds a call).

1. **Added latency.** One-row requests are sent at ``--rate`` per second (open loop: each request
   waits for its start time, not for the one before), first to the bare model, then to the routed
   one; p50/p99/max of each, and of what routing's own code took inside each routed request (its
   ``predict`` minus the wrapped model's answer in the same call, so the model's jitter cancels out:
   the hand-off to the feeder, request ids). The background thread (scoring, routing, SQLite
   appends) runs meanwhile, so its competition for the interpreter shows in both routed figures.
2. **Throughput.** One-row requests back to back for ``--seconds`` seconds, bare vs routed, in
   requests/s; then ``predict`` on one frame of ``--batch-rows`` rows (batch scoring), in rows/s.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def numeric_model():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(5_000, 8)), columns=[f"x{i}" for i in range(8)])
    target = (frame.sum(axis=1) + rng.normal(scale=2.0, size=len(frame)) > 0).map({True: "Yes", False: "No"})
    return LogisticRegression().fit(frame, target), frame


def arrests_model():
    from sklego.datasets import load_arrests

    from hitl_support import make_arrests_model, split_arrests

    synthetic, _, production = split_arrests(load_arrests(as_frame=True))
    model = make_arrests_model(synthetic)
    return model, production[list(model.feature_names_in_)]


class TimedInner:
    """How the routed model asks the wrapped one for its answer, timing each call."""

    def __init__(self, answer):
        self.answer, self.last = answer, 0.0

    def __call__(self, data, params):
        start = time.perf_counter()
        out = self.answer(data, params)
        self.last = time.perf_counter() - start
        return out


def percentiles(values) -> str:
    ms = np.asarray(values) * 1e3
    return (
        f"p50 {np.percentile(ms, 50):7.3f} ms   p99 {np.percentile(ms, 99):7.3f} ms   max {ms.max():7.3f} ms"
    )


def paced(predict, rows, n, rate):
    """Call ``predict`` on one row at a time, ``rate`` calls a second; returns each call's duration."""
    durations = np.empty(n)
    start = time.perf_counter()
    for i in range(n):
        due = start + i / rate
        while (now := time.perf_counter()) < due:
            if due - now > 0.002:
                time.sleep(due - now - 0.001)
        t0 = time.perf_counter()
        predict(rows[i % len(rows)])
        durations[i] = time.perf_counter() - t0
    achieved = n / (time.perf_counter() - start)
    return durations, achieved


def closed_loop(predict, rows, seconds):
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        predict(rows[count % len(rows)])
        count += 1
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", choices=["numeric", "arrests"], default="numeric")
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--rate", type=float, default=1_000.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch-rows", type=int, default=100_000)
    parser.add_argument("--feeder-batch", type=int, default=256, help="the routed model's batch_rows")
    parser.add_argument(
        "--budget", default=None, help="e.g. 500/day (default: no cap, every uncertain row appended)"
    )
    args = parser.parse_args()

    import mlflow
    import sklearn

    from mlflow_hitl.serving import FeederSettings, log_routed_model

    folder = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    os.environ["MLFLOW_HITL_STORE_URI"] = f"sqlite:///{folder / 'hitl.db'}"
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = mlflow.create_experiment("bench-serving", artifact_location=(folder / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment)
    model, data = numeric_model() if args.model == "numeric" else arrests_model()
    with mlflow.start_run():
        base = mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=data.head(2),
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        )
        routed_info = log_routed_model(
            base.model_uri,
            queue="bench",
            budget=args.budget,
            feeder=FeederSettings(batch_rows=args.feeder_batch),
            spool_dir=str(folder / "spool"),
        )
    bare = mlflow.pyfunc.load_model(base.model_uri)
    routed = mlflow.pyfunc.load_model(routed_info.model_uri)
    wrapper = routed.unwrap_python_model()
    inner = TimedInner(wrapper._answer)
    wrapper._answer = inner
    own = []  # per request: RoutedModel.predict's time beyond the wrapped model's answer

    def timed_predict(context, model_input, params=None, _predict=wrapper.predict):
        start = time.perf_counter()
        out = _predict(context, model_input, params)
        own.append(time.perf_counter() - start - inner.last)
        return out

    wrapper.predict = timed_predict
    rows = [data.iloc[[i]] for i in range(min(len(data), 2_000))]
    for _ in range(200):  # warm up both
        bare.predict(rows[0])
        routed.predict(rows[0])
    wrapper.flush()

    print(
        f"model {args.model}: {len(data.columns)} columns; {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.1f}"
    )
    bare_times, bare_rate = paced(bare.predict, rows, args.requests, args.rate)
    own.clear()
    routed_times, routed_rate = paced(routed.predict, rows, args.requests, args.rate)
    print(
        f"\n1. {args.requests:,} one-row requests at {args.rate:,.0f}/s (achieved: bare {bare_rate:,.0f}/s, routed {routed_rate:,.0f}/s)"
    )
    print(f"   bare model predict        {percentiles(bare_times)}")
    print(f"   routed model predict      {percentiles(routed_times)}")
    print(f"   routing's own code        {percentiles(own)}")
    print(f"   routed - bare             p50 {1e3 * (np.median(routed_times) - np.median(bare_times)):+7.3f} ms   "
          f"p99 {1e3 * (np.percentile(routed_times, 99) - np.percentile(bare_times, 99)):+7.3f} ms")  # fmt: skip
    wrapper.flush(120)
    stats = wrapper.routing_stats()
    print(
        f"   routed {stats['routed']:,} of {stats['rows']:,} rows; appended {stats['appended']:,}; dropped {stats['dropped']}"
    )

    bare_rps = closed_loop(bare.predict, rows, args.seconds)
    routed_rps = closed_loop(routed.predict, rows, args.seconds)
    print(f"\n2. back to back for {args.seconds:g} s: bare {bare_rps:,.0f} requests/s, routed {routed_rps:,.0f} requests/s "
          f"({routed_rps / bare_rps - 1:+.1%})")  # fmt: skip
    wrapper.flush(120)
    frame = pd.concat([data] * (args.batch_rows // len(data) + 1), ignore_index=True).iloc[: args.batch_rows]
    start = time.perf_counter()
    bare.predict(frame)
    bare_batch = time.perf_counter() - start
    start = time.perf_counter()
    routed.predict(frame)
    wrapper.flush(300)
    routed_batch = time.perf_counter() - start
    print(f"   batch predict of {len(frame):,} rows: bare {len(frame) / bare_batch:,.0f} rows/s ({bare_batch:.2f} s), "
          f"routed and appended {len(frame) / routed_batch:,.0f} rows/s ({routed_batch:.2f} s)")  # fmt: skip
    stats = wrapper.routing_stats()
    print(
        f"   in all: routed {stats['routed']:,} of {stats['rows']:,} rows; appended {stats['appended']:,}; dropped {stats['dropped']}"
    )


if __name__ == "__main__":
    main()
