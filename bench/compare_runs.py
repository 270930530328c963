"""Do two runs roots hold the same results? Every `train.jsonl` and `results.json` of each method's run, leaf by leaf.

How a refactor is checked to change no result: run each method's default at the old and the new commit (two
worktrees, each with its own `RZOO_RUNS` and `RZOO_CACHE`), then

    python bench/compare_runs.py OLD_RUNS NEW_RUNS grpo kimi s1 deepscaler cot_valve latent

Timing fields and `git_sha` are dropped; run folders, cache paths and testbed cache keys (which hash the code)
are masked. Prints one line per file (`<n> equal leaves, <n> differ`) and the first differing leaves; exit 1 if
any leaf differs or a file is missing on one side. Each method's root must hold exactly one run.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

VOLATILE = {"seconds", "generation_seconds", "grading_seconds", "tokens_per_second", "git_sha"}
MASKS = [(re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}"), "<run>"),  # run folder names
         (re.compile(r"(testbed[-_:][a-z_]*[-:])[0-9a-f]{10}"), r"\1<key>")]  # cache keys, by recipe and code


def normalise(x, roots: list[str]):
    if isinstance(x, dict):
        return {k: normalise(v, roots) for k, v in x.items() if k not in VOLATILE}
    if isinstance(x, list):
        return [normalise(v, roots) for v in x]
    if isinstance(x, str):
        for root in roots:
            x = x.replace(root, "<root>")
        for pattern, repl in MASKS:
            x = pattern.sub(repl, x)
    return x


def leaves(x, path: str = ""):
    if isinstance(x, dict):
        for k, v in x.items():
            yield from leaves(v, f"{path}.{k}")
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from leaves(v, f"{path}[{i}]")
    else:
        yield path, x


def load(f: Path):
    if f.suffix == ".jsonl":
        return [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return json.loads(f.read_text())


def results_files(run: Path) -> set[Path]:
    return {f.relative_to(run) for f in run.rglob("*") if f.name in ("train.jsonl", "results.json")}


def compare(a_root: Path, b_root: Path, method: str) -> bool:
    (a,), (b,) = list((a_root / method).iterdir()), list((b_root / method).iterdir())
    roots = [str(a_root.parent), str(b_root.parent)]  # the cache beside each runs root is masked too
    fa, fb = results_files(a), results_files(b)
    ok = fa == fb
    print(f"== {method}: {len(fa)} / {len(fb)} files" + ("" if ok else f"; only in one: {sorted(map(str, fa ^ fb))}"))
    for f in sorted(fa & fb):
        la, lb = (dict(leaves(normalise(load(run / f), roots))) for run in (a, b))
        differ = [k for k in la if k in lb and la[k] != lb[k]]
        one_side = sorted(set(la) ^ set(lb))
        print(f"  {f}: {len(la) - len(differ)} equal leaves, {len(differ)} differ, {len(one_side)} on one side only")
        for k in differ[:8]:
            print(f"    {k}: {la[k]!r} != {lb[k]!r}")
        ok = ok and not differ and not one_side
    return ok


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[0], "\nusage: compare_runs.py OLD_RUNS NEW_RUNS METHOD...", file=sys.stderr)
        return 2
    a, b = Path(argv[0]).resolve(), Path(argv[1]).resolve()
    same = [compare(a, b, m) for m in argv[2:]]
    print("same results" if all(same) else "results differ")
    return 0 if all(same) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
