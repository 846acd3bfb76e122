"""One-pass training: every update sees examples never seen before, and the model size and
iteration count are chosen together for the compute budget.

Paper: Aran Komatsuzaki, "One Epoch Is All You Need" (arXiv:1906.06669, 2019).

Rules implemented.

1. **Train on fresh data, for one epoch.** Where examples can be collected or generated without
   limit, draw new ones for every update instead of repeating a fixed set for many epochs; the
   paper finds that without repetition there is no overfitting, so regularisation (dropout,
   weight decay) only slows training down. :func:`one_pass` wraps a batch source and refuses to
   hand out an example twice.
2. **Size/iteration adjustment.** For a compute budget ``C`` (FLOPs), pick the number of
   parameters ``N`` and of training tokens ``D`` so that ``D ≈ r N`` with the paper's
   tokens-per-parameter ratio ``r ≈ 5`` (its Transformer language models trained fastest to a
   given loss near that ratio), using the usual estimate ``C ≈ 6 N D`` FLOPs for a forward and
   backward pass (Kaplan et al., 2020; the paper itself measured wall-clock time). Hence
   ``N = sqrt(C / (6 r))``, ``D = r N`` and ``iterations = D / tokens_per_iteration``.
   :func:`plan_one_epoch` does this; when the data at hand cannot supply ``D`` tokens without
   repeating, the data is the binding constraint and the plan is sized to one pass over it.

Choices where the paper is open: the 6-FLOPs-per-parameter-token estimate; rounding iterations
up; for non-token data, a "token" is whatever the caller counts (an example, a pixel row).
Later work (Hoffmann et al., 2022, "Chinchilla") puts the compute-optimal ratio nearer 20;
``tokens_per_parameter`` is a parameter for that reason.

Identities given to :func:`one_pass` may be Python ints, tensors or NumPy arrays (of any
shape), or sequences of their scalars; they are compared by value.

A plain PyTorch loop (plan the budget, then one pass over freshly generated batches):

>>> import itertools, torch, torch.nn.functional as F
>>> from torch import nn
>>> plan = plan_one_epoch(compute_flops=3e7, tokens_per_iteration=64)
>>> plan.parameters, plan.iterations
(1000, 79)
>>> widths = {"narrow": 2 * 8 + 8 + 8 * 2 + 2, "wide": 2 * 64 + 64 + 64 * 2 + 2}
>>> hidden = 8 if choose_model_size(widths, plan.parameters) == "narrow" else 64
>>> model = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 2))
>>> opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)  # no regulariser
>>> def fresh_batches(g=torch.Generator().manual_seed(0)):
...     while True:                                     # a generator: never the same example
...         x = torch.randn(64, 2, generator=g)
...         yield x, (x.sum(1) > 0).long(), torch.full((64,), -1)
>>> for x, y, ids in itertools.islice(one_pass(fresh_batches(), key=lambda b: b[2]),
...                                   plan.iterations):
...     loss = F.cross_entropy(model(x), y)
...     opt.zero_grad(); loss.backward(); opt.step()
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

B = TypeVar("B")


@dataclass(frozen=True)
class OneEpochPlan:
    """A model size and a training length for one pass over fresh data."""

    parameters: int
    tokens: int
    iterations: int
    #: True when the available data, not compute, fixed the plan
    data_bound: bool = False
    #: the paper's advice: with no repetition there is nothing to regularise against
    regularization: str = "none"


def plan_one_epoch(
    compute_flops: float,
    tokens_per_iteration: int,
    tokens_per_parameter: float = 5.0,
    flops_per_parameter_token: float = 6.0,
    available_tokens: int | None = None,
) -> OneEpochPlan:
    """Model size and iteration count for ``compute_flops`` under one-epoch training.

    The compute allocation of Komatsuzaki, "One Epoch Is All You Need" (arXiv:1906.06669, 2019)."""
    if compute_flops <= 0 or tokens_per_iteration <= 0:
        raise ValueError("compute_flops and tokens_per_iteration must be positive")
    if tokens_per_parameter <= 0 or flops_per_parameter_token <= 0:
        raise ValueError("tokens_per_parameter and flops_per_parameter_token must be positive")
    params = math.sqrt(compute_flops / (flops_per_parameter_token * tokens_per_parameter))
    tokens = tokens_per_parameter * params
    data_bound = available_tokens is not None and tokens > available_tokens
    if data_bound:
        tokens = float(available_tokens)
        params = tokens / tokens_per_parameter
    return OneEpochPlan(
        parameters=max(1, int(round(params))),
        tokens=int(round(tokens)),
        iterations=max(1, math.ceil(tokens / tokens_per_iteration)),
        data_bound=bool(data_bound),
    )


def choose_model_size(candidates: Mapping[str, int], parameters: int) -> str:
    """The candidate (name -> parameter count) closest to ``parameters`` on a log scale.

    Used by :func:`plan_one_epoch`; Komatsuzaki, "One Epoch Is All You Need" (arXiv:1906.06669,
    2019)."""
    if not candidates:
        raise ValueError("no candidate models")
    return min(candidates, key=lambda k: abs(math.log(candidates[k]) - math.log(parameters)))


class RepeatedExampleError(RuntimeError):
    """One-pass training met an example it had already handed out."""


def _identities(keys: Any) -> list[Any]:
    """Hashable identities from ``keys``: a tensor or array (any shape) is read by value, as are
    tensor and NumPy scalars inside a sequence."""
    if hasattr(keys, "tolist") and hasattr(keys, "reshape"):  # torch.Tensor, numpy.ndarray
        return keys.reshape(-1).tolist()
    return [k.item() if hasattr(k, "item") else k for k in keys]


def one_pass(batches: Iterable[B], key: Callable[[B], Iterable[Any]] | None = None) -> Iterator[B]:
    """Yield ``batches`` as they come, checking that no example repeats.

    ``key(batch)`` gives the identities of the batch's examples (e.g. their indices in a finite
    dataset; a list, a tensor or a NumPy array; ``None`` skips the check, for generators that
    cannot repeat). Meeting an identity twice raises :class:`RepeatedExampleError`: the data
    source ran out and began a second epoch. Negative integer identities (the convention for
    freshly generated examples) are never compared.

    Paper: Komatsuzaki, "One Epoch Is All You Need" (arXiv:1906.06669, 2019).
    """
    seen: set[Any] = set()
    for batch in batches:
        if key is not None:
            for k in _identities(key(batch)):
                if isinstance(k, int) and k < 0:
                    continue
                if k in seen:
                    raise RepeatedExampleError(f"example {k!r} seen twice: one pass is over")
                seen.add(k)
        yield batch
