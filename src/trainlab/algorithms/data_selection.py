"""Data-selection algorithms: NAdamW + warmup/cosine that choose *which* examples to train on.

* ``data_diet_el2n`` / ``data_diet_grand`` — :mod:`trainlab.methods.data_diet`: score every
  training example by EL2N / GraNd averaged over short runs from independent initialisations,
  keep the highest-scoring fraction (after an optional offset of the very hardest).
* ``hard_samples`` — :mod:`trainlab.methods.hard_samples`: from each pool of candidate batches,
  train on the ``delta`` with the highest loss.
* ``cyclical_curriculum`` — :mod:`trainlab.methods.cyclical_curriculum`: per-epoch subsets whose
  size cycles between an easy-first fraction and the full data; difficulty = loss of a briefly
  trained scoring model.
* ``useful`` — :mod:`trainlab.methods.useful`: a short early run, k-means (k=2) per class on its
  outputs, the higher-loss cluster upsampled once, training restarted from the initial weights.
* ``one_pass`` — :mod:`trainlab.methods.one_pass`: every batch freshly generated
  (``generative`` workloads only).

All the extra work (scoring runs, the early run, scoring passes, candidate forward passes) is
done inside ``init`` or ``select_data`` and so is on the timed clock. The scoring runs are
prefixes of an ordinary ``nadamw`` run (same hyperparameters and schedule horizon), started from
initialisations derived from the trial seed and different from the trained model's. Nothing
here looks at the validation split.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from trainlab.algorithms.baselines import NADAMW
from trainlab.algorithms.recipe import SCHEDULES, Recipe, SchedulePart
from trainlab.methods.cyclical_curriculum import CyclicalCurriculum
from trainlab.methods.data_diet import average_over_runs, el2n_scores, grand_scores, select_by_score
from trainlab.methods.hard_samples import hard_batches
from trainlab.methods.useful import cluster_features, slow_learnable_mask, upsampled_indices
from trainlab.registry import register_algorithm
from trainlab.spec import Batch, Param, SearchSpace, TrainlabError, TrainState, Workload

# --------------------------------------------------------------------------------------------
# shared helpers (also used by the distillation and averaging algorithms)

#: the plain baseline, used for scoring runs and teachers
BASE = Recipe(NADAMW, SCHEDULES["cosine"], name="nadamw")

#: examples per forward pass when scoring the whole training set
SCORE_CHUNK = 1024


def derived_seed(seed: int, purpose: int, run: int = 0) -> int:
    """A seed for auxiliary models/streams, distinct from the trial seed and from each other."""
    return 1_000_003 * (int(seed) + 1) + 7_919 * purpose + run


class NadamwCosineMethod(Recipe):
    """NAdamW + warmup/cosine (or another ``schedule``) with the method's extra hyperparameters
    appended."""

    extra_space: SearchSpace = SearchSpace()

    def __init__(
        self,
        name: str,
        description: str,
        defaults: dict[str, Any] | None = None,
        fixed: dict[str, Any] | None = None,
        schedule: SchedulePart | None = None,
    ) -> None:
        super().__init__(
            NADAMW, schedule or SCHEDULES["cosine"], name=name, description=description,
            defaults=defaults, fixed=fixed,
        )  # fmt: skip
        self.search_space = self.search_space.merged(self.extra_space)

    def init(
        self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int
    ) -> TrainState:
        state = super().init(workload, model, hp, seed)
        state.extra["seed"] = seed
        state.extra["batch_size"] = self.batch_size(workload, state.hp)
        return state


def train_run(
    workload: Workload,
    hp: dict[str, Any],
    seed: int,
    steps: int,
    model: nn.Module | None = None,
    schedule_steps: int | None = None,
) -> nn.Module:
    """Train ``model`` (default: a fresh ``init_model(seed)``) for ``steps`` baseline updates on
    the stream of ``seed``. The schedule spans ``schedule_steps`` (default: the baseline's own
    horizon, so a short run is a *prefix* of an ordinary run)."""
    hp = dict(hp)
    if schedule_steps is not None:
        hp["horizon"] = max(schedule_steps, 1) / workload.step_hint
    if model is None:
        model = workload.init_model(seed)
    state = BASE.init(workload, model, hp, seed)
    stream = workload.batches(BASE.batch_size(workload, hp), seed)
    for step in range(steps):
        BASE.update(state, next(stream), step)
    return model


def score_training_set(
    workload: Workload, model: nn.Module, score: Callable[[Batch], Tensor], chunk: int = SCORE_CHUNK
) -> Tensor:
    """``score(batch)`` over the whole training split in index order, with the model in eval
    mode (restored afterwards); returns the concatenated per-example values."""
    was_training = model.training
    model.eval()
    try:
        parts = []
        for start in range(0, workload.train_size, chunk):
            idx = torch.arange(start, min(start + chunk, workload.train_size))
            parts.append(score(workload.get_examples(idx)).detach().float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(parts)


def per_example_losses(workload: Workload, model: nn.Module) -> Tensor:
    """Unsmoothed per-example training losses of ``model`` on the whole training split."""

    @torch.no_grad()
    def score(batch: Batch) -> Tensor:
        return workload.loss(model, batch)

    return score_training_set(workload, model, score)


def _fresh_indices(n: int, device: torch.device) -> Tensor:
    return torch.full((n,), -1, dtype=torch.long, device=device)


def el2n_of(workload: Workload, model: nn.Module) -> Tensor:
    @torch.no_grad()
    def score(batch: Batch) -> Tensor:
        return el2n_scores(workload.forward(model, batch), batch.targets)

    return score_training_set(workload, model, score)


def grand_of(workload: Workload, model: nn.Module) -> Tensor:
    def loss_fn(m: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return workload.loss(m, Batch(x, y, _fresh_indices(len(x), x.device)))

    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    vmap_chunk = int(min(512, max(1, 50_000_000 // max(n_params, 1))))  # ~200 MB of gradients

    def score(batch: Batch) -> Tensor:
        return grand_scores(model, loss_fn, batch.inputs, batch.targets, chunk_size=vmap_chunk)

    return score_training_set(workload, model, score)


def subset_batches(
    workload: Workload, batch_size: int, indices: Tensor, seed: int
) -> Iterator[Batch]:
    """The workload's shuffled stream restricted to ``indices`` (repeats allowed)."""
    return workload.batches(batch_size, seed, indices=indices)


# --------------------------------------------------------------------------------------------
# data diet


class DataDiet(NadamwCosineMethod):
    """Train on the examples with the highest EL2N or GraNd score (Paul et al., 2021)."""

    def __init__(self, score: str) -> None:
        if score not in ("el2n", "grand"):
            raise ValueError(f"unknown data-diet score {score!r}")
        self.score = score
        # the paper computes EL2N after ~10% of training and shows GraNd working already at
        # initialisation (diet_score_fraction=0); on this suite GraNd at init selects poorly
        # (see benchmarks/data_methods.py), so both default to 10%
        default_time = 0.1
        self.extra_space = SearchSpace(
            (
                Param("diet_keep_fraction", 0.8, 0.05, 1.0, help="fraction of examples kept"),
                Param("diet_offset_fraction", 0.0, 0.0, 0.3,
                      help="fraction of the highest scorers skipped before keeping"),
                Param("diet_runs", 2, 1, 8, kind="int",
                      help="independent initialisations the scores are averaged over"),
                Param("diet_score_fraction", default_time, 0.0, 0.5,
                      help="length of each scoring run, as a fraction of the schedule"),
            )
        )  # fmt: skip
        super().__init__(
            f"data_diet_{score}",
            f"NAdamW + cosine on the examples with the highest {score.upper()} scores "
            "(Paul et al., 2021, 'Deep Learning on a Data Diet')",
        )

    def init(
        self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int
    ) -> TrainState:
        state = super().init(workload, model, hp, seed)
        hp = state.hp
        steps = round(hp["diet_score_fraction"] * self.total_steps(workload, hp))
        scorer = el2n_of if self.score == "el2n" else grand_of

        def run(r: int) -> Tensor:
            return scorer(workload, train_run(workload, hp, derived_seed(seed, 1, r), steps))

        scores = average_over_runs(run, hp["diet_runs"])
        state.extra["scores"] = scores
        state.extra["keep"] = select_by_score(
            scores, hp["diet_keep_fraction"], hp["diet_offset_fraction"]
        )
        return state

    def select_data(self, state: TrainState, stream: Iterator[Batch]) -> Iterator[Batch]:
        x = state.extra
        return subset_batches(state.workload, x["batch_size"], x["keep"], x["seed"])


register_algorithm("data_diet_el2n", lambda: DataDiet("el2n"))
register_algorithm("data_diet_grand", lambda: DataDiet("grand"))


# --------------------------------------------------------------------------------------------
# hard mini-batches


class HardSamples(NadamwCosineMethod):
    """Train on the ``delta`` highest-loss batches of every pool of candidates (Sahayam et al.,
    2023, 'Can we learn better with hard samples?')."""

    extra_space = SearchSpace(
        (
            Param("hard_pool", 4, 2, 16, kind="int", help="candidate batches per pool"),
            Param("hard_delta", 1, 1, 8, kind="int",
                  help="batches trained on per pool (the paper's delta; clipped to hard_pool)"),
        )
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(
            "hard_samples",
            "NAdamW + cosine trained only on the highest-loss mini-batches of each candidate pool",
        )

    def select_data(self, state: TrainState, stream: Iterator[Batch]) -> Iterator[Batch]:
        pool = state.hp["hard_pool"]
        delta = min(state.hp["hard_delta"], pool)
        model, workload = state.model, state.workload

        @torch.no_grad()
        def batch_loss(batch: Batch) -> Tensor:
            was_training = model.training
            model.eval()
            try:
                return workload.mean_loss(model, batch)
            finally:
                model.train(was_training)

        return hard_batches(stream, batch_loss, pool_size=pool, delta=delta)


register_algorithm("hard_samples", HardSamples)


# --------------------------------------------------------------------------------------------
# cyclical curriculum


class CyclicalCurriculumAlgorithm(NadamwCosineMethod):
    """Epoch subsets cycling between easy-first and full data (Kesgin & Amasyali, 2022)."""

    extra_space = SearchSpace(
        (
            Param("ccl_start_fraction", 0.25, 0.05, 1.0, help="smallest data fraction"),
            Param("ccl_multiplier", 0.5, 0.25, 0.9, help="per-epoch size ratio of the cycle"),
            Param("ccl_score_fraction", 0.1, 0.02, 0.5,
                  help="scoring model's training length, as a fraction of the schedule"),
        )
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(
            "cyclical_curriculum",
            "NAdamW + cosine on per-epoch subsets whose size cycles between an easy-first "
            "fraction and the full data",
        )

    def init(
        self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int
    ) -> TrainState:
        state = super().init(workload, model, hp, seed)
        hp = state.hp
        steps = max(1, round(hp["ccl_score_fraction"] * self.total_steps(workload, hp)))
        scorer = train_run(workload, hp, derived_seed(seed, 3), steps)
        difficulty = per_example_losses(workload, scorer)
        state.extra["difficulty"] = difficulty
        state.extra["curriculum"] = CyclicalCurriculum(
            difficulty, hp["ccl_start_fraction"], hp["ccl_multiplier"]
        )
        return state

    def select_data(self, state: TrainState, stream: Iterator[Batch]) -> Iterator[Batch]:
        ccl: CyclicalCurriculum = state.extra["curriculum"]
        bs, workload = state.extra["batch_size"], state.workload
        gen = torch.Generator().manual_seed(derived_seed(state.extra["seed"], 4))
        epoch = 0
        while True:
            idx = ccl.epoch_indices(epoch, gen)
            state.extra["epoch_sizes"] = state.extra.get("epoch_sizes", []) + [len(idx)]
            if len(idx) < bs:  # a subset smaller than a batch: one batch drawn with repeats
                yield workload.get_examples(idx[torch.randint(len(idx), (bs,), generator=gen)])
            for start in range(0, len(idx) - bs + 1, bs):
                yield workload.get_examples(idx[start : start + bs])
            epoch += 1


register_algorithm("cyclical_curriculum", CyclicalCurriculumAlgorithm)


# --------------------------------------------------------------------------------------------
# USEFUL


class Useful(NadamwCosineMethod):
    """Upsample the late-learned cluster of each class, then train from scratch (Nguyen et al.,
    2024, USEFUL)."""

    extra_space = SearchSpace(
        (
            Param("useful_early_fraction", 0.08, 0.02, 0.3,
                  help="length of the early run, as a fraction of the schedule"),
            Param("useful_upsample", 2, 2, 4, kind="int",
                  help="copies of each slow-learnable example"),
        )
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(
            "useful",
            "NAdamW + cosine restarted on data where the cluster learned late is upsampled "
            "(USEFUL)",
        )

    def init(
        self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int
    ) -> TrainState:
        state = super().init(workload, model, hp, seed)  # ``model`` stays at its initial weights
        hp = state.hp
        steps = max(1, round(hp["useful_early_fraction"] * self.total_steps(workload, hp)))
        early = train_run(workload, hp, seed, steps, model=copy.deepcopy(model))

        feats, losses, labels = [], [], []

        @torch.no_grad()
        def score(batch: Batch) -> Tensor:
            outputs = workload.forward(early, batch)
            feats.append(cluster_features(outputs, batch.targets).cpu())
            labels.append(batch.targets.cpu())
            return workload.loss_from_outputs(outputs, batch)

        losses = score_training_set(workload, early, score)
        targets = torch.cat(labels)
        per_class = not targets.dtype.is_floating_point and targets.ndim == 1
        slow = slow_learnable_mask(
            torch.cat(feats), losses, targets if per_class else None, seed=seed
        )
        state.extra["slow"] = slow
        state.extra["indices"] = upsampled_indices(slow, hp["useful_upsample"])
        return state

    def select_data(self, state: TrainState, stream: Iterator[Batch]) -> Iterator[Batch]:
        x = state.extra
        return subset_batches(state.workload, x["batch_size"], x["indices"], x["seed"])


register_algorithm("useful", Useful)


# --------------------------------------------------------------------------------------------
# one pass over fresh data


class OnePass(NadamwCosineMethod):
    """Every batch newly generated: no example is ever repeated (Komatsuzaki, 2019)."""

    def __init__(self) -> None:
        super().__init__(
            "one_pass",
            "NAdamW + cosine on freshly generated examples instead of repeated epochs "
            "('One Epoch Is All You Need')",
        )

    def init(
        self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int
    ) -> TrainState:
        if not workload.generative:
            raise TrainlabError(
                f"one_pass needs a workload that generates fresh examples; {workload.name} does not"
            )
        return super().init(workload, model, hp, seed)

    def select_data(self, state: TrainState, stream: Iterator[Batch]) -> Iterator[Batch]:
        return state.workload.fresh_batches(state.extra["batch_size"], state.extra["seed"])


register_algorithm("one_pass", OnePass)
