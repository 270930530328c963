"""The test command of one mutant (cosmic-ray's `test-command`, written by mutation/run.py): run only the test
functions that execute the lines the mutant changed.

    python mutation/covering.py <coverage map.json> <module path>

cosmic-ray has written the mutant into the module on disk; `git diff -U0` against the committed file gives the
changed lines (mutation/run.py refuses to start on a module with uncommitted changes). The map (from one run of
the module's candidate tests under coverage, `dynamic_context = test_function`) gives, per line, the test functions
that executed it; a line run only outside any test (at import, in a fixture) selects every candidate test file; a
line nothing executed selects none: no test can see the mutant, and it survives (exit 0). Exit status: pytest's
(0 = the mutant survived, anything else = killed).
"""
from __future__ import annotations

import json
import re
import subprocess
import sys


def changed_lines(module: str) -> list[int]:
    """The committed file's line numbers that the mutant changed (`@@ -start,count ...` hunks)."""
    diff = subprocess.run(["git", "diff", "-U0", "--", module], capture_output=True, text=True, check=True).stdout
    lines = []
    for start, count in re.findall(r"^@@ -(\d+)(?:,(\d+))? ", diff, re.MULTILINE):
        n = 1 if count == "" else int(count)
        lines += list(range(int(start), int(start) + max(n, 1)))
    return lines


def selected(cover: dict, lines: list[int]) -> list[str]:
    """Test node ids for the changed lines: the functions that ran them, every candidate file for a line run only
    outside tests, and for a continuation line of a statement, the nearest executed line above it."""
    runs = cover["lines"]  # {"line": [node ids]} for every executed line ([] = executed outside any test)
    tests: set[str] = set()
    for line in lines:
        at = line
        while str(at) not in runs and at > 0 and line - at < 10:
            at -= 1
        if str(at) not in runs:
            continue
        tests.update(runs[str(at)] or cover["candidates"])
    return sorted(tests)


def main(argv: list[str]) -> int:
    cover_path, module = argv
    cover = json.loads(open(cover_path, encoding="utf-8").read())
    lines = changed_lines(module)
    tests = selected(cover, lines)
    if not tests:
        print(f"no test executes {module} lines {lines}: the mutant survives")
        return 0
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    print(" ".join(cmd), flush=True)
    return subprocess.run(cmd).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
