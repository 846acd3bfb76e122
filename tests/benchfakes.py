"""A tiny trainable workload and small algorithms for benchmark-protocol tests (milliseconds per
trial), registered under names no built-in uses, plus worker functions for executor tests."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from torch import nn

from trainlab.bench.executors import run_stored_trial
from trainlab.bench.store import Store
from trainlab.registry import _ALGORITHMS, _WORKLOADS, register_algorithm, register_workload
from trainlab.spec import Algorithm, Param, SearchSpace, Target, TrainState
from trainlab.workloads.base import ClassificationWorkload, Splits, seeded_model


def _blobs(n: int, seed: int, shift: float = 1.2) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=gen)
    x = torch.randn(n, 8, generator=gen) + shift * (2 * y[:, None].float() - 1)
    return x, y


class TinyBlobs(ClassificationWorkload):
    """Two Gaussian blobs in 8-d, a linear model (or a small MLP in the ``mlp`` variant)."""

    name = "tiny_blobs"
    target = Target("accuracy", 0.9, higher_is_better=True)
    max_runtime = 2.0
    eval_period = 0.02
    step_hint = 20
    eval_every_steps = 5
    num_classes = 2
    variants = ("mlp",)
    hidden = 0

    def __init__(self, device: str = "cpu") -> None:
        self.splits = Splits(*_blobs(512, 0), *_blobs(256, 1), *_blobs(256, 2))
        self.to(device)

    def variant(self, name: str):
        if name == "mlp":
            return self.with_changes(name, hidden=16)
        return super().variant(name)

    def init_model(self, seed: int) -> nn.Module:
        def build() -> nn.Module:
            if self.hidden:
                h = self.hidden
                return nn.Sequential(nn.Linear(8, h), nn.ReLU(), nn.Linear(h, 2))
            return nn.Linear(8, 2)

        return seeded_model(seed, build, self.device)


class PlainSGD(Algorithm):
    """SGD with one tunable learning rate (and a fixed batch size)."""

    name = "tiny_sgd"
    search_space = SearchSpace((Param("learning_rate", 0.1, 1e-3, 1.0, log=True),))

    def batch_size(self, workload, hp):
        return 32

    def init(self, workload, model, hp, seed):
        optimizer = torch.optim.SGD(model.parameters(), lr=hp["learning_rate"])
        return TrainState(workload, model, hp, optimizer)

    def update(self, state, batch, step):
        loss = state.workload.loss(state.model, batch).mean()
        state.optimizer.zero_grad()
        loss.backward()
        state.optimizer.step()
        return loss.detach()


class SelfTunedSGD(PlainSGD):
    """No hyperparameters: a self-tuning algorithm."""

    name = "tiny_selftuned"
    search_space = SearchSpace()

    def init(self, workload, model, hp, seed):
        return super().init(workload, model, {"learning_rate": 0.2}, seed)


class Crashing(PlainSGD):
    name = "tiny_crash"

    def update(self, state, batch, step):
        if step == 3:
            raise RuntimeError("boom at step 3")
        return super().update(state, batch, step)


for _name, _factory in (("tiny_blobs", TinyBlobs),):
    if _name not in _WORKLOADS:
        register_workload(_name)(_factory)
for _cls in (PlainSGD, SelfTunedSGD, Crashing):
    if _cls.name not in _ALGORITHMS:
        register_algorithm(_cls.name, _cls)


# --------------------------------------------------------------------------------------------
# worker functions for LocalExecutor tests (run in spawned pool processes)


def dying_worker(
    store_path, trial_id, full_curve=False, device="cpu", on_progress=None, owner=None
):
    """Marks the trial running; dies (like a segfault) when its hyperparameters say so, else
    finishes it as ``missed`` after a short while."""
    with Store(store_path, owner=owner, heartbeat=owner is None) as store:
        row = store.trial(trial_id)
        store.start_trial(trial_id)
        if row["hyperparameters"].get("die"):
            time.sleep(0.3)
            os._exit(9)
        time.sleep(0.3)
        store.finish_trial(trial_id, status="missed", steps=1)
    return {"trial_id": trial_id, "status": "missed", "pid": os.getpid()}


# --------------------------------------------------------------------------------------------
# worker functions for RayExecutor tests (run in Ray worker processes, which import this module
# by name: the executor passes the driver's import path on to them)


def registering_worker(
    store_path, trial_id, full_curve=False, device="cpu", on_progress=None, owner=None
):
    """``run_stored_trial`` in a process that has imported this module, so ``tiny_blobs`` and
    the tiny algorithms are registered there."""
    return run_stored_trial(store_path, trial_id, full_curve, device, on_progress, owner)


def blocking_worker(
    store_path, trial_id, full_curve=False, device="cpu", on_progress=None, owner=None
):
    """Marks the trial running and writes its pid to ``<store>.<trial_id>.pid``; then blocks
    until killed when its hyperparameters say ``block``, raises ValueError when they say
    ``raise``, else finishes it as ``missed``."""
    with Store(store_path, owner=owner, heartbeat=owner is None) as store:
        row = store.trial(trial_id)
        store.start_trial(trial_id)
    if row["hyperparameters"].get("raise"):
        raise ValueError(f"bad row {trial_id}")
    Path(f"{store_path}.{trial_id}.pid").write_text(str(os.getpid()))
    if row["hyperparameters"].get("block"):
        while True:
            time.sleep(0.1)
    with Store(store_path, owner=owner, heartbeat=owner is None) as store:
        store.finish_trial(trial_id, status="missed", steps=1)
    return {"trial_id": trial_id, "status": "missed", "pid": os.getpid()}
