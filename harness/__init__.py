"""The harness, imported as `rzoo.harness`: the command line and the app layer on top (`cli.py`, `jobs.py`,
`app.py`, `zoo.py`), the core below them in subpackages (`training/`, `evaluation/`, `engines/`, `generation/`,
`models/`) over shared foundations (`config.py`, `registry.py`, `runstore.py`, `data.py`,
`distributed.py`). Imports only run downward; `tests/test_layers.py` checks it."""
