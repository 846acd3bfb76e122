"""The AlgoPerf workload API over trainlab workloads, against values computed directly."""

import torch
import torch.nn.functional as F

from trainlab.algoperf import spec
from trainlab.algoperf.workload import SubmissionWorkload, as_dict
from trainlab.registry import get_workload

P = spec.ParameterType


def _adapter(name):
    workload = get_workload(name)
    return workload, SubmissionWorkload(workload, spec)


def test_fixed_attributes_map_trainlab_values():
    workload, w = _adapter("digits_cnn")
    assert (w.step_hint, w.max_allowed_runtime_sec) == (workload.step_hint, workload.max_runtime)
    assert w.eval_period_time_sec == workload.eval_period
    assert w.target_metric_name == "error_rate" and w.metrics_logger is None
    assert w.loss_type == spec.LossType.SOFTMAX_CROSS_ENTROPY
    assert _adapter("forecast_gru")[1].loss_type == spec.LossType.MEAN_SQUARED_ERROR


def test_loss_fn_sums_per_example_losses_and_masks():
    workload, w = _adapter("digits_cnn")
    batch = next(workload.batches(8, 0))
    model, state = w.init_model_fn(0)
    assert state is None
    logits, _ = w.model_fn(model, as_dict(batch), None, spec.ForwardPassMode.EVAL, None, False)
    expected = F.cross_entropy(logits, batch.targets, reduction="none", label_smoothing=0.1)
    out = w.loss_fn(batch.targets, logits, label_smoothing=0.1)
    torch.testing.assert_close(out["per_example"], expected)
    torch.testing.assert_close(out["summed"], expected.sum())
    assert float(out["n_valid_examples"]) == 8
    mask = torch.tensor([1.0, 0, 1, 1, 0, 1, 1, 1])
    masked = w.loss_fn(batch.targets, logits, mask, label_smoothing=0.1)
    torch.testing.assert_close(masked["summed"], (expected * mask).sum())
    assert float(masked["n_valid_examples"]) == 6
    torch.testing.assert_close(w.last_loss, (expected * mask).sum() / 6)


def test_charlm_per_example_loss_is_the_mean_over_positions():
    workload, w = _adapter("charlm_gpt")
    batch = next(workload.batches(2, 0))
    model, _ = w.init_model_fn(0)
    logits, _ = w.model_fn(model, as_dict(batch), None, spec.ForwardPassMode.EVAL, None, False)
    per_token = F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten(), reduction="none")
    out = w.loss_fn(batch.targets, logits)
    torch.testing.assert_close(out["per_example"], per_token.view(2, -1).mean(1))


def test_parameter_types_and_the_output_layer():
    _, w = _adapter("digits_cnn")
    types = w.model_params_types
    assert list(types) == list(w.param_shapes)
    kinds = set(types.values())
    assert {P.CONV_WEIGHT, P.BATCH_NORM_SCALE, P.BATCH_NORM_BIAS, P.WEIGHT, P.BIAS} <= kinds
    outputs = [k for k in types if w.is_output_params(k)]
    assert len(outputs) == 2 and types[outputs[0]] == P.WEIGHT  # the last Linear: weight, bias
    _, lm = _adapter("charlm_gpt")
    assert lm.model_params_types["tok.weight"] == P.EMBEDDING
    assert P.LAYER_NORM_SCALE in set(lm.model_params_types.values())  # RMSNorm gains
    assert lm.is_output_params("tok.weight")  # the head is tied to the embedding
    assert lm.param_shapes["tok.weight"].shape_tuple == tuple(
        lm.workload.init_model(0).tok.weight.shape)


def test_model_fn_modes_and_batch_norm_updates():
    workload, w = _adapter("digits_cnn")
    model, _ = w.init_model_fn(0)
    batch = as_dict(next(workload.batches(16, 0)))
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone()
    logits, _ = w.model_fn(model, batch, None, spec.ForwardPassMode.TRAIN, None, False)
    assert model.training and logits.requires_grad
    torch.testing.assert_close(bn.running_mean, before)  # update_batch_norm=False
    assert bn.momentum == 0.1  # restored
    w.model_fn(model, batch, None, spec.ForwardPassMode.TRAIN, None, True)
    assert not torch.equal(bn.running_mean, before)
    logits, _ = w.model_fn(model, batch, None, spec.ForwardPassMode.EVAL, None, False)
    assert not model.training and not logits.requires_grad
