"""DeepSeek-R1's pipeline (methods/r1.py) and what it is built from: the language-consistency measure
(training/language.py) on hand-made cases (`cases/language.jsonl`) and through a real tokenizer, the rejection
sampler's filters (training/rejection_sft.py), the testbed's mixed-language traces, the stages core
(training/stages.py: a SIGKILL inside stage 3 resumed ends as an uninterrupted run; one curve per stage), and a
learning test for each stage's update."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import learning as L
from resume_check import TIMING

from rzoo.harness.training import language, rejection_sft as rejection, stages

CASES = Path(__file__).resolve().parent / "cases" / "language.jsonl"
R1_TOKENIZER = Path(__file__).resolve().parents[1].parent / "shared" / "tokenizers" / "deepseek-r1-distill-qwen"


def _cases():
    return [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c["name"])
def test_language_share_by_words(case):
    assert language.share(case["text"], case["language"]) == case["share"]


@pytest.mark.skipif(not R1_TOKENIZER.is_dir(), reason="needs ../shared/tokenizers/deepseek-r1-distill-qwen")
def test_language_share_by_tokens_through_a_real_tokenizer():
    """R1-Distill-Qwen's tokenizer: English with Chinese sentences mixed in, the way R1-Zero wrote."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(R1_TOKENIZER)

    def share(text, lang):
        return language.token_share(tok.encode(text, add_special_tokens=False), tok, lang)

    english, chinese = "First add the two numbers, then check the sum.", "我们先把两个数相加，然后检查结果。"
    mixed = f"{english} {chinese} So the answer is twelve."
    assert share(english, "en") == 1.0 and share(chinese, "en") == 0.0 and share(chinese, "zh") == 1.0
    assert 0.0 < share(mixed, "en") < 1.0
    assert share(mixed, "en") + share(mixed, "zh") == pytest.approx(1.0)  # every language-bearing token is one or other
    assert share("", "en") is None and share("3 + 4 = 7", "en") is None


def test_an_unknown_language_is_refused_with_the_valid_names():
    from rzoo.harness.registry import UnknownName

    with pytest.raises(UnknownName, match="testbed"):
        language.share("x", "english")


def _early_stop_traces(sums: list[str]) -> set[str]:
    """Every thinking an early_stop trace of these running sums can be (tasks/runsum.py `trace`)."""
    from rzoo.tasks.runsum import PATIENCE, chain

    full = [chain(sums)] if len(sums) <= PATIENCE else [chain(sums[:PATIENCE]) + "Wait" + chain(sums[PATIENCE:])]
    out = set(full) | {t + "Wait" + chain(sums[-1:]) for t in full}
    if len(sums) > PATIENCE:  # stopped early and guessed: re-checked once where the guess is the final sum
        out |= {chain(sums[:PATIENCE])} | ({chain(sums[:PATIENCE]) + "Wait" + chain(sums[-1:])}
                                           if sums[PATIENCE - 1] == sums[-1] else set())
    return out


def test_the_testbed_mixed_traces_keep_the_values_and_mix_in_runs():
    from rzoo.tasks.runsum import SECOND_LANGUAGE, TASK, running_sums

    mixed = TASK.examples("mixed", split="validation").examples
    back = {letter: f" {d}" for d, letter in enumerate(SECOND_LANGUAGE)}
    for m in mixed:
        sums = [str(s) for s in running_sums(m.meta["digits"])]
        # written back in the target language it is an early_stop trace: the same values, letter for digit
        assert "".join(back.get(ch, ch) for ch in m.thinking) in _early_stop_traces(sums), m.thinking
        assert m.thinking[:1] == " " and m.answer.endswith(f"{{{m.answer[-2]}}}")  # opens in the target; a digit
    shares = [language.share(m.thinking, "testbed") for m in mixed]
    assert 0.5 < sum(shares) / len(shares) < 0.9  # R1-Zero-like: mostly the target language, not only
    assert any(s == 1.0 for s in shares) and any(s < 0.5 for s in shares)


@pytest.mark.parametrize("kwargs,reason", [
    ({"closed": False, "correct": True}, "unclosed"),
    ({"correct": False}, "wrong"),
    ({"thinking": "我们相加"}, "language"),
    ({"thinking": ""}, "language"),
    ({"thinking_ids": list(range(40))}, "length"),
    ({"thinking": "add them ```print(1)``` done"}, "code"),
    ({"thinking_ids": [1, 2, 3, 4] * 5}, "repetition"),
    ({}, rejection.KEPT),
])
def test_rejection_filters_judge_in_order(kwargs, reason):
    sample = {"closed": True, "correct": True, "thinking": "add the numbers", "thinking_ids": list(range(10)), **kwargs}
    filters = rejection.Filters("en", min_language_share=1.0, max_thinking_tokens=32, max_repetition=0.5)
    assert rejection.judge(**sample, filters=filters) == reason


def test_repetition_counts_repeated_ngrams():
    assert rejection.repetition([1, 2, 3, 4, 5], 2) == 0.0
    assert rejection.repetition([7, 7, 7, 7, 7], 4) == 0.5  # (7777) twice: one of two repeats
    assert rejection.repetition([1, 2], 4) == 0.0


def test_r1_reward_sums_accuracy_format_and_language():
    from rzoo.harness.generation import forcing as G
    from rzoo.harness.generation import thinking as T
    from rzoo.methods.r1 import r1_reward

    class Task:
        def score(self, problem, answer):
            return float("7" in answer)

    group = [G.Completion(0, 0, thinking_end=T.CLOSED, thinking_text=" 3 0 7", answer_text="\\boxed{7}"),
             G.Completion(0, 1, thinking_end=T.CLOSED, thinking_text=" 3AH", answer_text="\\boxed{7}"),
             G.Completion(0, 2, thinking_end=T.CLOSED, thinking_text="", answer_text="\\boxed{7}")]
    out = r1_reward(Task(), None, group, step=1, language="testbed", language_weight=2.0)
    assert [r["language"] for r in out] == [1.0, pytest.approx(1 / 3), 0.0]  # an empty chain earns no consistency
    assert [r["total"] for r in out] == [pytest.approx(1 + 1 + 2 * lc) for lc in (1.0, 1 / 3, 0.0)]


def test_stages_refuse_duplicate_names_and_a_later_start():
    noop = stages.Stage("a", lambda ctx: None)
    with pytest.raises(ValueError, match="unique"):
        stages._check([noop, noop])
    with pytest.raises(ValueError, match="earlier stage"):
        stages._check([noop, stages.Stage("b", lambda ctx: None, start="c"), stages.Stage("c", lambda ctx: None)])


# ---- learning: each stage's update moves the model the way its stage should (tests/learning.py) ----------------

def test_the_reasoning_rl_stage_raises_the_consistent_chain_over_the_mixed_one(monkeypatch, tiny_model_dir, runs_root):
    """Both answers right and well formed: only the language reward tells them apart; one update of r1's RL stage
    (the stage function `run_stages` calls) raises the English chain's log p and lowers the mixed one's."""
    # as many tokens each (11 with the fixture's tokenizer) and none shared, as in test_learning.py
    texts = [("three plus four is seven, so the sum is seven", L.RIGHT), ("三加四等于七", L.RIGHT)]
    before, after = _rl_stage_moved(monkeypatch, tiny_model_dir, texts, "language_weight=1")
    assert after[0] > before[0] and after[1] < before[1], (before, after)
    # the same update without the language reward leaves them tied: no push either way beyond noise
    before, after = _rl_stage_moved(monkeypatch, tiny_model_dir, texts, "language_weight=0")
    assert after == pytest.approx(before, abs=1e-6)


def _rl_stage_moved(monkeypatch, model_dir, texts, *tokens):
    from transformers import AutoTokenizer

    from rzoo.harness.generation import thinking as T
    from rzoo.harness.training import rl
    from rzoo.methods import r1

    seen = {}

    def scripted_rollout(self, step, cfg):
        prompt = T.build_prompt(self.tokenizer, self.task.messages(L.PROBLEM), self.fmt)
        cs = [L.completion(self.tokenizer, self.fmt, i, t, a) for i, (t, a) in enumerate(texts)]
        seen.update(prompt=prompt, completions=cs)
        return rl.Rollout([0], [L.PROBLEM], [prompt], cs, 0.0)

    monkeypatch.setattr(rl.RLTrainer, "rollout", scripted_rollout)
    cfg = L.config("r1", model_dir, "steps=1", "prompts_per_step=1", f"samples_per_prompt={len(texts)}",
                   "minibatches=1", "save_every=0", "lr=1e-3", "language=en", *tokens)
    stage = {s.name: s for s in r1.pipeline(cfg)}["reasoning_rl"]
    checkpoint = stage.train(L.rl_context("r1", model_dir))
    p = AutoTokenizer.from_pretrained(model_dir).encode(seen["prompt"], add_special_tokens=False)
    base, trained = L.load(model_dir), L.load(checkpoint)
    return ([L.sequence_logp(base, p, c.completion_ids) for c in seen["completions"]],
            [L.sequence_logp(trained, p, c.completion_ids) for c in seen["completions"]])


@pytest.mark.parametrize("name", ["cold_start", "rejection_sft"])
def test_the_sft_stages_lower_the_loss_on_their_data(name, tiny_model_dir, runs_root, tokenizer):
    from rzoo.harness.data import Example
    from rzoo.methods import r1
    from test_learning import _completion_loss

    examples = [Example(f"e{i}", [{"role": "user", "content": f"What is {i} + 4?"}], f"{i} plus 4 is {i + 4}",
                        f"\\boxed{{{i + 4}}}") for i in range(4)]
    cfg = L.config("r1", tiny_model_dir, "cold_start_steps=1", "sft_steps=1", "sft_batch_size=4",
                   "cold_start_lr=1e-3", "sft_lr=1e-3", "sft_max_length=256", "save_every=0")
    stage = {s.name: s for s in r1.pipeline(cfg)}[name]
    checkpoint = stage.train(L.sft_context("r1", tiny_model_dir, examples))
    before = _completion_loss(L.load(tiny_model_dir), tokenizer, examples)
    after = _completion_loss(L.load(checkpoint), tokenizer, examples)
    assert after < before - 1e-3, (before, after)


# ---- the whole pipeline on the tiny model: SIGKILL in stage 3, resumed; one curve per stage ---------------------

@pytest.fixture(scope="module")
def sft_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("r1") / "cold_start.jsonl"
    rows = [{"id": i, "question": f"What is {i} + {i}?", "thinking": f"{i} plus {i} is {2 * i}",
             "answer": f"\\boxed{{{2 * i}}}"} for i in range(6)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _tiny(tiny_model_dir, varying_task, sft_file, steps=3):
    return ["method=r1", f"model={tiny_model_dir}", f"train_task={varying_task}", "seed=3", "save_every=1",
            "prompts_per_step=2", "samples_per_prompt=4", "max_thinking_tokens=6", "answer_tokens=4",
            "generation_batch_size=8", "micro_batch_size=8", "lr=1e-2", "force_close=true", "language=en",
            f"cold_start_data=jsonl:{sft_file}", "cold_start_steps=2", "steps=2", f"sft_steps={steps}",
            "final_rl_steps=2", "rs_problems=2", "rs_samples=4", "rs_min_language_share=0", "rs_require_closed=false",
            "sft_batch_size=2", "sft_max_length=256"]


# the command line, with the test-only task whose reward varies on a random model registered first
CLI = ("import sys; from rzoo import tasks; tasks.REGISTRY.add('varying', 'varying_task:TASK', 'test-only'); "
       "from rzoo.harness.cli import main; sys.exit(main(sys.argv[1:]))")


def _cli(args, runs):
    env = {**os.environ, "RZOO_RUNS": str(runs), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    return [sys.executable, "-c", CLI, *args, "--no-progress"], env


def _stage3_saved(runs: Path) -> bool:
    metas = list(runs.glob("r1/*/stages/stage3-rejection_sft/checkpoint/method.json"))
    return bool(metas) and json.loads(metas[0].read_text())["step"] >= 1


def _assert_same_log(a: Path, b: Path) -> None:
    """Two train.jsonl files row by row: the same keys, numbers equal to 1e-5 (resume_check's tolerance), timings
    aside."""
    ra, rb = ([json.loads(x) for x in p.read_text().splitlines()] for p in (a, b))
    assert len(ra) == len(rb) and len(ra) > 0
    for x, y in zip(ra, rb):
        assert x.keys() == y.keys()
        for key, value in x.items():
            if key in TIMING:
                continue
            if isinstance(value, float):
                assert y[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
            else:
                assert y[key] == value, key


def test_a_run_killed_in_stage_3_resumes_to_the_uninterrupted_run_and_every_stage_is_a_curve(
        tiny_model_dir, sft_file, tmp_path):
    from safetensors.torch import load_file

    whole, killed = tmp_path / "whole", tmp_path / "killed"
    args = _tiny(tiny_model_dir, "varying", sft_file, steps=4)
    cmd, env = _cli(["train+eval", *args, "task=arith", "eval.limit=2", "eval.budgets=[2,3]", "eval.answer_tokens=3"],
                     whole)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    (full,) = (whole / "r1").iterdir()

    # one curve per stage: stages 1-3 in eval_stage<k> at every budget with the stage knob set, stage 4 the run's eval
    for k in (1, 2, 3):
        results = json.loads((full / f"eval_stage{k}" / "arith" / "results.json").read_text())["results"]
        assert sorted(r["budget"] for r in results) == [2, 3] and {r["stage"] for r in results} == {k}
    assert (full / "eval" / "arith" / "results.json").is_file()
    report = json.loads((full / "stages" / "stage3-rejection_sft" / "rejection" / "report.json").read_text())
    assert report["samples"] == 8 and report["kept"] + sum(report["dropped"].values()) == 8 and report["kept"] > 0

    # killed (SIGKILL) once stage 3's SFT has saved a step, then resumed
    cmd, env = _cli(["train", *args], killed)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline and not _stage3_saved(killed):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended before the kill landed in stage 3"
    (part,) = (killed / "r1").iterdir()
    assert not (part / "stages" / "stage3-rejection_sft" / stages.DONE).exists()
    cmd, env = _cli(["train", f"resume={part}"], killed)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "stage 3/4 rejection_sft: resuming" in out.stdout and "stage 1/4" not in out.stdout

    _assert_same_log(full / "stages" / "train.jsonl", part / "stages" / "train.jsonl")
    _assert_same_log(full / "train.jsonl", part / "train.jsonl")
    for k in (1, 2, 3):
        folder = f"stages/stage{k}-" + ["cold_start", "reasoning_rl", "rejection_sft"][k - 1]
        wa, wb = load_file(full / folder / "checkpoint" / "model.safetensors"), \
            load_file(part / folder / "checkpoint" / "model.safetensors")
        assert all((wa[n] - wb[n]).abs().max() < 1e-5 for n in wa), folder
    wa, wb = load_file(full / "checkpoint" / "model.safetensors"), load_file(part / "checkpoint" / "model.safetensors")
    assert all((wa[n] - wb[n]).abs().max() < 1e-5 for n in wa)
