"""What a submission imports as ``algoperf.spec`` (v0.6) or ``algorithmic_efficiency.spec``
(v0.5) when the real package is not installed: the enumerations, the type aliases and the
exception of AlgoPerf's submission API, written from its documentation (``DOCUMENTATION.md``,
"Submission API"). Only names submissions use are here; the aliases are ``Any``-based, as in
AlgoPerf, so annotations work and nothing is checked.

The workload a submission receives is :class:`trainlab.algoperf.workload.SubmissionWorkload`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from typing import Any


class LossType(enum.Enum):
    """Which loss a workload trains with (``workload.loss_type``)."""

    SOFTMAX_CROSS_ENTROPY = 0
    SIGMOID_CROSS_ENTROPY = 1
    MEAN_SQUARED_ERROR = 2
    CTC_LOSS = 3
    MEAN_ABSOLUTE_ERROR = 4


class ForwardPassMode(enum.Enum):
    """``model_fn``'s mode: TRAIN (modules in training mode, gradients) or EVAL."""

    TRAIN = 0
    EVAL = 1


class ParameterType(enum.Enum):
    """The role of each parameter (``workload.model_params_types``), for per-type rules."""

    WEIGHT = 0
    BIAS = 1
    CONV_WEIGHT = 2
    BATCH_NORM_SCALE = 3
    BATCH_NORM_BIAS = 4
    LAYER_NORM_SCALE = 5
    LAYER_NORM_BIAS = 6
    EMBEDDING = 7
    ATTENTION_Q = 8
    ATTENTION_K = 9
    ATTENTION_V = 10
    ATTENTION_OUT = 11
    ATTENTION_QKV = 12
    ATTENTION_KV = 13
    ATTENTION_BIAS = 14


class ShapeTuple:
    """A parameter's shape as a leaf of ``workload.param_shapes`` (``.shape_tuple``)."""

    def __init__(self, shape_tuple: tuple[int, ...]) -> None:
        self.shape_tuple = tuple(shape_tuple)

    def __repr__(self) -> str:
        return f"ShapeTuple({self.shape_tuple})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ShapeTuple) and other.shape_tuple == self.shape_tuple

    def __hash__(self) -> int:
        return hash(self.shape_tuple)


class TrainingCompleteError(Exception):
    """Raised by ``update_params`` to end training early (the runner stops the trial)."""


Tensor = Any
Shape = Any
ParameterShapeTree = dict[str, Any]
ParameterKey = str
ParameterContainer = Any  # PyTorch: the torch.nn.Module itself
ParameterTypeTree = dict[str, ParameterType]
RandomState = Any
Seed = Any
ModelAuxiliaryState = Any
ModelInitState = tuple[Any, Any]
OptimizerState = Any
Hyperparameters = Any  # a namedtuple of the trial's point (None when self-tuning)
Timing = int
Steps = int
UpdateReturn = tuple[OptimizerState, ParameterContainer, ModelAuxiliaryState]
Workload = Any  # trainlab.algoperf.workload.SubmissionWorkload
InitOptimizerFn = Callable[..., OptimizerState]
UpdateParamsFn = Callable[..., UpdateReturn]
PrepareForEvalFn = Callable[..., UpdateReturn]
DataSelectionFn = Callable[..., dict[str, Tensor]]
InputQueue = Iterator[dict[str, Tensor]]
LossFn = Callable[..., dict[str, Tensor]]
