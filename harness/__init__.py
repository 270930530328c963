"""The harness, imported as `rzoo.harness`: the command line, the Python API and the app layer on top (`cli.py`,
`api.py`, `jobs.py`, `app.py`, `zoo.py`), the core below them in subpackages (`training/`, `evaluation/`,
`engines/`, `generation/`, `models/`) over shared foundations (`config.py`, `registry.py`, `runstore.py`,
`data.py`, `distributed.py`, `method.py`: the declaration every method ends with). Imports only run downward;
`tests/test_layers.py` checks it."""
