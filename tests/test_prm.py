"""The process reward model (methods/prm.py, harness/generation/prm.py, steps.py): the testbed's exact step labels
(cases as data), Monte-Carlo labels on a tiny model, the step loss against binary cross-entropy, one update that
moves the PRM's verdicts the labels' way, the aggregations, the PRM-picked votes by hand, and the published PRMs'
conventions (Math-Shepherd's step tag, Qwen2.5-Math-PRM's separator) read from tiny models in the same format."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from rzoo.harness.evaluation import metrics
from rzoo.harness.generation import prm, steps
from rzoo.tasks import runsum

CASES = [json.loads(line) for line in (Path(__file__).parent / "cases" / "runsum_steps.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("case", CASES, ids=[c["why"] for c in CASES])
def test_the_testbeds_exact_step_labels(case):
    problem = runsum.Problem("p", runsum.prompt_text(case["digits"]), str(runsum.running_sums(case["digits"])[-1]),
                             meta={"digits": case["digits"]})
    assert runsum.TASK.step_labels(problem, case["steps"]) == case["labels"]


def test_a_math_task_has_no_exact_labels():
    from rzoo.tasks import math500

    assert math500.TASK.step_labels(None, ["a"]) is None and math500.TASK.steps == steps.MATH_STEPS


def test_steps_are_cut_from_the_ids_as_generated(tokenizer):
    ids = tokenizer.encode("First, 2+2=4.\n\nThen 4*3=12.\n\nSo 12", add_special_tokens=False)
    cut = steps.split_ids(tokenizer, ids, steps.MATH_STEPS)
    assert sum(cut, []) == ids and len(cut) == 3  # nothing lost or re-tokenised
    assert [tokenizer.decode(s).endswith("\n\n") for s in cut] == [True, True, False]
    assert steps.split_ids(tokenizer, ids, steps.StepRule(None, 4)) == [ids[i:i + 4] for i in range(0, len(ids), 4)]
    with pytest.raises(ValueError):
        steps.StepRule(None, 0)


def test_a_long_stop_text_ends_a_step_across_many_tokens():
    from rzoo.tasks.testbed_model import build_tokenizer

    tok = build_tokenizer()  # one character per token
    ids = tok.encode("ab|END OF STEP|cd|END OF STEP|e", add_special_tokens=False)
    cut = steps.split_ids(tok, ids, steps.StepRule("|END OF STEP|", 100))
    assert [tok.decode(s) for s in cut] == ["ab|END OF STEP|", "cd|END OF STEP|", "e"]
    # a stop that is a whole step, and a stop of 8 characters (the look-back window is the stop plus slack)
    ids = tok.encode("<<STEP>>ab<<STEP>>c", add_special_tokens=False)
    assert [tok.decode(s) for s in steps.split_ids(tok, ids, steps.StepRule("<<STEP>>", 100))] == \
        ["<<STEP>>", "ab<<STEP>>", "c"]


def test_short_steps_end_at_their_blank_line():
    """A step of a few tokens ends at its blank line, as a long one does (one character per token)."""
    from rzoo.tasks.testbed_model import build_tokenizer

    tok = build_tokenizer()
    ids = tok.encode("a\n\nbc\n\n\n\nd", add_special_tokens=False)
    assert [tok.decode(s) for s in steps.split_ids(tok, ids, steps.MATH_STEPS)] == ["a\n\n", "bc\n\n", "\n\n", "d"]


def test_a_step_ends_at_its_cap_beyond_small_ints():
    """max_tokens past 256 (CPython caches small ints: an identity test would pass below it) cuts by length."""
    ids = list(range(700))
    assert [len(s) for s in steps.split_ids(None, ids, steps.StepRule(None, 300))] == [300, 300, 100]


def test_the_math_step_rule_is_the_documented_one_and_shared_safely():
    """README and the module docstring: a blank line ends a math step, capped at 256 tokens; the rule is a frozen
    value shared by every task that declares it."""
    import dataclasses

    assert (steps.MATH_STEPS.stop, steps.MATH_STEPS.max_tokens) == ("\n\n", 256)
    assert steps.StepRule() == steps.MATH_STEPS
    with pytest.raises(dataclasses.FrozenInstanceError):
        steps.MATH_STEPS.max_tokens = 8


def test_a_chain_closed_or_not():
    from rzoo.harness.generation import forcing as G
    from rzoo.harness.generation import thinking as T

    closed = G.Completion(0, 0, thinking_ids=[1, 2, 3], close_ids=[9], answer_ids=[7, 8], thinking_end=T.FORCED)
    open_ = G.Completion(0, 0, thinking_ids=[1, 2, 3], thinking_end=T.INCOMPLETE)
    rule = steps.StepRule(None, 2)
    assert steps.path_steps(None, closed, rule) == [[1, 2], [3], [9, 7, 8]]  # the close and answer: one last step
    assert steps.path_steps(None, open_, rule) == [[1, 2], [3]]  # no answer, no last step
    # a thinking end read back from samples.jsonl is an equal string, not the module's constant object
    read_back = G.Completion(0, 0, thinking_ids=[1, 2, 3], thinking_end="".join(["in", "complete"]))
    assert steps.path_steps(None, read_back, rule) == [[1, 2], [3]]


@pytest.mark.parametrize("how,expected", [("last", 0.5), ("min", 0.2), ("prod", 0.9 * 0.2 * 0.5)])
def test_aggregations(how, expected):
    assert prm.aggregate([0.9, 0.2, 0.5], how) == pytest.approx(expected)
    assert prm.aggregate([], how) == 0.0


def _rows():
    # problem p0, gold 7: four samples with answers and step scores (last step: 0.9, 0.2, 0.3, 0.35)
    answers = ["7", "3", "3", None]
    scores = [[0.5, 0.9], [0.8, 0.2], [0.9, 0.3], [0.99, 0.35]]
    return [{"problem_id": "p0", "sample_index": i, "extracted": a, "correct": a == "7", "thinking_tokens": 2,
             "answer_tokens": 1, "thinking_end": "closed", "answer_truncated": False, "waits_used": 0,
             "flops": 10.0, "prm_flops": 1.0, "prm_scores": s} for i, (a, s) in enumerate(zip(answers, scores))]


def test_prm_picks_by_hand():
    rows = _rows()
    # best-of-4 by the last step: sample 0 (0.9) is right; by the minimum: 0.5, 0.2, 0.3, 0.35 -> sample 0 again;
    # by the first step alone it would be sample 3 (no answer): the product 0.45, 0.16, 0.27, 0.3465 -> sample 0
    assert metrics.prm_pick("last", weighted=False)(rows) is True
    assert metrics.prm_pick("min", weighted=False)(rows) is True
    # weighted by last: "7" 0.9 against "3" 0.2 + 0.3 = 0.5 -> right; weighted by min: "7" 0.5 against "3" 0.5, a
    # tie -> the answer seen first, "7"
    assert metrics.prm_pick("last", weighted=True)(rows) is True
    assert metrics.prm_pick("min", weighted=True)(rows) is True
    low = [dict(r, prm_scores=[0.1] if r["extracted"] == "7" else [0.6]) for r in rows]
    assert metrics.prm_pick("last", weighted=True)(low) is False  # "3" 1.2 wins; None (0.6) never does
    assert metrics.prm_pick("last", weighted=False)(low) is False  # the first 0.6: sample 1, "3"
    assert metrics.prm_pick("last", weighted=True)([dict(r, extracted=None) for r in rows]) is False
    # a majority vote over the same rows: "3" twice -> wrong
    assert metrics.majority_pick(rows) is False


def test_prm_vote_summary_counts_the_prms_flops():
    rows = _rows()
    out = metrics.vote_summary(rows, 2, pick=metrics.prm_pick("last", weighted=True), scored=True)
    # groups (0, 1): "7" 0.9 vs "3" 0.2 -> right; (2, 3): "3" alone -> wrong
    assert out["accuracy"] == pytest.approx(0.5)
    assert out["flops_mean"] == pytest.approx(2 * (10.0 + 1.0)) and out["thinking_tokens_mean"] == pytest.approx(4)
    assert metrics.vote_summary(rows, 2)["flops_mean"] == pytest.approx(20.0)  # a majority vote reads no PRM


def test_the_step_loss_is_binary_cross_entropy():
    from rzoo.methods import prm_train

    torch.manual_seed(0)
    logits = torch.randn(2, 5, 2, requires_grad=True)
    positions, labels = [[1, 4], [2]], [[1.0, 0.0], [0.25]]
    loss, n, agree = prm_train.step_loss(logits, positions, labels)
    picked = torch.stack([logits[0, 1], logits[0, 4], logits[1, 2]])  # (S, 2)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(picked[:, 1] - picked[:, 0],
                                                               torch.tensor([1.0, 0.0, 0.25]), reduction="sum")
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6) and n == 3
    assert agree == sum(int((p[1] > p[0]).item() == (y >= 0.5)) for p, y in zip(picked, [1.0, 0.0, 0.25]))
    g1 = torch.autograd.grad(loss, logits)[0]
    assert torch.count_nonzero(g1.abs().sum(-1)) == 3  # only the step ends carry gradient


def test_one_update_moves_the_verdicts_the_labels_way(tiny_model_dir, runs_root):
    """The PRM's own loop, one step on two scripted chains: P(good) rises at the step labelled good and falls at the
    one labelled bad, read by a plain forward of the head model."""
    from transformers import AutoModelForTokenClassification

    from learning import config, rl_context
    from rzoo.methods import prm_train

    cfg = config("prm", tiny_model_dir, "lr=0.01", "batch_size=2", "micro_batch_size=1", "max_steps=1", "save_every=0")
    ctx = rl_context("prm", tiny_model_dir)
    records = [{"prompt_ids": [5, 6, 7], "steps": [[8, 9], [10]], "labels": [1.0, 0.0], "answered": True},
               {"prompt_ids": [5, 6], "steps": [[11]], "labels": [1.0], "answered": True}]
    trainer = prm_train.PRMTrainer(cfg, ctx, records)
    trainer.setup()

    def verdicts(model):
        model.eval()  # no dropout
        with torch.no_grad():
            first = model(input_ids=torch.tensor([[5, 6, 7, 8, 9, 10]])).logits.softmax(-1)[0, :, 1]
            second = model(input_ids=torch.tensor([[5, 6, 11]])).logits.softmax(-1)[0, :, 1]
        return first[4].item(), first[5].item(), second[2].item()

    before = verdicts(trainer.model)
    trainer.train_step(1)
    after = verdicts(trainer.model)
    assert after[0] > before[0] and after[2] > before[2] and after[1] < before[1]
    trainer.save(1)
    loaded = AutoModelForTokenClassification.from_pretrained(ctx.run.checkpoint_dir)
    assert verdicts(loaded) == pytest.approx(after, abs=1e-6)


def test_monte_carlo_labels_hard_is_any_soft_is_the_share(tiny_model_dir):
    """Math-Shepherd's two estimates from the same seeded rollouts: hard = 1 exactly where soft > 0; the last step
    is the chain's own answer's verdict; one label per step."""
    from rzoo.harness import engines, models
    from rzoo.harness.generation import forcing as G
    from rzoo.harness.generation import thinking as T
    from rzoo.tasks import arith

    from rzoo.methods import prm as method
    from rzoo.methods import prm_train

    engine = engines.load(models.resolve(str(tiny_model_dir)), "hf", "float32", 0)
    fmt = T.ThinkingFormat.detect(engine.tokenizer)
    problems = arith.generate("test", 2)
    prompts = [T.build_prompt(engine.tokenizer, arith.TASK.messages(p), fmt) for p in problems]
    rows = G.generate(engine, prompts, T.Budget(5, 3), n=2, sampling=G.Sampling(temperature=1.0), seed=0, fmt=fmt,
                      row_seeds=list(range(4)))
    rule = steps.StepRule(None, 2)
    cut = [steps.path_steps(engine.tokenizer, c, rule) for c in rows]
    labels = {}
    for soft in (False, True):
        cfg = method.Config(max_thinking_tokens=5, answer_tokens=3, mc_rollouts=3, mc_soft=soft, temperature=1.0,
                            generation_batch_size=8)
        labels[soft] = prm_train.monte_carlo_labels(prm_train.Labelling(cfg, engine, arith.TASK, fmt, problems,
                                                                        prompts, rows, cut))
    for c, s, hard, share in zip(rows, cut, labels[False], labels[True]):
        assert len(hard) == len(share) == len(s)
        n = len(s) - (c.thinking_end != T.INCOMPLETE)
        assert hard[:n] == [float(x > 0) for x in share[:n]]
        assert all(x * 3 == round(x * 3) for x in share[:n])  # a share of 3 rollouts
        if c.thinking_end != T.INCOMPLETE:
            assert hard[-1] == share[-1] == float(arith.TASK.score(problems[c.prompt_index], c.answer_text) == 1.0)


def _save_tiny(tokenizer, folder: Path, head: bool, extra: str):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, LlamaForTokenClassification

    tok = AutoTokenizer.from_pretrained(tokenizer.name_or_path)
    tok.add_tokens([extra])
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, num_labels=2, pad_token_id=tok.pad_token_id)
    model = (LlamaForTokenClassification if head else LlamaForCausalLM)(config).eval()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model, tok


def test_math_shepherds_convention(tokenizer_dir, tokenizer, tmp_path):
    model, tok = _save_tiny(tokenizer, tmp_path, head=False, extra="ки")
    scorer = prm.load_scorer(str(tmp_path), tokenizer, dtype="float32")
    assert isinstance(scorer, prm.ShepherdScorer)
    policy_steps = [tokenizer.encode("2 + 2 = 4.\n\n", add_special_tokens=False),
                    tokenizer.encode("So the answer is 4.", add_special_tokens=False)]
    got = scorer.score([prm.chain("What is 2 + 2?", [1, 2], policy_steps)])[0]
    # the model card's recipe: tags after each step, "+" against "-" at each tag
    text = "What is 2 + 2? 2 + 2 = 4. ки\nSo the answer is 4. ки\n"
    ids = tok.encode(text)
    tag = tok.encode("ки", add_special_tokens=False)[-1]
    plus, minus = (tok.encode(t, add_special_tokens=False)[-1] for t in ("+", "-"))
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    want = [torch.softmax(logits[i, [plus, minus]], -1)[0].item() for i, t in enumerate(ids) if t == tag]
    assert len(want) == 2 and got == pytest.approx(want, abs=1e-5)
    assert scorer.flops([prm.chain("What is 2 + 2?", [1], policy_steps)])[0] > 0


def test_qwen_prms_convention(tokenizer, tmp_path):
    model, tok = _save_tiny(tokenizer, tmp_path, head=True, extra="<extra_0>")
    scorer = prm.load_scorer(str(tmp_path), tokenizer, dtype="float32")
    assert isinstance(scorer, prm.QwenScorer)
    policy_steps = [tokenizer.encode("Step one.\n\n", add_special_tokens=False),
                    tokenizer.encode("Step two.\n\n", add_special_tokens=False),
                    tokenizer.encode("\\boxed{4}", add_special_tokens=False)]
    got = scorer.score([prm.chain("What is 2 + 2?", [1], policy_steps)])[0]
    messages = [{"role": "system", "content": prm.QwenScorer.system}, {"role": "user", "content": "What is 2 + 2?"},
                {"role": "assistant", "content": "Step one.<extra_0>Step two.<extra_0>\\boxed{4}<extra_0>"}]
    ids = tok.encode(tok.apply_chat_template(messages, tokenize=False), add_special_tokens=False)
    sep = tok.encode("<extra_0>", add_special_tokens=False)[-1]
    with torch.no_grad():
        probs = model(torch.tensor([ids])).logits[0].softmax(-1)
    want = [probs[i, 1].item() for i, t in enumerate(ids) if t == sep]
    assert len(want) == 3 and got == pytest.approx(want, abs=1e-5)


def test_a_head_prm_refuses_another_policys_tokens(tiny_model_dir, tokenizer, tmp_path):
    from transformers import AutoTokenizer

    _save_tiny(tokenizer, tmp_path, head=True, extra="<my_tag>")
    (tmp_path / "method.json").write_text(json.dumps({"card": {"checkpoint": "scorer"}}))
    assert isinstance(prm.load_scorer(str(tmp_path), AutoTokenizer.from_pretrained(tmp_path), dtype="float32"),
                      prm.HeadScorer)
    with pytest.raises(ValueError, match="not the one it was trained on"):
        prm.load_scorer(str(tmp_path), tokenizer, dtype="float32")


def test_a_checkpoint_in_no_known_convention_is_refused(tiny_model_dir, tokenizer):
    with pytest.raises(ValueError, match="eval.prm_format"):
        prm.load_scorer(str(tiny_model_dir), tokenizer, dtype="float32")
    with pytest.raises(ValueError, match="train\\+eval method=prm"):
        prm.load_scorer("trained", tokenizer)


def test_the_random_scorer_is_a_function_of_the_chain():
    scorer = prm.RandomScorer(0)
    a = prm.chain("q", [1, 2], [[3], [4, 5]])
    s1, s2 = scorer.score([a, prm.chain("q", [1, 2], [[3], [4, 6]])])
    assert s1[0] == s2[0] and s1[1] != s2[1] and all(0 <= x < 1 for x in s1) and scorer.flops([a]) == [0.0]
    assert scorer.score([a]) == [s1] and prm.RandomScorer(1).score([a]) != [s1]
    assert not math.isnan(s1[0])


def test_exact_labels_of_whole_chains():
    """The testbed's labeller on hand-made chains: its steps' own labels, then the answer's verdict as the last one;
    a chain with no answer has no last label."""
    from types import SimpleNamespace

    from rzoo.harness.generation import forcing as G
    from rzoo.harness.generation import thinking as T
    from rzoo.methods import prm_train
    from rzoo.tasks.testbed_model import build_tokenizer

    tok = build_tokenizer()
    problem = runsum.Problem("p", runsum.prompt_text("372"), "2", meta={"digits": "372"})

    def chain(thinking: str, answer: str | None):
        ids = tok.encode(thinking, add_special_tokens=False)
        if answer is None:
            return G.Completion(0, 0, thinking_ids=ids, thinking_end=T.INCOMPLETE)
        a = tok.encode(answer, add_special_tokens=False)
        return G.Completion(0, 0, thinking_ids=ids, close_ids=tok.encode("\n</think>", add_special_tokens=False),
                            answer_ids=a, thinking_end=T.CLOSED, answer_text=answer)

    chains = [chain(" 3 0 2", "\\boxed{2}"), chain(" 3 1 2", "\\boxed{2}"), chain(" 3 0", "\\boxed{0}"),
              chain(" 3 0 2", None)]
    cut = [steps.path_steps(tok, c, runsum.TASK.steps) for c in chains]
    job = prm_train.Labelling(None, SimpleNamespace(tokenizer=tok), runsum.TASK, None, [problem], [""], chains, cut)
    assert prm_train.exact_labels(job) == [[1, 1, 1, 1], [1, 0, 0, 1], [1, 1, 0], [1, 1, 1]]


def test_each_epoch_visits_every_chain_once():
    from types import SimpleNamespace

    from rzoo.methods import prm_train

    ctx = SimpleNamespace(run=None)
    trainer = prm_train.PRMTrainer(SimpleNamespace(batch_size=2, seed=0, epochs=2.0, max_steps=None), ctx,
                                   [{"id": i, "labels": [1.0]} for i in range(5)])
    assert trainer.total_steps() == 5  # ceil(2 epochs x 5 chains / 2)
    drawn = [r["id"] for step in range(1, 6) for r in trainer._rows(step)]
    assert sorted(drawn[:5]) == sorted(drawn[5:]) == list(range(5)) and drawn[:5] != drawn[5:]
    assert prm_train.PRMTrainer(SimpleNamespace(batch_size=2, seed=0, epochs=2.0, max_steps=3), ctx,
                                [{"id": 0}]).total_steps() == 1


def test_held_out_step_accuracy_by_hand(tokenizer, tmp_path):
    """`step_accuracy` against the head model's verdicts read by a plain forward: every step, and the answered
    chains' last steps alone, beside the share labelled good."""
    from rzoo.methods import prm_train

    model, _ = _save_tiny(tokenizer, tmp_path, head=True, extra="<x>")
    (tmp_path / "method.json").write_text(json.dumps({"card": {"checkpoint": "scorer"}}))
    records = [{"prompt_ids": [5, 6], "steps": [[7], [8, 9], [10]], "labels": [1.0, 0.0, 1.0], "answered": True},
               {"prompt_ids": [5], "steps": [[11, 12]], "labels": [0.0], "answered": False}]
    out = prm_train.step_accuracy(tmp_path, records, "float32")
    with torch.no_grad():
        first = model(torch.tensor([[5, 6, 7, 8, 9, 10]])).logits.softmax(-1)[0, [2, 4, 5], 1].tolist()
        second = model(torch.tensor([[5, 11, 12]])).logits.softmax(-1)[0, [2], 1].tolist()
    verdicts = [(p > 0.5) == (y >= 0.5) for p, y in zip(first + second, [1.0, 0.0, 1.0, 0.0])]
    assert out["steps"] == 4 and out["step_accuracy"] == pytest.approx(sum(verdicts) / 4)
    assert out["good_share"] == 0.5 and out["last_steps"] == 1 and out["last_good_share"] == 1.0
    assert out["last_step_accuracy"] == float(first[-1] > 0.5) and out["chains"] == 2
