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

import operator
import warnings
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from trainlab.errors import TrainlabError

aten = torch.ops.aten


class GraphPartitionError(TrainlabError):
    """The model's graph cannot be split into zero-invariant groups (names the module)."""


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


# -- label bookkeeping ---------------------------------------------------------------------


class _Labels:
    """Union-find over channel labels, with each label's slices, family and blocking reason."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.family: list[str] = []
        self.members: dict[int, list[tuple[str, int, int, str, bool]]] = defaultdict(list)
        self.blocked: dict[int, str] = {}

    def new(self, count: int, family: str) -> Tensor:
        start = len(self.parent)
        self.parent.extend(range(start, start + count))
        self.family.extend([family] * count)
        return torch.arange(start, start + count)

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, ids) -> None:
        ids = [int(i) for i in ids if int(i) >= 0]
        if not ids:
            return
        root = self.find(ids[0])
        for i in ids[1:]:
            other = self.find(i)
            if other != root:
                lo, hi = min(root, other), max(root, other)
                self.parent[hi] = lo
                root = lo

    def add(self, label: int, name: str, dim: int, index: int, role: str, buffer: bool) -> None:
        self.members[label].append((name, dim, index, role, buffer))

    def block(self, labels: Tensor, reason: str) -> None:
        for i in torch.unique(labels).tolist():
            if i >= 0:
                self.blocked.setdefault(i, reason)


def _module_name(node: torch.fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    for path, _ in reversed(list(stack.values())):
        if path and not str(path).startswith("_"):
            return str(path)
    return "<model>"


def _along(labels: Tensor, dim: int) -> list[Tensor]:
    """For each index along ``dim``: the distinct labels found there (``-1`` dropped)."""
    rows = labels.movedim(dim, 0).reshape(labels.shape[dim], -1).sort(dim=1).values
    keep = rows >= 0
    keep[:, 1:] &= rows[:, 1:] != rows[:, :-1]
    return [row[k] for row, k in zip(rows, keep, strict=True)]


def _broadcast(labels: Tensor, dim: int, shape: torch.Size) -> Tensor:
    view = [1] * len(shape)
    view[dim] = shape[dim]
    return labels.view(view).expand(shape).clone()


_UNARY_ZERO = {
    aten.relu.default, aten.relu_.default, aten.gelu.default, aten.tanh.default,
    aten.silu.default, aten.dropout.default, aten.leaky_relu.default, aten.hardtanh.default,
    aten.neg.default, aten.clone.default, aten.contiguous.default, aten.alias.default,
    aten.detach.default, aten.elu.default, aten.mish.default, aten.feature_dropout.default,
}  # fmt: skip
_POOL = {
    aten.max_pool1d.default, aten.max_pool2d.default, aten.avg_pool1d.default,
    aten.avg_pool2d.default, aten.adaptive_avg_pool1d.default, aten.adaptive_avg_pool2d.default,
    aten.adaptive_max_pool2d.default,
}  # fmt: skip
_SHAPE = {
    aten.view.default, aten.reshape.default, aten._unsafe_view.default, aten.permute.default,
    aten.transpose.int, aten.flatten.using_ints, aten.unsqueeze.default, aten.squeeze.dim,
    aten.squeeze.default, aten.unbind.int, aten.t.default, aten.expand.default,
    aten.unflatten.int,
}  # fmt: skip
_CONV = {aten.conv1d.default, aten.conv2d.default, aten.conv3d.default}
_NORM_ACROSS = {aten.layer_norm.default, aten.group_norm.default, aten.rms_norm.default}


class _LabelInterpreter(torch.fx.Interpreter):
    """Runs the graph on real inputs and a label tensor beside every activation."""

    def __init__(self, gm: torch.fx.GraphModule) -> None:
        super().__init__(gm)
        self.labels: dict[torch.fx.Node, Any] = {}
        self.lab = _Labels()
        self.names = {id(p): n for n, p in gm.named_parameters(remove_duplicate=False)}
        self.buffer_names = {id(b): n for n, b in gm.named_buffers(remove_duplicate=False)}
        self.get_attr_name: dict[torch.fx.Node, str] = {}
        self.zero_shape: dict[torch.fx.Node, Tensor] = {}  # factory nodes resized at compaction
        self.selections: list[tuple[Tensor, int, str]] = []

    # -- helpers ----------------------------------------------------------------------------
    def _lab(self, arg: Any) -> Any:
        if isinstance(arg, torch.fx.Node):
            return self.labels.get(arg)
        return None

    def _name(self, arg: Any) -> tuple[str, bool] | None:
        if isinstance(arg, torch.fx.Node) and arg in self.get_attr_name:
            name = self.get_attr_name[arg]
            return name, name in self.buffer_set
        return None

    def _produce(self, node, out: Tensor, dim: int, members, family: str) -> Tensor:
        """New labels along ``dim`` of ``out``; ``members``: (attr-node, dim, stride, offset)."""
        n = out.shape[dim]
        ids = self.lab.new(n, family)
        for arg, pdim, stride, offset in members:
            named = self._name(arg)
            if named is None:
                continue
            for j in range(n):
                self.lab.add(int(ids[j]), named[0], pdim, offset + j * stride, "out", named[1])
        return _broadcast(ids, dim, out.shape)

    def _consume(self, inp: Tensor | None, in_dim: int, weight, w_dim: int) -> None:
        named = self._name(weight)
        if inp is None or named is None:
            return
        for j, ids in enumerate(_along(inp, in_dim)):
            if len(ids):
                self.lab.union(ids)
                self.lab.add(int(ids[0]), named[0], w_dim, j, "in", named[1])

    # -- the walk ---------------------------------------------------------------------------
    def run_node(self, n: torch.fx.Node) -> Any:
        value = super().run_node(n)
        if n.op == "get_attr":
            if isinstance(value, Tensor):
                name = self.names.get(id(value)) or self.buffer_names.get(id(value)) or n.target
                self.get_attr_name[n] = name
            return value
        if n.op == "output":
            for out in n.args[0] if isinstance(n.args[0], (tuple, list)) else [n.args[0]]:
                lab = self._lab(out)
                if isinstance(lab, Tensor):
                    self.lab.block(lab, "reaches the model's output")
            return value
        if n.op != "call_function":
            return value
        self.labels[n] = self._labels_of(n, value)
        return value

    def _labels_of(self, n: torch.fx.Node, value: Any) -> Any:  # noqa: C901 - one op table
        t, args = n.target, n.args
        module = _module_name(n)
        if t is operator.getitem:
            lab = self._lab(args[0])
            return lab[args[1]] if isinstance(lab, (tuple, list)) else None
        inputs = [
            self.labels.get(a) for a in n.all_input_nodes if isinstance(self.labels.get(a), Tensor)
        ]
        if t is aten.linear.default:
            self._consume(self._lab(args[0]), -1, args[1], 1)
            bias = args[2] if len(args) > 2 else None
            members = [(args[1], 0, 1, 0)] + ([(bias, 0, 1, 0)] if bias is not None else [])
            return self._produce(n, value, value.dim() - 1, members, module)
        if t in _CONV:
            groups = args[6] if len(args) > 6 else 1
            if groups != 1:
                if inputs:
                    raise GraphPartitionError(
                        f"module {module}: grouped convolution (groups={groups}) is not supported"
                    )
                groups = 1
            self._consume(self._lab(args[0]), 1, args[1], 1)
            bias = args[2] if len(args) > 2 else None
            members = [(args[1], 0, 1, 0)] + ([(bias, 0, 1, 0)] if bias is not None else [])
            return self._produce(n, value, 1, members, module)
        if t is aten.embedding.default:
            return self._produce(n, value, value.dim() - 1, [(args[0], 1, 1, 0)], module)
        if t in (aten.gru.input, aten.lstm.input):
            return self._rnn(n, value, module, gates=3 if t is aten.gru.input else 4)
        if t is aten.batch_norm.default:
            lab = self._lab(args[0])
            if lab is None:
                return None
            for j, ids in enumerate(_along(lab, 1)):
                if len(ids):
                    self.lab.union(ids)
                    for arg in args[1:5]:
                        named = self._name(arg)
                        if named is not None:
                            self.lab.add(int(ids[0]), named[0], 0, j, "out", named[1])
            return lab
        if t in _NORM_ACROSS:
            for lab in inputs:
                self.lab.block(lab, f"{module} normalises across the features")
            lab = self._lab(args[0])
            if lab is not None and t is aten.layer_norm.default:
                for arg in args[2:4]:
                    named = self._name(arg)
                    if named is not None:
                        for j, ids in enumerate(_along(lab, lab.dim() - 1)):
                            if len(ids):
                                self.lab.add(int(ids[0]), named[0], 0, j, "out", named[1])
            return lab
        if t is aten.scaled_dot_product_attention.default:
            q, k, v = (self._lab(a) for a in args[:3])
            if q is None and k is None and v is None:
                return None
            if q is None or k is None or v is None:
                raise GraphPartitionError(f"module {module}: q, k and v must all be projections")
            for h in range(v.shape[1]):
                self.lab.union(torch.cat([q[:, h].flatten(), k[:, h].flatten(), v[:, h].flatten()]))
            return v.clone()
        if not inputs:  # nothing prunable flows through this op
            return None
        if t in _UNARY_ZERO or (t is aten.mul.Tensor and not isinstance(args[1], torch.fx.Node)):
            return self._lab(args[0]).clone()
        if t in _POOL:
            lab = self._lab(args[0]).float()
            out = super().call_function(t, (lab, *args[1:]), dict(n.kwargs))
            out = out[0] if isinstance(out, tuple) else out
            return out.round().long()
        if t in _SHAPE:
            lab = self._lab(args[0])
            return super().call_function(t, (lab, *self._concrete(args[1:])), dict(n.kwargs))
        if t in (aten.add.Tensor, aten.add_.Tensor, aten.mul.Tensor, aten.sub.Tensor):
            a, b = (self._lab(x) for x in args[:2])
            if a is None or b is None:
                other = a if a is not None else b
                if t is aten.mul.Tensor:
                    return other.expand(value.shape).clone()
                self.lab.block(other, f"{module}: a constant is added to the features")
                return other.expand(value.shape).clone()
            a, b = torch.broadcast_tensors(a, b)
            both = (a >= 0) & (b >= 0)
            for x, y in zip(a[both].tolist(), b[both].tolist(), strict=True):
                if self.lab.find(x) != self.lab.find(y):
                    self.lab.union([x, y])
            return torch.where(a >= 0, a, b).clone()
        if t in (aten.select.int, aten.slice.Tensor):
            lab = self._lab(args[0])
            dim = args[1]
            if t is aten.slice.Tensor and value.shape[dim] != lab.shape[dim]:
                self.lab.block(lab, f"{module} slices the features")
            elif t is aten.select.int:
                self.selections.append((lab, dim, module))
            return super().call_function(t, (lab, *self._concrete(args[1:])), dict(n.kwargs))
        # an op not known to keep zeros zero channel by channel: its inputs' channels are kept
        for lab in inputs:
            self.lab.block(lab, f"module {module}: operation {t} is not known to be zero-invariant")
        return None

    def _concrete(self, args):
        return torch.fx.node.map_arg(args, lambda a: self.env[a])

    def _rnn(self, n, value, module: str, gates: int) -> tuple:
        args = n.args
        inp, hx, params = args[0], args[1], args[2]
        has_biases, num_layers, bidirectional = args[3], args[4], args[7]
        batch_first = args[8]
        if num_layers != 1 or bidirectional:
            raise GraphPartitionError(
                f"module {module}: only single-layer unidirectional RNNs are supported"
            )
        hidden = value[0].shape[-1]
        del batch_first  # the hidden dimension is the last one either way
        ids = self.lab.new(hidden, module)
        w_ih, w_hh = params[0], params[1]
        biases = list(params[2:4]) if has_biases else []
        for j in range(hidden):
            for g in range(gates):
                for arg in [w_ih, w_hh, *biases]:
                    named = self._name(arg)
                    if named is not None:
                        self.lab.add(int(ids[j]), named[0], 0, g * hidden + j, "out", named[1])
            named = self._name(w_hh)
            if named is not None:
                self.lab.add(int(ids[j]), named[0], 1, j, "in", named[1])
        self._consume(self._lab(inp), -1, w_ih, 1)
        states = hx if isinstance(hx, (list, tuple)) else [hx]
        for h in states:
            if isinstance(h, torch.fx.Node):
                self.zero_shape[h] = _broadcast(ids, 2, self.env[h].shape)
        outs = [_broadcast(ids, value[0].dim() - 1, value[0].shape)]
        outs += [_broadcast(ids, 2, v.shape) for v in value[1:]]
        return tuple(outs)

    @property
    def buffer_set(self) -> set[str]:
        return set(self.buffer_names.values())


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


def analyse(gm: torch.fx.GraphModule, example_inputs: tuple) -> _LabelInterpreter:
    """Run the label walk on an exported graph (see the module docstring)."""
    walker = _LabelInterpreter(gm)
    with torch.no_grad():
        walker.run(*example_inputs)
    lab = walker.lab
    # a select that keeps one index along a dimension where a single group could vanish
    for labels, dim, module in walker.selections:
        for ids in _along(labels, dim):
            roots = {lab.find(int(i)) for i in ids}
            if len(roots) == 1:
                lab.block(ids, f"{module} selects one index of a prunable dimension")
    return walker


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
