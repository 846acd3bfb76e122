"""Zero-invariant groups (ZIGs) of a model's parameters, derived from its graph.

Chen et al., "OTOv2: Automatic, Generic, User-Friendly" (ICLR 2023), Sec. 3: a *zero-invariant
group* is a set of parameter entries such that, once they are all zero, the structure they
belong to (a channel, hidden unit or attention head) outputs exactly zero whatever the input,
so it and the entries that read it can be removed without changing the model's function.

How trainlab finds them. The model is exported with :func:`torch.export.export` (eval mode, a
symbolic batch dimension) and its graph is run once on the example inputs with every
activation shadowed by an integer *label tensor* of the same shape: label ``i >= 0`` says
"this entry is channel ``i``", ``-1`` "no prunable channel". Then, op by op:

* ``linear`` / ``conv{1,2,3}d`` (``groups=1``) / ``embedding`` / ``gru`` / ``lstm`` create one
  new channel per output feature (hidden unit for the RNNs); its *producer* entries are the
  weight row (RNN: the row of every gate, in ``weight_ih`` and ``weight_hh``) and bias entry;
  the input columns they read become *consumer* entries of the channels labelled there (a
  ``flatten`` before a ``linear`` hands a channel all its columns).
* ``batch_norm`` adds its weight, bias and running statistics at each channel (its output is
  zero when the channel's conv row and these are zero, in both modes).
* ``scaled_dot_product_attention`` joins the q, k and v channels of each head into one
  channel set: a head whose q, k, v rows are zero outputs exactly zero (its value rows are
  zero), so the head and the output projection's columns that read it are one group.
* element-wise ops with ``f(0) = 0`` (relu, gelu, tanh, silu, dropout, scaling) and pooling
  pass labels through; ``add``/``mul`` of two labelled tensors join the labels that meet
  (a residual stream is one coupled set); shape ops (view, reshape, permute, transpose,
  flatten, unbind) are run on the label tensor itself, so a channel is followed through any
  reshaping, e.g. the ``[b, t, 3 * heads * head_dim]`` qkv output viewed per head.

Channels that end up in one set form one group. A set is *not prunable* (left out, and said in
:attr:`ZIGPartition.blocked`) when it reaches the model's output, when a ``layer_norm`` /
``group_norm`` normalises across it (removing a feature would change the others' mean and
variance: the GPT's residual stream, whose width trainlab therefore keeps), when it is added
to a constant or sliced, or when any op not in the tables above reads it (``sigmoid``, with
``f(0) != 0``, a reduction such as RMSNorm's ``mean``, ``cumsum``...): unknown ops are never
guessed at. A model whose graph cannot be exported, that has a grouped convolution or a
multi-layer or bidirectional RNN, or in which no group is left, is refused with
:class:`GraphPartitionError` naming the module(s) that block it.

Where this differs from the authors' ``only-train-once`` 3.0.1: that package does not import
with torch >= 2.4 (it imports ``torch.onnx._globals``, since removed), so it could not be run
here as a reference; it builds its graph from the ONNX trace, trainlab from ``torch.export``.
OTO prunes the residual-stream width through LayerNorm; trainlab keeps it (not exactly
zero-invariant, above). OTO's groups hold only the producer entries; trainlab's groups list the
consumer entries too (``role="in"``), which only compaction removes.

Example::

    from trainlab.methods.structured import zero_invariant_groups
    partition = zero_invariant_groups(model, (example_batch,))
    for group in partition.groups:
        print(group.family, group.size(model))
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass

import torch
from torch import nn

from trainlab.methods.structured.walk import GraphPartitionError, _LabelInterpreter, analyse

__all__ = [
    "GraphPartitionError",
    "Slice",
    "ZIGPartition",
    "ZeroInvariantGroup",
    "analyse",
    "export_model",
    "partition_from",
    "zero_invariant_groups",
]


@dataclass(frozen=True)
class Slice:
    """Entries ``index`` along dimension ``dim`` of the parameter or buffer ``name``.

    ``role``: ``"out"`` for the producer entries HESSO drives to zero, ``"in"`` for the consumer
    columns that read the channel (removed by compaction, left as they are by training).
    """

    name: str
    dim: int
    index: tuple[int, ...]
    role: str
    buffer: bool = False


@dataclass(frozen=True)
class ZeroInvariantGroup:
    """One channel / hidden unit / attention head: the slices removed together.

    ``family`` names the module that produces it (HESSO keeps at least one group per family).
    """

    family: str
    slices: tuple[Slice, ...]

    def out_slices(self) -> tuple[Slice, ...]:
        return tuple(s for s in self.slices if s.role == "out" and not s.buffer)

    def size(self, model: nn.Module) -> int:
        """Number of parameter entries in the group's producer (``out``) slices."""
        params = dict(model.named_parameters(remove_duplicate=False))
        return sum(
            len(s.index) * params[s.name].numel() // params[s.name].shape[s.dim]
            for s in self.out_slices()
        )


@dataclass(frozen=True)
class ZIGPartition:
    """The zero-invariant groups of a model and why the rest of it is not prunable."""

    groups: tuple[ZeroInvariantGroup, ...]
    blocked: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.groups)


# -- public entry points -------------------------------------------------------------------


def export_model(
    model: nn.Module, example_inputs: tuple, dynamic_batch: bool = True
) -> torch.fx.GraphModule:
    """``torch.export`` of ``model`` in eval mode (with a symbolic batch dimension when
    ``dynamic_batch``: slower to export, an RNN's several times so), unlifted to a
    :class:`torch.fx.GraphModule`. Raises :class:`GraphPartitionError` when the model cannot be
    exported."""
    was_training = model.training
    model.eval()
    dims = tuple({0: torch.export.Dim.AUTO} for _ in example_inputs) if dynamic_batch else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.export(model, tuple(example_inputs), dynamic_shapes=dims)
    except Exception as exc:  # noqa: BLE001 - any export failure is the user's model
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GraphPartitionError(
            f"model {type(model).__name__} cannot be exported to a graph: {first}"
        ) from None
    finally:
        model.train(was_training)
    return program.module()


def partition_from(walker: _LabelInterpreter) -> ZIGPartition:
    """Collect the union-find classes of a label walk into a :class:`ZIGPartition`."""
    lab = walker.lab
    members: dict[int, dict[tuple[str, int, str, bool], set[int]]] = defaultdict(
        lambda: defaultdict(set)
    )
    blocked_roots: dict[int, str] = {}
    for label, reason in lab.blocked.items():
        blocked_roots.setdefault(lab.find(label), reason)
    has_out: set[int] = set()
    for label, entries in lab.members.items():
        root = lab.find(label)
        for name, dim, index, role, buffer in entries:
            members[root][(name, dim, role, buffer)].add(index)
            if role == "out" and not buffer:
                has_out.add(root)
    groups, reasons, roots = [], [], []
    for root in sorted(members):
        if root in blocked_roots:
            reasons.append(blocked_roots[root])
            continue
        if root not in has_out:
            continue
        slices = tuple(
            Slice(name, dim, tuple(sorted(idx)), role, buffer)
            for (name, dim, role, buffer), idx in sorted(members[root].items())
        )
        groups.append(ZeroInvariantGroup(lab.family[root], slices))
        roots.append(root)
    walker.group_roots = roots
    return ZIGPartition(tuple(groups), tuple(sorted(set(reasons))))


def zero_invariant_groups(model: nn.Module, example_inputs: tuple) -> ZIGPartition:
    """The zero-invariant groups of ``model`` (Chen et al., "OTOv2: Automatic, Generic,
    User-Friendly", ICLR 2023), found from its exported graph (see the module docstring).

    ``example_inputs``: a tuple of input tensors with a batch dimension first (at least 2
    examples). Raises :class:`GraphPartitionError` naming the blocking module when the graph
    cannot be partitioned, or when no group is prunable.
    """
    example_inputs = tuple(example_inputs)
    gm = export_model(model, example_inputs, dynamic_batch=False)  # the groups need no batch
    partition = partition_from(analyse(gm, example_inputs))
    if not partition.groups:
        why = "; ".join(partition.blocked) or "no prunable layer"
        raise GraphPartitionError(f"model {type(model).__name__} has no prunable group: {why}")
    return partition
