"""Unstructured sparse training: GMP (Zhu & Gupta (2017)), RigL (Evci et al. (2020)) and GraNet
(Liu et al. (2021)), each an object that wraps a model and is called after ``optimizer.step()``
(see :mod:`trainlab.methods.sparse.sparsifier` for the contract), and the mask helpers they
share (:mod:`trainlab.methods.sparse.masks`: which weights, ERK densities, magnitude pruning,
drop-and-grow, zeros kept through optimizer steps).

>>> from trainlab.methods.sparse import GMP, RigL, GraNet, erk_densities

Masks are applied by value: a sparse model is the dense model with zeros, so it has the
workload's architecture and runs at dense speed (unstructured zeros do not make dense kernels
faster).
"""

from trainlab.methods.sparse.gmp import GMP, gmp_sparsity, pruning_steps
from trainlab.methods.sparse.granet import GraNet, regeneration_fraction
from trainlab.methods.sparse.masks import (
    Masks,
    drop_and_grow,
    erk_densities,
    magnitude_prune,
    random_masks,
    sparsifiable_weights,
    uniform_densities,
)
from trainlab.methods.sparse.rigl import RigL, rigl_drop_fraction
from trainlab.methods.sparse.sparsifier import Sparsifier

__all__ = [
    "GMP",
    "gmp_sparsity",
    "pruning_steps",
    "RigL",
    "rigl_drop_fraction",
    "GraNet",
    "regeneration_fraction",
    "Sparsifier",
    "Masks",
    "sparsifiable_weights",
    "erk_densities",
    "uniform_densities",
    "random_masks",
    "magnitude_prune",
    "drop_and_grow",
]
