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


FAMILIES = ("sequential", "parallel", "search", "recurrent depth")
# A search recipe's rows by knob: which family draws them, and its legend's words
_WORDS = {"budget": "budget forcing", "waits": "budget forcing's Wait"}
_SEARCH_LINES = {"votes": ("parallel", "majority vote"), "prm_votes": ("parallel", "PRM-weighted vote"),
                 "prm_best": ("parallel", "best-of-N (PRM)"), "beam": ("search", "beam search"),
                 "dvts": ("search", "DVTS"), "mcts": ("search", "MCTS"),
                 "compute_optimal": ("search", "compute-optimal (per bin)")}


def _budget_lines(name: str, rows: list[dict]) -> dict[str, list[dict]]:
    """A run's budget-forcing curve (caps) and its Wait extensions."""
    out = {f"{name}: budget forcing (caps)": sorted([r for r in rows if not r.get("waits") and
                                                     (r.get("knob") or "budget") in ("budget", "waits")],
                                                    key=lambda r: r["budget"])}
    waits = [r for r in rows if r.get("waits")]
    if waits:
        out[f"{name}: Wait extensions"] = sorted(waits, key=lambda r: r["waits"])
    return out


def _families(state: dict) -> tuple[dict[str, dict[str, list[dict]]], list[dict], tuple | None, dict]:
    """{family: {label: rows}}, s1's control curves, the recurrent model's curve, and each search recipe's rows by
    knob (for the sentence)."""
    from rzoo.harness.method import BUDGET_CURVES, CONTROLS, ITERATIONS, SEARCH

    fams: dict[str, dict[str, list[dict]]] = {f: {} for f in FAMILIES}
    for name, entry in _in(state, BUDGET_CURVES).items():
        fams["sequential"].update(_budget_lines(name, _results(entry["run"], "eval")["results"]))
    searched = {}
    for name, entry in _in(state, SEARCH).items():
        rows = _results(entry["run"], "eval")["results"]
        fams["sequential"].update(_budget_lines(f"{name}'s policy", rows))
        by_knob: dict[str, list[dict]] = {}
        for r in rows:
            if r.get("knob") in _SEARCH_LINES:
                by_knob.setdefault(r["knob"], []).append(r)
        for knob, members in by_knob.items():
            family, words = _SEARCH_LINES[knob]
            fams[family][f"{name}: {words}"] = sorted(members, key=lambda r: r[knob])
        # the sentence weighs the policy's own budget forcing and Waits against its votes and searches
        by_knob["budget"] = [r for r in rows if (r.get("knob") or "budget") == "budget" and not r.get("waits")]
        by_knob["waits"] = [r for r in rows if r.get("waits")]
        searched[name] = by_knob
    curves = []
    controls = next(iter(_in(state, CONTROLS, "eval").values()), None)
    if controls:
        data = _results(controls["run"], "eval")
        from rzoo.harness.generation import knobs

        by_curve: dict[tuple, list[dict]] = {}
        for r in data["results"]:
            by_curve.setdefault(knobs.curve_key(r), []).append(r)
        curves = data.get("curves", [])
        for c, rows in zip(curves, by_curve.values()):
            label = c["title"] + (" + BF" if "BF=True" in c["series"] else "")
            fams["sequential"][f"conditional model: {label}"] = sorted(rows, key=lambda r: r["thinking_tokens_mean"])
    iterations = None
    recurrent = next(iter(_in(state, ITERATIONS).items()), None)
    if recurrent:
        knob, rows = _curve(_results(recurrent[1]["run"], "eval")["results"])
        fams["recurrent depth"][f"{recurrent[0]}: {_caption(knob)}"] = rows
        iterations = (recurrent[0], knob, rows)
    return fams, curves, iterations, searched


def test_time(state: dict, assets: Path) -> tuple[list[Path], str]:
    """How test-time compute is spent, one column per family on shared axes: sequential (budget forcing, Waits, s1's
    controls), parallel (votes over N samples), search (PRM-guided beam, DVTS, MCTS, compute-optimal) and recurrent
    (recurrent depth: a recurrent model's iterations); thinking tokens above, FLOPs below (the recurrent model writes
    no tokens)."""
    fams, curves, iterations, searched = _families(state)
    if not any(fams.values()):
        return [], ""
    drawn = [f for f in FAMILIES if fams[f]]
    plt, fig, axes = _figure(len(drawn), 2, width=3.5, height=2.9)
    for col, family in enumerate(drawn):
        tok, flo = axes[0][col], axes[1][col]
        for ax in (tok, flo):  # ten strong colours, then ten light ones: the sequential family has a dozen lines
            ax.set_prop_cycle(color=list(plt.cm.tab10.colors) + list(plt.cm.tab20.colors[1::2]))
        for label, rows in fams[family].items():
            style = "--" if "+ BF" in label or "compute-optimal" in label else "-"
            if family != FAMILIES[-1]:
                by_tokens = sorted(rows, key=lambda r: r["thinking_tokens_mean"])
                tok.plot([r["thinking_tokens_mean"] for r in by_tokens], [r["accuracy"] for r in by_tokens],
                         marker="o", ls=style, markersize=3)
            else:
                tok.plot([], [])  # keep the colour cycles of both rows in step
            by_flops = sorted(rows, key=lambda r: r["flops_mean"] or 0)
            flo.plot([r["flops_mean"] for r in by_flops], [r["accuracy"] for r in by_flops], marker="o", ls=style,
                     markersize=3, label=label)
        if family == FAMILIES[-1]:
            tok.text(0.5, 0.5, "writes no thinking tokens", ha="center", va="center", fontsize=8, color="0.4",
                     transform=tok.transAxes)
            tok.set_xticks([])
        tok.set_title(family, fontsize=10)
        flo.legend(loc="upper center", bbox_to_anchor=(0.5, -0.42), fontsize=6.5, frameon=False)
    for row, (label, log) in enumerate((("thinking tokens per answer", True), ("FLOPs per answer", True))):
        used = [ax for ax, f in zip(axes[row], drawn) if not (row == 0 and f == FAMILIES[-1])]
        key = "thinking_tokens_mean" if row == 0 else "flops_mean"
        xs = [r[key] for f in drawn if not (row == 0 and f == FAMILIES[-1]) for rows in fams[f].values() for r in rows
              if r.get(key)]
        for ax in axes[row]:
            ax.set_ylim(-0.04, 1.06)
            ax.grid(color="0.9")
            if ax in used and xs:
                ax.set_xscale("log" if log else "linear")
                ax.set_xlim(min(xs) / 1.3, max(xs) * 1.3)  # shared across the families
            ax.set_xlabel(label, fontsize=8)
        axes[row][0].set_ylabel("accuracy")
    files = _save(plt, fig, assets, "zoo-test-time")
    return files, _sentence(curves, iterations, fams, searched)


def _sentence(curves: list[dict], iterations, fams: dict, searched: dict) -> str:
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
    caps = next((label for label in fams["sequential"] if label.endswith("budget forcing (caps)")
                 and "policy" not in label), None)
    if iterations and caps:
        name, knob, rows = iterations
        lat = max(rows, key=lambda r: r["accuracy"])
        at = _label(knob, lat.get(knob))
        cot = [r for r in fams["sequential"][caps] if r["accuracy"] >= lat["accuracy"]]
        if cot:
            c = min(cot, key=lambda r: r["flops_mean"])
            parts.append(f"the recurrent model's best ({name}), {lat['accuracy']:.3f} at {at} "
                         f"({lat['flops_mean']:.2g} FLOPs), is matched by {caps.split(':')[0]}'s written chain at "
                         f"{c['flops_mean']:.2g} FLOPs (budget {c['budget']})")
        else:
            parts.append(f"the recurrent model ({name}) reaches {lat['accuracy']:.3f} at {at}")
    for name, by_knob in searched.items():
        points = [(knob, r) for knob, rows in by_knob.items() for r in rows]
        if not points:
            continue
        tokens = sorted(r["thinking_tokens_mean"] for _, r in points)
        small = tokens[len(tokens) // 4]
        pick = lambda cap: max(((k, r) for k, r in points if r["thinking_tokens_mean"] <= cap),  # noqa: E731
                               key=lambda x: (x[1]["accuracy"], -x[1]["thinking_tokens_mean"]))
        (k1, r1), (k2, r2) = pick(small), pick(tokens[-1])
        parts.append(f"on {name}'s policy, the most accurate answer within {small:.0f} thinking tokens is "
                     f"{_named(k1, r1)} ({r1['accuracy']:.3f}), and at any compute {_named(k2, r2)} "
                     f"({r2['accuracy']:.3f}, {r2['thinking_tokens_mean']:.0f} tokens)")
    sentence = "; ".join(parts) + "."
    return sentence[0].upper() + sentence[1:] if parts else ""


def _named(knob: str, row: dict) -> str:
    """A strategy's point in words: "PRM-weighted vote at N=32", "budget forcing's Wait (w=1)"."""
    if knob in _WORDS:
        return f"{_WORDS[knob]} ({_label(knob, row[knob])})"
    return f"{_SEARCH_LINES[knob][1]} at N={row[knob]}"


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
            "Test-time compute, one family per column: sequential, parallel, PRM-guided search, recurrent depth":
                test_time(state, assets)}
