"""What people look at for drift: evidently's HTML report and a bar chart of our per-column scores.

evidently renders the report because reviewers know it; it sees a seeded sample (its own engine
takes minutes on a million rows), so a banner at the top says the verdicts that count are ours.
"""

from __future__ import annotations

import html
import warnings
from typing import Any

import numpy as np
import pandas as pd

from ._plots import new_figure, to_png

__all__ = ["chart_png", "report_html"]

_P_FLOOR = 1e-10  # p-values are drawn on a log scale; smaller ones are all "clearly drifted"


def _sample(frame: pd.DataFrame, size: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= size:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), size=size, replace=False))]


def report_html(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: list[Any],
    sample_size: int,
    seed: int,
) -> tuple[bytes | None, dict[str, Any]]:
    """evidently 0.7's ``Report([DataDriftPreset()])`` on ``columns``, at most ``sample_size`` rows per set.

    The rows are sampled before the columns are taken, so a million-row frame is never copied whole.

    Returns the standalone HTML (``None`` when no column has values in both samples) and what the
    report saw: sample sizes, seed, and the columns left out because their sample was empty. evidently is imported here, not at module
    level, so importing the checks stays fast for code that never renders a report.
    """
    from evidently import Report
    from evidently.presets import DataDriftPreset

    rng = np.random.default_rng(seed)
    ref_sample = _sample(reference, sample_size, rng)[columns].rename(columns=str)
    cur_sample = _sample(current, sample_size, rng)[columns].rename(columns=str)
    # evidently raises on a column with no values; a sparse column can sample to nothing.
    empty = [c for c in ref_sample.columns if ref_sample[c].isna().all() or cur_sample[c].isna().all()]
    ref_sample, cur_sample = ref_sample.drop(columns=empty), cur_sample.drop(columns=empty)
    sample = {
        "reference": len(ref_sample),
        "current": len(cur_sample),
        "seed": seed,
        "columns_left_out": empty,
    }
    if ref_sample.shape[1] == 0:
        return None, sample
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # evidently's pandas/plotly deprecation noise
        snapshot = Report([DataDriftPreset()]).run(cur_sample, ref_sample)
        page = snapshot.get_html_str(as_iframe=False)
    banner = (
        '<div style="font-family:sans-serif;padding:8px 16px;background:#fff3cd;border-bottom:1px solid #e0c36a">'
        f"evidently report on a seeded sample of {len(ref_sample):,} reference and {len(cur_sample):,} current "
        f"rows (of {len(reference):,} and {len(current):,}). The drift verdicts logged by mlflow-hitl "
        "come from all rows and can differ from this page."
        + (f" Left out (no values in a sample): {html.escape(', '.join(empty))}." if empty else "")
        + "</div>"
    )
    return page.replace("<body>", "<body>" + banner, 1).encode("utf-8"), sample


def chart_png(table: pd.DataFrame, *, title: str) -> bytes:
    """Horizontal bars of each tested column's score against its threshold, drifted ones in red.

    Read every bar the same way: a bar that reaches the threshold mark means drift. Distances
    grow from 0 to the right; p-values grow from 1 to the left, on a log scale, so the smallest
    p-value (the strongest drift) gets the longest bar instead of an invisible one.
    """
    tested = table[table["stattest"].notna()]
    families = [
        ("p-value tests (bar from 1 down to p)", tested[tested["stattest"].isin(["ks", "chisquare", "z"])]),
        ("distances", tested[tested["stattest"].isin(["wasserstein", "jensenshannon"])]),
    ]
    families = [(label, rows) for label, rows in families if len(rows)]
    n_bars = sum(len(rows) for _, rows in families)
    fig = new_figure(width=7.0, height=min(1.5 + 0.28 * n_bars + 0.6 * len(families), 60.0))
    fig.suptitle(f"{title}\n(a bar reaching its threshold mark means drift)")
    if not families:
        ax = fig.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, "no column could be tested", ha="center", va="center")
        return to_png(fig)
    axes = fig.subplots(len(families), 1, squeeze=False, height_ratios=[len(r) + 1 for _, r in families])
    for ax, (label, rows) in zip(axes[:, 0], families, strict=True):
        y = np.arange(len(rows))
        scores = rows["score"].to_numpy(dtype=float)
        colours = np.where(rows["drifted"].to_numpy(dtype=bool), "tab:red", "tab:grey")
        if label.startswith("p-value"):
            scores = np.clip(scores, _P_FLOOR, 1.0)
            ax.barh(y, 1.0 - scores, left=scores, color=colours)
            ax.set_xscale("log")
            ax.set_xlim(2.0, _P_FLOOR / 2)  # reversed: smaller p further right
            ax.set_xlabel(f"p-value (below {_P_FLOOR:g} drawn at {_P_FLOOR:g})")
        else:
            ax.barh(y, scores, color=colours)
            ax.set_xlabel("distance")
        ax.scatter(rows["threshold"], y, marker="|", s=200, color="black", label="threshold", zorder=3)
        ax.set_yticks(y, [f"{c} ({t})" for c, t in zip(rows["column"], rows["stattest"], strict=True)])
        ax.invert_yaxis()
        ax.set_title(label, fontsize="medium")
        ax.legend(loc="lower right", fontsize="small")
    return to_png(fig)
