"""The zoo page's three figures (`zoo_page.py`), each returned with one sentence written from its numbers."""
from __future__ import annotations

from pathlib import Path


def _results(run: str | Path, folder: str) -> dict | None:
    from .collect import load_results

    found = sorted((Path(run) / folder).glob("*/results.json"))
    return load_results(found[0]) if found else None


def _done(state: dict, command: str = "train+eval") -> dict[str, dict]:
    return {n: e for n, e in state.items() if e.get("state") == "done" and e.get("command") == command and e.get("run")}


def _in(state: dict, figure: str, command: str = "train+eval") -> dict[str, dict]:
    """The finished recipes whose declaration puts their run in `figure` (`harness.method.FIGURES`, in zoo.json)."""
    return {n: e for n, e in _done(state, command).items() if figure in e.get("figures", ())}


def _top(rows: list[dict]) -> list[dict]:
    top = max(r["budget"] for r in rows)
    return [r for r in rows if r["budget"] == top and not r.get("waits")]


def _figure(ncols: int, nrows: int = 1, width: float = 3.6, height: float = 3.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), dpi=130, squeeze=False)
    return plt, fig, axes


def _save(plt, fig, assets: Path, stem: str) -> list[Path]:
    assets.mkdir(parents=True, exist_ok=True)
    files = [assets / f"{stem}.svg", assets / f"{stem}.png"]
    fig.tight_layout()
    for f in files:
        fig.savefig(f, bbox_inches="tight")
    plt.close(fig)
    return files


def _curve(rows: list[dict]) -> tuple[str, list[dict]]:
    """The knob a trained evaluation sweeps and its rows in order: over budgets, or over its own knob at the
    largest budget."""
    knob = rows[0].get("knob") or "budget"
    if knob in ("budget", "waits"):
        return "budget", sorted([r for r in rows if not r.get("waits")], key=lambda r: r["budget"])
    return knob, sorted(_top(rows), key=lambda r: r[knob])


def _x_axis(knob: str, rows: list[dict]):
    """(x of a row, axis label, log base or None): thinking tokens, or, for a model that writes none (under half a
    token on average), the values of the knob its curve sweeps, on a log axis where they span 8x or more."""
    if knob == "budget" or max(r["thinking_tokens_mean"] for r in rows) >= 0.5:
        return (lambda r: r["thinking_tokens_mean"]), "mean thinking tokens", None
    values = [r[knob] for r in rows if isinstance(r.get(knob), (int, float)) and r[knob] > 0]
    base = 2 if values and max(values) >= 8 * min(values) else None
    return (lambda r: r[knob]), _caption(knob), base


def _before_after_panel(ax, name: str, trained: list[dict], base: list[dict]) -> tuple:
    knob, rows = _curve(trained)
    _, base_rows = _curve(base)
    x_of, xlabel, log = _x_axis(knob, rows)
    ax.plot([x_of(r) for r in base_rows], [r["accuracy"] for r in base_rows], "s--", color="grey", label="base")
    ax.plot([x_of(r) for r in rows], [r["accuracy"] for r in rows], "o-", label="trained")
    if log:
        ax.set_xscale("log", base=log)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_title(f"{name}" + (f" (over {knob})" if knob != "budget" and xlabel == "mean thinking tokens" else ""),
                 fontsize=9)
    ax.set_ylim(-0.04, 1.06)
    ax.grid(color="0.9")
    ax.legend(fontsize=7)
    b, t = _top(base)[0], max(_top(trained), key=lambda r: r["accuracy"])
    return t["accuracy"] - b["accuracy"], t["thinking_tokens_mean"] / max(b["thinking_tokens_mean"], 1e-9), b, t


def before_after(state: dict, assets: Path) -> tuple[list[Path], str]:
    done = {n: e for n, e in _done(state).items() if _results(e["run"], "eval") and _results(e["run"], "eval_base")}
    if not done:
        return [], ""
    ncols = min(4, len(done))
    nrows = -(-len(done) // ncols)
    plt, fig, axes = _figure(ncols, nrows)
    gains = {name: _before_after_panel(ax, name, _results(entry["run"], "eval")["results"],
                                       _results(entry["run"], "eval_base")["results"])
             for ax, (name, entry) in zip(axes.flat, done.items())}
    for ax in list(axes.flat)[len(done):]:
        ax.set_visible(False)
    files = _save(plt, fig, assets, "zoo-before-after")
    best = max(gains, key=lambda n: gains[n][0])
    # "thinks the least" among models that think: one that writes no thinking tokens (under half a token) is off it
    cut = min((n for n in gains if gains[n][2]["thinking_tokens_mean"] > 0 and gains[n][3]["thinking_tokens_mean"] >= 0.5
               and gains[n][0] >= -0.05),
              key=lambda n: gains[n][1], default=None)
    sentence = (f"At the largest budget, {best} gains the most accuracy ({gains[best][2]['accuracy']:.3f} → "
                f"{gains[best][3]['accuracy']:.3f})")
    if cut is not None:
        sentence += (f"; {cut} thinks the least against its base ({gains[cut][1]:.2f}x its tokens at accuracy "
                     f"{gains[cut][3]['accuracy']:.3f} vs {gains[cut][2]['accuracy']:.3f})")
    return files, sentence + "."


def frontier(state: dict, assets: Path) -> tuple[list[Path], str]:
    from rzoo.harness.method import FRONTIER, LONG_BASE

    from .frontier import MARKERS, draw, points, reading

    entries = _in(state, FRONTIER)
    if not entries:
        return [], ""
    table, long, markers = {}, None, {}
    methods = list(dict.fromkeys(e.get("method") for e in entries.values()))  # one marker per method
    for name, entry in entries.items():
        run = Path(entry["run"])
        table[name] = points(run)
        markers[name] = MARKERS[methods.index(entry.get("method")) % len(MARKERS)]
        if long is None and (run / "eval_base").is_dir() and LONG_BASE in entry.get("figures", ()):
            long = points(run, "eval_base")[0]
    if long is None:
        return [], ""
    return draw(table, long, assets, "zoo-frontier", markers), reading(table, long)


def test_time(state: dict, assets: Path) -> tuple[list[Path], str]:
    """Budget forcing and Waits (s1's trained model), s1's controls (testbed:conditional), latent iterations: the
    recipes whose declarations name these figures (`harness.method`)."""
    from rzoo.harness.method import BUDGET_CURVES, CONTROLS, ITERATIONS

    lines = {}  # label -> rows (accuracy, thinking_tokens_mean, flops_mean)
    caps = None  # the label of the first budget-forcing curve (the written chain the recurrent model is held to)
    for name, entry in _in(state, BUDGET_CURVES).items():
        rows = _results(entry["run"], "eval")["results"]
        lines[f"{name}: budget forcing (caps)"] = sorted([r for r in rows if not r.get("waits")],
                                                         key=lambda r: r["budget"])
        caps = caps or f"{name}: budget forcing (caps)"
        waits = [r for r in rows if r.get("waits")]
        if waits:
            lines[f"{name}: Wait extensions"] = sorted(waits, key=lambda r: r["waits"])
    controls = next(iter(_in(state, CONTROLS, "eval").values()), None)
    curves = []
    if controls:
        data = _results(controls["run"], "eval")
        from rzoo.harness.generation import knobs

        by_curve: dict[tuple, list[dict]] = {}
        for r in data["results"]:
            by_curve.setdefault(knobs.curve_key(r), []).append(r)
        curves = data.get("curves", [])
        for c, rows in zip(curves, by_curve.values()):
            name = c["title"] + (" + BF" if "BF=True" in c["series"] else "")
            lines[f"conditional model: {name}"] = sorted(rows, key=lambda r: r["thinking_tokens_mean"])
    iterations = None  # the recurrent model's curve over the knob it sweeps at the largest budget
    recurrent = next(iter(_in(state, ITERATIONS).items()), None)
    if recurrent:
        iterations = _curve(_results(recurrent[1]["run"], "eval")["results"])
    if not lines and iterations is None:
        return [], ""
    plt, fig, axes = _figure(2, 1, width=5.6, height=4.0)
    tok, flo = axes[0]
    for label, rows in lines.items():
        style = "--" if "+ BF" in label else "-"
        tok.plot([r["thinking_tokens_mean"] for r in rows], [r["accuracy"] for r in rows], marker="o", ls=style,
                 label=label, markersize=4)
        flo.plot([r["flops_mean"] for r in rows], [r["accuracy"] for r in rows], marker="o", ls=style, markersize=4)
    if iterations:
        knob, rows = iterations
        flo.plot([r["flops_mean"] for r in rows], [r["accuracy"] for r in rows], "k^-",
                 label=f"{recurrent[0]}: {_caption(knob)}")
    tok.set_xlabel("mean thinking tokens (linear)")
    flo.set_xlabel("estimated FLOPs per sample (log)")
    flo.set_xscale("log")
    for ax in (tok, flo):
        ax.set_ylabel("accuracy")
        ax.set_ylim(-0.04, 1.06)
        ax.grid(color="0.9")
    tok.set_title("thinking tokens (the recurrent model writes none)", fontsize=9)
    flo.set_title("estimated FLOPs: every knob", fontsize=9)
    handles, labels = tok.get_legend_handles_labels()
    h2, l2 = flo.get_legend_handles_labels()
    fig.legend(handles + h2, labels + l2, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=7,
               frameon=False)
    files = _save(plt, fig, assets, "zoo-test-time")
    parts = []
    scored = [c for c in curves if c.get("scaling") is not None]
    if scored:
        best = max(scored, key=lambda c: c["scaling"])
        worst = min(scored, key=lambda c: c["control"] if c["control"] is not None else 1.0)
        text = (f"among s1's controls on the conditional model, {best['title']}"
                f"{' (' + best['series'] + ')' if best['series'] else ''} scales best "
                f"({best['scaling']:+.0f} accuracy points per 1,000 thinking tokens)")
        if worst["control"] is not None and worst["control"] < 1:
            text += (f" and {worst['title']}{' (' + worst['series'] + ')' if worst['series'] else ''} keeps to its "
                     f"bound least (Control {worst['control']:.0%})")
        parts.append(text)
    if iterations and caps:
        knob, rows = iterations
        lat = max(rows, key=lambda r: r["accuracy"])
        at = _label(knob, lat.get(knob))
        cot = [r for r in lines[caps] if r["accuracy"] >= lat["accuracy"]]
        if cot:
            c = min(cot, key=lambda r: r["flops_mean"])
            parts.append(f"the recurrent model's best ({recurrent[0]}), {lat['accuracy']:.3f} at {at} "
                         f"({lat['flops_mean']:.2g} FLOPs), is matched by {caps.split(':')[0]}'s written chain at "
                         f"{c['flops_mean']:.2g} FLOPs (budget {c['budget']})")
        else:
            parts.append(f"the recurrent model ({recurrent[0]}) reaches {lat['accuracy']:.3f} at {at}")
    sentence = "; ".join(parts) + "."
    return files, sentence[0].upper() + sentence[1:] if parts else ""


def _caption(knob: str) -> str:
    from rzoo.harness.generation import knobs

    found = knobs.find(knob)
    return found.caption if found else knob


def _label(knob: str, value) -> str:
    from rzoo.harness.generation import knobs

    found = knobs.find(knob)
    return found.label(value) if found else f"{knob}={value}"


def draw_all(state: dict, assets: Path) -> dict[str, tuple[list[Path], str]]:
    """{title: (files, sentence)} for the figures the zoo's finished recipes allow."""
    return {"Training recipes: each trained model beside its base": before_after(state, assets),
            "The compression frontier: from one long model to short ones": frontier(state, assets),
            "Test-time compute: budget forcing, Waits, s1's controls and latent iterations": test_time(state, assets)}
