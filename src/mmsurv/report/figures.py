"""Report figures: the C-index comparison (forest) plot."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mmsurv.io import atomic_path  # noqa: E402

__all__ = ["plot_c_index_forest"]


def plot_c_index_forest(summary: pd.DataFrame, path: str | Path) -> None:
    """Test-split C-index with 95% interval per experiment, one panel per endpoint.

    ``summary`` has columns experiment, endpoint, c_index, c_index_lo, c_index_hi and
    c_index_oracle (NaN without a truth file); the oracle is drawn as a grey diamond.
    """
    endpoints = sorted(summary["endpoint"].unique())
    n_exp = summary["experiment"].nunique()
    fig, axes = plt.subplots(
        1, len(endpoints), figsize=(5.0 * len(endpoints), 1.0 + 0.45 * n_exp), squeeze=False
    )
    for ax, endpoint in zip(axes[0], endpoints, strict=True):
        rows = summary[summary["endpoint"] == endpoint].reset_index(drop=True)
        y = np.arange(len(rows))[::-1]
        err = np.vstack(
            [rows["c_index"] - rows["c_index_lo"], rows["c_index_hi"] - rows["c_index"]]
        )
        ax.errorbar(
            rows["c_index"],
            y,
            xerr=np.nan_to_num(err),
            fmt="o",
            color="tab:blue",
            capsize=3,
            label="model (95% CI)",
        )
        if rows["c_index_oracle"].notna().any():
            ax.plot(rows["c_index_oracle"], y, "D", color="grey", label="oracle (true risk)")
        ax.axvline(0.5, color="black", lw=0.8, ls="--")
        ax.set_yticks(y, rows["experiment"])
        ax.set_xlim(0.3, 1.0)
        ax.set_xlabel("Harrell's C (test split)")
        ax.set_title(endpoint)
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
