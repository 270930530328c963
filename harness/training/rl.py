"""The shared on-policy RL loop (GRPO, Dr. GRPO, DAPO, DeepScaleR, Kimi k1.5), in named steps:

    draw      the sampler picks `prompts_per_step` training problems
    rollout   `samples_per_prompt` completions each, with the budget-forcing generator evaluation uses
    score     the configured reward function, one prompt's group at a time (`rewards.REWARDS`); DAPO's
              dynamic sampling and overlong filtering then choose what the update sees (`filters.py`)
    update    advantages (`losses.ADVANTAGES`) -> per-token log-probs (policy; old policy when a rollout
              feeds several updates; reference when beta != 0) -> the policy loss (`losses.POLICY_LOSSES`,
              aggregated by `losses.AGGREGATIONS`) minus an optional entropy bonus, over `minibatches`
              updates of one inner epoch
    log       one `train.jsonl` row

Hooks for the methods: group-aware rewards, a stateful problem sampler (`samplers.SAMPLERS`), an
optimiser reset per rollout (`reset_optimizer`), and a per-step schedule for staged context:
`schedule(cfg, step) -> cfg`, optionally with `before_step(trainer, step)`, `log(step) -> dict` (merged
into the step's row) and `after_step(trainer, step)` (once the row is written). Everything else
(checkpoints, resume, progress) is `trainer.Trainer`'s.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch

from ..generation import forcing as G
from ..generation import reflection
from ..generation import thinking as T
from ..models.hf_compat import cache_of, with_cache
from . import filters
from .trainer import Trainer, autocast
from .vllm_rollouts import Rollouts, engine_logps, is_weights, mismatch


@dataclass
class Batch:
    """A rollout packed for the loss. P prompts x G samples = B rows."""
    input_ids: torch.Tensor  # (B, Lp + Tc): left-padded prompt, right-padded completion
    attention_mask: torch.Tensor  # (B, Lp + Tc)
    completion_mask: torch.Tensor  # (B, Tc): 1 on tokens the policy sampled
    n_completion: int  # Tc
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


def completion_logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, n_completion: int,
                      share_prompts: bool = False) -> torch.Tensor:
    """Logits predicting the last `n_completion` tokens: (B, L) -> (B, Tc, V).

    Position ids follow the attention mask, so left padding does not shift positions (the same
    positions `generate` used). With `share_prompts`, rows whose prompt part (ids and mask) is the same
    (a prompt's G samples) read it once: one forward over the distinct prompts fills a KV cache, whose
    rows are repeated per sample, and a second forward reads the completions against it. Gradients flow
    through the shared cache into the prompt's forward, so values and gradients equal the one-forward
    path (tested); the prompt's share of the compute is paid once per prompt instead of G times. Two
    forwards before one backward: not for a DDP-wrapped model (the caller decides).
    """
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    if share_prompts:
        logits = _shared_prompt_logits(model, input_ids, attention_mask, position_ids, n_completion)
        if logits is not None:
            return logits
    return model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                 logits_to_keep=n_completion + 1).logits[:, :-1, :]


def _checkpointing(model) -> bool:
    """Whether activation checkpointing is on: transformers 5.25 renamed `is_gradient_checkpointing` (deprecated,
    gone in v6) to `is_activation_checkpointing`; older versions have only the old name, read only there."""
    flag = getattr(model, "is_activation_checkpointing", None)
    return bool(getattr(model, "is_gradient_checkpointing", False) if flag is None else flag)


def _shared_prompt_logits(model, input_ids, attention_mask, position_ids, n_completion: int):
    """`completion_logits` with each distinct prompt read once; None when no prompt repeats or the model
    returns no cache to share (e.g. gradient checkpointing turns caching off in training)."""
    lp = input_ids.shape[1] - n_completion
    if lp < 1 or (model.training and _checkpointing(model)):
        return None  # checkpointing turns caching off in training: nothing to share
    prompts = torch.cat([input_ids[:, :lp], attention_mask[:, :lp].to(input_ids.dtype)], dim=1)  # (B, 2 Lp)
    distinct, inverse = torch.unique(prompts, dim=0, return_inverse=True)  # (P, 2 Lp), (B,)
    if len(distinct) == len(prompts):
        return None
    p_ids, p_mask = distinct[:, :lp], distinct[:, lp:].to(attention_mask.dtype)
    head = model(input_ids=p_ids, attention_mask=p_mask, position_ids=(p_mask.cumsum(-1) - 1).clamp(min=0),
                 use_cache=True, logits_to_keep=1)
    cache = cache_of(head)
    if cache is None or not hasattr(cache, "batch_select_indices") or cache.get_seq_length() != lp:
        return None
    cache.batch_select_indices(inverse.to(input_ids.device))  # (P, ...) -> (B, ...), differentiable
    tail = model(input_ids=input_ids[:, lp:], attention_mask=attention_mask, position_ids=position_ids[:, lp:],
                 use_cache=False, **with_cache(cache)).logits  # (B, Tc, V)
    # position lp-1 (the prompt's last token) predicts the first completion token
    return torch.cat([head.logits[inverse, -1:], tail[:, :-1]], dim=1)


def token_logps(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, n_completion: int,
                temperature: float = 1.0, with_entropy: bool = False, share_prompts: bool = False):
    """log pi(token) for the last `n_completion` positions: (B, L) -> (B, Tc); with `with_entropy`, also
    each position's entropy of pi (B, Tc). `share_prompts`: see `completion_logits`.
    """
    logits = completion_logits(model, input_ids, attention_mask, n_completion, share_prompts)  # (B, Tc, V)
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    targets = input_ids[:, -n_completion:]
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    picked = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    if not with_entropy:
        return picked
    return picked, -(logprobs.exp() * logprobs).sum(-1)


def _logps_no_grad(model, batch: Batch, micro: int, temperature: float, dtype: str) -> torch.Tensor:
    out = []
    with torch.no_grad(), autocast(batch.input_ids.device, dtype):
        for i in range(0, batch.input_ids.shape[0], micro):
            r = slice(i, i + micro)
            out.append(token_logps(model, batch.input_ids[r], batch.attention_mask[r], batch.n_completion, temperature,
                                   share_prompts=True))
    return torch.cat(out)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


@dataclass
class Rollout:
    indices: list[int]  # drawn problem indices
    problems: list
    prompts: list[str]
    completions: list[G.Completion]
    seconds: float


class RLTrainer(Trainer):
    def __init__(self, cfg, ctx, schedule: Callable | None = None):
        from . import losses, rewards, samplers

        super().__init__(cfg, ctx)
        self.schedule = schedule
        self.task = ctx.data.task
        self.problems = ctx.data.problems
        self.reward_fn = rewards.REWARDS.bind(cfg.reward, cfg)
        self.advantage_fn = losses.ADVANTAGES.bind(cfg.advantage, cfg)
        self.aggregation = losses.aggregation_for(cfg.aggregation, cfg)
        takes_aggregation = "aggregation" in losses.POLICY_LOSSES.settings(cfg.loss)
        self.loss_fn = losses.POLICY_LOSSES.bind(cfg.loss, cfg, **({"aggregation": self.aggregation}
                                                                     if takes_aggregation else {}))
        self.make_sampler = samplers.SAMPLERS.bind(cfg.sampler, cfg)
        self.rollouts = Rollouts(cfg)

    def total_steps(self) -> int:
        return self.cfg.steps

    def optimizer_steps(self) -> int:
        return self.cfg.steps * self.cfg.minibatches

    def build(self) -> None:
        self.ref_model = None
        self.ref_refreshed = False
        if self.cfg.beta != 0.0:
            self.ref_model = self.frozen_reference()
            if self.state and self.state.get("ref") is not None:  # renewed since the start (DeepScaleR's stages)
                self.ref_model.load_state_dict(self.state["ref"])
                self.ref_refreshed = True

    def after_prepare(self) -> None:
        self.require_equal_shares("prompts_per_step", self.cfg.prompts_per_step)
        if self.cfg.dynamic_sampling and self.world > 1:  # each process would keep a different number of groups
            raise ValueError("dynamic_sampling runs on one process for now (processes would keep unequal shares)")
        self.updates = 0  # optimiser updates so far (minibatches x rollouts)
        # the sampler draws the global batch (the same on every process); each process rolls out its share
        self.sampler = self.make_sampler(self.problems, self.cfg.seed)
        self.fmt = T.ThinkingFormat.detect(self.tokenizer)

    def extra_state(self) -> dict:
        refreshed = self.ref_model is not None and self.ref_refreshed
        return {"sampler": self.sampler.state_dict(), "ref": self.ref_model.state_dict() if refreshed else None,
                "updates": self.updates}

    def load_extra_state(self, state: dict) -> None:
        self.sampler.load_state_dict(state["sampler"])
        self.updates = state["updates"]

    def refresh_reference(self) -> None:
        """The reference model (the KL anchor, beta != 0) becomes the current policy: R1's refresh every
        `ref_refresh_updates`, and a new stage of a staged recipe (each stage is a new run from the last
        checkpoint, whose reference is built from that checkpoint)."""
        if self.ref_model is None:
            return
        with self.full_params():  # sharded policies: every process gets the whole weights
            self.ref_model.load_state_dict(self.accelerator.unwrap_model(self.model).state_dict())
        self.ref_refreshed = True

    # -- the steps --------------------------------------------------------------------------------
    def step_config(self, step: int):
        """The config for this step: the method's schedule (staged context) or the config itself."""
        return self.schedule(self.cfg, step) if self.schedule else self.cfg

    def rollout(self, step: int, cfg, draw: int = 0) -> Rollout:
        """`draw` > 0: dynamic sampling's refills within one step (more problems, their own seeds)."""
        t0 = time.time()
        drawn = self.sampler.draw(cfg.prompts_per_step, step)
        indices = drawn[self.rank::self.world]
        problems = [self.problems[i] for i in indices]
        policy = self.accelerator.unwrap_model(self.model)
        policy.eval()
        prompts = [T.build_prompt(self.tokenizer, self.task.messages(p), self.fmt) for p in problems]
        budget = T.Budget(max_thinking_tokens=cfg.max_thinking_tokens, answer_tokens=cfg.answer_tokens,
                          force_close=cfg.force_close)
        sampling = G.Sampling(temperature=cfg.temperature, top_p=1.0, batch_size=cfg.generation_batch_size,
                              logprobs=cfg.rollout_backend == "vllm")
        n_rows = len(prompts) * cfg.samples_per_prompt
        seeds = self.rollouts.row_seeds(self, step, n_rows * (draw + 1))
        seeds = seeds[n_rows * draw:] if seeds is not None else None
        with self.full_params(), autocast(self.device, self.dtype):  # bf16 where faster (native-bf16 CPUs, GPUs)
            engine = self.rollouts.engine(self, cfg, policy)
            completions = G.generate(engine, prompts, budget, n=cfg.samples_per_prompt, sampling=sampling,
                                     seed=self.rank_seed * 100003 + step + draw * 10_000_019, fmt=self.fmt, row_seeds=seeds)
        self.rollouts.after_rollout()
        return Rollout(indices, problems, prompts, completions, time.time() - t0)

    def score(self, ro: Rollout, step: int, cfg) -> tuple[torch.Tensor, list[dict]]:
        """Rewards (P, G) and each completion's named terms, one prompt's group at a time."""
        G_ = cfg.samples_per_prompt
        terms = []
        for p, problem in enumerate(ro.problems):
            terms += self.reward_fn(self.task, problem, ro.completions[p * G_:(p + 1) * G_], step=step)
        rewards = torch.tensor([t["total"] for t in terms], dtype=torch.float32).view(len(ro.problems), -1)
        success = [_mean([t.get("accuracy", t["total"]) for t in terms[p * G_:(p + 1) * G_]])
                   for p in range(len(ro.problems))]
        if self.world > 1:  # every process's sampler sees every problem's success
            from accelerate.utils import gather_object

            pairs = gather_object([(ro.indices, success)])
            self.sampler.update([i for ix, _ in pairs for i in ix], [s for _, ss in pairs for s in ss])
        else:
            self.sampler.update(ro.indices, success)
        return rewards, terms

    def update(self, ro: Rollout, rewards: torch.Tensor, cfg) -> dict:
        """Advantages, log-probs and `minibatches` optimiser updates (one inner epoch)."""
        dev = self.device
        advantages = self.advantage_fn(rewards)
        prompt_ids = [self.tokenizer.encode(p, add_special_tokens=False) for p in ro.prompts]
        ids, attn, cmask, tc = pack(prompt_ids, ro.completions, self.tokenizer.pad_token_id)
        if cfg.mask_truncated:  # DAPO's overlong filtering: a cut-off completion is no evidence either way
            cmask = filters.mask_truncated(cmask, torch.tensor([filters.truncated(c) for c in ro.completions]))
        batch = Batch(ids.to(dev), attn.to(dev), cmask.to(dev), tc, advantages.to(dev))
        if cfg.reset_optimizer:
            self.reset_optimizer()
        model = self.model
        policy = self.accelerator.unwrap_model(model)
        policy.train()
        micro = cfg.micro_batch_size
        old_logps = _logps_no_grad(policy, batch, micro, cfg.temperature, self.dtype) if cfg.minibatches > 1 else None
        engine_lp = engine_logps(ro.completions, tc)  # (B, Tc) the rollout engine's own, or None (HF)
        engine_stats = {}
        if engine_lp is not None:  # the policy's log-probs before any update against the engine's
            rollout_lp = old_logps if old_logps is not None else _logps_no_grad(policy, batch, micro,
                                                                                 cfg.temperature, self.dtype)
            engine_lp = engine_lp.to(dev)
            engine_stats = mismatch(rollout_lp, engine_lp, batch.completion_mask)
            if cfg.rollout_is_cap is not None:  # per-token advantages: A_i x min(pi / pi_engine, cap)
                weights = is_weights(rollout_lp, engine_lp, batch.completion_mask, cfg.rollout_is_cap)
                batch.advantages = batch.advantages[:, None] * weights
        ref_logps = (_logps_no_grad(self.ref_model, batch, micro, cfg.temperature, self.dtype)
                     if self.ref_model is not None else None)
        B = ids.shape[0]
        perm = torch.randperm(B)
        parts = [perm[i::cfg.minibatches] for i in range(cfg.minibatches)]
        losses, stats_acc, grad_norm = [], {}, 0.0
        want_entropy = cfg.entropy_coef != 0.0
        share = model is policy  # a prompt's samples share its forward; not under DDP (two forwards per backward)
        for part in parts:
            self.optimizer.zero_grad(set_to_none=True)
            total_units = self.aggregation.units(batch.completion_mask[part])
            for i in range(0, len(part), micro):
                r = part[i:i + micro]
                mask = batch.completion_mask[r]
                with autocast(dev, self.dtype):
                    out = token_logps(model, batch.input_ids[r], batch.attention_mask[r], tc, cfg.temperature,
                                      with_entropy=want_entropy, share_prompts=share)
                logps, entropy = out if want_entropy else (out, None)
                old = old_logps[r] if old_logps is not None else logps.detach()
                ref = ref_logps[r] if ref_logps is not None else None
                loss, stats = self.loss_fn(logps, old, ref, batch.advantages[r], mask)
                if entropy is not None:
                    ent = self.aggregation(entropy, mask)
                    loss = loss - cfg.entropy_coef * ent
                    stats["entropy"] = float(ent.detach())
                weight = self.aggregation.units(mask) / max(total_units, 1e-9)
                self.accelerator.backward(loss * weight)
                losses.append(float(loss.detach()) * weight)
                for k, v in stats.items():
                    stats_acc.setdefault(k, []).append(v)
            grad_norm = self.optimizer_step()
            self.updates += 1
            if cfg.ref_refresh_updates and self.updates % cfg.ref_refresh_updates == 0:
                self.refresh_reference()
        return {"loss": sum(losses) / cfg.minibatches, "grad_norm": grad_norm,
                **{k: _mean(v) for k, v in stats_acc.items()}, **engine_stats}

    def train_step(self, step: int) -> dict:
        if hasattr(self.schedule, "before_step"):
            self.schedule.before_step(self, step)
        cfg = self.step_config(step)
        ro = self.rollout(step, cfg)
        rewards, terms = self.score(ro, step, cfg)
        if cfg.dynamic_sampling:  # DAPO: train on informative groups only, drawing more rollouts to refill
            batch, batch_rewards, dynamic = filters.refill(self, step, cfg, ro, rewards)
        else:
            batch, batch_rewards, dynamic = ro, rewards, {}
        stats = self.update(batch, batch_rewards, cfg) if batch.problems else _no_update(self)
        # logged over the step's first rollout (what the policy wrote for `prompts_per_step` problems, as GRPO's)
        row = {**self.log_row(cfg, ro, rewards, terms, stats), **dynamic}
        if hasattr(self.schedule, "log"):
            row.update(self.schedule.log(step))
        return row

    def after_step(self, step: int) -> None:
        if hasattr(self.schedule, "after_step"):
            self.schedule.after_step(self, step)

    def log_row(self, cfg, ro: Rollout, rewards: torch.Tensor, terms: list[dict], stats: dict) -> dict:
        cs = ro.completions
        ends = [c.thinking_end for c in cs]
        return {
            "loss": stats.pop("loss"),
            "reward_mean": float(rewards.mean()),
            "reward_std": float(rewards.std()) if rewards.numel() > 1 else 0.0,
            **{f"{k}_mean": sum(t[k] for t in terms) / len(terms) for k in terms[0] if k != "total"},
            "kl": stats.pop("kl", 0.0),
            "clip_fraction": stats.pop("clip_fraction", 0.0),
            "grad_norm": stats.pop("grad_norm"),
            **stats,
            "lr": self.scheduler.get_last_lr()[0],
            "completion_tokens_mean": sum(len(c.completion_ids) for c in cs) / len(cs),
            # split by correctness: Dr. GRPO's claim is that GRPO's 1/|o_i| lets wrong answers grow
            **_lengths_by_correctness(cs, terms),
            "thinking_tokens_mean": sum(c.thinking_tokens for c in cs) / len(cs),
            # the "aha moment" counted: reflection words the model wrote in its thinking, per completion
            "reflection_words_mean": _mean([reflection.model_reflections(c, cfg.reflection_words, self.fmt.wait)
                                            for c in cs]),
            "truncated_frac": _mean([float(filters.truncated(c)) for c in cs]),
            "closed_frac": ends.count(T.CLOSED) / len(ends),
            "forced_frac": ends.count(T.FORCED) / len(ends),
            "incomplete_frac": ends.count(T.INCOMPLETE) / len(ends),
            "max_thinking_tokens": cfg.max_thinking_tokens,
            **self.sampler.stats(ro.indices),
            "generation_seconds": ro.seconds,
            **({"weight_sync_seconds": self.rollouts.sync_seconds} if cfg.rollout_backend == "vllm" else {}),
            # one completion as the model wrote it, to spot reward hacking by eye
            "example": self.tokenizer.decode(cs[0].completion_ids, skip_special_tokens=True)[:400],
        }

    def progress_line(self, row: dict) -> str:
        return (f"reward {row['reward_mean']:.3f} (accuracy {row.get('accuracy_mean', 0):.3f}), kl {row['kl']:.4f}, "
                f"completion tokens {row['completion_tokens_mean']:.1f}")


def _lengths_by_correctness(cs: list, terms: list[dict]) -> dict:
    out = {}
    for name, want in (("correct", True), ("wrong", False)):
        lengths = [len(c.completion_ids) for c, t in zip(cs, terms) if (t.get("accuracy", t["total"]) == 1.0) == want]
        if lengths:
            out[f"{name}_completion_tokens_mean"] = _mean(lengths)
    return out


def _no_update(trainer) -> dict:
    """A step whose batch kept no group (dynamic sampling at its cap): nothing to learn from, no update."""
    return {"loss": 0.0, "grad_norm": 0.0}


def train(cfg, ctx, schedule: Callable | None = None):
    """Run the RL loop for a method's config; returns the checkpoint folder."""
    return RLTrainer(cfg, ctx, schedule).fit()

