"""mutation/report.md from mutation/results/*.json and the equivalence notes (mutation/equivalent.txt).

Each line of equivalent.txt: `<module> <operator> <occurrence> | <why the mutant cannot change behaviour>`; the
triple is cosmic-ray's name for the mutant (the report lists it for every survivor). A note whose mutant is not in
the results is reported as stale. Kill rate = (killed + timed out) / (killed + timed out + survived): equivalent
mutants and incompetent ones (not valid Python: no test earned that kill) are counted apart.
"""
from __future__ import annotations

import json
from pathlib import Path


def equivalents(path: Path) -> dict[tuple[str, str, int], str]:
    out = {}
    for raw in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, why = line.partition("|")
        module, operator, occurrence = key.split()
        out[(module, operator, int(occurrence))] = why.strip()
    return out


def module_rows(summary: dict, notes: dict) -> tuple[dict, list[str]]:
    counts = {k: 0 for k in ("killed", "timeout", "survived", "equivalent", "incompetent", "other")}
    survivors = []
    for m in summary["mutants"]:
        key = (summary["module"], m["operator"], m["occurrence"])
        kind = m["outcome"]
        if kind == "survived" and key in notes:
            kind = "equivalent"
        counts[kind if kind in counts else "other"] += 1
        if kind == "survived":
            survivors.append(f"- `{summary['module']} {m['operator']} {m['occurrence']}` line {m['line']} "
                             f"({m['function']}): `{m['mutant']}`")
    return counts, survivors


def write(folder: Path) -> str:
    """Rebuild report.md; returns the per-module kill-rate lines it printed."""
    notes = equivalents(folder / "equivalent.txt")
    summaries = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((folder / "results").glob("*.json"))]
    table = ["| module | mutants | killed | timed out | survived | equivalent | incompetent | other | kill rate | "
             "minutes |", "|---|---|---|---|---|---|---|---|---|---|"]
    lines, survivors, seen = [], [], set()
    for s in summaries:
        c, surv = module_rows(s, notes)
        seen |= {(s["module"], m["operator"], m["occurrence"]) for m in s["mutants"]}
        live = c["killed"] + c["timeout"] + c["survived"]
        rate = (c["killed"] + c["timeout"]) / live if live else float("nan")
        table.append(f"| {s['module']} | {len(s['mutants'])} | {c['killed']} | {c['timeout']} | {c['survived']} | "
                     f"{c['equivalent']} | {c['incompetent']} | {c['other']} | {rate:.1%} | {s['seconds'] / 60:.1f} |")
        lines.append(f"{s['module']}: kill rate {rate:.1%} ({c['killed'] + c['timeout']} of {live} non-equivalent "
                     f"mutants; {c['equivalent']} equivalent, {c['incompetent']} incompetent)")
        survivors += surv
    stale = [f"- `{' '.join(map(str, k))}`" for k in notes if k not in seen and k[0] in {s["module"] for s in summaries}]
    text = ["# Mutation testing report (`make mutants`)", "",
            "Written by mutation/run.py (cosmic-ray; each mutant runs only the test functions that execute the lines "
            "it changed). Kill rate: (killed + timed out) / (killed + timed out + survived); equivalent mutants "
            "(mutation/equivalent.txt) and incompetent ones (not valid Python) are counted apart. "
            "See docs/mutants.md.", "", *table, "", "## Surviving non-equivalent mutants", "",
            *(survivors or ["none"]), ""]
    if stale:
        text += ["## Equivalence notes whose mutant no longer exists", "", *stale, ""]
    (folder / "report.md").write_text("\n".join(text), encoding="utf-8")
    return "\n".join(lines)
