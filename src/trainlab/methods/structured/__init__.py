"""Structured pruning by Only-Train-Once / HESSO: zero-invariant groups from the model's graph
(:mod:`.groups`), the HESSO optimizer (:mod:`.hesso`) and the compact sub-network
(:mod:`.compact`)."""

from trainlab.methods.structured.groups import (
    GraphPartitionError,
    Slice,
    ZeroInvariantGroup,
    ZIGPartition,
    zero_invariant_groups,
)

__all__ = [
    "GraphPartitionError",
    "Slice",
    "ZIGPartition",
    "ZeroInvariantGroup",
    "zero_invariant_groups",
]
