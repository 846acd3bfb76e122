"""Transitional: ``averaging.py`` still imports its helpers from here. Delete this module at
merge, once it imports ``NadamwCosineMethod`` and ``derived_seed`` from
:mod:`trainlab.algorithms._common` and reads ``state.seed`` / ``state.batch_size`` instead of
``state.extra``. Registers nothing.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from trainlab.algorithms import _common
from trainlab.algorithms._common import derived_seed
from trainlab.spec import Workload

__all__ = ["NadamwCosineMethod", "derived_seed"]


class NadamwCosineMethod(_common.NadamwCosineMethod):
    """The shared base plus the two legacy ``extra`` entries ``averaging.py`` reads."""

    def make_state(
        self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int, /, **fields: Any
    ) -> _common.MethodState:
        state = super().make_state(workload, model, hp, seed, **fields)
        state.extra.update(seed=state.seed, batch_size=state.batch_size)
        return state
