"""MNIST-1D workloads: an MLP and a small 1-D CNN on the same generated data.

Data: Greydanus & Bau, "Scaling Down Deep Learning with MNIST-1D" (2020/2024). The ``mnist1d``
package *generates* the dataset (templates of 10 digits, padded, translated, sheared, scaled and
noised into 40-sample signals); nothing is downloaded. We generate 15,000 examples with the
package's default settings and seed 42 and split them 10,000 / 2,500 / 2,500 into train /
valid / test. Generation takes a few seconds and is cached (untimed). For one-pass training on
fresh data a second pool of examples is generated with another seed on first use.

Targets and budgets were chosen by measuring the ``nadamw`` baseline with its defaults on a
2-core CPU (step mode, seeds 0-2): the target is a validation accuracy that the baseline
reaches reliably but not trivially, ``step_hint`` is about the step count at which it first
gets there with margin, and ``max_runtime`` leaves room for slower algorithms. The benchmark
protocol's target-setting procedure (``trainlab targets``) refines them.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor, nn

from trainlab.registry import register_workload
from trainlab.spec import Batch, Target
from trainlab.workloads.base import (
    ClassificationWorkload,
    Splits,
    activation,
    cached_arrays,
    pool_batches,
    seeded_model,
)

N_TRAIN, N_VALID, N_TEST = 10_000, 2_500, 2_500
FRESH_POOL = 60_000


def _generate(num_samples: int, seed: int) -> dict[str, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = num_samples
    args.seed = seed
    data = make_dataset(args)
    x = np.concatenate([data["x"], data["x_test"]]).astype(np.float32)
    y = np.concatenate([data["y"], data["y_test"]]).astype(np.int64)
    return {"x": x, "y": y}


def load_splits(noise: float = 0.0) -> Splits:
    arrays = cached_arrays(
        "mnist1d_15000_seed42", lambda: _generate(N_TRAIN + N_VALID + N_TEST, 42)
    )
    x, y = torch.from_numpy(arrays["x"]), torch.from_numpy(arrays["y"])
    if noise:
        x = x + noise * torch.randn(x.shape, generator=torch.Generator().manual_seed(7))
    a, b = N_TRAIN, N_TRAIN + N_VALID
    return Splits(x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:])


class MNIST1DWorkload(ClassificationWorkload):
    num_classes = 10
    generative = True
    variants = ("gelu", "noisy")
    act = "relu"

    def __init__(self, device: str = "cpu") -> None:
        self.splits = load_splits()
        self.noise = 0.0
        self.to(device)

    def variant(self, name: str):
        if name == "gelu":
            return self.with_changes(name, act="gelu")
        if name == "noisy":  # extra i.i.d. input noise on every split
            return self.with_changes(name, noise=0.3, splits=load_splits(noise=0.3).to(self.device))
        return super().variant(name)

    def fresh_batches(self, batch_size: int, seed: int) -> Iterator[Batch]:
        """Examples from a separately generated pool (seed 43), each used once per pass; the pool
        (60,000 examples) is generated on first use and cached."""
        arrays = cached_arrays("mnist1d_fresh_60000_seed43", lambda: _generate(FRESH_POOL, 43))
        x = torch.from_numpy(arrays["x"]).to(self.device)
        y = torch.from_numpy(arrays["y"]).to(self.device)
        if self.noise:
            x = x + self.noise * torch.randn(
                x.shape, generator=torch.Generator().manual_seed(8)
            ).to(x)
        return pool_batches(x, y, batch_size, seed)


@register_workload("mnist1d_mlp")
class MNIST1DMLP(MNIST1DWorkload):
    """MLP 40-256-256-10 on MNIST-1D; metric: validation accuracy."""

    name = "mnist1d_mlp"
    target = Target("accuracy", 0.75, higher_is_better=True)
    max_runtime = 60.0
    eval_period = 1.0
    step_hint = 2000
    eval_every_steps = 100

    def init_model(self, seed: int) -> nn.Module:
        def build() -> nn.Module:
            return nn.Sequential(
                nn.Linear(40, 256), activation(self.act),
                nn.Linear(256, 256), activation(self.act),
                nn.Linear(256, 10),
            )  # fmt: skip

        return seeded_model(seed, build, self.device)


class _CNN1D(nn.Module):
    """Three stages at signal lengths 40, 20 and 10: each opens with its transition convolution
    (the 5-wide stem from 1 channel; a stride-2, 3-wide one halving the length) followed by
    ``depths[s] - 1`` shape-preserving 3-wide convolutions (stride 1, 'same' padding), each
    convolution followed by the activation; then a linear head on the flattened 32 x 10. The
    default ``depths=(1, 1, 1)`` is the workload's three-layer model."""

    def __init__(self, act: str, channels: int = 32, depths: tuple[int, ...] = (1, 1, 1)) -> None:
        super().__init__()
        if len(depths) != 3 or any(not isinstance(d, int) or d < 1 for d in depths):
            raise ValueError(f"depths must be three stage depths >= 1, got {depths}")
        c = channels
        layers: list[nn.Module] = []
        for s, depth in enumerate(depths):
            if s == 0:
                layers += [nn.Conv1d(1, c, 5, padding=2), activation(act)]
            else:
                layers += [nn.Conv1d(c, c, 3, stride=2, padding=1), activation(act)]
            for _ in range(depth - 1):
                layers += [nn.Conv1d(c, c, 3, padding=1), activation(act)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c * 10, 10)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x.unsqueeze(1)).flatten(1))


@register_workload("mnist1d_cnn")
class MNIST1DCNN(MNIST1DWorkload):
    """Three-layer 1-D CNN (32 channels) on MNIST-1D; metric: validation accuracy."""

    name = "mnist1d_cnn"
    target = Target("accuracy", 0.91, higher_is_better=True)
    max_runtime = 120.0
    eval_period = 2.0
    step_hint = 2000
    eval_every_steps = 100

    #: convolutions per stage (lengths 40, 20, 10); a deeper copy: ``with_changes(n, depths=)``
    depths = (1, 1, 1)

    def init_model(self, seed: int) -> nn.Module:
        return seeded_model(seed, lambda: _CNN1D(self.act, depths=self.depths), self.device)
