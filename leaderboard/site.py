"""The static leaderboard: one folder of HTML, CSS, JS and images, opened from `file://`.

    harness leaderboard [--runs DIR] [--out DIR]        (default out: <runs>/leaderboard)

- `index.html`: the curves (accuracy vs thinking tokens, vs FLOPs) and a sortable table with a row
  per evaluated model and task: accuracy at every budget and at the best one, its thinking tokens
  and 95% interval, date, and a link to the run's page (provenance: config, git sha, data sha256).
- `runs/<run>.html`: the run's config, training curve, per-budget results, and a per-sample browser
  (problem id, the model's thinking and answer, verdict, tokens), filterable by budget and verdict.
- `runs/<run>/`: copies of the run's provenance files (config, status, results, training log), so
  every link stays inside the site and a copied site keeps working.

No server, no network: every asset is a local file, every link relative and URL-encoded (a `#` in
a folder name is a character of the name). Every string that came from a run (model text above all)
goes through `html.escape`, so a model that writes `<script>` shows it as text. A run file that is
not well formed is skipped with one warning naming it (`runfiles.py`); the rest is built. GPQA
question text is never in a run folder to begin with, and model text is withheld unless the data is
known not to be GPQA (`rzoo.tasks.withheld`): its samples show verdicts, letters and token counts only.
Files get the permissions of the umask (not tempfile's 0600 / 0700), and builds into one folder take
turns (a lock on its parent), so two at once never leave the site missing or a stale folder behind.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import os
import shutil
import tempfile
from pathlib import Path

from rzoo.harness.runstore import atomic_write_text, current_umask, swap_folder

from rzoo.harness.generation import knobs

from . import plot, runfiles, zoo_page
from .markup import cell, e, fmt, page, url
from .controls_table import index_section
from .run_page import _provenance_name, _unreadable_run_html, run_html
from .collect import REPORTED, RunInfo, collect, find_runs, load_results, reference_points, short_model

MARKER = ".rzoo-leaderboard"  # marks a folder this module built, so rebuilding may replace it
ASSETS = Path(__file__).resolve().parent / "assets"


class LeaderboardError(ValueError):
    """A user-facing problem building the site (bad output folder, no runs)."""


def run_slug(run_id: str) -> str:
    return run_id.replace("/", "__")


def run_slugs(runs: list[RunInfo]) -> dict[str, str]:
    """A page name per run: `<kind>__<folder>`, made unique (also without regard to case, for
    case-insensitive file systems) by a numeric suffix when two runs would share one."""
    out, taken = {}, set()
    for run in runs:
        base = run_slug(run.id)
        slug, n = base, 1
        while slug.lower() in taken:
            n += 1
            slug = f"{base}-{n}"
        taken.add(slug.lower())
        out[run.id] = slug
    return out


# ---------------------------------------------------------------------------------------------
# index


def _setting_order(row) -> tuple:
    """Columns in a readable order: budgets ascending (then their Wait extensions), then each method knob's
    values, knob by knob (`Knob.order`)."""
    def num(x) -> tuple:
        if x is None or (isinstance(x, float) and x != x):  # None or NaN (pandas) -> first
            return 0, 0.0, ""
        return (1, 0.0, x) if isinstance(x, str) else (0, float(x), "")

    knob = knobs.swept(row)
    if knob is None or knob.kind == knobs.GENERATION:
        knob = knobs.get("budget")
    return (knob.order, num(row.get(knob.name)), num(row["budget"]), num(row["waits"]))


def _knob_note() -> str:
    """What each knob's symbol in a column name means: `b = thinking budget, w = Wait extensions, ...`."""
    return ", ".join(f"{k.symbol} = {k.caption}" for k in knobs.all_knobs())


def leaderboard_rows(points) -> tuple[list[str], list[dict]]:
    """One row per (run, role, task, series): accuracy at each test-time setting, and the best one's numbers."""
    order = {}
    for _, r in points.iterrows():
        order.setdefault(r["setting"], _setting_order(r))
    settings = sorted(order, key=order.get)
    rows = []
    for (run, role, task, _series), part in points.groupby(["run", "role", "task", "series"], sort=False):
        part = part.assign(_order=[_setting_order(r) for _, r in part.iterrows()]).sort_values("_order")
        best = part.loc[part["accuracy"].idxmax()]  # ties: the cheapest setting (first in order)
        first = part.iloc[0]
        rows.append({
            "run": run, "role": role, "task": task, "curve": first["curve"], "method": first["method"],
            "model": first["model"], "base_model": first["base_model"], "n": first["n_problems"],
            "n_total": first["n_problems_total"], "k": first["k"], "date": first["date"], "git_sha": first["git_sha"],
            "series": first["series"],
            "by_setting": dict(zip(part["setting"], part["accuracy"])),
            "best": best["accuracy"], "best_setting": best["setting"],
            "best_thinking": best["thinking_tokens_mean"], "best_ci": (best["ci_lo"], best["ci_hi"]),
        })
    rows.sort(key=lambda r: (r["task"], -r["best"], r["date"]))
    return settings, rows


def index_html(points, runs: list[RunInfo], figures: dict[str, str], root: Path,
               slugs: dict[str, str] | None = None, results: dict[Path, dict | None] | None = None,
               zoo: str = "") -> str:
    settings, rows = leaderboard_rows(points)
    head = ["method", "model", "base model", "task", "n", *[f"acc@{b}" for b in settings], "best acc",
            "at setting", "thinking tokens", "95% CI", "date (UTC)", "run"]
    numeric = {"n", "best acc", "thinking tokens", "95% CI", *[f"acc@{b}" for b in settings]}
    th = "".join(f'<th data-type="{"num" if h in numeric else "text"}" title="click to sort">{e(h)}</th>'
                 for h in head)
    body_rows = []
    for r in rows:
        model = "base model" if r["role"] == "base" else short_model(r["model"])
        method = r["method"] if r["role"] != "base" else "(base)"
        n = f"{r['n']} of {r['n_total']}" if r["n_total"] and r["n_total"] != r["n"] else r["n"]
        cells = [
            cell(f"{method} [{r['series']}]" if r["series"] else method), cell(model),
            cell(short_model(r["base_model"])), cell(r["task"]), cell(n, sort=r["n"]),
            *[cell(r["by_setting"].get(b)) for b in settings],
            cell(r["best"]), cell(r["best_setting"]), cell(r["best_thinking"], 1),
            cell(f"{fmt(r['best_ci'][0])}–{fmt(r['best_ci'][1])}" if r["best_ci"][0] is not None else None,
                  sort=r["best_ci"][0]),
            cell(r["date"]),
            f'<td><a href="{url("runs/" + (slugs or {}).get(r["run"], run_slug(r["run"])) + ".html")}">{e(r["run"])}</a>'
            f'{" · " + e(r["git_sha"][:8]) if isinstance(r["git_sha"], str) else ""}</td>',
        ]
        body_rows.append(f'<tr data-task="{e(r["task"])}">{"".join(cells)}</tr>')
    body_rows += _reference_rows(reference_points(set(points["task"])) if not points.empty else [], settings)
    imgs = "".join(f'<figure><img src="{url(src)}" alt="{e(alt)}"><figcaption>{e(alt)}</figcaption></figure>'
                   for alt, src in figures.items())
    built = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = f"""<header><h1>Accuracy vs thinking tokens</h1>
<p>{len(rows)} evaluated model × task rows from {len(runs)} runs under <code>{e(root)}</code>; built {e(built)}.
Accuracy is avg@k over the problems evaluated (n); the interval is a 95% bootstrap over problems.
Columns are test-time settings: {e(_knob_note())}.
Thinking tokens are the mean actually spent at the best setting. Rows marked <span class="badge">reported</span>
are numbers {e(REPORTED)} (their source in the last column), and stars on the curves where a response length
is reported.</p></header>
{zoo}
<section><h2>Leaderboard</h2><p class="hint">Click a column to sort.</p>
<table id="board" class="sortable"><thead><tr>{th}</tr></thead>
<tbody>{"".join(body_rows)}</tbody></table></section>
<section><h2>Curves</h2><div class="figures">{imgs}</div></section>
{_controls(runs, slugs, results)}"""
    return page("rzoo leaderboard", body, depth=0)


def _controls(runs: list[RunInfo], slugs: dict[str, str] | None, results: dict[Path, dict | None] | None) -> str:
    """The test-time control section: every run's curves with their Control / Scaling / Performance."""
    entries = []
    for run in runs:
        for role, path in run.results:
            data = (results or {}).get(path) if results is not None else load_results(path)
            if data is not None:
                model = "base model" if role == "base" else short_model((data.get("model") or {}).get("spec"))
                link = "runs/" + (slugs or {}).get(run.id, run_slug(run.id)) + ".html"
                entries.append((run.method or "eval" if role != "base" else "(base)", model, data["task"], link, data))
    return index_section(entries)


def _reference_rows(refs: list[dict], settings: list[str]) -> list[str]:
    """Published results for the board's tasks, as marked rows (no run: the source instead of a link)."""
    out = []
    for r in refs:
        cells = [f'<td data-sort="(reported)"><span class="badge" title="{e(REPORTED)}">reported</span></td>',
                 cell(r["model"]), cell(None), cell(r["task"]), cell(None), *[cell(None) for _ in settings],
                 cell(r["accuracy"]), cell(f'{r["metric"]} ({r["protocol"] or "protocol not published"})'),
                 cell(r["thinking_tokens_mean"], 1), cell(None), cell(None),
                 f'<td class="source">{e(r["source"])}</td>']
        out.append(f'<tr class="reported" data-task="{e(r["task"])}" title="{e(REPORTED)}">{"".join(cells)}</tr>')
    return out


# ---------------------------------------------------------------------------------------------
# run pages


# ---------------------------------------------------------------------------------------------
# build


@contextlib.contextmanager
def _build_lock(out: Path):
    """Builds into one folder take turns: an exclusive lock on the folder's parent (a directory can be
    locked on Linux; no lock file is left behind). Where `fcntl` is missing, no lock."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    fd = os.open(out.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _remove_stale(out: Path) -> None:
    """Temp and old folders that a killed build left beside `out` (only ones this module made: they
    carry the marker, or are empty). Called with the lock held, so no build is using them."""
    for path in out.parent.iterdir():
        if not path.name.startswith(f".{out.name}."):
            continue
        if path.is_dir() and not path.is_symlink() and ((path / MARKER).exists() or not any(path.iterdir())):
            shutil.rmtree(path, ignore_errors=True)


def _prepare_out(out: Path) -> Path:
    """A fresh temp folder beside `out`; refuses to later replace a folder this module did not build."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise LeaderboardError(f"refusing to write into {out}: it exists and is not a leaderboard built by "
                               "harness (no .rzoo-leaderboard marker); choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))


def _apply_umask(folder: Path) -> None:
    """Folders 0777 and files 0666 less the umask (mkdtemp made 0700, mkstemp 0600)."""
    mask = current_umask()
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


def _swap_in(tmp: Path, out: Path) -> None:
    """Replace `out` with the finished `tmp` (readers never see a half-built site)."""
    swap_folder(tmp, out, out.with_name(f".{out.name}.old-{os.getpid()}"))


def _copy_provenance(run: RunInfo, folder: Path, results: dict[Path, dict | None]) -> dict[str, str]:
    """Copies of a run's small provenance files in the site (samples stay out: they may be large,
    and GPQA's may not be published); returns name -> link relative to the runs/ pages."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in ("config.json", "status.json", "train.jsonl"):
        source = run.path / name
        if source.is_file():
            shutil.copyfile(source, folder / name)
            files[name] = f"{folder.name}/{name}"
    for index, (role, path) in enumerate(run.results):
        data = results.get(path)
        if data is not None:
            name = _provenance_name(index, role, data["task"])
            shutil.copyfile(path, folder / name)
            files[name] = f"{folder.name}/{name}"
    return files


def build(root: Path | str, out: Path | str | None = None) -> Path:
    """Build the site for every run under `root` into `out` (default `<root>/leaderboard`); returns
    the path of index.html. Malformed run files are skipped with a warning each."""
    root = Path(root).resolve()
    out = Path(out).resolve() if out else root / "leaderboard"
    runs = [r for r in find_runs(root) if r.results or (r.path / "train.jsonl").exists()]
    if not runs:
        raise LeaderboardError(f"no runs with results or a training log under {root}")
    results = {path: load_results(path) for run in runs for _, path in run.results}  # one warning per bad file
    points = collect(root, runs, results)
    samples_cache: dict[Path, list[dict] | None] = {}

    def samples_of(path: Path):
        if path not in samples_cache:
            samples_cache[path] = runfiles.read_jsonl(path, runfiles.check_sample)
        return samples_cache[path]

    out.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(out):
        _remove_stale(out)
        tmp = _prepare_out(out)
        try:
            (tmp / MARKER).write_text("built by `harness leaderboard`; rebuilding replaces this folder\n")
            shutil.copytree(ASSETS, tmp / "assets")
            figures = {}
            if not points.empty:
                for axis in plot.AXES:
                    try:
                        files = plot.plot_curves(points, tmp / "assets", axis,
                                                 reference_points(set(points["task"])))
                    except Exception as err:  # noqa: BLE001 - one figure must not cost the site; say so
                        runfiles.warn(f"figure {axis!r} not drawn: {type(err).__name__}: {err}")
                        continue
                    svg = next(p for p in files if p.suffix == ".svg")
                    figures[f"accuracy vs {'mean thinking tokens' if axis == 'tokens' else 'estimated FLOPs'}"] = \
                        f"assets/{svg.name}"
            pages = tmp / "runs"
            pages.mkdir()
            slugs = run_slugs(runs)
            for run in runs:
                slug = slugs[run.id]
                try:
                    files = _copy_provenance(run, pages / slug, results)
                    train_figure = None
                    log_path = run.path / "train.jsonl"
                    if log_path.exists():
                        log = runfiles.read_jsonl(log_path, runfiles.check_train_row)
                        if log:
                            try:
                                plot.plot_training(log, pages / f"{slug}-training")
                                train_figure = f"{slug}-training.svg"
                            except Exception as err:  # noqa: BLE001 - a figure, not the page
                                runfiles.warn(f"training figure of {run.path} not drawn: {type(err).__name__}: {err}")
                    html_text = run_html(run, train_figure, files, results, samples_of)
                except Exception as err:  # noqa: BLE001 - a run whose files defeat the checks gets a stub page
                    runfiles.warn(f"run page of {run.path} not built: {type(err).__name__}: {err}")
                    html_text = _unreadable_run_html(run, f"{type(err).__name__}: {err}")
                atomic_write_text(pages / f"{slug}.html", html_text)
            try:
                zoo = zoo_page.section(root, slugs, tmp / "assets")
            except Exception as err:  # noqa: BLE001 - the zoo's section must not cost the site; say so
                runfiles.warn(f"zoo section not built: {type(err).__name__}: {err}")
                zoo = ""
            atomic_write_text(tmp / "index.html", index_html(points, runs, figures, root, slugs, results, zoo))
            _apply_umask(tmp)
            _swap_in(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return out / "index.html"
