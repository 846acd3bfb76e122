"""The HTML report of a benchmark: one self-contained ``index.html`` (plots inlined as PNG data
URIs; the PNG files are written next to it too).

Sections: the benchmark's configuration (with the untimed evaluation share of wall time),
scores and speedups (by timed seconds and by steps) with their 95 % bootstrap intervals as
numbers and error bars ("n/a" where a benchmark of one study has none), performance profiles,
the time-to-target table with ratio intervals and contention markers, learning curves per
workload (validation metric, and training loss where recorded, against timed seconds and
steps), learning-rate schedules where recorded, model cost (validation metric against non-zero
parameters for the algorithms whose model differs from the dense one, beside a table of
parameters, FLOPs and inference speedups; :mod:`trainlab.report.cost`), the tuning cost (what
each study spent until its first trial reached the target; :mod:`trainlab.report.tuning_cost`),
the learning-rate sensitivity of every LR sweep in the store (:mod:`trainlab.report.sensitivity`),
and every trial. Every name that comes from a user (algorithms, workloads, hyperparameters,
errors) is escaped with :func:`html.escape`.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import math
import re
from pathlib import Path
from typing import Any

from trainlab.bench import uncertainty
from trainlab.bench.scoring import ScoreResult, compute_scores, records_from_trials
from trainlab.bench.store import Store
from trainlab.report import cells, cost, plots, sensitivity
from trainlab.report import pbt as pbt_report
from trainlab.report import tuning_cost as tuning
from trainlab.spec import Target, TrainlabError

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1150px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; vertical-align: top; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
td.l { overflow-wrap: anywhere; }  /* a long name wraps instead of widening the page */
.inf { color: #999; } .fail { color: #b00; } .best { font-weight: bold; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.4em 0; }
.note { color: #666; font-size: 0.9em; } code { background: #f5f5f5; padding: 0 3px; }
details { margin: 0.5em 0; }
"""


def esc(value: Any) -> str:
    """``value`` as HTML text, safe in element content and in double- or single-quoted
    attributes (``& < > " '`` escaped): every user-supplied string goes through this."""
    return html.escape(str(value), quote=True)


#: the longest file-name stem of a plot (a workload name can be any length; most file systems
#: cap a name at 255 bytes)
MAX_SLUG = 80


def _slug(name: str, used: set[str]) -> str:
    """A safe file-name stem for a plot named after ``name`` (which holds user strings such as
    workload names): ASCII letters, digits, ``_`` and ``-`` only (no dots, no slashes),
    at most :data:`MAX_SLUG` characters, and unique among ``used`` even on a case-insensitive
    file system (``_2``, ``_3``, ... appended to repeats). ``used`` holds lower-cased stems."""
    base = re.sub(r"[_-]{2,}", "_", re.sub(r"[^A-Za-z0-9_-]+", "_", name))
    base = base.strip("_-")[:MAX_SLUG].rstrip("_-")
    base = base or "plot"
    slug, k = base, 1
    while slug.lower() in used:
        k += 1
        slug = f"{base}_{k}"
    used.add(slug.lower())
    return slug


def _num(value: float | None, unit: str = "", spec: str = ".3g") -> str:
    if value is None or (isinstance(value, float) and math.isinf(value)):
        return '<span class="inf">inf</span>'
    return f"{format(value, spec)}{unit}"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}">'


def _try_scores(
    trials: list[dict[str, Any]], by: str, reference: str | None, n_boot: int, seed: int
) -> ScoreResult | None:
    try:
        records = records_from_trials(trials, by)
        if not records:
            return None
        return compute_scores(records, reference=reference, by=by, n_boot=n_boot, seed=seed)
    except TrainlabError:
        return None


def eval_share(trials: list[dict[str, Any]]) -> tuple[float, float, float | None]:
    """``(eval seconds, wall seconds, eval / wall)`` summed over the trials that recorded both
    (the share is None when none did): the untimed evaluation share of the benchmark's time."""
    both = [t for t in trials if t.get("eval_seconds") is not None and t.get("wall_seconds")]
    evals = sum(float(t["eval_seconds"]) for t in both)
    wall = sum(float(t["wall_seconds"]) for t in both)
    return evals, wall, (evals / wall if wall > 0 else None)


def build_report(
    store_path: str | Path,
    out_dir: str | Path,
    benchmark_id: int | None = None,
    reference: str | None = None,
    n_boot: int = uncertainty.N_BOOT,
    seed: int = 0,
) -> Path:
    """Write ``out_dir/index.html`` (and the PNGs) for a benchmark; returns the HTML path.
    Intervals come from ``n_boot`` bootstrap replicates over studies (0: none)."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrainlabError(
            f"cannot create report directory {out}: {exc.strerror or exc}"
        ) from None
    with Store(store_path, readonly=True) as store:
        bench = store.benchmark(benchmark_id)
        trials = store.trials(benchmark_id=bench["id"])
        evals = {t["id"]: store.evaluations(t["id"]) for t in trials}
    if not trials:
        raise TrainlabError(f"benchmark {bench['id']} has no trials")

    algorithms = list(dict.fromkeys(t["algorithm"] for t in trials))
    colour_of = plots.colours(algorithms)
    by_time = _try_scores(trials, "time", reference, n_boot, seed)
    by_steps = _try_scores(trials, "steps", reference, n_boot, seed)
    used: set[str] = set()
    figures: list[tuple[str, str, Path]] = []  # (section, caption, png)

    for result, what in ((by_time, "timed seconds"), (by_steps, "steps")):
        if result is not None:
            png = plots.performance_profiles(
                result.profiles, result.r_max, out / f"{_slug('profiles_' + result.by, used)}.png",
                colour_of, title=f"performance profiles (time to target in {what})",
                scores=result.scores,
            )  # fmt: skip
            figures.append(("profiles", f"performance profiles by {what}", png))
            png = plots.ratio_bars(
                result.ratios, result.ratio_intervals, result.r_max,
                out / f"{_slug('ratios_' + result.by, used)}.png", colour_of,
                title=f"ratio to the fastest per workload ({what}), 95 % bootstrap intervals",
            )  # fmt: skip
            figures.append(("ratios", f"ratios by {what}", png))
            ranked = result.ranking()
            png = plots.score_bars(
                {a: result.scores[a] for a in ranked}, result.score_intervals,
                out / f"{_slug('scores_' + result.by, used)}.png", colour_of,
                xlabel=f"score by {what}", title="scores, 95 % intervals",
            )  # fmt: skip
            figures.append(("scores", f"scores by {what}", png))
            png = plots.score_bars(
                {a: result.speedups[a]["geomean"] for a in ranked}, result.speedup_intervals,
                out / f"{_slug('speedups_' + result.by, used)}.png", colour_of,
                xlabel=f"speedup over {result.reference} by {what}", reference_line=1.0,
                title="speedups (geometric mean), 95 % intervals",
            )  # fmt: skip
            figures.append(("scores", f"speedups by {what}", png))

    workloads: dict[str, dict[str, Any]] = {}
    for t in trials:
        name = t["workload"] + (f":{t['variant']}" if t["variant"] else "")
        w = workloads.setdefault(name, {"target": None, "curves": {}})
        if w["target"] is None and t["target_metric"] is not None:
            w["target"] = Target(t["target_metric"], t["target_value"], bool(t["higher_is_better"]))
        if evals[t["id"]]:
            w["curves"].setdefault(t["algorithm"], []).append(evals[t["id"]])
    for name, w in workloads.items():
        if w["target"] is None:
            continue
        curves = {a: w["curves"][a] for a in algorithms if a in w["curves"]}
        png = plots.learning_curves(
            name, w["target"], curves, out / f"{_slug('curves_' + name, used)}.png", colour_of
        )
        figures.append(("curves", name, png))
        if plots.has_lr(curves):
            png = plots.learning_rates(
                name, curves, out / f"{_slug('lr_' + name, used)}.png", colour_of
            )
            figures.append(("lr", name, png))

    cost_table, cost_figures = cost.section(
        trials, algorithms, colour_of, lambda name: out / f"{_slug(name, used)}.png"
    )
    figures += [("cost", caption, png) for caption, png in cost_figures]
    pbt_html, pbt_figures = pbt_report.section(
        trials, evals, lambda name: out / f"{_slug(name, used)}.png")
    figures += [("pbt", caption, png) for caption, png in pbt_figures]
    with Store(store_path, readonly=True) as store:  # the store's LR sweeps, if any
        sweeps = sensitivity.section(store, lambda name: out / f"{_slug(name, used)}.png")
    page = _page(bench, trials, algorithms, by_time, by_steps, figures, store_path, cost_table,
                 pbt_html=pbt_html, sweeps=sweeps,
                 tuning_table=tuning.section(trials, bench["config"].get("options") or {}))
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def _date(timestamp: float | None = None) -> str:
    if timestamp is None:
        return datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def _config_table(bench: dict[str, Any], trials: list[dict], store_path) -> str:
    options = bench["config"].get("options", {})
    counts: dict[str, int] = {}
    for t in trials:
        counts[t["status"]] = counts.get(t["status"], 0) + 1
    every = options.get("eval_every_steps")
    workloads = ", ".join(options.get("workloads", []))
    if options.get("variants"):
        workloads += " (with held-out variants)"
    rows = [
        ("benchmark", f"{bench['id']} (key {bench['key']})"),
        ("store", str(store_path)),
        ("created", _date(bench["created"])),
        ("ruleset", options.get("ruleset", "?")),
        ("trials x studies", f"{options.get('n_trials', '?')} x {options.get('n_studies', '?')}"),
        ("mode", f"steps (evaluate every {every} steps)" if every else "time"),
        ("budget scale", options.get("budget_scale", 1.0)),
        ("Halton seed", options.get("seed", "?")),
        ("workloads", workloads),
        ("algorithms", ", ".join(options.get("algorithms", []))),
        ("trials by status", ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))),
        ("untimed evaluation share", _share_text(trials)),
        ("contended trials", sum(bool(t.get("contended")) for t in trials)),
    ]
    body = "".join(
        f'<tr><th class="l">{esc(k)}</th><td class="l">{esc(v)}</td></tr>' for k, v in rows
    )
    return f"<table>{body}</table>"


def _share_text(trials: list[dict[str, Any]]) -> str:
    evals, wall, share = eval_share(trials)
    if share is None:
        return "n/a (no trial recorded its wall time)"
    return f"{100 * share:.1f} % of wall time ({evals:.1f} s of evaluation in {wall:.1f} s)"


def _scores_table(
    by_time: ScoreResult | None, by_steps: ScoreResult | None, algorithms: list[str]
) -> str:
    if by_time is None and by_steps is None:
        return '<p class="note">No finished trials yet.</p>'
    main = by_time or by_steps
    head = ['<th class="l">algorithm</th>']
    for r in (by_time, by_steps):
        if r is not None:
            head.append(f"<th>score ({esc(r.by)})</th>")
            head.append(f"<th>speedup vs {esc(r.reference)} ({esc(r.by)})</th>")
    head.append('<th class="l">held-out variant failures</th>')
    rows = []
    for a in sorted(algorithms, key=lambda a: (-main.scores.get(a, 0.0), a)):
        row = [f'<td class="l">{esc(a)}</td>']
        for r in (by_time, by_steps):
            if r is None:
                continue
            if a not in r.scores:
                row += ["<td>-</td>", "<td>-</td>"]
                continue
            row.append(f"<td>{esc(cells.score(r, a))}</td>")
            row.append(f"<td>{esc(cells.speedup(r, a))}</td>")
        fails = main.variant_failures.get(a, {})
        text = "; ".join(f"{b}: {', '.join(v)}" for b, v in sorted(fails.items()))
        row.append(f'<td class="l fail">{esc(text)}</td>')
        rows.append("<tr>" + "".join(row) + "</tr>")
    note = (
        f'<p class="note">Score: integral of the performance profile over [1, {main.r_max:g}], '
        "normalised to [0, 1] (higher is better). Per-workload time: median over studies of each "
        "study's fastest trial that reached the target. In brackets: 95 % bootstrap "
        f"percentile intervals over studies ({main.n_boot} replicates); n/a: no interval (a "
        "single study, or an undefined speedup).</p>"
    )
    warn = "".join(f'<p class="note">{esc(w)}</p>' for w in main.warnings)
    return f"<table><tr>{''.join(head)}</tr>{''.join(rows)}</table>{note}{warn}"


def _times_table(result: ScoreResult | None, algorithms: list[str]) -> str:
    if result is None:
        return '<p class="note">No finished trials yet.</p>'
    head = '<th class="l">workload</th>' + "".join(f"<th>{esc(a)}</th>" for a in algorithms)
    rows = []
    names = sorted(set(result.workloads) | {w for a in result.raw_times.values() for w in a})
    for w in names:
        row = [f'<td class="l">{esc(w)}</td>']
        finite = [result.raw_times[a][w] for a in algorithms if a in result.raw_times]
        best = min(finite, default=math.inf)
        for a in algorithms:
            if a not in result.raw_times:
                row.append("<td>-</td>")
                continue
            t = result.raw_times[a].get(w, math.inf)
            text = esc(cells.time_ratio(result, a, w))
            text = text.replace("variant failed", '<span class="fail">variant failed</span>')
            if math.isinf(t):
                text = f'<span class="inf">{text}</span>'
            cls = ' class="best"' if math.isfinite(t) and t == best else ""
            row.append(f"<td{cls}>{text}</td>")
        rows.append("<tr>" + "".join(row) + "</tr>")
    note = (
        f'<p class="note">In brackets: the ratio\'s 95 % bootstrap interval (n/a: a single '
        f"study). {esc(cells.CONTENDED_NOTE)}.</p>"
    )
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>{note}"


TRIAL_COLUMNS = (
    "id", "workload", "algorithm", "study", "trial", "seed", "status", "time to target",
    "steps to target", "best", "timed s", "eval s", "wall s", "contended", "hyperparameters",
    "error",
)  # fmt: skip
LEFT = ("workload", "algorithm", "hyperparameters", "error")


def _trial_cells(t: dict[str, Any]) -> list[str]:
    name = t["workload"] + (f":{t['variant']}" if t["variant"] else "")
    hp = json.dumps(t["hyperparameters"], sort_keys=True, default=str)
    error = (t["error"] or "").splitlines()[0] if t["error"] else ""
    return [
        esc(t["id"]),
        esc(name),
        esc(t["algorithm"]),
        esc(t["study"]),
        esc(t["trial_index"]),
        esc(t["seed"]),
        esc(t["status"]),
        _num(t["time_to_target"], " s"),
        _num(t["steps_to_target"], "", "d"),
        _num(t["best_metric"], "", ".4g"),
        _num(t["timed_seconds"], "", ".1f"),
        _num(t.get("eval_seconds"), "", ".1f"),
        _num(t.get("wall_seconds"), "", ".1f"),
        '<span class="fail">*</span>' if t.get("contended") else "",
        f"<code>{esc(hp)}</code>",
        f'<span class="fail">{esc(error)}</span>',
    ]


def _trials_table(trials: list[dict[str, Any]]) -> str:
    head = "".join(
        f'<th class="l">{h}</th>' if h in LEFT else f"<th>{h}</th>" for h in TRIAL_COLUMNS
    )
    rows = []
    for t in trials:
        cells = [
            f'<td class="l">{c}</td>' if h in LEFT else f"<td>{c}</td>"
            for h, c in zip(TRIAL_COLUMNS, _trial_cells(t), strict=True)
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _page(bench, trials, algorithms, by_time, by_steps, figures, store_path, cost_table,
          pbt_html: str = "", tuning_table: str = "", sweeps=()) -> str:  # fmt: skip
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>trainlab benchmark {esc(bench['id'])}</title><style>{CSS}</style></head><body>",
        f"<h1>trainlab benchmark {esc(bench['id'])}</h1>",
        _config_table(bench, trials, store_path),
        *(['<p class="note">This benchmark is a learning-rate sweep (<code>trainlab '
           "sensitivity</code>): every run trains its full budget at a fixed learning rate, so "
           "its scores below rank learning rates, not tuned algorithms; its result is the "
           "Learning-rate sensitivity section.</p>"]
          if (bench["config"].get("options") or {}).get("sensitivity_lrs") else []),
        "<h2>Scores</h2>",
        _scores_table(by_time, by_steps, algorithms),
    ]
    parts += [_img(png, caption) for section, caption, png in figures if section == "scores"]
    parts.append("<h2>Performance profiles</h2>")
    parts += [_img(png, caption) for section, caption, png in figures if section == "profiles"]
    parts += [
        "<h2>Time to target (median over studies; ratio to the fastest)</h2>",
        *(_img(png, caption) for section, caption, png in figures if section == "ratios"),
        "<h3>timed seconds</h3>",
        _times_table(by_time, algorithms),
        "<h3>steps</h3>",
        _times_table(by_steps, algorithms),
        "<h2>Learning curves</h2>",
        '<p class="note">Validation metric after each evaluation (and, where recorded, the '
        "training loss below it), against timed training seconds and against steps; every trial "
        "is a line, one colour per algorithm; dashed: the target. Learning rate against steps "
        "where the trials recorded it.</p>",
    ]
    for section, caption, png in figures:
        if section == "curves":
            parts += [f"<h3>{esc(caption)}</h3>", _img(png, f"learning curves of {caption}")]
            parts += [_img(lr, f"learning rate of {caption}") for sec, cap, lr in figures
                      if sec == "lr" and cap == caption]  # fmt: skip
    parts += ["<h2>Tuning cost</h2>", tuning_table] if tuning_table else []
    parts += ["<h2>Model cost</h2>", cost_table]
    parts += [_img(png, caption) for section, caption, png
              in figures if section == "cost"]  # fmt: skip
    if pbt_html:  # --search pbt: the best lineages and their hyperparameter schedules
        parts += ["<h2>Population Based Training</h2>", pbt_html]
        parts += [_img(png, f"best PBT lineage of {caption}") for section, caption, png
                  in figures if section == "pbt"]  # fmt: skip
    if sweeps:
        parts.append("<h2>Learning-rate sensitivity</h2>")
    for heading, table, png in sweeps:
        parts += [f"<h3>{esc(heading)}</h3>", table, _img(png, f"sensitivity: {heading}")]
    parts += [
        "<h2>Trials</h2>",
        f"<details><summary>{len(trials)} trials</summary>{_trials_table(trials)}</details>",
        f'<p class="note">Generated by trainlab on {esc(_date())}.</p>',
        "</body></html>",
    ]
    return "\n".join(parts)
