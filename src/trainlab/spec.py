"""The contracts between workloads, training algorithms and the benchmark.

A :class:`Workload` is fixed (data, model, loss, evaluation, target, budget); an
:class:`Algorithm` is everything a submission may choose (batch size, optimizer, schedule,
which data to train on, which weights to evaluate). The runner in ``trainlab.bench.runner``
connects the two under the timing rules. Nothing in this module knows about timing or storage.
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import torch
from torch import Tensor, nn

from trainlab.errors import HyperparameterError, OutOfRangeWarning, TrainlabError
from trainlab.nn_utils import shuffled_batches
from trainlab.search_space import Param, SearchSpace

__all__ = [  # the contracts; errors and search spaces live in their own modules
    "EVALS_PER_RUN", "FINISHED", "UNFINISHED", "Algorithm", "Batch", "EvalRecord",
    "HyperparameterError", "OutOfRangeWarning", "Param", "SearchSpace", "Target",
    "TrainState", "TrainlabError", "TrialStatus", "Workload", "WorkloadSpec", "eval_period_for",
]  # fmt: skip


# --------------------------------------------------------------------------------------------
# Targets and evaluation records


@dataclass(frozen=True)
class Target:
    """The validation metric value a run must reach, and in which direction is better."""

    metric: str
    value: float
    higher_is_better: bool

    def is_met(self, metrics: Mapping[str, float]) -> bool:
        got = metrics.get(self.metric, math.nan)
        if not math.isfinite(got):
            return False
        return got >= self.value if self.higher_is_better else got <= self.value

    def better(self, a: float, b: float) -> bool:
        """True when metric value ``a`` is strictly better than ``b``."""
        return a > b if self.higher_is_better else a < b

    def describe(self) -> str:
        return f"{self.metric} {'>=' if self.higher_is_better else '<='} {self.value:g}"


class TrialStatus(StrEnum):
    """Where a trial is: ``pending`` (planned) -> ``running`` -> one of the finished outcomes.

    ``reached`` met the target; ``missed`` spent its budget without; ``diverged`` hit a NaN or
    infinite loss (scored as a miss, not a crash); ``stopped-early`` was ended by the benchmark's
    learning-curve rule (``bench.early_stop``: it would not reach the target; a miss);
    ``failed`` raised (the algorithm's error); ``interrupted`` is unfinished, like ``pending``.
    Members are strings, so they compare equal to what the store holds."""

    PENDING = "pending"
    RUNNING = "running"
    REACHED = "reached"
    MISSED = "missed"
    DIVERGED = "diverged"
    STOPPED_EARLY = "stopped-early"
    FAILED = "failed"
    #: stopped by something other than the algorithm (Ctrl-C in a benchmark, a store failure,
    #: a lost worker): a benchmark, a resume or a worker runs it again
    INTERRUPTED = "interrupted"


UNFINISHED = frozenset({TrialStatus.PENDING, TrialStatus.RUNNING, TrialStatus.INTERRUPTED})
FINISHED = frozenset(set(TrialStatus) - UNFINISHED)


@dataclass(frozen=True)
class EvalRecord:
    """One untimed evaluation: after ``step`` updates and ``timed_seconds`` of timed training."""

    step: int
    timed_seconds: float
    metrics: dict[str, float]
    #: mean training loss of the last update before the evaluation (``None`` when unknown)
    train_loss: float | None = None
    #: learning rate of the first parameter group at the evaluation (``None`` when unknown)
    lr: float | None = None


#: the fewest evaluations over a full-length run. AlgoPerf picks its eval period so evaluation is
#: 10-20 % of a run; here evaluation is cheap and untimed, so the period is set for resolution.
EVALS_PER_RUN = 50


def eval_period_for(budget: float, workload_period: float = math.inf) -> float:
    """The eval period of a ``budget`` (timed seconds) that leaves room for ``EVALS_PER_RUN``
    evaluations: an evaluation waits for the step in flight and its ``prepare_for_eval``, so a
    cycle runs a little longer than the period; the period is ``budget / (1.2 x 50)``. A
    workload may ask for a finer one."""
    return min(float(workload_period), budget / (1.2 * EVALS_PER_RUN))


@dataclass(frozen=True)
class WorkloadSpec:
    """What one trial is measured against, resolved once when the trial is planned.

    The benchmark resolves it (from the tuned targets file, the workload's class values, or a
    user's file: ``source``), stores it in the trial row and hands it to the worker, which
    builds the workload with :meth:`Workload.with_spec`; nothing re-resolves it later.

    ``max_runtime`` is the trial's timed budget in seconds (after any ruleset multiplier),
    ``eval_period`` the timed seconds between evaluations, ``step_hint`` the schedule unit in
    updates. In step mode ``eval_every_steps`` and ``max_steps`` are set and time plays no part.
    """

    target: Target
    max_runtime: float
    eval_period: float
    step_hint: int
    source: str = "class"
    eval_every_steps: int | None = None
    max_steps: int | None = None

    def __post_init__(self) -> None:
        if not (self.max_runtime > 0 and math.isfinite(self.max_runtime)):
            raise TrainlabError(f"max_runtime must be a finite number > 0, got {self.max_runtime}")
        if not (self.eval_period > 0 and math.isfinite(self.eval_period)):
            raise TrainlabError(f"eval_period must be a finite number > 0, got {self.eval_period}")
        if self.step_hint < 1:
            raise TrainlabError(f"step_hint must be >= 1, got {self.step_hint}")
        if (self.eval_every_steps is None) != (self.max_steps is None):
            raise TrainlabError("step mode needs both eval_every_steps and max_steps")
        if self.eval_every_steps is not None and min(self.eval_every_steps, self.max_steps) < 1:
            raise TrainlabError("eval_every_steps and max_steps must be >= 1")

    @property
    def step_mode(self) -> bool:
        return self.eval_every_steps is not None

    @property
    def mode(self) -> str:
        return "steps" if self.step_mode else "time"

    def describe(self) -> str:
        """One line for summaries: the target and where it came from, and the budget."""
        budget = (
            f"{self.max_steps} steps, eval every {self.eval_every_steps}"
            if self.step_mode
            else f"{self.max_runtime:g} s, eval every {self.eval_period:.3g} s"
        )
        return f"{self.target.describe()} ({self.source} target); {budget}"


# --------------------------------------------------------------------------------------------
# Data


@dataclass
class Batch:
    """A mini-batch. ``indices`` are the examples' positions in the training split (data
    selection and self-distillation key on them); freshly generated examples have ``-1``."""

    inputs: Tensor
    targets: Tensor
    indices: Tensor

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def subset(self, rows: Tensor) -> Batch:
        return Batch(self.inputs[rows], self.targets[rows], self.indices[rows])


# --------------------------------------------------------------------------------------------
# Workloads


class Workload(ABC):
    """A fixed training problem: data, model, loss, evaluation, target and budget.

    Subclasses set the class attributes and implement the abstract methods. A training
    algorithm may call anything here but must not change the model architecture, the loss,
    the data or the evaluation.
    """

    name: str
    target: Target
    #: seconds of timed training allowed (time mode)
    max_runtime: float
    #: seconds of timed training between untimed evaluations (time mode)
    eval_period: float
    #: updates a tuned baseline needs; schedules may use it as their horizon
    step_hint: int
    #: step budget in step mode (deterministic mode); default ``3 * step_hint``
    max_steps: int = 0
    #: evaluation period in step mode when the user does not give one
    eval_every_steps: int = 0
    #: a batch size that suits the workload on a small machine (algorithms may ignore it)
    batch_size_hint: int = 128
    #: "cross_entropy" (label smoothing and soft targets apply) or "mse"
    loss_type: str = "cross_entropy"
    #: True when examples can be generated without limit (one-pass training on fresh data)
    generative: bool = False
    #: names of held-out variants, see :meth:`variant`
    variants: tuple[str, ...] = ()
    #: the variant this instance is ("" for the base workload)
    variant_name: str = ""

    device: torch.device = torch.device("cpu")

    # -- data ---------------------------------------------------------------------------------
    @property
    @abstractmethod
    def train_size(self) -> int:
        """Number of training examples."""

    @abstractmethod
    def get_examples(self, indices: Tensor) -> Batch:
        """The training examples at ``indices`` as a batch (on the workload's device)."""

    def batches(self, batch_size: int, seed: int, indices: Tensor | None = None) -> Iterator[Batch]:
        """An endless stream of shuffled training batches (reshuffled every epoch), drawn by
        index from in-memory tensors with a seeded generator. ``indices`` restricts the stream
        to a subset of the training split (data selection)."""
        pool = torch.arange(self.train_size) if indices is None else indices.cpu().long()
        if len(pool) == 0:
            raise ValueError("cannot draw batches from an empty subset")
        gen = torch.Generator().manual_seed(int(seed))
        if len(pool) < batch_size:  # subset smaller than one batch: sample with repeats
            while True:
                rows = pool[torch.randint(len(pool), (batch_size,), generator=gen)]
                yield self.get_examples(rows)
        for rows in shuffled_batches(pool, batch_size, gen):
            yield self.get_examples(rows)

    def fresh_batches(self, batch_size: int, seed: int) -> Iterator[Batch]:
        """Endless batches of newly generated examples (``generative`` workloads only)."""
        raise TrainlabError(f"workload {self.name} cannot generate fresh examples")

    # -- model and loss -----------------------------------------------------------------------
    @abstractmethod
    def init_model(self, seed: int) -> nn.Module:
        """A freshly initialised model (deterministic for ``seed``) on the workload's device."""

    def forward(self, model: nn.Module, batch: Batch) -> Tensor:
        """The model's outputs (logits or predictions) for a batch."""
        return model(batch.inputs)

    @abstractmethod
    def loss_from_outputs(
        self,
        outputs: Tensor,
        batch: Batch,
        label_smoothing: float = 0.0,
        soft_targets: Tensor | None = None,
    ) -> Tensor:
        """Per-example losses, shape ``[len(batch)]``.

        ``label_smoothing`` and ``soft_targets`` (a probability distribution over classes per
        example, or per position for sequence models) apply to cross-entropy workloads only.
        """

    def loss(
        self,
        model: nn.Module,
        batch: Batch,
        label_smoothing: float = 0.0,
        soft_targets: Tensor | None = None,
    ) -> Tensor:
        """Per-example training losses (shape ``[len(batch)]``)."""
        return self.loss_from_outputs(
            self.forward(model, batch), batch, label_smoothing, soft_targets
        )

    def mean_loss(self, model: nn.Module, batch: Batch, label_smoothing: float = 0.0) -> Tensor:
        """The batch's mean training loss, equal to ``loss(...).mean()``. Workloads override it
        with a fused reduction, which saves a few percent of a small model's step when the
        per-example values are not needed."""
        return self.loss(model, batch, label_smoothing).mean()

    # -- evaluation ---------------------------------------------------------------------------
    @abstractmethod
    def evaluate(self, model: nn.Module, split: str = "valid") -> dict[str, float]:
        """Metrics on the ``valid`` or ``test`` split; untimed, in eval mode, without grad."""

    # -- variants -----------------------------------------------------------------------------
    def variant(self, name: str) -> Workload:
        """The held-out variant ``name`` (a different activation, width, norm or noise)."""
        raise TrainlabError(
            f"workload {self.name} has no variant {name!r}; "
            f"variants: {', '.join(self.variants) or 'none'}"
        )

    @property
    def full_name(self) -> str:
        return f"{self.name}:{self.variant_name}" if self.variant_name else self.name

    def class_spec(self) -> WorkloadSpec:
        """The workload's own (class) target and budgets; the eval period follows the rule
        :func:`eval_period_for` (at least ``EVALS_PER_RUN`` evaluations)."""
        return WorkloadSpec(
            target=self.target,
            max_runtime=float(self.max_runtime),
            eval_period=eval_period_for(self.max_runtime, self.eval_period),
            step_hint=int(self.step_hint),
            source="class",
        )

    def with_spec(self, spec: WorkloadSpec) -> Workload:
        """A copy of this workload measured against ``spec`` (target, budget, eval period,
        schedule unit). The data and models are shared, not rebuilt; ``self`` is unchanged."""
        clone = copy.copy(self)
        clone.target = spec.target
        clone.max_runtime = spec.max_runtime
        clone.eval_period = spec.eval_period
        clone.step_hint = spec.step_hint
        if spec.max_steps is not None:
            clone.max_steps = spec.max_steps
        if spec.eval_every_steps is not None:
            clone.eval_every_steps = spec.eval_every_steps
        return clone

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "variant": self.variant_name or None,
            "target": {
                "metric": self.target.metric,
                "value": self.target.value,
                "higher_is_better": self.target.higher_is_better,
            },
            "max_runtime": self.max_runtime,
            "eval_period": self.eval_period,
            "step_hint": self.step_hint,
            "batch_size_hint": self.batch_size_hint,
            "max_steps": self.step_budget,
            "eval_every_steps": self.eval_every_steps,
            "loss_type": self.loss_type,
            "generative": self.generative,
            "train_size": self.train_size,
            "variants": list(self.variants),
        }

    @property
    def step_budget(self) -> int:
        return self.max_steps or 3 * self.step_hint


# --------------------------------------------------------------------------------------------
# Algorithms


@dataclass
class TrainState:
    """What most algorithms carry between steps. A method with state of its own extends it
    with a typed dataclass (``@dataclass(kw_only=True) class MyState(TrainState): ...``)
    rather than a string-keyed dict."""

    workload: Workload
    model: nn.Module
    hp: dict[str, Any]
    optimizer: torch.optim.Optimizer | None = None
    scheduler: Any = None


class Algorithm(ABC):
    """A complete training procedure: a submission to the benchmark.

    The runner calls, in order: :meth:`batch_size` (untimed), :meth:`init` (timed), then per
    step ``next(select_data(...))`` and :meth:`update` (timed), and :meth:`prepare_for_eval`
    (timed) before each untimed evaluation. After training it calls :meth:`compact_model`
    (untimed) once, to measure what the trained model costs to run
    (:mod:`trainlab.bench.model_cost`), and :meth:`trial_record`. :meth:`check_workload` and
    :meth:`check_hyperparameters` refuse bad inputs before anything runs.
    """

    name: str
    search_space: SearchSpace = SearchSpace()
    description: str = ""
    #: a digest of code that lives outside trainlab and defines this algorithm (an AlgoPerf
    #: submission's file), part of a benchmark's fingerprint so that an edited file starts a
    #: new benchmark instead of resuming one trained with the old code; None when built in
    source_digest: str | None = None

    @property
    def self_tuning(self) -> bool:
        return len(self.search_space) == 0

    def batch_size(self, workload: Workload, hp: dict[str, Any]) -> int:
        return int(hp.get("batch_size", 128))

    def check_workload(self, workload: Workload) -> None:
        """Raise :class:`TrainlabError` when this algorithm cannot train ``workload`` (it needs
        fresh examples, or a cross-entropy loss, say). Called before anything is trained or
        stored, so the user gets one line instead of a failed trial. The default accepts
        every workload."""
        return None

    def check_hyperparameters(self, workload: Workload, hp: dict[str, Any]) -> None:
        """Raise :class:`TrainlabError` (one line) when the validated ``hp`` cannot train
        ``workload`` as resolved for the trial (budget and schedule unit set): a depth the model
        cannot take, a schedule past the budget. Called by the runner before the trial row
        starts, by ``run`` and by ``bench`` (every planned point) before any training. The
        default accepts everything."""
        return None

    @abstractmethod
    def init(self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int) -> Any:
        """Build the training state (optimizer, schedule, method state). Timed."""

    @abstractmethod
    def update(self, state: Any, batch: Batch, step: int) -> Tensor:
        """One training step on ``batch``; returns the mean training loss (a 0-d tensor)."""

    def select_data(self, state: Any, stream: Iterator[Batch]) -> Iterator[Batch]:
        """The batches to train on, drawn lazily; the default trains on ``stream`` as it is.
        Work done here (scoring examples, say) is timed when the runner draws a batch."""
        return stream

    def prepare_for_eval(self, state: Any) -> nn.Module:
        """The model to evaluate (e.g. EMA weights swapped in). Timed."""
        return state.model

    def observe_evaluation(self, state: Any, record: EvalRecord) -> None:
        """Untimed: the runner hands back each evaluation (AlgoPerf submissions read theirs
        in ``eval_results``). The default ignores it."""
        return None

    # -- checkpoints (``--search pbt``: a member resumes, or copies another's state) ------
    def check_checkpoints(self) -> None:
        """Raise :class:`TrainlabError` unless :meth:`state_dict`/:meth:`load_state_dict`
        capture the whole training state. Called before anything is trained."""
        if type(self).state_dict is Algorithm.state_dict:
            raise TrainlabError(f"algorithm {self.name} does not support checkpoints, so "
                                "--search pbt cannot run it")  # fmt: skip

    def state_dict(self, state: Any) -> dict[str, Any]:
        """The training state as tensors and plain containers (read back with
        ``torch.load(weights_only=True)``). Untimed."""
        self.check_checkpoints()
        return {}

    def load_state_dict(self, state: Any, sd: dict[str, Any]) -> None:
        """Restore ``sd`` into ``state``, built by :meth:`init` with the hyperparameters to go
        on with, which must take effect (an explored lr), not the saved ones. Untimed."""
        self.check_checkpoints()

    def compact_model(self, state: Any) -> nn.Module | None:
        """A standalone smaller dense model this training produced, or ``None`` (the default).

        A structured method returns its compact sub-network here (channels, units or heads
        removed, not masked): HESSO the model with its redundant groups removed, whose outputs
        equal the evaluated model's; SortedNet one of its nested sub-models. Called once after
        training, untimed; the runner records its size, FLOPs and CPU inference time relative
        to the evaluated model in the trial's ``model_cost``. It must not change ``state``."""
        return None

    def trial_record(self, state: Any) -> dict[str, Any] | None:
        """What the method did in this trial, a JSON-able dict, or ``None`` (the default).
        Called once after training, untimed, with the model cost; stored under ``"method"`` in
        the trial's ``model_cost`` for ``show`` and the report (AdaPT: per-layer bit-widths,
        modelled speedups). It must not change ``state``."""
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "self_tuning": self.self_tuning,
            "search_space": self.search_space.to_json(),
        }
