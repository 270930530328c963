from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rzoo.harness.jobs import resolve
from rzoo.harness.config import ConfigError, apply_overrides, convert, parse_tokens
from rzoo.harness.evaluation.config import EvalConfig


def test_convert_by_field_type():
    assert convert("3", int, "k") == 3
    assert convert("1e3", int, "k") == 1000
    assert convert("3e-6", float, "lr") == 3e-6
    assert convert("true", bool, "b") is True and convert("0", bool, "b") is False
    assert convert("[256,512,1024]", list[int], "b") == [256, 512, 1024]
    assert convert("math500,aime24", list[str], "t") == ["math500", "aime24"]
    assert convert("none", int | None, "limit") is None
    assert convert("7", int | None, "limit") == 7


@pytest.mark.parametrize("value,annotation,fragment", [
    ("abc", float, "expected a number"),
    ("1.5", int, "expected an integer"),
    ("maybe", bool, "expected true/false"),
    ("[1,x]", list[int], "expected an integer"),
])
def test_bad_values_name_the_key(value, annotation, fragment):
    with pytest.raises(ConfigError) as err:
        convert(value, annotation, "eval.budgets")
    assert "eval.budgets" in str(err.value) and fragment in str(err.value)


def test_apply_overrides_sections_and_suggestions():
    from rzoo.methods.grpo import Config

    cfg = apply_overrides(Config(), {"lr": "1e-5", "steps": "3"})
    assert cfg.lr == 1e-5 and cfg.steps == 3
    assert Config().lr == 3e-6  # the default instance is untouched
    with pytest.raises(ConfigError, match=r"unknown config key 'lrr'.*Did you mean: lr"):
        apply_overrides(Config(), {"lrr": "1"})
    ev = apply_overrides(EvalConfig(), {"budgets": "[8,16]", "k": "2", "temperature": "0.7"})
    assert ev.budgets == [8, 16] and ev.k == 2


def test_validation_errors():
    with pytest.raises(ConfigError, match="temperature"):
        apply_overrides(EvalConfig(), {"k": "4"})  # k > 1 with greedy decoding
    from rzoo.methods.grpo import Config

    with pytest.raises(ConfigError, match="samples_per_prompt"):
        apply_overrides(Config(), {"samples_per_prompt": "1"})
    assert apply_overrides(Config(), {"clip_eps": "10"}).clip_eps == 10.0  # R1-Zero's clip ratio is valid


def test_vllm_tensor_parallel_is_checked_against_backend_and_gpus():
    import torch

    with pytest.raises(ConfigError, match="needs eval.backend=vllm"):
        apply_overrides(EvalConfig(), {"vllm_tensor_parallel": "2"})
    if torch.cuda.device_count() < 2:  # this machine: the error names the GPUs it would need
        cfg = EvalConfig(backend="vllm", vllm_tensor_parallel=2)
        with pytest.raises(ConfigError, match="needs that many GPUs"):
            cfg.validate()


def test_numeric_fields_have_validated_ranges():
    from rzoo.methods.grpo import Config

    for key, value, fragment in [("lr", "-1", "lr must be > 0"), ("lr", "nan", "finite"),
                                 ("temperature", "0", "temperature must be > 0"), ("beta", "-0.1", ">= 0"),
                                 ("steps", "0", "steps must be >= 1")]:
        with pytest.raises(ConfigError, match=fragment):
            apply_overrides(Config(), {key: value})
    with pytest.raises(ConfigError, match="budgets must be >= 1"):
        apply_overrides(EvalConfig(), {"budgets": "[8,0]"})
    with pytest.raises(ConfigError, match="top_p must be <= 1"):
        apply_overrides(EvalConfig(), {"top_p": "1.5"})


def test_help_lists_every_key_with_default_and_source():
    from rzoo.harness.jobs import key_help
    from rzoo.harness.config import valid_keys
    from rzoo.methods.grpo import Config

    text = key_help("train+eval", ["method=grpo"])
    for key in valid_keys(Config()):
        assert f"  {key} " in text, key
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("steps "))
    assert "30" in line and "preset" in line  # the cpu preset value, and where it comes from
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("format_weight "))
    assert "grpo" in line  # declared by the method, not a shared section
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("weight_decay "))
    assert "optimiser" in line


def test_parse_tokens_rejects_malformed_and_duplicates():
    assert parse_tokens(["a=1", "eval.b=[1,2]"]) == {"a": "1", "eval.b": "[1,2]"}
    with pytest.raises(ConfigError, match="key=value"):
        parse_tokens(["lr"])
    with pytest.raises(ConfigError, match="twice"):
        parse_tokens(["a=1", "a=2"])


def test_cli_resolve_presets_alias_and_errors():
    job = resolve("train+eval", ["method=grpo", "task=math500", "eval.budgets=[32,64]", "lr=1e-4"])
    assert job.config.lr == 1e-4
    assert job.config.steps == 30  # cpu preset
    assert job.eval.task == ["math500"] and job.eval.budgets == [32, 64]
    assert job.trains and job.evaluates and job.method == "grpo"
    paper = resolve("train", ["method=grpo", "preset=paper"])
    assert paper.config.samples_per_prompt == 16 and paper.config.beta == 0.001
    assert paper.trains and not paper.evaluates
    with pytest.raises(Exception, match="Did you mean: grpo"):
        resolve("train", ["method=grp"])
    with pytest.raises(ConfigError, match="eval.budgets"):
        resolve("train+eval", ["method=grpo", "eval.budget=[1]"])
    with pytest.raises(ConfigError, match="does not evaluate"):
        resolve("train", ["method=grpo", "eval.k=1"])
    with pytest.raises(ConfigError, match="preset"):
        resolve("eval", ["preset=gpu"])


def test_help_is_fast_and_does_not_import_torch():
    code = "import sys; from rzoo.harness.cli import main; main(['--help']); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert out.stdout.strip().endswith("False")
    assert "train+eval" in out.stdout


def test_cli_bad_input_is_one_line_and_nonzero(runs_root, tmp_path):
    # an empty model cache: bad input must fail before any model is built or converted (no progress bars)
    env = {**os.environ, "RZOO_CACHE": str(tmp_path / "empty-cache")}
    for args, fragment in [
        (["train", "method=nope"], "unknown method 'nope'"),
        (["eval", "task=math5000"], "Did you mean: math500"),
        (["eval", "model=/no/such/folder", "task=runsum"], "not readable"),  # runsum: no data files needed
        (["train", "method=grpo", "steps=x"], "steps: expected an integer"),
    ]:
        out = subprocess.run([sys.executable, "-m", "rzoo.harness.cli", *args], capture_output=True, text=True,
                             timeout=120, env=env)
        assert out.returncode == 2, (args, out.stderr)
        assert fragment in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
    assert not runs_root.exists()  # nothing half-written


def _saved_run(tmp_path, method: str, drop=(), extra=None):
    """A run folder as `harness train method=<method>` (CPU preset) writes it, with keys of its config taken out
    (a run written before the code gained them) or added (a key the code has since lost)."""
    import json

    from rzoo.harness.training.trainer import STATE_FILE

    job = resolve("train", [f"method={method}"])
    record = json.loads(json.dumps(job.to_dict(), default=str))
    record["config"] = {k: v for k, v in record["config"].items() if k not in drop} | (extra or {})
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / STATE_FILE).write_bytes(b"")
    (tmp_path / "config.json").write_text(json.dumps(record))
    return job


def test_a_resumed_run_takes_its_presets_value_for_a_key_it_predates(tmp_path, capsys):
    # cot_valve's CPU preset builds no MixChain (mixchain_alphas=[]); the paper default builds four: a run written
    # before the key existed must not start building MixChain on resume
    new = _saved_run(tmp_path, "cot_valve", drop=("mixchain_alphas", "lr"))
    assert new.config.mixchain_alphas == [] and new.config.lr != type(new.config)().lr
    job = resolve("train", [f"resume={tmp_path}", "max_steps=7"])
    assert job.config.mixchain_alphas == [] and job.config.lr == new.config.lr and job.config.max_steps == 7
    err = capsys.readouterr().err
    assert "[resume]" in err and "mixchain_alphas=[]" in err and f"lr={new.config.lr!r}" in err


def test_a_resumed_run_with_a_key_the_method_lost_is_refused_by_name(tmp_path):
    _saved_run(tmp_path, "grpo", extra={"old_knob": 3})
    with pytest.raises(ConfigError, match="old_knob"):
        resolve("train", [f"resume={tmp_path}"])


def test_a_complete_saved_config_resumes_silently_as_saved(tmp_path, capsys):
    new = _saved_run(tmp_path, "grpo")
    job = resolve("train", [f"resume={tmp_path}"])
    assert job.config == new.config and "[resume]" not in capsys.readouterr().err


def test_the_cli_in_a_closed_pipe_ends_quietly_like_a_unix_tool():
    """`harness methods | head -1`: the reader is gone before the listing is written; no traceback, and the exit
    status a process ended by SIGPIPE gets (141), as `yes | head -1` gives."""
    import shutil
    import subprocess
    import sys

    harness = shutil.which("harness", path=str(__import__("pathlib").Path(sys.executable).parent))
    proc = subprocess.Popen([harness, "methods"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader has gone before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and "Traceback" not in err and "BrokenPipe" not in err, err
    shell = subprocess.run(f"set -o pipefail; '{harness}' methods | head -1", shell=True, executable="/bin/bash",
                           capture_output=True, text=True, timeout=60)
    assert len(shell.stdout.splitlines()) == 1 and "Traceback" not in shell.stderr
