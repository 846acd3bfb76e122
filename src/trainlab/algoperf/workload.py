"""The workload a submission sees: AlgoPerf's PyTorch workload API over a trainlab workload.

AlgoPerf's PyTorch workloads hand submissions the ``torch.nn.Module`` itself as the parameter
container (``current_param_container``) and keep BatchNorm statistics inside it, so
``model_state`` is ``None``; the same holds here. Batches are dicts ``{"inputs", "targets"}``
(no trainlab workload pads its examples, so none carries ``weights``); ``"indices"`` rides
along for trainlab's own bookkeeping and submissions may ignore it.

Mapping (trainlab -> AlgoPerf): ``max_runtime`` -> ``max_allowed_runtime_sec``,
``eval_period`` -> ``eval_period_time_sec``, ``target.metric`` -> ``target_metric_name``,
``loss_type`` ``cross_entropy``/``mse`` -> ``LossType.SOFTMAX_CROSS_ENTROPY``/
``MEAN_SQUARED_ERROR``, per-example losses (``loss_from_outputs``) -> ``loss_fn``'s
``per_example``. Parameter types are read from the module that owns each parameter
(Linear -> WEIGHT, ConvNd -> CONV_WEIGHT, BatchNorm -> BATCH_NORM_*, *Norm -> LAYER_NORM_*,
Embedding -> EMBEDDING, other 1-D -> BIAS). The output layer (``is_output_params``) is the
last Linear or Conv module; with tied embeddings its weight is the embedding's.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import Tensor, nn

from trainlab.spec import Batch, Workload


def _param_type(spec: Any, module: nn.Module, leaf: str, param: Tensor) -> Any:
    kinds = spec.ParameterType
    bias = leaf == "bias"
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return kinds.BATCH_NORM_BIAS if bias else kinds.BATCH_NORM_SCALE
    if isinstance(module, nn.Embedding):
        return kinds.EMBEDDING
    if isinstance(module, nn.modules.conv._ConvNd):
        return kinds.BIAS if bias else kinds.CONV_WEIGHT
    if isinstance(module, nn.Linear):
        return kinds.BIAS if bias else kinds.WEIGHT
    if "norm" in type(module).__name__.lower():
        return kinds.LAYER_NORM_BIAS if bias else kinds.LAYER_NORM_SCALE
    return kinds.BIAS if param.ndim <= 1 else kinds.WEIGHT


class SubmissionWorkload:
    """AlgoPerf's workload interface (the attributes and methods submissions call) over the
    trainlab ``workload``; ``spec`` is the ``spec`` module the submission imported."""

    metrics_logger = None

    def __init__(self, workload: Workload, spec: Any) -> None:
        self.workload = workload
        self.spec = spec
        self._shapes: dict[str, Any] | None = None
        self._types: dict[str, Any] | None = None
        self._output: set[str] = set()
        #: the mean loss of the last ``loss_fn`` call (what ``update`` reports to the runner)
        self.last_loss: Tensor | None = None

    # -- fixed attributes ---------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.workload.full_name

    @property
    def step_hint(self) -> int:
        return int(self.workload.step_hint)

    @property
    def max_allowed_runtime_sec(self) -> float:
        return float(self.workload.max_runtime)

    @property
    def eval_period_time_sec(self) -> float:
        return float(self.workload.eval_period)

    @property
    def target_metric_name(self) -> str:
        return self.workload.target.metric

    @property
    def validation_target_value(self) -> float:
        return float(self.workload.target.value)

    @property
    def num_train_examples(self) -> int:
        return int(self.workload.train_size)

    @property
    def loss_type(self) -> Any:
        kinds = self.spec.LossType
        if self.workload.loss_type == "mse":
            return kinds.MEAN_SQUARED_ERROR
        return kinds.SOFTMAX_CROSS_ENTROPY

    def has_reached_validation_target(self, eval_result: dict[str, float]) -> bool:
        return self.workload.target.is_met(eval_result)

    # -- parameters ---------------------------------------------------------------------------
    def _describe_params(self) -> None:
        if self._shapes is not None:
            return
        model = self.workload.init_model(0)  # shapes and roles only: any seed will do
        owner: dict[int, tuple[nn.Module, str]] = {}
        last = None
        for module in model.modules():
            for leaf, param in module.named_parameters(recurse=False):
                owner.setdefault(id(param), (module, leaf))
            if isinstance(module, nn.Linear | nn.modules.conv._ConvNd):
                last = module
        output = {id(p) for p in last.parameters(recurse=False)} if last is not None else set()
        self._shapes, self._types = {}, {}
        for name, param in model.named_parameters():
            module, leaf = owner[id(param)]
            self._shapes[name] = self.spec.ShapeTuple(tuple(param.shape))
            self._types[name] = _param_type(self.spec, module, leaf, param)
            if id(param) in output:
                self._output.add(name)

    @property
    def param_shapes(self) -> dict[str, Any]:
        """``{parameter name: ShapeTuple}`` in ``named_parameters`` order."""
        self._describe_params()
        return self._shapes

    @property
    def model_params_types(self) -> dict[str, Any]:
        """``{parameter name: spec.ParameterType}`` (see the module for the rules)."""
        self._describe_params()
        return self._types

    def is_output_params(self, param_key: str) -> bool:
        """Whether ``param_key`` (a ``named_parameters`` name) belongs to the output layer."""
        self._describe_params()
        return param_key in self._output

    # -- model and loss -----------------------------------------------------------------------
    def init_model_fn(self, rng: Any, dropout_rate: float | None = None,
                      aux_dropout_rate: float | None = None) -> tuple[nn.Module, None]:  # fmt: skip
        """``(model, None)``: a fresh model, seeded from ``rng`` (an int or integer array).
        trainlab's models have fixed dropout, so the rates are ignored."""
        seed = int(torch.as_tensor(rng).flatten()[0].item()) if rng is not None else 0
        return self.workload.init_model(seed % (2**31)), None

    def model_fn(self, params: nn.Module, augmented_and_preprocessed_input_batch: dict[str, Any],
                 model_state: Any, mode: Any, rng: Any, update_batch_norm: bool,
                 dropout_rate: float | None = None) -> tuple[Tensor, Any]:  # fmt: skip
        """``(logits, model_state)``: the workload's forward pass of ``params`` on the batch's
        ``inputs``; TRAIN puts the modules in training mode and keeps gradients, EVAL uses
        eval mode under ``torch.no_grad``. ``update_batch_norm=False`` in TRAIN normalizes with
        batch statistics but leaves the running averages unchanged (momentum 0, as AlgoPerf)."""
        train = mode == self.spec.ForwardPassMode.TRAIN
        if params.training != train:
            params.train(train)
        batch = _as_batch(augmented_and_preprocessed_input_batch)
        frozen: list[tuple[nn.Module, Any]] = []
        if train and not update_batch_norm:
            for m in params.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    frozen.append((m, m.momentum))
                    m.momentum = 0.0
        try:
            with contextlib.nullcontext() if train else torch.no_grad():
                logits = self.workload.forward(params, batch)
        finally:
            for m, momentum in frozen:
                m.momentum = momentum
        return logits, model_state

    def loss_fn(self, label_batch: Tensor, logits_batch: Tensor, mask_batch: Tensor | None = None,
                label_smoothing: float = 0.0) -> dict[str, Tensor]:  # fmt: skip
        """``{"summed", "n_valid_examples", "per_example"}``: the workload's per-example loss
        (shape ``[batch]``; label smoothing on cross-entropy workloads only), masked by
        ``mask_batch`` (``[batch]``, 1 = a real example) when given. ``summed /
        n_valid_examples`` is the mean training loss."""
        smoothing = float(label_smoothing) if self.workload.loss_type == "cross_entropy" else 0.0
        batch = Batch(logits_batch, label_batch, torch.empty(0, dtype=torch.long))
        per_example = self.workload.loss_from_outputs(logits_batch, batch, smoothing)
        if mask_batch is not None:
            per_example = per_example * mask_batch
            n_valid = mask_batch.sum()
        else:
            n_valid = torch.tensor(float(per_example.shape[0]), device=per_example.device)
        summed = per_example.sum()
        self.last_loss = (summed / n_valid).detach()
        return {"summed": summed, "n_valid_examples": n_valid, "per_example": per_example}


def as_dict(batch: Batch) -> dict[str, Tensor]:
    """A trainlab batch as AlgoPerf's batch dict."""
    return {"inputs": batch.inputs, "targets": batch.targets, "indices": batch.indices}


def _as_batch(batch: Any) -> Batch:
    if isinstance(batch, Batch):
        return batch
    inputs = batch["inputs"]
    targets = batch.get("targets", inputs)
    indices = batch.get("indices", torch.full((len(inputs),), -1))
    return Batch(inputs, targets, indices)
