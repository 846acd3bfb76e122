"""create_optimizer and param_groups: names, the no-decay rule (same as the recipes'), errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainlab.optim import (
    LAMB,
    SGDW,
    Adan,
    DAdaptAdam,
    DoG,
    Lion,
    NAdamW,
    Prodigy,
    create_optimizer,
    param_groups,
)
from trainlab.spec import TrainlabError

NAMES = {
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "nadamw": NAdamW,
    "sgdw": SGDW,
    "lion": Lion,
    "adan": Adan,
    "lamb": LAMB,
    "dog": DoG,
    "prodigy": Prodigy,
    "dadapt_adam": DAdaptAdam,
}


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 3), nn.LayerNorm(3)
    )


def test_weights_decay_and_vectors_do_not():
    model = _model()
    model[3].bias.requires_grad_(False)  # frozen parameters are left out
    decay, no_decay = param_groups(model, 0.05)
    assert [p.ndim for p in decay["params"]] == [4, 2]
    assert decay["weight_decay"] == 0.05
    assert [p.ndim for p in no_decay["params"]] == [1] * 5  # conv bias, bn (2), ln (2)
    assert no_decay["weight_decay"] == 0.0
    assert all(p is not model[3].bias for p in no_decay["params"])
    # without a weight decay, the first group takes the optimizer's default
    assert "weight_decay" not in param_groups(model)[0]


def test_the_split_is_the_recipes_split():
    from trainlab.algorithms.recipe import param_groups as recipe_groups

    model = _model()
    ours, theirs = param_groups(model), recipe_groups(model)
    for a, b in zip(ours, theirs, strict=True):
        assert [id(p) for p in a["params"]] == [id(p) for p in b["params"]]
    assert ours[1]["weight_decay"] == theirs[1]["weight_decay"] == 0.0


@pytest.mark.parametrize(("name", "cls"), NAMES.items())
def test_every_name_builds_its_class_with_the_no_decay_group(name, cls):
    model = _model()
    opt = create_optimizer(model, name, lr=0.01, weight_decay=0.1)
    assert type(opt) is cls
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    assert all(g["lr"] == 0.01 for g in opt.param_groups)
    # it trains
    x = torch.randn(4, 1, 3, 3)
    (model(x) * torch.arange(3.0)).sum().backward()
    before = model[3].weight.detach().clone()
    opt.step()
    assert not torch.equal(before, model[3].weight.detach())


def test_names_ignore_case_dashes_and_underscores():
    p = [torch.zeros(2, requires_grad=True)]
    assert type(create_optimizer(p, "DAdaptAdam")) is DAdaptAdam
    assert type(create_optimizer(p, "dadapt-adam")) is DAdaptAdam
    assert type(create_optimizer(p, "NAdamW", betas=(0.8, 0.9))) is NAdamW


def test_parameters_and_groups_are_used_as_given():
    a, b = torch.zeros(2, 2, requires_grad=True), torch.zeros(2, requires_grad=True)
    opt = create_optimizer([a, b], "adan", weight_decay=0.3)
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["weight_decay"] == 0.3
    opt = create_optimizer([{"params": [a]}, {"params": [b], "lr": 0.5}], "lion", lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]


def test_without_weight_decay_the_class_default_applies():
    opt = create_optimizer(_model(), "adamw")
    assert [g["weight_decay"] for g in opt.param_groups] == [0.01, 0.0]  # torch's default


def test_unknown_name_is_one_line_listing_the_names():
    with pytest.raises(TrainlabError, match="unknown optimizer 'adamx'") as info:
        create_optimizer(_model(), "adamx")
    message = str(info.value)
    assert "\n" not in message
    for name in NAMES:
        assert name in message


def test_bad_arguments_raise_the_class_error():
    with pytest.raises(ValueError, match="Lion: betas"):
        create_optimizer(_model(), "lion", betas=(1.5, 0.99))
    with pytest.raises(TypeError):
        create_optimizer(_model(), "dog", betas=(0.9, 0.99))
