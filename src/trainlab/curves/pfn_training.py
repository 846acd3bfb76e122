"""Training the LC-PFN on prior curves (the loop ``tools/train_lcpfn.py`` runs).

Each step draws ``batch_size`` fresh curves of length 100 from the prior
(:func:`trainlab.curves.prior.sample_curves`), a cut ``n`` uniform in 1..99 (shared by the
batch), and minimises the bar-distribution negative log-likelihood of the noisy values at
positions ``n+1..100`` given the first ``n``: the PFN objective (Müller et al. 2022), which
trains the network to output the prior's posterior predictive. Adam, linear warm-up over the
first 5 % of steps then cosine decay to 0, gradient norm clipped to 1. Seeded: the same seed
and sizes give the same weights on the same machine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from trainlab.curves.lcpfn import LCPFNModel, bar_nll
from trainlab.curves.prior import CURVE_LENGTH, sample_curves


def prior_borders(n_buckets: int, rng: np.random.Generator, n_curves: int = 4000) -> torch.Tensor:
    """Bucket borders at the quantiles of noisy prior values in [0, 1] (each bucket equally
    likely a priori), the outer borders at exactly 0 and 1."""
    _, noisy = sample_curves(n_curves, rng)
    q = np.quantile(np.clip(noisy, 0.0, 1.0), np.linspace(0.0, 1.0, n_buckets + 1))
    q[0], q[-1] = 0.0, 1.0
    q = np.maximum.accumulate(q + np.arange(n_buckets + 1) * 1e-6)  # strictly increasing
    return torch.tensor(q / q[-1], dtype=torch.float32)


def validation_nll(model: LCPFNModel, x: torch.Tensor, noisy: torch.Tensor,
                   cuts: tuple[int, ...] = (10, 25, 50)) -> float:  # fmt: skip
    """Mean NLL of the final point given the first ``cut`` points, averaged over ``cuts``."""
    with torch.no_grad():
        losses = [
            float(bar_nll(model(x[:, :n], noisy[:, :n], x[:, -1:]), model.borders, noisy[:, -1:]))
            for n in cuts
        ]
    return sum(losses) / len(losses)


def train_pfn(
    steps: int,
    batch_size: int = 64,
    seed: int = 0,
    lr: float = 1e-3,
    config: dict[str, int] | None = None,
    log: Callable[[int, float, float], None] | None = None,
    log_every: int = 200,
) -> tuple[LCPFNModel, dict[str, Any]]:
    """Train a fresh :class:`LCPFNModel` for ``steps`` Adam steps; return it (eval mode) and a
    record ``{"train_nll": [...], "valid_nll": [...], "steps": ...}`` (NLL per ``log_every``
    steps; ``valid_nll`` on 256 fixed prior curves). ``log(step, train, valid)`` is called then.
    """
    if steps < 1 or batch_size < 1:
        raise ValueError("need steps >= 1 and batch_size >= 1")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = LCPFNModel(**(config or {}))
    model.borders.copy_(prior_borders(model.config["n_buckets"], rng))
    _, valid = sample_curves(256, np.random.default_rng(seed + 1))
    positions = torch.arange(1, CURVE_LENGTH + 1, dtype=torch.float32)
    valid_x = positions.expand(len(valid), -1)
    valid_y = torch.from_numpy(valid)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    warmup = max(1, steps // 20)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    record: dict[str, Any] = {"train_nll": [], "valid_nll": [], "steps": steps}
    running = 0.0
    model.train()
    x = positions.expand(batch_size, -1)
    for step in range(steps):
        _, noisy = sample_curves(batch_size, rng)
        y = torch.from_numpy(noisy)
        n = int(rng.integers(1, CURVE_LENGTH))
        loss = bar_nll(model(x[:, :n], y[:, :n], x[:, n:]), model.borders, y[:, n:])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        running += float(loss.detach())
        if (step + 1) % log_every == 0 or step + 1 == steps:
            count = (step % log_every) + 1
            model.eval()
            valid_loss = validation_nll(model, valid_x, valid_y)
            model.train()
            record["train_nll"].append(running / count)
            record["valid_nll"].append(valid_loss)
            if log is not None:
                log(step + 1, running / count, valid_loss)
            running = 0.0
    return model.eval(), record
