"""What a submission imports as ``algoperf.pytorch_utils``: :func:`pytorch_setup`.

Submissions call it at import time (``USE_PYTORCH_DDP, RANK, DEVICE, N_GPUS =
pytorch_setup()``) to place their tensors. Under trainlab a submission runs in one process on
the workload's device, which the loader sets (:func:`active_device`) before importing it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

_DEVICE = torch.device("cpu")


def pytorch_setup() -> tuple[bool, int, torch.device, int]:
    """``(use_ddp, rank, device, n_gpus)``: ``(False, 0, <the workload's device>, 1)``.

    trainlab runs a submission in one process (no DDP, rank 0); ``n_gpus`` is 1, the number of
    devices the batch is split over (AlgoPerf's runner checks that batch sizes divide by it)."""
    return False, 0, _DEVICE, 1


@contextlib.contextmanager
def active_device(device: torch.device) -> Iterator[None]:
    """Make :func:`pytorch_setup` report ``device`` while a submission is imported."""
    global _DEVICE
    before, _DEVICE = _DEVICE, torch.device(device)
    try:
        yield
    finally:
        _DEVICE = before
