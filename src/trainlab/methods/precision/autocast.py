"""bf16 mixed precision: forward and backward under ``torch.autocast`` with bfloat16, float32
master weights and optimizer state.

Micikevicius et al., "Mixed Precision Training" (ICLR 2018, arXiv:1710.03740) keep a float32
master copy of the weights, run the forward and backward passes in 16 bits and apply the update
to the master copy; Kalamkar et al., "A Study of BFLOAT16 for Deep Learning Training"
(arXiv:1905.12322, 2019) show that bfloat16, with float32's 8 exponent bits, trains without the
loss scaling float16 needs. ``torch.autocast`` implements the rule per operation: matrix
products and convolutions (its lower-precision list) cast their float32 inputs to bfloat16 and
return bfloat16; reductions, softmax, losses and norms (its float32 list) run in float32. The
parameters are never cast: they stay float32 tensors, so their gradients (accumulated into
``.grad`` by autograd, in the parameter's dtype) and every optimizer state are float32, and no
loss scaling is used (bfloat16's range is float32's).

Choices the papers leave open, as made here: the optimizer step runs with autocast *disabled*
(an optimizer that multiplies matrices, Muon's Newton-Schulz iteration or Shampoo's
preconditioner, computes in float32); evaluation is float32; the same code path serves CPU and
CUDA (the device type comes from the tensors' device).

In a plain loop::

    from trainlab.methods.precision import bf16_autocast

    for x, y in loader:
        with bf16_autocast(x.device):            # forward (and the loss) in bf16 where it pays
            loss = loss_fn(model(x), y)
        opt.zero_grad(); loss.backward()         # the backward follows the forward's dtypes
        opt.step()                               # float32 master weights and state
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

#: the devices ``torch.autocast`` supports with bfloat16 here
AUTOCAST_DEVICES = ("cpu", "cuda")


def autocast_device_type(device: torch.device | str) -> str:
    """``"cpu"`` or ``"cuda"`` for a device (``"cuda:1"`` -> ``"cuda"``); anything else raises
    :class:`ValueError` (``torch.autocast`` would silently do nothing or fail later)."""
    kind = torch.device(device).type
    if kind not in AUTOCAST_DEVICES:
        raise ValueError(f"bf16 autocast supports {', '.join(AUTOCAST_DEVICES)}, not {kind!r}")
    return kind


def bf16_autocast(device: torch.device | str, enabled: bool = True) -> torch.autocast:
    """``torch.autocast(device_type, dtype=torch.bfloat16)`` for ``device``: the mixed precision
    of Micikevicius et al. (2018) with bfloat16 (Kalamkar et al., 2019). Matrix products and
    convolutions run in bfloat16 inside it; parameters, gradients and optimizer state stay
    float32. ``enabled=False`` gives a context that turns autocast off (for an optimizer step
    inside an autocast region)."""
    return torch.autocast(autocast_device_type(device), dtype=torch.bfloat16, enabled=enabled)


def float32_step(optimizer: torch.optim.Optimizer, device: torch.device | str) -> None:
    """Make ``optimizer.step`` run with autocast disabled, so an optimizer called inside an
    autocast region (a training step wrapped whole) keeps its arithmetic in float32. Patches the
    instance once (idempotent); the class and other optimizers are untouched."""
    step = optimizer.step
    if getattr(step, "_trainlab_float32", False):
        return
    kind = autocast_device_type(device)

    @functools.wraps(step)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with torch.autocast(kind, enabled=False):
            return step(*args, **kwargs)

    wrapped._trainlab_float32 = True  # type: ignore[attr-defined]
    optimizer.step = wrapped  # type: ignore[method-assign]


def in_bf16(fn: Callable[..., Any], device: torch.device | str) -> Callable[..., Any]:
    """``fn`` wrapped so each call runs under :func:`bf16_autocast` for ``device``."""
    kind = autocast_device_type(device)

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with torch.autocast(kind, dtype=torch.bfloat16):
            return fn(*args, **kwargs)

    return wrapped
