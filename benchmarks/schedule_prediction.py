"""How well does the annealing law (Tissue et al., 2024) predict schedules it never saw?

Trains ``--optimizer`` on ``--workload`` in step mode (``--max-steps`` updates, the schedule's
length, an evaluation every ``--max-steps / 30``) once with each schedule of ``--fit`` and of
``--check``, into a results store (``trainlab run``, so a rerun finds the trials already there);
fits the law on the ``--fit`` trials (``trainlab predict-schedule``'s code), predicts every
``--check`` schedule, and prints for each the predicted and measured final validation loss,
the error (absolute and relative), the error over the whole curve, and whether the predicted
best schedule is the measured best. The paper fits on a constant and a cosine run and predicts
the rest; that is the default here.

    python benchmarks/schedule_prediction.py [--workload charlm_gpt] [--optimizer nadamw]
        [--max-steps 600] [--fit constant,cosine]
        [--check wsd,wsd:decay_fraction=0.5,rex,linear_decay] [--seed 0] [--store FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from trainlab.bench.schedule_prediction import parse_schedule, predict_schedules
from trainlab.bench.store import Store
from trainlab.cli import main as trainlab


def train(args: argparse.Namespace, schedule: str) -> int:
    """The id of the trial of ``schedule`` in the store, trained now if it is not there."""
    name, own = parse_schedule(schedule)
    algorithm = f"{args.optimizer}+{name}"
    wanted = {k: str(v) for k, v in own.items()}
    if Path(args.store).exists():
        with Store(args.store, readonly=True) as store:
            for t in store.trials():
                hp = t["hyperparameters"]
                if (t["algorithm"] == algorithm and t["workload"] == args.workload
                        and t["seed"] == args.seed and t["max_steps"] == args.max_steps
                        and all(str(hp.get(k)) == v for k, v in wanted.items())):
                    return t["id"]
    sets = [x for k, v in wanted.items() for x in ("--set", f"{k}={v}")]
    argv = ["run", "-w", args.workload, "-a", algorithm, "--seed", str(args.seed),
            "--eval-every-steps", str(max(1, args.max_steps // 30)), "--max-steps",
            str(args.max_steps), "--targets", "class", "--full-curve", "--threads", "1",
            "--store", args.store, "--quiet", *sets]  # fmt: skip
    if trainlab(argv) != 0:
        raise SystemExit(f"training {schedule} failed")
    with Store(args.store, readonly=True) as store:
        return store.trials(latest_first=True, limit=1)[0]["id"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workload", default="charlm_gpt")
    p.add_argument("--optimizer", default="nadamw")
    p.add_argument("--max-steps", type=int, default=600)
    p.add_argument("--fit", default="constant,cosine")
    p.add_argument("--check", default="wsd,wsd:decay_fraction=0.5,rex,linear_decay")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--store", default="schedule-prediction/trainlab.db")
    args = p.parse_args()
    Path(args.store).parent.mkdir(parents=True, exist_ok=True)
    fit, check = args.fit.split(","), args.check.split(",")
    ids = {s: train(args, s) for s in fit + check}
    with Store(args.store, readonly=True) as store:
        prediction = predict_schedules(store, [ids[s] for s in fit], args.optimizer, check,
                                       n_steps=args.max_steps)  # fmt: skip
        measured = {s: store.evaluations(ids[s]) for s in check}
    law = prediction.law
    print(f"{args.optimizer} on {args.workload}, {args.max_steps} steps, seed {args.seed}; "
          f"fitted on {', '.join(fit)}: L0={law.L0:.4g} A={law.A:.4g} alpha={law.alpha:.3g} "
          f"C={law.C:.4g}")  # fmt: skip
    print(f"{'schedule':<28}{'predicted':>10}{'measured':>10}{'error':>9}{'rel':>8}"
          f"{'curve MAE':>11}")  # fmt: skip
    finals = {}
    for s in check:
        records = [r for r in measured[s] if r.step > 0]
        truth = np.array([r.metrics["loss"] for r in records])
        curve = prediction.curves[s][[r.step - 1 for r in records]]
        finals[s] = truth[-1]
        error = curve[-1] - truth[-1]
        print(f"{s:<28}{curve[-1]:>10.4f}{truth[-1]:>10.4f}{error:>+9.4f}"
              f"{error / truth[-1]:>+8.1%}{np.abs(curve - truth).mean():>11.4f}")  # fmt: skip
    best = min(finals, key=finals.get)
    print(f"predicted best: {prediction.best}; measured best: {best} "
          f"({'agree' if best == prediction.best else 'disagree'})")  # fmt: skip


if __name__ == "__main__":
    main()
