"""The testbed's tiny model: built from scratch, once, and cached like the GGUF conversion.

    harness eval model=testbed task=runsum eval.budgets=[4,8,12,16,20]
    harness train+eval method=kimi model=testbed:redundant ...

`testbed` is a 2-layer Llama (hidden 128, 4 heads of 32, 0.43M parameters) with a character-level
tokenizer from the `tokenizers` library (digits, printable ASCII, and one token each for `<think>`,
`\\n</think>`, "Wait", "Final Answer:" and `\\boxed{`) and a chat template in the same thinking format
as every other model, trained by the core SFT loop from random initialisation on the `runsum` task's
traces. It is saved with `save_pretrained`, so generation, vLLM, evaluation and the leaderboard
treat it like any model. `testbed:<variant>` is the same recipe on another trace variant
(`redundant`, `early_stop`, `no_chain`; `testbed` = `testbed:minimal`).

The build is deterministic by seed (fp32, one thread) and cached under `$RZOO_CACHE/models/` keyed by
a hash of the recipe; ~1-2 minutes on one core.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")
SPECIALS = ["<pad>", "<|end|>", "<unk>", "<|system|>", "<|user|>", "<|assistant|>"]
WORDS = ["<think>", "</think>", "\n</think>", "Wait", "Final Answer:", "\\boxed{"]
RECIPE_VERSION = 1  # bump when the code below changes what a build produces


@dataclass(frozen=True)
class Recipe:
    variant: str = "minimal"
    hidden_size: int = 128
    intermediate_size: int = 384
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    max_steps: int = 700
    batch_size: int = 64
    lr: float = 3e-3
    warmup_ratio: float = 0.05
    seed: int = 0

    def key(self) -> str:
        blob = json.dumps({**asdict(self), "version": RECIPE_VERSION}, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:10]


def build_tokenizer():
    """A character-level tokenizer (no merges) with the thinking-format words as single tokens."""
    from tokenizers import AddedToken, Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    chars = [chr(i) for i in range(32, 127)] + ["\n"]
    vocab = {tok: i for i, tok in enumerate(SPECIALS + WORDS + chars)}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    core.decoder = decoders.Fuse()
    core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    core.add_tokens([AddedToken(t, special=False, normalized=False) for t in WORDS])
    tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|end|>", pad_token="<pad>", unk_token="<unk>",
                                  clean_up_tokenization_spaces=False)
    tok.chat_template = CHAT_TEMPLATE
    return tok


def build_untrained(tokenizer, recipe: Recipe):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(recipe.seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=recipe.hidden_size, intermediate_size=recipe.intermediate_size,
        num_hidden_layers=recipe.num_hidden_layers, num_attention_heads=recipe.num_attention_heads,
        num_key_value_heads=recipe.num_attention_heads, max_position_embeddings=256, tie_word_embeddings=True,
        bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config)


def train(recipe: Recipe, out_dir: Path, progress: bool = True) -> Path:
    """Build the tokenizer and a random model, SFT it on the recipe's traces, save to `out_dir`."""
    from rzoo.harness.models import ResolvedModel
    from rzoo.harness.runstore import Run, atomic_write_json
    from rzoo.harness.sft import SFTTrainer
    from rzoo.harness.train_config import SFTConfig
    from rzoo.harness.trainer import TrainContext

    from .runsum import TASK

    work = out_dir.with_name(out_dir.name + ".build")
    shutil.rmtree(work, ignore_errors=True)
    tokenizer = build_tokenizer()
    init = work / "init"
    build_untrained(tokenizer, recipe).save_pretrained(init)
    tokenizer.save_pretrained(init)
    cfg = SFTConfig(model=str(init), train_data=f"runsum:{recipe.variant}", seed=recipe.seed, lr=recipe.lr,
                    weight_decay=0.0, warmup_ratio=recipe.warmup_ratio, lr_schedule="cosine", bf16=False,
                    batch_size=recipe.batch_size, micro_batch_size=recipe.batch_size, max_length=128,
                    max_steps=recipe.max_steps, save_every=0)
    run = Run(work / "run")
    run.path.mkdir(parents=True)
    atomic_write_json(run.path / "config.json", {"recipe": asdict(recipe)})
    data = TASK.examples(recipe.variant, split="train", seed=recipe.seed)
    ctx = TrainContext("testbed", run, ResolvedModel(str(init), str(init), "scratch"), data,
                       {"recipe": asdict(recipe)}, progress=progress)
    checkpoint = SFTTrainer(cfg, ctx).fit()
    shutil.copy(run.path / "train.jsonl", checkpoint / "train.jsonl")
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    checkpoint.rename(tmp)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    shutil.rmtree(work, ignore_errors=True)
    return out_dir


def build(variant: str = "minimal", progress: bool = True, **overrides):
    """The cached testbed model for `variant` (built on first use); returns a `ResolvedModel`."""
    from rzoo.harness.models import ModelError, ResolvedModel, cache_root
    from rzoo.harness.runstore import atomic_write_json

    from .runsum import VARIANTS

    if variant not in VARIANTS:
        raise ModelError(f"model 'testbed:{variant}': the testbed's variants are {', '.join(VARIANTS)}")
    recipe = Recipe(variant=variant, **overrides)
    out = cache_root() / "models" / f"testbed-{variant}-{recipe.key()}"
    marker = out / "rzoo_source.json"
    if not marker.exists():
        print(f"[model] building the testbed model ({variant} traces, {recipe.max_steps} steps) into {out} (once)",
              flush=True)
        train(recipe, out, progress)
        atomic_write_json(marker, {"recipe": asdict(recipe), "version": RECIPE_VERSION})
    spec = "testbed" if variant == "minimal" else f"testbed:{variant}"
    return ResolvedModel(spec, str(out), f"testbed:{variant}:{recipe.key()}")
