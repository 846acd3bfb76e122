"""HESSO: the Hybrid Efficient Structured Sparse Optimizer of Only-Train-Once.

Chen et al., "HESSO: Towards Automatic Efficient and User Friendly Any Neural Network Training
and Pruning" (2024), building on OTOv2 (Chen et al., ICLR 2023). Over a model's zero-invariant
groups ``G`` (:mod:`trainlab.methods.structured.groups`), with target group sparsity ``s``:

1. **Warm-up**: ``warmup_steps`` steps of the base optimizer alone.
2. **Pruning**: ``pruning_steps`` steps split into ``K = pruning_periods`` periods of
   ``P = pruning_steps // K`` steps. At the first step of period ``k`` the groups are scored
   (below) and the ``n_k`` lowest-scoring groups not yet redundant join the redundant set,
   where ``n_k = floor(s |G|) // K`` (the last period takes the remainder): the redundant
   set grows hierarchically, each period choosing among the survivors of the previous ones.
   During the period the newly chosen groups are trained by the base optimizer and then
   *progressively forgotten*: after the base step at position ``t = 0..P-1`` of the period,
   ``x_g <- x_g (P - t - 1) / (P - t)``, so that ``x_g`` is exactly zero after the period's last
   step (the product of the factors telescopes to ``0``). Groups of earlier periods are held at
   zero (set to zero after every base step).
3. **Afterwards** the base optimizer trains the important groups; the redundant ones stay zero.

Every parameter, grouped or not, is stepped by the base optimizer (e.g. NAdamW), which keeps its
own learning rate, schedule and weight decay: HESSO only post-processes the step.

Saliency (the paper's hybrid score, the authors' default weights): for group ``g`` with
parameters ``x_g`` (its producer entries: weight rows, bias and norm entries; consumer columns
are not scored) and base-optimizer step ``d_g = x_g(before) - x_g(after)`` at the scoring step
(the authors' "gradient variant": Adam's ``m / sqrt(v)``, here whatever the base optimizer
does), five criteria, each divided by its L2 norm over all groups and weighted ``0.2``:
``||x_g||``, ``||x_g|| / |g|``, ``cos(-d_g, x_g)`` (a step that grows the group marks it
important), ``|<x_g, d_g>|`` and ``<x_g, d_g>^2`` (first- and second-order Taylor estimates of
the loss change when the group is removed). The lowest total is the most redundant.

Open choices, fixed here: at least one group of each *family* (the layer producing it) is
kept, as the authors' ``group_divisible`` rule does, so no layer vanishes; the redundant count
is ``floor(s |G|)``; the per-period counts are floor-divided, the last period taking the
remainder; the base optimizer's moments of redundant groups are left as they are (their
parameters are re-zeroed after every step).

Plain loop::

    model = ...
    base = trainlab.optim.NAdamW(model.parameters(), lr=1e-3)
    opt = HESSO(model, base, example_inputs=(x[:2],), target_group_sparsity=0.5,
                warmup_steps=100, pruning_steps=400, pruning_periods=4)
    for x, y in loader:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    small = compact_model(model, (x[:2],))   # the dense sub-network, same outputs
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from torch import Tensor, nn

from trainlab.errors import HyperparameterError
from trainlab.methods.structured.groups import ZIGPartition, zero_invariant_groups

#: the authors' default weights of the five saliency criteria
DEFAULT_SALIENCY = {
    "magnitude": 0.2,
    "avg_magnitude": 0.2,
    "cosine_similarity": 0.2,
    "taylor_first_order": 0.2,
    "taylor_second_order": 0.2,
}


def saliency_scores(
    x_parts: list[list[Tensor]], d_parts: list[list[Tensor]], weights: dict[str, float]
) -> Tensor:
    """Hybrid saliency per group (lower = more redundant), from each group's parameter slices
    ``x_parts[g]`` and base-optimizer steps ``d_parts[g]`` (same shapes). Returns ``[groups]``."""
    eps = 1e-12
    xx = torch.stack([sum((x.double() ** 2).sum() for x in xs) for xs in x_parts])
    dd = torch.stack([sum((d.double() ** 2).sum() for d in ds) for ds in d_parts])
    xd = torch.stack(
        [
            sum((x.double() * d.double()).sum() for x, d in zip(xs, ds, strict=True))
            for xs, ds in zip(x_parts, d_parts, strict=True)
        ]
    )
    numel = torch.tensor([sum(x.numel() for x in xs) for xs in x_parts], dtype=torch.float64)
    norm = xx.sqrt()
    criteria = {
        "magnitude": norm,
        "avg_magnitude": norm / numel,
        "cosine_similarity": -xd / (norm * dd.sqrt() + eps),
        "taylor_first_order": xd.abs(),
        "taylor_second_order": xd**2,
    }
    total = torch.zeros_like(norm)
    for name, weight in weights.items():
        values = criteria[name]
        total += weight * values / (values.norm() + eps)
    return total


class HESSO(torch.optim.Optimizer):
    r"""HESSO (Chen et al., "HESSO: Towards Automatic Efficient and User Friendly Any Neural
    Network Training and Pruning", 2024) around a base optimizer.

    Update rule, per step ``n`` (after ``base_optimizer.step()``, which moves every
    parameter): for ``n > warmup_steps`` and within the ``K`` periods of ``P`` steps, at the
    period's first step the ``n_k`` lowest-saliency groups (:func:`saliency_scores`) not yet
    redundant become *active*; at position ``t`` of the period each active group is scaled,
    ``x_g \leftarrow x_g (P - t - 1) / (P - t)`` (exactly zero at ``t = P - 1``, when it joins
    the redundant set); redundant groups are reset to ``x_g \leftarrow 0`` after every step.
    The module docstring gives the saliency criteria and the open choices.

    Args:
        model: the model whose parameters ``base_optimizer`` steps.
        base_optimizer: any ``torch.optim.Optimizer`` over the model's parameters; HESSO shares
            its ``param_groups`` (so an LR scheduler built on either drives both).
        groups: a :class:`ZIGPartition` of ``model``; if ``None``, found from ``example_inputs``.
        example_inputs: inputs for :func:`zero_invariant_groups` when ``groups`` is ``None``.
        target_group_sparsity: fraction ``s`` of the groups driven to zero, in ``[0, 1)``.
        warmup_steps: steps before pruning starts.
        pruning_steps: steps over which the ``pruning_periods`` periods run.
        pruning_periods: ``K``, the number of periods (each selects ``~s|G|/K`` groups).
        saliency: criterion -> weight (default :data:`DEFAULT_SALIENCY`).

    Raises :class:`trainlab.errors.HyperparameterError` on values out of range.
    """

    def __init__(
        self,
        model: nn.Module,
        base_optimizer: torch.optim.Optimizer,
        *,
        groups: ZIGPartition | None = None,
        example_inputs: tuple | None = None,
        target_group_sparsity: float = 0.5,
        warmup_steps: int = 0,
        pruning_steps: int = 1,
        pruning_periods: int = 1,
        saliency: dict[str, float] | None = None,
    ) -> None:
        if not 0.0 <= target_group_sparsity < 1.0:
            raise HyperparameterError(
                f"target_group_sparsity must be in [0, 1), got {target_group_sparsity}"
            )
        if warmup_steps < 0:
            raise HyperparameterError(f"warmup_steps must be >= 0, got {warmup_steps}")
        if pruning_periods < 1 or pruning_steps < pruning_periods:
            raise HyperparameterError(
                f"need pruning_steps >= pruning_periods >= 1, got pruning_steps="
                f"{pruning_steps}, pruning_periods={pruning_periods}"
            )
        saliency = dict(DEFAULT_SALIENCY if saliency is None else saliency)
        unknown = set(saliency) - set(DEFAULT_SALIENCY)
        if unknown:
            raise HyperparameterError(
                f"unknown saliency criteria {sorted(unknown)}; known: {sorted(DEFAULT_SALIENCY)}"
            )
        if groups is None:
            if example_inputs is None:
                raise HyperparameterError("HESSO needs groups= or example_inputs=")
            groups = zero_invariant_groups(model, example_inputs)
        self.base_optimizer = base_optimizer
        self.partition = groups
        self.target_group_sparsity = float(target_group_sparsity)
        self.warmup_steps = int(warmup_steps)
        self.pruning_periods = int(pruning_periods)
        self.period_steps = int(pruning_steps) // self.pruning_periods
        self.saliency = saliency
        # the base optimizer's groups and state are HESSO's: schedulers see one optimizer
        super().__init__([p for g in base_optimizer.param_groups for p in g["params"]], {})
        self.param_groups = base_optimizer.param_groups
        self.defaults = base_optimizer.defaults
        self.state = base_optimizer.state

        params = dict(model.named_parameters(remove_duplicate=False))
        self._slices: list[list[tuple[Tensor, int, Tensor]]] = [
            [(params[s.name], s.dim, torch.as_tensor(s.index)) for s in g.out_slices()]
            for g in groups.groups
        ]
        self._families: dict[str, list[int]] = defaultdict(list)
        for i, g in enumerate(groups.groups):
            self._families[g.family].append(i)
        total = len(groups.groups)
        target = int(self.target_group_sparsity * total)
        # never more than all groups but one per family
        target = min(target, total - len(self._families))
        self.period_counts = [target // self.pruning_periods] * self.pruning_periods
        self.period_counts[-1] += target - sum(self.period_counts)
        self.num_steps = 0
        self.redundant: list[int] = []  # groups held at zero
        self.active: list[int] = []  # groups being forgotten in the current period
        self._active_masks: dict[Tensor, Tensor] = {}
        self._zero_masks: dict[Tensor, Tensor] = {}

    # -- the schedule --------------------------------------------------------------------
    def _period_position(self) -> tuple[int, int] | None:
        """``(period k, position t)`` of the current step, or ``None`` outside the periods."""
        s = self.num_steps - self.warmup_steps - 1
        if s < 0 or s >= self.pruning_periods * self.period_steps:
            return None
        return s // self.period_steps, s % self.period_steps

    def _masks(self, members: list[int]) -> dict[Tensor, Tensor]:
        """Per parameter a float mask, ``0`` on the producer entries of ``members``."""
        masks: dict[Tensor, Tensor] = {}
        for i in members:
            for p, dim, idx in self._slices[i]:
                if p not in masks:
                    masks[p] = torch.ones_like(p, dtype=p.dtype)
                masks[p].index_fill_(dim, idx.to(p.device), 0.0)
        return masks

    @torch.no_grad()
    def _select(self, count: int, before: dict[Tensor, Tensor]) -> list[int]:
        """The ``count`` lowest-saliency groups among those not yet redundant, keeping one
        group per family."""
        candidates = [i for i in range(len(self._slices)) if i not in set(self.redundant)]
        if count <= 0 or not candidates:
            return []
        x_parts = [
            [before[p].index_select(d, i) for p, d, i in self._slices[g]] for g in candidates
        ]
        d_parts = [
            [(before[p] - p.detach()).index_select(d, i) for p, d, i in self._slices[g]]
            for g in candidates
        ]
        scores = saliency_scores(x_parts, d_parts, self.saliency)
        left = {f: len([i for i in ids if i not in set(self.redundant)])
                for f, ids in self._families.items()}  # fmt: skip
        family_of = {i: g.family for i, g in enumerate(self.partition.groups)}
        chosen = []
        for j in torch.argsort(scores, stable=True).tolist():
            g = candidates[j]
            if left[family_of[g]] > 1:
                chosen.append(g)
                left[family_of[g]] -= 1
                if len(chosen) == count:
                    break
        return sorted(chosen)

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102 - see the class docstring
        self.num_steps += 1
        where = self._period_position()
        starting = where is not None and where[1] == 0
        before = {}
        if starting:
            for slices in self._slices:
                for p, _, _ in slices:
                    before.setdefault(p, p.detach().clone())
        loss = self.base_optimizer.step(closure)
        if starting:
            self.redundant = sorted(set(self.redundant) | set(self.active))
            self._zero_masks = self._masks(self.redundant)
            self.active = self._select(self.period_counts[where[0]], before)
            self._active_masks = self._masks(self.active)
        if where is not None and self.active:
            period, t = where
            factor = (self.period_steps - t - 1.0) / (self.period_steps - t)
            for p, mask in self._active_masks.items():
                p.mul_(mask + (1.0 - mask) * factor)
            if t == self.period_steps - 1:  # the period's groups are now exactly zero
                self.redundant = sorted(set(self.redundant) | set(self.active))
                self.active = []
                self._active_masks = {}
                self._zero_masks = self._masks(self.redundant)
        for p, mask in self._zero_masks.items():
            p.mul_(mask)
        return loss

    @property
    def group_sparsity(self) -> float:
        """Fraction of the groups whose producer entries are all exactly zero."""
        zero = sum(
            all(bool((p.index_select(d, i) == 0).all()) for p, d, i in slices)
            for slices in self._slices
        )
        return zero / max(1, len(self._slices))

    def state_dict(self) -> dict[str, Any]:
        return {
            "base": self.base_optimizer.state_dict(),
            "num_steps": self.num_steps,
            "redundant": list(self.redundant),
            "active": list(self.active),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.base_optimizer.load_state_dict(state_dict["base"])
        self.param_groups = self.base_optimizer.param_groups
        self.state = self.base_optimizer.state
        self.num_steps = state_dict["num_steps"]
        self.redundant = list(state_dict["redundant"])
        self.active = list(state_dict["active"])
        self._zero_masks = self._masks(self.redundant)
        self._active_masks = self._masks(self.active)
