"""Data-efficiency methods against their baseline (nadamw + cosine), step mode.

For every workload and seed, each method and the ``nadamw`` baseline train for the schedule
length (``step_hint`` updates, evaluating every ``eval_every_steps``) with default
hyperparameters. The table shows, per method and averaged over seeds:

* steps to target (first evaluation meeting the workload target; ``-`` if never),
* timed seconds to target (everything on the clock: scoring runs, teachers, candidate passes),
* the metric at the end of the schedule, and its difference to the baseline's,

then, for each paper's headline claim, whether this suite reproduces its *direction*: ``yes``
when every seed moves the claimed way, ``no`` when every seed moves the other way, ``tie`` when
no seed moves, ``mixed`` otherwise. A non-reproduction is a result, not a bug.

    .venv/bin/python benchmarks/data_methods.py          # mnist1d_mlp, seeds 0-1 (~15 min)
    .venv/bin/python benchmarks/data_methods.py --workloads mnist1d_mlp,mnist1d_cnn,digits_cnn,\
charlm_gpt,forecast_gru --seeds 0,1,2                                 # the whole suite (hours)

The targets are the workloads' class values (``TRAINLAB_TARGETS=off``: the bars the baseline
reaches with its defaults), not the tuned targets of ``targets.json``, which untuned defaults
mostly miss; the step count is the class ``step_hint``. Methods that do not apply to a workload
are skipped (distillation needs cross-entropy, ``one_pass`` a generative workload). Timed
seconds are machine-dependent (a shared CPU); steps are exact and reproducible.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from trainlab.bench.runner import TrialResult, run_trial
from trainlab.registry import get_algorithm, get_workload
from trainlab.spec import Workload


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
    quick: bool = True  # part of the default (quick) run


TOLERANCE = {"accuracy": 0.005, "error_rate": 0.005, "bits_per_char": 0.01, "mse": 0.001}

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


def applies(method: Method, workload: Workload) -> bool:
    if method.needs_ce and workload.loss_type != "cross_entropy":
        return False
    return not (method.needs_generative and not workload.generative)


def run(workload: Workload, algorithm: str, hp: dict, seed: int, steps: int) -> TrialResult:
    result = run_trial(
        workload, get_algorithm(algorithm), hp, seed=seed,
        eval_every_steps=workload.eval_every_steps, max_steps=steps, full_curve=True,
    )  # fmt: skip
    if result.status == "failed":
        print(f"  FAILED {algorithm} on {workload.name}: {result.error}", file=sys.stderr)
    return result


def final_metric(workload: Workload, r: TrialResult) -> float:
    return r.evals[-1].metrics.get(workload.target.metric, math.nan) if r.evals else math.nan


def time_to_target(r: TrialResult) -> float:
    return r.time_to_target if r.time_to_target is not None else math.inf


def fmt_steps(results: list[TrialResult]) -> str:
    values = [r.steps_to_target for r in results]
    if all(v is None for v in values):
        return "-"
    return "/".join("-" if v is None else str(v) for v in values)


def fmt(x: float, digits: int = 4) -> str:
    return "-" if not math.isfinite(x) else f"{x:.{digits}f}"


def direction(method: Method, workload: Workload, mine: list[TrialResult], base: list[TrialResult]):
    """Per-seed sign of the effect in the claimed direction: +1 as claimed, -1 against, 0 tie."""
    higher = workload.target.higher_is_better
    signs = []
    for r, b in zip(mine, base, strict=True):
        if method.claim == "steps":
            s_r = r.steps_to_target if r.steps_to_target is not None else math.inf
            s_b = b.steps_to_target if b.steps_to_target is not None else math.inf
            signs.append(0 if s_r == s_b else (1 if s_r < s_b else -1))
            continue
        d = final_metric(workload, r) - final_metric(workload, b)
        d = d if higher else -d  # > 0: better
        if method.claim == "no_loss":
            tol = TOLERANCE.get(workload.target.metric, 0.0)
            signs.append(1 if d >= -tol else -1)
        else:
            signs.append(0 if d == 0 else (1 if d > 0 else -1))
    if all(s == 0 for s in signs):
        return "tie"
    if all(s > 0 for s in signs):
        return "yes"
    if all(s < 0 for s in signs):
        return "no"
    return "mixed"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default="mnist1d_mlp")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--methods", default="quick", help="'quick', 'all' or some labels")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--steps", type=int, default=0, help="updates per trial (0: step_hint)")
    parser.add_argument("--seeds-for", default="digits_cnn=0",
                        help="per-workload seed override, e.g. digits_cnn=0;forecast_gru=0")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    override = {}
    for item in filter(None, args.seeds_for.split(";")):
        name, values = item.split("=")
        override[name] = [int(s) for s in values.split(",")]
    if args.methods == "quick":
        methods = [m for m in METHODS if m.quick]
    elif args.methods == "all":
        methods = list(METHODS)
    else:
        wanted = set(args.methods.split(","))
        methods = [m for m in METHODS if m.label in wanted]

    os.environ.setdefault("TRAINLAB_TARGETS", "off")  # class targets, see the docstring
    started = time.perf_counter()
    table, claims = [], []
    for wname in args.workloads.split(","):
        workload = get_workload(wname)
        wseeds = override.get(wname, seeds)
        steps = args.steps or workload.step_hint
        print(f"[{time.perf_counter() - started:6.0f}s] {wname}: baseline", file=sys.stderr)
        base = [run(workload, "nadamw", {}, s, steps) for s in wseeds]
        table.append((wname, "nadamw (baseline)", base, base))
        for m in methods:
            if not applies(m, workload):
                continue
            print(f"[{time.perf_counter() - started:6.0f}s] {wname}: {m.label}", file=sys.stderr)
            mine = [run(workload, m.algorithm, m.hp, s, steps) for s in wseeds]
            table.append((wname, m.label, mine, base))
            claims.append((wname, m, direction(m, workload, mine, base)))

        metric = workload.target.metric
        print(f"\n## {wname}: target {workload.target.describe()}, {steps} steps, "
              f"seeds {wseeds}; metric = {metric}")  # fmt: skip
        print(f"{'method':<26} {'steps to target':>16} {'s to target':>12} "
              f"{'final ' + metric:>18} {'delta':>8}")  # fmt: skip
        for wl, label, results, baseline in table:
            if wl != wname:
                continue
            final = statistics.fmean(final_metric(workload, r) for r in results)
            base_final = statistics.fmean(final_metric(workload, r) for r in baseline)
            ttt = [time_to_target(r) for r in results]
            ttt_s = "-" if not all(math.isfinite(t) for t in ttt) else fmt(statistics.fmean(ttt), 1)
            delta = "" if results is baseline else f"{final - base_final:+.4f}"
            print(f"{label:<26} {fmt_steps(results):>16} {ttt_s:>12} {fmt(final):>18} {delta:>8}")

    print("\n## Headline claims: does this suite reproduce their direction?")
    for wname, m, verdict in claims:
        kind = {"final": "final metric", "steps": "steps to target", "no_loss": "no loss"}[m.claim]
        print(f"{wname:<12} {m.label:<26} {verdict:<6} ({kind}) {m.claim_text}")
    print(f"\n(total {time.perf_counter() - started:.0f}s)")


if __name__ == "__main__":
    main()
