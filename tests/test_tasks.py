from __future__ import annotations

import json

import pytest

from conftest import SHARED_DATA
from rzoo import tasks
from rzoo.tasks import arith
from rzoo.tasks.base import TaskError, read_records
from rzoo.harness.data import Reply
from rzoo.tasks.grading.verdict import math_verdict


def test_arith_is_seeded_and_splits_are_disjoint():
    a, b = arith.generate("test", 200), arith.generate("test", 200)
    assert a == b
    train = {p.question for p in arith.generate("train", 5000)}
    assert not train & {p.question for p in a}
    assert len({p.question for p in a}) == 200
    for p in a:
        assert int(p.answer) >= 0


def test_arith_answers_are_right():
    # spot-check the generator's arithmetic by re-deriving answers from the text
    import re

    for p in arith.generate("train", 300):
        nums = [int(x) for x in re.findall(r"\d+", p.question)]
        q = p.question
        if "gets" in q and "more" in q:
            assert int(p.answer) == nums[0] + nums[1]
        elif "gives away" in q:
            assert int(p.answer) == nums[0] - nums[1]
        elif "bags with" in q:
            assert int(p.answer) == nums[0] * nums[1]
        elif "equally among" in q:
            assert int(p.answer) == nums[0] // nums[1] and nums[0] % nums[1] == 0
        elif "loses" in q:
            assert int(p.answer) == nums[0] + nums[1] - nums[2]
        else:
            assert int(p.answer) == nums[0] * nums[1] + nums[2]


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs ../shared/data")
def test_math500_loads_real_file():
    problems, source = tasks.get("math500").load(SHARED_DATA)
    assert len(problems) == 500 and len({p.id for p in problems}) == 500
    assert source.kind == "local" and len(source.sha256) == 64
    levels = {p.meta["level"] for p in problems}
    assert levels == {1, 2, 3, 4, 5}
    # every gold answer grades itself correct when boxed
    assert all(math_verdict(f"\\boxed{{{p.answer}}}", p.answer).correct for p in problems)


def test_malformed_data_names_file_and_row(tmp_path):
    bad = tmp_path / "math500"
    bad.mkdir()
    (bad / "math500.jsonl").write_text('{"problem": "1+1", "answer": "2"}\n{oops\n')
    with pytest.raises(TaskError, match=r"math500.jsonl:2"):
        tasks.get("math500").load(tmp_path)
    (bad / "math500.jsonl").write_text(json.dumps({"problem": "1+1"}) + "\n")
    with pytest.raises(TaskError, match=r"row 0 has no 'answer'"):
        tasks.get("math500").load(tmp_path)
    with pytest.raises(TaskError, match="not found"):
        read_records(tmp_path / "nope.jsonl")


@pytest.mark.parametrize("text,gold,expected", [
    ("The answer is \\boxed{12}.", "12", True),
    ("The answer is \\boxed{13}.", "12", False),
    ("so 3 + 4 = 7", "7", True),
    ("\\boxed{\\frac{1}{2}}", "0.5", True),
    ("\\boxed{32348}", "\\$32,\\!348", True),
    ("no number here", "5", False),
    ("first \\boxed{3} then corrected \\boxed{4}", "4", True),
])
def test_math_verdict(text, gold, expected):
    assert math_verdict(text, gold).correct is expected


REAL = [  # name, problems, a known (id, gold) pair
    ("aime24", 30, ("2024-I-1", "204")),
    ("aime25", 30, ("2025-I-1", "70")),
    ("amc23", 40, ("amc23-0", "27")),
    ("amc", 83, ("2022_AMC_12A-1", "142")),  # DeepScaleR's "AMC 2023": AMC 12 2022-2023
    ("minerva", 272, ("minerva-9", "9.6")),
    ("olympiadbench", 675, ("olympiadbench-1606", "2")),
    ("gsm8k", 1319, ("gsm8k-0", "18")),
    ("math500", 500, None),
    ("gpqa_diamond", 198, None),
]


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs ../shared/data")
@pytest.mark.parametrize("name,count,known", REAL)
def test_every_loader_on_its_real_file(name, count, known):
    from rzoo.tasks.grading.sympy_check import last_boxed

    task = tasks.get(name)
    problems, source = task.load(SHARED_DATA)
    assert len(problems) == count and len({p.id for p in problems}) == count
    assert source.kind == "local" and len(source.sha256) == 64
    if known:
        assert dict((p.id, p.answer) for p in problems)[known[0]] == known[1]
    odd = {"olympiadbench-2349"}  # its gold is written '$221,$8$' (two numbers with stray dollars)
    for p in problems:
        for gold in task.golds(p):  # a list task: every item of the list
            boxed = f"The answer is \\boxed{{{gold}}}."
            # every gold answer parses and grades itself correct, by this project's grader and by rllm's
            assert task.score(p, boxed) == 1.0 or p.id in odd, p.id
            assert task.grade_with("rllm", p, Reply("", boxed, True)).correct, p.id
            assert last_boxed(boxed) == gold
    if name in ("minerva", "olympiadbench"):
        assert all(p.answer == " || ".join(p.meta["answers"]) for p in problems)
        assert sum(len(p.meta["answers"]) > 1 for p in problems) == (75 if name == "minerva" else 0)
    if name in ("aime24", "aime25"):
        assert all(0 <= int(p.answer) <= 999 and p.answer == str(int(p.answer)) for p in problems)
        assert {p.id.rsplit("-", 1)[1] for p in problems} == {str(i) for i in range(1, 16)}
    if name == "amc23":
        assert all("." not in p.answer for p in problems if float(p.answer).is_integer())


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs ../shared/data")
def test_gpqa_prompts_send_the_raw_fields_as_simple_evals_formats_them():
    """simple-evals, lighteval and s1 send the CSV's fields as they are (trailing whitespace included): the
    rendered prompt of a row whose question carries trailing whitespace (rec06pnAkLOr2t2mp, by id) equals
    simple-evals' QUERY_TEMPLATE_MULTICHOICE on the raw fields in the same option order, and so do all 47 rows
    with such whitespace. Compared by sha256: no question text is ever printed, even when this fails."""
    import csv
    import gzip
    import hashlib

    from rzoo.harness.evaluation import protocol as P

    template = ("Answer the following multiple choice question. The last line of your response should be of the "
                "following format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by step "
                "before answering.\n\n{Question}\n\nA) {A}\nB) {B}\nC) {C}\nD) {D}")
    fields = ("Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
    with gzip.open(SHARED_DATA / "gpqa_diamond" / "gpqa_diamond.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        raw = {r["Record ID"]: r for r in csv.DictReader(fh)}
    task = tasks.get("gpqa_diamond")
    problems = {p.id: p for p in task.load(SHARED_DATA)[0]}
    spaced = [rid for rid, r in raw.items() if any(r[k] != r[k].strip() for k in ("Question", *fields))]
    assert len(spaced) == 47 and raw["rec06pnAkLOr2t2mp"]["Question"] != raw["rec06pnAkLOr2t2mp"]["Question"].rstrip()
    digest = lambda text: hashlib.sha256(text.encode()).hexdigest()  # noqa: E731
    for rid in ["rec06pnAkLOr2t2mp", *spaced]:
        row, problem = raw[rid], problems[rid]
        shown = [row[fields[i]] for i in problem.meta["order"]]
        published = template.format(Question=row["Question"], **dict(zip("ABCD", shown)))
        (message,) = P.load("deepseek_r1").messages(task, problem)
        assert message["role"] == "user" and digest(message["content"]) == digest(published), rid


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs ../shared/data")
def test_gpqa_options_shuffled_reproducibly_without_exposing_text():
    task = tasks.get("gpqa_diamond")
    a, _ = task.load(SHARED_DATA)
    b, _ = task.load(SHARED_DATA)
    assert [(p.id, p.answer, p.meta["order"]) for p in a] == [(p.id, p.answer, p.meta["order"]) for p in b]
    letters = [p.answer for p in a]
    assert set(letters) == {"A", "B", "C", "D"}
    assert max(letters.count(x) for x in "ABCD") < 0.4 * len(letters)  # the gold is not always one letter
    assert all(p.id.startswith("rec") for p in a)
    # grading by letter; no assertion here ever looks at question text
    p = a[0]
    assert task.score(p, f"The answer is ({p.answer})") == 1.0
    wrong = next(x for x in "ABCD" if x != p.answer)
    assert task.score(p, f"\\boxed{{{wrong}}}") == 0.0


def test_jsonl_task_with_field_overrides(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text('{"id": "q1", "prompt": "1+1?", "target": "2"}\n{"id": "q2", "prompt": "2+2?", "target": "4"}\n')
    task = tasks.get(f"jsonl:{path}", question_field="prompt", answer_field="target")
    problems, source = task.load(None)
    assert [p.id for p in problems] == ["q1", "q2"] and problems[1].answer == "4"
    assert source.sha256 and task.score(problems[0], "\\boxed{2}") == 1.0
    with pytest.raises(TaskError, match=r"row 0 has no 'question'"):
        tasks.get(f"jsonl:{path}").load(None)
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(TaskError, match="no problems"):
        tasks.get(f"jsonl:{tmp_path / 'empty.jsonl'}").load(None)


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs ../shared/data")
def test_data_source_precedence(monkeypatch, tmp_path):
    from rzoo.tasks import base

    monkeypatch.setenv("RZOO_DATA", str(SHARED_DATA))
    assert base.find_data_dir(None).explicit
    monkeypatch.delenv("RZOO_DATA")
    found = base.find_data_dir(None)  # ../shared/data beside the project
    assert found is not None and not found.explicit
    with pytest.raises(TaskError, match="does not exist"):
        base.find_data_dir(str(tmp_path / "nope"))
    assert base.hub_reachable("HuggingFaceH4/aime_2024") is False  # HF_HUB_OFFLINE=1 in tests
    _, source = tasks.get("aime24").load(found)
    assert source.kind == "local"
    # where the hub answers, a found (not configured) directory yields to it; a configured one does not
    rows = base.read_records(SHARED_DATA / "aime24" / "aime24_rllm.json")
    monkeypatch.setattr(base, "hub_reachable", lambda hub_id: True)
    monkeypatch.setattr(base, "hub_rows", lambda hub_id, split, config=None: rows)
    _, source = tasks.get("aime24").load(found)
    assert source.kind == "hub" and source.location == "HuggingFaceH4/aime_2024" and len(source.sha256) == 64
    _, source = tasks.get("aime24").load(base.DataDir(SHARED_DATA, explicit=True))
    assert source.kind == "local"


def test_hub_probe_answers_without_raising(monkeypatch):
    """The probe says False for any failure of its one request (network, HTTP, auth, a library's own error
    types), True when the hub answers, and False without asking when the environment says offline. The hub
    is never contacted here: the request is replaced by each outcome in turn."""
    import huggingface_hub
    import huggingface_hub.errors

    from rzoo.tasks import base

    probe = base.hub_reachable.__wrapped__
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    asked = []

    def outcome(result):
        def dataset_info(self, hub_id, timeout=None):
            asked.append((hub_id, timeout))
            if isinstance(result, BaseException):
                raise result
            return result
        return dataset_info

    http_error = huggingface_hub.errors.HfHubHTTPError.__new__(huggingface_hub.errors.HfHubHTTPError)  # a 404
    for failure in (ConnectionError("no route"), TimeoutError("slow"), OSError("dns"), ValueError("bad reply"),
                    http_error):
        monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", outcome(failure))
        assert probe("HuggingFaceH4/MATH-500") is False, type(failure).__name__
    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", outcome(object()))
    assert probe("HuggingFaceH4/MATH-500") is True
    assert asked[-1] == ("HuggingFaceH4/MATH-500", 5)  # one request, with a time limit
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    asked.clear()
    assert probe("HuggingFaceH4/MATH-500") is False and asked == []


def test_bad_data_files_are_one_line_errors(tmp_path):
    """Non-UTF-8 bytes, a directory, a row that is not an object: each a TaskError naming file and line,
    never a traceback (and never the text itself)."""
    latin = tmp_path / "latin1.jsonl"
    latin.write_bytes(b'{"question": "1+1", "answer": "2"}\n{"question": "caf\xe9", "answer": "3"}\n')
    with pytest.raises(TaskError, match=r"latin1.jsonl:2: not UTF-8 text \(byte 0xe9\)"):
        tasks.get(f"jsonl:{latin}").load(None)
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b'\xef\xbb\xbf{"question": "1+1", "answer": "2"}\n')  # a UTF-8 byte-order mark is fine
    assert tasks.get(f"jsonl:{bom}").load(None)[0][0].answer == "2"
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()
    with pytest.raises(TaskError, match="is a directory, not a file"):
        tasks.get(f"jsonl:{folder}").load(None)
    (tmp_path / "math500").mkdir()
    (tmp_path / "math500" / "math500.jsonl").mkdir()
    with pytest.raises(TaskError, match="is a directory, not a file"):
        tasks.get("math500").load(tmp_path)
    listed = tmp_path / "list.json"
    listed.write_text('[{"question": "1+1", "answer": "2"},\n 5]')
    with pytest.raises(TaskError, match=r"row 1 is a int, not an object"):
        tasks.get(f"jsonl:{listed}").load(None)
    broken = tmp_path / "broken.json"
    broken.write_text('[\n{"question": "1+1",\n "answer": }]')
    with pytest.raises(TaskError, match=r"broken.json:3: not valid JSON"):
        tasks.get(f"jsonl:{broken}").load(None)


def test_bad_gpqa_file_is_a_one_line_error(tmp_path):
    import gzip

    folder = tmp_path / "gpqa_diamond"
    folder.mkdir()
    (folder / "gpqa_diamond.csv.gz").write_bytes(b"not gzip at all")
    with pytest.raises(TaskError, match="not a gzip-compressed CSV"):
        tasks.get("gpqa_diamond").load(tmp_path)
    with gzip.open(folder / "gpqa_diamond.csv.gz", "wb") as fh:
        fh.write(b"Question,Record ID\n\xff\xfe,rec1\n")
    with pytest.raises(TaskError, match="row 0 is not UTF-8") as info:
        tasks.get("gpqa_diamond").load(tmp_path)
    assert "\\xff" not in str(info.value)


def test_data_dir_that_is_a_file_is_named_as_such(tmp_path):
    from rzoo.tasks.base import find_data_dir

    (tmp_path / "data.txt").write_text("x")
    with pytest.raises(TaskError, match="is a file, not a directory"):
        find_data_dir(str(tmp_path / "data.txt"))
    with pytest.raises(TaskError, match="does not exist"):
        find_data_dir(str(tmp_path / "nope"))
