"""Build an optimizer by name, with timm's rule of no weight decay on biases and norm gains."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from trainlab.optim.adan import Adan
from trainlab.optim.dadapt_adam import DAdaptAdam
from trainlab.optim.dog import DoG
from trainlab.optim.lamb import LAMB
from trainlab.optim.lion import Lion
from trainlab.optim.muon import Muon
from trainlab.optim.nadamw import NAdamW
from trainlab.optim.prodigy import Prodigy
from trainlab.optim.schedule_free import ScheduleFreeAdamW, ScheduleFreeSGD
from trainlab.optim.sgdw import SGDW
from trainlab.optim.shampoo import Shampoo
from trainlab.spec import TrainlabError

# canonical name -> class; lookup ignores case, "-" and "_" ("dadapt_adam" == "DAdaptAdam")
_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "nadamw": NAdamW,
    "sgdw": SGDW,
    "lion": Lion,
    "adan": Adan,
    "lamb": LAMB,
    "dog": DoG,
    "prodigy": Prodigy,
    "dadapt_adam": DAdaptAdam,
    "shampoo": Shampoo,
    "muon": Muon,
    "schedule_free_adamw": ScheduleFreeAdamW,
    "schedule_free_sgd": ScheduleFreeSGD,
}


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


_BY_KEY = {_key(name): cls for name, cls in _OPTIMIZERS.items()}


def param_groups(model: nn.Module, weight_decay: float | None = None) -> list[dict]:
    """The model's trainable parameters in two groups: those with ``ndim >= 2`` (weight
    matrices, convolution kernels, embeddings), which decay, and the rest (biases,
    normalization gains and shifts), which do not (``weight_decay=0.0``).

    Decaying a bias or a norm gain pulls it towards 0, which changes what the layer can
    represent rather than regularizing it; timm, BERT's and most recipes exempt them
    (the rule is only the ndim, so a 1-d parameter that should decay needs a group of its
    own). ``weight_decay=None`` leaves it out of the first group, so the optimizer's default
    applies. Parameters with ``requires_grad=False`` are left out. Either group may be empty.

    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    >>> decay, no_decay = param_groups(model, weight_decay=0.05)
    >>> [tuple(p.shape) for p in decay["params"]], decay["weight_decay"]
    ([(8, 4), (2, 8)], 0.05)
    >>> len(no_decay["params"]), no_decay["weight_decay"]
    (4, 0.0)
    """
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    first: dict = {"params": decay}
    if weight_decay is not None:
        first["weight_decay"] = weight_decay
    return [first, {"params": no_decay, "weight_decay": 0.0}]


def create_optimizer(
    model_or_params: nn.Module | Iterable[Tensor] | Iterable[dict], name: str, **kwargs
) -> torch.optim.Optimizer:
    """The optimizer called ``name`` (any trainlab optimizer, or torch's ``adamw`` and
    ``sgd``), built with torch-style keyword arguments (``lr``, ``betas``, ``weight_decay``,
    ``eps``, ``momentum``, ...: those of its class, passed through unchanged).

    Given an ``nn.Module``, the parameters are split by :func:`param_groups`: weights decay
    at ``weight_decay`` (the class default if not given), biases and norm gains do not.
    Given parameters or group dicts, they are used as they are. The name ignores case,
    ``-`` and ``_``.

    Raises ``trainlab.spec.TrainlabError`` (one line, listing the known names) for an unknown
    name; the class's own ``TypeError``/``ValueError`` for bad arguments.

    >>> import torch
    >>> model = torch.nn.Linear(3, 1)
    >>> opt = create_optimizer(model, "lion", lr=3e-4, weight_decay=0.1)
    >>> type(opt).__name__, [g["weight_decay"] for g in opt.param_groups]
    ('Lion', [0.1, 0.0])
    >>> create_optimizer(model.parameters(), "AdamW", lr=1e-3).defaults["lr"]
    0.001
    """
    cls = _BY_KEY.get(_key(name))
    if cls is None:
        raise TrainlabError(f"unknown optimizer {name!r}; known: {', '.join(sorted(_OPTIMIZERS))}")
    if isinstance(model_or_params, nn.Module):
        params = param_groups(model_or_params, kwargs.get("weight_decay"))
    else:
        params = model_or_params
    return cls(params, **kwargs)
