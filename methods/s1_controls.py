"""s1's other ways of controlling how long a model thinks, as test-time knobs (Muennighoff et al. 2025,
"s1: Simple test-time scaling", §3.2, Table 3, Appendix E), scored by Control / Scaling / Performance
(`harness/evaluation/controls.py`) against budget forcing:

- `token_bound` (`eval.token_bounds=[N, ...]`): the prompt states an upper bound, "Think for up to N
  tokens."; the setting's bound is N.
- `step_bound` (`eval.step_bounds=[N, ...]`): "Think for up to N steps."; a step is `eval.step_tokens`
  tokens for the bound Control measures (s1: ~100; the testbed's conditional traces: 5). With bound forcing
  the thinking stops where the trace's step countdown reaches 0 (s1's rule; the task finds it:
  `Task.countdown_zero`), not at N x step_tokens tokens (`harness/generation/countdown.py`).
- `think_class` (`eval.think_classes=[short,long]`): s1's two class prompts; they state no number, so a
  class has a bound only where `eval.class_bounds=[SHORT,LONG]` gives one (ours: s1 does not say how its
  class Control was counted).
- `bound_forcing` (`eval.bound_forcing=[false,true]`, the core's): each of the three with and without
  budget forcing at the stated bound.
- `rejection` (`eval.rejection_budgets=[B, ...]`): sample at temperature 1 until the thinking fits under B
  (`harness/generation/rejection.py`), at most `eval.rejection_tries` tries, the tries used recorded per
  sample.

    harness eval model=testbed:conditional task=runsum eval.budgets=[2,4,8,16] eval.token_bounds=[2,4,8,16] \\
        eval.bound_forcing=[false,true] eval.step_bounds=[1,2,4] eval.step_tokens=5 \\
        eval.think_classes=[short,long] eval.class_bounds=[5,14] eval.rejection_budgets=[2,4,8,16]

The prompts are s1's, kept as data with their sources (`s1_controls.json`) and placed after the question as
s1's evaluation does (`Task.instruct`); a task with a format of its own words them its own way (the testbed's
character-level model reads a compact form: `tasks/runsum_controls.py`).
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from rzoo.harness.config import ConfigError
from rzoo.harness.generation.knobs import PROMPT, Knob, Option
from rzoo.harness.method import CONTROLS, NONE, Method

DATA = Path(__file__).with_name("s1_controls.json")

# The controls on the testbed (`harness zoo`, `bench/controls.py`): s1's Table 3 on testbed:conditional, 500 problems
TESTBED_EVAL = ["model=testbed:conditional", "task=runsum", "eval.limit=none", "eval.budgets=[2,4,8,16]",
                "eval.token_bounds=[2,4,8,16]", "eval.bound_forcing=[false,true]", "eval.step_bounds=[1,2,4]",
                "eval.step_tokens=5", "eval.think_classes=[short,long]", "eval.class_bounds=[5,14]",
                "eval.rejection_budgets=[2,4,8,16]", "eval.answer_tokens=8", "eval.batch_size=128"]


@lru_cache(maxsize=None)
def prompts() -> dict:
    """s1's control prompts and their sources (`s1_controls.json`)."""
    return json.loads(DATA.read_text(encoding="utf-8"))


def _class_index(value: str) -> int:
    classes = list(prompts()["classes"])
    if value not in classes:
        raise ConfigError(f"eval.think_classes: {value!r} is not a thinking class; valid: {', '.join(classes)}")
    return classes.index(value)


def _class_bound(value: str, cfg) -> int | None:
    index = _class_index(value)
    bounds = getattr(cfg, "class_bounds", [])
    if not bounds:
        return None
    if len(bounds) != len(prompts()["classes"]):
        raise ConfigError(f"eval.class_bounds needs one bound per class ({', '.join(prompts()['classes'])}), "
                          f"got {bounds}")
    return bounds[index]


def _rejection(engine, prompts_, value, cfg, problems, k, fmt, progress):
    from rzoo.harness.generation import rejection

    return rejection.sample(engine, prompts_, value, problems=problems, k=k, cfg=cfg, fmt=fmt, progress=progress)


TOKEN_BOUND = Knob(
    "token_bound", "N", "token-conditional control (s1): state 'Think for up to N tokens.' in the prompt, one "
    "setting per N", title="token-conditional", point="N", key="token_bounds", type=int, bounds={"ge": 1},
    kind=PROMPT, order=4, instruction=lambda value, cfg: prompts()["token"].replace("{N}", str(value)),
    bound=lambda value, cfg: value)

STEP_BOUND = Knob(
    "step_bound", "S", "step-conditional control (s1): state 'Think for up to N steps.' in the prompt, one setting "
    "per N", title="step-conditional", point="S", key="step_bounds", type=int, bounds={"ge": 1}, kind=PROMPT,
    order=5, options=(Option("step_tokens", int, 100, "step-conditional: thinking tokens per step, for the bound "
                                                       "(s1: ~100; the testbed's conditional traces: 5)",
                             {"ge": 1}),),
    instruction=lambda value, cfg: prompts()["step"].replace("{N}", str(value)),
    bound=lambda value, cfg: value * cfg.step_tokens, countdown=True)

THINK_CLASS = Knob(
    "think_class", "class", "class-conditional control (s1): a 'think briefly' / 'think thoroughly' prompt, one "
    "setting per class (short, long)", title="class-conditional", key="think_classes", type=str, kind=PROMPT,
    order=6, options=(Option("class_bounds", list[int], [], "class-conditional: thinking tokens each class allows, "
                                                            "[short, long], for Control and bound forcing "
                                                            "([] = none stated)", {"ge": 1}),),
    instruction=lambda value, cfg: prompts()["classes"][list(prompts()["classes"])[_class_index(value)]],
    bound=_class_bound)

REJECTION = Knob(
    "rejection", "R", "rejection sampling (s1): sample at temperature 1 until the thinking fits under each budget",
    title="rejection sampling", point="R", key="rejection_budgets", type=int, bounds={"ge": 1}, kind=PROMPT,
    order=7, options=(Option("rejection_tries", int, 64, "rejection sampling: tries per sample before the last "
                                                         "one is kept as it is (s1: until it fits)", {"ge": 1}),
                      Option("rejection_temperature", float, 1.0, "rejection sampling: temperature (s1: 1)",
                             {"gt": 0, "le": 10})),
    bound=lambda value, cfg: value, generate=_rejection)


# A recipe with no training step: s1's controls, measured on the testbed model trained on conditional traces
# (`harness zoo` runs its evaluation like any recipe).
METHOD = Method(name="s1_controls", paper="Muennighoff et al. 2025, s1 §3.2, Table 3 (controls of thinking length)",
                config=None, train=None, checkpoint=NONE, evaluation=tuple(TESTBED_EVAL),
                knobs=(TOKEN_BOUND, STEP_BOUND, THINK_CLASS, REJECTION), figures=(CONTROLS,))
