"""The static leaderboard, imported as `rzoo.leaderboard`: run files read without trusting them
(`runfiles.py`), every evaluation as one pandas table (`collect.py`), the figures (`plot.py`), the site
(`site.py`, `harness leaderboard`) with its markup helpers, run pages and s1 controls table (`markup.py`,
`run_page.py`, `controls_table.py`), the zoo's page and figures (`zoo_page.py`, `zoo_figures.py`, `frontier.py`)
and headless-Chromium screenshots (`browser.py`)."""
