"""What the model a trial evaluates costs to run: parameters, non-zero parameters, FLOPs per
example and, for a compact sub-network, its measured CPU inference speed against the dense model.

Measured once per trial, after training and the test evaluation, untimed (``bench.runner``),
and stored as a JSON object in the trial's ``model_cost`` column. The keys:

* ``params``: parameters of the evaluated model (a tensor shared by two modules, such as tied
  embeddings, counted once); ``nonzero_params``: those not exactly zero. A weight pruned with
  ``torch.nn.utils.prune`` (``weight_orig`` with a ``weight_mask`` buffer) counts as
  ``weight_orig * weight_mask``.
* ``flops_per_example``: dense FLOPs of one forward pass (``torch.utils.flop_counter``, which
  counts a multiply-add as 2 FLOPs: a ``Linear(10, 5)`` is 100 per example) on a batch of
  ``examples`` training examples, divided by the batch size.
* ``nonzero_flops_per_example``: the same FLOPs counted on non-zeros: each leaf module that
  owns a weight contributes its dense FLOPs times its weight's density (non-zero fraction);
  everything else (attention's matrix products, a module without weights) counts dense. This
  is what masked unstructured sparsity would cost with a sparse kernel; a dense CPU kernel
  runs a masked model no faster than the dense one, so no speedup is claimed for it.
* ``compact`` (only when the algorithm's :meth:`~trainlab.spec.Algorithm.compact_model` returns
  a model): the compact sub-network's ``params``, ``nonzero_params`` and
  ``flops_per_example``, and ``inference_speedup``: the median, over interleaved repeats on
  one CPU thread, of (dense seconds / compact seconds) for a forward of the batch, with the
  two medians ``dense_ms`` and ``compact_ms`` (milliseconds per batch), and its validation
  ``metrics`` (equal to the evaluated model's when the compact model is an exact rewrite of
  it, as HESSO's is; a SortedNet sub-model's own).

* ``method`` (only when the algorithm's :meth:`~trainlab.spec.Algorithm.trial_record` returns
  a dict): what the method did in the trial (AdaPT: its bit-width trajectory and modelled
  speedups, see :func:`trainlab.algorithms.precision.adapt_record`).

A failure while measuring (an operator the FLOP counter cannot trace, say) does not fail the
trial: the object then holds ``error`` with the message (and ``method``, recorded apart; a
failing record is ``{"error": ...}`` under ``method``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from trainlab.nn_utils import evaluating

#: training examples in the batch the FLOPs and the inference time are measured on
EXAMPLES = 64
#: interleaved (dense, compact) timing pairs; the speedup is the median of their ratios
REPEATS = 15

Forward = Callable[[nn.Module], Any]


def _weights(module: nn.Module) -> list[Tensor]:
    """The effective weights a module owns directly (masked where ``prune`` masks them)."""
    out = []
    for name, p in module.named_parameters(recurse=False):
        mask = getattr(module, name[: -len("_orig")] + "_mask", None) if name.endswith(
            "_orig") else None  # fmt: skip
        out.append(p.detach() if mask is None else p.detach() * mask)
    return out


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """``(parameters, non-zero parameters)`` of ``model``; a shared tensor counts once."""
    seen: set[int] = set()
    total = nonzero = 0
    for module in model.modules():
        for (_, p), w in zip(module.named_parameters(recurse=False), _weights(module),
                             strict=True):  # fmt: skip
            if id(p) in seen:
                continue
            seen.add(id(p))
            total += p.numel()
            nonzero += int(torch.count_nonzero(w))
    return total, nonzero


def flops_per_example(model: nn.Module, forward: Forward, batch_size: int) -> tuple[float, float]:
    """``(dense, non-zero)`` forward FLOPs per example: ``forward(model)`` runs the model on a
    batch of ``batch_size`` examples (in eval mode, without grad) under a FLOP counter. The
    non-zero count scales each weighted leaf module's FLOPs by its weight density (see the
    module docstring)."""
    with evaluating(model), torch.no_grad(), FlopCounterMode(display=False) as counter:
        forward(model)
    total = float(counter.get_total_flops())
    root = type(model).__name__
    discount = 0.0
    for name, ops in counter.get_flop_counts().items():
        if name == "Global" or not (name == root or name.startswith(root + ".")):
            continue
        try:
            module = model.get_submodule(name[len(root) + 1 :])
        except AttributeError:
            continue
        if any(True for _ in module.children()):
            continue  # only leaves: a parent's count includes its children's
        weights = [w for w in _weights(module) if w.dim() > 1]
        if not weights:
            continue
        density = sum(int(torch.count_nonzero(w)) for w in weights) / sum(
            w.numel() for w in weights)  # fmt: skip
        discount += float(sum(ops.values())) * (1.0 - density)
    return total / batch_size, (total - discount) / batch_size


def inference_speedup(
    dense: nn.Module, compact: nn.Module, forward: Forward, repeats: int = REPEATS
) -> dict[str, float | None]:
    """Median over ``repeats`` interleaved pairs of dense/compact forward seconds on one CPU
    thread (one warm-up call each first), and the two median times in milliseconds. Pairs are
    interleaved so that a load change on the machine hits both models alike."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with evaluating(dense), evaluating(compact), torch.no_grad():
            forward(dense), forward(compact)
            times: dict[str, list[float]] = {"dense": [], "compact": []}
            for i in range(repeats):
                order = (("dense", dense), ("compact", compact))
                for key, model in order if i % 2 == 0 else order[::-1]:
                    t0 = time.perf_counter()
                    forward(model)
                    times[key].append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    ratios = [d / c for d, c in zip(times["dense"], times["compact"], strict=True) if c > 0]
    return {
        "inference_speedup": statistics.median(ratios) if ratios else None,
        "dense_ms": 1e3 * statistics.median(times["dense"]),
        "compact_ms": 1e3 * statistics.median(times["compact"]),
    }


def describe_model(model: nn.Module, forward: Forward, batch_size: int) -> dict[str, Any]:
    """``params``, ``nonzero_params``, ``flops_per_example`` and ``nonzero_flops_per_example``
    of ``model`` (see the module docstring)."""
    params, nonzero = parameter_counts(model)
    dense, sparse = flops_per_example(model, forward, batch_size)
    return {"params": params, "nonzero_params": nonzero, "flops_per_example": dense,
            "nonzero_flops_per_example": sparse}  # fmt: skip


def measure(workload: Any, algorithm: Any, state: Any, model: nn.Module,
            examples: int = EXAMPLES) -> dict[str, Any]:  # fmt: skip
    """The ``model_cost`` object of a trial whose evaluated model is ``model`` (untimed; see
    the module docstring); never raises: a failure is reported under ``error``."""
    try:
        n = min(examples, workload.train_size)
        batch = workload.get_examples(torch.arange(n))

        def forward(m: nn.Module) -> Any:
            return workload.forward(m, batch)

        cost = {**describe_model(model, forward, n), "examples": n}
        compact = algorithm.compact_model(state)
        if compact is not None:
            part = describe_model(compact, forward, n)
            part.pop("nonzero_flops_per_example")
            part["metrics"] = workload.evaluate(compact, "valid")
            cost["compact"] = {**part, **inference_speedup(model, compact, forward)}
    except Exception as exc:  # the measure is a report, not part of the trial's outcome
        cost = {"error": f"{type(exc).__name__}: {exc}"}
    try:
        record = algorithm.trial_record(state)
    except Exception as exc:  # likewise: a report
        record = {"error": f"{type(exc).__name__}: {exc}"}
    if record is not None:
        cost["method"] = record
    return cost


def headline(cost: dict[str, Any] | None) -> dict[str, float | None]:
    """The figures tables show for a stored ``model_cost``, all of the evaluated model (the one
    whose metric is reported): ``params``, ``nnz`` (non-zero parameters), ``mflops`` (MFLOPs
    per example counted on non-zeros: the dense count for a dense model), and ``speedup``
    (the compact sub-network's CPU inference speedup, where there is one). None where
    unknown."""
    out: dict[str, float | None] = dict.fromkeys(("params", "nnz", "mflops", "speedup"))
    if not cost or "error" in cost:
        return out
    out["params"] = cost.get("params")
    out["nnz"] = cost.get("nonzero_params")
    flops = cost.get("nonzero_flops_per_example", cost.get("flops_per_example"))
    out["mflops"] = None if flops is None else flops / 1e6
    out["speedup"] = (cost.get("compact") or {}).get("inference_speedup")
    return out


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def cost_table(trials: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per algorithm and workload (``name`` or ``name:variant``), the model cost of the trials
    that reached the target, or of all finished trials where none did: medians of ``nnz``,
    ``params``, ``mflops`` (on non-zeros) and ``speedup``, with ``n`` (trials counted) and
    ``reached`` (whether those are trials that reached). Trials without a measured cost are
    skipped; a cell with none is absent."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for t in trials:
        if t.get("status") not in ("reached", "missed", "diverged"):
            continue
        if headline(t.get("model_cost"))["params"] is None:
            continue
        workload = t["workload"] + (f":{t['variant']}" if t.get("variant") else "")
        groups.setdefault((t["algorithm"], workload), []).append(t)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for (algorithm, workload), rows in sorted(groups.items()):
        reached = [t for t in rows if t["status"] == "reached"]
        chosen = reached or rows
        heads = [headline(t["model_cost"]) for t in chosen]
        cell: dict[str, Any] = {
            key: _median([h[key] for h in heads if h[key] is not None])
            for key in ("params", "nnz", "mflops", "speedup")
        }
        out.setdefault(algorithm, {})[workload] = {**cell, "n": len(chosen),
                                                   "reached": bool(reached)}  # fmt: skip
    return out


def cost_cell(cell: dict[str, Any] | None) -> str:
    """``12.3k nnz, 0.2 MFLOPs, 1.8x`` (``(missed)`` appended when no trial reached); ``-``."""
    if not cell or cell.get("nnz") is None:
        return "-"
    nnz = cell["nnz"]
    text = f"{nnz / 1e3:.4g}k nnz" if nnz >= 1e3 else f"{nnz:.0f} nnz"
    if cell.get("mflops") is not None:
        text += f", {cell['mflops']:.3g} MFLOPs"
    if cell.get("speedup") is not None:
        text += f", {cell['speedup']:.2f}x"
    return text + ("" if cell.get("reached") else " (missed)")


#: what a cost table's cells are, for its caption
COST_NOTE = ("model cost: median over the trials that reached the target (all finished trials "
             "where none did: '(missed)') of the evaluated model's non-zero parameters, MFLOPs "
             "per example counted on non-zeros, and the compact model's CPU inference speedup "
             "where there is one")  # fmt: skip
