"""The dapo and dr_grpo recipes: what docs/extending.md asks of a method beyond the contract test
(tests/test_contract.py runs --help, both presets, two steps, a loadable checkpoint and resume for every
registered method, these included), and a learning test each: one update with the recipe's own advantage,
aggregation and loss, on a scripted batch, raises the log-probability of the better-rewarded completion and
lowers the worse one's; with the advantage's sign flipped it does the opposite (so the test can fail)."""
from __future__ import annotations

import pytest
import torch

from rzoo import methods
from rzoo.harness.jobs import resolve
from rzoo.harness.training import losses, rl

SCRIPTED = {  # method: one group's rewards, the first completion the better one
    "dr_grpo": [1.0, 0.0],  # accuracy
    "dapo": [1.0, -1.0],  # DAPO's rule reward, +1 / -1
}


def _update(name: str, tokenizer, model_dir, flip: bool) -> torch.Tensor:
    """Sequence log-probs (2,) of the two scripted completions after one update minus before."""
    from transformers import AutoModelForCausalLM

    cfg = resolve("train", [f"method={name}", "preset=cpu"]).config
    model = AutoModelForCausalLM.from_pretrained(model_dir).train()
    advantage = losses.ADVANTAGES.bind(cfg.advantage, cfg)
    aggregation = losses.aggregation_for(cfg.aggregation, cfg)
    loss_fn = losses.POLICY_LOSSES.bind(cfg.loss, cfg, aggregation=aggregation)
    prompt = tokenizer.encode("What is 2 + 3?", add_special_tokens=False)
    completions = [tokenizer.encode(" 5 done", add_special_tokens=False),
                   tokenizer.encode(" 7 no", add_special_tokens=False)]
    tc = len(completions[0])
    assert len(completions[1]) == tc
    ids = torch.tensor([prompt + c for c in completions])
    attn = torch.ones_like(ids)
    mask = torch.ones(2, tc)

    def seq_logps():
        return (rl.token_logps(model, ids, attn, tc) * mask).sum(-1)

    with torch.no_grad():
        before = seq_logps()
    adv = advantage(torch.tensor([SCRIPTED[name]]))
    if flip:
        adv = -adv
    logps = rl.token_logps(model, ids, attn, tc)
    loss, _ = loss_fn(logps, logps.detach(), None, adv, mask)
    loss.backward()
    with torch.no_grad():  # one plain gradient step
        for p in model.parameters():
            if p.grad is not None:
                p -= 1e-2 * p.grad
        return seq_logps() - before


@pytest.mark.parametrize("name", sorted(SCRIPTED))
def test_one_update_raises_the_better_completion_and_lowers_the_worse(name, tokenizer, tiny_model_dir):
    delta = _update(name, tokenizer, tiny_model_dir, flip=False)
    assert delta[0] > 0 > delta[1], delta
    flipped = _update(name, tokenizer, tiny_model_dir, flip=True)  # the method's key sign flipped
    assert flipped[0] < 0 < flipped[1], flipped


def test_recipes_pick_their_pieces_by_config_fields():
    dapo = resolve("train", ["method=dapo", "preset=paper"]).config
    assert (dapo.loss, dapo.aggregation, dapo.reward, dapo.beta) == ("clip_higher", "token_mean", "accuracy_overlong", 0)
    assert (dapo.clip_eps, dapo.clip_eps_high, dapo.overlong_buffer) == (0.2, 0.28, 4096)
    assert dapo.dynamic_sampling and dapo.mask_truncated
    dr = resolve("train", ["method=dr_grpo", "preset=paper"]).config
    assert (dr.advantage, dr.aggregation, dr.loss, dr.beta) == ("group_centered", "constant_norm", "grpo", 0)
    gspo = resolve("train", ["method=dapo", "loss=gspo", "clip_eps=3e-4", "clip_eps_high=4e-4",
                             "aggregation=seq_mean"]).config
    assert gspo.loss == "gspo"
    assert {"dapo", "dr_grpo"} <= set(methods.REGISTRY.names())


def test_constant_norm_needs_a_completion_cap():
    from rzoo.harness.config import ConfigError

    with pytest.raises(ConfigError, match="constant_norm.*max_thinking_tokens"):
        resolve("train", ["method=s1", "aggregation=constant_norm"])


@pytest.fixture()
def varying_task():
    from rzoo import tasks

    tasks.REGISTRY.add("varying", "varying_task:TASK", "test-only: reward varies on a random model")
    yield "varying"
    tasks.REGISTRY.remove("varying")


def _dapo_run(runs_root, model_dir, task: str, *extra: str) -> list[dict]:
    import json

    from rzoo.harness.cli import main

    assert main(["train", "method=dapo", f"model={model_dir}", f"train_task={task}", "steps=2", "prompts_per_step=2",
                 "samples_per_prompt=4", "max_thinking_tokens=6", "answer_tokens=4", "lr=1e-2", "force_close=true",
                 "save_every=0", "minibatches=1", *extra, "--no-progress"]) == 0
    (run,) = [p for p in (runs_root / "dapo").iterdir() if p.is_dir()]
    return [json.loads(line) for line in (run / "train.jsonl").read_text().splitlines()]


def test_dynamic_sampling_logs_what_it_drew_and_skips_a_step_with_nothing_to_learn(tiny_model_dir, runs_root,
                                                                                  varying_task):
    # arithmetic on a random model: every answer wrong, every group uninformative -> draws up to the cap, no update
    log = _dapo_run(runs_root, tiny_model_dir, "arith", "reward=accuracy", "dynamic_sampling_max_draws=2")
    for row in log:
        assert (row["rollouts_drawn"], row["groups_drawn"], row["groups_kept"]) == (2, 4, 0)
        assert row["dropped_frac"] == 1.0 and row["grad_norm"] == 0.0


def test_dynamic_sampling_keeps_informative_groups_up_to_the_batch(tiny_model_dir, runs_root, varying_task):
    # a random model's answers run to the answer budget: all truncated, so overlong filtering would mask every row
    log = _dapo_run(runs_root, tiny_model_dir, varying_task, "dynamic_sampling_max_draws=4", "mask_truncated=false")
    for row in log:
        assert 1 <= row["rollouts_drawn"] <= 4 and row["groups_drawn"] == 2 * row["rollouts_drawn"]
        assert row["groups_kept"] <= 2 and 0.0 <= row["dropped_frac"] <= 1.0
        # it stops drawing once the batch is full
        assert row["groups_kept"] == 2 or row["rollouts_drawn"] == 4
    assert any(row["grad_norm"] > 0 for row in log)


def test_overlong_filtering_masks_truncated_rows_out_of_the_loss(tiny_model_dir, runs_root, varying_task):
    log = _dapo_run(runs_root, tiny_model_dir, varying_task, "dynamic_sampling=false", "mask_truncated=true")
    assert all(row["truncated_frac"] == 1.0 and row["grad_norm"] == 0.0 for row in log)
