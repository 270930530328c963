"""The layering the README draws, checked on the source (function-local imports and registry strings
included). Inside `harness/`, imports only run downward:

    top          cli.py, jobs.py, app.py, zoo.py, api.py
    loops        training/   evaluation/      (siblings: neither imports the other)
    engines      engines/
    generation   generation/
    models       models/
    foundation   config.py, registry.py, runstore.py, data.py, distributed.py, method.py

The core (everything below the top) imports nothing from methods, tasks or the leaderboard, not even
through a string a registry or `importlib` would import; methods and tasks never import the top, the
leaderboard or each other."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"harness": "rzoo.harness", "methods": "rzoo.methods", "tasks": "rzoo.tasks", "leaderboard": "rzoo.leaderboard"}
FOUNDATION = {"config", "registry", "runstore", "data", "distributed", "method"}
TOP = {"cli", "app", "jobs", "zoo", "api"}
RANK = {"foundation": 0, "models": 1, "generation": 2, "engines": 3, "training": 4, "evaluation": 4, "top": 5}
UPPER = re.compile(r"^rzoo\.(tasks|methods|leaderboard)(\.|:|$)")


def _package_of(path: Path, root: Path) -> str:
    rel = path.relative_to(root).parent.parts
    return ".".join([PACKAGES[rel[0]], *rel[1:]])


def _imports(path: Path, root: Path = ROOT) -> set[str]:
    """Every module (or module.name) a file imports, relative imports resolved."""
    out = set()
    package = _package_of(path, root)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{node.module}" if node.module else parent
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}  # `from rzoo.harness import models` imports a module
    return out


def _strings(path: Path) -> list[str]:
    """String constants that are not docstrings (registry targets, importlib arguments)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docs]


def _unit(module: str) -> str | None:
    """The layer unit of a `rzoo.harness...` module name, or None outside the harness."""
    parts = module.split(".")
    if parts[:2] != ["rzoo", "harness"]:
        return None
    if len(parts) == 2:
        return "foundation"
    head = parts[2]
    if head in TOP:
        return "top"
    return "foundation" if head in FOUNDATION else head


def core_violations(root: Path = ROOT) -> list[str]:
    bad = []
    for path in sorted((root / "harness").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        me = _unit(_package_of(path, root) + "." + path.stem) if path.stem != "__init__" else \
            _unit(_package_of(path, root))
        for name in sorted(_imports(path, root)):
            if UPPER.match(name) and me != "top":
                bad.append(f"{rel} imports {name}")
                continue
            unit = _unit(name)
            if unit is None or unit == me or me == "top":
                continue
            if RANK[unit] >= RANK[me] and not (unit == "foundation" and me == "foundation"):
                bad.append(f"{rel} ({me}) imports {name} ({unit}): upward or sideways")
        if me != "top":
            bad += [f"{rel} names {s!r} in a string" for s in _strings(path) if UPPER.match(s)]
    return bad


def _violations(root: Path, folder: str, forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for path in sorted((root / folder).rglob("*.py")):
        for name in sorted(_imports(path, root)):
            if name.startswith(forbidden):
                bad.append(f"{path.relative_to(root)} imports {name}")
        bad += [f"{path.relative_to(root)} names {s!r}" for s in _strings(path) if s.startswith(forbidden)]
    return bad


def outer_violations(root: Path = ROOT) -> list[str]:
    top = tuple(f"rzoo.harness.{m}" for m in sorted(TOP))
    return (_violations(root, "methods", top + ("rzoo.leaderboard", "rzoo.tasks"))
            + _violations(root, "tasks", top + ("rzoo.leaderboard", "rzoo.methods"))
            + _violations(root, "leaderboard", top + ("rzoo.methods",)))


def test_the_core_imports_only_downward():
    assert core_violations() == []


def test_methods_tasks_and_the_leaderboard_stay_below_the_top():
    assert outer_violations() == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in {"harness/__init__.py": "", "methods/__init__.py": "", "tasks/__init__.py": "",
                      "leaderboard/__init__.py": "", **files}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def test_the_check_sees_function_local_and_relative_imports(tmp_path):
    root = _tree(tmp_path, {"harness/training/x.py": "def f():\n    from rzoo.tasks.base import Task\n"
                                                    "    from ...tasks import get\n    from .. import models\n"})
    assert _imports(root / "harness/training/x.py", root) >= {"rzoo.tasks.base", "rzoo.tasks", "rzoo.harness.models"}


def test_an_upward_import_between_subpackages_fails(tmp_path):
    root = _tree(tmp_path, {
        "harness/generation/x.py": "from ..evaluation import results\n",  # generation -> evaluation: up
        "harness/models/y.py": "def f():\n    from rzoo.harness.engines import hf\n",  # models -> engines: up
        "harness/training/z.py": "from ..evaluation.metrics import summarize\n",  # training -> evaluation: sideways
        "harness/evaluation/ok.py": "from ..engines import load\nfrom ..generation import knobs\n",  # downward
        "harness/engines/ok.py": "from ..models import flops\nfrom ..config import ConfigError\n",
    })
    files = {b.split(" ", 1)[0] for b in core_violations(root)}
    assert files == {"harness/generation/x.py", "harness/models/y.py", "harness/training/z.py"}


def test_a_string_import_of_a_task_or_method_from_the_core_fails(tmp_path):
    root = _tree(tmp_path, {
        "harness/models/x.py": '"""Docstrings may mention rzoo.tasks."""\n'
                               'BUILDERS.add("testbed", "rzoo.tasks.testbed_model:build", "a model a task builds")\n',
        "harness/evaluation/y.py": 'import importlib\nm = importlib.import_module("rzoo.methods.grpo")\n',
        "harness/jobs.py": 'KNOWN = "rzoo.methods.grpo"\n',  # the top may name them
    })
    bad = core_violations(root)
    assert {b.split(" ", 1)[0] for b in bad} == {"harness/models/x.py", "harness/evaluation/y.py"}, bad
    assert any("rzoo.tasks.testbed_model:build" in b for b in bad) and any("rzoo.methods.grpo" in b for b in bad)


def _outer_files() -> list[Path]:
    """The evaluation package, the app layer and the leaderboard: the code that must read knobs from the registry."""
    files = [p for p in (ROOT / "harness" / "evaluation").rglob("*") if p.is_file()]
    files += [ROOT / "harness" / f"{name}.py" for name in TOP]
    files += [p for p in (ROOT / "leaderboard").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return [p for p in files if p.suffix != ".pyc"]


def _code_words(path: Path) -> set[str]:
    """Every name and every whole string literal in a Python file (prose inside a longer string is not a name)."""
    import io
    import tokenize

    words = set()
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if tok.type == tokenize.NAME:
            words.add(tok.string)
        elif tok.type == tokenize.STRING:
            try:
                value = ast.literal_eval(tok.string)
            except (ValueError, SyntaxError):
                continue
            if isinstance(value, str):
                words.add(value)
    return words


def test_evaluation_the_app_and_the_leaderboard_name_no_method_knob():
    """A method's knob lives with its method: its name, its eval key and its options appear nowhere in the outer
    code as a name or a string; and the issue's words for them (any case) appear nowhere in those files at all."""
    from rzoo import methods

    owned = set()
    for knob in (k for m in methods.all_methods() for k in m.knobs):
        owned |= {knob.name, *(o.name for o in knob.options)} | ({knob.key} if knob.key else set())
    # (not "stage": staged recipes are the core's since issue 48, `training/stages.py` and its `stage` knob)
    words = re.compile(r"alpha|recurrence|exit_kl", re.IGNORECASE)
    found = []
    for path in _outer_files():
        text = path.read_text(errors="replace")
        found += [f"{path.relative_to(ROOT)}: {m.group(0)!r}" for m in words.finditer(text)]
        if path.suffix == ".py":
            found += [f"{path.relative_to(ROOT)}: names {w!r}" for w in sorted(_code_words(path) & owned)]
    assert not found, found


def test_the_core_the_leaderboard_and_the_contract_test_name_no_method():
    """Methods are read from their declarations: no method's name is a name or a whole string in `harness/`,
    `leaderboard/` or the contract test. A word that is also the name of one of the core's own registered pieces
    (the `grpo` and `kimi` policy losses) or of an evaluation setting of the core (`eval.prm`, the scorer any
    evaluation's votes and searches read) is that piece's name, not the method's."""
    import dataclasses

    from rzoo import methods
    from rzoo.harness.evaluation.config import EvalConfig
    from rzoo.harness.training import losses, rewards, samplers

    core = {n for reg in (losses.POLICY_LOSSES, losses.ADVANTAGES, losses.AGGREGATIONS, rewards.REWARDS,
                          samplers.SAMPLERS) for n in reg.names()} | {f.name for f in dataclasses.fields(EvalConfig)}
    names = set(methods.REGISTRY.names())
    files = [*(ROOT / "harness").rglob("*.py"), *(ROOT / "leaderboard").rglob("*.py"), ROOT / "tests" / "test_contract.py"]
    found = [f"{p.relative_to(ROOT)}: {w!r}" for p in sorted(files) for w in sorted(_code_words(p) & (names - core))]
    assert not found, found
