"""`harness zoo` (`make zoo`): every registered recipe at its CPU preset on the testbed, one after another,
then the site that compares them.

    harness zoo [--runs DIR]            (default runs root: $RZOO_RUNS or ./runs)

The recipes: each registered method's `harness train+eval method=M` (once per variant where its declaration
has them, e.g. CoT-Valve's three, long2short's four), and the recipes that are an evaluation alone (s1's
controls on `testbed:conditional`): all read from the methods' declarations (`harness/method.py`).

Resumable: `<runs>/zoo.json` records each recipe's state (`running` with its run folder, `done`, `failed` with
the error) and seconds, written atomically as it changes. Started again, the zoo skips what is done, resumes a
run that was cut off where it saved a state (`resume=`; else starts it again, removing the partial folder),
and runs the rest. A recipe that fails is marked failed and the others go on. Recipes run one after another:
two at once slow each other on 2 cores. Each one's output is in `<runs>/zoo-logs/<recipe>.log`. At the end the
leaderboard is built (`<runs>/leaderboard/index.html`) and the whole wall time printed.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

STATE = "zoo.json"


@dataclass(frozen=True)
class Recipe:
    name: str  # readable: "grpo", "cot_valve++", "long2short/dpo", "s1_controls"
    command: str  # "train+eval" or "eval"
    args: tuple[str, ...]
    method: str | None = None
    changes: str = "training"  # what it changes: training, or test time only
    description: str = ""
    figures: tuple[str, ...] = ()  # the zoo figures its run appears in (`Method.figures`)


def recipes() -> list[Recipe]:
    """Every registered method at its CPU preset (each variant), and every recipe that is an evaluation alone,
    by name, all read from the methods' declarations."""
    import dataclasses

    from rzoo import methods

    out = []
    for method in map(methods.get, methods.names()):
        description = methods.REGISTRY.entry(method.name).description
        if not method.trains:
            out.append(Recipe(method.name, "eval", tuple(method.evaluation), None, "test time", description,
                              tuple(method.figures)))
            continue
        for variant in method.variant_names():
            extra = (f"{method.variants.field}={variant}",) if variant else ()
            cfg = method.config()
            if variant:
                cfg = dataclasses.replace(cfg, **{method.variants.field: variant})
            out.append(Recipe(method.run_label(cfg), "train+eval", (f"method={method.name}", *extra), method.name,
                              "training", description, tuple(method.figures)))
    return out


@dataclass
class Zoo:
    root: Path
    state: dict = field(default_factory=dict)

    def load(self) -> "Zoo":
        path = self.root / STATE
        self.state = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        return self

    def save(self) -> None:
        from .runstore import atomic_write_json

        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.root / STATE, self.state)

    def mark(self, recipe: Recipe, **values) -> None:
        self.state[recipe.name] = {**self.state.get(recipe.name, {}), **values, "command": recipe.command,
                                   "args": list(recipe.args), "changes": recipe.changes,
                                   "description": recipe.description, "method": recipe.method,
                                   "figures": list(recipe.figures)}
        self.save()


def _folder(recipe: Recipe) -> str:
    return recipe.method or "eval"


def _runs_in(root: Path, recipe: Recipe) -> set[Path]:
    return {p for p in (root / _folder(recipe)).glob("*") if (p / "config.json").is_file()}


def _launch(zoo: Zoo, recipe: Recipe, args: list[str]) -> int:
    """Run one recipe's command in its own process, recording its run folder as soon as it exists."""
    logs = zoo.root / "zoo-logs"
    logs.mkdir(parents=True, exist_ok=True)
    before = _runs_in(zoo.root, recipe)
    env = {**os.environ, "RZOO_RUNS": str(zoo.root), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    with open(logs / f"{recipe.name.replace('/', '_')}.log", "a", encoding="utf-8") as log:
        proc = subprocess.Popen([sys.executable, "-m", "rzoo.harness.cli", recipe.command, *args, "--no-progress"],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        recorded = zoo.state.get(recipe.name, {}).get("run")
        while proc.poll() is None:
            if recorded is None:
                new = sorted(_runs_in(zoo.root, recipe) - before)
                if new:
                    recorded = str(new[-1])
                    zoo.mark(recipe, state="running", run=recorded)
            time.sleep(0.5)
    if recorded is None:
        new = sorted(_runs_in(zoo.root, recipe) - before)
        if new:
            zoo.mark(recipe, run=str(new[-1]))
    return proc.returncode


def _resume_args(recipe: Recipe, run: str | None) -> list[str] | None:
    """`resume=<run>` for a recipe cut off after it saved something to continue from; else None."""
    if not run or not Path(run).is_dir():
        return None
    path = Path(run)
    if recipe.command == "eval" or (path / "checkpoint" / "trainer_state.pt").is_file():
        return [f"resume={run}"]
    shutil.rmtree(path)  # nothing saved yet: start it again rather than leave a half run on the page
    return None


def _last_error(zoo: Zoo, recipe: Recipe) -> str:
    log = zoo.root / "zoo-logs" / f"{recipe.name.replace('/', '_')}.log"
    lines = [x for x in log.read_text(encoding="utf-8", errors="replace").splitlines() if x.strip()] if log.is_file() else []
    errors = [x for x in lines if "error" in x.lower()]
    return (errors or lines or ["no output"])[-1][-300:]


def run_zoo(root: Path, only: list[str] | None = None) -> int:
    """Run every recipe not done yet, then build the site; returns the number of failed recipes."""
    zoo = Zoo(root.resolve()).load()
    start = time.time()
    todo = [r for r in recipes() if not only or r.name in only]
    for recipe in recipes():  # what the declarations say now (a zoo.json written before may lack it)
        if recipe.name in zoo.state:
            zoo.state[recipe.name].update(method=recipe.method, figures=list(recipe.figures))
    for i, recipe in enumerate(todo, 1):
        entry = zoo.state.get(recipe.name, {})
        if entry.get("state") == "done":
            print(f"[zoo] {i}/{len(todo)} {recipe.name}: done ({entry.get('seconds', 0):.0f} s), skipped", flush=True)
            continue
        resume = _resume_args(recipe, entry.get("run")) if entry.get("state") in ("running", "failed") else None
        if resume is None:
            zoo.state.pop(recipe.name, None)
        print(f"[zoo] {i}/{len(todo)} {recipe.name}: {'resuming ' + entry['run'] if resume else 'running'} "
              f"(harness {recipe.command} {' '.join(recipe.args)})", flush=True)
        t = time.time()
        zoo.mark(recipe, state="running", started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        code = _launch(zoo, recipe, resume or list(recipe.args))
        seconds = time.time() - t + (entry.get("seconds", 0.0) if resume else 0.0)
        if code == 0:
            zoo.mark(recipe, state="done", seconds=seconds)
            print(f"[zoo] {recipe.name}: done in {time.time() - t:.0f} s", flush=True)
        else:
            zoo.mark(recipe, state="failed", seconds=seconds, error=_last_error(zoo, recipe))
            print(f"[zoo] {recipe.name}: FAILED (exit {code}): {zoo.state[recipe.name]['error']}", flush=True)
    from rzoo.leaderboard.site import build

    index = build(zoo.root)
    failed = [n for n, e in zoo.state.items() if e.get("state") == "failed"]
    total = time.time() - start
    print(f"[zoo] {len(todo) - len(failed)} of {len(todo)} recipes done, {len(failed)} failed"
          f"{' (' + ', '.join(failed) + ')' if failed else ''}; this call took {total / 60:.1f} min; "
          f"site: file://{index}", flush=True)
    return len(failed)


def publish_docs(root: Path, docs: Path) -> list[Path]:
    """Copy the zoo page's figures (PNG) and a headless-Chromium screenshot of the page into `docs`; returns the
    files written. The figures are the ones the page shows, so the README and the page cannot disagree."""
    from rzoo.leaderboard import browser

    site = root.resolve() / "leaderboard"
    docs.mkdir(parents=True, exist_ok=True)
    written = []
    for png in sorted((site / "assets").glob("zoo-*.png")):
        tmp = docs / f".{png.name}.tmp"
        shutil.copyfile(png, tmp)
        written.append(tmp.replace(docs / png.name))
    shot = browser.screenshot(site / "index.html", docs / ".zoo.tmp.png")
    written.append(shot.replace(docs / "zoo.png"))
    return written
