"""Mutation testing of the science core with cosmic-ray (issue 45): `make mutants` runs this.

    python mutation/run.py [MODULE ...]      (default: every module of mutation/scope.toml)
    python mutation/run.py --report [MODULE ...]   (results and report again from finished sessions; runs nothing)

For each module:
1. its candidate test files (scope.toml) run once under coverage with per-test contexts: the map of which test
   functions execute each line (`.mutants/<module>/map.json`), and the baseline time (the tests must pass);
2. cosmic-ray (`init`, `exec`, local distributor) writes each mutant into the module on disk, runs
   `mutation/covering.py` -- only the test functions that execute the changed lines -- with a time limit of
   max(60 s, 3 x the baseline), and restores the file;
3. the outcome of every mutant goes to `mutation/results/<module>.json`, and `mutation/report.md` is rebuilt from all
   results present: per module killed, timed out, survived, equivalent (mutation/equivalent.txt: one line of
   reasoning per equivalent mutant, so the next run does not re-argue it) and the kill rate among non-equivalent
   mutants, with every non-equivalent survivor listed.

cosmic-ray mutates files in place: a module with uncommitted changes is refused, and each is checked clean again
after its run. Sessions (sqlite) and coverage data live in `.mutants/` (ignored by git); an interrupted module
resumes where it stopped on the next run (cosmic-ray's `exec` does only the work left).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "mutation"
WORK = ROOT / ".mutants"


def slug(module: str) -> str:
    return module.replace("/", "__")


def scope() -> dict[str, list[str]]:
    return tomllib.loads((HERE / "scope.toml").read_text(encoding="utf-8"))["modules"]


def require_clean(module: str) -> None:
    if subprocess.run(["git", "diff", "--quiet", "HEAD", "--", module], cwd=ROOT).returncode != 0:
        sys.exit(f"mutants: {module} has uncommitted changes; cosmic-ray mutates files in place: commit or stash first")


def node_id(context: str) -> str | None:
    """coverage's test_function context (`test_mod.test_fn` or `test_mod.Class.test_fn`) as a pytest node id."""
    if not context:
        return None
    module, *names = context.split(".")
    return f"tests/{module}.py::" + "::".join(names)


def coverage_map(module: str, tests: list[str], out: Path) -> float:
    """Run the candidate tests under coverage; write {"lines": {line: [node ids]}, "candidates": tests}; returns the
    seconds the run took (the baseline the time limit scales)."""
    out.mkdir(parents=True, exist_ok=True)
    rc = out / "coveragerc"
    rc.write_text(f"[run]\ndynamic_context = test_function\ndata_file = {out / 'coverage'}\n"
                  f"include = {ROOT / module}\n", encoding="utf-8")
    t0 = time.time()
    run = subprocess.run([sys.executable, "-m", "coverage", "run", f"--rcfile={rc}", "-m", "pytest", "-q",
                          "-p", "no:cacheprovider", *tests], cwd=ROOT)
    seconds = time.time() - t0
    if run.returncode != 0:
        sys.exit(f"mutants: the tests of {module} fail before any mutation ({' '.join(tests)}); fix them first")
    report = out / "coverage.json"
    subprocess.run([sys.executable, "-m", "coverage", "json", f"--rcfile={rc}", "--show-contexts", "-o", str(report)],
                   cwd=ROOT, check=True, capture_output=True)
    files = json.loads(report.read_text(encoding="utf-8"))["files"]
    contexts = next(iter(files.values()), {}).get("contexts", {})
    lines = {line: sorted({n for n in map(node_id, ctx) if n}) for line, ctx in contexts.items()}
    (out / "map.json").write_text(json.dumps({"lines": lines, "candidates": tests}), encoding="utf-8")
    return seconds


def cosmic_ray(module: str, out: Path, timeout: float) -> list[dict]:
    """cosmic-ray init (once) + exec (the work left) on the module; returns `cosmic-ray dump`'s rows."""
    config, session = out / "cosmic-ray.toml", out / "session.sqlite"
    command = f"{sys.executable} {HERE / 'covering.py'} {out / 'map.json'} {module}"
    config.write_text(f'[cosmic-ray]\nmodule-path = "{module}"\ntimeout = {timeout:.0f}\nexcluded-modules = []\n'
                      f'test-command = "{command}"\n\n[cosmic-ray.distributor]\nname = "local"\n', encoding="utf-8")
    exe = [sys.executable, "-m", "cosmic_ray.cli"]
    if not session.is_file():
        subprocess.run([*exe, "init", str(config), str(session)], cwd=ROOT, check=True)
    subprocess.run([*exe, "exec", str(config), str(session)], cwd=ROOT, check=True)
    dump = subprocess.run([*exe, "dump", str(session)], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in dump.splitlines() if line.strip()]


def outcome(result: dict | None) -> str:
    """killed, timeout, survived, incompetent or pending, from cosmic-ray's work result (a timeout is reported as
    killed with the output "timeout"; a mutant that is not valid Python -- e.g. the keyword-only `*` of a signature
    made `**` -- fails at collection: incompetent, not a kill a test earned)."""
    if result is None:
        return "pending"
    if result.get("worker_outcome") == "normal":
        output = result.get("output") or ""
        if result.get("test_outcome") == "killed":
            if output.strip() == "timeout":
                return "timeout"
            return "incompetent" if "SyntaxError" in output and "error during collection" in output else "killed"
        return {"survived": "survived", "incompetent": "incompetent"}.get(result.get("test_outcome"), "pending")
    return {"no-test": "no mutation", "exception": "error", "skipped": "skipped"}.get(result.get("worker_outcome"),
                                                                                      "error")


def summarise(module: str, rows: list[dict], seconds: float) -> dict:
    mutants = []
    for item, result in rows:
        m = item["mutations"][0]
        diff = (result or {}).get("diff") or ""
        changed = [x[1:].strip() for x in diff.splitlines() if x.startswith("+") and not x.startswith("+++")]
        mutants.append({"operator": m["operator_name"], "occurrence": m["occurrence"], "line": m["start_pos"][0],
                        "function": m.get("definition_name"), "outcome": outcome(result),
                        "mutant": changed[0] if changed else ""})
    return {"module": module, "seconds": round(seconds), "mutants": mutants}


def rebuild(module: str) -> None:
    """The module's results again from its finished session, its recorded run time kept (`--report`)."""
    path = HERE / "results" / f"{slug(module)}.json"
    session = WORK / slug(module) / "session.sqlite"
    if not (path.is_file() and session.is_file()):
        return
    exe = [sys.executable, "-m", "cosmic_ray.cli", "dump", str(session)]
    rows = [json.loads(x) for x in subprocess.run(exe, cwd=ROOT, check=True, capture_output=True,
                                                   text=True).stdout.splitlines() if x.strip()]
    seconds = json.loads(path.read_text(encoding="utf-8"))["seconds"]
    path.write_text(json.dumps(summarise(module, rows, seconds), indent=1) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    report_only = argv[:1] == ["--report"]  # rebuild results and report from finished sessions, run nothing
    argv = argv[1:] if report_only else argv
    modules = scope()
    chosen = argv or list(modules)
    unknown = [m for m in chosen if m not in modules]
    if unknown:
        sys.exit(f"mutants: not in mutation/scope.toml: {', '.join(unknown)}; known: {', '.join(modules)}")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    (HERE / "results").mkdir(exist_ok=True)
    for module in chosen if not report_only else []:
        require_clean(module)
        out = WORK / slug(module)
        t0 = time.time()
        baseline = coverage_map(module, modules[module], out)
        rows = cosmic_ray(module, out, timeout=max(60.0, 3 * baseline))
        require_clean(module)  # every mutant was restored
        summary = summarise(module, rows, time.time() - t0)
        (HERE / "results" / f"{slug(module)}.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    for module in chosen if report_only else []:
        rebuild(module)
    from report import write  # mutation/report.py, beside this file

    print(write(HERE))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main(sys.argv[1:]))
