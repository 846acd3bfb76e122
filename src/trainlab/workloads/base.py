"""Shared pieces of the in-memory workloads: tensor splits, classification and regression
losses and metrics, seeded model construction, and the on-disk cache for generated data."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainlab.nn_utils import evaluating, shuffled_batches, soft_cross_entropy
from trainlab.spec import Batch, Workload


def cache_dir() -> Path:
    """Where generated datasets are cached (``$TRAINLAB_CACHE`` or ``~/.cache/trainlab``)."""
    path = Path(os.environ.get("TRAINLAB_CACHE", Path.home() / ".cache" / "trainlab"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cached_arrays(name: str, build) -> dict[str, np.ndarray]:
    """Load ``name.npz`` from the cache, or build the arrays (a dict) and save them atomically.

    Only plain arrays are stored (``allow_pickle=False``): nothing is ever unpickled.
    """
    path = cache_dir() / f"{name}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    arrays = build()
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return arrays


def pool_batches(inputs: Tensor, targets: Tensor, batch_size: int, seed: int) -> Iterator[Batch]:
    """Endless reshuffled passes over a pool of generated examples (``fresh_batches``); their
    indices are -1: they are not in the training split."""
    gen = torch.Generator().manual_seed(int(seed))
    for rows in shuffled_batches(torch.arange(len(inputs), device=inputs.device), batch_size, gen):
        yield Batch(inputs[rows], targets[rows], torch.full((batch_size,), -1))


@dataclasses.dataclass
class Splits:
    """Inputs and targets of the train / valid / test splits, as tensors."""

    x_train: Tensor
    y_train: Tensor
    x_valid: Tensor
    y_valid: Tensor
    x_test: Tensor
    y_test: Tensor

    def to(self, device: torch.device) -> Splits:
        return Splits(*(t.to(device) for t in dataclasses.astuple(self)))

    def split(self, name: str) -> tuple[Tensor, Tensor]:
        if name not in ("train", "valid", "test"):
            raise ValueError(f"unknown split {name!r}")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")


def seeded_model(seed: int, build, device: torch.device) -> nn.Module:
    """Build a model under a fixed seed without disturbing the global RNG's other users."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build()
    return model.to(device)


class TensorWorkload(Workload):
    """A workload whose splits live in memory as tensors; batches are gathered by index."""

    splits: Splits
    #: examples per forward pass during evaluation
    eval_batch_size: int = 1024

    @property
    def train_size(self) -> int:
        return int(self.splits.x_train.shape[0])

    def get_examples(self, indices: Tensor) -> Batch:
        idx = indices.to(self.splits.x_train.device)
        return Batch(self.splits.x_train[idx], self.splits.y_train[idx], indices)

    def to(self, device: str | torch.device) -> TensorWorkload:
        """Move the data to ``device`` (models from :meth:`init_model` follow)."""
        self.device = torch.device(device)
        self.splits = self.splits.to(self.device)
        return self

    def with_changes(self, variant_name: str, **changes) -> TensorWorkload:
        """A shallow copy with some attributes replaced (how variants are made)."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.__dict__.update(changes)
        clone.variant_name = variant_name
        return clone

    @torch.no_grad()
    def _outputs_in_chunks(self, model: nn.Module, x: Tensor) -> list[Tensor]:
        return [
            model(x[i : i + self.eval_batch_size]) for i in range(0, len(x), self.eval_batch_size)
        ]

    def evaluate(self, model: nn.Module, split: str = "valid") -> dict[str, float]:
        x, y = self.splits.split(split)
        with evaluating(model):
            outputs = self._outputs_in_chunks(model, x)
        return self.metrics(torch.cat(outputs), y)

    def metrics(self, outputs: Tensor, targets: Tensor) -> dict[str, float]:
        raise NotImplementedError


class ClassificationWorkload(TensorWorkload):
    """Cross-entropy on class logits; metrics: accuracy, error rate, loss."""

    loss_type = "cross_entropy"
    num_classes: int

    def loss_from_outputs(
        self,
        outputs: Tensor,
        batch: Batch,
        label_smoothing: float = 0.0,
        soft_targets: Tensor | None = None,
    ) -> Tensor:
        if soft_targets is not None:
            return soft_cross_entropy(outputs, soft_targets)
        return F.cross_entropy(
            outputs, batch.targets, reduction="none", label_smoothing=label_smoothing
        )

    def mean_loss(self, model: nn.Module, batch: Batch, label_smoothing: float = 0.0) -> Tensor:
        outputs = self.forward(model, batch)
        return F.cross_entropy(
            outputs.flatten(0, -2), batch.targets.flatten(), label_smoothing=label_smoothing
        )

    def metrics(self, outputs: Tensor, targets: Tensor) -> dict[str, float]:
        accuracy = (outputs.argmax(-1) == targets).float().mean().item()
        loss = F.cross_entropy(outputs.float(), targets).item()
        return {"accuracy": accuracy, "error_rate": 1.0 - accuracy, "loss": loss}


class RegressionWorkload(TensorWorkload):
    """Mean squared error per example (averaged over output dimensions); metric: mse."""

    loss_type = "mse"

    def loss_from_outputs(
        self,
        outputs: Tensor,
        batch: Batch,
        label_smoothing: float = 0.0,
        soft_targets: Tensor | None = None,
    ) -> Tensor:
        if label_smoothing or soft_targets is not None:
            raise ValueError(f"{self.name}: label smoothing and soft targets need cross-entropy")
        return (outputs - batch.targets).pow(2).flatten(1).mean(1)

    def mean_loss(self, model: nn.Module, batch: Batch, label_smoothing: float = 0.0) -> Tensor:
        if label_smoothing:
            raise ValueError(f"{self.name}: label smoothing needs cross-entropy")
        return F.mse_loss(self.forward(model, batch), batch.targets)

    def metrics(self, outputs: Tensor, targets: Tensor) -> dict[str, float]:
        mse = (outputs.float() - targets.float()).pow(2).mean().item()
        return {"mse": mse, "rmse": math.sqrt(mse)}


def activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}[name]()
