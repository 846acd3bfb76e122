"""Low-precision training on this CPU: the bf16/fp32 step-time ratio per suite workload, and
AdaPT's run on ``digits_cnn`` (steps to the class target, bit-widths, modelled speedups).

Part 1 (``bf16``): for each suite workload, ``nadamw`` and ``nadamw+bf16`` from the same
initial model take turns: after ``--warmup`` steps each, ``--reps`` repetitions of ``--steps``
updates per arm, the order alternating, one torch thread. A repetition's ratio is the bf16
arm's mean step time over the fp32 arm's, both measured within the same repetition (so a
burst of machine noise falls on both); the table gives the median ratio and a 95 % bootstrap
interval of that median over the repetitions. The CPU's bf16 support is printed first: with
AVX512-BF16 or AMX, oneDNN runs bf16 matrix products natively; without, it converts, and bf16
can be slower than fp32.

Part 2 (``adapt``): ``adapt`` (NAdamW + cosine in AdaPT's per-layer fixed point) and ``nadamw``
on ``digits_cnn`` in step mode (evaluation every 20 updates, up to ``--max-steps``), per seed:
steps to the class target, the mean word length when the target was reached (and averaged
over the updates), the per-layer word-length trajectory, and the speedups AdaPT's analytical
model gives for the run (training per update up to the target, inference at the final formats)
next to the paper's (1.27x training, 2.33x inference on its CNNs), and the modelled training
speedup at equal result (per-update speedup x nadamw's updates to the target / adapt's).
The model describes fixed-point hardware; the emulation here is slower than float32 on this
CPU: the step-time ratio adapt / nadamw (interleaved as in part 1) says by how much.

    python benchmarks/precision.py [--part bf16|adapt|all] [--reps 9] [--steps 10] [--seeds 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import time

import torch

from trainlab.methods.precision import (
    PAPER_INFERENCE_SPEEDUP,
    PAPER_TRAINING_SPEEDUP,
    layer_macs,
    layer_weights,
    modelled_speedup,
)
from trainlab.registry import get_algorithm, get_workload

SUITE = ["mnist1d_mlp", "mnist1d_cnn", "digits_cnn", "forecast_gru", "charlm_gpt"]


def cpu_bf16_support() -> str:
    """One line: torch's CPU capability, the CPU's bf16 flags, oneDNN's bf16 verdict."""
    try:
        flags = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        flags = ""
    found = sorted({f for f in flags.split() if "bf16" in f or f.startswith("amx")})
    try:
        onednn = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except (AttributeError, RuntimeError):
        onednn = "unknown"
    capability = torch.backends.cpu.get_cpu_capability()
    return (f"torch {torch.__version__}, CPU capability {capability}, bf16 flags: "
            f"{', '.join(found) or 'none'}, oneDNN bf16 supported: {onednn}")  # fmt: skip


def bootstrap_median_ci(values: list[float], n: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = random.Random(seed)
    meds = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(n))
    return meds[int(0.025 * n)], meds[int(0.975 * n) - 1]


class Arm:
    """One algorithm training one model, stepped on demand."""

    def __init__(self, workload, name: str, seed: int = 0) -> None:
        self.algorithm = get_algorithm(name)
        hp = self.algorithm.search_space.validate({})
        torch.manual_seed(seed)
        self.state = self.algorithm.init(workload, workload.init_model(seed), hp, seed)
        stream = workload.batches(self.algorithm.batch_size(workload, hp), seed)
        self.batches = self.algorithm.select_data(self.state, stream)
        self.step = 0

    def run(self, n: int) -> float:
        """Mean seconds per update over ``n`` updates (the last loss read back, so the work
        is done when the clock stops)."""
        start = time.perf_counter()
        for _ in range(n):
            loss = self.algorithm.update(self.state, next(self.batches), self.step)
            self.step += 1
        float(loss)
        return (time.perf_counter() - start) / n


def bf16_table(args) -> None:
    print(cpu_bf16_support())
    print(f"nadamw+bf16 / nadamw step time, {args.reps} interleaved repetitions of "
          f"{args.steps} updates per arm after {args.warmup} warm-up updates, "
          "1 thread")  # fmt: skip
    print("| workload | fp32 step (ms) | bf16 step (ms) | bf16 / fp32, median [95 % CI] |")
    print("|---|---|---|---|")
    for name in args.workloads.split(","):
        workload = get_workload(name)
        arms = {"fp32": Arm(workload, "nadamw"), "bf16": Arm(workload, "nadamw+bf16")}
        for arm in arms.values():
            arm.run(args.warmup)
        times: dict[str, list[float]] = {"fp32": [], "bf16": []}
        for rep in range(args.reps):
            order = ["fp32", "bf16"] if rep % 2 == 0 else ["bf16", "fp32"]
            for key in order:
                times[key].append(arms[key].run(args.steps))
        ratios = [b / f for b, f in zip(times["bf16"], times["fp32"], strict=True)]
        lo, hi = bootstrap_median_ci(ratios)
        print(f"| {name} | {1e3 * statistics.median(times['fp32']):.2f} | "
              f"{1e3 * statistics.median(times['bf16']):.2f} | "
              f"{statistics.median(ratios):.2f} [{lo:.2f}, {hi:.2f}] |", flush=True)  # fmt: skip


def adapt_run(workload, name: str, seed: int, max_steps: int, every: int):
    """Train ``name`` until the class target or ``max_steps``; returns (steps to target or
    None, the arm, mean seconds per update)."""
    arm = Arm(workload, name, seed)
    seconds, reached = 0.0, None
    while arm.step < max_steps:
        seconds += arm.run(every) * every
        model = arm.algorithm.prepare_for_eval(arm.state)
        if workload.target.is_met(workload.evaluate(model)):
            reached = arm.step
            break
    return reached, arm, seconds / arm.step


def _iso_target(speedup: float, base_steps: int | None, steps: int | None) -> str:
    """The modelled speedup at equal result: per-update speedup x nadamw's updates to the
    target / adapt's (adapt may need more updates)."""
    if base_steps is None or steps is None:
        return "n/a (a run missed)"
    return f"{speedup * base_steps / steps:.2f}x"


def adapt_table(args) -> None:
    workload = get_workload("digits_cnn")
    print(f"\nAdaPT on digits_cnn, class target {workload.target.describe()}, step mode: "
          f"evaluation every {args.every} updates, at most {args.max_steps}")  # fmt: skip
    print("| seed | nadamw steps | adapt steps | mean wl at target (averaged over the updates) | "
          f"modelled training speedup (paper {PAPER_TRAINING_SPEEDUP}x) | "
          f"modelled inference speedup (paper {PAPER_INFERENCE_SPEEDUP}x) "
          "| model size | modelled time to target, nadamw / adapt |")
    print("|---|---|---|---|---|---|---|---|")
    trajectories = []
    for seed in range(args.seeds):
        base_steps, _, _ = adapt_run(workload, "nadamw", seed, args.max_steps, args.every)
        steps, arm, _ = adapt_run(workload, "adapt", seed, args.max_steps, args.every)
        adapt, model = arm.state.adapt, arm.state.model
        batch = next(arm.batches)
        adapt.restore_weights()
        macs = layer_macs(model, lambda b=batch, m=model: workload.forward(m, b))
        est = modelled_speedup(macs, layer_weights(model, macs), adapt.bit_history,
                               arm.step, adapt.switches)  # fmt: skip
        print(f"| {seed} | {base_steps or 'missed'} | {steps or 'missed'} | "
              f"{est.final_mean_word_length:.1f} ({est.mean_word_length_over_training:.1f}) | "
              f"{est.training:.2f}x | {est.inference:.2f}x | {est.model_size:.2f} of fp32 | "
              f"{_iso_target(est.training, base_steps, steps)} |", flush=True)  # fmt: skip
        trajectories.append((seed, adapt.bit_history))
    arms = {"fp32": Arm(workload, "nadamw"), "adapt": Arm(workload, "adapt")}
    for arm in arms.values():
        arm.run(args.warmup)
    ratios = []
    for rep in range(args.reps):
        order = ["fp32", "adapt"] if rep % 2 == 0 else ["adapt", "fp32"]
        got = {key: arms[key].run(args.steps) for key in order}
        ratios.append(got["adapt"] / got["fp32"])
    lo, hi = bootstrap_median_ci(ratios)
    print(f"\nemulation is not a speedup: adapt / nadamw step time on this CPU (interleaved, "
          f"{args.reps} x {args.steps} updates) = {statistics.median(ratios):.2f} "
          f"[{lo:.2f}, {hi:.2f}]")  # fmt: skip
    for seed, history in trajectories:
        print(f"\nseed {seed}: word length per layer from each step where a format changed")
        for step, formats in history:
            print(f"  {step:4d}: " + "  ".join(f"{k}={wl}" for k, (wl, _) in formats.items()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=["bf16", "adapt", "all"], default="all")
    p.add_argument("--workloads", default=",".join(SUITE))
    p.add_argument("--reps", type=int, default=9)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--max-steps", type=int, default=600)
    p.add_argument("--every", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.part in ("bf16", "all"):
        bf16_table(args)
    if args.part in ("adapt", "all"):
        adapt_table(args)


if __name__ == "__main__":
    main()
