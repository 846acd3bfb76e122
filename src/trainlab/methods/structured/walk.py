"""The label walk behind :mod:`trainlab.methods.structured.groups`: an exported graph run on
real inputs with an integer label tensor beside every activation, joining the channels that
must be removed together (union-find). The rules per op are in the ``groups`` module docstring.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from typing import Any

import torch
from torch import Tensor

from trainlab.errors import TrainlabError

aten = torch.ops.aten


class GraphPartitionError(TrainlabError):
    """The model's graph cannot be split into zero-invariant groups (names the module)."""


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
