"""Time the generator check on large synthetic-vs-real frames, component by component.

    /work/main/.venv/bin/python bench/bench_generator.py --rows 100000 --cols 20

Both frames are drawn from one correlated Gaussian model (a quarter of the columns categorical,
cardinalities 3 to 200, 2% missing cells); the "synthetic" frame is a little shifted, a little too
clean, and holds 0.5% copies of real rows, so every component does real work.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from mlflow_hitl.checks import _generator as g
from mlflow_hitl.checks import generator_check
from mlflow_hitl.config import GeneratorConfig


def make_frame(rng: np.random.Generator, rows: int, cols: int, *, shift: float, noise: float) -> pd.DataFrame:
    n_cat = max(1, cols // 4)
    latent = rng.normal(size=(rows, 5))
    mixing = np.random.default_rng(1).normal(size=(5, cols))  # same structure in both frames
    values = latent @ mixing + noise * rng.normal(size=(rows, cols)) + shift
    frame = pd.DataFrame({f"x{j}": values[:, j] for j in range(cols - n_cat)})
    for k, j in enumerate(range(cols - n_cat, cols)):
        levels = [3, 10, 50, 200][k % 4]
        ranks = pd.Series(values[:, j]).rank(pct=True).to_numpy()
        frame[f"c{k}"] = pd.Series(np.minimum((ranks * levels).astype(int), levels - 1)).map(
            lambda i: f"L{i}"
        )
    holes = rng.random(frame.shape) < 0.02
    return frame.mask(holes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows in each of synthetic and real")
    parser.add_argument("--cols", type=int, default=20, help="columns (a quarter categorical)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    real = make_frame(rng, args.rows, args.cols, shift=0.0, noise=1.0)
    synthetic = make_frame(rng, args.rows, args.cols, shift=0.1, noise=0.6)
    copies = rng.choice(args.rows, args.rows // 200, replace=False)
    synthetic.iloc[copies] = real.iloc[copies].to_numpy()
    cfg = GeneratorConfig()
    print(
        f"synthetic {synthetic.shape}, real {real.shape}, max_rows {cfg.max_rows}, max_dcr_rows {cfg.max_dcr_rows}"
    )

    timings: dict[str, tuple[float, float]] = {}

    def timed(label, fn, *a):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn(*a)
        timings[label] = (time.perf_counter() - wall, time.process_time() - cpu)
        return out

    syn, rea = timed("validate", g._check_inputs, synthetic, real, None)
    data = timed("encode", g._encode, syn, rea)
    timed("fidelity", g._fidelity_table, data)
    timed("correlation", g._correlation_similarity, data)
    timed("c2st", g._c2st, data, cfg, np.random.default_rng(cfg.seed))
    timed("exact copies", g._exact_copies, data)
    timed("dcr", g._distances_to_closest_record, data, cfg.max_dcr_rows, np.random.default_rng(cfg.seed))
    result = timed("total (generator_check)", generator_check, synthetic, real)
    print(f"{'component':<24} {'wall s':>7} {'CPU s':>7}  (CPU counts every thread)")
    for label, (wall, cpu) in timings.items():
        print(f"{label:<24} {wall:7.2f} {cpu:7.2f}")
    print(result.summary)
    print({k: round(v, 4) for k, v in result.metrics.items() if "." not in k})


if __name__ == "__main__":
    main()
