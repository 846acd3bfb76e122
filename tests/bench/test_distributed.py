"""Data-parallel trials (``bench.distributed``): two gloo processes on the CPU train as one
process does on the same global batch, and rank 0 alone writes the store."""

import copy
from dataclasses import astuple

import benchfakes  # noqa: F401  (registers tiny_blobs and tiny_sgd, in every rank too)
import pytest
import torch

from trainlab.bench.distributed import Group, check_nproc, launch
from trainlab.bench.runner import run_trial
from trainlab.bench.store import Store
from trainlab.cli import main
from trainlab.registry import get_algorithm, get_workload
from trainlab.spec import Batch, TrainlabError
from trainlab.workloads.base import Splits

#: every metric at every evaluation, and the training loss, within this of one process
TOLERANCE = 1e-5


def _trial(group, workload: str, algorithm: str, dtype: torch.dtype, steps: int, every: int):
    """One step-mode trial in ``dtype`` (this process alone when ``group`` is None)."""
    torch.set_default_dtype(dtype)  # the models' parameters
    w = copy.copy(get_workload(workload))  # the registry's instance stays as it is
    w.splits = Splits(*(t.to(dtype) if t.is_floating_point() else t for t in astuple(w.splits)))
    try:
        return run_trial(
            w, get_algorithm(algorithm), seed=3, eval_every_steps=every,
            max_steps=steps, full_curve=True, count_flops=False, calibrate=False, group=group,
        )  # fmt: skip
    finally:
        torch.set_default_dtype(torch.float32)


def _assert_same_curve(one, two) -> None:
    assert two.status == one.status != "failed", (two.error, one.error)
    assert [e.step for e in two.evals] == [e.step for e in one.evals]
    assert two.steps == one.steps
    for a, b in zip(one.evals, two.evals, strict=True):
        assert a.metrics.keys() == b.metrics.keys()
        for name in a.metrics:
            assert b.metrics[name] == pytest.approx(a.metrics[name], abs=TOLERANCE), name
        assert b.train_loss == pytest.approx(a.train_loss, abs=TOLERANCE)
        assert b.lr == a.lr
    for name, value in one.test_metrics.items():
        assert two.test_metrics[name] == pytest.approx(value, abs=TOLERANCE), name


@pytest.mark.slow
@pytest.mark.parametrize(
    "workload, algorithm, dtype",
    [
        ("mnist1d_mlp", "nadamw", torch.float32),
        ("mnist1d_mlp", "nadamw", torch.float64),
    ],
)
def test_two_processes_give_the_curve_of_one(workload, algorithm, dtype):
    args = (workload, algorithm, dtype, 60, 20)
    one = _trial(None, *args)
    two = launch(_trial, 2, *args, threads=1)
    _assert_same_curve(one, two)
    assert len(two.evals) == 3 and two.steps == 60
    assert two.evals[0].metrics != two.evals[-1].metrics  # it trained


class _Spy(benchfakes.PlainSGD):
    """tiny_sgd that remembers the examples of every batch it trained on."""

    seen: list[list[int]] = []

    def update(self, state, batch, step):
        self.seen.append(batch.indices.tolist())
        return super().update(state, batch, step)


def _spied(group):
    spy = _Spy()
    run_trial(get_workload("tiny_blobs"), spy, seed=1, eval_every_steps=5, max_steps=5,
              count_flops=False, calibrate=False, group=group)  # fmt: skip
    return spy.seen


@pytest.mark.slow
def test_rank_0_trains_on_the_first_half_of_each_global_batch():
    whole, half = _spied(None), launch(_spied, 2, threads=1)
    assert len(whole) == len(half) == 5 and len(whole[0]) == 32
    assert half == [rows[:16] for rows in whole]


def _fake_group(rank: int, world_size: int) -> Group:
    return Group(rank, world_size, torch.device("cpu"), control=None)


def _batch(n: int) -> Batch:
    rows = torch.arange(n)
    return Batch(rows[:, None].float(), rows, rows)


def test_each_rank_gets_its_contiguous_shard_of_every_batch():
    shards = [list(_fake_group(r, 4).shard(iter([_batch(8), _batch(12)]))) for r in range(4)]
    assert [[s.indices.tolist() for s in rank] for rank in shards] == [
        [[0, 1], [0, 1, 2]], [[2, 3], [3, 4, 5]], [[4, 5], [6, 7, 8]], [[6, 7], [9, 10, 11]],
    ]  # fmt: skip


def test_an_uneven_batch_weights_the_gradients_by_shard_size():
    group = _fake_group(0, 3)
    shard = next(group.shard(iter([_batch(7)])))
    assert len(shard) == 2 and group._share == pytest.approx(2 / 7)
    with pytest.raises(TrainlabError, match="batch of 2 rows cannot be split over 3"):
        next(group.shard(iter([_batch(2)])))


@pytest.mark.parametrize(
    "nproc, batch, match",
    [(0, 32, "must be >= 1"), (-1, 32, "must be >= 1"), (3, 32, "does not divide")],
)
def test_check_nproc_refuses(nproc, batch, match, monkeypatch):
    monkeypatch.setattr("trainlab.bench.distributed.available_cores", lambda: 4)
    with pytest.raises(TrainlabError, match=match):
        check_nproc(nproc, batch)


def test_check_nproc_refuses_more_processes_than_cores(monkeypatch):
    monkeypatch.setattr("trainlab.bench.distributed.available_cores", lambda: 2)
    check_nproc(2, 32)
    with pytest.raises(TrainlabError, match="this machine has 2 CPU cores"):
        check_nproc(4, 32)


@pytest.mark.slow
def test_cli_run_nproc_stores_one_trial_with_its_evaluations_once(tmp_path, capsys):
    db = tmp_path / "s.db"
    code = main([
        "run", "-w", "tiny_blobs:mlp", "-a", "tiny_sgd", "--nproc", "2", "--eval-every-steps",
        "5", "--max-steps", "20", "--full-curve", "--targets", "class", "--quiet",
        "--store", str(db), "--threads", "1",
    ])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines()[-1] == f"trial 1 saved in {db}"
    with Store(db) as store:
        (trial,) = store.trials()
        evals = store.evaluations(trial["id"])
    assert (trial["status"], trial["steps"], trial["n_evals"]) == ("reached", 20, 4)
    assert [e.step for e in evals] == [5, 10, 15, 20]


@pytest.mark.slow
def test_bench_nproc_trials_follow_the_one_process_benchmark(tmp_path, capsys):
    """`bench --nproc 2` runs every planned trial on two ranks (recorded as nproc 2) and, in
    step mode, gives the one-process benchmark's evaluations up to float32 rounding."""
    plan = ["bench", "-w", "mnist1d_mlp", "-a", "nadamw", "--trials", "2", "--studies", "1",
            "--eval-every-steps", "20", "--max-steps", "40", "--targets", "class", "--jobs",
            "1", "--quiet"]  # fmt: skip
    assert main([*plan, "--nproc", "2", "--store", str(tmp_path / "two.db")]) == 0
    assert main([*plan, "--store", str(tmp_path / "one.db")]) == 0
    capsys.readouterr()
    with Store(tmp_path / "two.db", readonly=True) as two, \
            Store(tmp_path / "one.db", readonly=True) as one:  # fmt: skip
        assert two.benchmark()["key"] != one.benchmark()["key"]  # nproc is in the fingerprint
        pairs = list(zip(two.trials(), one.trials(), strict=True))
        assert len(pairs) == 2
        for a, b in pairs:
            assert (a["nproc"], b["nproc"], a["status"]) == (2, 1, b["status"])
            ea, eb = two.evaluations(a["id"]), one.evaluations(b["id"])
            assert [e.step for e in ea] == [e.step for e in eb] == [20, 40]
            for x, y in zip(ea, eb, strict=True):
                assert x.metrics == pytest.approx(y.metrics, abs=1e-5)


def test_bench_nproc_is_checked_before_anything_is_written(tmp_path, capsys):
    from trainlab.bench.executors import available_cores

    store, cores = tmp_path / "s.db", available_cores()
    code = main(["bench", "-w", "mnist1d_mlp", "-a", "nadamw", "--nproc", "2", "--jobs",
                 str(cores), "--store", str(store)])  # fmt: skip
    assert code == 2 and f"need {2 * cores} cores" in capsys.readouterr().err
    assert not store.exists()
