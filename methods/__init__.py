"""Methods (trainer plugins), imported as `rzoo.methods`.

A method is one file that ends with one declaration, `METHOD = Method(...)` (`harness/method.py`): its
`Config` dataclass (inheriting the core's `RLConfig` or `SFTConfig`; paper defaults, field help), its presets
("paper" and "cpu"; `eval.`-prefixed keys set the evaluation), its `train(cfg, ctx) -> checkpoint path`, and
what it adds around them (variants, test-time knobs, extra curves, how its runs are named, what its checkpoint
is, a tiny configuration for the tests). Adding a method is one new file and one line below.

The registry is explicit and lazy: listing methods imports no method module (and no torch). Methods outside
this package join through `RZOO_METHODS` (comma-separated `package.module:METHOD` targets, read on every
lookup, so subprocesses such as `harness zoo`'s recipes see them too) or `register(METHOD)`.
"""
from __future__ import annotations

import os

from rzoo.harness.method import Method
from rzoo.harness.registry import Registry, UnknownName

# Knobs are registered in this order (alpha, recurrence, stage, then s1's controls): it is the column order of
# samples.jsonl and results.json.
REGISTRY = Registry("method")
REGISTRY.add("grpo", "rzoo.methods.grpo:METHOD", "R1-Zero GRPO: rule rewards (accuracy + format), group advantages, "
             "k3 KL")
REGISTRY.add("kimi", "rzoo.methods.kimi:METHOD", "Kimi k1.5: squared mirror-descent surrogate, token length penalty, "
             "curriculum + prioritised sampling")
REGISTRY.add("cot_valve", "rzoo.methods.cot_valve:METHOD", "CoT-Valve: a LoRA length direction scaled by alpha at "
             "inference (++ and +P variants)")
REGISTRY.add("latent", "rzoo.methods.latent:METHOD", "latent recurrence (Huginn): a recurrent-depth model, random "
             "depth in training, truncated backprop, KL early exit")
REGISTRY.add("deepscaler", "rzoo.methods.deepscaler:METHOD", "DeepScaleR: GRPO with staged context (8K -> 16K -> "
             "24K), token-mean loss, entropy bonus, correct-and-closed reward")
REGISTRY.add("long2short", "rzoo.methods.long2short:METHOD", "Kimi k1.5 long2short: a long-thinking model made "
             "short by weight merging, shortest rejection sampling, DPO or length-penalised RL (variant=)")
REGISTRY.add("dapo", "rzoo.methods.dapo:METHOD", "DAPO: clip-higher, dynamic sampling with refill, token-level loss, "
             "soft over-long punishment, overlong filtering (loss=gspo: GSPO's sequence ratio)")
REGISTRY.add("dr_grpo", "rzoo.methods.dr_grpo:METHOD", "Dr. GRPO: advantage without std scaling, constant normaliser "
             "instead of 1/|o_i|")
REGISTRY.add("r1", "rzoo.methods.r1:METHOD", "DeepSeek-R1's pipeline: cold-start SFT, GRPO with a language-"
             "consistency reward, rejection-sampling SFT of the base, final RL (stages)")
REGISTRY.add("prm", "rzoo.methods.prm:METHOD", "a process reward model: the policy's chains labelled step by step "
             "(exact, or Math-Shepherd's rollouts), a token head; evaluates search guided by it")
REGISTRY.add("s1", "rzoo.methods.s1:METHOD", "s1: SFT on reasoning traces (completion-only loss) + budget forcing "
             "(cap, Wait)")
REGISTRY.add("s1_controls", "rzoo.methods.s1_controls:METHOD", "s1's test-time controls (token/step/class-"
             "conditional prompts, bound forcing, rejection sampling) on testbed:conditional; no training")

PLUGINS_ENV = "RZOO_METHODS"
_plugged: set[str] = set()


def _plugins() -> None:
    """Register the methods `RZOO_METHODS` names that are not registered yet."""
    for target in filter(None, (t.strip() for t in os.environ.get(PLUGINS_ENV, "").split(","))):
        if target in _plugged:
            continue
        module, _, attr = target.partition(":")
        if not attr:
            raise UnknownName(f"{PLUGINS_ENV}: {target!r} is not of the form package.module:METHOD")
        import importlib

        method = getattr(importlib.import_module(module), attr)
        _plugged.add(target)
        if method.name not in REGISTRY:
            register(method, f"{method.paper} ({target})")


def names() -> list[str]:
    _plugins()
    return REGISTRY.names()


def get(name: str) -> Method:
    """The declaration of the method registered under `name` (raises UnknownName with suggestions)."""
    _plugins()
    method = REGISTRY.get(name)
    if not isinstance(method, Method) or method.name != name:
        raise TypeError(f"method {name!r}: its registry target is not a Method declaration named {name!r}")
    return method


def all_methods() -> list[Method]:
    """Every declaration, in registration order."""
    _plugins()
    return [get(e.name) for e in REGISTRY.entries_in_order()]


def register(method: Method, description: str = "") -> Method:
    """Register a declaration made outside this package (a test, a plugin), its knobs with it."""
    REGISTRY.register(method.name, description or method.paper)(method)
    from rzoo.harness.generation import knobs

    if knobs.KNOBS.filled:  # else the knob registry's first lookup adds them (`register_knobs`)
        for knob in method.knobs:
            knobs.KNOBS.register(knob.name, method.name)(knob)
    return method


def unregister(name: str) -> None:
    """Take a method registered with `register` out again, its knobs with it."""
    from rzoo.harness.generation import knobs

    method = get(name)
    REGISTRY.remove(name)
    for knob in method.knobs:
        if knob.name in knobs.KNOBS:
            knobs.KNOBS.remove(knob.name)


def register_knobs(registry: Registry) -> None:
    """The `rzoo.knobs` extension point (pyproject.toml): every method's test-time knobs, added to the core's
    knob registry on its first lookup."""
    for method in all_methods():
        for knob in method.knobs:
            registry.register(knob.name, method.name)(knob)
