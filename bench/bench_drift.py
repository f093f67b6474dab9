"""Benchmark: our drift engine, and ``validate(checks=["drift"], log=False)`` end to end, against
evidently 0.7's DataDriftPreset on the same two frames.

Usage::

    python bench/bench_drift.py --rows 1000000 --cols 20
    python bench/bench_drift.py --rows 100000 --skip-evidently

The end-to-end run hands ``validate`` the reference frame as ``real`` (plus a label column) and the
current frame as ``production``, with a model that costs nothing, so it times what validate itself
adds to the drift engine: checking the inputs, fingerprinting them for reuse, one model call, the
drift check with its PNG chart; and it records whether evidently was imported (it must not be:
without logging nothing renders evidently's page).

Each engine runs in its own fresh process that builds the same seeded frames, so neither inherits
the other's memory. Memory is measured from the operating system, not tracemalloc (which would
slow evidently's Python-heavy code many times over): right before the call the process resets its
peak resident set size (``/proc/self/clear_refs`` = 5, Linux), and after the call reads ``VmHWM``.
"Extra" memory is that peak minus the resident size just before the call (frames already built).
Our engine is also run a second time under tracemalloc, which counts allocations whether or not
their pages were touched (so it can read higher than RSS).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd

# What each column of a group of ten is, and what the current set does to it.
# Shifted columns are expected to drift; "subtle" ones (0.02 std) are expected not to.
_LAYOUT = [
    ("float", "shift 0.3 std"),
    ("float", None),
    ("float", "subtle 0.02 std"),
    ("float", None),
    ("lognormal", "scale x1.5"),
    ("float", None),
    ("int_few", "reweight"),
    ("float", None),
    ("string", "reweight"),
    ("bool", None),
]
_LEVELS = np.array([f"level_{i}" for i in range(8)], dtype=object)


def make_frames(rows: int, cols: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Reference and current frames with known shifts; returns the names of the shifted columns."""
    rng = np.random.default_rng(seed)
    ref: dict[str, np.ndarray] = {}
    cur: dict[str, np.ndarray] = {}
    shifted = []
    for i in range(cols):
        kind, shift = _LAYOUT[i % len(_LAYOUT)]
        name = f"{kind}_{i}"
        if kind == "float":
            ref[name] = rng.normal(0.0, 1.0, rows)
            delta = {"shift 0.3 std": 0.3, "subtle 0.02 std": 0.02}.get(shift, 0.0)
            cur[name] = rng.normal(delta, 1.0, rows)
        elif kind == "lognormal":
            ref[name] = rng.lognormal(0.0, 0.5, rows)
            cur[name] = rng.lognormal(0.0, 0.5, rows) * 1.5
        elif kind == "int_few":
            p = np.full(8, 1 / 8)
            q = np.array([0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05])
            ref[name] = rng.choice(8, rows, p=p)
            cur[name] = rng.choice(8, rows, p=q)
        elif kind == "string":
            p = np.full(8, 1 / 8)
            q = np.array([0.05, 0.05, 0.1, 0.1, 0.1, 0.1, 0.2, 0.3])
            ref[name] = rng.choice(_LEVELS, rows, p=p)
            cur[name] = rng.choice(_LEVELS, rows, p=q)
        else:
            ref[name] = rng.random(rows) < 0.5
            cur[name] = rng.random(rows) < 0.5
        if shift and not shift.startswith("subtle"):
            shifted.append(name)
    return pd.DataFrame(ref), pd.DataFrame(cur), shifted


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field))


class _FreeModel:
    """A classifier whose predictions cost nothing, so the end-to-end run times validate's own work."""

    classes_ = np.array([0, 1])

    def __init__(self, features: list[str]) -> None:
        self.feature_names_in_ = np.array(features, dtype=object)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.zeros(len(X), dtype=int)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.full((len(X), 2), 0.5)


def _run_validate(real: pd.DataFrame, cur: pd.DataFrame) -> tuple[pd.DataFrame, float, float]:
    """``validate(checks=["drift"], log=False)``: ``real`` is the reference plus a label, ``cur`` production."""
    import mlflow_hitl

    model = _FreeModel([c for c in real.columns if c != "label"])
    start, start_cpu = time.perf_counter(), time.process_time()
    result = mlflow_hitl.validate(
        model, real=real, target="label", production=cur, checks=["drift"], log=False
    )
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    table = pd.DataFrame(result.checks["drift"].details["real_vs_production"]["table"])
    return table, seconds, cpu_seconds


def _run_engine(engine: str, rows: int, cols: int, seed: int) -> dict:
    ref, cur, _ = make_frames(rows, cols, seed)
    # Shallow size: the string columns point at 8 shared level objects, which deep=True would count once per row.
    frames_mb = (ref.memory_usage().sum() + cur.memory_usage().sum()) / 2**20
    if engine != "evidently":
        # What the checks import when they first run is imported before the clock, as evidently is below.
        import matplotlib.figure  # noqa: F401
        import scipy.spatial.distance  # noqa: F401
        import scipy.stats  # noqa: F401

        import mlflow_hitl  # noqa: F401
    if engine == "validate":  # the label column, added in place before memory is measured
        ref["label"] = np.random.default_rng(seed).integers(0, 2, len(ref))
    if engine == "evidently":
        from evidently import Report
        from evidently.presets import DataDriftPreset

        names = {
            "K-S p_value": "ks",
            "chi-square p_value": "chisquare",
            "Z-test p_value": "z",
            "Wasserstein distance (normed)": "wasserstein",
            "Jensen-Shannon distance": "jensenshannon",
        }
    else:
        from mlflow_hitl.checks import drift_table
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # reset the peak resident size to the current one
    before_kb = _rss_kb("VmRSS")
    start, start_cpu = time.perf_counter(), time.process_time()
    if engine == "evidently":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            snapshot = Report([DataDriftPreset()], include_tests=True).run(cur, ref)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
        found = snapshot.dict()
        verdicts = {
            m["config"]["column"]: {"stattest": names[m["config"]["method"]], "score": float(m["value"])}
            for m in found["metrics"]
            if m["config"]["type"] == "evidently:metric_v2:ValueDrift"
        }
        for test in found["tests"]:
            if test["id"] == "drift":
                verdicts[test["metric_config"]["params"]["column"]]["drifted"] = test["status"] == "FAIL"
    else:
        if engine == "validate":
            table, seconds, cpu_seconds = _run_validate(ref, cur)
        else:
            table = drift_table(ref, cur)
            seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
        verdicts = {
            row.column: {"stattest": row.stattest, "score": float(row.score), "drifted": bool(row.drifted)}
            for row in table.itertuples()
        }
    peak_kb = _rss_kb("VmHWM")
    run = {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "extra_mb": (peak_kb - before_kb) / 1024,
        "frames_mb": frames_mb,
        "verdicts": verdicts,
        "evidently_imported": "evidently" in sys.modules,
    }
    if engine == "ours":  # cheap for us (few Python objects), so also count every allocation
        tracemalloc.start()
        drift_table(ref, cur)
        run["traced_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return run


def _child(engine: str, args: argparse.Namespace) -> dict:
    command = [
        sys.executable,
        __file__,
        "--engine",
        engine,
        "--rows",
        str(args.rows),
        "--cols",
        str(args.cols),
    ]
    command += ["--seed", str(args.seed)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _report(label: str, run: dict) -> None:
    print(
        f"{label:<10}: {run['seconds']:8.2f} s wall, {run['cpu_seconds']:8.2f} s CPU, "
        f"extra peak RSS {run['extra_mb']:6.0f} MB ({run['extra_mb'] / run['frames_mb']:.2f}x the frames)"
    )
    if "traced_mb" in run:
        print(
            f"{'':<10}  tracemalloc peak {run['traced_mb']:6.0f} MB ({run['traced_mb'] / run['frames_mb']:.2f}x the frames)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in each of the two frames")
    parser.add_argument("--cols", type=int, default=20, help="columns (mix of float, int, string, bool)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-evidently", action="store_true", help="time only our engine")
    parser.add_argument(
        "--engine", choices=["ours", "validate", "evidently"], help=argparse.SUPPRESS
    )  # child process
    args = parser.parse_args()
    if args.engine:
        print(json.dumps(_run_engine(args.engine, args.rows, args.cols, args.seed)))
        return

    _, _, shifted = make_frames(min(args.rows, 10), args.cols, args.seed)
    print(
        f"drift bench: {args.rows:,} rows x {args.cols} columns per frame, seed {args.seed}, {os.cpu_count()} CPUs"
    )
    ours = _child("ours", args)
    print(f"frames: {ours['frames_mb']:.0f} MB (both)")
    _report("ours", ours)
    expected = {c: c in shifted for c in ours["verdicts"]}
    wrong = [c for c, v in ours["verdicts"].items() if v["drifted"] != expected[c]]
    print(
        f"known shifts found: {len(shifted) - sum(c in shifted for c in wrong)}/{len(shifted)}; unexpected verdicts: {wrong or 'none'}"
    )
    end_to_end = _child("validate", args)
    _report("validate", end_to_end)
    same = all(end_to_end["verdicts"][c]["drifted"] == v["drifted"] for c, v in ours["verdicts"].items())
    print(
        f"validate(checks=['drift'], log=False): same verdicts as the engine: {same}; "
        f"evidently imported: {end_to_end['evidently_imported']}"
    )
    if args.skip_evidently:
        return
    theirs = _child("evidently", args)
    _report("evidently", theirs)
    agree = [
        c
        for c, v in ours["verdicts"].items()
        if v["drifted"] == theirs["verdicts"][c]["drifted"]
        and v["stattest"] == theirs["verdicts"][c]["stattest"]
    ]
    gaps = [
        abs(v["score"] - theirs["verdicts"][c]["score"]) / max(abs(theirs["verdicts"][c]["score"]), 1e-12)
        for c, v in ours["verdicts"].items()
    ]
    print(f"verdicts agree: {len(agree)}/{len(ours['verdicts'])} columns (same test, same verdict)")
    print(f"largest relative score difference: {max(gaps):.1e}")
    for label, run in (("engine", ours), ("validate", end_to_end)):
        print(
            f"speed-up of {label} over evidently: {theirs['seconds'] / run['seconds']:.0f}x wall, "
            f"{theirs['cpu_seconds'] / run['cpu_seconds']:.0f}x CPU"
        )


if __name__ == "__main__":
    main()
