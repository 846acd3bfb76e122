"""Structured pruning by Only-Train-Once / HESSO: zero-invariant groups from the model's graph
(:mod:`.groups`), the HESSO optimizer (:mod:`.hesso`) and the compact sub-network
(:mod:`.compact`)."""

from trainlab.methods.structured.compact import compact_model, zero_groups
from trainlab.methods.structured.groups import (
    GraphPartitionError,
    Slice,
    ZeroInvariantGroup,
    ZIGPartition,
    zero_invariant_groups,
)
from trainlab.methods.structured.hesso import HESSO, saliency_scores

__all__ = [
    "HESSO",
    "GraphPartitionError",
    "Slice",
    "ZIGPartition",
    "ZeroInvariantGroup",
    "compact_model",
    "saliency_scores",
    "zero_groups",
    "zero_invariant_groups",
]
