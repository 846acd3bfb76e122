"""Step time of trainlab's optimizers against ``torch.optim.AdamW(foreach=True)``.

The parameters are those of ``get_workload("charlm_gpt").init_model(0)`` (a small GPT: about
two dozen tensors, mostly small), split into the recipes' two groups (weights with weight
decay, biases and norm gains without). Gradients are synthetic (fixed random tensors), so only
the optimizer's own work is timed. Every optimizer gets its own copy of the parameters; the
optimizers take turns, repetition after repetition (interleaved, in a shuffled order each time),
so machine noise falls on all alike; the figure is the median over repetitions of the mean step
time within one repetition. Run::

    python benchmarks/optimizer_step.py [--reps 30] [--steps 50] [--threads 1]

Goal: no optimizer slower than 1.5x AdamW, except where the algorithm does more work per step;
the table's last column says what that work is. On tensors this small a CPU step costs mostly
per-operation overhead, so the ratio follows the number of tensor operations per step more
than the number of bytes touched.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

import torch

from trainlab.optim import (
    LAMB,
    SGDW,
    Adan,
    DAdaptAdam,
    DoG,
    Lion,
    Muon,
    NAdamW,
    Prodigy,
    Shampoo,
    param_groups,
)
from trainlab.optim.schedule_free import ScheduleFreeAdamW, ScheduleFreeSGD
from trainlab.registry import get_workload

# name -> (constructor on the two parameter groups, extra work compared with AdamW)
OPTIMIZERS: dict[str, tuple[Callable[[list[dict]], torch.optim.Optimizer], str]] = {
    "AdamW (torch, foreach)": (
        lambda g: torch.optim.AdamW(g, lr=1e-3, weight_decay=0.01, foreach=True),
        "reference: 2 buffers",
    ),
    "NAdamW": (
        lambda g: NAdamW(g, lr=1e-3, weight_decay=0.01),
        "AdamW + Nesterov look-ahead (one more op)",
    ),
    "SGDW (Nesterov)": (
        lambda g: SGDW(g, lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4),
        "less: 1 buffer",
    ),
    "Lion": (lambda g: Lion(g, lr=1e-4, weight_decay=0.1), "less: 1 buffer, sign update"),
    "Adan": (
        lambda g: Adan(g, lr=1e-2, weight_decay=0.02),
        "more: 4 buffers (m, v, n, previous grad), 2 step terms",
    ),
    "LAMB": (
        lambda g: LAMB(g, lr=1e-2, weight_decay=0.01),
        "more: 2 norms per tensor + trust ratio",
    ),
    "DoG": (
        lambda g: DoG(g),
        "global norms of grad, x - x0 and x0 (1 buffer: x0)",
    ),
    "Prodigy": (
        lambda g: Prodigy(g, weight_decay=0.01),
        "more: 4 buffers (m, v, s, x0), <g, x0 - x>, ||s||_1",
    ),
    "DAdaptAdam": (
        lambda g: DAdaptAdam(g, weight_decay=0.01),
        "more: 3 buffers (m, v, s), <g, s / denom>, ||s||_1",
    ),
    "Shampoo (F=20)": (
        lambda g: Shampoo(g, lr=1e-3, weight_decay=0.01, precondition_frequency=20),
        "much more: per matrix and dim a factor update and a preconditioning product; "
        "an eigh per factor every 20 steps",
    ),
    "Shampoo (F=100)": (
        lambda g: Shampoo(g, lr=1e-3, weight_decay=0.01, precondition_frequency=100),
        "as above, an eigh per factor every 100 steps",
    ),
    "Muon": (
        lambda g: Muon(g, lr=0.02, weight_decay=0.01),
        "more: 5 Newton-Schulz iterations (3 matmuls each) per matrix; AdamW for vectors",
    ),
    "ScheduleFreeAdamW": (
        lambda g: ScheduleFreeAdamW(g, weight_decay=0.01),
        "2 buffers (z, v); 3 ops on y and z (lerp, 2 adds) for Adam's 2",
    ),
    "ScheduleFreeSGD": (
        lambda g: ScheduleFreeSGD(g, weight_decay=5e-4),
        "less: 1 buffer (z); decay at y, lerp, 2 adds",
    ),
}
REFERENCE = "AdamW (torch, foreach)"


def build(seed: int = 0) -> dict[str, tuple[torch.optim.Optimizer, list[torch.Tensor]]]:
    workload = get_workload("charlm_gpt")
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, (make, _) in OPTIMIZERS.items():
        model = workload.init_model(0)
        for p in model.parameters():  # synthetic gradients, the same for every optimizer
            p.grad = 1e-2 * torch.randn(p.shape, generator=gen, dtype=p.dtype)
        gen.manual_seed(seed)
        out[name] = (make(param_groups(model)), list(model.parameters()))
    return out


def time_steps(opt: torch.optim.Optimizer, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        opt.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=30, help="interleaved repetitions")
    parser.add_argument("--steps", type=int, default=50, help="steps per repetition")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    optimizers = build()
    params = optimizers[REFERENCE][1]
    print(
        f"charlm_gpt parameters: {len(params)} tensors, {sum(p.numel() for p in params):,} "
        f"values; torch {torch.__version__}, {args.threads} thread(s), "
        f"{args.reps} reps x {args.steps} steps"
    )
    for opt, _ in optimizers.values():  # warm up: state allocation, first-call overheads
        time_steps(opt, 5)
    times: dict[str, list[float]] = {name: [] for name in optimizers}
    order = list(optimizers)
    rng = random.Random(0)
    for _ in range(args.reps):
        rng.shuffle(order)
        for name in order:
            times[name].append(time_steps(optimizers[name][0], args.steps))

    reference = statistics.median(times[REFERENCE])
    width = max(len(n) for n in optimizers)
    print(f"\n{'optimizer':<{width}}  {'us/step':>8}  {'vs AdamW':>8}  work per step vs AdamW")
    for name, (_, work) in OPTIMIZERS.items():
        median = statistics.median(times[name])
        print(f"{name:<{width}}  {median * 1e6:8.1f}  {median / reference:7.2f}x  {work}")


if __name__ == "__main__":
    main()
