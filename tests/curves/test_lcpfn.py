"""LC-PFN (Adriaensen et al. 2023): the prior, the bar distribution, the committed model's
predictions on clean curves, and the training loop at a reduced size."""

import numpy as np
import pytest
import torch

from trainlab.curves import predict_final
from trainlab.curves.families import FAMILIES
from trainlab.curves.lcpfn import (
    WEIGHTS,
    BarDistribution,
    LCPFNModel,
    bar_nll,
    load_model,
    pfn_posterior,
    save_model,
)
from trainlab.curves.metric_map import fraction_to_x
from trainlab.curves.pfn_training import train_pfn
from trainlab.curves.prior import sample_curves


def test_prior_curves_increase_stay_in_range_and_are_seeded():
    clean, noisy = sample_curves(200, np.random.default_rng(0))
    assert clean.shape == noisy.shape == (200, 100)
    assert (clean[:, -1] > clean[:, 0]).all()
    assert clean.min() >= 0.0 and clean.max() <= 1.0
    assert 0.0 < np.abs(noisy - clean).mean() < 0.1  # noise, mostly small (log sigma ~ N(-4, 1))
    again, _ = sample_curves(200, np.random.default_rng(0))
    assert np.array_equal(clean, again)


def test_bar_distribution_by_hand():
    # buckets [0, .5], [.5, .75], [.75, 1] holding .2, .3, .5
    dist = BarDistribution(torch.tensor([0.0, 0.5, 0.75, 1.0]), torch.tensor([0.2, 0.3, 0.5]))
    assert float(dist.mean()) == pytest.approx(0.2 * 0.25 + 0.3 * 0.625 + 0.5 * 0.875)
    assert float(dist.cdf(0.0)) == 0.0 and float(dist.cdf(1.0)) == pytest.approx(1.0)
    assert float(dist.cdf(0.25)) == pytest.approx(0.1)  # half of the first bucket
    assert float(dist.cdf(0.625)) == pytest.approx(0.35)
    assert float(dist.quantile(0.35)) == pytest.approx(0.625)
    assert float(dist.quantile(0.75)) == pytest.approx(0.875)
    # NLL of y = 0.6: -log(0.3 / 0.25)
    logits = torch.log(torch.tensor([[0.2, 0.3, 0.5]]))
    nll = bar_nll(logits, dist.borders, torch.tensor([0.6]))
    assert float(nll) == pytest.approx(-np.log(0.3 / 0.25), rel=1e-5)


def test_committed_model_gives_a_proper_distribution():
    assert WEIGHTS.stat().st_size < 5 * 2**20
    model = load_model()
    borders = model.borders
    assert borders[0] == 0.0 and borders[-1] == 1.0 and (borders.diff() > 0).all()
    x = fraction_to_x(np.linspace(0.05, 0.3, 6))
    dist = pfn_posterior(x, np.linspace(0.3, 0.6, 6), model)
    assert (dist.probs >= 0).all() and float(dist.probs.sum()) == pytest.approx(1.0, abs=1e-5)
    assert float(dist.cdf(0.0)) == 0.0 and float(dist.cdf(1.0)) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("name, params", [("pow3", (0.9, 0.6, 0.5)), ("ilog2", (0.95, 0.5))])
def test_committed_model_extrapolates_a_clean_curve_near_the_truth(name, params):
    fractions = np.linspace(0.01, 0.5, 50)
    truth = float(FAMILIES[name].f(np.array([100.0]), *params)[0])
    values = FAMILIES[name].f(fraction_to_x(fractions), *params)
    p = predict_final("lc-pfn", fractions, values, target=truth, metric="accuracy",
                      higher_is_better=True)  # fmt: skip
    assert p.mean == pytest.approx(truth, abs=0.03)
    assert p.lower - 0.01 <= truth <= p.upper + 0.01


def test_committed_model_on_noisy_prior_curves_is_accurate_and_calibrated():
    # 40 curves of its prior, half of each seen: the posterior predictive it was trained for
    _, noisy = sample_curves(40, np.random.default_rng(7))
    x = np.arange(1.0, 101.0)
    errors, covered = [], []
    for y in noisy:
        dist = pfn_posterior(x[:50], y[:50])
        errors.append(abs(float(dist.mean()) - y[-1]))
        covered.append(float(dist.quantile(0.05)) <= y[-1] <= float(dist.quantile(0.95)))
    assert np.mean(errors) < 0.05  # measured 0.027
    assert np.mean(covered) >= 0.75  # nominal 0.90, measured 0.90


def test_long_curves_are_thinned_to_what_the_model_saw():
    x = fraction_to_x(np.linspace(0.001, 0.5, 400))
    dist = pfn_posterior(x, np.linspace(0.2, 0.7, 400))
    assert float(dist.probs.sum()) == pytest.approx(1.0, abs=1e-5)


def test_training_loop_at_reduced_size_learns_and_is_seeded(tmp_path):
    config = {"d_model": 16, "nhead": 2, "num_layers": 1, "dim_feedforward": 32, "n_buckets": 20}
    torch.set_num_threads(1)
    model, record = train_pfn(60, batch_size=16, seed=1, lr=3e-3, config=config, log_every=20)
    assert len(record["valid_nll"]) == 3
    assert record["valid_nll"][-1] < record["valid_nll"][0]  # it learns the prior
    again, _ = train_pfn(60, batch_size=16, seed=1, lr=3e-3, config=config, log_every=20)
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    save_model(model, tmp_path / "w.pt", {"steps": 60})
    loaded = load_model(tmp_path / "w.pt")  # weights_only=True
    assert isinstance(loaded, LCPFNModel) and loaded.config == config
    assert torch.equal(loaded.borders, model.borders)
