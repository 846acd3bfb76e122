"""``sortednet``: NAdamW + warmup/cosine training the main model together with its nested
sub-models (:mod:`trainlab.methods.sortednet`; Valipour et al., 2023).

Per update (``sortednet_main=always``, the default): the main model's loss plus
``sortednet_n_sub`` sub-models drawn uniformly from the grid of widths 25, 50, 75, 100 % (and,
on a model with an ``nn.Sequential`` of ``blocks`` whose blocks hold an ``mlp``, the GPT, every
depth ``1..L`` too, width then nesting each block's MLP hidden units) without the main model,
summed and back-propagated before one optimizer step. ``sortednet_main=sampled`` is the
paper's Algorithm 1 as written: the ``sortednet_n_sub`` sub-models are drawn from the whole
grid, the main model included, and nothing else is trained (cheaper per update; the main
model gets fewer updates).

* :meth:`prepare_for_eval` returns the main model (the workload's architecture), so the
  benchmark's metric and time to target are the full model's.
* :meth:`compact_model` returns the sub-model of width ``sortednet_compact_width`` (default
  0.5; full depth) extracted as a standalone dense model; the runner records its size, FLOPs,
  validation metric and CPU inference speedup in the trial's ``model_cost``. Every other
  sub-model is one :meth:`~trainlab.methods.sortednet.SortedNet.extract` call away.
* The reported training loss is the main model's (``always``), or the mean of the sampled
  sub-models' (``sampled``).

Models other than Linear/Conv/BatchNorm stacks and the GPT (the GRU of ``forecast_gru``) are
refused before training, naming the module that blocks them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from trainlab.algorithms._common import MethodState, NadamwCosineMethod, derived_seed
from trainlab.methods.sortednet import SortedNet, SubModel
from trainlab.registry import register_algorithm
from trainlab.spec import Batch, Param, SearchSpace, Workload

#: the width fractions every run trains (the issue's goal: 25, 50, 75 and 100 %)
WIDTHS = (0.25, 0.5, 0.75, 1.0)
#: derived-seed purpose of the sub-model draws
SAMPLING = 11


@dataclass(kw_only=True)
class SortedNetState(MethodState):
    sortednet: SortedNet
    generator: torch.Generator
    #: the main model's loss of the last update
    main_loss: Tensor | None = None


def build_sortednet(workload: Workload, model: nn.Module, n_sub: int = 1,
                    include_main: bool = True) -> SortedNet:  # fmt: skip
    """The SortedNet of a workload's model: width over every hidden layer, or for a GPT-like
    model (``blocks`` of ``mlp``-holding blocks) each block's MLP width and every depth."""
    blocks = getattr(model, "blocks", None)
    if isinstance(blocks, nn.Sequential) and all(hasattr(b, "mlp") for b in blocks):
        return SortedNet(
            model, widths=WIDTHS, depths=range(1, len(blocks) + 1), n_sub=n_sub,
            width_scopes=[f"blocks.{i}.mlp" for i in range(len(blocks))], depth_attr="blocks",
            include_main=include_main,
        )  # fmt: skip
    example = workload.get_examples(torch.arange(2)).inputs
    return SortedNet(model, example, widths=WIDTHS, n_sub=n_sub, include_main=include_main)


class SortedNetAlgorithm(NadamwCosineMethod):
    """SortedNet (Valipour et al., 2023): sorted sub-models trained with the main model."""

    state_type = SortedNetState
    extra_space = SearchSpace((
        Param("sortednet_n_sub", 1, 1, 3, kind="int",
              help="sub-models sampled per update besides the main model (the paper's gacc)"),
        Param("sortednet_compact_width", 0.5, kind="choice", choices=(0.25, 0.5, 0.75),
              help="width of the sub-model recorded as the trial's compact model"),
        Param("sortednet_main", "always", kind="choice", choices=("always", "sampled"),
              help="train the main model every update (always) or only when drawn (sampled, "
                   "the paper's Algorithm 1)"),
    ))  # fmt: skip

    def __init__(self) -> None:
        super().__init__(
            "sortednet",
            "NAdamW + cosine training nested sub-models (widths 25-100 %, GPT depths) with the "
            "main model: one run yields every sub-model (SortedNet)",
        )

    def check_workload(self, workload: Workload) -> None:
        build_sortednet(workload, workload.init_model(0))  # raises for an unsupported model

    def make_state(
        self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int, /, **fields: Any
    ) -> SortedNetState:
        sortednet = build_sortednet(workload, model, hp["sortednet_n_sub"],
                                    include_main=hp["sortednet_main"] == "always")
        generator = torch.Generator().manual_seed(derived_seed(seed, SAMPLING))
        return super().make_state(workload, model, hp, seed, sortednet=sortednet,
                                  generator=generator, **fields)  # fmt: skip

    def training_loss(self, state: SortedNetState, batch: Batch) -> Tensor:
        """The main model's mean loss (``always``) plus the sampled sub-models' (one backward,
        one step)."""
        smoothing = (
            state.hp["label_smoothing"] if state.workload.loss_type == "cross_entropy" else 0.0
        )
        losses = [super().training_loss(state, batch)] if state.sortednet.include_main else []
        for sub in state.sortednet.sample(state.generator):
            view = state.sortednet.submodel(sub)
            losses.append(state.workload.mean_loss(view, batch, label_smoothing=smoothing))
        total = torch.stack(losses)
        state.main_loss = (total[0] if state.sortednet.include_main else total.mean()).detach()
        return total.sum()

    def update(self, state: SortedNetState, batch: Batch, step: int) -> Tensor:
        super().update(state, batch, step)
        return state.main_loss  # the main model's loss, comparable with other algorithms'

    def compact_model(self, state: SortedNetState) -> nn.Module:
        return state.sortednet.extract(float(state.hp["sortednet_compact_width"]))

    def submodel(self, state: SortedNetState, width: float, depth: int | None = None) -> nn.Module:
        """Any trained sub-model as a standalone dense model (benchmarks read the grid)."""
        return state.sortednet.extract(width, depth)


register_algorithm("sortednet", SortedNetAlgorithm)

__all__ = ["SortedNetAlgorithm", "SortedNetState", "SubModel", "build_sortednet"]
