"""Learngene (TLEG on ``charlm_gpt``, SWS on ``digits_cnn``): does one learngene, paid for once,
make descendants of several depths reach the target sooner than random initialisation?

Protocol (step mode, the workloads' class targets, NAdamW + cosine with the ``nadamw``
baseline's defaults everywhere, one torch thread; every training run goes through
:func:`trainlab.bench.runner.run_trial`, so every cost is the runner's *timed* seconds):

1. **Ancestor**: the workload's model made deeper (``--tleg-ancestor-depth``, default 4 blocks;
   SWS: ``(3, 3)`` convolutions) trained for ``--ancestor-steps`` updates (whole budget, seed
   0). Its timed seconds are reported on their own.
2. **Auxiliary model**: the learngene's model (TLEG: a ``--tleg-aux-depth``-block linear
   expansion; SWS: ``(3, 3)`` depths with one shared layer per stage), trained for
   ``--aux-steps`` updates on soft distillation from the ancestor (alpha 1, tau 1).
3. **Descendants** at several depths (``--tleg-depths``, default 1,2,3 blocks; SWS
   ``(1,1) (2,2) (3,3)``), each seed trained twice up to the target or ``--max-steps``: from
   random initialisation and from the learngene (the expansion is inside the timed ``init``).

Table, per depth: median time-to-target (timed seconds) and steps-to-target over seeds for
both, their ratio, and the **amortised** learngene time, ``(ancestor + auxiliary) / number of
descendant depths + descendant time``; a final row sums over depths: ``ancestor + auxiliary
+ sum of learngene descendants`` against ``sum of random descendants``. A missed target counts
as the budget's timed seconds (a lower bound, marked ``>``). Timed seconds on a shared
machine are noisy (the ``contended`` column counts flagged trials); the step counts are
deterministic.

    PYTHONPATH=src python benchmarks/learngene.py                  # TLEG + SWS, seeds 0,1
    PYTHONPATH=src python benchmarks/learngene.py --methods sws --seeds 0,1,2
    PYTHONPATH=src python benchmarks/learngene.py --methods sws_mnist1d   # SWS on mnist1d_cnn:
        # stages (3,3,3) for the ancestor and auxiliary, descendants (1,1,1) (2,2,2) (3,3,3)
"""

from __future__ import annotations

import argparse
import datetime
import platform
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from trainlab.algorithms.learngene import AuxiliaryDistillation, InheritedInit
from trainlab.bench.runner import TrialResult, run_trial
from trainlab.methods.learngene import sws, tleg
from trainlab.registry import get_workload

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "learngene.txt"


@dataclass
class Method:
    name: str
    workload: str
    ancestor: dict  # with_changes(**ancestor) gives the ancestor's architecture
    auxiliary: dict  # ... and the model the auxiliary is built from
    descendants: list[dict]
    make_auxiliary: object
    initialize: object  # initialize(descendant, auxiliary)


def trial(workload, algorithm, seed: int, args, steps: int, full: bool) -> TrialResult:
    return run_trial(
        workload, algorithm, seed=seed, eval_every_steps=args.eval_every, max_steps=steps,
        full_curve=full, count_flops=False, calibrate=False,
    )  # fmt: skip


def label(changes: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in changes.items()).replace(" ", "")


def run_method(m: Method, args, log) -> list[str]:
    base = get_workload(m.workload)
    ancestor_alg = InheritedInit(None, name="nadamw")
    # the ancestor's and the auxiliary's schedules span their own runs
    anc_w = base.with_changes("ancestor", step_hint=args.ancestor_steps, **m.ancestor)
    anc = trial(anc_w, ancestor_alg, 0, args, args.ancestor_steps, full=True)
    log(f"{m.name}: ancestor {label(m.ancestor)}: {anc.timed_seconds:.1f} s, "
        f"best {anc.best_metric:.4f}")  # fmt: skip
    distil = AuxiliaryDistillation(ancestor_alg.last_model, m.make_auxiliary)
    aux_w = base.with_changes("aux", step_hint=args.aux_steps, **m.auxiliary)
    aux = trial(aux_w, distil, 0, args, args.aux_steps, full=True)
    log(f"{m.name}: auxiliary: {aux.timed_seconds:.1f} s, best {aux.best_metric:.4f}")
    learngene = distil.last_model
    rows = []
    for changes in m.descendants:
        w = base.with_changes(label(changes), **changes)
        for arm in ("random", "learngene"):
            for seed in args.seeds:
                init = None
                if arm == "learngene":

                    def init(model, _aux=learngene):
                        return m.initialize(model, _aux)

                r = trial(w, InheritedInit(init, name=arm), seed, args, args.max_steps,
                          full=False)  # fmt: skip
                rows.append((label(changes), arm, seed, r))
                log(
                    f"{m.name} {label(changes)} {arm} seed {seed}: {r.status} "
                    f"t={r.time_to_target} steps={r.steps_to_target} best={r.best_metric:.4f}"
                )
    return table(m, base, anc, aux, rows, len(args.seeds))


def seconds(r: TrialResult) -> tuple[float, bool]:
    """Time to target, or the timed seconds spent when missed (a lower bound)."""
    if r.time_to_target is not None:
        return r.time_to_target, False
    return r.timed_seconds, True


def fmt(value: float, lower: bool) -> str:
    return (">" if lower else "") + f"{value:.1f}"


def table(m: Method, base, anc: TrialResult, aux: TrialResult, rows, n_seeds: int) -> list[str]:
    depths = list(dict.fromkeys(r[0] for r in rows))
    upfront = anc.timed_seconds + aux.timed_seconds
    share = upfront / len(depths)
    target = f"{base.target.metric} {'>=' if base.target.higher_is_better else '<='} " \
             f"{base.target.value}"  # fmt: skip
    out = [
        f"## {m.name} on {m.workload} (class target {target}, step mode)",
        f"ancestor {label(m.ancestor)}: {anc.timed_seconds:.1f} s timed, {anc.steps} steps, "
        f"best {anc.best_metric:.4f}",
        f"auxiliary (learngene) from {label(m.auxiliary)}: {aux.timed_seconds:.1f} s timed, "
        f"{aux.steps} steps, best {aux.best_metric:.4f}",
        f"up-front cost {upfront:.1f} s, amortised over {len(depths)} depths: {share:.1f} s each",
        "",
        f"{'descendant':<22}{'random s [steps]':>22}{'learngene s [steps]':>22}"
        f"{'lg/random':>11}{'amortised lg s':>16}{'amort/random':>14}{'contended':>11}",
    ]
    totals = {"random": [0.0, False], "learngene": [upfront, False]}
    for d in depths:
        cells = {}
        for arm in ("random", "learngene"):
            rs = [r for (dd, a, _, r) in rows if dd == d and a == arm]
            secs = [seconds(r) for r in rs]
            med = statistics.median(s for s, _ in secs)
            lower = any(lo for _, lo in secs)
            steps = [r.steps_to_target if r.steps_to_target else r.steps for r in rs]
            miss = sum(r.status != "reached" for r in rs)
            cont = sum(r.contended for r in rs)
            cells[arm] = (med, lower, statistics.median(steps), miss, cont)
            totals[arm][0] += med
            totals[arm][1] |= lower
        rmed, rlow, rsteps, rmiss, rc = cells["random"]
        lmed, llow, lsteps, lmiss, lc = cells["learngene"]
        amort = lmed + share
        # two budgets spent say nothing about speed (their seconds differ only by contention)
        ratio = "n/a" if rlow or llow else f"{lmed / rmed:.2f}"
        out.append(
            f"{d:<22}{fmt(rmed, rlow) + f' [{rsteps:.0f}]':>22}"
            f"{fmt(lmed, llow) + f' [{lsteps:.0f}]':>22}{ratio:>11}"
            f"{fmt(amort, llow):>16}{amort / rmed:>14.2f}{f'{rc + lc}/{2 * n_seeds}':>11}"
        )
        if rmiss or lmiss:
            out.append(f"{'':<22}missed: random {rmiss}, learngene {lmiss} of {n_seeds}")
    rt, lt = totals["random"], totals["learngene"]
    out.append(
        f"{'total (all depths)':<22}{fmt(rt[0], rt[1]):>22}{'':>22}{'':>11}"
        f"{fmt(lt[0], lt[1]):>16}{lt[0] / rt[0]:>14.2f}"
    )
    verdict = "holds" if lt[0] < rt[0] and not lt[1] else "does not hold"
    if rt[1] and lt[0] < rt[0]:
        verdict = "holds (random init missed: its total is a lower bound)"
    out.append(f"amortised saving (ancestor + auxiliary + learngene descendants < random): "
               f"{verdict}")  # fmt: skip
    return out


def methods(args) -> list[Method]:
    out = []
    if "tleg" in args.methods:
        out.append(Method(
            "TLEG", "charlm_gpt", {"layers": args.tleg_ancestor_depth}, {"layers": 1},
            [{"layers": d} for d in args.tleg_depths],
            lambda model: tleg.make_auxiliary(
                model, args.tleg_aux_depth, generator=torch.Generator().manual_seed(0)
            ),
            tleg.initialize_descendant,
        ))  # fmt: skip
    if "sws" in args.methods:
        out.append(Method(
            "SWS", "digits_cnn", {"depths": (3, 3)}, {"depths": (3, 3)},
            [{"depths": (d, d)} for d in (1, 2, 3)],
            sws.make_auxiliary, sws.initialize_descendant,
        ))  # fmt: skip
    if "sws_mnist1d" in args.methods:  # stride-2 transitions kept per stage, stride-1 shared
        out.append(Method(
            "SWS (mnist1d_cnn)", "mnist1d_cnn", {"depths": (3, 3, 3)}, {"depths": (3, 3, 3)},
            [{"depths": (d, d, d)} for d in (1, 2, 3)],
            sws.make_auxiliary, sws.initialize_descendant,
        ))  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--methods", default="tleg,sws")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--tleg-depths", default="1,2,3")
    p.add_argument("--tleg-ancestor-depth", type=int, default=4)
    p.add_argument("--tleg-aux-depth", type=int, default=4)
    p.add_argument(
        "--ancestor-steps", type=int, default=None, help="default: the workload's step_hint"
    )
    p.add_argument(
        "--aux-steps", type=int, default=None, help="default: a third of the workload's step_hint"
    )
    p.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="descendant budget; default: the workload's step_hint",
    )
    p.add_argument("--eval-every", type=int, default=None, help="default: step_hint / 30")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    args.methods = args.methods.split(",")
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.tleg_depths = [int(d) for d in args.tleg_depths.split(",")]
    torch.set_num_threads(1)
    start = time.time()
    lines = [
        f"# benchmarks/learngene.py, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread",
        "# command: " + shlex.join([sys.argv[0], *(argv or sys.argv[1:])]),
    ]

    def log(msg: str) -> None:
        print(msg, flush=True)

    for m in methods(args):
        hint = get_workload(m.workload).step_hint
        run_args = argparse.Namespace(**vars(args))
        run_args.ancestor_steps = args.ancestor_steps or hint
        run_args.aux_steps = args.aux_steps or max(1, hint // 3)
        run_args.max_steps = args.max_steps or hint
        run_args.eval_every = args.eval_every or max(1, hint // 30)
        lines += ["", *run_method(m, run_args, log)]
    lines.append(f"# wall time {time.time() - start:.0f} s")
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
