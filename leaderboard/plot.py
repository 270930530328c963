"""Accuracy against test-time compute: one panel per task, one line per evaluated model, the 95%
bootstrap interval as a band, log-scaled x. Also the per-run training curve.

    harness plot [--runs DIR] [--run RUN_DIR ...] [--out DIR]

writes `accuracy_vs_thinking_tokens.{png,svg}` and `accuracy_vs_flops.{png,svg}`. The x values are
the mean thinking tokens per sample at each budget (what the model spent, not the budget it was
allowed) and the mean estimated inference FLOPs per sample (`harness/flops.py`).
"""
from __future__ import annotations

import math
from pathlib import Path

AXES = {
    "tokens": ("thinking_tokens_mean", "mean thinking tokens per sample (log scale)", "accuracy_vs_thinking_tokens"),
    "flops": ("flops_mean", "mean inference FLOPs per sample, estimated (log scale)", "accuracy_vs_flops"),
}
FORMATS = ("png", "svg")


def _figure(width: float, height: float):
    # a bare Figure with an Agg canvas: no pyplot global state, no display needed
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in FORMATS:
        path = stem.with_suffix(f".{fmt}")
        tmp = path.with_name(f".{path.name}.tmp")
        # no creation date in the file, so rebuilding an unchanged board gives the same bytes
        meta = {"Date": None} if fmt == "svg" else {"Software": None}
        fig.savefig(tmp, format=fmt, bbox_inches="tight", metadata=meta)
        tmp.replace(path)
        out.append(path)
    return out


def _log_x(ax, values, engineering: bool) -> None:
    """Log x with readable ticks: 1-2-5 steps, labelled plainly ("32", "40G"), and at least a 4x range
    so a curve whose points sit close together still gets labelled ticks around it."""
    from matplotlib.ticker import EngFormatter, FuncFormatter, LogLocator, NullFormatter

    lo, hi = float(values.min()), float(values.max())
    centre, half = math.sqrt(lo * hi), max(2.0, math.sqrt(hi / lo) * 1.15)
    ax.set_xscale("log")
    ax.set_xlim(centre / half, centre * half)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(EngFormatter(sep="") if engineering else FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_curves(points, out_dir: Path | str, axis: str = "tokens") -> list[Path]:
    """Draw one figure (PNG + SVG) from `collect()`'s table; returns the files written.
    `axis`: "tokens" (mean thinking tokens) or "flops" (mean estimated FLOPs)."""
    import seaborn as sns

    if axis not in AXES:
        raise ValueError(f"axis must be one of {sorted(AXES)}, got {axis!r}")
    column, xlabel, stem = AXES[axis]
    data = points.dropna(subset=[column])
    data = data[data[column] > 0].sort_values(["task", "curve", column])  # log axis: positive x only
    if data.empty:
        raise ValueError(f"nothing to plot: no results with a positive {column}")
    tasks = sorted(data["task"].unique())
    curves = sorted(data["curve"].unique())
    colours = dict(zip(curves, sns.color_palette("colorblind" if len(curves) <= 10 else "husl", len(curves))))
    ncols = min(3, len(tasks))
    nrows = math.ceil(len(tasks) / ncols)
    sns.set_theme(style="whitegrid", context="notebook")
    fig = _figure(4.6 * ncols + 2.8, 3.6 * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        part = data[data["task"] == task]
        sns.lineplot(part, x=column, y="accuracy", hue="curve", palette=colours, marker="o", errorbar=None,
                     ax=ax, legend=False)
        for curve, line in part.groupby("curve"):
            lo, hi = line["ci_lo"].astype(float), line["ci_hi"].astype(float)
            if len(line) > 1:
                ax.fill_between(line[column], lo, hi, color=colours[curve], alpha=0.15, linewidth=0)
            else:  # a single budget: an error bar, a band needs two points
                y = float(line["accuracy"].iloc[0])
                ax.errorbar(line[column], [y], yerr=[[y - lo.iloc[0]], [hi.iloc[0] - y]], color=colours[curve],
                            capsize=3)
        _log_x(ax, part[column], engineering=axis == "flops")
        ax.set_ylim(-0.02, 1.02)
        sizes = sorted({int(n) for n in part["n_problems"].dropna()})
        ax.set_title(f"{task} (n={'/'.join(map(str, sizes))} problems)", fontsize=11)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_ylabel("accuracy (avg@k), 95% CI band", fontsize=9)
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    from matplotlib.lines import Line2D

    handles = [Line2D([0], [0], color=colours[c], marker="o", label=c) for c in curves]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=9,
               title="model (run start, UTC)")
    fig.tight_layout()
    return _save(fig, Path(out_dir) / stem)


def plot_training(log: list[dict], stem: Path) -> list[Path]:
    """Reward (and its accuracy / format parts) and mean completion length per step, from train.jsonl."""
    import seaborn as sns

    if not log:
        raise ValueError("empty training log")
    sns.set_theme(style="whitegrid", context="notebook")
    fig = _figure(9.5, 3.2)
    left, right = fig.subplots(1, 2)
    steps = [row["step"] for row in log]
    for key, label in (("reward_mean", "reward"), ("accuracy_mean", "accuracy reward"),
                       ("format_mean", "format reward")):
        if all(key in row for row in log):
            left.plot(steps, [row[key] for row in log], marker="o", markersize=3, label=label)
    left.set_xlabel("optimiser step")
    left.set_ylabel("mean reward per rollout")
    left.legend(fontsize=8, frameon=False)
    for key, label in (("completion_tokens_mean", "completion"), ("thinking_tokens_mean", "thinking")):
        if all(key in row for row in log):
            right.plot(steps, [row[key] for row in log], marker="o", markersize=3, label=label)
    right.set_xlabel("optimiser step")
    right.set_ylabel("mean tokens per rollout")
    right.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return _save(fig, stem)
