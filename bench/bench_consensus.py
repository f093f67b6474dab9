"""Time majority vote, Dawid-Skene and the agreement statistics on a large simulated batch.

    /work/main/.venv/bin/python bench/bench_consensus.py --items 100000 --raters-per-item 3

Each item has a true class (3 classes, shares 0.5 / 0.3 / 0.2) and is labelled by
``--raters-per-item`` distinct raters drawn from a pool of ``--raters``; a rater is right with
their own accuracy (0.55 to 0.95) and otherwise picks one of the wrong classes at random.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from mlflow_hitl.review._agreement import agreement
from mlflow_hitl.review._consensus import dawid_skene, majority_vote


def simulate(
    rng: np.random.Generator, items: int, per_item: int, pool: int
) -> tuple[pd.DataFrame, np.ndarray]:
    k = 3
    truth = rng.choice(k, size=items, p=[0.5, 0.3, 0.2])
    raters = np.argsort(rng.random((items, pool)), axis=1)[:, :per_item].ravel()  # distinct per item
    item = np.repeat(np.arange(items), per_item)
    accuracy = rng.uniform(0.55, 0.95, size=pool)
    true = truth[item]
    right = rng.random(len(item)) < accuracy[raters]
    label = np.where(right, true, (true + rng.integers(1, k, size=len(item))) % k)
    frame = pd.DataFrame({"item": item, "rater": raters, "label": np.array(["a", "b", "c"])[label]})
    return frame, np.array(["a", "b", "c"])[truth]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000, help="items in the batch")
    parser.add_argument("--raters-per-item", type=int, default=3, help="distinct raters labelling each item")
    parser.add_argument("--raters", type=int, default=50, help="size of the rater pool")
    args = parser.parse_args()

    frame, truth = simulate(np.random.default_rng(0), args.items, args.raters_per_item, args.raters)
    classes = ["a", "b", "c"]
    print(
        f"{len(frame)} annotations: {args.items} items x {args.raters_per_item} raters from a pool of {args.raters}"
    )

    def timed(label, fn):
        start = time.perf_counter()
        out = fn()
        print(f"{label:<18} {time.perf_counter() - start:7.3f} s")
        return out

    mv = timed("majority vote", lambda: majority_vote(frame, classes=classes))
    ds = timed("dawid-skene", lambda: dawid_skene(frame, classes=classes))
    timed("dawid-skene x100", lambda: dawid_skene(frame, classes=classes, tol=0))  # worst case: max_iter
    timed("agreement", lambda: agreement(frame, classes=classes))
    print(f"dawid-skene: {ds.iterations} iterations, converged={ds.converged}")
    for result in (mv, ds):
        print(
            f"{result.method:<12} accuracy vs truth {np.mean(result.labels['label'].to_numpy() == truth):.4f}"
        )


if __name__ == "__main__":
    main()
