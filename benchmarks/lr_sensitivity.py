"""How sensitive is each of the library's optimizers to its learning rate (Wortsman et al., 2023)?

For every optimizer and workload, runs ``trainlab sensitivity`` (a resumable sweep in
``--store``; rerunning this script finishes it) over ``--points`` learning rates log-spaced
from ``default / 10**--below`` to ``default * 10**--above``, ``default`` the optimizer's own
default learning rate (optimizers' learning rates live on different scales: Lion's is ~10x
below AdamW's, SGD's ~10x above; the same number of decades around each default makes their
sensitivities comparable), every other hyperparameter at its default, ``--seeds`` seeds,
``--max-steps`` updates per run, one thread. Prints, per workload and optimizer, the
sensitivity with its 95 % bootstrap interval over seeds, the best learning rate and the best
and worst final validation loss, and saves the table to ``benchmarks/results/lr_sensitivity.txt``.

    python benchmarks/lr_sensitivity.py [--workloads mnist1d_mlp:500,charlm_gpt:150]
        [--optimizers heavyball,nesterov,adamw,nadamw,lion,shampoo,muon,schedule_free_adamw]
        [--points 7] [--below 2] [--above 1] [--seeds 2] [--store FILE] [--jobs 1]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from trainlab.bench.sensitivity import is_sweep, lr_name, read_sweeps
from trainlab.bench.store import Store
from trainlab.cli import main as trainlab
from trainlab.registry import get_algorithm

OPTIMIZERS = "heavyball,nesterov,adamw,nadamw,lion,shampoo,muon,schedule_free_adamw"
RESULTS = Path(__file__).parent / "results" / "lr_sensitivity.txt"


def sweep_lrs(optimizer: str, points: int, below: float, above: float) -> list[float]:
    """``points`` learning rates, log-spaced over ``[default / 10**below, default * 10**above]``."""
    algorithm = get_algorithm(optimizer)
    default = float(algorithm.search_space[lr_name(algorithm)].default)
    span = below + above
    return [float(f"{default * 10 ** (-below + span * i / (points - 1)):.4g}")
            for i in range(points)]  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workloads", default="mnist1d_mlp:500,charlm_gpt:150",
                   help="WORKLOAD:MAX_STEPS,...")
    p.add_argument("--optimizers", default=OPTIMIZERS)
    p.add_argument("--points", type=int, default=7)
    p.add_argument("--below", type=float, default=2.0, help="decades below the default lr")
    p.add_argument("--above", type=float, default=1.0, help="decades above the default lr")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--store", default="trainlab-runs/lr_sensitivity.db")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args()
    torch.set_num_threads(1)

    lines = [f"LR sensitivity (Wortsman et al., 2023): {args.points} lrs from default/10^"
             f"{args.below:g} to default*10^{args.above:g}, {args.seeds} seeds, 1 thread; "
             "[95 % bootstrap over seeds]", ""]  # fmt: skip
    header = (f"{'workload':<16} {'optimizer':<20} {'default lr':>10} {'sensitivity [95 %]':>26} "
              f"{'best lr':>9} {'best':>7} {'worst':>7} {'l0':>7}")  # fmt: skip
    lines += [header, "-" * len(header)]
    for item in args.workloads.split(","):
        workload, _, steps = item.partition(":")
        for optimizer in args.optimizers.split(","):
            lrs = sweep_lrs(optimizer, args.points, args.below, args.above)
            argv = ["sensitivity", "-w", workload, "-a", optimizer,
                    "--lrs", ",".join(map(str, lrs)), "--seeds", str(args.seeds),
                    "--store", args.store, "--jobs", str(args.jobs), "--threads", "1",
                    "--quiet", "--plot",
                    str(Path(args.store).with_name(f"lr_sensitivity_{workload}_{optimizer}.png"))]
            if steps:
                argv += ["--max-steps", steps]
            if trainlab(argv) != 0:
                raise SystemExit(f"the sweep of {optimizer} on {workload} failed")
        wanted = args.optimizers.split(",")
        with Store(args.store, readonly=True) as store:
            latest = {}  # optimizer -> its latest sweep of this workload and budget
            for b in store.benchmarks():
                options = b["config"].get("options", {})
                if (is_sweep(b) and options["workloads"] == [workload]
                        and options["max_steps"] == (int(steps) if steps else None)
                        and options["algorithms"][0] in wanted):
                    latest[options["algorithms"][0]] = int(b["id"])
            sweeps = [s for o in wanted if o in latest for s in read_sweeps(store, latest[o])]
        for sweep in sweeps:
            for optimizer, s in sweep.sensitivities.items():
                interval = sweep.intervals.get(optimizer)
                text = f"{s.value:.3f}" + (f" [{interval[0]:.3f}, {interval[1]:.3f}]"
                                           if interval else "")  # fmt: skip
                algorithm = get_algorithm(optimizer)
                default = algorithm.search_space[lr_name(algorithm)].default
                lines.append(f"{workload + ':' + steps:<16} {optimizer:<20} {default:>10.3g} "
                             f"{text:>26} {s.best_lr:>9.3g} {s.best_loss:>7.3f} "
                             f"{max(s.losses):>7.3f} {sweep.initial_loss:>7.3f}")  # fmt: skip
        lines.append("")
    print("\n".join(lines))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
