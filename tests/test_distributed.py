"""Two processes on one CPU (torchrun or accelerate launch, gloo): one run folder, identical weights on both processes, the
same result as one process with the same global batch, a run killed mid-way resumed across both
processes, and an evaluation sharded over both that equals one process's."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port"]


def _env(runs: Path) -> dict:
    return {**os.environ, "RZOO_RUNS": str(runs), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


CPU2 = Path(__file__).resolve().parents[1] / "configs" / "accelerate" / "cpu-2.yaml"


def _launcher(name: str, port: int) -> list[str]:
    if name == "torchrun":
        return TORCHRUN + [str(port)]
    # accelerate launch with the shipped 2-process CPU config (its torchrun-based launcher)
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CPU2), "--main_process_port",
            str(port)]


def _harness(args: list[str], runs: Path, procs: int, port: int, timeout: int = 300, launcher: str = "torchrun"):
    cmd = (_launcher(launcher, port) + ["-m", "rzoo.harness.cli"] if procs == 2 else
           [sys.executable, "-m", "rzoo.harness.cli"]) + args + ["--no-progress"]
    out = subprocess.run(cmd, env=_env(runs), capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def sft_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ddp") / "sft.jsonl"
    rows = [{"id": i, "question": f"What is {i} + {i}?", "thinking": f"{i} plus {i} is {2 * i}",
             "answer": f"\\boxed{{{2 * i}}}"} for i in range(16)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _sft_args(model, data, steps=3):
    return ["train", "method=s1", f"model={model}", f"train_data=jsonl:{data}", f"max_steps={steps}", "batch_size=4",
            "micro_batch_size=2", "lr=1e-3", "max_length=256", "dtype=float32", "save_every=1", "weight_decay=0"]


def _weights(run: Path):
    from safetensors.torch import load_file

    return load_file(run / "checkpoint" / "model.safetensors")


@pytest.mark.parametrize("launcher,port", [("torchrun", 29511), ("accelerate", 29531)])
def test_two_processes_train_like_one(launcher, port, tiny_model_dir, sft_file, tmp_path):
    _harness(_sft_args(tiny_model_dir, sft_file), tmp_path / "two", 2, port, launcher=launcher)
    (two,) = (tmp_path / "two" / "s1").iterdir()  # one run folder for both processes
    meta = json.loads((two / "checkpoint" / "method.json").read_text())
    assert meta["processes"] == 2  # both processes ended with these weights, which are the checkpoint's:
    from transformers import AutoModelForCausalLM

    from rzoo.harness.runstore import weights_sha256

    assert meta["weights_sha256_all_processes"] == weights_sha256(AutoModelForCausalLM.from_pretrained(two / "checkpoint"))
    _harness(_sft_args(tiny_model_dir, sft_file), tmp_path / "one", 1, 0)
    (one,) = (tmp_path / "one" / "s1").iterdir()
    a, b = _weights(one), _weights(two)
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5  # same global batch, same result
    la = [json.loads(x)["loss"] for x in (one / "train.jsonl").read_text().splitlines()]
    lb = [json.loads(x)["loss"] for x in (two / "train.jsonl").read_text().splitlines()]
    assert la == pytest.approx(lb, rel=1e-4) and all(x > 0 for x in la)


def test_resume_across_two_processes_after_sigkill(tiny_model_dir, sft_file, tmp_path):
    _harness(_sft_args(tiny_model_dir, sft_file, steps=4), tmp_path / "full", 2, 29512)
    (full,) = (tmp_path / "full" / "s1").iterdir()
    runs = tmp_path / "killed"
    cmd = TORCHRUN + ["29513", "-m", "rzoo.harness.cli"] + _sft_args(tiny_model_dir, sft_file, steps=4) + ["--no-progress"]
    proc = subprocess.Popen(cmd, env=_env(runs), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline:  # kill -9 the whole group once step 2 is saved
        done = list(runs.glob("s1/*/checkpoint/method.json"))
        if done and json.loads(done[0].read_text()).get("step", 0) >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    (part,) = (runs / "s1").iterdir()
    step = json.loads((part / "checkpoint" / "method.json").read_text())["step"]
    assert 2 <= step < 4
    _harness(["train", f"resume={part}"], runs, 2, 29514)
    a, b = _weights(full), _weights(part)
    assert all((a[k] - b[k]).abs().max().item() < 1e-6 for k in a)
    la = [json.loads(x)["loss"] for x in (full / "train.jsonl").read_text().splitlines()]
    lb = [json.loads(x)["loss"] for x in (part / "train.jsonl").read_text().splitlines()]
    assert la == pytest.approx(lb, rel=1e-6)


def test_sharded_evaluation_equals_one_process(tiny_model_dir, tmp_path):
    args = ["eval", f"model={tiny_model_dir}", "task=arith", "eval.limit=10", "eval.budgets=[3,6]",
            "eval.answer_tokens=4", "eval.dtype=float32", "eval.chunk=3"]
    _harness(args, tmp_path / "two", 2, 29515)
    _harness(args, tmp_path / "one", 1, 0)
    (two,) = (tmp_path / "two" / "eval").iterdir()
    (one,) = (tmp_path / "one" / "eval").iterdir()
    skip = {"seconds", "generation_seconds", "grading_seconds", "tokens_per_second"}
    ra = json.loads((one / "eval" / "arith" / "results.json").read_text())["results"]
    rb = json.loads((two / "eval" / "arith" / "results.json").read_text())["results"]
    assert [{k: v for k, v in r.items() if k not in skip} for r in ra] == \
           [{k: v for k, v in r.items() if k not in skip} for r in rb]
    sa = [{k: v for k, v in json.loads(x).items() if not k.endswith("seconds")}
          for x in (one / "eval" / "arith" / "samples.jsonl").read_text().splitlines()]
    sb = [{k: v for k, v in json.loads(x).items() if not k.endswith("seconds")}
          for x in (two / "eval" / "arith" / "samples.jsonl").read_text().splitlines()]
    assert sa == sb and len(sa) == 20
    assert not list((two / "eval" / "arith").glob("samples.partial*"))


_SYNC_SCRIPT = """
import sys, torch
from accelerate import Accelerator
from rzoo.harness.training.trainer import Trainer
from rzoo.harness.distributed import shutdown

accelerator = Accelerator(cpu=True)
torch.manual_seed(0)
model = torch.nn.Linear(3, 2)  # the same weights on both processes
if sys.argv[1] == "differ" and accelerator.process_index == 1:
    with torch.no_grad():
        model.weight[0, 0] += 1e-6  # one process drifted by one ulp-sized step
trainer = Trainer.__new__(Trainer)
trainer.accelerator, trainer.model = accelerator, model
try:
    trainer.check_in_sync()
    verdict = f"IN SYNC {trainer.in_sync}"
except RuntimeError as e:
    verdict = f"FIRED {str(e)[:60]}"
open(f"{sys.argv[2]}/rank{accelerator.process_index}.txt", "w").write(verdict)  # one file each: no interleaving
shutdown()  # as the CLI does: a rank leaving gloo at interpreter exit can abort ("terminate called ...")
"""


@pytest.mark.parametrize("case,port", [("same", 29541), ("differ", 29542)])
def test_the_weights_in_sync_check_fires_when_processes_differ(case, port, tmp_path):
    """The end-of-run check (`Trainer.check_in_sync`) on two real processes: identical weights pass with their
    hash; weights that differ by 1e-6 in one entry on one process raise on both."""
    script = tmp_path / "sync.py"
    script.write_text(_SYNC_SCRIPT)
    out = subprocess.run(TORCHRUN + [str(port), str(script), case, str(tmp_path)], env=_env(tmp_path),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)]  # one verdict per process
    if case == "same":
        assert all(line.startswith("IN SYNC ") and len(line.split()[-1]) == 64 for line in lines)
    else:
        assert all(line.startswith("FIRED processes ended with different weights") for line in lines)


def test_cot_valve_plus_plus_on_two_processes_trains_like_one(tiny_model_dir, tmp_path):
    """CoT-Valve++ gives every example its own adapter scale (beta): each row is scaled inside one forward, so the
    two processes run the same forwards and backwards whatever betas their shares hold (one backward per
    distinct beta made them differ, which DDP cannot take), and the adapter equals one process's (1e-5)."""
    from safetensors.torch import load_file

    data = tmp_path / "mix.jsonl"
    rows = [{"question": f"What is {i} + {i}?", "thinking": "x " * n, "answer": f"\\boxed{{{2 * i}}}"}
            for i in range(4) for n in (2, 5, 9)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["train", "method=cot_valve", "valve=plus_plus", f"model={tiny_model_dir}", f"train_data=jsonl:{data}",
            "mixchain_alphas=[]", "max_steps=3", "batch_size=4", "micro_batch_size=2", "lr=1e-2", "max_length=256",
            "dtype=float32", "save_every=0", "weight_decay=0"]
    _harness(args, tmp_path / "two", 2, 29551)
    _harness(args, tmp_path / "one", 1, 0)
    (two,) = (tmp_path / "two" / "cot_valve").iterdir()
    (one,) = (tmp_path / "one" / "cot_valve").iterdir()
    a = load_file(one / "checkpoint" / "adapter_model.safetensors")
    b = load_file(two / "checkpoint" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5
    la = [json.loads(x)["loss"] for x in (one / "train.jsonl").read_text().splitlines()]
    lb = [json.loads(x)["loss"] for x in (two / "train.jsonl").read_text().splitlines()]
    assert la == pytest.approx(lb, rel=1e-4) and len(la) == 3
    assert all(x > 0 for x in la)  # every step had completion tokens to learn from
    # the adapter trained: LoRA's B matrices start at zero
    assert any(a[k].abs().max().item() > 0 for k in a if "lora_B" in k)
