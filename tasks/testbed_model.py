"""The testbed's tiny model: built from scratch, once, and cached like the GGUF conversion.

    harness eval model=testbed task=runsum eval.budgets=[4,8,12,16,20]
    harness train+eval method=kimi model=testbed:redundant ...

`testbed` is a 2-layer Llama (hidden 128, 4 heads of 32, RoPE base 30, 0.44M parameters) with a
character-level tokenizer from the `tokenizers` library (printable ASCII, a space + digit or "_" as one
token, and one token each for `<think>`, `\\n</think>`, "Wait", "Final Answer:" and `\\boxed{`) and a
chat template in the same thinking format
as every other model, trained by the core SFT loop from random initialisation on the `runsum` task's
traces (`testbed` = `testbed:minimal`). It is saved with `save_pretrained`, so generation, vLLM,
evaluation and the leaderboard treat it like any model. `testbed:<variant>` (`redundant`,
`early_stop`, `no_chain`) is that model fine-tuned on another trace variant, again until the chain
(here: with its "Wait"s) is learned on validation problems: the chain is learned once, from the
minimal traces; trained from scratch on early-stopping traces it was not learned in 1,500 steps
(validation chain accuracy 0.27). After a "Wait" each step reads its digit one slot further back; a
fine-tune learns that in ~800 steps (measured: post-Wait step accuracy 0.05 -> 0.98). `testbed:short` is
`testbed:redundant` fine-tuned back on the minimal traces (`DERIVED`): long2short's short model to merge with.

The build is deterministic by seed (fp32, one thread) and cached under `$RZOO_CACHE/models/` keyed by
a hash of the recipe and of the source of every module that decides what a build produces (`BUILD_CODE`:
the SFT loop, the traces, the thinking format, this file...), so a change to any of them builds anew
instead of reusing a stale model; ~2 minutes on one core. The small RoPE base and lr 3e-3 are measured choices:
with them the chain is learned by step ~700; with RoPE base 10,000 or lr 1e-3 it had not been by 1,000.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")
SPECIALS = ["<pad>", "<|end|>", "<unk>", "<|system|>", "<|user|>", "<|assistant|>"]
WORDS = ["<think>", "</think>", "\n</think>", "Wait", "Final Answer:", "\\boxed{"]
SLOT_CHARS = "0123456789_"
# The modules whose code decides what a build produces; their source is part of the cache key.
BUILD_CODE = ("rzoo.tasks.testbed_model", "rzoo.tasks.runsum", "rzoo.tasks.runsum_controls", "rzoo.harness.data", "rzoo.harness.generation.thinking",
              "rzoo.harness.training.sft", "rzoo.harness.training.trainer", "rzoo.harness.training.config",
              "rzoo.harness.training.losses", "rzoo.harness.models.loading", "rzoo.harness.models.recurrent")


@functools.cache
def code_hash(modules: tuple[str, ...] = BUILD_CODE) -> str:
    """sha256 of the modules' source files, in order (found without importing them)."""
    h = hashlib.sha256()
    for name in modules:
        h.update(name.encode())
        h.update(Path(importlib.util.find_spec(name).origin).read_bytes())
    return h.hexdigest()


def recipe_key(recipe) -> str:
    """The cache key of a build recipe: its fields and the code that builds it, hashed."""
    blob = json.dumps({**asdict(recipe), "code": code_hash()}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:10]


# Testbed models fine-tuned from another testbed model than the minimal one: variant -> (the model it starts
# from, the traces it learns). `short`: the long model (`redundant`) taught the minimal chain again, the short
# model long2short's merge averages it with (a model and its own fine-tune, as Kimi merges a long and a short
# model from one base; the minimal model itself, the long model's parent, averaged with it gave accuracy 0.11-0.65)
# `mixed`: the early_stop model taught to write its steps in either of two languages (R1-Zero's mixing, `runsum.py`),
# the base R1's pipeline starts from.
DERIVED = {"short": ("redundant", "minimal"), "mixed": ("early_stop", "mixed")}


def traces_of(variant: str) -> str:
    """The runsum trace variant a testbed model variant learns."""
    return DERIVED[variant][1] if variant in DERIVED else variant


@dataclass(frozen=True)
class Recipe:
    variant: str = "minimal"
    hidden_size: int = 128
    intermediate_size: int = 384
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    rope_theta: float = 30.0
    max_steps: int = 1500  # the cosine schedule's length; chain variants stop once converged
    min_steps: int = 300
    converged: float = 0.99  # validation accuracy on chain digits (teacher-forced) that ends training
    variant_steps: int = 1500  # fine-tuning from the minimal model: the schedule's length (converges earlier)
    # early_stop's post-"Wait" step (its digit one slot further back) is learned abruptly, late in a short schedule:
    # with 1,500 steps an AVX2 host learned it and an AVX-512 host did not (validation chain accuracy flat at 0.955
    # for 1,200 steps; one "Wait" then gave 0.45 -> 0.46); a 3,000-step schedule (a higher lr for longer) converged
    # there at step 1,350 (0.991): capped at 16 tokens 0.454, with one "Wait" 0.920
    early_stop_steps: int = 3000
    variant_lr: float = 2e-3
    no_chain_steps: int = 300  # no chain to converge on: a fixed length
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.1
    adam_beta2: float = 0.95
    warmup_steps: int = 40
    seed: int = 0

    def key(self) -> str:
        return recipe_key(self)


def build_tokenizer():
    """A character-level tokenizer (no merges) with the thinking-format words as single tokens."""
    from tokenizers import AddedToken, Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    chars = [chr(i) for i in range(32, 127)] + ["\n"]
    slots = [" " + c for c in SLOT_CHARS]  # a slot (or a chain step) is one token: the space is part of it
    vocab = {tok: i for i, tok in enumerate(SPECIALS + WORDS + chars + slots)}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[(" ", c) for c in SLOT_CHARS], unk_token="<unk>"))
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
        rope_theta=recipe.rope_theta,
        bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config)


def train(recipe: Recipe, out_dir: Path, progress: bool = True, start: Path | None = None) -> Path:
    """SFT on the recipe's traces and save to `out_dir` (an empty folder: the build's private work folder,
    `harness/models/cache_build.py`): from a random model with a new tokenizer (the minimal variant, until the
    chain has converged), or from the model in `start` (other variants). Scratch files (the initial model, the
    training run) go to `<out_dir>-scratch`, removed at the end."""
    from rzoo.harness.models import ResolvedModel
    from rzoo.harness.runstore import Run, atomic_write_json, swap_folder
    from rzoo.harness.training.sft import SFTTrainer
    from rzoo.harness.training.config import SFTConfig
    from rzoo.harness.training.trainer import TrainContext

    from .runsum import TASK

    work = out_dir.with_name(out_dir.name + "-scratch")
    shutil.rmtree(work, ignore_errors=True)
    tokenizer = build_tokenizer()
    if start is None:
        init = work / "init"
        build_untrained(tokenizer, recipe).save_pretrained(init)
        tokenizer.save_pretrained(init)
    else:
        init = start
    chain = recipe.variant != "no_chain"
    steps = (recipe.max_steps if start is None else recipe.no_chain_steps if not chain
             else recipe.early_stop_steps if traces_of(recipe.variant) == "early_stop" else recipe.variant_steps)
    cfg = SFTConfig(model=str(init), train_data=f"runsum:{traces_of(recipe.variant)}", seed=recipe.seed,
                    lr=recipe.lr if start is None else recipe.variant_lr,
                    weight_decay=recipe.weight_decay, adam_beta2=recipe.adam_beta2,
                    warmup_ratio=recipe.warmup_steps / steps, lr_schedule="cosine", dtype="float32",
                    batch_size=recipe.batch_size, micro_batch_size=recipe.batch_size, max_length=128,
                    max_steps=steps, save_every=0)
    run = Run(work / "run")
    run.path.mkdir(parents=True)
    atomic_write_json(run.path / "config.json", {"recipe": asdict(recipe)})
    data = TASK.examples(traces_of(recipe.variant), split="train", seed=recipe.seed)
    ctx = TrainContext("testbed", run, ResolvedModel(str(init), str(init), "scratch"), data,
                       {"recipe": asdict(recipe)}, progress=progress)
    checkpoint = SFTTrainer(cfg, ctx, stop=_converged(recipe, tokenizer) if chain else None).fit()
    shutil.copy(run.path / "train.jsonl", checkpoint / "train.jsonl")
    swap_folder(checkpoint, out_dir)
    shutil.rmtree(work, ignore_errors=True)
    return out_dir


def chain_accuracy(model, tokenizer, rows) -> float:
    """Teacher-forced accuracy on the chain's step tokens (" 0".." 9", and "A".."J" where a trace writes a step
    in the second language, `runsum.SECOND_LANGUAGE`) of tokenised examples. A step is right when its value is:
    which language a `mixed` trace writes the next step in is a coin flip no model can predict."""
    import torch

    from rzoo.harness.training.sft import collate

    from .runsum import SECOND_LANGUAGE

    digits = tokenizer.convert_tokens_to_ids([" " + d for d in "0123456789"])
    letters = tokenizer.convert_tokens_to_ids(list(SECOND_LANGUAGE))
    ids, attn, cmask = (t.to(model.device) for t in collate(rows, tokenizer.pad_token_id))  # the model's device
    with torch.no_grad():
        pred = model(input_ids=ids, attention_mask=attn).logits[:, :-1].argmax(-1)
    value = torch.arange(len(tokenizer), device=ids.device)  # token id -> the id of its value's digit token
    value[letters] = torch.tensor(digits, device=ids.device)
    target = ids[:, 1:]
    chain = cmask[:, 1:].bool() & torch.isin(target, torch.tensor(sorted(digits + letters), device=ids.device))
    return float((value[pred[chain]] == value[target[chain]]).float().mean())


def convergence(journal: Path, recipe: Recipe) -> dict:
    """What the build's journal says about its stop rule: the last validation check's chain accuracy, the
    steps run, and whether the rule fired (`converged`; None for `no_chain`, which has no chain to learn)."""
    rows = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    checks = [r["validation_chain_accuracy"] for r in rows if "validation_chain_accuracy" in r]
    acc = checks[-1] if checks else None
    done = None if recipe.variant == "no_chain" else acc is not None and acc >= recipe.converged
    return {"converged": done, "validation_chain_accuracy": acc, "steps": rows[-1]["step"] if rows else 0}


def _warn_unconverged(spec: str, record: dict, recipe: Recipe) -> None:
    """Each time an unconverged build is used: a host's numerics (CPU, GPU) decide whether the chain is learned in
    the schedule (seen: on an H200 GPU early_stop had not learned it by step 2,400 of 3,000; on an AVX-512 CPU
    conditional ends at 0.962 after 1,500), and the effects measured on a model depend on what it learned."""
    if record.get("converged") is False:
        print(f"[model] warning: {spec} ended its {record['steps']}-step schedule before its stop rule (validation "
              f"chain accuracy {record['validation_chain_accuracy']:.3f} < {recipe.converged}); what it learned, and "
              "the effects measured on it, may differ from docs/measurements.md", file=sys.stderr, flush=True)


def _converged(recipe: Recipe, tokenizer):
    """A stop rule for the SFT loop: every 50 steps from `min_steps`, the chain accuracy on the validation
    problems' traces of the recipe's variant; stop at `recipe.converged`. (Grokking-like: the chain is
    learned abruptly, after 400-800 steps depending on the seed.)"""
    from rzoo.harness.generation import thinking as T
    from rzoo.harness.training.sft import tokenize

    from .runsum import TASK

    fmt = T.ThinkingFormat.detect(tokenizer)
    rows = [tokenize(tokenizer, ex, fmt, 128) for ex in TASK.examples(traces_of(recipe.variant),
                                                                      split="validation").examples]

    def stop(trainer, step: int, row: dict) -> bool:
        if step < recipe.min_steps or step % 50:
            return False
        model = trainer.accelerator.unwrap_model(trainer.model)
        model.eval()
        row["validation_chain_accuracy"] = acc = chain_accuracy(model, tokenizer, rows)
        model.train()
        return acc >= recipe.converged

    return stop


def _complete(folder: Path) -> bool:
    return (folder / "rzoo_source.json").exists()


def build_into(variant: str, overrides: dict, work: str, progress: bool, start: str | None) -> None:
    """Build `variant` into the empty folder `work`, its marker (`rzoo_source.json`) last (run by `build`, in a
    child process under a launcher: `cache_build.run_isolated`)."""
    from rzoo.harness.runstore import atomic_write_json

    recipe, work = Recipe(variant=variant, **overrides), Path(work)
    train(recipe, work, progress, Path(start) if start else None)
    atomic_write_json(work / "rzoo_source.json", {"recipe": asdict(recipe), "code": code_hash(),
                                                  **convergence(work / "train.jsonl", recipe)})


def build(variant: str = "minimal", progress: bool = True, **overrides):
    """The cached testbed model for `variant` (built on first use, by one process: `harness/models/cache_build.py`);
    returns a `ResolvedModel`."""
    from rzoo.harness.models import ModelError, ResolvedModel, cache_root
    from rzoo.harness.models.cache_build import build_once, run_isolated

    from .runsum import VARIANTS

    if variant not in VARIANTS and variant not in DERIVED:
        raise ModelError(f"model 'testbed:{variant}': the testbed's variants are "
                         f"{', '.join([*VARIANTS, *DERIVED])}")
    recipe = Recipe(variant=variant, **overrides)
    out = cache_root() / "models" / f"testbed-{variant}-{recipe.key()}"
    if not _complete(out):
        parent = DERIVED[variant][0] if variant in DERIVED else "minimal"
        start = None if variant == "minimal" else build(parent, progress, **overrides).path

        def make(work: Path) -> None:
            what = "from scratch until the chain is learned" if start is None else f"fine-tuning the {parent} model"
            print(f"[model] building the testbed model on {variant} traces ({what}) into {out} (once)", flush=True)
            run_isolated("rzoo.tasks.testbed_model:build_into", variant=variant, overrides=overrides,
                         work=str(work), progress=progress, start=start)

        build_once(out, _complete, make)
    spec = "testbed" if variant == "minimal" else f"testbed:{variant}"
    _warn_unconverged(spec, json.loads((out / "rzoo_source.json").read_text()), recipe)
    return ResolvedModel(spec, str(out), f"testbed:{variant}:{recipe.key()}")


@dataclass(frozen=True)
class RecurrentRecipe:
    """The untrained recurrent-depth model for the testbed (latent recurrence's starting point)."""
    hidden_size: int = 128
    intermediate_size: int = 384
    num_attention_heads: int = 4
    n_prelude: int = 1
    n_core: int = 1  # one block, iterated: two (full attention) learned a smaller depth effect (+0.08 against +0.18)
    n_coda: int = 1
    mean_recurrence: int = 8
    max_recurrence: int = 64
    # k = 1, a departure from the paper's k = 8 (and this preset's earlier 4): with full attention, over seeds
    # 0-3 the depth effect (r = 32 minus r = 1) was +0.18 / +0.40 / +0.34 / +0.64 against +0.03 / +0.24 / +0.15
    # / +0.41 at k = 4, and training took 211-217 s against 278-307 s (docs/measurements.md)
    backprop_depth: int = 1
    # every block attends to its token and the 5 before it (a departure: Huginn attends to all): one pass
    # (prelude, one iteration, coda) sees 15 tokens back, fewer than the 18 or more from a problem's first
    # digit to its answer, so the answer needs iterations. With full attention a trained model could read
    # the sum in one pass and the depth effect depended on the seed (three of six reached +0.2; measured in
    # docs/measurements.md)
    attention_window: int | None = 6
    seed: int = 0

    def key(self) -> str:
        return recipe_key(self)


def build_recurrent(progress: bool = True, **overrides):
    """`model=testbed_recurrent`: a randomly initialised recurrent-depth model (`harness/models/recurrent.py`) with
    the testbed's tokenizer and chat template, saved once (deterministic by seed); the latent method
    trains it from scratch."""
    import torch

    from rzoo.harness.models import ResolvedModel, cache_root
    from rzoo.harness.models.cache_build import build_once
    from rzoo.harness.models.recurrent import RecurrentConfig, RecurrentForCausalLM
    from rzoo.harness.runstore import atomic_write_json

    recipe = RecurrentRecipe(**overrides)
    out = cache_root() / "models" / f"testbed-recurrent-{recipe.key()}"

    def make(work: Path) -> None:
        print(f"[model] building the untrained recurrent-depth testbed model into {out} (once)", flush=True)
        tokenizer = build_tokenizer()
        torch.manual_seed(recipe.seed)
        fields = {k: v for k, v in asdict(recipe).items() if k != "seed"}
        model = RecurrentForCausalLM(RecurrentConfig(vocab_size=len(tokenizer), max_position_embeddings=256,
                                                     eos_token_id=tokenizer.eos_token_id,
                                                     pad_token_id=tokenizer.pad_token_id, **fields))
        model.save_pretrained(work)
        tokenizer.save_pretrained(work)
        atomic_write_json(work / "rzoo_source.json", {"recipe": asdict(recipe), "code": code_hash()})

    build_once(out, _complete, make)
    return ResolvedModel("testbed_recurrent", str(out), f"testbed_recurrent:{recipe.key()}")
