"""Data-efficiency methods against their baseline (nadamw + cosine), step mode, with intervals.

For every workload and seed, each method and the ``nadamw`` baseline train for the schedule
length (``step_hint`` updates, evaluating every ``--eval-every`` steps, 20 by default) with
default hyperparameters. Seeds are **paired**: method seed ``s`` is compared with baseline seed
``s`` (same initialisation seed and data order). Per method and workload the table shows:

* steps to target (first evaluation meeting the workload target): median [min-max] over seeds;
* the **speedup** in steps to target, ``baseline steps / method steps`` per seed: the geometric
  mean over seeds with its 95 % bootstrap interval, and the one-sided p-value that the method
  needs fewer steps;
* the **final validation metric difference** (method - baseline, at the end of the schedule) per
  seed: the mean with its 95 % bootstrap interval, and the one-sided p-value in the direction
  the paper claims (for the "no loss" claims of data pruning, the non-inferiority test that the
  difference is above ``-TOLERANCE``, e.g. -0.005 accuracy);
* the compute per trial relative to the baseline over the whole schedule (process CPU seconds
  in the timed sections, geometric mean over seeds; everything on the clock counts: scoring
  runs, teachers, candidate passes; CPU rather than wall seconds, so that trials sharing the
  machine disturb it less; still machine-dependent and rough: on the shared 2-core machine
  two runs gave factors up to ~1.5x apart for the same row, so read only the large ones);
* verdicts stated plainly, and whether the paper's headline claim is reproduced here.

**Intervals**: percentile bootstrap over seeds (2000 resamples, numpy ``Generator`` seeded 0):
a replicate draws seeds with replacement, the same draw for the method and the baseline, and
recomputes the statistic. With 5 seeds a percentile interval is narrow-biased (it undercovers),
so it is read together with the test. **Test**: the exact one-sided Wilcoxon signed-rank test
on the paired differences, :func:`trainlab.bench.compare.signed_rank_p` (log step ratios,
:func:`trainlab.bench.compare.log_ratios`, for speed; a miss is an infinite step count, larger
than any finite one; ties and both-missed pairs are dropped). With ``n`` untied pairs the
smallest attainable one-sided p is ``2**-n``: 1/32 = 0.031 for 5 seeds, so **p < 0.05** is the
bar here; **p < 0.01 needs >= 7 seeds** (1/128 = 0.008).

**Verdicts** are read from the interval: a speedup interval entirely above 1 is "faster",
entirely below 1 "slower", otherwise "no effect detected (interval includes 1)"; the same for
the accuracy difference against 0. A claim is "reproduced" when the interval of the claimed
quantity excludes no effect in the claimed direction ("contradicted" when it excludes it in the
other direction, "not shown" otherwise). A verdict or reproduction whose test (in the same
direction) does not also reach p < 0.05 is flagged as weak: with 5 seeds the percentile
interval can exclude no effect when one seed disagrees or ties. A non-reproduction is a result,
not a bug.

    PYTHONPATH=src .venv/bin/python benchmarks/data_methods.py     # mnist1d_mlp, seeds 0-4
    PYTHONPATH=src .venv/bin/python benchmarks/data_methods.py --workloads mnist1d_mlp,\
mnist1d_cnn,digits_cnn,charlm_gpt,forecast_gru --seeds 0,1,2,3,4,5,6    # the suite (hours)

The targets are the workloads' class values (what ``get_workload`` returns and ``run_trial``
uses without a spec: the bars the baseline reaches with its defaults), not the tuned targets of
``targets.json``, which untuned defaults mostly miss; the step count is the class
``step_hint``. Methods that do not apply to a workload are skipped (distillation needs
cross-entropy, ``one_pass`` a generative workload). Trials run in ``--jobs`` worker processes
(spawned, one torch thread each); in step mode a trial is bitwise deterministic, so the step
counts and metrics do not depend on ``--jobs``, only the timed seconds do. The table is also
written, with a header (date, machine, command, wall time), to ``--out``.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime
import math
import multiprocessing
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainlab.bench.compare import log_ratios, signed_rank_p
from trainlab.bench.uncertainty import percentile_interval
from trainlab.registry import get_workload
from trainlab.spec import Workload

N_BOOT = 2000
ALPHA = 0.05
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "data_methods.txt"


@dataclass(frozen=True)
class Method:
    label: str
    algorithm: str
    hp: dict[str, Any] = field(default_factory=dict)
    #: "final": better final metric; "steps": fewer steps to target; "no_loss": final metric
    #: within ``tolerance`` of the baseline while training on less data
    claim: str = "final"
    claim_text: str = ""
    needs_ce: bool = False
    needs_generative: bool = False
    quick: bool = True  # part of the quick run (--methods quick)


TOLERANCE = {"accuracy": 0.005, "error_rate": 0.005, "bits_per_char": 0.01, "mse": 0.001}

BASELINE = "nadamw"

METHODS = (
    Method("data_diet_el2n", "data_diet_el2n", {}, "no_loss",
           "Paul+21: keeping the top-EL2N 80% (scored at 10% of training) costs no accuracy"),
    Method("data_diet_el2n keep=0.5", "data_diet_el2n", {"diet_keep_fraction": 0.5}, "no_loss",
           "Paul+21: even 50% pruned by EL2N costs little accuracy (CIFAR-10)", quick=False),
    Method("data_diet_grand", "data_diet_grand", {}, "no_loss",
           "Paul+21: keeping the top-GraNd 80% costs no accuracy"),
    Method("data_diet_grand @init", "data_diet_grand", {"diet_score_fraction": 0.0}, "no_loss",
           "Paul+21: GraNd already works at initialisation", quick=False),
    Method("hard_samples", "hard_samples", {}, "steps",
           "Sahayam+23: training on the highest-loss batches reaches accuracy in fewer epochs"),
    Method("cyclical_curriculum", "cyclical_curriculum", {}, "final",
           "Kesgin&Amasyali22: cycling easy subset <-> full data beats vanilla training"),
    Method("useful", "useful", {}, "final",
           "Nguyen+24: upsampling the late-learned cluster improves in-distribution accuracy"),
    Method("one_pass", "one_pass", {}, "final",
           "Komatsuzaki19: fresh data (one epoch) beats repeated epochs at equal updates",
           needs_generative=True),
    Method("pskd", "pskd", {}, "final",
           "Kim+21: progressive self-distillation improves accuracy", needs_ce=True),
    Method("ensemble_kd", "ensemble_kd", {}, "final",
           "Shen&Savvides20: a student of an ensemble beats the same model trained on labels",
           needs_ce=True),
    Method("ema", "ema", {}, "steps",
           "EMA of weights: the averaged model is better earlier in training"),
    Method("swa", "swa", {}, "final",
           "Izmailov+18: SWA generalizes better than conventional training at equal budget"),
)  # fmt: skip


@dataclass(frozen=True)
class Trial:
    """What the table needs from one trial (small, so it crosses process boundaries cheaply)."""

    status: str
    steps_to_target: int | None
    final: float  # the target metric at the end of the schedule (nan if there is none)
    timed_seconds: float
    cpu_seconds: float  # process CPU seconds in the timed sections
    wall_seconds: float
    error: str | None = None


def applies(method: Method, workload: Workload) -> bool:
    if method.needs_ce and workload.loss_type != "cross_entropy":
        return False
    return not (method.needs_generative and not workload.generative)


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run_one(wname: str, algorithm: str, hp: dict, seed: int, steps: int, every: int) -> Trial:
    """One trial in step mode with the workload's class target (runs in a worker process)."""
    from trainlab.bench.runner import run_trial
    from trainlab.registry import get_algorithm

    workload = get_workload(wname)
    started = time.perf_counter()
    r = run_trial(
        workload, get_algorithm(algorithm), hp, seed=seed, eval_every_steps=every,
        max_steps=steps, full_curve=True, count_flops=False, calibrate=False,
    )  # fmt: skip
    final = r.evals[-1].metrics.get(workload.target.metric, math.nan) if r.evals else math.nan
    return Trial(r.status, r.steps_to_target, float(final), r.timed_seconds, r.cpu_seconds,
                 time.perf_counter() - started, r.error)  # fmt: skip


# ---------------------------------------------------------------------------------- statistics


def steps_array(trials: list[Trial]) -> np.ndarray:
    return np.array([math.inf if t.steps_to_target is None else t.steps_to_target for t in trials])


def geomean_finite(x: np.ndarray) -> np.ndarray:
    """Geometric mean over the last axis of the finite positive entries (``nan`` if none): a
    seed on which either side missed has no finite speedup (as in trainlab.bench.compare)."""
    ok = np.isfinite(x) & (x > 0)
    logs = np.where(ok, np.log(np.where(ok, x, 1.0)), 0.0)
    k = ok.sum(axis=-1)
    return np.where(k > 0, np.exp(logs.sum(axis=-1) / np.maximum(k, 1)), np.nan)


def bootstrap(values: np.ndarray, stat, rng: np.random.Generator) -> tuple[float, float]:
    """95 % percentile interval of ``stat`` over seeds resampled with replacement (paired: the
    per-seed values already combine method and baseline of the same seed)."""
    n = values.size
    idx = rng.integers(0, n, size=(N_BOOT, n))
    reps = stat(values[idx])
    reps = reps[~np.isnan(reps)]
    if reps.size == 0:
        return math.nan, math.nan
    low, high = percentile_interval(reps)
    return float(low), float(high)


@dataclass
class Row:
    label: str
    steps: np.ndarray
    final: np.ndarray
    cost: float  # geometric mean over seeds of timed CPU seconds / baseline's
    speedup: float = math.nan
    speedup_ci: tuple[float, float] = (math.nan, math.nan)
    p_faster: float = math.nan
    p_slower: float = math.nan
    diff: float = math.nan
    diff_ci: tuple[float, float] = (math.nan, math.nan)
    p_claim: float = math.nan  # accuracy, in the claimed direction
    speed_verdict: str = ""
    acc_verdict: str = ""
    claim: str = ""
    method: Method | None = None


def weak(p: float) -> str:
    """A note when the interval excludes no effect but the test in that direction does not
    reach p < ALPHA (short percentile intervals from few seeds undercover)."""
    return "" if p < ALPHA else f"; but p = {p:.2g}, not < {ALPHA}"


def analyse(method: Method | None, workload: Workload, mine: list[Trial], base: list[Trial],
            seed: int) -> Row:  # fmt: skip
    rng = np.random.default_rng(seed)
    s_m, s_b = steps_array(mine), steps_array(base)
    f_m = np.array([t.final for t in mine])
    f_b = np.array([t.final for t in base])
    ratio = np.array([m.cpu_seconds / b.cpu_seconds if b.cpu_seconds > 0 else math.nan
                      for m, b in zip(mine, base, strict=True)])  # fmt: skip
    row = Row(method.label if method else f"{BASELINE} (baseline)", s_m, f_m,
              float(geomean_finite(ratio)), method=method)  # fmt: skip
    if method is None:
        return row
    with np.errstate(divide="ignore", invalid="ignore"):
        speedups = np.where(np.isinf(s_m) | np.isinf(s_b), math.nan, s_b / s_m)
    row.speedup = float(geomean_finite(speedups))
    row.speedup_ci = bootstrap(speedups, geomean_finite, rng)
    row.p_faster, row.p_slower, n_pairs = signed_rank_p(log_ratios(s_m, s_b))
    if n_pairs == 0:  # every seed tied or both missed: the test has nothing to say
        row.p_faster = row.p_slower = math.nan

    sign = 1.0 if workload.target.higher_is_better else -1.0
    diff = f_m - f_b  # in the metric's units; sign * diff > 0: the method is better
    row.diff = float(np.mean(diff))
    row.diff_ci = bootstrap(diff, lambda x: np.mean(x, axis=-1), rng)
    tol = TOLERANCE.get(workload.target.metric, 0.0)
    p_better, p_worse, _ = signed_rank_p(sign * diff)
    if method.claim == "no_loss":  # non-inferiority: better than -tol
        row.p_claim = signed_rank_p(sign * diff + tol)[0]
    else:
        row.p_claim = p_better

    lo, hi = row.speedup_ci
    if lo > 1:
        row.speed_verdict = "faster (interval excludes 1" + weak(row.p_faster) + ")"
    elif hi < 1:
        row.speed_verdict = "slower (interval excludes 1" + weak(row.p_slower) + ")"
    elif math.isnan(lo) and np.isinf(s_m).all() and np.isfinite(s_b).any():
        row.speed_verdict = f"slower: never reached the target (p = {row.p_slower:.2g})"
    elif math.isnan(lo):
        row.speed_verdict = "no speedup defined (misses)"
    else:
        row.speed_verdict = "no effect detected (interval includes 1)"
    better_lo, better_hi = sorted((sign * row.diff_ci[0], sign * row.diff_ci[1]))
    if better_lo > 0:
        row.acc_verdict = "more accurate (interval excludes 0" + weak(p_better) + ")"
    elif better_hi < 0:
        row.acc_verdict = "less accurate (interval excludes 0" + weak(p_worse) + ")"
    else:
        row.acc_verdict = "no effect detected (interval includes 0)"

    if method.claim == "steps":
        shown, against, p = lo > 1, hi < 1, row.p_faster
        what, opposite = "fewer steps", "more steps (interval below 1)"
    elif method.claim == "no_loss":
        shown, against, p = better_lo > -tol, better_hi < -tol, row.p_claim
        what = f"no loss beyond {tol:g}"
        opposite = f"loses more than {tol:g} (interval below -{tol:g})"
    else:
        shown, against, p = better_lo > 0, better_hi < 0, row.p_claim
        what, opposite = "better final metric", "worse final metric (interval below 0)"
    if shown:
        row.claim = f"yes: {what}" + ("" if p < ALPHA else f" (weak: p = {p:.2g}, not < {ALPHA})")
    elif against:
        row.claim = f"no, contradicted: {opposite}"
    else:
        row.claim = f"not shown: interval includes no effect ({what})"
    return row


# ---------------------------------------------------------------------------------- formatting


def fmt_steps(steps: np.ndarray) -> str:
    finite = steps[np.isfinite(steps)]
    misses = int(np.sum(~np.isfinite(steps)))
    if finite.size == 0:
        return f"- ({misses} misses)"
    med = np.median(steps)  # a miss counts as infinite
    med_s = "-" if not np.isfinite(med) else f"{med:.0f}"
    hi = "miss" if misses else f"{finite.max():.0f}"
    text = f"{med_s} [{finite.min():.0f}-{hi}]"
    return text + (f" ({misses} misses)" if misses else "")


def fmt_ci(x: float, ci: tuple[float, float], digits: int, signed: bool = False,
           suffix: str = "") -> str:  # fmt: skip
    if math.isnan(x):
        return "-"
    f = f"{{:{'+' if signed else ''}.{digits}f}}"
    body = f.format(x) + suffix
    if math.isnan(ci[0]):
        return body
    return f"{body} [{f.format(ci[0])}, {f.format(ci[1])}]"


def fmt_p(p: float) -> str:
    return "-" if math.isnan(p) else f"{p:.3f}"


def table(workload: Workload, rows: list[Row], seeds: list[int], steps: int, every: int) -> str:
    metric = workload.target.metric
    out = [
        f"### {workload.name}: target {workload.target.describe()}, {steps} steps, "
        f"evaluation every {every} steps, seeds {','.join(map(str, seeds))} (paired)",
        "",
        f"| method | steps to target, median [range] | speedup [95 % CI] | p (faster) "
        f"| final {metric} diff [95 % CI] | p (claimed dir.) | compute (x baseline) "
        f"| speed verdict | {metric} verdict | headline claim reproduced here? |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.method is None:
            out.append(f"| {r.label} | {fmt_steps(r.steps)} | 1 | - "
                       f"| final {np.mean(r.final):.4f} | - | 1 | - | - | - |")  # fmt: skip
            continue
        p_acc = fmt_p(r.p_claim) + ("\u2020" if r.method.claim == "no_loss" else "")
        out.append(
            f"| {r.label} | {fmt_steps(r.steps)} | {fmt_ci(r.speedup, r.speedup_ci, 3)} "
            f"| {fmt_p(r.p_faster)} | {fmt_ci(r.diff, r.diff_ci, 4, signed=True)} | {p_acc} "
            f"| {r.cost:.2f} | {r.speed_verdict} | {r.acc_verdict} | {r.claim} |"
        )
    tol = TOLERANCE.get(metric, 0.0)
    out += [
        "",
        f"\u2020 non-inferiority p: the difference is above -{tol:g} (the pruning claims). "
        f"Other accuracy p-values test 'the method is better'. One-sided exact Wilcoxon "
        f"signed-rank over {len(seeds)} paired seeds: the smallest attainable p is "
        f"2^-{len(seeds)} = {2.0 ** -len(seeds):.3f}, so p < {ALPHA} is the bar here; "
        f"p < 0.01 needs >= 7 seeds. Intervals: paired percentile bootstrap over seeds, "
        f"{N_BOOT} resamples. Speedups: geometric mean over seeds where both reached the target. "
        f"Compute: CPU seconds of the whole schedule relative to the baseline, rough on a "
        f"shared machine (only large factors mean anything).",
    ]
    return "\n".join(out)


def details(workload: Workload, rows: list[Row], seeds: list[int]) -> str:
    out = [f"Per seed ({workload.name}; seeds {seeds}): steps to target / final "
           f"{workload.target.metric}"]  # fmt: skip
    for r in rows:
        cells = ", ".join(
            f"{'miss' if not np.isfinite(s) else int(s)}/{f:.4f}"
            for s, f in zip(r.steps, r.final, strict=True)
        )
        out.append(f"  {r.label:<26} {cells}")
    return "\n".join(out)


def claims_list(rows: list[Row]) -> str:
    out = ["Headline claims tested:"]
    for r in rows:
        if r.method is not None:
            kind = {"final": "final metric", "steps": "steps to target",
                    "no_loss": "no loss"}[r.method.claim]  # fmt: skip
            out.append(f"  {r.label:<26} ({kind}) {r.method.claim_text}")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default="mnist1d_mlp")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--methods", default="all", help="'all', 'quick' or some labels")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--steps", type=int, default=0, help="updates per trial (0: step_hint)")
    parser.add_argument("--eval-every", type=int, default=20, help="evaluation cadence (steps)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="results file ('' for none)")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.methods == "quick":
        methods = [m for m in METHODS if m.quick]
    elif args.methods == "all":
        methods = list(METHODS)
    else:
        wanted = set(args.methods.split(","))
        methods = [m for m in METHODS if m.label in wanted]
        if unknown := wanted - {m.label for m in methods}:
            parser.error(f"unknown methods: {', '.join(sorted(unknown))}")
    command = "PYTHONPATH=src .venv/bin/python benchmarks/data_methods.py" + "".join(
        " " + shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )

    started = time.perf_counter()
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    workloads = [get_workload(w) for w in args.workloads.split(",")]
    jobs: dict[tuple[str, str, int], tuple] = {}  # (workload, label, seed) -> arguments
    for w in workloads:
        steps = args.steps or w.step_hint
        for s in seeds:
            jobs[(w.name, BASELINE, s)] = (w.name, BASELINE, {}, s, steps, args.eval_every)
        for m in methods:
            if applies(m, w):
                for s in seeds:
                    jobs[(w.name, m.label, s)] = (w.name, m.algorithm, m.hp, s, steps,
                                                  args.eval_every)  # fmt: skip
    print(f"{len(jobs)} trials on {args.jobs} workers", file=sys.stderr)
    results: dict[tuple[str, str, int], Trial] = {}
    failures: list[str] = []
    with cf.ProcessPoolExecutor(
        max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker, initargs=(args.threads,),
    ) as pool:  # fmt: skip
        futures = {pool.submit(run_one, *a): key for key, a in jobs.items()}
        for fut in cf.as_completed(futures):
            key = futures[fut]
            try:
                trial = fut.result()
            except Exception as exc:  # noqa: BLE001 - a crashed trial is reported, not fatal
                trial = Trial("failed", None, math.nan, math.nan, math.nan, math.nan, repr(exc))
            results[key] = trial
            if trial.status == "failed":
                failures.append(f"{key[0]} {key[1]} seed {key[2]}: {trial.error}")
            print(f"[{time.perf_counter() - started:6.0f}s] {len(results)}/{len(jobs)} "
                  f"{key[0]} {key[1]} seed {key[2]}: {trial.status}, steps to target "
                  f"{trial.steps_to_target}, final {trial.final:.4f}, "
                  f"timed {trial.timed_seconds:.1f}s, cpu {trial.cpu_seconds:.1f}s",
                  file=sys.stderr, flush=True)  # fmt: skip

    sections = []
    for w in workloads:
        steps = args.steps or w.step_hint
        base = [results[(w.name, BASELINE, s)] for s in seeds]
        rows = [analyse(None, w, base, base, 0)]
        for m in methods:
            if applies(m, w):
                mine = [results[(w.name, m.label, s)] for s in seeds]
                rows.append(analyse(m, w, mine, base, 0))
        sections += [table(w, rows, seeds, steps, args.eval_every), details(w, rows, seeds),
                     claims_list(rows)]  # fmt: skip
    if failures:
        sections.append("Failed trials:\n" + "\n".join(f"  {f}" for f in failures))
    wall = time.perf_counter() - started
    body = "\n\n".join(sections)
    print(body)
    print(f"\nCommand: {command}\n(total {wall:.0f}s)")
    if args.out:
        from trainlab.bench.targets import machine_description

        header = (f"# benchmarks/data_methods.py\n# date (start): {date}\n# machine: "
                  f"{machine_description()}\n# command: {command}\n# jobs: {args.jobs}, "
                  f"threads per job: {args.threads}\n# wall time: {wall:.0f} s\n")  # fmt: skip
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(header + "\n" + body + "\n", encoding="utf-8")
        print(f"written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
