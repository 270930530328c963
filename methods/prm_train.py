"""The PRM's data and loop (`prm.py` reads beside the papers; this file is the machinery): the policy's chains, their
step labels (exact or Monte-Carlo), the token-classification loop on the core's `Trainer`, and held-out step accuracy.

A chain record (one line of `prm_data/<split>.jsonl`, written atomically and read back on resume):
`{"problem", "sample", "prompt_ids", "steps": [[ids], ...], "labels": [float, ...]}`, one label per step.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from rzoo.harness.config import ConfigError
from rzoo.harness.training.trainer import Trainer, autocast


@dataclass
class Labelling:
    """What a labeller reads: the policy's engine, the task, and each chain with its problem and prompt."""
    cfg: object
    engine: object
    task: object
    fmt: object
    problems: list  # the split's problems
    prompts: list[str]  # each problem's prompt text (thinking opened)
    completions: list  # forcing.Completion, ordered by (problem, sample)
    steps: list[list[list[int]]]  # each completion's steps (`steps.path_steps`)


def _answered(c) -> bool:
    from rzoo.harness.generation import thinking as T

    return c.thinking_end != T.INCOMPLETE


def exact_labels(job: Labelling) -> list[list[float]]:
    """The task's own check of every thinking step (`Task.step_labels`), then the answer's verdict for the last."""
    tok, out = job.engine.tokenizer, []
    for c, steps in zip(job.completions, job.steps):
        problem = job.problems[c.prompt_index]
        thinking = steps[:-1] if _answered(c) else steps
        labels = job.task.step_labels(problem, [tok.decode(s) for s in thinking])
        if labels is None:
            raise ConfigError(f"labels=exact: task {job.task.name!r} cannot check its steps (Task.step_labels); "
                              "use labels=monte_carlo")
        last = [float(job.task.score(problem, c.answer_text) == 1.0)] if _answered(c) else []
        out.append([float(x) for x in labels] + last)
    return out


def monte_carlo_labels(job: Labelling) -> list[list[float]]:
    """Math-Shepherd's labels: from the prefix that ends at each thinking step, `mc_rollouts` completions within what
    is left of the thinking budget; the step's label is 1 if one reaches the gold answer (hard estimation) or the
    share that do (`mc_soft`). The last step's label is the chain's own answer's verdict. A prefix is continued from
    its decoded text (re-tokenised)."""
    from rzoo.harness.generation import forcing as G
    from rzoo.harness.generation.engine import mix_seed
    from rzoo.harness.generation.thinking import Budget

    cfg, tok = job.cfg, job.engine.tokenizer
    wanted: dict[int, list[tuple[int, int, str]]] = {}  # tokens left -> [(chain, step, prefix text)]
    for i, (c, steps) in enumerate(zip(job.completions, job.steps)):
        thinking = steps[:-1] if _answered(c) else steps
        used = 0
        for j, step in enumerate(thinking):
            used += len(step)
            text = job.prompts[c.prompt_index] + tok.decode(list(c.thinking_ids[:used]))
            wanted.setdefault(max(1, cfg.max_thinking_tokens - used), []).append((i, j, text))
    verdicts: dict[tuple[int, int], list[bool]] = {}
    for left, items in sorted(wanted.items()):
        seeds = [mix_seed(cfg.seed, "mc", job.problems[job.completions[i].prompt_index].id,
                          job.completions[i].sample_index, j, r) for i, j, _ in items for r in range(cfg.mc_rollouts)]
        rows = G.generate(job.engine, [text for _, _, text in items], Budget(left, cfg.answer_tokens),
                          n=cfg.mc_rollouts, sampling=G.Sampling(temperature=cfg.temperature,
                                                                 batch_size=cfg.generation_batch_size),
                          seed=cfg.seed, fmt=job.fmt, row_seeds=seeds)
        for r in rows:
            i, j, _ = items[r.prompt_index]
            problem = job.problems[job.completions[i].prompt_index]
            verdicts.setdefault((i, j), []).append(_answered(r) and job.task.score(problem, r.answer_text) == 1.0)
    out = []
    for i, (c, steps) in enumerate(zip(job.completions, job.steps)):
        n = len(steps) - (1 if _answered(c) else 0)
        hits = [verdicts[(i, j)] for j in range(n)]
        labels = [sum(h) / len(h) if cfg.mc_soft else float(any(h)) for h in hits]
        problem = job.problems[c.prompt_index]
        out.append(labels + ([float(job.task.score(problem, c.answer_text) == 1.0)] if _answered(c) else []))
    return out


def chains(cfg, ctx, task, splits: dict[str, list], folder: Path, labeller) -> dict[str, list[dict]]:
    """Each split's chain records: sampled from the policy and labelled, or read back from `folder`."""
    import json

    from rzoo.harness import engines
    from rzoo.harness.generation import steps as S
    from rzoo.harness.generation import thinking as T
    from rzoo.harness.runstore import atomic_write_jsonl
    from rzoo.harness.training.rejection_sft import sample_problems

    files = {name: folder / f"{name}.jsonl" for name in splits}
    if all(f.is_file() for f in files.values()):
        return {name: [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines()]
                for name, f in files.items()}
    engine = engines.load(ctx.model, "hf", cfg.dtype, cfg.seed)  # kept for the Monte-Carlo rollouts
    tok = engine.tokenizer
    out = {}
    for name, problems in splits.items():
        print(f"[prm] sampling {len(problems)} {name} problems x {cfg.samples_per_problem} chains from "
              f"{ctx.model.spec}; labels: {cfg.labels}", flush=True)
        rows, fmt, messages = sample_problems(
            ctx.model, task, problems, k=cfg.samples_per_problem,
            budget=T.Budget(cfg.max_thinking_tokens, cfg.answer_tokens), temperature=cfg.temperature, seed=cfg.seed,
            dtype=cfg.dtype, batch_size=cfg.generation_batch_size, tag="prm", progress=ctx.progress, engine=engine)
        prompts = [T.build_prompt(tok, m, fmt) for m in messages]
        steps = [S.path_steps(tok, c, task.steps) for c in rows]
        labels = labeller(Labelling(cfg, engine, task, fmt, problems, prompts, rows, steps))
        out[name] = [{"problem": problems[c.prompt_index].id, "sample": c.sample_index,
                      "prompt_ids": tok.encode(prompts[c.prompt_index], add_special_tokens=False),
                      "steps": s, "labels": y, "answered": _answered(c)} for c, s, y in zip(rows, steps, labels) if s]
        atomic_write_jsonl(files[name], out[name])
    return out


def head_model(policy):
    """The policy's architecture with a two-class token head: backbone weights from the policy, head new."""
    from transformers import AutoModelForTokenClassification

    import copy

    config = copy.deepcopy(policy.config)
    config.num_labels = 2  # (B, T, 2): bad, good
    model = AutoModelForTokenClassification.from_config(config)
    backbone = getattr(model, model.base_model_prefix)
    backbone.load_state_dict(getattr(policy, policy.base_model_prefix).state_dict())
    return model


def batch(records: list[dict], pad: int) -> tuple[torch.Tensor, torch.Tensor, list[list[int]], list[list[float]]]:
    """(B, T) ids and attention mask, right-padded; each row's step-end positions and labels."""
    seqs, positions = [], []
    for r in records:
        ids, pos = list(r["prompt_ids"]), []
        for step in r["steps"]:
            ids += step
            pos.append(len(ids) - 1)
        seqs.append(ids)
        positions.append(pos)
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    return ids, mask, positions, [list(r["labels"]) for r in records]


def step_loss(logits: torch.Tensor, positions: list[list[int]], labels: list[list[float]]) -> tuple[torch.Tensor, int, int]:
    """Summed cross-entropy over every step's last token against its (possibly soft) label y: -(y log p_good +
    (1 - y) log p_bad); with the number of steps and of steps whose argmax agrees with y >= 0.5.
    logits: (B, T, 2)."""
    rows = torch.tensor([b for b, pos in enumerate(positions) for _ in pos])
    cols = torch.tensor([p for pos in positions for p in pos])
    y = torch.tensor([v for ys in labels for v in ys], dtype=torch.float32)
    logp = torch.log_softmax(logits[rows, cols].float(), dim=-1)  # (S, 2)
    loss = -(y * logp[:, 1] + (1 - y) * logp[:, 0]).sum()
    agree = int(((logp[:, 1] > logp[:, 0]) == (y >= 0.5)).sum())
    return loss, len(y), agree


class PRMTrainer(Trainer):
    """Cross-entropy at step ends on the token-classification model, `batch_size` chains per step."""

    def __init__(self, cfg, ctx, records: list[dict]):
        super().__init__(cfg, ctx)
        if not records:
            raise ConfigError("prm: no chain to train on (every sampled chain was empty)")
        self.records = records

    def total_steps(self) -> int:
        steps = math.ceil(self.cfg.epochs * len(self.records) / self.cfg.batch_size)
        return min(steps, self.cfg.max_steps) if self.cfg.max_steps else steps

    def build(self) -> None:
        from transformers import AutoModelForTokenClassification

        from rzoo.harness.models.loading import align_cpu_tensors

        head = head_model(self.model)  # built the same way on resume (same attention set-up, so the same numerics)
        if self.state:  # resumed: the head checkpoint's weights, not those setup() loaded as a causal LM
            saved = AutoModelForTokenClassification.from_pretrained(self.run.checkpoint_dir, dtype=torch.float32)
            head.load_state_dict(saved.state_dict())
            align_cpu_tensors(head)
        self.model = head.to(self.device)

    def _rows(self, step: int) -> list[dict]:
        """Step `step`'s chains: epochs over a seeded shuffle of the records (a function of the step: resumable)."""
        b, n = self.cfg.batch_size, len(self.records)
        out = []
        for i in range((step - 1) * b, step * b):
            epoch, at = divmod(i, n)
            order = list(range(n))
            random.Random(f"{self.cfg.seed}-{epoch}").shuffle(order)
            out.append(self.records[order[at]])
        return out

    def train_step(self, step: int) -> dict:
        cfg = self.cfg
        rows = self._rows(step)
        total = sum(len(r["labels"]) for r in rows)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.model.train()
        loss_sum, agree = 0.0, 0
        for start in range(0, len(rows), cfg.micro_batch_size):
            ids, mask, positions, labels = batch(rows[start:start + cfg.micro_batch_size], pad)
            with autocast(self.device, self.dtype):
                logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
            loss, _, hits = step_loss(logits, positions, labels)
            self.accelerator.backward(loss / total)  # the mean over the batch's steps, whatever the micro-batches
            loss_sum += float(loss.detach())
            agree += hits
        grad_norm = self.optimizer_step()
        self.optimizer.zero_grad(set_to_none=True)
        return {"loss": loss_sum / total, "step_accuracy": agree / total, "steps": total, "grad_norm": grad_norm,
                "lr": self.scheduler.get_last_lr()[0]}

    def progress_line(self, row: dict) -> str:
        return f"loss {row['loss']:.4f}, step accuracy {row['step_accuracy']:.3f}"


def step_accuracy(checkpoint: Path, records: list[dict], dtype: str = "auto") -> dict:
    """The PRM's verdicts (P(good) > 0.5) against the labels (>= 0.5) of held-out chains: every step, and the last
    steps (the answers) alone, with the share labelled good (what always saying "good" would score)."""
    from transformers import AutoTokenizer

    from rzoo.harness.generation import prm

    scorer = prm.load_scorer(str(checkpoint), AutoTokenizer.from_pretrained(checkpoint), "head", dtype)
    scores = scorer.score([prm.chain("", r["prompt_ids"], r["steps"]) for r in records])
    pairs = [(p > 0.5, y >= 0.5) for r, ps in zip(records, scores) for p, y in zip(ps, r["labels"])]
    last = [(ps[-1] > 0.5, r["labels"][-1] >= 0.5) for r, ps in zip(records, scores) if r["answered"]]
    return {"steps": len(pairs), "step_accuracy": sum(a == b for a, b in pairs) / max(1, len(pairs)),
            "good_share": sum(b for _, b in pairs) / max(1, len(pairs)), "last_steps": len(last),
            "last_step_accuracy": sum(a == b for a, b in last) / max(1, len(last)),
            "last_good_share": sum(b for _, b in last) / max(1, len(last)), "chains": len(records)}
