"""``forecast_gru``: multi-step forecasting of the chaotic Mackey-Glass series with a GRU.

Data: the Mackey-Glass delay differential equation (Mackey & Glass, "Oscillation and chaos in
physiological control systems", 1977), ``dx/dt = 0.2 x(t-17) / (1 + x(t-17)^10) - 0.1 x(t)``,
chaotic for delay 17, integrated with Euler steps of 0.1 and sampled every 3 time units, then
standardized with the training series' mean and deviation. Train, valid and test are separate
trajectories (different initial histories). An example is a window of 32 observed values and
the 16 values that follow (48 time units ahead at the end); train windows start at every
position, evaluation windows every 16 positions. Fresh trajectories can be generated without
limit, so the workload supports one-pass training.

Model: one-layer GRU (width 64) over the window, linear head from the last state to the 16
future values. Metric: validation MSE on the standardized scale (lower is better).

Target and budgets were chosen by measuring the ``nadamw`` baseline with its defaults on a
2-core CPU (step mode); ``trainlab targets`` refines them.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor, nn

from trainlab.nn_utils import shuffled_batches
from trainlab.registry import register_workload
from trainlab.spec import Batch, Target
from trainlab.workloads.base import RegressionWorkload, Splits, cached_arrays, seeded_model

WINDOW, HORIZON = 32, 16
SAMPLE_EVERY, DT, DELAY = 3.0, 0.1, 17.0


def mackey_glass(n: int, seed: int, burn_in: int = 500) -> np.ndarray:
    """``n`` samples of a Mackey-Glass trajectory whose initial history is random (seeded)."""
    rng = np.random.default_rng(seed)
    lag = int(DELAY / DT)
    per_sample = int(SAMPLE_EVERY / DT)
    total = (n + burn_in) * per_sample
    x = np.empty(total + lag)
    x[:lag] = 0.9 + 0.3 * rng.random(lag)
    for t in range(lag, total + lag):
        past = x[t - lag]
        prev = x[t - 1]
        x[t] = prev + DT * (0.2 * past / (1.0 + past**10) - 0.1 * prev)
    return x[lag + burn_in * per_sample :: per_sample][:n].astype(np.float32)


def _series() -> dict[str, np.ndarray]:
    return cached_arrays(
        "mackey_glass_v1",
        lambda: {
            "train": mackey_glass(12_000, 1),
            "valid": mackey_glass(3_000, 2),
            "test": mackey_glass(3_000, 3),
        },
    )


def _windows(series: Tensor, stride: int) -> tuple[Tensor, Tensor]:
    starts = torch.arange(0, len(series) - WINDOW - HORIZON + 1, stride)
    rows = series[starts.unsqueeze(1) + torch.arange(WINDOW + HORIZON)]
    return rows[:, :WINDOW], rows[:, WINDOW:]


class Forecaster(nn.Module):
    def __init__(self, cell: str = "gru", width: int = 64) -> None:
        super().__init__()
        rnn = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
        self.rnn = rnn(1, width, batch_first=True)
        self.head = nn.Linear(width, HORIZON)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.rnn(x.unsqueeze(-1))
        return self.head(out[:, -1])


@register_workload("forecast_gru")
class Forecast(RegressionWorkload):
    name = "forecast_gru"
    target = Target("mse", 0.004, higher_is_better=False)
    max_runtime = 120.0
    eval_period = 2.0
    step_hint = 1000
    eval_every_steps = 50
    generative = True
    variants = ("lstm", "noisy")
    cell = "gru"
    input_noise = 0.0

    def __init__(self, device: str = "cpu") -> None:
        raw = _series()
        self.mean, self.std = float(raw["train"].mean()), float(raw["train"].std())
        s = {k: (torch.from_numpy(v) - self.mean) / self.std for k, v in raw.items()}
        self.splits = Splits(
            *_windows(s["train"], 1), *_windows(s["valid"], HORIZON), *_windows(s["test"], HORIZON)
        )
        self.to(device)

    def variant(self, name: str):
        if name == "lstm":
            return self.with_changes(name, cell="lstm")
        if name == "noisy":  # observation noise on every input window (targets stay clean)
            gen = torch.Generator().manual_seed(11)
            sp = self.splits

            def noise(x: Tensor) -> Tensor:
                return x + 0.1 * torch.randn(x.shape, generator=gen).to(x)

            noisy = Splits(
                noise(sp.x_train),
                sp.y_train,
                noise(sp.x_valid),
                sp.y_valid,
                noise(sp.x_test),
                sp.y_test,
            )
            return self.with_changes(name, splits=noisy, input_noise=0.1)
        return super().variant(name)

    def init_model(self, seed: int) -> nn.Module:
        return seeded_model(seed, lambda: Forecaster(self.cell), self.device)

    def fresh_batches(self, batch_size: int, seed: int) -> Iterator[Batch]:
        """Windows of newly integrated trajectories (one 4,000-sample trajectory per chunk,
        seeded from ``seed``), standardized like the training data."""
        chunk = 0
        gen = torch.Generator().manual_seed(int(seed))
        while True:
            raw = mackey_glass(4_000, 10_000 + 1_000 * int(seed) + chunk)
            chunk += 1
            x, y = _windows((torch.from_numpy(raw) - self.mean) / self.std, 1)
            if self.input_noise:
                x = x + self.input_noise * torch.randn(x.shape, generator=gen)
            x, y = x.to(self.device), y.to(self.device)
            rows_of_chunk = torch.arange(len(x), device=self.device)
            for rows in shuffled_batches(rows_of_chunk, batch_size, gen, epochs=1):
                yield Batch(x[rows], y[rows], torch.full((batch_size,), -1))
