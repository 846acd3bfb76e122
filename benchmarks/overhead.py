"""Per-step overhead of the runner against a minimal hand-written PyTorch loop.

Both train ``mnist1d_mlp`` (the smallest model, where overhead shows most) for the same number
of steps with the same batch size, optimizer (NAdamW), parameter groups (no weight decay on
biases) and schedule (warmup + cosine through LambdaLR); the runner runs in step mode with no
evaluation inside the measured window. Runs alternate (minimal, runner, minimal, runner, ...)
so that machine noise hits both alike; the median of the per-pair ratios of wall seconds per step
is printed, with its interquartile range. Goal: <= 1.03.

    python benchmarks/overhead.py [--steps 1000] [--repeats 16] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from trainlab.bench.runner import run_trial
from trainlab.optim import NAdamW, param_groups
from trainlab.registry import get_algorithm, get_workload
from trainlab.schedules import lambda_lr, warmup_cosine


def minimal_loop(workload, steps: int, batch_size: int, hp: dict, seed: int) -> float:
    """Seconds per step of the plainest loop over the same in-memory tensors."""
    torch.manual_seed(seed)
    model = workload.init_model(seed)
    # the same decay / no-decay parameter split that a careful hand-written loop would use
    opt = NAdamW(
        param_groups(model),
        lr=hp["learning_rate"],
        betas=(hp["beta1"], 1 - hp["one_minus_beta2"]),
        weight_decay=hp["weight_decay"],
    )
    total = round(hp["horizon"] * workload.step_hint)
    sched = lambda_lr(opt, warmup_cosine, total, warmup_steps=round(hp["warmup_fraction"] * total))
    x, y = workload.splits.x_train, workload.splits.y_train
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(x), generator=gen)
    per_epoch = len(x) // batch_size
    start = time.perf_counter()
    for step in range(steps):
        if step % per_epoch == 0 and step:
            order = torch.randperm(len(x), generator=gen)
        rows = order[(step % per_epoch) * batch_size : (step % per_epoch + 1) * batch_size]
        loss = F.cross_entropy(model(x[rows]), y[rows])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return (time.perf_counter() - start) / steps


def runner_loop(workload, algorithm, steps: int, hp: dict, seed: int) -> float:
    """Wall seconds per step through ``run_trial`` (timed work plus all untimed bookkeeping
    except evaluation, of which there is none inside the window)."""
    r = run_trial(workload, algorithm, hp, seed, eval_every_steps=steps + 1, max_steps=steps)
    return (r.wall_seconds - r.eval_seconds) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=16)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: robust on a shared machine)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    workload = get_workload("mnist1d_mlp")
    algorithm = get_algorithm("nadamw")
    hp = algorithm.search_space.validate({})
    batch_size = algorithm.batch_size(workload, hp)
    minimal_loop(workload, 100, batch_size, hp, 0)  # warm-up of both paths
    runner_loop(workload, algorithm, 100, hp, 0)
    ratios, mins, runs = [], [], []
    for i in range(args.repeats):
        # alternate which side goes first, so that drift and ordering effects cancel
        if i % 2 == 0:
            mins.append(minimal_loop(workload, args.steps, batch_size, hp, i))
            runs.append(runner_loop(workload, algorithm, args.steps, hp, i))
        else:
            runs.append(runner_loop(workload, algorithm, args.steps, hp, i))
            mins.append(minimal_loop(workload, args.steps, batch_size, hp, i))
        ratios.append(runs[-1] / mins[-1])
        print(
            f"repeat {i}: minimal {mins[-1] * 1e3:.3f} ms/step, runner {runs[-1] * 1e3:.3f} "
            f"ms/step, ratio {ratios[-1]:.3f}"
        )
    print(
        f"mnist1d_mlp, {args.steps} steps x {args.repeats} repeats, batch {batch_size}, "
        f"torch threads {torch.get_num_threads()}"
    )
    low, high = sorted(ratios)[len(ratios) // 4], sorted(ratios)[(3 * len(ratios)) // 4]
    print(
        f"runner/minimal per-step time ratio: median {statistics.median(ratios):.3f} "
        f"(interquartile {low:.3f}-{high:.3f}; goal <= 1.03)"
    )


if __name__ == "__main__":
    main()
