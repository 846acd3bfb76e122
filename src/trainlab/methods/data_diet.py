"""Data diet: prune the training set to the examples that score highest early in training.

Paper: Mansheej Paul, Surya Ganguli, Gintare Karolina Dziugaite, "Deep Learning on a Data Diet:
Finding Important Examples Early in Training" (NeurIPS 2021).

Rule implemented. For an example ``(x, y)`` and weights ``w_t`` after ``t`` steps of an ordinary
training run,

* **EL2N**  ``= || softmax(f_{w_t}(x)) - onehot(y) ||_2``  (the norm of the error vector);
* **GraNd** ``= || grad_w loss(f_{w_t}(x), y) ||_2``  (the per-example gradient norm),

each averaged over several independent initialisations ("runs"), each trained for only ``t``
steps (``t = 0`` gives scores at initialisation; the paper computes EL2N after ~10% of training
and shows GraNd working at initialisation). Training then keeps the ``keep_fraction`` of the
examples with the highest scores. The paper also observes that at strong pruning the very
highest-scoring examples (often mislabeled or ambiguous) hurt, and that skipping an offset of
them helps: ``offset_fraction`` drops that many of the top scorers before keeping the next ones.

Choices where the paper is open:

* Scores are computed with the model in eval mode (BatchNorm with running statistics, no
  dropout): a per-example gradient cannot use batch statistics, and EL2N should see the same
  model GraNd sees.
* Sequence outputs ``[B, L, C]`` with labels ``[B, L]``: EL2N is the mean over positions of the
  per-position error norm. Regression outputs (float targets shaped like the outputs): EL2N is
  the L2 norm of the prediction error, the direct analogue.
* GraNd is the norm over *all* trainable parameters, of the unsmoothed per-example loss. It is
  computed with ``torch.func``: ``vmap`` over ``grad`` of a ``functional_call``, one vectorised
  pass per chunk of examples. Modules whose kernels ``vmap`` cannot batch (the recurrent
  ``nn.RNN``/``nn.GRU``/``nn.LSTM``) are differentiated one example at a time with
  ``torch.func.grad`` instead (``method="auto"``; exact, slower); any other model that
  ``vmap`` cannot batch raises :class:`VmapUnsupportedError` naming the way out
  (``method="loop"``). Out-of-memory errors are never caught.

A plain PyTorch loop (four short runs from independent initialisations, then pruning):

>>> import torch, torch.nn.functional as F
>>> from torch import nn
>>> g = torch.Generator().manual_seed(0)
>>> X, Y = torch.randn(200, 5, generator=g), torch.randint(3, (200,), generator=g)
>>> scores = torch.zeros(len(X))
>>> for run in range(4):
...     _ = torch.manual_seed(run)
...     net = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))
...     opt = torch.optim.SGD(net.parameters(), lr=0.1)
...     for step in range(20):                         # a short early-training run
...         rows = torch.randint(len(X), (32,), generator=g)
...         opt.zero_grad(); F.cross_entropy(net(X[rows]), Y[rows]).backward(); opt.step()
...     with torch.no_grad():
...         scores += el2n_scores(net.eval()(X), Y) / 4
>>> # or GraNd: grand_scores(net, lambda m, x, y: F.cross_entropy(m(x), y, reduction="none"), X, Y)
>>> keep = select_by_score(scores, keep_fraction=0.6, offset_fraction=0.0)
>>> len(keep)
120
>>> loader = torch.utils.data.DataLoader(
...     torch.utils.data.TensorDataset(X[keep], Y[keep]), batch_size=32, shuffle=True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from trainlab.nn_utils import evaluating

B = TypeVar("B")

#: ``loss_fn(model, inputs, targets) -> per-example losses [b]``
PerExampleLoss = Callable[[nn.Module, Tensor, Tensor], Tensor]


def el2n_scores(outputs: Tensor, targets: Tensor) -> Tensor:
    """EL2N per example: ``||softmax(outputs) - onehot(targets)||_2``.

    ``outputs`` are logits ``[B, C]`` (or ``[B, L, C]`` with ``targets [B, L]``: mean over
    positions) when ``targets`` are integer labels; for float ``targets`` shaped like
    ``outputs`` (regression) the score is the L2 norm of ``outputs - targets`` per example.

    The EL2N score of Paul, Ganguli & Dziugaite, "Deep Learning on a Data Diet: Finding Important
    Examples Early in Training" (NeurIPS 2021).
    """
    outputs = outputs.detach()
    if targets.dtype.is_floating_point:
        if targets.shape != outputs.shape:
            raise ValueError(
                f"regression EL2N needs targets shaped like outputs, got {tuple(targets.shape)} "
                f"and {tuple(outputs.shape)}"
            )
        return (outputs.float() - targets.float()).flatten(1).norm(dim=1)
    if outputs.shape[:-1] != targets.shape:
        raise ValueError(
            f"logits {tuple(outputs.shape)} do not match labels {tuple(targets.shape)}"
        )
    probs = outputs.float().softmax(-1)
    error = probs - F.one_hot(targets.long(), outputs.shape[-1]).to(probs.dtype)
    norms = error.norm(dim=-1)  # [B] or [B, L]
    return norms.flatten(1).mean(1) if norms.ndim > 1 else norms


class VmapUnsupportedError(RuntimeError):
    """``torch.func.vmap`` cannot batch the model's per-example gradients."""


#: modules ``vmap`` cannot batch (fused recurrent kernels): differentiated one example at a time
LOOP_MODULES: tuple[type[nn.Module], ...] = (nn.RNNBase,)


class _LossModule(nn.Module):
    """``forward(x, y) = loss_fn(model, x, y)``, so ``functional_call`` can swap the weights."""

    def __init__(self, model: nn.Module, loss_fn: PerExampleLoss) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.loss_fn(self.model, x, y)


def grand_chunk_size(model: nn.Module, max_floats: int = 50_000_000, cap: int = 512) -> int:
    """Examples per vectorised pass so that their gradients take about ``max_floats`` numbers
    (200 MB in float32), at most ``cap``."""
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return int(min(cap, max(1, max_floats // max(n_params, 1))))


def grand_scores(
    model: nn.Module,
    loss_fn: PerExampleLoss,
    inputs: Tensor,
    targets: Tensor,
    chunk_size: int | None = None,
    method: str = "auto",
) -> Tensor:
    """GraNd per example: the L2 norm of the gradient of its loss w.r.t. all trainable
    parameters, for the model's current weights (in whatever train/eval mode it is in).

    ``loss_fn(model, x, y)`` returns per-example losses; it is called on batches of one example.
    ``method``: ``"vmap"`` (vectorised, ``chunk_size`` examples per pass; default from
    :func:`grand_chunk_size`), ``"loop"`` (one ``torch.func.grad`` per example) or ``"auto"``
    (``"loop"`` when the model holds one of :data:`LOOP_MODULES`, else ``"vmap"``).

    The GraNd score of Paul, Ganguli & Dziugaite, "Deep Learning on a Data Diet: Finding Important
    Examples Early in Training" (NeurIPS 2021).
    """
    if method == "auto":
        method = "loop" if any(isinstance(m, LOOP_MODULES) for m in model.modules()) else "vmap"
    if method not in ("vmap", "loop"):
        raise ValueError(f"unknown method {method!r}; use 'auto', 'vmap' or 'loop'")
    wrapper = _LossModule(model, loss_fn)
    params = {n: p.detach() for n, p in wrapper.named_parameters() if p.requires_grad}
    fixed = {n: p.detach() for n, p in wrapper.named_parameters() if not p.requires_grad}
    fixed.update((n, b.detach()) for n, b in wrapper.named_buffers())

    def one_loss(p: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        return functional_call(wrapper, {**p, **fixed}, (x.unsqueeze(0), y.unsqueeze(0))).sum()

    def norms(grads: dict[str, Tensor]) -> Tensor:
        return sum(g.flatten(1).pow(2).sum(1) for g in grads.values()).sqrt()

    if method == "loop":
        one_grad = grad(one_loss)
        scores = [
            norms({n: g.unsqueeze(0) for n, g in one_grad(params, x, y).items()})
            for x, y in zip(inputs, targets, strict=True)
        ]
        return torch.cat(scores) if scores else torch.zeros(0)
    per_example = vmap(grad(one_loss), in_dims=(None, 0, 0), randomness="different")
    step = chunk_size or grand_chunk_size(model)
    scores = []
    for start in range(0, len(inputs), step):
        x, y = inputs[start : start + step], targets[start : start + step]
        try:
            scores.append(norms(per_example(params, x, y)).detach())
        except torch.OutOfMemoryError:
            raise
        except RuntimeError as e:
            if scores:  # a later chunk: not a batching problem
                raise
            raise VmapUnsupportedError(
                f"GraNd: torch.func.vmap cannot batch this model ({e}); use method='loop'"
            ) from e
    return torch.cat(scores) if scores else torch.zeros(0)


def score_examples(
    model: nn.Module,
    num_examples: int,
    examples: Callable[[Tensor], B],
    score: Callable[[B], Tensor],
    chunk_size: int = 1024,
) -> Tensor:
    """``score(examples(indices))`` for all ``num_examples`` examples in index order,
    ``chunk_size`` at a time, with ``model`` in eval mode (restored afterwards); the scores are
    detached, float32 and on the CPU. ``examples(indices)`` fetches a batch (e.g. rows of
    in-memory tensors); ``score`` runs the model on it.
    Scores every example for Data Diet pruning (Paul et al., NeurIPS 2021)."""
    parts = []
    with evaluating(model):
        for start in range(0, num_examples, chunk_size):
            idx = torch.arange(start, min(start + chunk_size, num_examples))
            parts.append(score(examples(idx)).detach().float().cpu())
    return torch.cat(parts) if parts else torch.zeros(0)


def average_over_runs(score_run: Callable[[int], Tensor], num_runs: int) -> Tensor:
    """The mean of ``score_run(r)`` for ``r = 0 .. num_runs - 1`` (one independent
    initialisation and short training run each): the paper's expectation over weights.
    Paul et al. (NeurIPS 2021) average both scores over runs this way."""
    if num_runs < 1:
        raise ValueError("num_runs must be >= 1")
    total = None
    for r in range(num_runs):
        s = score_run(r).detach().float()
        total = s if total is None else total + s
    return total / num_runs


def select_by_score(scores: Tensor, keep_fraction: float, offset_fraction: float = 0.0) -> Tensor:
    """Indices of the examples to keep: sorted by descending score, skip the top
    ``offset_fraction`` (the hardest, often noisy, examples), keep the next ``keep_fraction``
    of the whole set (fewer if the offset leaves fewer). Ties keep the lower index first.
    Data Diet pruning (Paul et al., NeurIPS 2021): keep the highest-scoring examples."""
    if not 0.0 < keep_fraction <= 1.0:
        raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
    if not 0.0 <= offset_fraction < 1.0:
        raise ValueError(f"offset_fraction must be in [0, 1), got {offset_fraction}")
    n = len(scores)
    order = torch.sort(scores.detach().float().cpu(), descending=True, stable=True).indices
    offset = int(round(offset_fraction * n))
    keep = max(1, int(round(keep_fraction * n)))
    chosen = order[offset : offset + keep]
    if len(chosen) == 0:
        raise ValueError("offset_fraction leaves no examples to keep")
    return chosen
