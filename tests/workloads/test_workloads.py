"""Every default workload honours the Workload contract (shapes, losses, splits, variants)."""

import pytest
import torch

from trainlab.registry import get_workload, workload_names
from trainlab.spec import TrainlabError

DEFAULT_SUITE = ["charlm_gpt", "digits_cnn", "forecast_gru", "mnist1d_cnn", "mnist1d_mlp"]


@pytest.fixture(scope="module", params=DEFAULT_SUITE)
def workload(request):
    return get_workload(request.param)


def test_default_suite_is_registered():
    assert set(DEFAULT_SUITE) <= set(workload_names())


def test_batches_are_deterministic_shuffled_and_indexed(workload):
    a = [next(iter_) for iter_ in [workload.batches(16, 3)] for _ in range(1)][0]
    stream = workload.batches(16, 3)
    b = next(stream)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.indices, b.indices)
    assert len(b) == 16 and len(set(b.indices.tolist())) == 16
    again = workload.get_examples(b.indices)
    assert torch.equal(again.inputs, b.inputs) and torch.equal(again.targets, b.targets)
    other = next(workload.batches(16, 4))
    assert not torch.equal(other.indices, b.indices)


def test_one_epoch_visits_every_example_once():
    w = get_workload("digits_cnn")
    stream = w.batches(100, 0)
    seen = torch.cat([next(stream).indices for _ in range(w.train_size // 100)])
    assert len(set(seen.tolist())) == len(seen) == (w.train_size // 100) * 100


def test_subset_stream_draws_only_from_subset(workload):
    subset = torch.arange(0, 40, 2)
    stream = workload.batches(8, 0, indices=subset)
    drawn = torch.cat([next(stream).indices for _ in range(10)])
    assert set(drawn.tolist()) <= set(subset.tolist())


def test_model_is_seeded_and_loss_is_per_example(workload):
    m1, m2 = workload.init_model(0), workload.init_model(0)
    for p, q in zip(m1.parameters(), m2.parameters(), strict=True):
        assert torch.equal(p, q)
    assert any(
        not torch.equal(p, q)
        for p, q in zip(m1.parameters(), workload.init_model(1).parameters(), strict=True)
    )
    batch = next(workload.batches(8, 0))
    losses = workload.loss(m1, batch)
    assert losses.shape == (8,) and torch.isfinite(losses).all()


def test_mean_loss_is_the_mean_of_per_example_losses(workload):
    model = workload.init_model(0)
    batch = next(workload.batches(8, 0))
    assert torch.allclose(workload.mean_loss(model, batch), workload.loss(model, batch).mean())
    if workload.loss_type == "cross_entropy":
        smooth = workload.loss(model, batch, label_smoothing=0.1).mean()
        assert torch.allclose(workload.mean_loss(model, batch, label_smoothing=0.1), smooth)


def test_evaluate_reports_the_target_metric_on_both_splits(workload):
    model = workload.init_model(0)
    valid = workload.evaluate(model, "valid")
    test = workload.evaluate(model, "test")
    assert workload.target.metric in valid and workload.target.metric in test
    assert not workload.target.is_met(valid)  # an untrained model must not pass


def test_label_smoothing_and_soft_targets_only_where_cross_entropy(workload):
    model = workload.init_model(0)
    batch = next(workload.batches(4, 0))
    if workload.loss_type == "cross_entropy":
        plain = workload.loss(model, batch)
        smooth = workload.loss(model, batch, label_smoothing=0.1)
        assert not torch.allclose(plain, smooth)
        outputs = workload.forward(model, batch)
        onehot = torch.nn.functional.one_hot(batch.targets, outputs.shape[-1]).float()
        assert torch.allclose(workload.loss(model, batch, soft_targets=onehot), plain, atol=1e-5)
    else:
        with pytest.raises(ValueError):
            workload.loss(model, batch, label_smoothing=0.1)


def test_variants_build_and_differ(workload):
    assert workload.variants
    for name in workload.variants:
        v = workload.variant(name)
        assert v.variant_name == name and v.full_name == f"{workload.name}:{name}"
        batch = next(v.batches(4, 0))
        assert v.loss(v.init_model(0), batch).shape == (4,)
    with pytest.raises(TrainlabError, match="no variant"):
        workload.variant("nope")
    assert workload.variant_name == ""


def test_generative_workloads_give_fresh_examples(workload):
    if not workload.generative:  # digits: a fixed dataset
        with pytest.raises(TrainlabError, match="cannot generate"):
            next(workload.fresh_batches(8, 0))
        return
    batch = next(workload.fresh_batches(8, 0))
    assert batch.inputs.shape[1:] == workload.get_examples(torch.arange(2)).inputs.shape[1:]
    assert (batch.indices == -1).all()


def test_charlm_trains_on_a_users_text_file(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text("It was the best of times, it was the worst of times. " * 60, encoding="utf-8")
    w = get_workload("charlm_gpt", text_file=str(path))
    assert w.vocab_size == len(set(path.read_text()))
    batch = next(w.batches(4, 0))
    assert w.loss(w.init_model(0), batch).shape == (4,)


def test_charlm_rejects_unreadable_or_tiny_text(tmp_path):
    with pytest.raises(TrainlabError, match="cannot read"):
        get_workload("charlm_gpt", text_file=str(tmp_path / "missing.txt"))
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("abc")
    with pytest.raises(TrainlabError, match="too short"):
        get_workload("charlm_gpt", text_file=str(tiny))
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00" * 1000)
    with pytest.raises(TrainlabError, match="cannot read"):
        get_workload("charlm_gpt", text_file=str(binary))


def test_digits_distortions_keep_each_original_and_stay_within_its_split():
    from trainlab.workloads.digits import COPIES, distort, load_splits

    images = torch.rand(5, 8, 8)
    out = distort(images, 3, seed=0)
    assert out.shape == (20, 8, 8)
    groups = out.view(5, 4, 8, 8)
    assert torch.equal(groups[:, 0], images)  # the original leads its group
    assert all(not torch.allclose(groups[i, k], images[i]) for i in range(5) for k in (1, 2, 3))
    assert torch.equal(out, distort(images, 3, seed=0))  # fixed seed, same copies
    # a shift of one pixel moves a single bright pixel by at most one pixel (and a little for
    # rotation and scale), so a distorted digit stays a digit
    dot = torch.zeros(1, 8, 8)
    dot[0, 4, 4] = 1.0
    moved = distort(dot, 50, seed=1)[1:]
    rows, cols = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    mass = moved.sum((1, 2))
    centre_r = (moved * rows).sum((1, 2)) / mass
    centre_c = (moved * cols).sum((1, 2)) / mass
    assert ((centre_r - 4).abs() <= 1.5).all() and ((centre_c - 4).abs() <= 1.5).all()
    s = load_splits()
    sizes = {name: len(s.split(name)[0]) for name in ("train", "valid", "test")}
    assert sizes == {"train": 997 * (COPIES["train"] + 1), "valid": 500 * 4, "test": 300 * 4}
    for name in ("train", "valid", "test"):
        labels = s.split(name)[1].view(-1, COPIES[name] + 1)
        assert (labels == labels[:, :1]).all()  # copies carry their original's label
