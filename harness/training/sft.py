"""The shared SFT loop (s1, CoT-Valve, the testbed model): cross-entropy on completion tokens only.

Optional, for adapter methods (CoT-Valve): `adapter` (a peft `LoraConfig`) trains a LoRA on the frozen
base; an example's `meta["adapter_scale"]` sets the LoRA scale its loss is computed at (CoT-Valve++'s
beta), per row inside one forward (`models.lora.row_scales`), so every process runs the same number of
forwards and backwards whatever its examples' scales (DDP needs that); `meta["round"]` orders the data in
rounds, the steps split evenly between them (CoT-Valve+P).

Each example is a chat prompt (the chat template + the pre-filled thinking opening, exactly what
generation sees) and a completion: `{thinking}\\n</think>\\n\\n{answer}` + end-of-turn (the model's own
thinking format). The loss is the mean over every completion token of the batch of -log p(token);
prompt tokens and padding are masked out (`completion_cross_entropy`, tested against a hand-written
loop and TRL's SFTTrainer). `aggregation=seq_mean` instead averages each example's mean (s1 trained one
example per device, so every example weighed the same). Epochs run over a seeded shuffle; a step is
`batch_size` examples split into micro-batches for memory, each weighted by its share of the batch's
units (tokens or examples), so micro-batching does not change the maths. Checkpoints, resume and logging
are `trainer.Trainer`'s.
"""
from __future__ import annotations

import math
import random
import warnings

import torch

from ..config import ConfigError
from ..generation import thinking as T
from .trainer import Trainer, autocast


def completion_nll(logits: torch.Tensor, input_ids: torch.Tensor, completion_mask: torch.Tensor):
    """-log p(x_t | x_<t) at every position and where it counts: ((B, L-1) nll, (B, L-1) mask)."""
    logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    nll = -logprobs.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)  # (B, L-1)
    return nll, completion_mask[:, 1:].to(nll.dtype)


def completion_cross_entropy(logits: torch.Tensor, input_ids: torch.Tensor, completion_mask: torch.Tensor,
                             reduction: str = "mean") -> torch.Tensor:
    """Mean (or sum) over completion tokens of -log p(x_t | x_<t).

    logits: (B, L, V) from a forward over input_ids (B, L); completion_mask: (B, L), 1 where x_t is a
    completion token (its prediction comes from position t-1)."""
    nll, mask = completion_nll(logits, input_ids, completion_mask)
    total = (nll * mask).sum()
    return total if reduction == "sum" else total / mask.sum().clamp(min=1.0)


def tokenize(tokenizer, example, fmt: T.ThinkingFormat, max_length: int) -> tuple[list[int], list[int]]:
    """(input ids, completion mask) of one example; a long example keeps its prompt and loses the tail
    of its completion."""
    prompt = tokenizer.encode(T.build_prompt(tokenizer, example.messages, fmt), add_special_tokens=False)
    completion = tokenizer.encode(fmt.completion_text(example.thinking, example.answer), add_special_tokens=False)
    completion = completion + [tokenizer.eos_token_id]
    ids = (prompt + completion)[:max_length]
    mask = ([0] * len(prompt) + [1] * len(completion))[:max_length]
    return ids, mask


def collate(rows: list[tuple[list[int], list[int]]], pad_id: int) -> tuple[torch.Tensor, ...]:
    """Right-padded (B, L) ids, attention mask and completion mask."""
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(rows), width), dtype=torch.long)
    cmask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, (x, m) in enumerate(rows):
        ids[r, :len(x)] = torch.tensor(x)
        attn[r, :len(x)] = 1
        cmask[r, :len(m)] = torch.tensor(m)
    return ids, attn, cmask


class SFTTrainer(Trainer):
    """`stop(trainer, step, row) -> bool`, if given, may end training early (and add to the row)."""

    def __init__(self, cfg, ctx, stop=None, adapter=None, examples=None, init_adapter=None):
        super().__init__(cfg, ctx)
        self.stop = stop
        self.adapter = adapter
        self.init_adapter = init_adapter  # a trained adapter to start from (a run's earlier phase)
        examples = list(ctx.data.examples if examples is None else examples)
        random.Random(f"sft-subset-{cfg.seed}").shuffle(examples)
        self.examples = examples[:cfg.limit] if cfg.limit else examples
        if not self.examples:
            raise ValueError(f"no training examples in {ctx.data.name}")

    def total_steps(self) -> int:
        if self.cfg.max_steps:
            return self.cfg.max_steps
        return max(1, math.ceil(self.cfg.epochs * len(self.examples) / self.cfg.batch_size))

    def build(self) -> None:
        if self.adapter is None:
            return
        from peft import PeftModel, get_peft_model

        if self.state:  # resume: the base plus the adapter as last saved, trainable
            self.model = PeftModel.from_pretrained(self.model, str(self.run.checkpoint_dir), is_trainable=True)
        elif self.init_adapter is not None:
            self.model = PeftModel.from_pretrained(self.model, str(self.init_adapter), is_trainable=True)
        else:
            self.model = get_peft_model(self.model, self.adapter)

    def after_prepare(self) -> None:
        from .losses import aggregation_for

        self.require_equal_shares("batch_size", self.cfg.batch_size)
        self.aggregation = aggregation_for(self.cfg.aggregation, self.cfg)
        self.fmt = T.ThinkingFormat.detect(self.tokenizer)
        self.rows = [tokenize(self.tokenizer, ex, self.fmt, self.cfg.max_length) for ex in self.examples]
        empty = sum(1 for _, mask in self.rows if not any(mask))
        if empty == len(self.rows):  # every loss would be 0 and nothing would train, silently
            raise ConfigError(f"max_length={self.cfg.max_length} leaves no completion token in any example: the "
                             f"prompts alone are that long; raise max_length")
        if empty:
            warnings.warn(f"{empty} of {len(self.rows)} examples keep no completion token at "
                          f"max_length={self.cfg.max_length}; they add nothing to the loss", stacklevel=1)
        self.scales = [float(ex.meta.get("adapter_scale", 1.0)) for ex in self.examples]
        rounds = sorted({ex.meta.get("round", 1) for ex in self.examples})
        self.rounds = [[i for i, ex in enumerate(self.examples) if ex.meta.get("round", 1) == r] for r in rounds]
        self.rng = random.Random(self.cfg.seed)  # the global batch order: the same on every process
        self.order: list[int] = []
        self.epoch = 0
        self.round = 0

    def extra_state(self) -> dict:
        return {"order": list(self.order), "data_rng": self.rng.getstate(), "epoch": self.epoch, "round": self.round}

    def load_extra_state(self, state: dict) -> None:
        self.order, self.epoch, self.round = list(state["order"]), state["epoch"], state["round"]
        self.rng.setstate(state["data_rng"])

    def _scales(self, chunk: list[int]):
        """The block in which the chunk's rows compute at their examples' adapter scales (one forward)."""
        import contextlib

        from ..models.lora import row_scales

        scales = [self.scales[i] for i in chunk]
        if self.adapter is None or all(s == 1.0 for s in scales):
            return contextlib.nullcontext()
        return row_scales(self.model, scales)

    def _units(self, i: int) -> float:
        """Example i's share of what the loss is a mean over: its completion tokens, or itself."""
        mask = torch.tensor([self.rows[i][1][1:]])
        return self.aggregation.units(mask)

    def train_step(self, step: int) -> dict:
        cfg = self.cfg
        # rounds (CoT-Valve+P): round r owns an equal share of the steps and draws from its own examples
        round_now = min(len(self.rounds) - 1, (step - 1) * len(self.rounds) // self.total_steps())
        if round_now != self.round:
            self.round, self.order = round_now, []
        pool = self.rounds[self.round]
        while len(self.order) < cfg.batch_size:
            self.order += self.rng.sample(pool, len(pool))
            self.epoch += 1
        batch, self.order = self.order[:cfg.batch_size], self.order[cfg.batch_size:]
        picked = batch[self.rank::self.world]  # this process's share of the global batch
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        # the loss is a mean over the global batch's units (tokens, or examples); DDP averages gradients over
        # processes, so each process's share is scaled by world / global units (one process: exactly the mean)
        units = sum(self._units(i) for i in batch) / self.world
        total = 0.0
        pad = self.tokenizer.pad_token_id
        for i in range(0, len(picked), cfg.micro_batch_size):
            chunk = picked[i:i + cfg.micro_batch_size]
            ids, attn, cmask = (t.to(self.device) for t in collate([self.rows[j] for j in chunk], pad))
            with autocast(self.device, self.dtype), self._scales(chunk):
                logits = self.model(input_ids=ids, attention_mask=attn).logits
            loss = self.micro_loss(logits, ids, cmask, chunk, batch, step, units)
            self.accelerator.backward(loss)
            total += float(loss.detach())
        grad_norm = self.optimizer_step()
        tokens = sum(sum(self.rows[i][1][1:]) for i in batch)
        row = {"loss": total, "grad_norm": grad_norm, "lr": self.scheduler.get_last_lr()[0],
               "epoch": self.epoch, "completion_tokens": tokens}  # loss: mean of the processes
        if len(self.rounds) > 1:
            row["round"] = self.round + 1
        return row

    def micro_loss(self, logits: torch.Tensor, ids: torch.Tensor, cmask: torch.Tensor, chunk: list[int],
                   batch: list[int], step: int, units: float) -> torch.Tensor:
        """One micro-batch's share of the step's loss (its examples `chunk` of the global `batch` are the rows
        of ids): its aggregated -log p weighted by its share of the global batch's `units` (per process).
        A method adds its own terms here."""
        nll, mask = completion_nll(logits, ids, cmask)
        return self.aggregation.total(nll, mask) / max(units, 1.0)

    def progress_line(self, row: dict) -> str:
        return f"loss {row['loss']:.4f}, lr {row['lr']:.2e}, epoch {row['epoch']}"

    def should_stop(self, step: int, row: dict) -> bool:
        return bool(self.stop and self.stop(self, step, row))


def train(cfg, ctx, adapter=None, examples=None, init_adapter=None):
    """Run the SFT loop for a method's config (optionally training a peft adapter, from scratch or from
    `init_adapter`, on prepared examples); returns the checkpoint folder."""
    return SFTTrainer(cfg, ctx, adapter=adapter, examples=examples, init_adapter=init_adapter).fit()
