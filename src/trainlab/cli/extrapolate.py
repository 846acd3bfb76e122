"""``trainlab extrapolate TRIAL_ID``: where would a stored trial have ended, seen at each
evaluation? The learning-curve predictors of :mod:`trainlab.curves` replayed on its curve."""

from __future__ import annotations

import argparse

from trainlab.cli import argtypes, common
from trainlab.errors import TrainlabError

NAME = "extrapolate"
HELP = "predict a trial's final metric (interval, P(target)) at each of its evaluations"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", type=argtypes.trial_id, metavar="TRIAL_ID", help="a stored trial")
    # the names of trainlab.curves.METHODS, written out: the parser imports no torch
    p.add_argument("--method", choices=("lc-parametric", "lc-pfn"), default="lc-parametric",
                   help="the predictor (default lc-parametric: Domhan et al. 2015; lc-pfn: "
                   "Adriaensen et al. 2023)")  # fmt: skip
    common.add_store(p, must_exist=True)
    common.add_json(p)


def predictions(trial: dict, evals: list, method: str) -> list:
    """The prediction from the first ``k`` evaluations, for every ``k`` (``evals`` all carry
    the trial's target metric)."""
    from trainlab.curves import predict_final

    step_mode = trial["mode"] == "steps"
    budget = trial.get("max_steps") if step_mode else trial.get("max_runtime")
    if not budget or trial.get("target_value") is None:
        raise TrainlabError(f"trial {trial['id']} has no stored budget or target (a trial from "
                            "an older trainlab): nothing to extrapolate to")  # fmt: skip
    fractions = [min(1.0, (e.step if step_mode else e.timed_seconds) / budget) for e in evals]
    values = [e.metrics[trial["target_metric"]] for e in evals]
    return [
        predict_final(method, fractions[:k], values[:k], target=float(trial["target_value"]),
                      metric=trial["target_metric"],
                      higher_is_better=bool(trial["higher_is_better"]))
        for k in range(1, len(evals) + 1)
    ]  # fmt: skip


def run(args: argparse.Namespace) -> int:
    with common.open_existing_store(args.store) as store:
        trial = store.trial(args.id)
        evals = store.evaluations(args.id)
    evals = [e for e in evals if trial.get("target_metric") in e.metrics]
    if not evals:
        raise TrainlabError(f"trial {args.id} has no evaluations yet")
    out = predictions(trial, evals, args.method)
    if args.json:
        common.print_json({"trial": args.id, "method": args.method,
                           "predictions": [{"step": e.step, "value": e.metrics.get(
                               trial["target_metric"]), **p.to_json()}
                               for e, p in zip(evals, out, strict=True)]})  # fmt: skip
        return 0
    from trainlab.cli import render

    metric = trial["target_metric"]
    sign = ">=" if trial["higher_is_better"] else "<="
    head = f"P({metric} {sign} {trial['target_value']:g})"
    lines = [f"trial {args.id}: {metric} at the end of the budget, predicted by {args.method} "
             "(90 % interval)",
             f"{'step':>8} {'budget':>6} {metric:>14} {'predicted':>10} {'interval':>21} {head}"]
    for e, p in zip(evals, out, strict=True):
        interval = f"[{p.lower:.4g}, {p.upper:.4g}]"
        lines.append(f"{e.step:>8} {p.fraction:>6.0%} {e.metrics[metric]:>14.4g} "
                     f"{p.mean:>10.4g} {interval:>21} {p.p_target:>{len(head)}.3f}")
    con = render.console()
    for line in lines:
        render.plain(con, line)
    last = evals[-1].metrics[metric]
    render.plain(con, f"status {trial['status']}; last {metric} {last:.4g} at step "
                      f"{evals[-1].step}")  # fmt: skip
    if trial.get("stop_reason"):
        from trainlab.bench.early_stop import describe_reason

        render.plain(con, describe_reason(trial["stop_reason"]))
    return 0
