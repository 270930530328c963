"""Accuracy against test-time compute: one panel per task, one line per evaluated model, the 95%
bootstrap interval as a band, log-scaled x. Also the per-run training curve.

    harness plot [--runs DIR] [--run RUN_DIR ...] [--out DIR]

writes `accuracy_vs_thinking_tokens.{png,svg}` and `accuracy_vs_flops.{png,svg}`. The x values are
the mean thinking tokens spent per answer at each setting (what the model spent, not the budget it was
allowed; a vote over N samples spent the N samples' sum) and the mean estimated inference FLOPs per answer
(`harness/models/flops.py`).
"""
from __future__ import annotations

import math
from pathlib import Path

AXES = {
    "tokens": ("thinking_tokens_mean", "mean thinking tokens per answer (log scale; a vote: its N samples', a search: all its candidates')", "accuracy_vs_thinking_tokens"),
    "flops": ("flops_mean", "mean inference FLOPs per answer, estimated (log scale)", "accuracy_vs_flops"),
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


ROLE_STYLE = {"trained": ("-", "o"), "base": ("--", "s"), "eval": (":", "^")}
OTHER_ROLE = ("-.", "D")  # a method's own evaluation of its run (e.g. its checkpoints on one line)


def _point_label(row) -> str:
    """The knob value a point stands for, written beside it (`16`, `w2`, and each method knob's own form)."""
    from rzoo.harness.generation import knobs

    knob = knobs.find(row["knob"]) or knobs.get("budget")
    value = row.get(knob.name)
    if value is None or value != value:  # None or NaN: a point without its knob's value
        return str(row["knob"])
    return knob.point_label(knob.type(value) if knob.type is int else value)


def _in_knob_order(line):
    """A curve over checkpoints runs in the order of its knob's values, not by x."""
    from rzoo.harness.generation import knobs

    knob = knobs.find(line["knob"].iloc[0])
    if knob is not None and knob.kind == knobs.CHECKPOINT and (line["knob"] == knob.name).all():
        return line.sort_values(knob.name)
    return line


def _legend_title() -> str:
    from rzoo.harness.generation import knobs

    import textwrap

    labels = ", ".join(f"{k.point.strip() or k.symbol} = {k.caption}" for k in knobs.all_knobs() if k.point)
    return textwrap.fill(f"model (run start, UTC); point labels: budget, {labels}", 60)


def _draw_references(ax, refs: list[dict], column: str) -> None:
    """Published results as marked points (stars, no line): where a response length is reported."""
    for r in refs:
        x = r.get(column)
        if x is None or not x > 0:
            continue
        ax.scatter([x], [r["accuracy"]], marker="*", s=90, color="black", zorder=5)
        ax.annotate(_escape(f"{short_name(r['model'])} (reported)"), (x, r["accuracy"]), textcoords="offset points",
                    xytext=(4, -10), fontsize=7, color="black")


def short_name(model: str) -> str:
    return str(model).rsplit("/", 1)[-1]


def plot_curves(points, out_dir: Path | str, axis: str = "tokens", references: list[dict] | None = None) -> list[Path]:
    """Draw `curves_figure` and write it (PNG + SVG) to `out_dir`; returns the files written."""
    fig = curves_figure(points, axis, references)
    return _save(fig, Path(out_dir) / AXES[axis][2])


def curves_figure(points, axis: str = "tokens", references: list[dict] | None = None):
    """One matplotlib figure from `collect()`'s table (what `harness plot` saves, `Results.plot()` returns).
    `axis`: "tokens" (mean thinking tokens) or "flops" (mean estimated FLOPs).

    One line per curve (an evaluated model and what it holds fixed), each point labelled with its knob
    value (the budget, `w2` for two Wait extensions, `α0.5`, `r8`) and its own 95% interval as an error
    bar. Base models are dashed with square markers, trained ones solid with circles; curves in one panel
    are nudged apart on the log x axis by a few percent so that coinciding curves stay visible."""
    import numpy as np
    import seaborn as sns

    if axis not in AXES:
        raise ValueError(f"axis must be one of {sorted(AXES)}, got {axis!r}")
    column, xlabel, _ = AXES[axis]
    data = points.dropna(subset=[column, "accuracy"])
    data = data[np.isfinite(data[column].astype(float)) & (data[column].astype(float) > 0)
                & np.isfinite(data["accuracy"].astype(float))]
    data = data.sort_values(["task", "curve", column])  # log axis: positive, finite x only
    if data.empty:
        raise ValueError(f"nothing to plot: no results with a positive {column}")
    tasks = sorted(data["task"].unique())
    curves = sorted(data["curve"].unique())
    colours = dict(zip(curves, sns.color_palette("colorblind" if len(curves) <= 10 else "husl", len(curves))))
    ncols = min(3, len(tasks))
    nrows = math.ceil(len(tasks) / ncols)
    sns.set_theme(style="whitegrid", context="notebook")
    fig = _figure(4.8 * ncols + 3.2, 3.8 * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        part = data[data["task"] == task]
        names = sorted(part["curve"].unique())
        for j, (curve, line) in enumerate((c, part[part["curve"] == c]) for c in names):
            line = _in_knob_order(line)
            nudge = 1.0 + 0.04 * (j - (len(names) - 1) / 2)
            x = line[column].astype(float).to_numpy() * nudge
            y = line["accuracy"].astype(float).to_numpy()
            lo = line["ci_lo"].astype(float).fillna(line["accuracy"]).to_numpy()
            hi = line["ci_hi"].astype(float).fillna(line["accuracy"]).to_numpy()
            style, marker = ROLE_STYLE.get(line["role"].iloc[0], OTHER_ROLE)
            colour = colours[curve]
            ax.errorbar(x, y, yerr=[np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)], color=(*colour, 0.9),
                        linestyle=style, marker=marker, markersize=5, capsize=2.5, linewidth=1.4, elinewidth=0.8)
            # points that coincide (a budget the model never reaches) share one label, "6-16"
            groups: dict[tuple[float, float], list[str]] = {}
            for xi, yi, (_, row) in zip(x, y, line.iterrows()):
                groups.setdefault((round(float(xi), 6), round(float(yi), 6)), []).append(_point_label(row))
            for (xi, yi), labels in groups.items():
                text = labels[0] if len(labels) == 1 else f"{labels[0]}-{labels[-1]}"
                ax.annotate(text, (xi, yi), textcoords="offset points", xytext=(3, 4), fontsize=7, color=colour)
        refs = [r for r in references or [] if r["task"] == task and (r.get(column) or 0) > 0]
        _draw_references(ax, refs, column)
        xs = part[column].astype(float)
        if refs:
            import pandas as pd

            xs = pd.concat([xs, pd.Series([float(r[column]) for r in refs])])
        _log_x(ax, xs, engineering=axis == "flops")
        ax.set_ylim(-0.04, 1.06)
        n = sorted({int(v) for v in part["n_problems"].dropna()})
        total = sorted({int(v) for v in part["n_problems_total"].dropna()})
        of = f" of {'/'.join(map(str, total))}" if total and total != n else ""
        ax.set_title(_escape(f"{task} (n = {'/'.join(map(str, n))}{of} problems)"), fontsize=11)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_ylabel("accuracy (avg@k), 95% CI", fontsize=9)
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    from matplotlib.lines import Line2D

    roles = {c: data[data["curve"] == c]["role"].iloc[0] for c in curves}
    handles = [Line2D([0], [0], color=colours[c], linestyle=ROLE_STYLE.get(roles[c], OTHER_ROLE)[0],
                      marker=ROLE_STYLE.get(roles[c], OTHER_ROLE)[1], label=_escape(c)) for c in curves]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=9,
               title=_legend_title())
    fig.tight_layout()
    return fig


def _escape(text: str) -> str:
    """Text for matplotlib shown as written: `$` not read as mathtext (an unpaired or odd one made the
    whole figure fail), and a leading `_` kept (matplotlib hides legend entries whose label starts
    with one)."""
    text = str(text).replace("$", r"\$")
    return " " + text if text.startswith("_") else text


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
                       ("format_mean", "format reward"), ("loss", "loss (SFT)")):
        if key == "loss" and "reward_mean" in log[0]:
            continue
        if all(key in row for row in log):
            left.plot(steps, [row[key] for row in log], marker="o", markersize=3, label=label)
    left.set_xlabel("optimiser step")
    left.set_ylabel("mean reward per rollout" if "reward_mean" in log[0] else "training loss")
    left.legend(fontsize=8, frameon=False)
    lengths = (("completion_tokens_mean", "completion"), ("thinking_tokens_mean", "thinking"),
               ("completion_tokens", "completion tokens per step (SFT)"))
    # a preference log (DPO) has no lengths per step: its margin and preference accuracy instead
    preferences = (("reward_margin", "reward margin (chosen - rejected)"),
                   ("preference_accuracy", "preference accuracy"))
    for series, ylabel in ((lengths, "mean tokens per rollout"), (preferences, "DPO, per step")):
        drawn = [(key, label) for key, label in series if all(key in row for row in log)]
        for key, label in drawn:
            right.plot(steps, [row[key] for row in log], marker="o", markersize=3, label=label)
        if drawn:
            right.set_ylabel(ylabel)
            right.legend(fontsize=8, frameon=False)
            break
    else:
        right.set_axis_off()
    right.set_xlabel("optimiser step")
    fig.tight_layout()
    return _save(fig, stem)
