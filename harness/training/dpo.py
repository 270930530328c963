"""Direct preference optimisation on the core loop (Rafailov et al. 2023, "Direct Preference Optimization",
eq. 7), for Kimi k1.5's long2short DPO (arXiv 2501.12599 §2.4; `methods/long2short.py`):

    L = - mean_pairs log sigmoid( beta [ (log pi(y_c|x) - log pi_ref(y_c|x)) - (log pi(y_r|x) - log pi_ref(y_r|x)) ] )
        + alpha * NLL(y_c)      (alpha = `dpo_nll_weight`; 0: plain DPO)

The second term is RPO's (Pang et al. 2024, "Iterative Reasoning Preference Optimization", eq. 1; TRL's
`loss_type=["sigmoid", "sft"]`): the chosen completions' negative log-likelihood per token over the step.
Plain DPO lowers every token of a rejected chain, the correct steps after its first mistake included, and
on the testbed it unlearned the addition (accuracy 1.0 -> 0.34 at lr 1e-4, 0.69 at 3e-5); the NLL term keeps the
chosen chains likely. Kimi states no DPO details: the term is ours, off unless set.

log pi(y|x) is the sum of the completion's token log-probs, tokenised exactly as SFT tokenises an example
(chat template + the thinking opening; completion = thinking, close, answer, end of turn: `sft.tokenize`).
pi_ref is the starting model, frozen (on resume too: it is loaded from the base model, not the checkpoint).
`dpo_loss` (+ `chosen_nll`) is checked against the formula and against TRL's `DPOTrainer` loss on the same batch,
with and without the NLL term (tests/test_long2short.py).

Why not TRL's `DPOTrainer`: its checkpoints, resume and data order are its own; here every method shares
the core's (one rename commits weights, optimiser and data order; SIGKILL-safe resume tested for every
method), and a DPO run must evaluate and publish like the others. The loss is what TRL computes for
`loss_type="sigmoid"` without label smoothing.

A step takes `batch_size` pairs (micro-batches of `micro_batch_size` pairs, each weighted by its share),
in a seeded order over epochs, like the SFT loop.
"""
from __future__ import annotations

import random

import torch
import torch.nn.functional as F

from ..generation import thinking as T
from .sft import collate, completion_nll, tokenize
from .trainer import Trainer, autocast


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float) -> tuple[torch.Tensor, dict[str, float]]:
    """Sigmoid DPO over P pairs: each argument (P,) sequence log-probs. Returns the mean loss and statistics:
    the implicit reward margin beta * delta and the share of pairs where the chosen wins (delta > 0)."""
    delta = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)  # (P,)
    loss = -F.logsigmoid(beta * delta).mean()
    with torch.no_grad():
        stats = {"reward_margin": float((beta * delta).mean()), "preference_accuracy": float((delta > 0).float().mean())}
    return loss, stats


def chosen_nll(policy_chosen: torch.Tensor, tokens: int) -> torch.Tensor:
    """RPO's extra term (Pang et al. 2024, "Iterative Reasoning Preference Optimization"; TRL's `loss_type="sft"`):
    the chosen completions' negative log-likelihood per token: (P,) summed log-probs over `tokens` chosen tokens."""
    return -policy_chosen.sum() / max(tokens, 1)


def sequence_logps(model, ids: torch.Tensor, attn: torch.Tensor, cmask: torch.Tensor) -> torch.Tensor:
    """Sum of log p over each row's completion tokens: (B, L) -> (B,)."""
    nll, mask = completion_nll(model(input_ids=ids, attention_mask=attn).logits, ids, cmask)
    return -(nll * mask).sum(-1)


class DPOTrainer(Trainer):
    """`pairs`: (chosen, rejected) `data.Example`s sharing a prompt."""

    def __init__(self, cfg, ctx, pairs: list[tuple]):
        super().__init__(cfg, ctx)
        if not pairs:
            raise ValueError("DPO: no preference pairs (no problem had a correct sample and a rejected one)")
        self.pairs = pairs

    def total_steps(self) -> int:
        return self.cfg.train_steps

    def build(self) -> None:
        self.ref_model = self.frozen_reference()  # the starting model, never the resumed checkpoint

    def after_prepare(self) -> None:
        self.require_equal_shares("batch_size", self.cfg.batch_size)
        fmt = T.ThinkingFormat.detect(self.tokenizer)
        self.rows = [(tokenize(self.tokenizer, c, fmt, self.cfg.max_length),
                      tokenize(self.tokenizer, r, fmt, self.cfg.max_length)) for c, r in self.pairs]
        self.rng = random.Random(self.cfg.seed)
        self.order: list[int] = []
        self.epoch = 0

    def extra_state(self) -> dict:
        return {"order": list(self.order), "data_rng": self.rng.getstate(), "epoch": self.epoch}

    def load_extra_state(self, state: dict) -> None:
        self.order, self.epoch = list(state["order"]), state["epoch"]
        self.rng.setstate(state["data_rng"])

    def train_step(self, step: int) -> dict:
        cfg = self.cfg
        while len(self.order) < cfg.batch_size:
            self.order += self.rng.sample(range(len(self.rows)), len(self.rows))
            self.epoch += 1
        batch, self.order = self.order[:cfg.batch_size], self.order[cfg.batch_size:]
        picked = batch[self.rank::self.world]
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        total, stats = 0.0, {"reward_margin": 0.0, "preference_accuracy": 0.0, "chosen_nll": 0.0}
        pad = self.tokenizer.pad_token_id
        # RPO's NLL is a mean over this step's chosen tokens (as TRL's over its batch), whatever the micro-batches
        tokens = sum(sum(self.rows[j][0][1]) for j in picked)
        for i in range(0, len(picked), cfg.micro_batch_size):
            chunk = picked[i:i + cfg.micro_batch_size]
            # chosen rows first, then rejected: (2m, L)
            ids, attn, cmask = (t.to(self.device) for t in collate([self.rows[j][0] for j in chunk]
                                                                   + [self.rows[j][1] for j in chunk], pad))
            with autocast(self.device, self.dtype):
                policy = sequence_logps(self.model, ids, attn, cmask)
                with torch.no_grad():
                    ref = sequence_logps(self.ref_model, ids, attn, cmask)
            m = len(chunk)
            loss, part = dpo_loss(policy[:m], policy[m:], ref[:m], ref[m:], cfg.dpo_beta)
            share = m / len(picked)  # DDP averages the processes' equal shares
            nll = chosen_nll(policy[:m], tokens)  # this micro-batch's part of the step's per-token mean
            step_loss = loss * share + cfg.dpo_nll_weight * nll
            self.accelerator.backward(step_loss)
            total += float(step_loss.detach())
            stats["chosen_nll"] += float(nll.detach())
            for k, v in part.items():
                stats[k] += v * share
        grad_norm = self.optimizer_step()
        return {"loss": total, **stats, "grad_norm": grad_norm, "lr": self.scheduler.get_last_lr()[0],
                "epoch": self.epoch}

    def progress_line(self, row: dict) -> str:
        return (f"loss {row['loss']:.4f}, margin {row['reward_margin']:.3f}, "
                f"chosen wins {row['preference_accuracy']:.2f}")
