"""Methods (trainer plugins), imported as `rzoo.methods`.

A method is one module with `NAME`, a `Config` dataclass inheriting one of the core's `RLConfig` /
`SFTConfig` (paper defaults, field help), `PRESETS` ("paper" and "cpu"; `eval.`-prefixed keys set the
evaluation section) and `train(cfg, ctx) -> checkpoint path` (`ctx`: `harness.training.trainer.TrainContext`).
Optional hooks, read by the app: `label(cfg)` (how its curves are named, e.g. by variant) and
`checkpoint_curves(run_path)` (extra evaluations of its run: several checkpoints on one curve).
A method that owns a test-time knob declares it in its file (`harness.generation.knobs.Knob`) and lists
it in `KNOBS` below. The registries are explicit and lazy: listing methods imports no method module (and
no torch).
"""
from __future__ import annotations

from rzoo.harness.registry import Registry

REGISTRY = Registry("method")
REGISTRY.add("grpo", "rzoo.methods.grpo", "R1-Zero GRPO: rule rewards (accuracy + format), group advantages, k3 KL")
REGISTRY.add("kimi", "rzoo.methods.kimi", "Kimi k1.5: squared mirror-descent surrogate, token length penalty, "
             "curriculum + prioritised sampling")
REGISTRY.add("cot_valve", "rzoo.methods.cot_valve", "CoT-Valve: a LoRA length direction scaled by alpha at inference "
             "(++ and +P variants)")
REGISTRY.add("deepscaler", "rzoo.methods.deepscaler", "DeepScaleR: GRPO with staged context (8K -> 16K -> 24K), "
             "token-mean loss, entropy bonus, correct-and-closed reward")
REGISTRY.add("latent", "rzoo.methods.latent", "latent recurrence (Huginn): a recurrent-depth model, random depth in "
             "training, truncated backprop, KL early exit")
REGISTRY.add("long2short", "rzoo.methods.long2short", "Kimi k1.5 long2short: a long-thinking model made short by "
             "weight merging, shortest rejection sampling, DPO or length-penalised RL (variant=)")
REGISTRY.add("dapo", "rzoo.methods.dapo", "DAPO: clip-higher, dynamic sampling with refill, token-level loss, soft "
             "over-long punishment, overlong filtering (loss=gspo: GSPO's sequence ratio)")
REGISTRY.add("dr_grpo", "rzoo.methods.dr_grpo", "Dr. GRPO: advantage without std scaling, constant normaliser "
             "instead of 1/|o_i|")
REGISTRY.add("s1", "rzoo.methods.s1", "s1: SFT on reasoning traces (completion-only loss) + budget forcing (cap, Wait)")

# Test-time knobs the methods own, registered with the core by the app (`harness.jobs.bootstrap`).
KNOBS = {
    "alpha": "rzoo.methods.cot_valve:ALPHA",
    "recurrence": "rzoo.methods.latent:RECURRENCE",
    "stage": "rzoo.methods.deepscaler:STAGE",
    "token_bound": "rzoo.methods.s1_controls:TOKEN_BOUND",
    "step_bound": "rzoo.methods.s1_controls:STEP_BOUND",
    "think_class": "rzoo.methods.s1_controls:THINK_CLASS",
    "rejection": "rzoo.methods.s1_controls:REJECTION",
}


def get(name: str):
    """The method module registered under `name` (raises UnknownName with suggestions)."""
    return REGISTRY.load(name)
