"""An AlgoPerf submission as a trainlab :class:`~trainlab.spec.Algorithm`.

The runner's calls map onto AlgoPerf's runner (``submission_runner.py``, v0.6) like this, all
but the batch size on the clock, as there:

* ``batch_size`` -> ``get_batch_size(workload.name)``; a submission lists AlgoPerf's workload
  names and raises for others, so then the trainlab workload's ``batch_size_hint`` is used and
  a :class:`SubmissionWarning` says so, once per submission and workload in a process.
* ``init`` -> ``init_optimizer_state(workload, model_params, model_state, hyperparameters,
  rng)``: ``model_params`` is the runner's freshly built ``nn.Module``, ``model_state`` None.
* drawing a batch -> ``data_selection(workload, input_queue, optimizer_state,
  current_param_container, model_state, hyperparameters, global_step, rng)``, where
  ``input_queue`` yields the workload's shuffled batches as dicts.
* ``update`` -> ``update_params(workload=, current_param_container=, current_params_types=,
  model_state=, hyperparameters=, batch=, loss_type=, optimizer_state=, eval_results=,
  global_step=, rng=)`` plus ``train_state=`` (a read-only mapping) when its signature takes
  it; it must return ``(optimizer_state, params, model_state)``. The loss reported to the
  runner is the last ``workload.loss_fn`` mean the submission computed (0 if it never called
  ``loss_fn``). ``spec.TrainingCompleteError`` ends training: later steps do nothing.
* ``prepare_for_eval`` -> the submission's ``prepare_for_eval`` (same keywords less ``batch``
  and ``train_state``) when it defines one, then the returned params are evaluated.
* each untimed evaluation is appended to ``eval_results`` as ``(global_step, metrics)``, with
  ``accumulated_submission_time`` (timed seconds), as AlgoPerf's runner appends it.
* the learning rate logged with each evaluation is that of the first torch optimizer found in
  ``optimizer_state`` (itself, or a value of its dict).

``hyperparameters`` is a namedtuple of the trial's point (attribute access; ``hasattr`` is
False for names the space lacks), or ``None`` when the space is empty (self-tuning). ``rng`` is
a numpy ``int64`` array ``[seed, global_step, purpose]``: PyTorch submissions seed from it or
ignore it.
"""

from __future__ import annotations

import collections
import hashlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from trainlab.algoperf.compat import spec_module
from trainlab.algoperf.loader import SubmissionError, accepts, load_module
from trainlab.algoperf.search_space import SpaceFile
from trainlab.algoperf.workload import SubmissionWorkload, as_dict
from trainlab.spec import Algorithm, EvalRecord, SearchSpace, TrainState, Workload


class SubmissionWarning(UserWarning):
    """Something about a submission trainlab worked around (an unknown workload name)."""


_warned: set[tuple[str, str]] = set()
_modules: dict[tuple[str, float, str], ModuleType] = {}

#: the ``rng`` purposes (third entry of the array)
_INIT, _SELECT, _UPDATE, _PREPARE = range(4)


def _rng(seed: int, step: int, purpose: int) -> np.ndarray:
    return np.array([seed, step, purpose], dtype=np.int64)


def module_for(path: Path, device: torch.device | str = "cpu") -> ModuleType:
    """The submission imported for ``device`` (cached while the file is unchanged)."""
    key = (str(path), path.stat().st_mtime if path.exists() else 0.0, str(device))
    if key not in _modules:
        _modules[key] = load_module(path, device)
    return _modules[key]


@dataclass(kw_only=True)
class SubmissionState(TrainState):
    """What the runner carries between a submission's calls (AlgoPerf's loop variables)."""

    module: ModuleType
    adapter: SubmissionWorkload
    hyperparameters: Any
    seed: int
    optimizer_state: Any = None
    model_state: Any = None
    global_step: int = 0
    eval_results: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    train_state: dict[str, Any] = field(default_factory=dict)


def _check_return(value: Any, fn: str, path: Path) -> tuple[Any, nn.Module, Any]:
    if not (isinstance(value, tuple | list) and len(value) == 3):
        got = f"a {type(value).__name__}" + (
            f" of length {len(value)}" if isinstance(value, tuple | list) else ""
        )
        raise SubmissionError(f"algoperf submission {path}: {fn} returned {got}, expected "
                              "(optimizer_state, params, model_state)")  # fmt: skip
    if not isinstance(value[1], nn.Module):
        kind = type(value[1]).__name__
        raise SubmissionError(f"algoperf submission {path}: {fn} returned params of type "
                              f"{kind}, expected the torch.nn.Module")  # fmt: skip
    return value[0], value[1], value[2]


class SubmissionAlgorithm(Algorithm):
    """Run the AlgoPerf submission at ``path`` (absolute) under trainlab's timing rules; its
    search space is ``space`` (an AlgoPerf JSON file read by
    :mod:`trainlab.algoperf.search_space`), none (self-tuning) by default. ``name`` is the
    registry name (``algoperf:PATH[?space=FILE|?hparams=FILE]``), what workers resolve."""

    def __init__(self, path: Path, name: str, space: SpaceFile | None = None) -> None:
        self.path = path
        self.name = name
        self.module = module_for(path)
        self.source_digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        self.search_space = space.space if space is not None else SearchSpace()
        #: the list form's points, run in order by external tuning (else None)
        self.fixed_points = space.points if space is not None else None
        doc = (self.module.__doc__ or "").strip().splitlines()
        self.description = f"AlgoPerf submission {path.name}" + (f": {doc[0]}" if doc else "")
        self._checked: set[str] = set()

    # -- untimed ------------------------------------------------------------------------------
    def batch_size(self, workload: Workload, hp: dict[str, Any]) -> int:
        try:
            size = self.module.get_batch_size(workload.name)
        except Exception as exc:
            key = (str(self.path), workload.name)
            if key not in _warned:
                _warned.add(key)
                warnings.warn(
                    f"{self.path.name}: get_batch_size({workload.name!r}) raised "
                    f"{type(exc).__name__}; using the workload's batch_size_hint "
                    f"{workload.batch_size_hint}", SubmissionWarning, stacklevel=2,
                )  # fmt: skip
            return int(workload.batch_size_hint)
        if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
            raise SubmissionError(
                f"algoperf submission {self.path}: get_batch_size({workload.name!r}) returned "
                f"{size!r}, not an int >= 1"
            )
        return int(size)

    def check_workload(self, workload: Workload) -> None:
        """A dry run (one init, step and evaluation preparation on a throwaway model, untimed,
        RNG untouched) so that a submission that breaks AlgoPerf's contract (``update_params``
        returning the wrong shape, say) is refused before anything is stored. Other errors in
        the submission's code are left to the trial, which records them as ``failed``."""
        if workload.full_name in self._checked:
            return
        self._checked.add(workload.full_name)
        hp = self.search_space.validate({})
        with torch.random.fork_rng(devices=[]):
            try:
                model = workload.init_model(0)
                state = self.init(workload, model, hp, 0)
                stream = workload.batches(self.batch_size(workload, hp), 0)
                self.update(state, next(self.select_data(state, stream)), 0)
                self.prepare_for_eval(state)
            except SubmissionError:
                raise
            except Exception:
                return

    # -- timed --------------------------------------------------------------------------------
    def init(self, workload: Workload, model: nn.Module, hp: dict[str, Any],
             seed: int) -> SubmissionState:  # fmt: skip
        module = self.module if workload.device.type == "cpu" else module_for(
            self.path, workload.device)  # fmt: skip
        adapter = SubmissionWorkload(workload, spec_module())
        hyper = None
        if len(self.search_space):
            hyper = collections.namedtuple("Hyperparameters", list(hp))(**hp)
        state = SubmissionState(workload=workload, model=model, hp=hp, module=module,
                                adapter=adapter, hyperparameters=hyper, seed=seed)  # fmt: skip
        state.train_state = {"validation_goal_reached": False, "training_complete": False,
                             "accumulated_submission_time": 0.0, "last_eval_time": 0.0,
                             "is_time_remaining": True}  # fmt: skip
        state.optimizer_state = module.init_optimizer_state(
            adapter, model, None, hyper, _rng(seed, 0, _INIT)
        )
        state.optimizer = _find_optimizer(state.optimizer_state)
        return state

    def select_data(self, state: SubmissionState, stream: Iterator[Any]) -> Iterator[Any]:
        queue = (as_dict(b) for b in stream)
        while True:
            yield state.module.data_selection(
                state.adapter, queue, state.optimizer_state, state.model, state.model_state,
                state.hyperparameters, state.global_step,
                _rng(state.seed, state.global_step, _SELECT),
            )  # fmt: skip

    def update(self, state: SubmissionState, batch: Any, step: int) -> Tensor:
        state.global_step = step
        if state.train_state["training_complete"]:
            return _last_loss(state)
        fn = state.module.update_params
        kwargs = dict(
            workload=state.adapter, current_param_container=state.model,
            current_params_types=state.adapter.model_params_types,
            model_state=state.model_state, hyperparameters=state.hyperparameters, batch=batch,
            loss_type=state.adapter.loss_type, optimizer_state=state.optimizer_state,
            eval_results=state.eval_results, global_step=step,
            rng=_rng(state.seed, step, _UPDATE),
        )  # fmt: skip
        if accepts(fn, "train_state"):
            kwargs["train_state"] = MappingProxyType(state.train_state)
        state.adapter.last_loss = None
        try:
            out = fn(**kwargs)
        except state.adapter.spec.TrainingCompleteError:
            state.train_state["training_complete"] = True
        else:
            state.optimizer_state, state.model, state.model_state = _check_return(
                out, "update_params", self.path
            )
        state.global_step = step + 1
        return _last_loss(state)

    def prepare_for_eval(self, state: SubmissionState) -> nn.Module:
        fn = getattr(state.module, "prepare_for_eval", None)
        if fn is not None:
            out = fn(
                workload=state.adapter, current_param_container=state.model,
                current_params_types=state.adapter.model_params_types,
                model_state=state.model_state, hyperparameters=state.hyperparameters,
                loss_type=state.adapter.loss_type, optimizer_state=state.optimizer_state,
                eval_results=state.eval_results, global_step=state.global_step,
                rng=_rng(state.seed, state.global_step, _PREPARE),
            )  # fmt: skip
            state.optimizer_state, state.model, state.model_state = _check_return(
                out, "prepare_for_eval", self.path
            )
        return state.model

    def observe_evaluation(self, state: SubmissionState, record: EvalRecord) -> None:
        """Append the evaluation to ``eval_results`` and update ``train_state`` (untimed)."""
        metrics = {**record.metrics, "accumulated_submission_time": record.timed_seconds}
        state.eval_results.append((record.step, metrics))
        state.train_state["accumulated_submission_time"] = record.timed_seconds
        state.train_state["last_eval_time"] = record.timed_seconds
        if state.workload.target.is_met(record.metrics):
            state.train_state["validation_goal_reached"] = True

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["path"] = str(self.path)
        return out


def _find_optimizer(optimizer_state: Any) -> torch.optim.Optimizer | None:
    """The torch optimizer in a submission's state (itself, or a value of its dict, as in
    AlgoPerf's baselines), so that the runner can log its learning rate; else None."""
    if isinstance(optimizer_state, torch.optim.Optimizer):
        return optimizer_state
    if isinstance(optimizer_state, dict):
        for value in optimizer_state.values():
            if isinstance(value, torch.optim.Optimizer):
                return value
    return None


def _last_loss(state: SubmissionState) -> Tensor:
    loss = state.adapter.last_loss
    return loss if loss is not None else torch.zeros((), device=state.workload.device)
