"""HESSO on ``digits_cnn``: is the compact model <= 50 % of the dense FLOPs, does it reach the
class target, and how much faster is it on the CPU?

Per seed (``--seeds``, default 0,1,2), one step-mode trial of ``hesso`` (defaults, but
``--sparsity`` as ``target_group_sparsity``) and one of the ``nadamw`` baseline, both against
the workload's class target (``trial_spec(..., "class")``), ``--steps`` updates (default: the
workload's ``step_hint``, 400), evaluating every ``--eval-every`` steps, run to the end of the
budget (``full_curve``) so that the pruning schedule completes. HESSO's model at the end is
group-sparse; :func:`trainlab.methods.structured.compact_model` builds its dense sub-network,
which is checked to give the same outputs (max abs difference printed).

Printed per seed: steps to the target (first evaluation that meets it, which for HESSO may fall
before the last pruning period), final validation error of the *compact* model and of the dense
baseline, whether the compact model meets the target, test error, group sparsity, parameters
and FLOPs per example (``torch.utils.flop_counter``: matrix products and convolutions;
BatchNorm, ReLU and pooling are not counted), compact / dense.

CPU inference time: per seed, the compact model against the dense trained baseline (run
through the same export, so both are graph modules of the same ops and only the widths
differ) on one batch of validation images, one torch thread, at two batch sizes: the
workload's evaluation batch (``eval_batch_size``, 1024: the goal's) and its training batch
(``batch_size_hint``, 128, where per-call overheads weigh more); ``--repeats`` interleaved
repeats (dense, compact, dense, compact, ...; each the fastest of ``--calls`` forward passes
under ``torch.inference_mode``: on a shared machine the slower calls time the other
processes); the speedup is dense / compact per repeat, printed as the median over
repeats with the 2.5-97.5 % range of the repeats. Goal line: FLOPs <= 50 % and target met on
every seed, and speedup >= 1.5x.

    python benchmarks/hesso.py [--seeds 0,1,2] [--sparsity 0.3] [--steps 400]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from trainlab.algorithms.hesso import HESSOAlgorithm, example_inputs
from trainlab.bench.budgets import trial_spec
from trainlab.bench.runner import run_trial
from trainlab.methods.structured.compact import compact_model
from trainlab.registry import get_algorithm, get_workload


class _Keeping(HESSOAlgorithm):
    """``hesso`` that remembers its last state (the model at the end of the trial)."""

    def prepare_for_eval(self, state):
        self.state = state
        return super().prepare_for_eval(state)


class _KeepingBaseline:
    def __init__(self):
        self.inner = get_algorithm("nadamw")

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def prepare_for_eval(self, state):
        self.state = state
        return self.inner.prepare_for_eval(state)


def flops_per_example(model, x) -> float:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / x.shape[0]


def time_interleaved(dense, compact, x, repeats: int, calls: int) -> list[float]:
    """dense / compact seconds per batch, one ratio per repeat, each the fastest of ``calls``
    calls (the minimum, as ``timeit`` advises: on a shared machine the slower calls measure the
    other processes)."""

    def one(model) -> float:
        times = []
        for _ in range(calls):
            t = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t)
        return min(times)

    ratios = []
    with torch.inference_mode():
        for model in (dense, compact):  # warm-up
            for _ in range(3):
                model(x)
        for _ in range(repeats):
            ratios.append(one(dense) / one(compact))
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--sparsity", type=float, default=0.3)
    parser.add_argument("--steps", type=int, default=0, help="updates (0: step_hint)")
    parser.add_argument("--eval-every", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    workload = get_workload("digits_cnn")
    steps = args.steps or workload.step_hint
    spec = trial_spec(workload, "class", eval_every_steps=args.eval_every, max_steps=steps)
    target = spec.target
    ex = example_inputs(workload)
    batches = (workload.eval_batch_size, workload.batch_size_hint)
    x = workload.splits.x_valid[: batches[0]]
    print(f"digits_cnn, class target {target.describe()}, {steps} steps, eval every "
          f"{args.eval_every}; hesso target_group_sparsity={args.sparsity}")  # fmt: skip
    header = (
        "seed | hesso steps-to-target | nadamw steps-to-target | compact valid err | "
        "dense valid err | compact meets target | compact test err | group sparsity | "
        "params compact/dense | FLOPs/example compact/dense | max |diff| | "
        f"speedup @{batches[0]} [2.5-97.5 %] | speedup @{batches[1]} [2.5-97.5 %]"
    )
    print(header)
    print("|".join(["---"] * 13))
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        hesso = _Keeping()
        r_h = run_trial(workload, hesso, {"target_group_sparsity": args.sparsity}, seed,
                        spec=spec, full_curve=True)  # fmt: skip
        base = _KeepingBaseline()
        r_b = run_trial(workload, base, {}, seed, spec=spec, full_curve=True)
        sparse = hesso.state.model.eval()
        dense = base.state.model.eval()
        compact = compact_model(sparse, ex)
        with torch.no_grad():
            diff = float((compact(x) - sparse(x)).abs().max())
        err_c = workload.evaluate(compact)["error_rate"]
        err_d = workload.evaluate(dense)["error_rate"]
        test_c = workload.evaluate(compact, "test")["error_rate"]
        params = sum(p.numel() for p in compact.parameters()) / sum(
            p.numel() for p in dense.parameters()
        )
        flops = flops_per_example(compact, x) / flops_per_example(dense, x)
        # the dense model through the same export (nothing removed), so that both run as the
        # same kind of graph module and only the widths differ
        dense_graph = compact_model(dense, ex)
        speeds = []
        for size in batches:
            xs = workload.splits.x_valid[:size]
            ratios = np.array(time_interleaved(dense_graph, compact, xs, args.repeats, args.calls))
            lo, hi = np.quantile(ratios, [0.025, 0.975])
            speeds.append((float(np.median(ratios)), lo, hi))
        met = target.is_met({target.metric: err_c})
        rows.append((flops, met, speeds[0][0]))
        print(
            f"{seed} | {r_h.steps_to_target} | {r_b.steps_to_target} | {err_c:.4f} | "
            f"{err_d:.4f} | {'yes' if met else 'no'} | {test_c:.4f} | "
            f"{hesso.state.hesso.group_sparsity:.3f} | {params:.3f} | {flops:.3f} | {diff:.1e} | "
            + " | ".join(f"{m:.2f}x [{lo:.2f}, {hi:.2f}]" for m, lo, hi in speeds),
            flush=True,
        )
    flops_ok = all(f <= 0.5 for f, _, _ in rows)
    target_ok = all(m for _, m, _ in rows)
    speed = statistics.median(s for _, _, s in rows)
    print(
        f"goal: FLOPs <= 50 % on every seed: {'yes' if flops_ok else 'no'}; compact model meets "
        f"the class target on every seed: {'yes' if target_ok else 'no'}; median CPU speedup "
        f"at batch {batches[0]} {speed:.2f}x (>= 1.5x: {'yes' if speed >= 1.5 else 'no'})"
    )


if __name__ == "__main__":
    main()
