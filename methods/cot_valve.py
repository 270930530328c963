"""CoT-Valve: a LoRA "length direction" Δθ, scaled by α at inference, so that θ + αΔθ writes shorter
chains as α grows (α in (0, 1) interpolates, α > 1 extrapolates).

Paper: Ma et al., "CoT-Valve: Length-Compressible Chain-of-Thought Tuning" (2025). The authors'
training code is unreleased; every choice the paper leaves open is a config field whose help says
"paper silent".

    plain      Δθ = a LoRA fine-tuned on the short chains of MixChain (θ writes the long ones), loss at α = 1
    ++         every chain of MixChain, the loss of a chain of length m (tokens) computed at θ + β_q Δθ with
               β_q = 1 - (m_q - m_min) / (m_max - m_min)   (m_min, m_max: that question's shortest and
               longest chains -- the paper's scope of the min/max is not explicit: per question here), each
               row at its own β inside one forward (`harness/models/lora.py` `row_scales`)
    +P         progressive: rounds over chains that get shorter round by round (the k-th longest chain
               of each question in round k), the LoRA carried from round to round, loss at α = 1

MixChain (long and short chains of the same questions): the testbed's `runsum:mixchain` (the minimal
chain and 1-4 re-checks of it, five per question), or a user's JSONL of paired chains
(`jsonl:<path>`, rows with question / thinking / answer; chains of one question share its text). The
paper builds it from the model itself (`mixchain_alphas`, the paper preset's default for ++ and +P): a
plain direction is trained on the given chains first (`<run>/mixchain/direction/`), then θ + αΔθ at each α
in {0.2, 0.4, 0.6, 0.8} writes a chain for every training question (greedy); the correct ones join their
question's chains (`<run>/mixchain/chains.jsonl`), and the variant trains on the result, its LoRA starting
from that direction. A run killed during the first phase starts it again on resume.

Run:  harness train+eval method=cot_valve                  (CPU preset: the testbed, α swept 0..1.25)
      harness train+eval method=cot_valve valve=plus_plus   (CoT-Valve++)
      harness export <run>/checkpoint --knob alpha=0.5 --out merged/    (merged weights at one α)

The checkpoint is peft's own format (the adapter, with its base named in adapter_config.json), which
`AutoModelForCausalLM.from_pretrained` loads with the adapter applied. α is this method's test-time
knob (`ALPHA` below, `eval.alphas`: peft's `LoraLayer.set_scale`), each α a point on the
accuracy-vs-thinking-tokens plot; the base model has no adapter and is evaluated at the budgets alone.
The SFT loop, with LoRA and per-example adapter scales, is the core's (`harness/training/sft.py`); what is
here is the data each variant trains on and the knob.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from rzoo.harness.config import ConfigError
from rzoo.harness.config import option as _f
from rzoo.harness.generation.knobs import Knob
from rzoo.harness.models.lora import lora_layers, set_lora_scale
from rzoo.harness.registry import Registry
from rzoo.harness.training import sft
from rzoo.harness.method import ADAPTER, FRONTIER, Method, Variants
from rzoo.harness.training.config import SFT_TINY, SFTConfig

VALVES = Registry("CoT-Valve variant")


@dataclass
class Config(SFTConfig):
    """CoT-Valve. Defaults are the paper's QwQ setting (LoRA rank 2, alpha 8, lr 1e-5, weight decay 0.01,
    at most 5 epochs) unless the help says otherwise; `preset=cpu` moves to the testbed."""
    model: str = _f("Qwen/QwQ-32B-Preview", "base model θ, which writes the long chains (paper: QwQ-32B-Preview)")
    train_data: str = _f("runsum:mixchain", "MixChain: chains of several lengths per question (runsum:mixchain; or "
                                            "jsonl:<path> with question/thinking/answer rows)")
    valve: str = _f("plain", "variant: plain, plus_plus (CoT-Valve++), plus_p (CoT-Valve+P) -- registered in this file")
    lora_rank: int = _f(2, "LoRA rank (paper: 2)", ge=1)
    lora_alpha: float = _f(8.0, "LoRA alpha (paper: 8)", gt=0)
    lora_targets: list[str] = _f(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                                 "modules that get a LoRA (paper silent: every linear layer of the blocks)")
    lr: float = _f(1e-5, "AdamW learning rate (paper: 1e-5)", gt=0, le=1)
    weight_decay: float = _f(0.01, "AdamW weight decay (paper: 0.01)", ge=0, le=1)
    epochs: float = _f(5.0, "passes over the data (paper: at most 5)", gt=0)
    mixchain_alphas: list[float] = _f([0.2, 0.4, 0.6, 0.8], "++ and +P: build MixChain from the model itself: a plain "
                                      "direction's chains at these alphas join the data (paper: 0.2-0.8; "
                                      "[] = train on the given chains alone)", ge=0)
    mixchain_steps: int | None = _f(None, "steps of the plain direction that writes MixChain (none: as max_steps / "
                                          "epochs)", ge=1)
    mixchain_budget: int = _f(4096, "thinking budget of the generated chains (paper silent)", ge=1)
    mixchain_answer_tokens: int = _f(256, "answer budget of the generated chains (paper silent)", ge=1)
    mixchain_questions: int | None = _f(None, "generate for the first N questions only (none: all)", ge=1)

    def validate(self) -> None:
        super().validate()
        if self.valve not in VALVES:
            raise ConfigError(f"valve must be one of {', '.join(VALVES.names())}, got {self.valve!r}")


PRESETS = {
    "paper": {"eval.alphas": [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]},
    # the testbed writes MixChain itself (`runsum:mixchain`: chains of every length per question)
    "cpu": {
        "model": "testbed:redundant", "train_data": "runsum:mixchain", "mixchain_alphas": [], "lr": 2e-3,
        "batch_size": 64,
        "micro_batch_size": 64, "max_length": 128, "max_steps": 150, "save_every": 50, "lora_rank": 2,
        "eval.task": ["runsum"], "eval.budgets": [24], "eval.alphas": [0.0, 0.25, 0.5, 0.75, 1.0, 1.25],
        "eval.limit": None, "eval.shuffle": False, "eval.answer_tokens": 6, "eval.batch_size": 128,
    },
}


def characters(example) -> int:
    return len(example.thinking)


def mixchain(examples, length=characters) -> dict[str, list]:
    """Chains grouped by question (the question's text), shortest first by `length` (train: tokens)."""
    groups: dict[str, list] = {}
    for ex in examples:
        key = ex.meta.get("question") or repr(ex.messages)
        groups.setdefault(key, []).append(ex)
    return {k: sorted(v, key=length) for k, v in groups.items()}


@VALVES.register("plain")
def plain(examples, length=characters) -> list:
    """The shortest chain of each question, loss at α = 1."""
    return [chains[0] for chains in mixchain(examples, length).values()]


@VALVES.register("plus_plus")
def plus_plus(examples, length=characters) -> list:
    """Every chain, each at β_q = 1 - (m_q - m_min)/(m_max - m_min) of its question (1 where all are equal)."""
    out = []
    for chains in mixchain(examples, length).values():
        lo, hi = length(chains[0]), length(chains[-1])
        for ex in chains:
            beta = 1.0 if hi == lo else 1.0 - (length(ex) - lo) / (hi - lo)
            out.append(replace(ex, meta={**ex.meta, "adapter_scale": beta}))
    return out


@VALVES.register("plus_p")
def plus_p(examples, length=characters) -> list:
    """Round k trains on the k-th longest chain of each question: chains get shorter round by round."""
    out = []
    for chains in mixchain(examples, length).values():
        for k, ex in enumerate(reversed(chains), 1):
            out.append(replace(ex, meta={**ex.meta, "round": k}))
    return out


def label(cfg: Config) -> str:
    """The curve's name on plots and the leaderboard: the variant is what tells runs apart."""
    return {"plain": "cot_valve", "plus_plus": "cot_valve++", "plus_p": "cot_valve+P"}.get(cfg.valve, cfg.valve)


def export_merged(checkpoint, alpha: float, out) -> Path:
    """Merge a LoRA checkpoint (peft format) into its base at scale `alpha`: weights W + alpha * (B A) *
    lora_alpha / r, saved (with the tokenizer) as a plain model that `AutoModelForCausalLM` and vLLM load.
    Written to a temp folder and renamed."""
    import torch
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rzoo.harness.models import ModelError
    from rzoo.harness.runstore import atomic_folder, atomic_write_json

    checkpoint, out = Path(checkpoint), Path(out)
    if not (checkpoint / "adapter_config.json").is_file():
        raise ModelError(f"{checkpoint}: not an adapter checkpoint (no adapter_config.json); nothing to merge")
    base_path = PeftConfig.from_pretrained(checkpoint).base_model_name_or_path
    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, checkpoint)
    set_lora_scale(model, alpha)
    merged = model.merge_and_unload()
    meta_path = checkpoint / "method.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    with atomic_folder(out) as tmp:
        merged.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(checkpoint).save_pretrained(tmp)
        atomic_write_json(tmp / "method.json", {**meta, "merged_from": str(checkpoint.resolve()), "alpha": float(alpha)})
    return out


# The test-time knob: θ + αΔθ, every LoRA adapter's scale set to α (peft's `LoraLayer.set_scale`, which
# multiplies lora_alpha / r by α). The base model has no adapter (`on_base=False`).
ALPHA = Knob("alpha", "α", "CoT-Valve: scale the LoRA length direction by each alpha (adapter checkpoints)",
             title="CoT-Valve scale", point="α", key="alphas", type=float, order=2, on_base=False,
             supported=lambda model: bool(lora_layers(model)),
             apply=lambda engine, value, cfg: set_lora_scale(engine.model, value), export=export_merged)


def train(cfg: Config, ctx):
    from peft import LoraConfig
    from transformers import AutoTokenizer

    from .cot_valve_mixchain import self_mixchain

    adapter = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, target_modules=list(cfg.lora_targets),
                         lora_dropout=0.0, bias="none", task_type="CAUSAL_LM")
    tokenizer = AutoTokenizer.from_pretrained(ctx.model.path)

    def tokens(example) -> int:  # a chain's length in the model's tokens
        return len(tokenizer.encode(example.thinking, add_special_tokens=False))

    examples, start = list(ctx.data.examples), None
    if cfg.mixchain_alphas and cfg.valve != "plain":
        examples, start = self_mixchain(cfg, ctx, adapter, examples, tokens)
    return sft.train(cfg, ctx, adapter=adapter, examples=VALVES.get(cfg.valve)(examples, tokens), init_adapter=start)


METHOD = Method(name="cot_valve", paper="Ma et al. 2025, CoT-Valve: Length-Compressible Chain-of-Thought Tuning",
                config=Config, presets=PRESETS, train=train, variants=Variants("valve", VALVES), knobs=(ALPHA,),
                label=label, checkpoint=ADAPTER, tiny=SFT_TINY, figures=(FRONTIER,))
