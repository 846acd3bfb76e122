"""``trainlab predict-schedule``: fit the annealing law (Tissue et al., 2024) on one or two
stored trials of an optimizer and predict the validation curve under other learning-rate
schedules (cosine, WSD, REX, constant, ...), without training them. Prints each schedule's
predicted final value and the best; plots the predicted curves beside the fitted ones."""

from __future__ import annotations

import argparse
from pathlib import Path

from trainlab.cli import argtypes, common
from trainlab.errors import TrainlabError

NAME = "predict-schedule"
HELP = "predict the loss curve of other learning-rate schedules from one or two trials"
DEFAULT_SCHEDULES = "constant,cosine,linear_decay,rex,wsd"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-w", "--workload", type=argtypes.word, required=True,
                   help="the workload of the fitted trials (checked)")  # fmt: skip
    p.add_argument("-a", "--optimizer", type=argtypes.word, required=True, metavar="OPT",
                   help="the optimizer of the fitted trials (nadamw, lion, ...)")  # fmt: skip
    p.add_argument("--fit", type=argtypes.name_list(argtypes.trial_id), required=True,
                   metavar="ID[,ID]", help="trials to fit on (ids: `trainlab show`)")  # fmt: skip
    p.add_argument("--schedules", type=argtypes.name_list(argtypes.word),
                   default=DEFAULT_SCHEDULES.split(","), metavar="S[,S...]",
                   help=f"schedules to predict (default {DEFAULT_SCHEDULES})")  # fmt: skip
    p.add_argument("--metric", type=argtypes.word, default="loss",
                   help="validation metric to model (default: loss, the cross-entropy)")
    p.add_argument("--steps", type=argtypes.integer(2, 10**9), default=None,
                   help="updates to predict (default: the first trial's step budget)")
    p.add_argument("--decay", type=argtypes.real(0.0, 1.0, low_open=False), default=0.999,
                   help="decay of the annealing momentum (default 0.999)")
    p.add_argument("--plot", type=argtypes.writable_file, default=None, metavar="FILE.png",
                   help="where the plot goes (default: predict-schedule.png beside the store)")
    common.add_store(p, must_exist=True)
    common.add_json(p)


def run(args: argparse.Namespace) -> int:
    from trainlab.bench.schedule_prediction import predict_schedules
    from trainlab.report.plots import predicted_schedules

    if args.decay >= 1.0:
        raise TrainlabError(f"--decay must be < 1, got {args.decay}")
    with common.open_existing_store(args.store) as store:
        for trial_id in args.fit:
            workload = store.trial(trial_id)["workload"]
            if workload != args.workload:
                raise TrainlabError(f"--fit: trial {trial_id} is of {workload}, not "
                                    f"{args.workload}")  # fmt: skip
        prediction = predict_schedules(store, args.fit, args.optimizer, args.schedules,
                                       metric=args.metric, n_steps=args.steps,
                                       decay=args.decay)  # fmt: skip
    plot = args.plot or Path(str(args.store)).with_name("predict-schedule.png")
    if "://" in str(args.store) and args.plot is None:
        plot = Path("predict-schedule.png")
    predicted_schedules(prediction, f"{args.workload}, {args.optimizer}", plot)
    law = prediction.law
    if args.json:
        common.print_json({
            "law": {"L0": law.L0, "A": law.A, "alpha": law.alpha, "C": law.C,
                    "decay": law.decay},
            "metric": prediction.metric, "steps": prediction.n_steps,
            "final": prediction.finals, "best": prediction.best, "plot": str(plot),
        })  # fmt: skip
        return 0
    from trainlab.cli import render

    con = render.console()
    rows = [[name, f"{value:.4f}", "best" if name == prediction.best else ""]
            for name, value in sorted(prediction.finals.items(), key=lambda kv: kv[1])]
    title = (f"predicted {prediction.metric} after {prediction.n_steps} updates: "
             f"{args.optimizer} on {args.workload}")  # fmt: skip
    con.print(render.text_table(title, ["schedule", prediction.metric, ""], rows))
    render.plain(con, f"fitted on trials {', '.join(map(str, args.fit))}: L(s) = {law.L0:.4g} + "
                      f"{law.A:.4g} * S1^-{law.alpha:.3g} - {law.C:.4g} * S2 "
                      f"(decay {law.decay:g}); plot: {plot}")  # fmt: skip
    return 0
