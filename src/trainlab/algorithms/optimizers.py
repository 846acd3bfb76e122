"""Optimizer parts for Lion, Adan, LAMB, Shampoo and the learning-rate-free DoG, Prodigy,
D-Adaptation.

Each optimizer is an :class:`~trainlab.algorithms.recipe.OptimizerPart` (so ``lion+cosine``,
``adan+<any schedule>`` and so on resolve), and a named algorithm:

- ``lion``, ``adan``, ``lamb``, ``shampoo``: externally tuned recipes with linear warmup + cosine
  decay, like the baselines. Search spaces are workload-agnostic and log-scaled where the scale
  matters; defaults follow the papers' recommendations, adjusted for CPU-sized workloads.
- ``muon``: the same kind of recipe for Muon (hidden matrices) + AdamW (embeddings, head,
  biases, gains), its groups made by :func:`~trainlab.optim.muon_param_groups`.
- ``dog``, ``prodigy``, ``dadapt_adam``: **self-tuning** recipes (every hyperparameter fixed,
  empty search space), as learning-rate-free methods are studied in Kasimbeg et al., "How far
  away are truly hyperparameter-free learning algorithms?" (2024). Batch size 128, no label
  smoothing, schedule horizon 1x the workload's ``step_hint``, multiplier ``lr = 1``.

  * DoG runs at a constant multiplier without warmup, as in its paper.
  * Prodigy decays its multiplier with a cosine, as its authors recommend, after a short
    linear warmup with ``safeguard_warmup`` on (the warmup keeps the first steps, taken with
    the estimate ``d`` still growing, gentle; the safeguard keeps the small warmup multiplier
    out of the ``d`` estimate, as the authors advise when warming up).
  * D-Adaptation (Adam) uses the same schedule (it has no safeguard option).
- ``schedule_free_adamw``, ``schedule_free_sgd``: externally tuned, with **no** decaying
  schedule: the ``constant`` schedule part (its linear warmup, ``(step + 1) / warmup_steps``,
  gives the same iterates as the optimizers' own ``warmup_steps``, the averaging weights
  included). The recipe evaluates at the average ``x``: ``Recipe.prepare_for_eval`` calls
  ``optimizer.eval()`` and ``Recipe.update`` calls ``optimizer.train()``. Defaults: AdamW's
  are the authors' AlgoPerf self-tuning submission's (beta2 0.9955, weight decay 0.08) except
  the lr, 5e-3 instead of 2.5e-3 (steps to the class target, seed 0: mnist1d_mlp 2800 ->
  1000, digits_cnn 160 -> 100; 1e-2 was faster still on both but untried on charlm_gpt);
  SGD's (lr 1, the package's) reach digits_cnn's class target in 100 steps.
"""

from __future__ import annotations

from typing import Any

from trainlab.algorithms.recipe import (
    SCHEDULES,
    OptimizerPart,
    Recipe,
    SchedulePart,
    adam_betas,
    add_optimizer,
)
from trainlab.algorithms.schedule_parts import CONSTANT
from trainlab.optim import (
    LAMB,
    Adan,
    DAdaptAdam,
    DoG,
    Lion,
    Muon,
    Prodigy,
    Shampoo,
    muon_param_groups,
)
from trainlab.optim.schedule_free import ScheduleFreeAdamW, ScheduleFreeSGD
from trainlab.registry import register_algorithm
from trainlab.spec import Param, SearchSpace

# --------------------------------------------------------------------------------------------
# Search spaces

LION_SPACE = SearchSpace(
    (
        # sign updates move every coordinate by lr: 3-10x below AdamW's lr (Chen et al., 2023)
        Param("learning_rate", 1e-3, 1e-5, 1e-2, log=True),
        Param("beta1", 0.9, 0.8, 0.99),
        Param("one_minus_beta2", 1e-2, 1e-3, 1e-1, log=True, help="1 - beta2"),
        # ... and weight decay 3-10x above AdamW's, to keep lr * wd comparable
        Param("weight_decay", 0.1, 1e-4, 3.0, log=True),
    )
)

ADAN_SPACE = SearchSpace(
    (
        # its denominator also sees gradient differences, so steps are smaller than Adam's at
        # equal lr: the authors use peak lrs several times Adam's
        Param("learning_rate", 1e-2, 3e-4, 1e-1, log=True),
        # release convention: beta = 1 - the paper's beta; defaults (0.98, 0.92, 0.99)
        Param("one_minus_beta1", 2e-2, 5e-3, 2e-1, log=True, help="1 - beta1 (gradient)"),
        Param("one_minus_beta2", 8e-2, 1e-2, 3e-1, log=True, help="1 - beta2 (difference)"),
        Param("one_minus_beta3", 1e-2, 1e-3, 1e-1, log=True, help="1 - beta3 (second moment)"),
        Param("weight_decay", 2e-2, 1e-5, 0.5, log=True),
    )
)

LAMB_SPACE = SearchSpace(
    (
        # LAMB's lr is a relative step: each tensor moves by lr * ||p|| per step
        Param("learning_rate", 1e-2, 1e-4, 1e-1, log=True),
        Param("beta1", 0.9, 0.8, 0.99),
        Param("one_minus_beta2", 1e-2, 1e-3, 1e-1, log=True, help="1 - beta2"),
        Param("weight_decay", 1e-2, 1e-5, 0.5, log=True),
    )
)

SHAMPOO_SPACE = SearchSpace(
    (
        # grafted: every block moves by the norm of its Adam step, so AdamW's lr range applies
        Param("learning_rate", 3e-3, 1e-4, 3e-2, log=True),
        Param("beta1", 0.9, 0.8, 0.99),
        # one beta2 for the factor statistics and the Adam grafting, as in Shi et al.'s
        # AlgoPerf submission
        Param("one_minus_beta2", 1e-2, 1e-3, 1e-1, log=True, help="1 - beta2"),
        Param("weight_decay", 1e-2, 1e-5, 0.5, log=True),
        Param("epsilon", 1e-12, 1e-14, 1e-6, log=True, help="added to the factors' eigenvalues"),
        Param(
            "precondition_frequency",
            10,
            kind="choice",
            choices=(1, 10, 50, 100),
            help="steps between inverse-root recomputations (and the first preconditioned step)",
        ),
    )
)

MUON_SPACE = SearchSpace(
    (
        # Muon's steps have spectral norm ~lr: the release uses 0.02 (0.05 in the speedrun)
        Param("learning_rate", 0.02, 1e-3, 0.2, log=True, help="Muon's, for hidden matrices"),
        Param("momentum", 0.95, 0.8, 0.99),
        Param("weight_decay", 0.0, 0.0, 0.5, help="decoupled, hidden matrices only"),
        # AdamW for embeddings, the output head, biases and gains
        Param("adam_learning_rate", 3e-3, 1e-4, 3e-2, log=True, help="AdamW's, for the rest"),
    )
)

DOG_SPACE = SearchSpace(
    (
        Param("learning_rate", 1.0, 0.1, 10.0, log=True, help="DoG's multiplier c; 1 in the paper"),
        Param("reps_rel", 1e-6, 1e-8, 1e-2, log=True, help="initial movement / (1 + ||x0||)"),
        Param("weight_decay", 0.0, 0.0, 1e-2, help="coupled (L2), as in the authors' release"),
    )
)

PRODIGY_SPACE = SearchSpace(
    (
        Param("learning_rate", 1.0, 0.1, 10.0, log=True, help="multiplier of the estimated d"),
        Param("beta1", 0.9, 0.8, 0.99),
        Param("one_minus_beta2", 1e-2, 1e-3, 1e-1, log=True, help="1 - beta2"),
        Param("d_coef", 1.0, 0.1, 10.0, log=True, help="scales the estimate of d"),
        Param("weight_decay", 0.0, 0.0, 0.5, help="decoupled, at rate d * lr"),
        Param("safeguard_warmup", True, kind="choice", choices=(False, True)),
    )
)

DADAPT_ADAM_SPACE = SearchSpace(
    (
        Param("learning_rate", 1.0, 0.1, 10.0, log=True, help="multiplier of the estimated d"),
        Param("beta1", 0.9, 0.8, 0.99),
        Param("one_minus_beta2", 1e-2, 1e-3, 1e-1, log=True, help="1 - beta2"),
        Param("d_coef", 1.0, 0.1, 10.0, log=True, help="scales the estimate of d"),
        Param("weight_decay", 0.0, 0.0, 0.5, help="decoupled, at rate d * lr"),
    )
)


# --------------------------------------------------------------------------------------------
# Optimizer parts


def _lion(groups: list[dict], hp: dict[str, Any]) -> Lion:
    return Lion(
        groups,
        lr=hp["learning_rate"],
        betas=adam_betas(hp),
        weight_decay=hp["weight_decay"],
    )


def _adan(groups: list[dict], hp: dict[str, Any]) -> Adan:
    betas = tuple(1.0 - hp[f"one_minus_beta{i}"] for i in (1, 2, 3))
    return Adan(groups, lr=hp["learning_rate"], betas=betas, weight_decay=hp["weight_decay"])


def _lamb(groups: list[dict], hp: dict[str, Any]) -> LAMB:
    return LAMB(
        groups,
        lr=hp["learning_rate"],
        betas=adam_betas(hp),
        weight_decay=hp["weight_decay"],
    )


def _shampoo(groups: list[dict], hp: dict[str, Any]) -> Shampoo:
    return Shampoo(
        groups,
        lr=hp["learning_rate"],
        betas=adam_betas(hp),
        epsilon=hp["epsilon"],
        weight_decay=hp["weight_decay"],
        precondition_frequency=int(hp["precondition_frequency"]),
    )


def _muon(groups: list[dict], hp: dict[str, Any]) -> Muon:
    # groups from muon_param_groups: [hidden matrices, embeddings + head, biases + gains]
    for group in groups:
        if group.get("use_muon") is False:
            group["lr"] = hp["adam_learning_rate"]
        else:  # also plain (decay, no_decay) groups: routed by shape, at Muon's lr
            group["lr"] = hp["learning_rate"]
            if group.get("use_muon") or "weight_decay" not in group:
                group["weight_decay"] = hp["weight_decay"]
    return Muon(groups, momentum=hp["momentum"], betas=(0.9, 0.95))


def _dog(groups: list[dict], hp: dict[str, Any]) -> DoG:
    return DoG(
        groups, lr=hp["learning_rate"], reps_rel=hp["reps_rel"], weight_decay=hp["weight_decay"]
    )


def _prodigy(groups: list[dict], hp: dict[str, Any]) -> Prodigy:
    return Prodigy(
        groups,
        lr=hp["learning_rate"],
        betas=adam_betas(hp),
        d_coef=hp["d_coef"],
        weight_decay=hp["weight_decay"],
        safeguard_warmup=bool(hp["safeguard_warmup"]),
    )


def _dadapt_adam(groups: list[dict], hp: dict[str, Any]) -> DAdaptAdam:
    return DAdaptAdam(
        groups,
        lr=hp["learning_rate"],
        betas=adam_betas(hp),
        d_coef=hp["d_coef"],
        weight_decay=hp["weight_decay"],
    )


LION = add_optimizer(OptimizerPart("lion", LION_SPACE, _lion, "Lion (Chen et al., 2023)"))
ADAN = add_optimizer(OptimizerPart("adan", ADAN_SPACE, _adan, "Adan (Xie et al., 2022)"))
LAMB_PART = add_optimizer(OptimizerPart("lamb", LAMB_SPACE, _lamb, "LAMB (You et al., 2019)"))
SHAMPOO = add_optimizer(
    OptimizerPart(
        "shampoo",
        SHAMPOO_SPACE,
        _shampoo,
        "Shampoo with Adam grafting (Gupta et al., 2018; Shi et al., 2023)",
    )
)
MUON = add_optimizer(
    OptimizerPart(
        "muon",
        MUON_SPACE,
        _muon,
        "Muon for hidden matrices, AdamW for the rest (Jordan et al., 2024)",
        groups=muon_param_groups,
    )
)
DOG = add_optimizer(
    OptimizerPart("dog", DOG_SPACE, _dog, "DoG, learning-rate-free SGD (Ivgi et al., 2023)")
)
PRODIGY = add_optimizer(
    OptimizerPart(
        "prodigy",
        PRODIGY_SPACE,
        _prodigy,
        "Prodigy, learning-rate-free Adam (Mishchenko & Defazio, 2023)",
    )
)
DADAPT_ADAM = add_optimizer(
    OptimizerPart(
        "dadapt_adam",
        DADAPT_ADAM_SPACE,
        _dadapt_adam,
        "D-Adaptation Adam, learning-rate-free (Defazio & Mishchenko, 2023)",
    )
)

for _part in (LION, ADAN, LAMB_PART, SHAMPOO, MUON):
    register_algorithm(
        _part.name,
        lambda part=_part: Recipe(part, SCHEDULES["cosine"], name=part.name),
    )


# --------------------------------------------------------------------------------------------
# Self-tuning recipes

COMMON_FIXED = {"batch_size": "auto", "label_smoothing": 0.0, "horizon": 1.0}
# no warmup: DoG's first steps are already tiny (r_eps) and grow with the distance travelled
DOG_FIXED = {"learning_rate": 1.0, "reps_rel": 1e-6, "weight_decay": 0.0, "warmup_fraction": 0.0}
PRODIGY_FIXED = {
    "learning_rate": 1.0,
    "beta1": 0.9,
    "one_minus_beta2": 1e-2,
    "d_coef": 1.0,
    "weight_decay": 0.0,
    "safeguard_warmup": True,
    "warmup_fraction": 0.05,
}
DADAPT_ADAM_FIXED = {
    "learning_rate": 1.0,
    "beta1": 0.9,
    "one_minus_beta2": 1e-2,
    "d_coef": 1.0,
    "weight_decay": 0.0,
    "warmup_fraction": 0.05,
}


def _self_tuning(
    name: str, part: OptimizerPart, schedule: SchedulePart, fixed: dict[str, Any]
) -> Recipe:
    # every hyperparameter is fixed; a schedule part from another module keeps its defaults
    pinned = {**schedule.space.defaults(), **COMMON_FIXED, **fixed}
    recipe = Recipe(part, schedule, name=name, fixed=pinned)
    assert recipe.self_tuning, f"{name}: unfixed hyperparameters {recipe.search_space.names}"
    return recipe


@register_algorithm("dog")
def dog_algorithm() -> Recipe:
    # DoG's paper runs at a constant multiplier
    return _self_tuning("dog", DOG, CONSTANT, DOG_FIXED)


@register_algorithm("prodigy")
def prodigy_algorithm() -> Recipe:
    return _self_tuning("prodigy", PRODIGY, SCHEDULES["cosine"], PRODIGY_FIXED)


@register_algorithm("dadapt_adam")
def dadapt_adam_algorithm() -> Recipe:
    return _self_tuning("dadapt_adam", DADAPT_ADAM, SCHEDULES["cosine"], DADAPT_ADAM_FIXED)


# --------------------------------------------------------------------------------------------
# Schedule-free (Defazio et al., 2024): no decaying schedule, evaluated at the average x

SF_ADAMW_SPACE = SearchSpace(
    (
        Param("learning_rate", 5e-3, 3e-4, 3e-2, log=True),
        Param("beta1", 0.9, 0.7, 0.98, help="interpolation between z and x (momentum's part)"),
        Param("one_minus_beta2", 4.5e-3, 1e-3, 1e-1, log=True, help="1 - beta2"),
        Param("weight_decay", 0.08, 1e-5, 0.5, log=True, help="decoupled, taken at y"),
    )
)

SF_SGD_SPACE = SearchSpace(
    (
        # the step on y is about (1 - momentum) * lr: lrs far above plain SGD's
        Param("learning_rate", 1.0, 0.05, 20.0, log=True),
        Param("momentum", 0.9, 0.7, 0.98, help="interpolation between z and x"),
        Param("weight_decay", 5e-4, 1e-6, 1e-2, log=True, help="taken at y"),
    )
)


def _schedule_free_adamw(groups: list[dict], hp: dict[str, Any]) -> ScheduleFreeAdamW:
    return ScheduleFreeAdamW(
        groups, lr=hp["learning_rate"], betas=adam_betas(hp), weight_decay=hp["weight_decay"]
    )


def _schedule_free_sgd(groups: list[dict], hp: dict[str, Any]) -> ScheduleFreeSGD:
    return ScheduleFreeSGD(
        groups, lr=hp["learning_rate"], momentum=hp["momentum"], weight_decay=hp["weight_decay"]
    )


SF_ADAMW = add_optimizer(
    OptimizerPart(
        "schedule_free_adamw",
        SF_ADAMW_SPACE,
        _schedule_free_adamw,
        "Schedule-Free AdamW (Defazio et al., 2024)",
    )
)
SF_SGD = add_optimizer(
    OptimizerPart(
        "schedule_free_sgd",
        SF_SGD_SPACE,
        _schedule_free_sgd,
        "Schedule-Free SGD (Defazio et al., 2024)",
    )
)

for _part in (SF_ADAMW, SF_SGD):
    register_algorithm(
        _part.name,
        lambda part=_part: Recipe(part, CONSTANT, name=part.name),
    )
