"""The four AlgoPerf baselines: AdamW, NAdamW, SGD with Nesterov momentum, heavy-ball momentum.

Each is a :class:`~trainlab.algorithms.recipe.Recipe` with linear warmup + cosine decay over
the workload's ``step_hint`` (times ``horizon``), decoupled weight decay and label smoothing
where the loss is cross-entropy. Search spaces are workload-agnostic and log-scaled where the
scale matters (after AlgoPerf's baseline search spaces, narrowed to the ranges that make sense
for CPU-sized workloads).
"""

from __future__ import annotations

import torch

from trainlab.algorithms.recipe import SCHEDULES, OptimizerPart, Recipe, adam_betas, add_optimizer
from trainlab.optim import SGDW, NAdamW
from trainlab.registry import register_algorithm
from trainlab.spec import Param, SearchSpace

ADAM_SPACE = SearchSpace(
    (
        Param("learning_rate", 3e-3, 1e-4, 3e-2, log=True),
        Param("beta1", 0.9, 0.8, 0.99),
        Param("one_minus_beta2", 1e-2, 1e-3, 1e-1, log=True, help="1 - beta2"),
        Param("weight_decay", 1e-2, 1e-5, 0.5, log=True),
    )
)

SGD_SPACE = SearchSpace(
    (
        Param("learning_rate", 5e-2, 1e-3, 1.0, log=True),
        Param("one_minus_momentum", 0.1, 0.01, 0.3, log=True, help="1 - momentum"),
        Param("weight_decay", 5e-4, 1e-6, 1e-2, log=True),
    )
)


def _adam_kwargs(hp: dict) -> dict:
    return dict(
        lr=hp["learning_rate"],
        betas=adam_betas(hp),
        weight_decay=hp["weight_decay"],
    )


ADAMW = add_optimizer(
    OptimizerPart(
        "adamw",
        ADAM_SPACE,
        lambda groups, hp: torch.optim.AdamW(groups, foreach=True, **_adam_kwargs(hp)),
        "AdamW (Loshchilov & Hutter, 2019)",
    )
)
NADAMW = add_optimizer(
    OptimizerPart(
        "nadamw", ADAM_SPACE, lambda groups, hp: NAdamW(groups, **_adam_kwargs(hp)), "NAdamW"
    )
)


def _sgd(nesterov: bool):
    def build(groups: list[dict], hp: dict) -> torch.optim.Optimizer:
        return SGDW(
            groups,
            lr=hp["learning_rate"],
            momentum=1.0 - hp["one_minus_momentum"],
            nesterov=nesterov,
            # the search space's weight_decay is per unit learning rate (decay lr_t * wd per
            # step, as the tuned targets were set); SGDW's lambda is scaled by eta_t alone
            weight_decay=hp["learning_rate"] * hp["weight_decay"],
        )

    return build


NESTEROV = add_optimizer(
    OptimizerPart("nesterov", SGD_SPACE, _sgd(True), "SGD with Nesterov momentum (SGDW)")
)
HEAVYBALL = add_optimizer(
    OptimizerPart("heavyball", SGD_SPACE, _sgd(False), "SGD with heavy-ball momentum (SGDW)")
)

#: the four baseline names, in the order reports list them (the one definition of the list)
BASELINES: tuple[str, ...] = tuple(p.name for p in (ADAMW, NADAMW, NESTEROV, HEAVYBALL))

for _part in (ADAMW, NADAMW, NESTEROV, HEAVYBALL):
    register_algorithm(
        _part.name,
        lambda part=_part: Recipe(part, SCHEDULES["cosine"], name=part.name),
    )
