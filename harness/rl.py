"""Shared on-policy RL machinery (GRPO now; DeepScaleR and Kimi k1.5 plug in later).

One step: sample problems -> `samples_per_prompt` completions each with the budget-aware generator
(`generation.py`, the same code evaluation uses) -> rewards from the method's reward function (which
calls the task's own scorer) -> advantages -> per-token log-probs (policy; old policy when a rollout
feeds several updates; reference when beta != 0) -> the method's loss, over `minibatches` updates.

Scale-out is accelerate's: the model and optimiser go through `Accelerator.prepare`, so DDP / FSDP /
DeepSpeed come from `accelerate launch` configs, not from code here. Each process rolls out its own
problems (seeded by process index).
"""
from __future__ import annotations

import copy
import json
import math
import os
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from . import generation as G
from . import thinking as T
from .runstore import Run, atomic_write_json, git_sha


@dataclass
class Batch:
    """A rollout packed for the loss. P prompts x G samples = B rows."""
    input_ids: torch.Tensor  # (B, Lp + Tc): left-padded prompt, right-padded completion
    attention_mask: torch.Tensor  # (B, Lp + Tc)
    completion_mask: torch.Tensor  # (B, Tc): 1 on tokens the policy sampled
    n_completion: int  # Tc
    rewards: torch.Tensor  # (P, G) total reward
    advantages: torch.Tensor  # (B,)


def pack(prompt_ids: list[list[int]], completions: list[G.Completion], pad_id: int) -> tuple[torch.Tensor, ...]:
    """Left-pad prompts and right-pad completions into one (B, Lp + Tc) tensor, like TRL does."""
    lp = max(len(prompt_ids[c.prompt_index]) for c in completions)
    tc = max(1, max(len(c.completion_ids) for c in completions))
    B = len(completions)
    ids = torch.full((B, lp + tc), pad_id, dtype=torch.long)
    attn = torch.zeros((B, lp + tc), dtype=torch.long)
    cmask = torch.zeros((B, tc), dtype=torch.float32)
    for r, c in enumerate(completions):
        p = prompt_ids[c.prompt_index]
        ids[r, lp - len(p):lp] = torch.tensor(p)
        attn[r, lp - len(p):lp] = 1
        n = len(c.completion_ids)
        if n:
            ids[r, lp:lp + n] = torch.tensor(c.completion_ids)
            attn[r, lp:lp + n] = 1
            cmask[r, :n] = torch.tensor(c.sampled_mask, dtype=torch.float32)
    return ids, attn, cmask, tc


def token_logps(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, n_completion: int,
                temperature: float = 1.0) -> torch.Tensor:
    """log pi(token) for the last `n_completion` positions: (B, L) -> (B, Tc).

    Position ids follow the attention mask, so left padding does not shift positions (the same
    positions `generate` used).
    """
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                   logits_to_keep=n_completion + 1).logits[:, :-1, :]  # (B, Tc, V)
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    targets = input_ids[:, -n_completion:]
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast for the policy/reference forward (fp32 master weights and optimiser)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def _logps_no_grad(model, batch: Batch, rows: torch.Tensor, micro: int, temperature: float, bf16: bool) -> torch.Tensor:
    out = []
    with torch.no_grad(), autocast(batch.input_ids.device, bf16):
        for i in range(0, len(rows), micro):
            r = rows[i:i + micro]
            out.append(token_logps(model, batch.input_ids[r], batch.attention_mask[r], batch.n_completion, temperature))
    return torch.cat(out)


_NONEMPTY_BOX = re.compile(r"\\boxed\{\s*[^\s}]")


def format_reward(completion: G.Completion) -> float:
    """R1-Zero's format reward, adapted to the boxed-answer prompt: half for closing the thinking
    block itself (not forced), half for a non-empty `\\boxed{...}` in the answer after it.

    Departure: R1-Zero gives 1/0 for `<think>..</think><answer>..</answer>`; the split into halves
    gives a small model a gradient before it gets both right (documented in methods/grpo.py).
    """
    closed = completion.thinking_end == T.CLOSED
    boxed = completion.thinking_end != T.INCOMPLETE and bool(_NONEMPTY_BOX.search(completion.answer_text))
    return 0.5 * closed + 0.5 * boxed


def accuracy_reward(task, problem, completion: G.Completion) -> float:
    """The task's own scorer on the answer; an unclosed thinking block has no answer (0)."""
    if completion.thinking_end == T.INCOMPLETE:
        return 0.0
    return task.score(problem, completion.answer_text)


def save_checkpoint(model, tokenizer, out: Path, method: str, config: dict, base_model: dict, step: int) -> Path:
    """HF save_pretrained + tokenizer + method.json, written to a temp folder and renamed."""
    import shutil

    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    atomic_write_json(tmp / "method.json", {
        "method": method, "config": config, "git_sha": git_sha(), "base_model": base_model, "step": step,
    })
    old = out.with_name(out.name + ".old")
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return out


STATE_FILE = "trainer_state.pt"


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def save_state(path: Path, state: dict) -> None:
    """torch.save to a temp file + rename: a crash mid-save leaves the previous state usable."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(cfg: Any, run: Run, *, method: str, loss_fn: Callable, loss_kwargs: dict,
          advantage_fn: Callable, reward_fn: Callable, config_dict: dict, progress: bool = True,
          resume: bool = False) -> Path:
    """The shared RL loop. `cfg` is the method's flat config (fields read by name below);
    `reward_fn(task, problem, completion) -> dict` returns reward terms including "total".

    Every `cfg.save_every` steps and at the end, the checkpoint and `trainer_state.pt` (optimiser,
    step, RNG states, problem order, refreshed reference) are written; `resume=True` continues the
    run from them, bit-for-bit the same steps as an uninterrupted run on the same machine."""
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    from rzoo import tasks as task_registry
    from rzoo.tasks.base import find_data_dir

    from . import models

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    rank_seed = cfg.seed + 1000 * accelerator.process_index
    random.seed(rank_seed)
    torch.manual_seed(rank_seed)

    resolved = models.resolve(cfg.model)
    state = torch.load(run.path / STATE_FILE, weights_only=False) if resume else None
    start = models.ResolvedModel(str(run.checkpoint_dir), str(run.checkpoint_dir), "resume") if state else resolved
    model, tokenizer = models.load(start, dtype="float32", device=str(accelerator.device))
    ref_model = None
    if cfg.beta != 0.0:
        ref_model = models.load(resolved, dtype="float32", device=str(accelerator.device))[0] if state \
            else copy.deepcopy(model)
        if state and state.get("ref") is not None:
            ref_model.load_state_dict(state["ref"])
        ref_model.eval()
        for p in ref_model.parameters():
            p.requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                  betas=(cfg.adam_beta1, cfg.adam_beta2))
    if state:
        optimizer.load_state_dict(state["optimizer"])
    model, optimizer = accelerator.prepare(model, optimizer)

    task = task_registry.get(cfg.train_task)
    problems, source = task.load(find_data_dir(cfg.data_dir), split="train")
    rng = random.Random(rank_seed)
    order: list[int] = []
    first_step, ref_refreshed = 1, False
    if state:
        rng.setstate(state["python_rng"])
        torch.set_rng_state(state["torch_rng"])
        order, first_step, ref_refreshed = state["order"], state["step"] + 1, state.get("ref") is not None

    log: list[dict] = run.train_log()[:first_step - 1] if state else []
    base_model = {"spec": resolved.spec, "source": resolved.source,
                  "train_data": source.location, "train_data_sha256": source.sha256}
    sampling = G.Sampling(temperature=cfg.temperature, top_p=1.0, batch_size=cfg.generation_batch_size)

    def save(step: int) -> None:
        if not accelerator.is_main_process:
            return
        save_checkpoint(accelerator.unwrap_model(model), tokenizer, run.checkpoint_dir, method, config_dict,
                        base_model, step)
        save_state(run.path / STATE_FILE, {
            "step": step, "optimizer": optimizer.state_dict(), "order": order,
            "python_rng": rng.getstate(), "torch_rng": torch.get_rng_state(),
            "ref": ref_model.state_dict() if ref_model is not None and ref_refreshed else None,
        })

    bar = tqdm(range(first_step, cfg.steps + 1), desc=f"{method} train", disable=None if progress else True,
               initial=first_step - 1, total=cfg.steps)
    for step in bar:
        t0 = time.time()
        if len(order) < cfg.prompts_per_step:  # reshuffle each epoch over the training problems
            order += rng.sample(range(len(problems)), len(problems))
        picked = [problems[i] for i in order[:cfg.prompts_per_step]]
        del order[:cfg.prompts_per_step]

        policy = accelerator.unwrap_model(model)
        policy.eval()
        prompts = [T.build_prompt(tokenizer, task.messages(p)) for p in picked]
        with autocast(accelerator.device, cfg.bf16):  # measured 1.5x faster rollouts on CPU
            completions = G.generate(policy, tokenizer, prompts, n=cfg.samples_per_prompt,
                                     max_thinking_tokens=cfg.max_thinking_tokens, answer_tokens=cfg.answer_tokens,
                                     sampling=sampling, seed=rank_seed * 100003 + step)
        t_gen = time.time() - t0
        terms = [reward_fn(task, picked[c.prompt_index], c) for c in completions]
        rewards = torch.tensor([t["total"] for t in terms], dtype=torch.float32).view(len(picked), -1)
        advantages = advantage_fn(rewards)
        prompt_ids = [tokenizer.encode(p, add_special_tokens=False) for p in prompts]
        ids, attn, cmask, tc = pack(prompt_ids, completions, tokenizer.pad_token_id)
        dev = accelerator.device
        batch = Batch(ids.to(dev), attn.to(dev), cmask.to(dev), tc, rewards, advantages.to(dev))

        policy.train()
        B = ids.shape[0]
        all_rows = torch.arange(B)
        old_logps = (_logps_no_grad(policy, batch, all_rows, cfg.micro_batch_size, cfg.temperature, cfg.bf16)
                     if cfg.minibatches > 1 else None)
        ref_logps = (_logps_no_grad(ref_model, batch, all_rows, cfg.micro_batch_size, cfg.temperature, cfg.bf16)
                     if ref_model is not None else None)

        # One inner epoch: the rollout is split into `minibatches` random parts, one update each.
        perm = torch.randperm(B)
        parts = [perm[i::cfg.minibatches] for i in range(cfg.minibatches)]
        losses, stats_acc = [], {}
        for part in parts:
            optimizer.zero_grad(set_to_none=True)
            for i in range(0, len(part), cfg.micro_batch_size):
                r = part[i:i + cfg.micro_batch_size]
                with autocast(dev, cfg.bf16):
                    logps = token_logps(model, batch.input_ids[r], batch.attention_mask[r], tc, cfg.temperature)
                old = old_logps[r] if old_logps is not None else logps.detach()
                ref = ref_logps[r] if ref_logps is not None else None
                loss, stats = loss_fn(logps, old, ref, batch.advantages[r], batch.completion_mask[r], **loss_kwargs)
                accelerator.backward(loss * len(r) / len(part))  # the loss is a mean over sequences
                losses.append(float(loss.detach()) * len(r) / len(part))
                for k, v in stats.items():
                    stats_acc.setdefault(k, []).append(v)
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()

        if ref_model is not None and cfg.ref_refresh_steps and step % cfg.ref_refresh_steps == 0:
            ref_model.load_state_dict(accelerator.unwrap_model(model).state_dict())
            ref_refreshed = True

        ends = [c.thinking_end for c in completions]
        row = {
            "step": step,
            "loss": sum(losses) / cfg.minibatches,
            "reward_mean": float(rewards.mean()),
            "reward_std": float(rewards.std()) if rewards.numel() > 1 else 0.0,
            **{f"{k}_mean": sum(t[k] for t in terms) / len(terms) for k in terms[0] if k != "total"},
            "kl": _mean(stats_acc.get("kl", [])),
            "clip_fraction": _mean(stats_acc.get("clip_fraction", [])),
            "grad_norm": float(grad_norm),
            "completion_tokens_mean": sum(len(c.completion_ids) for c in completions) / len(completions),
            "thinking_tokens_mean": sum(c.thinking_tokens for c in completions) / len(completions),
            "closed_frac": ends.count(T.CLOSED) / len(ends),
            "forced_frac": ends.count(T.FORCED) / len(ends),
            "incomplete_frac": ends.count(T.INCOMPLETE) / len(ends),
            "seconds": time.time() - t0,
            "generation_seconds": t_gen,
            # one completion as the model wrote it, to spot reward hacking by eye
            "example": tokenizer.decode(completions[0].completion_ids, skip_special_tokens=True)[:400],
        }
        if not all(math.isfinite(v) for v in (row["loss"], row["grad_norm"])):
            raise FloatingPointError(f"step {step}: non-finite loss or gradient norm: {json.dumps(row)}")
        log.append(row)
        if accelerator.is_main_process:
            run.write_train_log(log)
        bar.set_postfix(reward=f"{row['reward_mean']:.2f}", loss=f"{row['loss']:.3f}", kl=f"{row['kl']:.4f}")
        if progress and accelerator.is_main_process:
            tqdm.write(f"[train] step {step}/{cfg.steps}: reward {row['reward_mean']:.3f} "
                       f"(accuracy {row.get('accuracy_mean', 0):.3f}), kl {row['kl']:.4f}, "
                       f"completion tokens {row['completion_tokens_mean']:.1f}, {row['seconds']:.0f}s")

        if cfg.save_every and step % cfg.save_every == 0 and step < cfg.steps:
            save(step)

    accelerator.wait_for_everyone()
    if first_step <= cfg.steps:
        save(cfg.steps)
    return run.checkpoint_dir
