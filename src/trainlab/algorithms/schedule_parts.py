"""Schedule parts for composed recipes: ``OPT+SCHED`` for the schedules of
:mod:`trainlab.schedules`.

A part's name is the name of the schedule function it uses (``constant``, ``step_decay``,
``linear_decay``, ``one_cycle``, ``inverse_sqrt``, ``rex``, ``wsd``, ``infinite``; the baseline
``cosine`` part in :mod:`trainlab.algorithms.recipe` uses ``warmup_cosine``). Each part maps
a recipe's hyperparameters to one of those pure functions over
``total = horizon * step_hint`` updates, so ``-a nadamw+rex``, ``-a lion+wsd`` and so on
resolve through :func:`trainlab.algorithms.recipe.resolve_composed`. Fractions are of
``total``; the warmup is linear, ``(step + 1) / warmup_steps``, and defaults to 5 % of the
budget wherever the schedule takes one (the ``cosine`` baseline's default, so composed
recipes differ from the baselines only in the shape under study). ``one_cycle`` has its own
warm-up phase: the paper's three-phase shape with the cycle over 90 % of the budget
(``pct_start=0.45``) and a tenfold range; a short cycle leaves most of the budget to the
annihilation phase and trains too little (measured on mnist1d_mlp).
"""

from __future__ import annotations

from trainlab import schedules
from trainlab.algorithms.recipe import SchedulePart, add_schedule
from trainlab.spec import Param, SearchSpace

WARMUP = Param("warmup_fraction", 0.05, 0.0, 0.3, help="linear warmup, fraction of the budget")


def _warmup_steps(hp: dict, total: int) -> int:
    return round(hp["warmup_fraction"] * total)


def _after_warmup(schedule, **fixed):
    """A factor: linear warmup, then ``schedule`` over the rest of the budget."""

    def factor(step: int, total: int, hp: dict) -> float:
        return schedules.linear_warmup(step, total, _warmup_steps(hp, total), schedule, **fixed)

    return factor


CONSTANT = add_schedule(
    SchedulePart(
        "constant",
        SearchSpace((WARMUP,)),
        _after_warmup(schedules.constant),
        "linear warmup then a constant learning rate",
    )
)

add_schedule(
    SchedulePart(
        "step_decay",
        SearchSpace((WARMUP, Param("gamma", 0.1, 0.01, 0.5, log=True, help="decay per step"))),
        lambda step, total, hp: schedules.linear_warmup(
            step,
            total,
            _warmup_steps(hp, total),
            schedules.step_decay,
            milestones=(0.5, 0.75),
            gamma=hp["gamma"],
        ),
        "linear warmup then step decay by gamma at 50 % and 75 % of the rest",
    )
)

add_schedule(
    SchedulePart(
        "linear_decay",
        SearchSpace((WARMUP,)),
        _after_warmup(schedules.linear_decay),
        "linear warmup then linear decay to zero",
    )
)

add_schedule(
    SchedulePart(
        "one_cycle",
        SearchSpace(
            (
                Param("pct_start", 0.45, 0.2, 0.45, help="fraction of the budget spent rising"),
                Param("div_factor", 10.0, 3.0, 100.0, log=True, help="peak / starting lr"),
            )
        ),
        lambda step, total, hp: schedules.one_cycle(
            step, total, pct_start=hp["pct_start"], div_factor=hp["div_factor"]
        ),
        "1cycle (Smith & Topin): linear up, down, then annihilation to 1e-4 of the start",
    )
)

add_schedule(
    SchedulePart(
        "inverse_sqrt",
        SearchSpace(
            (
                WARMUP,
                Param("cooldown_fraction", 0.0, 0.0, 0.5, help="final linear cooldown to zero"),
            )
        ),
        lambda step, total, hp: schedules.inverse_sqrt(
            step,
            total,
            warmup_steps=_warmup_steps(hp, total),
            cooldown_steps=round(hp["cooldown_fraction"] * total),
        ),
        "linear warmup then inverse-square-root decay (optional linear cooldown)",
    )
)

add_schedule(
    SchedulePart(
        "rex",
        SearchSpace((WARMUP,)),
        _after_warmup(schedules.rex),
        "linear warmup then REX decay (Chen et al.)",
    )
)

add_schedule(
    SchedulePart(
        "wsd",
        SearchSpace(
            (
                WARMUP,
                Param("decay_fraction", 0.2, 0.05, 0.6, help="cooldown, fraction of the budget"),
                Param("shape", "1-sqrt", kind="choice", choices=("linear", "cosine", "1-sqrt")),
            )
        ),
        lambda step, total, hp: schedules.wsd(
            step,
            total,
            warmup_steps=_warmup_steps(hp, total),
            decay_steps=round(hp["decay_fraction"] * total),
            shape=hp["shape"],
        ),
        "warmup-stable-decay (Hägele et al.) with a linear, cosine or 1-sqrt cooldown",
    )
)


def _infinite(step: int, total: int, hp: dict) -> float:
    # the phases may not overlap: the annealing gives way when the fractions add up past 1
    warmup = _warmup_steps(hp, total)
    cooldown = min(round(hp["cooldown_fraction"] * total), total - warmup)
    anneal = min(round(hp["anneal_fraction"] * total), total - warmup - cooldown)
    return schedules.infinite(
        step,
        total,
        warmup_steps=warmup,
        cooldown_steps=cooldown,
        anneal_steps=anneal,
        constant_factor=hp["constant_factor"],
        min_factor=0.01 * hp["constant_factor"],
    )


add_schedule(
    SchedulePart(
        "infinite",
        SearchSpace(
            (
                WARMUP,
                Param("cooldown_fraction", 0.2, 0.05, 0.4, help="cosine cooldown to constant"),
                Param("constant_factor", 0.3, 0.05, 0.8, log=True, help="constant phase lr"),
                Param("anneal_fraction", 0.2, 0.05, 0.4, help="final exponential annealing"),
            )
        ),
        lambda step, total, hp: _infinite(step, total, hp),
        "infinite schedule: warmup, cosine cooldown, constant, exponential annealing to 1 %",
    )
)
