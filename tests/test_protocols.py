"""Evaluation protocols (`harness/evaluation/protocols/`) on a real reasoning model's tokenizer and chat
template (DeepSeek-R1-Distill-Qwen's, `../shared/tokenizers`): prompts render as each protocol documents
them, the thinking block opens once whatever the template does, budget forcing closes it with the real
`</think>` token, the answer is graded; `harness prompt`; protocols recorded in results and samples;
sampled evaluation that does not depend on batching; published numbers beside measured ones."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from rzoo.harness.data import Problem
from rzoo.harness.evaluation import protocol as P
from rzoo.harness.generation import thinking as T

R1 = Path(__file__).resolve().parents[1].parent / "shared" / "tokenizers" / "deepseek-r1-distill-qwen"
needs_r1 = pytest.mark.skipif(not R1.is_dir(), reason="needs ../shared/tokenizers/deepseek-r1-distill-qwen")
BOS, USER, ASSISTANT, THINK, CLOSE = "<｜begin▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>", "<think>", "</think>"
# MATH-500 test/precalculus/807.json and AIME 2024 I problem 1 (public benchmark problems)
MATH500 = ("Convert the point $(0,3)$ in rectangular coordinates to polar coordinates.  Enter your answer in the form "
           "$(r,\\theta),$ where $r > 0$ and $0 \\le \\theta < 2 \\pi.$")
AIME = "Find the number of ordered pairs $(a,b)$ of integers such that $a + b = 10$ and $0 \\le a, b$."
OPEN_R1 = ("Solve the following math problem efficiently and clearly.  The last line of your response should be of the "
           "following format: 'Therefore, the final answer is: $\\boxed{ANSWER}$. I hope it is correct' (without "
           "quotes) where ANSWER is just the final number or expression that solves the problem. Think step by step "
           "before answering.\n\n")


@pytest.fixture(scope="module")
def r1():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(R1)


class _Task:
    def __init__(self, family):
        self.family = family

    def messages(self, problem):
        return [{"role": "system", "content": "task prompt"}, {"role": "user", "content": problem.question}]


def _render(tok, name: str, question: str, family: str) -> str:
    protocol = P.load(name)
    fmt = protocol.thinking_format(T.ThinkingFormat.detect(tok))
    return T.build_prompt(tok, protocol.messages(_Task(family), Problem("p", question, "1")), fmt)


@needs_r1
@pytest.mark.parametrize("question,family", [(MATH500, "math"), (AIME, "integer")])
def test_prompts_render_as_each_protocol_documents_them(r1, question, family):
    expected = {
        "deepseek_r1": f"{question}\nPlease reason step by step, and put your final answer within \\boxed{{}}.",
        "deepscaler": f"{question} Let's think step by step and output the final answer within \\boxed{{}}.",
        "open_r1": OPEN_R1 + question,
    }
    for name, user in expected.items():
        text = _render(r1, name, question, family)
        assert text == f"{BOS}{USER}{user}{ASSISTANT}{THINK}\n", name  # no system turn, one opening
        assert text.count(THINK) == 1
    # the project's own protocol keeps the task's prompt (its system message is written after BOS)
    assert _render(r1, "rzoo", question, family) == f"{BOS}task prompt{USER}{question}{ASSISTANT}{THINK}\n"


@needs_r1
def test_the_thinking_block_opens_once_where_the_template_opens_it(r1):
    """DeepSeek's later template appends `<think>\\n` to the generation prompt itself: nothing is pre-filled."""
    import copy

    later = copy.deepcopy(r1)
    later.chat_template = r1.chat_template.replace("{{'<｜Assistant｜>'}}", "{{'<｜Assistant｜><think>\\n'}}")
    assert later.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False,
                                     add_generation_prompt=True).endswith("<think>\n")
    for name in ("deepseek_r1", "deepscaler", "open_r1"):
        assert _render(later, name, MATH500, "math").count(THINK) == 1
        assert _render(later, name, MATH500, "math").endswith(f"{ASSISTANT}{THINK}\n")
    # s1's harness appends its own opening whatever the template holds (as s1 ran R1-style templates too)
    assert _render(later, "s1", MATH500, "math").endswith(f"{ASSISTANT}{THINK}\n<|im_start|>think")
    # a protocol that opens no block (a model that does not think) adds nothing
    assert _render(r1, "qwen25_math", MATH500, "math").endswith(ASSISTANT)


@needs_r1
def test_budget_forcing_injects_the_real_close_and_the_answer_is_graded(r1):
    """A tiny random model with R1-Distill's vocabulary runs budget forcing on the real template: the cap closes
    the block with the `</think>` token itself (id 151649); a scripted model on the same vocabulary then
    answers, and the MATH grader reads its boxed answer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from rzoo.harness.engines.hf import HFEngine
    from rzoo.harness.generation import forcing as G
    from scripted import ScriptedLM

    close_id = r1.convert_tokens_to_ids(CLOSE)
    assert close_id == 151649 and r1.encode(T.FORCED_CLOSE, add_special_tokens=False).count(close_id) == 1
    prompt = _render(r1, "deepseek_r1", MATH500, "math")
    torch.manual_seed(0)
    tiny = LlamaForCausalLM(LlamaConfig(vocab_size=152064, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, num_key_value_heads=1,
                                        eos_token_id=r1.eos_token_id)).eval()
    (c,) = G.generate(HFEngine(tiny, r1), [prompt], T.Budget(6, answer_tokens=4))
    if c.thinking_end == T.FORCED:  # a random model rarely closes on its own within 6 tokens
        assert close_id in c.close_ids and c.thinking_tokens == 6
    answer = r1.encode(" x" * 3 + "\n" + CLOSE + "\n\n$(3,\\frac{\\pi}{2})$ so \\boxed{\\left(3,\\frac{\\pi}{2}\\right)}",
                       add_special_tokens=False) + [r1.eos_token_id]
    start = len(r1.encode(prompt, add_special_tokens=False))
    scripted = ScriptedLM.of(r1, lambda ids: answer[len(ids) - start] if 0 <= len(ids) - start < len(answer) else None)
    (d,) = G.generate(HFEngine(scripted, r1), [prompt], T.Budget(64, answer_tokens=64))
    assert d.thinking_end == T.CLOSED and close_id in d.close_ids
    from rzoo.tasks.math500 import TASK

    assert TASK.grade(Problem("p", MATH500, "\\left( 3, \\frac{\\pi}{2} \\right)"), d.answer_text).correct


def test_every_protocol_cites_its_sources_and_sets_valid_keys():
    from rzoo.harness.evaluation.config import eval_config_class

    fields = set(eval_config_class().__dataclass_fields__)
    assert {"rzoo", "deepseek_r1", "deepscaler", "open_r1", "s1", "qwen25_math"} <= set(P.names())
    for name in P.names():
        p = P.load(name)
        assert p.name == name and p.sources and p.headline and p.title
        assert set(p.settings) <= fields, name
        assert p.user == P.TASK_OWN or {"math", "integer", "choice"} <= set(p.user), name


def test_an_unknown_protocol_is_a_one_line_error(capsys, tiny_model_dir):
    from rzoo.harness.cli import main

    assert main(["eval", f"model={tiny_model_dir}", "eval.protocol=deepseek_r2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "unknown eval.protocol 'deepseek_r2'" in err and "deepseek_r1" in err
    assert "Valid: deepscaler, deepseek_r1, open_r1, qwen25_math, rzoo, s1" in err


def _fake_gpqa(root: Path) -> None:
    """A GPQA-Diamond file of made-up questions (the real ones must not appear in tests): 198 rows."""
    import csv
    import io

    buf = io.StringIO()
    fields = ["Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3",
              "Record ID", "High-level domain"]
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    for i in range(198):
        writer.writerow({"Question": f"Made-up question {i}?", "Correct Answer": "yes", "Incorrect Answer 1": "no",
                         "Incorrect Answer 2": "maybe", "Incorrect Answer 3": "never", "Record ID": f"rec{i:04d}",
                         "High-level domain": "Physics"})
    (root / "gpqa_diamond").mkdir(parents=True)
    with gzip.open(root / "gpqa_diamond" / "gpqa_diamond.csv.gz", "wt", encoding="utf-8") as fh:
        fh.write(buf.getvalue())


def test_harness_prompt_prints_the_exact_prompts(tmp_path, tiny_model_dir, tokenizer_dir, capsys):
    """JSONL, one object per problem: id, the rendered prompt (special tokens included) and its token count; a
    folder holding only a tokenizer is a valid model=; GPQA gets ids and counts, never text."""
    from rzoo.harness.cli import main
    from rzoo.tasks import arith

    assert main(["prompt", f"model={tokenizer_dir}", "task=arith", "eval.limit=3", "eval.protocol=deepseek_r1"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    problems, _ = arith.TASK.load(None)
    assert [r["id"] for r in rows] == [p.id for p in problems[:3]]
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    for r, p in zip(rows, problems, strict=False):
        assert r["text"].endswith("<think>\n") and p.question in r["text"] and "Please reason step by step" in r["text"]
        assert r["n_tokens"] == len(tok.encode(r["text"], add_special_tokens=False))
    _fake_gpqa(tmp_path)
    assert main(["prompt", f"model={tokenizer_dir}", "task=gpqa_diamond", f"eval.data_dir={tmp_path}",
                 "eval.limit=2", "eval.protocol=open_r1"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2 and all("text" not in r and r["n_tokens"] > 20 for r in rows)


def test_results_and_samples_record_the_protocol(tiny_model_dir, runs_root):
    """What a protocol set, and which of its values key=value overrode, land in results.json; each sample names
    its protocol; a per-task sample count applies to its task."""
    from rzoo.harness.cli import main

    assert main(["eval", f"model={tiny_model_dir}", "task=arith", "eval.protocol=deepscaler", "eval.limit=2",
                 "eval.budgets=[4]", "eval.answer_tokens=4", "eval.k_per_task=[arith=3]", "--no-progress"]) == 0
    (run,) = (runs_root / "eval").iterdir()
    results = json.loads((run / "eval" / "arith" / "results.json").read_text())
    record = results["protocol"]
    assert record["name"] == "deepscaler" and record["sets"]["temperature"] == 0.6 and record["sources"]
    assert record["overridden"] == ["answer_tokens", "budgets"]
    assert results["k"] == 3 and results["config"]["temperature"] == 0.6
    samples = [json.loads(line) for line in (run / "eval" / "arith" / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 2 * 3 and {s["protocol"] for s in samples} == {"deepscaler"}


def test_sampled_answers_do_not_depend_on_batching(tiny_model_dir, runs_root):
    """A seed per (problem, sample): the same sampled evaluation with other batch and chunk sizes gives the same
    samples (each row draws from its own stream), and reruns agree."""
    from rzoo.harness.cli import main

    common = ["eval", f"model={tiny_model_dir}", "task=arith", "eval.limit=6", "eval.budgets=[3,8]", "eval.k=3",
              "eval.temperature=0.8", "eval.answer_tokens=4", "--no-progress"]
    for extra in (["eval.batch_size=32", "eval.chunk=256"], ["eval.batch_size=4", "eval.chunk=2"],
                  ["eval.batch_size=32", "eval.chunk=256"]):
        assert main(common + extra) == 0
    runs = sorted((runs_root / "eval").iterdir())
    samples = [[{k: v for k, v in json.loads(line).items() if not k.endswith("seconds")}
                for line in (run / "eval" / "arith" / "samples.jsonl").read_text().splitlines()] for run in runs]
    assert len(samples[0]) == 6 * 3 * 2
    assert samples[0] == samples[1] == samples[2]
    assert len({s["thinking"] for s in samples[0]}) > 6  # sampled: the k samples of a problem differ


def test_measured_beside_reported():
    """A registered model's published numbers, printed beside the measured value with its interval."""
    from rzoo.harness.evaluation import reported

    model = {"spec": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "source": "hub:deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"}
    inside = [{"budget": 31744, "waits": None, "accuracy": 0.83, "accuracy_ci95": [0.80, 0.86]}]
    deepseek, open_r1 = reported.lines(model, "math500", inside, "deepseek_r1")  # DeepSeek's, open-r1's reproduction
    assert "measured 83.0 [80.0, 86.0], reported 83.9" in deepseek and "inside the 95% interval" in deepseek
    assert "reported 83.1" in open_r1 and "reported under protocol open_r1, measured under deepseek_r1" in open_r1
    outside = [{"budget": 31744, "waits": None, "accuracy": 0.70, "accuracy_ci95": [0.66, 0.74]}]
    assert all("OUTSIDE the 95% interval" in line for line in reported.lines(model, "math500", outside, "open_r1"))
    assert reported.lines({"spec": "someone/else"}, "math500", inside, "deepseek_r1") == []
    every = reported.load()
    assert all(r.source and 0 <= r.value <= 100 for r in every)
    assert {(r.model, r.task, r.value) for r in every} >= {
        ("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "aime24", 28.9),
        ("agentica-org/DeepScaleR-1.5B-Preview", "amc", 73.6), ("agentica-org/DeepScaleR-1.5B-Preview", "minerva", 30.2),
        ("agentica-org/DeepScaleR-1.5B-Preview", "olympiadbench", 50.0), ("simplescaling/s1-32B", "aime24", 50.0)}
    assert not [r for r in every if r.task == "amc23" and "DeepScaleR" in r.model]  # amc23 is not DeepScaleR's set


# Qwen2.5-Instruct's ChatML template in short (its default system turn, no thinking delimiter), the template s1's
# evaluation of s1-32B reads (Qwen2.5-32B-Instruct's tokenizer)
QWEN_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}{%- for message in messages %}{%- if message['role'] != 'system' %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")


@needs_r1
def test_s1_appends_its_own_thinking_delimiter_to_a_qwen_template(r1):
    """s1's harness appends `<|im_start|>think` (no newline) after Qwen's generation prompt, whose template holds
    no thinking delimiter; the cap's close and cue and the end-of-turn close are s1's strings."""
    import copy

    qwen = copy.deepcopy(r1)  # Qwen2's vocabulary (R1-Distill-Qwen's tokenizer) with Qwen2.5-Instruct's template
    qwen.chat_template = QWEN_TEMPLATE
    assert "<|im_start|>think" not in qwen.chat_template
    text = _render(qwen, "s1", AIME, "integer")
    assert text == (f"<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
                    f"<|im_start|>user\n{AIME}<|im_end|>\n<|im_start|>assistant\n<|im_start|>think")
    fmt = P.load("s1").thinking_format(T.ThinkingFormat.detect(qwen))
    assert (fmt.open, fmt.close, fmt.forced_close, fmt.ended_close) == (
        "<|im_start|>think", "<|im_start|>answer", "<|im_start|>answer\nFinal Answer:", "<|im_start|>answer")
    # the model's own format is left alone by the other protocols: they pre-fill R1's opening
    assert _render(qwen, "deepscaler", AIME, "integer").endswith("<|im_start|>assistant\n<think>\n")


def test_s1_auto_thinking_budget_is_s1s_formula():
    """max_tokens_thinking=auto: 32,768 - the longest prompt (its opening included) - the forced close - 100."""
    assert T.s1_auto_thinking([120, 431, 77], 7, 32768) == 32768 - 431 - 7 - 100
    with pytest.raises(ValueError, match="no room"):
        T.s1_auto_thinking([32700], 7, 32768)
    s1 = P.load("s1")
    assert s1.settings["max_gen_toks"] == 32768 and s1.settings["dtype"] == "float32"
    assert "aime24" in s1.substitutes and "aime24_nofigures" in s1.substitutes["aime24"]


def test_the_s1_cap_reaches_generation_and_the_substitute_is_said(tiny_model_dir, runs_root, capsys):
    """Under the s1 protocol the thinking budget is the auto cap computed from the task's longest prompt: a cap
    smaller than the budget is what generation allows (every row's thinking_cap, no thinking past it)."""
    from transformers import AutoTokenizer

    from rzoo import tasks as task_registry
    from rzoo.harness.cli import main

    task = task_registry.get("arith")
    problems, _ = task.load(None)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    fmt = P.load("s1").thinking_format(T.ThinkingFormat.detect(tok))
    longest = max(len(tok.encode(T.build_prompt(tok, P.load("s1").messages(task, p), fmt), add_special_tokens=False))
                  for p in problems[:3])
    forced = len(tok.encode(fmt.forced_close, add_special_tokens=False))
    max_gen = longest + forced + 100 + 5  # an auto cap of 5 thinking tokens
    assert main(["eval", f"model={tiny_model_dir}", "task=arith", "eval.protocol=s1", "eval.limit=3",
                 f"eval.max_gen_toks={max_gen}", "eval.budgets=[32]", "eval.answer_tokens=2", "eval.dtype=float32",
                 "--no-progress"]) == 0
    (run,) = (runs_root / "eval").iterdir()
    samples = [json.loads(line) for line in (run / "eval" / "arith" / "samples.jsonl").read_text().splitlines()]
    assert {s["thinking_cap"] for s in samples} == {5} and max(s["thinking_tokens"] for s in samples) <= 5


def test_a_papers_protocol_is_its_whole_evaluation_and_says_what_differs():
    """`eval.protocol=X` (not the project's own): every problem, in order, no baseline, whatever the preset says;
    a key the user sets still wins and is recorded as overridden; the reported comparison states n, k and it."""
    from rzoo.harness.evaluation import reported
    from rzoo.harness.jobs import resolve

    job = resolve("eval", ["model=default", "task=aime24", "eval.protocol=deepseek_r1", "eval.k=1",
                           "eval.budgets=[16]", "eval.answer_tokens=8"])
    assert (job.eval.limit, job.eval.shuffle, job.eval.baseline) == (None, False, False)
    assert job.eval.k == 1 and job.eval.temperature == 0.6  # the user's k, the protocol's sampling
    own = resolve("eval", ["model=default", "task=aime24"])  # the project's protocol keeps the cpu preset's subset
    assert own.eval.limit == 16 and own.eval.shuffle
    assert resolve("eval", ["model=default", "eval.protocol=deepseek_r1", "eval.limit=5"]).eval.limit == 5
    train = resolve("train+eval", ["method=grpo", "preset=paper"])  # a method's paper preset names the protocol
    assert train.eval.limit is None and not train.eval.baseline
    evaluation = {"n_problems": 30, "n_problems_total": 30, "k": 1,
                  "protocol": {"overridden": ["answer_tokens", "budgets", "k"]}}
    model = {"spec": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"}
    (line,) = reported.lines(model, "aime24", [{"budget": 16, "accuracy": 0.1, "accuracy_ci95": [0.0, 0.2]}],
                             "deepseek_r1", evaluation)[:1]
    assert "n = 30 problems, k = 1; differs from the protocol in answer_tokens, budgets, k" in line
