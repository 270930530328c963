"""`harness`: the command line.

    harness train+eval method=grpo [preset=cpu|paper] [key=value ...] [eval.key=value ...]
    harness train      method=grpo [key=value ...]
    harness eval       model=default task=arith,math500 eval.budgets=[64,256]
    harness methods | harness tasks
    harness plot [--run RUN_DIR ...] [--out DIR]      accuracy vs thinking tokens / FLOPs
    harness leaderboard [--out DIR] [--screenshot PNG]
    harness export CHECKPOINT --knob NAME=VALUE --out DIR   a test-time knob baked into a plain checkpoint
    harness grade FILE.jsonl                          grade other tools' answers: one JSON line each
    harness prompt model=M task=T [eval.protocol=P]   the exact prompts a model is given, as JSONL
    harness zoo [RECIPE ...] [--runs DIR] [--docs DIR] every recipe's CPU preset on the testbed, then the site

Overrides are `key=value` tokens converted by the config dataclass's field types. Nothing heavy is
imported until a command runs (`harness --help` does not import torch).
"""
from __future__ import annotations

import argparse
import errno
import os
import sys
import traceback

from .config import ConfigError
from .models import ModelError
from .registry import UnknownName


WRITE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.ENOTDIR}


def _user_errors() -> tuple[type[BaseException], ...]:
    from rzoo.leaderboard.browser import BrowserError
    from rzoo.leaderboard.site import LeaderboardError
    from rzoo.tasks.base import TaskError
    from rzoo.tasks.grading.regrade import GradeInputError

    return (ConfigError, UnknownName, ModelError, TaskError, LeaderboardError, BrowserError, GradeInputError)


EPILOG = """examples:
  harness train+eval method=grpo                     the default run (CPU preset)
  harness eval model=default task=arith,math500 eval.budgets=[64,256]
  harness tasks show math500                         print a task's prompt template
  harness plot --run runs/grpo/<run> --out plots     curves of one run (base and trained)
  harness leaderboard --out site                     static site from every run under $RZOO_RUNS
  harness grade answers.jsonl                        re-grade {"answer", "gold", "kind"} lines from any tool
  harness zoo --runs runs-zoo                        every recipe on the testbed, one page comparing them
Run `harness <command> --help` (with method=NAME for training) for every key, its default and help."""


def _plot_command(args) -> int:
    from pathlib import Path

    from rzoo.leaderboard.collect import collect, find_runs
    from rzoo.leaderboard.plot import AXES, plot_curves

    from .runstore import runs_root

    root = Path(args.runs) if args.runs else runs_root()
    runs = find_runs(root)
    if args.run:
        wanted = {Path(r).resolve() for r in args.run}
        missing = wanted - {r.path.resolve() for r in runs}
        if missing:
            raise ConfigError(f"not a run folder under {root}: {', '.join(sorted(map(str, missing)))}")
        runs = [r for r in runs if r.path.resolve() in wanted]
    points = collect(root, runs)
    if points.empty:
        raise ConfigError(f"no evaluation results under {root}" + (" for the given runs" if args.run else ""))
    out = Path(args.out) if args.out else root / "plots"
    for axis in AXES:
        for path in plot_curves(points, out, axis):
            print(path)
    return 0


def _leaderboard_command(args) -> int:
    from pathlib import Path

    from rzoo.leaderboard.site import build

    from .runstore import runs_root

    index = build(Path(args.runs) if args.runs else runs_root(), args.out)
    print(f"[leaderboard] {index.as_uri()}")
    if args.screenshot:
        from rzoo.leaderboard import browser

        print(f"[leaderboard] screenshot {browser.screenshot(index, args.screenshot)}")
    return 0


def _export_command(args) -> int:
    """`harness export CHECKPOINT --knob NAME=VALUE --out DIR`: a plain checkpoint with a test-time knob's value
    baked in (for engines that cannot set the knob, e.g. vLLM), by the knob's own `export`."""
    from .generation import knobs

    usage = "usage: harness export CHECKPOINT --knob NAME=VALUE --out DIR"
    if len(args.overrides) != 1 or not args.knob or "=" not in args.knob or not args.out:
        raise ConfigError(usage)
    name, _, value = args.knob.partition("=")
    knob = knobs.get(name)
    if knob.export is None:
        can = [k.name for k in knobs.all_knobs() if k.export is not None]
        raise ConfigError(f"knob {name!r} cannot be baked into a checkpoint; these can: {', '.join(can) or 'none'}")
    from .config import convert

    print(f"[export] {knob.export(args.overrides[0], convert(value, knob.type, name), args.out)} ({args.knob})")
    return 0


def _grade_command(words: list[str], grader: str | None = None) -> int:
    """`harness grade FILE.jsonl [--grader NAME]`: one JSON verdict line per input line (format and graders:
    tasks/grading/regrade.py, `harness grade --help`)."""
    from rzoo.tasks.grading import regrade

    if len(words) != 1:
        raise ConfigError(regrade.usage())
    return regrade.run(words[0], sys.stdout, sys.stderr, grader or "rzoo")


def _tokenizer_path(spec: str) -> str:
    """What `AutoTokenizer` loads for `model=`: any model spec, or a folder holding only a tokenizer."""
    from pathlib import Path

    from . import models

    folder = Path(spec).expanduser()
    if folder.is_dir() and any((folder / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
        return str(folder)
    return models.resolve(spec).path


def _prompt_command(words: list[str]) -> int:
    """`harness prompt model=M task=T [eval.protocol=P] [eval.limit=N]`: one JSON line per problem, `task`, `id`,
    `text` (the rendered prompt, special tokens included: exactly what generation reads) and `n_tokens`; a
    task whose text must not be published (GPQA) gets ids and counts only."""
    import json

    from transformers import AutoTokenizer

    from .evaluation.protocol import load
    from .generation import thinking as T
    from .jobs import load_eval_tasks, resolve

    job = resolve("eval", [w for w in words if not w.startswith("preset=")] + ["preset=paper"])
    tokenizer = AutoTokenizer.from_pretrained(_tokenizer_path(job.config.model))
    protocol = load(job.eval.protocol)
    fmt = protocol.thinking_format(T.ThinkingFormat.detect(tokenizer))
    for td in load_eval_tasks(job.eval):
        publish = getattr(td.task, "publish_model_text", True)
        for p in td.problems:
            text = T.build_prompt(tokenizer, protocol.messages(td.task, p), fmt)
            row = {"task": td.name, "id": p.id, "protocol": protocol.name}
            if publish:
                row["text"] = text
            row["n_tokens"] = len(tokenizer.encode(text, add_special_tokens=False))
            print(json.dumps(row, ensure_ascii=False))
    return 0


def _zoo_command(args) -> int:
    from pathlib import Path

    from .zoo import recipes, run_zoo

    names = [r.name for r in recipes()]
    unknown = [n for n in args.overrides if n not in names]
    if unknown:
        raise ConfigError(f"harness zoo: unknown recipe(s) {', '.join(unknown)}; recipes: {', '.join(names)}")
    root = Path(args.runs or os.environ.get("RZOO_RUNS", "runs"))
    failed = run_zoo(root, args.overrides or None)
    if args.docs:  # the README's figures and screenshot, from this zoo (make zoo: docs/img)
        from .zoo import publish_docs

        for f in publish_docs(root, Path(args.docs)):
            print(f"[zoo] docs: {f}")
    return 1 if failed else 0


def _tasks_command(words: list[str]) -> int:
    """`harness tasks` lists tasks; `harness tasks show NAME` prints its prompt template."""
    from rzoo import tasks
    from rzoo.tasks.base import Problem

    from .generation.thinking import DEFAULT_FORMAT

    if not words:
        from .evaluation import protocol

        used: dict[str, list[str]] = {}  # task -> the protocols whose papers report it
        for name in protocol.names():
            for t in protocol.load(name).tasks:
                used.setdefault(t, []).append(name)
        for e in tasks.REGISTRY.entries():
            by = f"  [protocols: {', '.join(used[e.name])}]" if e.name in used else ""
            print(f"{e.name:<14} {e.description}{by}")
        print(f"{'jsonl:<path>':<14} any JSONL/JSON file (eval.question_field / eval.answer_field)")
        return 0
    if words[0] != "show" or len(words) != 2:
        raise ConfigError("usage: harness tasks [show NAME]")
    task = tasks.get(words[1])
    # a placeholder, never a real question (GPQA's text must not be printed)
    messages = task.messages(Problem("example", "<question>", "<gold>"))
    for m in messages:
        print(f"--- {m['role']} ---\n{m['content']}")
    print(f"--- assistant (pre-filled) ---\n{DEFAULT_FORMAT.open}...")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train reasoning models with published recipes; evaluate accuracy against thinking tokens.")
    parser.add_argument("command", nargs="?",
                        choices=["train", "eval", "train+eval", "methods", "tasks", "plot", "leaderboard", "export",
                                 "grade", "prompt", "zoo"])
    parser.add_argument("overrides", nargs="*", help="key=value overrides (grade: the JSONL file; export: the "
                                                     "checkpoint)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--runs", metavar="DIR", help="plot/leaderboard/zoo: runs root (default $RZOO_RUNS or ./runs)")
    parser.add_argument("--out", metavar="DIR", help="plot/leaderboard: output folder (default <runs>/plots, "
                                                     "<runs>/leaderboard)")
    parser.add_argument("--run", metavar="RUN_DIR", action="append", help="plot: only these runs (repeatable)")
    parser.add_argument("--screenshot", metavar="PNG", help="leaderboard: also save a headless-Chromium "
                                                            "screenshot of the index page")
    parser.add_argument("--docs", metavar="DIR", help="zoo: also copy its figures (PNG) and a Chromium screenshot of "
                                                      "its page (zoo.png) into DIR (make zoo: docs/img)")
    parser.add_argument("--knob", metavar="NAME=VALUE", help="export: the test-time knob value to bake in")
    parser.add_argument("--grader", metavar="NAME", help="grade: the registered grader (harness grade --help lists them)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command line's entry point; its exit status. In a pipe whose reader has gone (`harness methods |
    head -1`) it ends quietly with 141 (128 + SIGPIPE), as Unix tools do, instead of a traceback."""
    try:
        code = _main(argv)
        sys.stdout.flush()  # inside the try: a closed pipe shows at the last flush, not only at a print
        return code
    except BrokenPipeError:
        import signal

        # Python's advice: point stdout at /dev/null so the interpreter's own flush at exit fails no more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def _main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0
    if argv[0] == "grade" and any(a in ("-h", "--help") for a in argv[1:]):
        from rzoo.tasks.grading.regrade import usage

        print(usage())
        return 0
    if any(a in ("-h", "--help") for a in argv[1:]) and argv[0] in ("train", "eval", "train+eval"):
        try:
            from .jobs import key_help

            print(key_help(argv[0], [a for a in argv[1:] if "=" in a]))
        except _user_errors() as e:
            print(f"harness: error: {e}", file=sys.stderr)
            return 2
        return 0
    args = parser.parse_intermixed_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported (see models.set_cpu_threads)
    try:
        if args.command == "methods":
            from rzoo import methods

            for name in methods.names():
                print(f"{name:<12} {methods.REGISTRY.entry(name).description}")
            return 0
        if args.command == "tasks":
            return _tasks_command(args.overrides)
        if args.command == "export":
            return _export_command(args)
        if args.command == "zoo":
            return _zoo_command(args)
        given = [f"--{n}" for n in ("runs", "out", "run", "screenshot") if getattr(args, n)]
        if args.command not in ("plot", "leaderboard") and given:
            raise ConfigError(f"{', '.join(given)} belong to harness plot / leaderboard, not {args.command}")
        if args.command == "grade":
            return _grade_command(args.overrides, args.grader)
        if args.command == "prompt":
            return _prompt_command(args.overrides)
        if args.command in ("plot", "leaderboard"):
            if args.overrides:
                raise ConfigError(f"harness {args.command} takes options, not key=value: {' '.join(args.overrides)}")
            return (_plot_command if args.command == "plot" else _leaderboard_command)(args)
        from .app import Interrupted, run_job
        from .jobs import resolve

        try:
            run_job(resolve(args.command, args.overrides), progress=not args.no_progress)
            from . import distributed

            distributed.shutdown()  # only on success: after an error on one rank a barrier would wait forever
        except Interrupted as e:
            print(f"harness: {e}; the run is marked failed", file=sys.stderr)
            return 128 + e.signum  # the shell's convention for a process ended by a signal
        return 0
    except _user_errors() as e:
        if os.environ.get("RZOO_DEBUG"):
            traceback.print_exc()
        print(f"harness: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno not in WRITE_ERRNOS:
            raise
        # a full disk, a read-only or unwritable runs root: every file is written atomically, so what was
        # there before is intact; say which file and why, in one line
        print(f"harness: error: cannot write {e.filename or 'a file'}: {e.strerror} (runs root: "
              f"{os.environ.get('RZOO_RUNS', 'runs')}; nothing was half-written)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
