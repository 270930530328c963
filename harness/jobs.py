"""Jobs: a typed, validated job from command-line tokens (`resolve`) or Python keywords (`build`, what
`rzoo.train` / `rzoo.evaluate` call), and its `--help` (`key_help`). Both check every value against the same
field (type, range, help): the CLI's strings are converted, the API's values are type-checked.

The top of the layering, with `app.py` (running a job) and `cli.py` (the command line): only these
import methods, tasks and the leaderboard; the core receives tasks and data as objects.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ConfigError, apply_overrides, parse_tokens, suggest, valid_keys, with_preset

PRESET_NAMES = ("cpu", "paper")
ALIASES = {"task": "eval.task"}
COMMANDS = ("train", "eval", "train+eval")


@dataclass
class EvalJob:
    """`harness eval`: which model to evaluate (the rest is the eval section)."""
    model: str = dataclasses.field(default="default", metadata={
        "help": "model: hub id, local folder (a checkpoint), 'default' (SmolLM2-135M-Instruct) or 'testbed'"})


@dataclass
class Job:
    """What one `harness` command does, fully resolved and validated."""
    command: str  # one of COMMANDS
    preset: str
    config: Any  # the method's Config (train, train+eval) or EvalJob (eval)
    eval: Any  # the eval section (evaluation.config.eval_config_class())
    method: str | None = None
    declaration: Any = None  # the method's `harness.method.Method`
    resume: Path | None = None  # a run folder to continue

    @property
    def trains(self) -> bool:
        return self.command in ("train", "train+eval")

    @property
    def evaluates(self) -> bool:
        return self.command in ("eval", "train+eval")

    def to_dict(self) -> dict:
        out: dict = {"command": self.command, "preset": self.preset}
        if self.method:
            out["method"] = self.method
        out["config"] = dataclasses.asdict(self.config)
        if self.evaluates:
            out["eval"] = dataclasses.asdict(self.eval)
        return out


def _split(overrides: dict[str, Any], root_keys: list[str], eval_keys: list[str]):
    """Route overrides to the root config and the eval section; unknown keys get suggestions."""
    valid = root_keys + [f"eval.{k}" for k in eval_keys] + list(ALIASES)
    root, ev = {}, {}
    for raw, value in overrides.items():
        key = ALIASES.get(raw, raw)
        if key.startswith("eval.") and key[5:] in eval_keys:
            ev[key[5:]] = value
        elif key in root_keys:
            root[key] = value
        else:
            raise ConfigError(f"unknown config key {raw!r}.{suggest(raw, valid)}")
    return root, ev


def method_declaration(name: str):
    """The `Method` registered as `name`; a ConfigError for a recipe that does not train."""
    from rzoo import methods

    method = methods.get(name)
    if not method.trains:
        raise ConfigError(f"method {name!r} has no training step: it is the evaluation `harness eval "
                          f"{' '.join(method.evaluation)}`")
    return method


def _presets(method, preset: str) -> tuple[dict, dict]:
    """A method's preset split into its own keys and its `eval.` keys."""
    presets = method.presets.get(preset, {})
    return ({k: v for k, v in presets.items() if not k.startswith("eval.")},
            {k[5:]: v for k, v in presets.items() if k.startswith("eval.")})


# A paper's protocol is its whole evaluation: every problem, in order, and no base-model run, whatever the
# preset below it says (`eval.limit=...` and the rest still win).
WHOLE_EVALUATION = {"limit": None, "shuffle": False, "baseline": False}


def protocol_preset(name: str, overrides: dict[str, Any]) -> dict:
    """The eval values protocol `name` sets (a preset under the user's key=value overrides): a paper's protocol
    also evaluates every problem with no baseline (`WHOLE_EVALUATION`); the project's own (`rzoo`) leaves that to
    the preset. An explicit `eval.k` applies to every task, so it also drops the protocol's per-task samples."""
    from .evaluation.protocol import DEFAULT, load

    values = {"protocol": name, **({} if name == DEFAULT else WHOLE_EVALUATION), **load(name).settings}
    if "k" in overrides and "k_per_task" not in overrides:
        values["k_per_task"] = []
    return values


def resolve(command: str, tokens: list[str]) -> Job:
    """Parse `key=value` tokens into a validated Job."""
    return build(command, parse_tokens(tokens))


def build(command: str, overrides: dict[str, Any]) -> Job:
    """A validated Job from overrides keyed as on the command line (`lr`, `eval.budgets`, `task`, `method`,
    `preset`, `resume`): strings are converted by each field's type, other values checked against it."""
    from .evaluation.config import PRESETS as EVAL_PRESETS
    from .evaluation.config import eval_config_class

    if command not in COMMANDS:
        raise ConfigError(f"unknown command {command!r}; valid: {', '.join(COMMANDS)}")
    overrides = dict(overrides)
    if "resume" in overrides:
        return _resolve_resume(command, overrides)
    preset = overrides.pop("preset", "cpu")
    if preset not in PRESET_NAMES:
        raise ConfigError(f"preset {preset!r} is not valid; valid: {', '.join(PRESET_NAMES)}")
    name, method, method_eval = None, None, {}
    if command == "eval":
        if "method" in overrides:
            raise ConfigError("harness eval takes model=..., not method=... (use train+eval to train)")
        root_cfg = EvalJob()
    else:
        from rzoo import methods

        name = overrides.pop("method", None)
        if name is None:
            raise ConfigError(f"missing method=NAME; valid: {', '.join(methods.names())}")
        method = method_declaration(name)
        own, method_eval = _presets(method, preset)
        root_cfg = with_preset(method.config(), own)
    eval_cfg = eval_config_class()()
    root_over, eval_over = _split(overrides, valid_keys(root_cfg), valid_keys(eval_cfg))
    # layers, lowest first: the eval preset, the protocol's values, the method's eval preset, the overrides
    protocol = eval_over.get("protocol") or method_eval.get("protocol") or eval_cfg.protocol
    eval_cfg = with_preset(eval_cfg, {**EVAL_PRESETS[preset], **protocol_preset(protocol, eval_over), **method_eval})
    if command == "train" and eval_over:
        raise ConfigError(f"harness train does not evaluate; drop {', '.join('eval.' + k for k in eval_over)} "
                          "or use train+eval")
    return Job(command, preset, apply_overrides(root_cfg, root_over), apply_overrides(eval_cfg, eval_over),
               name, method)


def _resolve_resume(command: str, overrides: dict[str, Any]) -> Job:
    """`resume=<run dir>`: the run's saved config, then any overrides (e.g. more steps)."""
    from .evaluation import config as evaluation_config
    from .training.trainer import STATE_FILE

    path = Path(overrides.pop("resume")).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError(f"resume={path}: not a run folder (no config.json)")
    saved = json.loads((path / "config.json").read_text(encoding="utf-8"))
    if command == "eval" or saved.get("command") == "eval":
        if command != "eval" or saved.get("command") != "eval":
            raise ConfigError(f"resume={path}: a {saved.get('command')!r} run continues with harness "
                              f"{saved.get('command')}, not {command}")
        root_cfg, eval_cfg = EvalJob(**saved["config"]), evaluation_config.make(saved["eval"])
        root_over, eval_over = _split(overrides, valid_keys(root_cfg), valid_keys(eval_cfg))
        return Job("eval", saved["preset"], apply_overrides(root_cfg, root_over), apply_overrides(eval_cfg, eval_over),
                   resume=path)
    from .training.stages import resumable

    if not (path / "checkpoint" / STATE_FILE).is_file() and not resumable(path):
        raise ConfigError(f"resume={path}: not a resumable run folder (no {STATE_FILE}: it never saved a step)")
    name = overrides.pop("method", saved["method"])
    if name != saved["method"]:
        raise ConfigError(f"resume={path} is a {saved['method']!r} run, not {name!r}")
    if "preset" in overrides:
        raise ConfigError("resume= keeps the run's preset; override single keys instead")
    method = method_declaration(name)
    root_cfg = _saved_method_config(method, saved["preset"], saved["config"], path)
    eval_cfg = evaluation_config.make(saved.get("eval"))
    root_over, eval_over = _split(overrides, valid_keys(root_cfg), valid_keys(eval_cfg))
    return Job(command, saved["preset"], apply_overrides(root_cfg, root_over), apply_overrides(eval_cfg, eval_over),
               name, method, path)


def _saved_method_config(method, preset: str, saved: dict[str, Any], path: Path):
    """A method's config from a run's config.json. A key the code gained after the run was written takes the
    value the run's preset gives a new run (not the paper default: an old `preset=cpu` run stays a CPU run),
    and is named on stderr; a key the code no longer has is refused by name."""
    fresh = with_preset(method.config(), _presets(method, preset)[0])
    known = [f.name for f in dataclasses.fields(fresh)]
    gone = sorted(set(saved) - set(known))
    if gone:
        raise ConfigError(f"resume={path}: its config.json has keys this version of the method does not: "
                          f"{', '.join(gone)}")
    added = [k for k in known if k not in saved]
    if added:
        values = ", ".join(f"{k}={getattr(fresh, k)!r}" for k in added)
        print(f"[resume] keys added since this run was written take their values under preset={preset} "
              f"(key=value overrides still win): {values}",
              file=sys.stderr, flush=True)
    return dataclasses.replace(fresh, **saved)


def key_help(command: str, tokens: list[str]) -> str:
    """`harness <command> [method=NAME] --help`: every key, its default, where it comes from, its help."""
    from .config import field_help
    from .evaluation.config import PRESETS as EVAL_PRESETS
    from .evaluation.config import eval_config_class

    overrides = parse_tokens([t for t in tokens if t.startswith(("method=", "preset="))])
    preset = overrides.get("preset", "cpu")
    lines = [f"usage: harness {command} " + ("model=SPEC" if command == "eval" else "method=NAME")
             + " [preset=cpu|paper] [key=value ...]", ""]
    rows = []
    eval_preset = dict(EVAL_PRESETS.get(preset, {}))
    if command == "eval":
        rows += field_help(EvalJob)
    elif overrides.get("method"):
        method = method_declaration(overrides["method"])
        own, evals = _presets(method, preset)
        rows += field_help(method.config, own)
        eval_preset.update(evals)
    else:
        lines.append("Give method=NAME to list its keys (harness methods lists the names).")
    if command != "train":
        rows += [(f"eval.{n}", d, s if s == "preset" else "eval", h)
                 for n, d, s, h in field_help(eval_config_class(), eval_preset)]
    lines.append(f"  {'key':<26} {'default (preset=' + preset + ')':<22} {'from':<11} help")
    for name, default, source, text in rows:
        lines.append(f"  {name:<26} {default:<22} {source:<11} {text}")
    lines.append("\npreset=cpu (default) sizes the run for a 2-core CPU; preset=paper keeps the paper's values.")
    return "\n".join(lines)


def load_eval_tasks(cfg):
    """Load and subset every task up front, so bad names or files fail before any run folder exists."""
    import random

    from rzoo import tasks as registry
    from rzoo.tasks.base import find_data_dir

    from .data import TaskData

    data_dir = find_data_dir(cfg.data_dir)
    out = []
    for name in cfg.task:
        task = registry.get(name, cfg.question_field, cfg.answer_field)
        problems, source = task.load(data_dir)
        total = len(problems)
        if cfg.shuffle:
            problems = list(problems)
            random.Random(f"subset-{cfg.seed}").shuffle(problems)
        if cfg.limit is not None:
            problems = problems[:cfg.limit]
        out.append(TaskData(name, task, problems, source, total))
    return out


def load_train_data(cfg):
    """The training data a method's config names: a task's train split (RL) or SFT examples."""
    from rzoo import tasks as registry
    from rzoo.tasks.base import find_data_dir

    from .data import TaskData

    data_dir = find_data_dir(cfg.data_dir)
    if hasattr(cfg, "train_data"):
        return load_sft_data(cfg.train_data, cfg.data_dir)
    task = registry.get(cfg.train_task)
    problems, source = task.load(data_dir, split="train")
    return TaskData(cfg.train_task, task, problems, source, len(problems))


def load_sft_data(spec: str, data_dir: str | None = None):
    """SFT examples named like `train_data` (what a staged recipe's stage reads, `TrainContext.load_data`)."""
    from rzoo import tasks as registry
    from rzoo.tasks.base import find_data_dir

    return registry.load_examples(spec, find_data_dir(data_dir))
