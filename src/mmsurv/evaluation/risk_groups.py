"""Risk groups with a training-fitted cut, log-rank test and Kaplan-Meier plots (lifelines)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from lifelines import KaplanMeierFitter  # noqa: E402
from lifelines.plotting import add_at_risk_counts  # noqa: E402
from lifelines.statistics import logrank_test  # noqa: E402

from mmsurv.io import atomic_path  # noqa: E402

__all__ = ["assign_risk_groups", "logrank_p", "plot_km"]


def assign_risk_groups(predictions: pd.DataFrame, quantile: float) -> pd.DataFrame:
    """Add ``group`` (``high``/``low``): risk above the ``quantile`` of that fold's TRAINING risk.

    The cut is computed per (endpoint, fold) on the training rows only and applied unchanged
    to validation and test rows.
    """
    out = predictions.copy()
    out["group"] = "low"
    for _, part in out.groupby(["endpoint", "fold"]):
        cut = np.quantile(part.loc[part["split"] == "train", "risk"], quantile)
        out.loc[part.index[part["risk"] > cut], "group"] = "high"
    return out


def logrank_p(rows: pd.DataFrame) -> float:
    """Log-rank p-value between the high and low groups of ``rows`` (NaN if one is empty)."""
    high, low = rows[rows["group"] == "high"], rows[rows["group"] == "low"]
    if high.empty or low.empty or rows["event"].sum() == 0:
        return float("nan")
    res = logrank_test(high["time"], low["time"], high["event"], low["event"])
    return float(res.p_value)


def plot_km(grouped: pd.DataFrame, title: str, path: str | Path, split: str = "test") -> None:
    """Kaplan-Meier curves of the risk groups on ``split`` (folds pooled), one panel per endpoint.

    ``grouped`` are predictions with a ``group`` column (see :func:`assign_risk_groups`).
    Numbers at risk are drawn under each panel; the log-rank p-value is in the panel title.
    """
    endpoints = sorted(grouped["endpoint"].unique())
    fig, axes = plt.subplots(1, len(endpoints), figsize=(5.5 * len(endpoints), 4.8), squeeze=False)
    for ax, endpoint in zip(axes[0], endpoints, strict=True):
        rows = grouped[(grouped["endpoint"] == endpoint) & (grouped["split"] == split)]
        fitters = []
        for group, colour in (("low", "tab:blue"), ("high", "tab:red")):
            g = rows[rows["group"] == group]
            if g.empty:
                continue
            kmf = KaplanMeierFitter(label=f"{group} risk (n={len(g)})")
            kmf.fit(g["time"] / 365.25, g["event"])
            kmf.plot_survival_function(ax=ax, ci_show=True, color=colour)
            fitters.append(kmf)
        if fitters:
            add_at_risk_counts(*fitters, ax=ax, rows_to_show=["At risk"])
        p = logrank_p(rows)
        ax.set_title(f"{endpoint}: {split} split, log-rank p = {p:.3g}")
        ax.set_xlabel("years")
        ax.set_ylabel("survival probability")
        ax.set_ylim(0, 1.02)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
