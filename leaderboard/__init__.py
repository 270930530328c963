"""The static leaderboard, imported as `rzoo.leaderboard`: run files read without trusting them
(`runfiles.py`), every evaluation as one pandas table (`collect.py`), the figures (`plot.py`), the site
(`site.py`, `harness leaderboard`) and headless-Chromium screenshots (`browser.py`)."""
