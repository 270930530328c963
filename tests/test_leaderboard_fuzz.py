"""The leaderboard against run files it cannot trust: written here (no model, no training), then
corrupted at random with a seeded RNG (wrong types, null, NaN / Infinity, truncated JSON, non-UTF-8
bytes, `$`, `#`, `<script>` and attribute-context payloads -- quotes, `onmouseover=` -- in names and fields).
Every build must succeed, warn about what it skipped, keep the good runs, never put a raw `<script>` in a page,
and write no attribute or element a payload carries (read by an HTML parser, and by Chromium for one build); plus one test per problem the
issue lists (GPQA decided by the data's identity, URL-encoded links, permissions, unique table ids,
provenance inside the site, concurrent builds)."""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import stat
import subprocess
import sys
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

import pytest

from rzoo.leaderboard import site

GPQA_SHA = "e21fbeccd52e3d3422b8cac5182bc78261ceabf6950d533375284644e7e2ec3d"
MARKER_TEXT = "MODEL-TEXT-MARKER"
# names that break out of a quoted or unquoted attribute, or open an element, if any writer forgets to escape quotes
ATTRIBUTE = ['x" onmouseover="alert(1)" data-pwned="1', "x' onmouseover='alert(1)' data-pwned='1",
             "x onmouseover=alert(1) data-pwned=1", '"><pwned-el data-pwned="1"></pwned-el>']
HOSTILE = ["$x$", "a$b", "#frag", "<script>alert(1)</script>", "_hidden", "50%", "q?x=1", "\\frac{1}{2}", "é",
           *ATTRIBUTE]


# ---------------------------------------------------------------------------------------------
# well-formed run folders, as harness writes them


def write_run(root: Path, kind: str, folder: str, task: str = "arith", *, method: str | None = None,
              model: str = "hub:org/model", data: dict | None = None, budgets=(4, 8), problem_ids=("p0", "p1"),
              text: str = "the model's text", train: bool = False) -> Path:
    run = root / kind / folder
    (run / "eval" / task.replace(":", "_").replace("/", "_")).mkdir(parents=True)
    config = {"command": "eval" if method is None else "train+eval", "preset": "cpu", "model_source": model,
              "config": {"model": model, "lr": 1e-5}}
    if method:
        config["method"] = method
    (run / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (run / "status.json").write_text(json.dumps({"state": "done"}), encoding="utf-8")
    results = []
    for i, budget in enumerate(budgets):
        acc = 0.25 + 0.1 * i
        results.append({"budget": budget, "waits": None, "alpha": None, "recurrence": None, "knob": "budget",
                        "accuracy": acc, "accuracy_ci95": [acc - 0.1, acc + 0.1], "thinking_tokens_mean": 3.0 + i,
                        "thinking_tokens_median": 3.0 + i, "flops_mean": 1e6 * (i + 1), "n_problems": 2,
                        "closed_rate": 1.0, "forced_rate": 0.0, "truncation_rate": 0.0, "seconds": 1.0,
                        "tokens_per_second": 10.0, "grader_disagreements": 0})
    provenance = {"kind": "local", "location": f"/data/{task}.jsonl", "sha256": "ab" * 32} if data is None else data
    (run / "eval" / task.replace(":", "_").replace("/", "_") / "results.json").write_text(json.dumps({
        "task": task, "model": {"spec": model, "source": model, "base_model": None, "method": method},
        "seed": 0, "k": 1, "limit": 2, "n_problems": 2, "n_problems_total": 10, "backend": "hf",
        "data": provenance, "git_sha": "0123456789abcdef", "config": {}, "dtype": "float32", "results": results,
    }), encoding="utf-8")
    samples = [{"task": task, "problem_id": pid, "sample_index": 0, "budget": b, "waits": None, "alpha": None,
                "recurrence": None, "knob": "budget", "correct": j == 0, "extracted": "4", "gold": "4",
                "thinking_end": "closed", "thinking_tokens": 3, "answer_tokens": 2, "thinking": text, "answer": text}
               for b in budgets for j, pid in enumerate(problem_ids)]
    (run / "eval" / task.replace(":", "_").replace("/", "_") / "samples.jsonl").write_text(
        "".join(json.dumps(s) + "\n" for s in samples), encoding="utf-8")
    if train:
        rows = [{"step": i + 1, "loss": 1.0 / (i + 1), "reward_mean": 0.1 * i, "completion_tokens_mean": 10 + i,
                 "thinking_tokens_mean": 5 + i, "lr": 1e-5} for i in range(4)]
        (run / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return run


def site_text(out: Path) -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8", errors="replace") for p in out.rglob("*")
            if p.is_file() and p.suffix in (".html", ".svg")}


def assert_no_raw_script(out: Path) -> None:
    for path, text in site_text(out).items():
        for m in re.finditer(r"<\s*script", text, re.IGNORECASE):
            assert re.match(r'<script src="(\.\./)*assets/board\.js"></script>', text[m.start():]), \
                f"raw <script> in {path}"


class _Markup(HTMLParser):
    """Every element and attribute name of a page, as a browser's tokenizer reads them."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, None))
        self.found += [(tag, name) for name, _ in attrs]

    handle_startendtag = handle_starttag


def injected_markup(html_text: str) -> list[tuple[str, str | None]]:
    """The elements and attributes of a page that no writer of the site writes: any event handler (on...), and
    anything a payload of `ATTRIBUTE` names (`pwned`)."""
    parser = _Markup()
    parser.feed(html_text)
    parser.close()
    return [(tag, name) for tag, name in parser.found
            if "pwned" in tag or (name is not None and ("pwned" in name or name.startswith("on")))]


def assert_no_injected_markup(out: Path) -> None:
    for path in out.rglob("*.html"):
        found = injected_markup(path.read_text(encoding="utf-8"))
        assert not found, f"{path}: markup the site did not write: {found[:5]}"


def assert_links_stay_inside(out: Path) -> None:
    """Every href / src of every page is relative, URL-encoded, and names a file of the site."""
    for page in out.rglob("*.html"):
        for target in re.findall(r'(?:href|src)="([^"]*)"', page.read_text(encoding="utf-8")):
            assert not re.match(r"[a-z]+:|/", target), f"{page.name}: absolute link {target}"
            assert "#" not in target and " " not in target, f"{page.name}: unencoded link {target}"
            path = (page.parent / urllib.parse.unquote(target.replace("&amp;", "&"))).resolve()
            assert path.is_file(), f"{page.name}: broken link {target}"
            assert out.resolve() in path.parents, f"{page.name}: link outside the site {target}"


# ---------------------------------------------------------------------------------------------
# random corruption


def _random_value(rng: random.Random):
    return rng.choice([None, "a string", "$", "#", "<script>x</script>", [], {}, True, -1, 10 ** 400, 1e308,
                       [1, 2, 3], {"nested": [None]}, "NaN"])


def _all_paths(obj, prefix=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield prefix + (k,)
            yield from _all_paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield prefix + (i,)
            yield from _all_paths(v, prefix + (i,))


def _set(obj, path, value):
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value


def corrupt_json_text(text: str, rng: random.Random) -> tuple[str | bytes, bool]:
    """A corrupted version of a JSON document, and whether it no longer parses as strict JSON."""
    how = rng.randrange(6)
    if how == 0:
        return text[:rng.randrange(1, max(2, len(text) - 1))], True  # truncated
    if how == 1:
        raw = text.encode()
        cut = rng.randrange(len(raw))
        return raw[:cut] + bytes([rng.choice([0xff, 0xfe, 0xc3, 0x80, 0xe9])]) + raw[cut:], True  # not UTF-8
    if how == 2:
        numbers = list(re.finditer(r"(?<![\w.])\d+\.\d+|(?<=: )\d+(?=[,}])", text))
        if numbers:
            m = rng.choice(numbers)
            return text[:m.start()] + rng.choice(["NaN", "Infinity", "-Infinity"]) + text[m.end():], True
        return text + "\nInfinity", True
    if how == 3:
        return rng.choice(["", "null", "[]", "42", '"text"', "{", "}{"]), True
    data = json.loads(text)
    for _ in range(rng.randint(1, 3)):
        paths = list(_all_paths(data))  # again: the last change may have replaced a container
        if paths:
            _set(data, rng.choice(paths), _random_value(rng))
    return json.dumps(data), False  # still JSON; maybe harmless, maybe a wrong type


def corrupt_jsonl(path: Path, rng: random.Random) -> bool:
    lines = path.read_text(encoding="utf-8").splitlines()
    i = rng.randrange(len(lines))
    new, broken = corrupt_json_text(lines[i], rng)
    if isinstance(new, bytes):
        data = "\n".join(lines[:i]).encode() + b"\n" + new + b"\n" + "\n".join(lines[i + 1:]).encode()
        path.write_bytes(data)
        return True
    lines[i] = new
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return broken and bool(new.strip())


def corrupt_file(path: Path, rng: random.Random) -> bool:
    """Corrupt one run file in place; True when the build must warn about this file."""
    if path.suffix == ".jsonl":
        return corrupt_jsonl(path, rng)
    new, broken = corrupt_json_text(path.read_text(encoding="utf-8"), rng)
    if isinstance(new, bytes):
        path.write_bytes(new)
    else:
        path.write_text(new, encoding="utf-8")
    return broken


@pytest.mark.parametrize("seed", range(24))
def test_fuzzed_run_files_always_build(tmp_path, capsys, seed):
    rng = random.Random(seed)
    root = tmp_path / "runs"
    good = write_run(root, "eval", "20260101T000000Z-good", "arith", train=True)
    victims, touched = [], set()
    for i in range(rng.randint(2, 4)):
        name = rng.choice(HOSTILE)
        safe = name.replace("/", "|")  # a folder name cannot hold a slash
        folder = f"20260102T00000{i}Z-{safe}" if rng.random() < 0.5 else f"run{i}{safe}"
        task = rng.choice(["arith", "math500", f"t{name}", "jsonl:/x/y.jsonl"])
        run = write_run(root, rng.choice(["eval", "grpo", f"k{safe}"]), folder, task, method=rng.choice([None, name]),
                        model=f"hub:org/{name}", text=f"{name} {HOSTILE[3]}", train=rng.random() < 0.5)
        files = [p for p in run.rglob("*") if p.is_file()]
        for path in rng.sample(files, rng.randint(1, len(files))):
            touched.add(path)
            if corrupt_file(path, rng):
                victims.append(path)
    index = site.build(root, tmp_path / "site")
    err = capsys.readouterr().err
    out = tmp_path / "site"
    assert index.is_file()
    html = index.read_text(encoding="utf-8")
    assert f"eval/{good.name}" in html  # the good run is on the board whatever the others hold
    for path in victims:  # every file that no longer parses is named in a warning, when it is read at all
        if path.name == "samples.jsonl" and path.parent / "results.json" in touched:
            continue  # samples are read only beside a good results.json
        assert f"skipping {path}:" in err, f"no warning for {path}"
    assert_no_raw_script(out)
    assert_no_injected_markup(out)
    assert_links_stay_inside(out)
    assert (out / "runs" / f"eval__{good.name}.html").is_file()


# ---------------------------------------------------------------------------------------------
# one test per problem


def test_malformed_files_are_skipped_with_one_warning_each(tmp_path, capsys):
    root = tmp_path / "runs"
    good = write_run(root, "eval", "20260101T000000Z-good")
    bad_model = write_run(root, "eval", "20260101T000001Z-model-null")
    path = bad_model / "eval" / "arith" / "results.json"
    data = json.loads(path.read_text())
    data["model"] = None  # null is allowed: the run shows with an unknown model
    path.write_text(json.dumps(data))
    bad_data = write_run(root, "eval", "20260101T000002Z-data-string")
    path_data = bad_data / "eval" / "arith" / "results.json"
    data = json.loads(path_data.read_text())
    data["data"] = "a string"
    path_data.write_text(json.dumps(data))
    nan = write_run(root, "eval", "20260101T000003Z-nan")
    path_nan = nan / "eval" / "arith" / "results.json"
    path_nan.write_text(path_nan.read_text().replace('"accuracy": 0.25', '"accuracy": NaN'))
    samples = write_run(root, "eval", "20260101T000004Z-samples")
    samples_path = samples / "eval" / "arith" / "samples.jsonl"
    samples_path.write_bytes(samples_path.read_bytes() + b'{"problem_id": "caf\xe9"}\n')
    train = write_run(root, "grpo", "20260101T000005Z-train", method="grpo", train=True)
    train_path = train / "train.jsonl"
    train_path.write_text(train_path.read_text() + "{oops\n")
    site.build(root, tmp_path / "site")
    err = capsys.readouterr().err
    for path in (path_data, path_nan, samples_path, train_path):
        assert err.count(f"skipping {path}") == 1, path
    assert "'data' is a str" in err and "NaN is not a JSON number" in err and "not UTF-8 (line 5)" in err
    index = (tmp_path / "site" / "index.html").read_text()
    for run in (good, bad_model, samples, train):
        assert run.name in index
    assert bad_data.name not in index.split('<table id="board"')[1]  # its only results were skipped
    page = (tmp_path / "site" / "runs" / f"eval__{samples.name}.html").read_text()
    assert "samples.jsonl is not well formed" in page


def _samples_shown(out: Path, run: Path) -> bool:
    page = (out / "runs" / f"{run.parent.name}__{run.name}.html").read_text()
    return MARKER_TEXT in page


@pytest.mark.parametrize("data,task,ids,shown", [
    ({"kind": "local", "location": "/d/arith.jsonl", "sha256": "ab" * 32}, "arith", ("p0",), True),
    ({"kind": "local", "location": "/d/gpqa_diamond/gpqa_diamond.csv.gz", "sha256": "cd" * 32}, "renamed", ("p0",),
     False),  # renamed task, GPQA's file
    ({"kind": "local", "location": "/elsewhere/data.csv.gz", "sha256": GPQA_SHA}, "renamed", ("p0",), False),
    ({"kind": "hub", "location": "Idavidrein/gpqa", "sha256": "ef" * 32}, "mine", ("p0",), False),
    ({"kind": "local", "location": "/d/x.jsonl", "sha256": "ab" * 32}, "mine", ("recAbCdEfGhIjKlMn",), False),
    ({}, "arith", ("p0",), False),  # no provenance: cannot tell, so withheld
    ({"kind": "local", "location": "/d/x.jsonl"}, "arith", ("p0",), False),
])
def test_model_text_is_withheld_by_the_data_identity(tmp_path, data, task, ids, shown):
    root = tmp_path / "runs"
    run = write_run(root, "eval", "20260101T000000Z-r", task, data=data, problem_ids=ids, text=MARKER_TEXT)
    site.build(root, tmp_path / "site")
    assert _samples_shown(tmp_path / "site", run) is shown
    if not shown:
        assert all(MARKER_TEXT not in text for text in site_text(tmp_path / "site").values())


def test_links_are_url_encoded_and_stay_inside_a_copied_site(tmp_path):
    root = tmp_path / "runs"
    odd = write_run(root, "eval", "20260101T000000Z-a#b c%d?e", train=True)
    write_run(root, "grpo", "20260101T000001Z-x", method="grpo", train=True)
    site.build(root, tmp_path / "site")
    index = (tmp_path / "site" / "index.html").read_text()
    assert 'href="runs/eval__20260101T000000Z-a%23b%20c%25d%3Fe.html"' in index
    copied = tmp_path / "elsewhere" / "copy"
    shutil.copytree(tmp_path / "site", copied)
    shutil.rmtree(root)  # the runs are gone: the copy must not need them
    assert_links_stay_inside(copied)
    page = (copied / "runs" / f"eval__{odd.name}.html").read_text()
    assert "results.json</a>" in page and "config.json</a>" in page and "train.jsonl</a>" in page


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_site_files_follow_the_umask(tmp_path, umask):
    root = tmp_path / "runs"
    write_run(root, "eval", "20260101T000000Z-r", train=True)
    old = os.umask(umask)
    try:
        site.build(root, tmp_path / "site")
    finally:
        os.umask(old)
    out = tmp_path / "site"
    for path in [out, *out.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o777 if path.is_dir() else 0o666) & ~umask, f"{path}: {oct(mode)}"


def test_figures_survive_dollars_and_infinity(tmp_path, capsys):
    root = tmp_path / "runs"
    write_run(root, "eval", "20260101T000000Z-a", model="hub:org/price$5 _m $x$")
    inf = write_run(root, "eval", "20260101T000001Z-b")
    path = inf / "eval" / "arith" / "results.json"
    path.write_text(path.read_text().replace('"thinking_tokens_mean": 3.0', '"thinking_tokens_mean": Infinity'))
    site.build(root, tmp_path / "site")
    err = capsys.readouterr().err
    assert f"skipping {path}" in err and "not drawn" not in err
    svg = (tmp_path / "site" / "assets" / "accuracy_vs_thinking_tokens.svg").read_text()
    assert "price$5 _m $x$" in svg  # the legend shows the name as written
    assert 'src="assets/accuracy_vs_thinking_tokens.svg"' in (tmp_path / "site" / "index.html").read_text()


def test_two_tables_of_one_task_get_distinct_ids(tmp_path):
    root = tmp_path / "runs"
    run = write_run(root, "eval", "20260101T000000Z-r", "jsonl:/a/b")
    shutil.copytree(run / "eval" / "jsonl__a_b", run / "eval" / "jsonl__a_b-again")
    site.build(root, tmp_path / "site")
    page = (tmp_path / "site" / "runs" / f"eval__{run.name}.html").read_text()
    ids = re.findall(r'<table class="samples" id="([^"]+)"', page)
    assert len(ids) == 2 and len(set(ids)) == 2
    assert set(re.findall(r'data-for="([^"]+)"', page)) == set(ids)


def test_run_pages_of_runs_whose_names_collide_stay_apart(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "a__b", "c", text="first")
    write_run(root, "a", "b__c", text="second")
    site.build(root, tmp_path / "site")
    pages = sorted(p.name for p in (tmp_path / "site" / "runs").glob("*.html"))
    assert pages == ["a__b__c-2.html", "a__b__c.html"]


def test_concurrent_builds_leave_one_complete_site(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "eval", "20260101T000000Z-r", train=True)
    out = tmp_path / "site"
    (tmp_path / ".site.killed-build").mkdir()  # what a build killed mid-way left behind
    (tmp_path / ".site.killed-build" / site.MARKER).write_text("x")
    code = f"from rzoo.leaderboard.site import build; build({str(root)!r}, {str(out)!r})"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE) for _ in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
    assert (out / "index.html").is_file() and (out / site.MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs", "site"]  # no temp or old folder left


@pytest.fixture(scope="module")
def attribute_site(tmp_path_factory) -> Path:
    """A board whose every run, method, model and task name and model text is an attribute-context payload."""
    tmp = tmp_path_factory.mktemp("attribute")
    root = tmp / "runs"
    for i, name in enumerate(ATTRIBUTE):
        safe = name.replace("/", "|")
        write_run(root, f"k{safe}", f"20260102T00000{i}Z-{safe}", f"t{name}", method=name, model=f"hub:org/{name}",
                  text=name, train=True, data={"kind": "local", "location": f"/d/{name}.jsonl", "sha256": "ab" * 32})
    site.build(root, tmp / "site")
    return tmp / "site"


def test_attribute_payloads_add_no_markup_in_the_html(attribute_site):
    """Control included: the same payloads inside an attribute escaped without quotes (html.escape(quote=False))
    are found, so the check can fail."""
    import html

    for name in ATTRIBUTE:
        for quote in "\"'":  # the page's double-quoted attributes, and single-quoted ones
            raw = f"<td data-sort={quote}{html.escape(name, quote=False)}{quote}>x</td>"
            assert bool(injected_markup(raw)) is (quote in name), (name, quote)
            assert not injected_markup(f"<td data-sort={quote}{html.escape(name)}{quote}>x</td>")
    out = attribute_site
    assert len(list((out / "runs").glob("*.html"))) == len(ATTRIBUTE)
    assert_no_injected_markup(out)
    index = (out / "index.html").read_text(encoding="utf-8")
    assert all(html.escape(name) in index for name in ATTRIBUTE)  # shown, as text


def test_attribute_payloads_add_no_markup_in_chromiums_dom(attribute_site):
    """The pages as Chromium builds them after their scripts ran (`leaderboard/browser.py`): no element or attribute
    of a payload; the board's own script did run."""
    from rzoo.leaderboard import browser

    if browser.find_chromium() is None:
        if os.environ.get("RZOO_REQUIRE_BROWSER"):
            pytest.fail("chromium not found; `make test` installs it (apt-get install chromium)")
        pytest.skip("chromium not installed (make test installs it)")
    for page in [attribute_site / "index.html", *sorted((attribute_site / "runs").glob("*.html"))[:1]]:
        dom = browser.dump_dom(page)
        assert 'data-board-ready="yes"' in dom, page
        assert not injected_markup(dom), f"{page}: {injected_markup(dom)[:5]}"
