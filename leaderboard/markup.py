"""HTML pieces the leaderboard's pages share: escaping, links, the page shell, table cells."""
from __future__ import annotations

import html
import urllib.parse


def e(value) -> str:
    """Escape anything for HTML text or a quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def url(relative: str) -> str:
    """A relative path of the site as a link: each component percent-encoded (`#`, `?`, `%` and spaces
    in names are characters of the name) and escaped for an attribute."""
    return e(urllib.parse.quote(relative, safe="/"))


def page(title: str, body: str, depth: int) -> str:
    up = "../" * depth
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{e(title)}</title><link rel="stylesheet" href="{up}assets/style.css"></head>\n'
            f'<body>\n{body}\n<script src="{up}assets/board.js"></script>\n</body></html>\n')


def fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def cell(value, digits: int = 3, sort=None) -> str:
    key = value if sort is None else sort
    key = "" if key is None or (isinstance(key, float) and key != key) else key
    return f'<td data-sort="{e(key)}">{e(fmt(value, digits))}</td>'
