"""The compact dense sub-network of a group-sparse model (OTOv2, Sec. 3.3 "sub-network
construction").

After HESSO, some zero-invariant groups are exactly zero. :func:`compact_model` removes them:
it exports the model (eval mode, symbolic batch), finds its groups again
(:mod:`trainlab.methods.structured.groups`), slices every parameter and buffer to the entries
of the remaining groups (producer rows, BatchNorm entries, consumer columns, RNN gate rows and
recurrent columns, attention heads) and rewrites the shape constants of the graph (``view`` /
``reshape`` sizes, an RNN's initial state) to the new widths, which the label tensors of the
walk give for every dimension. The result is a :class:`torch.fx.GraphModule` with smaller
dense layers: the same function as the group-sparse model (to float rounding) at fewer
FLOPs, for inference (BatchNorm uses its running statistics; the graph is fixed in eval mode).

Example::

    compact = compact_model(model, (example_batch,))   # after training with HESSO
    logits = compact(batch)                            # any batch size
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import Tensor, nn

from trainlab.methods.structured.groups import (
    ZIGPartition,
    analyse,
    export_model,
    partition_from,
)

aten = torch.ops.aten

#: graph ops whose shape argument is rewritten, with the position of that argument
_SHAPE_ARG = {
    aten.view.default: 1,
    aten.reshape.default: 1,
    aten._unsafe_view.default: 1,
    aten.expand.default: 1,
    aten.zeros.default: 0,
    aten.ones.default: 0,
    aten.full.default: 0,
    aten.empty.memory_format: 0,
}


def zero_groups(model: nn.Module, partition: ZIGPartition, atol: float = 0.0) -> list[int]:
    """Indices of the groups whose producer entries are all zero (``|x| <= atol``)."""
    params = dict(model.named_parameters(remove_duplicate=False))
    out = []
    for i, group in enumerate(partition.groups):
        if all(
            bool((params[s.name].detach().index_select(s.dim, _idx(s.index)).abs() <= atol).all())
            for s in group.out_slices()
        ):
            out.append(i)
    return out


def _idx(index) -> Tensor:
    return torch.as_tensor(index, dtype=torch.long)


def removed_entries(partition: ZIGPartition, removed) -> dict[tuple[str, int], set[int]]:
    """``(name, dim) -> indices`` removed with the groups ``removed`` (indices into
    ``partition.groups``): producer and consumer entries, parameters and buffers."""
    out: dict[tuple[str, int], set[int]] = defaultdict(set)
    for i in removed:
        for s in partition.groups[i].slices:
            out[(s.name, s.dim)].update(s.index)
    return out


def _set_attr(root: nn.Module, target: str, value: Tensor) -> None:
    owner, _, attr = target.rpartition(".")
    module = root.get_submodule(owner) if owner else root
    if isinstance(getattr(module, attr), nn.Parameter):
        setattr(module, attr, nn.Parameter(value, requires_grad=True))
    else:
        module.register_buffer(attr, value)


def compact_model(model: nn.Module, example_inputs: tuple, atol: float = 0.0) -> nn.Module:
    """The dense sub-network of ``model`` without its zero groups (OTOv2's sub-network
    construction, Chen et al., ICLR 2023; see the module docstring).

    ``example_inputs``: a tuple of input tensors, batch first (at least 2 examples); the
    returned module accepts any batch size. ``atol``: a group counts as zero when every
    producer entry has ``|x| <= atol``. The family rule of HESSO (one group per layer kept)
    keeps every layer non-empty; a model whose groups of one layer are all zero is refused.
    Raises :class:`trainlab.methods.structured.GraphPartitionError` as
    :func:`zero_invariant_groups` does.
    """
    example_inputs = tuple(example_inputs)
    gm = export_model(model, example_inputs)
    walker = analyse(gm, example_inputs)
    partition = partition_from(walker)
    removed = zero_groups(gm, partition, atol)
    families = defaultdict(list)
    for i, g in enumerate(partition.groups):
        families[g.family].append(i)
    dead = set(removed)
    for family, members in families.items():
        if all(i in dead for i in members):
            raise ValueError(f"every group of {family} is zero: the layer would be removed")
    entries = removed_entries(partition, removed)
    with torch.no_grad():
        tensors = dict(gm.named_parameters(remove_duplicate=False))
        tensors.update(dict(gm.named_buffers(remove_duplicate=False)))
        for name, tensor in tensors.items():
            value = tensor.detach()
            for dim in range(value.dim()):
                gone = entries.get((name, dim))
                if gone:
                    keep = [i for i in range(value.shape[dim]) if i not in gone]
                    value = value.index_select(dim, _idx(keep))
            if value.shape != tensor.shape:
                _set_attr(gm, name, value.clone())
    _rewrite_shapes(gm, walker, partition, removed)
    # a plain GraphModule (the exported one refuses train()/eval(), which evaluation calls)
    compact = torch.fx.GraphModule(gm, gm.graph, class_name=f"Compact{type(model).__name__}")
    return compact.eval()


def _removed_labels(walker, removed) -> Tensor:
    """Boolean per label: its group is removed."""
    lab = walker.lab
    roots = {walker.group_roots[i] for i in removed}
    return torch.tensor([lab.find(i) in roots for i in range(len(lab.parent))] + [False])


def _rewrite_shapes(gm, walker, partition: ZIGPartition, removed) -> None:
    if not removed:
        return
    flags = _removed_labels(walker, removed)
    for node in gm.graph.nodes:
        if node.op != "call_function" or node.target not in _SHAPE_ARG:
            continue
        labels = walker.zero_shape.get(node)
        if labels is None:
            labels = walker.labels.get(node)
        if not isinstance(labels, Tensor):
            continue
        gone = flags[labels.clamp(min=0)] & (labels >= 0)
        pos = _SHAPE_ARG[node.target]
        sizes = list(node.args[pos])
        for dim in range(labels.dim()):
            moved = gone.movedim(dim, 0).reshape(labels.shape[dim], -1)
            dropped = int(moved.all(dim=1).sum())
            if dropped and isinstance(sizes[dim], int) and sizes[dim] >= 0:
                sizes[dim] -= dropped
        args = list(node.args)
        args[pos] = sizes
        node.args = tuple(args)
