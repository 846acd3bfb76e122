"""Per-step overhead of the runner against a minimal hand-written PyTorch loop (and Lightning).

Both train ``mnist1d_mlp`` (the smallest model, where overhead shows most) for the same number
of steps with the same batch size, optimizer (NAdamW), parameter groups (no weight decay on
biases) and schedule (warmup + cosine through LambdaLR); the runner runs in step mode with no
evaluation inside the measured window. Runs alternate (minimal, runner, minimal, runner, ...)
so that machine noise hits both alike; the median of the per-pair ratios of wall seconds per step
is printed, with its interquartile range, and the per-step overhead in microseconds (runner
minus minimal per-step time, median and IQR over the pairs). The runner's per-step time is its
wall seconds less evaluation (so it carries the untimed per-step bookkeeping and the model
building too); the ratio of its timed seconds alone is printed beside it. Goal: median ratio
<= 1.02.

When PyTorch Lightning is installed (``pip install 'trainlab[lightning]'``; an optional extra,
not a dependency) a third arm trains the same model, optimizer, parameter groups and schedule
(LambdaLR stepped every step) through a ``lightning.Trainer`` (CPU, one device, no logger,
checkpointing, progress bar or model summary) over an iterable of the same in-memory batches,
interleaved with the other two (the order rotates each repeat). Its per-step time is the
Trainer's construction plus ``fit`` over the steps (setup included, as the runner's is); the
time inside the fit loop alone (``on_train_start`` to ``on_train_end``) is printed beside it.
Printed: Lightning's ratio and per-step overhead, and the runner's overhead as a fraction of
Lightning's. Goal: below one tenth.

    python benchmarks/overhead.py [--steps 1000] [--repeats 16] [--threads 1] [--no-lightning]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings

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


def runner_loop(workload, algorithm, steps: int, hp: dict, seed: int) -> tuple[float, float]:
    """Wall seconds per step through ``run_trial`` (timed work plus all untimed bookkeeping
    except evaluation, of which there is none inside the window), and timed seconds per step."""
    r = run_trial(workload, algorithm, hp, seed, eval_every_steps=steps + 1, max_steps=steps)
    return (r.wall_seconds - r.eval_seconds) / steps, r.timed_seconds / steps


def _lightning():
    """The ``lightning`` package (or ``pytorch_lightning``), or None when neither is installed."""
    try:
        import lightning as L
    except ImportError:
        try:
            import pytorch_lightning as L
        except ImportError:
            return None
    for name in ("lightning", "lightning.pytorch", "pytorch_lightning", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"(lightning|pytorch_lightning)(\..*)?")
    return L


def lightning_loop(L, workload, steps: int, batch_size: int, hp: dict, seed: int):
    """Seconds per step of the same training through a Lightning ``Trainer``: (construction and
    ``fit``, the fit loop alone)."""
    x, y = workload.splits.x_train, workload.splits.y_train
    total = round(hp["horizon"] * workload.step_hint)

    class Batches(torch.utils.data.IterableDataset):
        """The minimal loop's batches: a fresh permutation every epoch."""

        def __iter__(self):
            gen = torch.Generator().manual_seed(seed)
            order = torch.randperm(len(x), generator=gen)
            per_epoch = len(x) // batch_size
            for step in range(steps):
                if step % per_epoch == 0 and step:
                    order = torch.randperm(len(x), generator=gen)
                rows = order[(step % per_epoch) * batch_size : (step % per_epoch + 1) * batch_size]
                yield x[rows], y[rows]

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = workload.init_model(seed)

        def training_step(self, batch, batch_idx):
            inputs, labels = batch
            return F.cross_entropy(self.model(inputs), labels)

        def configure_optimizers(self):
            opt = NAdamW(
                param_groups(self.model),
                lr=hp["learning_rate"],
                betas=(hp["beta1"], 1 - hp["one_minus_beta2"]),
                weight_decay=hp["weight_decay"],
            )
            warmup = round(hp["warmup_fraction"] * total)
            sched = lambda_lr(opt, warmup_cosine, total, warmup_steps=warmup)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    class Clock(L.Callback):
        def on_train_start(self, trainer, module) -> None:
            self.start = time.perf_counter()

        def on_train_end(self, trainer, module) -> None:
            self.end = time.perf_counter()

    torch.manual_seed(seed)
    clock = Clock()
    start = time.perf_counter()
    module = Module()
    trainer = L.Trainer(
        max_steps=steps,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[clock],
    )
    loader = torch.utils.data.DataLoader(Batches(), batch_size=None)
    trainer.fit(module, train_dataloaders=loader)
    end = time.perf_counter()
    assert trainer.global_step == steps, f"Lightning ran {trainer.global_step} steps"
    return (end - start) / steps, (clock.end - clock.start) / steps


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    n = len(ordered)
    return ordered[n // 4], statistics.median(ordered), ordered[(3 * n) // 4]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=16)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: robust on a shared machine)"
    )
    parser.add_argument(
        "--lightning",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="add the Lightning arm when Lightning is installed",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    L = _lightning() if args.lightning else None
    workload = get_workload("mnist1d_mlp")
    algorithm = get_algorithm("nadamw")
    hp = algorithm.search_space.validate({})
    batch_size = algorithm.batch_size(workload, hp)
    arms = {
        "minimal": lambda i: minimal_loop(workload, args.steps, batch_size, hp, i),
        "runner": lambda i: runner_loop(workload, algorithm, args.steps, hp, i),
    }
    if L is not None:
        arms["lightning"] = lambda i: lightning_loop(L, workload, args.steps, batch_size, hp, i)
    for arm in arms.values():  # warm-up of every path
        arm(0)
    names = list(arms)
    times: dict[str, list] = {name: [] for name in names}
    for i in range(args.repeats):
        # rotate which arm goes first, so that drift and ordering effects cancel
        for name in names[i % len(names) :] + names[: i % len(names)]:
            times[name].append(arms[name](i))
        mins = times["minimal"][-1]
        line = f"repeat {i}: minimal {mins * 1e3:.3f} ms/step"
        wall, timed = times["runner"][-1]
        line += f", runner {wall * 1e3:.3f} ({timed * 1e3:.3f} timed)"
        if L is not None:
            fit, loop = times["lightning"][-1]
            line += f", lightning {fit * 1e3:.3f} ({loop * 1e3:.3f} in the loop)"
        print(line, flush=True)
    mins = times["minimal"]
    runner = [wall for wall, _ in times["runner"]]
    runner_timed = [timed for _, timed in times["runner"]]
    print(
        f"mnist1d_mlp, {args.steps} steps x {args.repeats} repeats, batch {batch_size}, "
        f"torch threads {torch.get_num_threads()}"
        + (
            f", Lightning {L.__version__}"
            if L is not None
            else ", no Lightning arm"
            + (" (not installed)" if args.lightning else " (--no-lightning)")
        )
    )

    def report(label: str, arm: list[float], goal: str = "") -> float:
        low, ratio, high = _quartiles([a / m for a, m in zip(arm, mins, strict=True)])
        over = [(a - m) * 1e6 for a, m in zip(arm, mins, strict=True)]
        olow, overhead, ohigh = _quartiles(over)
        print(
            f"{label}: ratio to minimal median {ratio:.3f} (IQR {low:.3f}-{high:.3f}{goal}); "
            f"overhead {overhead:.1f} us/step (IQR {olow:.1f}-{ohigh:.1f})"
        )
        return overhead

    print(f"minimal loop: median {statistics.median(mins) * 1e6:.1f} us/step")
    ours = report("runner (wall - eval)", runner, "; goal <= 1.02")
    report("runner (timed only)", runner_timed)
    if L is not None:
        theirs = report("lightning (Trainer + fit)", [fit for fit, _ in times["lightning"]])
        report("lightning (fit loop only)", [loop for _, loop in times["lightning"]])
        fraction = ours / theirs if theirs > 0 else float("nan")
        print(
            f"runner overhead / Lightning overhead: {fraction:.3f} (goal < 0.1; medians of the "
            "per-pair overheads)"
        )


if __name__ == "__main__":
    main()
