"""Model cost (bench.model_cost): counts on small models by hand, the runner storing it for a
real trial, and `run --json` / `show` displaying it."""

import json

import benchfakes  # noqa: F401  (registers tiny_blobs and tiny_sgd)
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from trainlab.bench import model_cost
from trainlab.bench.runner import run_trial
from trainlab.bench.store import Store
from trainlab.registry import get_algorithm, get_workload
from trainlab.spec import Batch


def _forward(n: int, features: int = 10):
    x = torch.randn(n, features, generator=torch.Generator().manual_seed(0))
    return lambda m: m(x)


def test_linear_10_to_5_by_hand():
    model = nn.Linear(10, 5)
    assert model_cost.parameter_counts(model) == (55, 55)
    # a multiply-add is 2 FLOPs: 2 * 10 * 5 per example, whatever the batch
    assert model_cost.flops_per_example(model, _forward(4), 4) == (100.0, 100.0)
    assert model_cost.flops_per_example(model, _forward(7), 7) == (100.0, 100.0)


def test_half_masked_weight():
    model = nn.Linear(10, 5)
    with torch.no_grad():
        model.weight[:, :5] = 0.0  # 25 of 50 weights zero; the 5 biases are not
    assert model_cost.parameter_counts(model) == (55, 30)
    dense, nonzero = model_cost.flops_per_example(model, _forward(4), 4)
    assert dense == 100.0 and nonzero == 50.0  # layer FLOPs x weight density 1/2


def test_prune_masks_and_tied_weights_count_once():
    model = nn.Sequential(nn.Linear(10, 4), nn.ReLU(), nn.Linear(4, 10))
    prune.l1_unstructured(model[0], "weight", amount=0.5)  # weight_orig stays dense
    params, nonzero = model_cost.parameter_counts(model)
    assert params == 44 + 50 and nonzero == 20 + 4 + 50
    dense, sparse = model_cost.flops_per_example(model, _forward(3), 3)
    assert dense == 2 * 40 + 2 * 40 and sparse == 40 + 80
    tied = nn.Sequential(nn.Embedding(6, 3), nn.Linear(3, 6, bias=False))
    tied[1].weight = tied[0].weight
    assert model_cost.parameter_counts(tied) == (18, 18)


class _Compacting:
    """An algorithm stub whose compact model is the first 4 of 8 hidden units."""

    def __init__(self, compact, record=None):
        self.compact, self.record = compact, record

    def compact_model(self, state):
        return self.compact

    def trial_record(self, state):
        if isinstance(self.record, Exception):
            raise self.record
        return self.record


class _Workload:
    train_size = 32

    def get_examples(self, indices):
        x = torch.randn(len(indices), 10, generator=torch.Generator().manual_seed(1))
        return Batch(x, torch.zeros(len(indices), dtype=torch.long), indices)

    def forward(self, model, batch):
        return model(batch.inputs)

    def evaluate(self, model, split="valid"):
        return {"accuracy": 0.5}


def test_measure_with_a_compact_model():
    dense = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 5))
    compact = nn.Sequential(nn.Linear(10, 4), nn.ReLU(), nn.Linear(4, 5))
    cost = model_cost.measure(_Workload(), _Compacting(compact), None, dense, examples=16)
    assert cost["params"] == 88 + 45 and cost["nonzero_params"] == 133
    assert cost["flops_per_example"] == 2 * (80 + 40) and cost["examples"] == 16
    c = cost["compact"]
    assert c["params"] == 44 + 25 and c["flops_per_example"] == 2 * (40 + 20)
    assert c["inference_speedup"] > 0 and c["dense_ms"] > 0 and c["compact_ms"] > 0
    assert c["metrics"] == {"accuracy": 0.5}
    h = model_cost.headline(cost)
    assert (h["params"], h["nnz"], h["mflops"]) == (133, 133, 240 / 1e6)
    assert h["speedup"] == c["inference_speedup"]
    # no compact model: no "compact" key; a failure is reported, not raised
    assert "compact" not in model_cost.measure(_Workload(), _Compacting(None), None, dense)
    broken = model_cost.measure(_Workload(), _Compacting(None), None, nn.Linear(3, 2))
    assert broken["error"].startswith("RuntimeError")
    assert model_cost.headline(broken)["params"] is None


def test_the_trial_record_is_stored_under_method_and_never_fails_the_measure():
    dense = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 5))
    assert "method" not in model_cost.measure(_Workload(), _Compacting(None), None, dense)
    record = {"name": "stub", "mean_bits": 6.5}
    cost = model_cost.measure(_Workload(), _Compacting(None, record), None, dense)
    assert cost["method"] == record and cost["params"] == 133
    cost = model_cost.measure(_Workload(), _Compacting(None, ValueError("no")), None, dense)
    assert cost["method"] == {"error": "ValueError: no"} and cost["params"] == 133
    # a failed measure keeps the record, recorded apart
    broken = model_cost.measure(_Workload(), _Compacting(None, record), None, nn.Linear(3, 2))
    assert broken["error"].startswith("RuntimeError") and broken["method"] == record


def test_the_runner_stores_it_for_a_real_trial(tmp_path):
    workload = get_workload("tiny_blobs")  # nn.Linear(8, 2): 18 parameters, 32 FLOPs
    with Store(tmp_path / "s.db") as store:
        result = run_trial(workload, get_algorithm("tiny_sgd"), {"learning_rate": 0.1}, 0,
                           eval_every_steps=5, max_steps=10, store=store)  # fmt: skip
        stored = store.trial(result.trial_id)["model_cost"]
    assert result.model_cost == stored
    assert stored["params"] == 18 and stored["flops_per_example"] == 32.0
    assert "compact" not in stored  # the default hook returns None
    assert result.to_json()["model_cost"] == stored


@pytest.fixture
def cli(capsys):
    from trainlab.cli import main

    def call(*args):
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return call


def test_run_json_and_show_display_it(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    db = tmp_path / "s.db"
    code, out, err = cli("run", "-w", "tiny_blobs", "-a", "tiny_sgd", "--eval-every-steps", "5",
                         "--max-steps", "5", "--json", "--store", db)  # fmt: skip
    assert code == 0, err
    cost = json.loads(out)["model_cost"]
    assert set(cost) >= {"params", "nonzero_params", "flops_per_example",
                         "nonzero_flops_per_example"}  # fmt: skip
    code, out, _ = cli("show", "--store", db)
    header = next(line for line in out.splitlines() if "params" in line)
    assert "nnz" in header and "MFLOPs/ex" in header and "speedup" in header
    assert "│ 18 " in out and "3.2e-05" in out  # 32 FLOPs = 3.2e-05 MFLOPs
    code, out, _ = cli("show", "1", "--store", db)
    assert "model cost: 18 params, 18 non-zero; 3.2e-05 MFLOPs/example dense" in out
    code, out, _ = cli("show", "1", "--store", db, "--json")
    assert json.loads(out)["model_cost"]["params"] == 18
