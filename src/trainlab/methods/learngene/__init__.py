"""Learngene: inherit a compact part of a trained ancestor to initialise models of many sizes.

Two methods of Xia et al., both trained by soft distillation from an ancestor
(:mod:`~trainlab.methods.learngene.distill`):

* :mod:`~trainlab.methods.learngene.tleg` (TLEG, "Transformer as Linear Expansion of
  Learngene", AAAI 2024): block ``l`` of ``L`` is ``theta_A + (l / L) theta_B``;
* :mod:`~trainlab.methods.learngene.sws` (SWS, "Exploring Learngene via Stage-wise Weight
  Sharing", IJCAI 2024): one shared layer per stage, repeated to any stage depth.

Each module has ``make_auxiliary`` (stage 1's model) and ``initialize_descendant`` (stage 2).
"""

from trainlab.methods.learngene import sws, tleg
from trainlab.methods.learngene.distill import (
    LearngeneError,
    distillation_loss,
    soft_distillation,
)
from trainlab.methods.learngene.tleg import LinearExpansion, expansion_coefficient

__all__ = [
    "LearngeneError",
    "LinearExpansion",
    "distillation_loss",
    "expansion_coefficient",
    "soft_distillation",
    "sws",
    "tleg",
]
