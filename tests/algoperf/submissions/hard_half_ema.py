"""Trains on the harder half of two batches and evaluates an exponential moving average of
the weights: overrides data_selection and prepare_for_eval (AlgoPerf v0.6 API)."""

import copy

import torch
from algoperf import spec

#: how often each hook ran (the tests read them)
CALLS = {"data_selection": 0, "prepare_for_eval": 0}


def get_batch_size(workload_name):
    raise ValueError(f"unsupported workload {workload_name}")


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    return {
        "optimizer": torch.optim.Adam(model_params.parameters(), lr=hyperparameters.learning_rate),
        "ema": copy.deepcopy(model_params),
        "live": None,
    }


def _restore_live(optimizer_state, model):
    if optimizer_state["live"] is not None:
        model.load_state_dict(optimizer_state["live"])
        optimizer_state["live"] = None


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results,
                  global_step, rng, train_state=None):
    model = current_param_container
    _restore_live(optimizer_state, model)
    optimizer = optimizer_state["optimizer"]
    optimizer.zero_grad()
    logits, model_state = workload.model_fn(model, batch, model_state,
                                            spec.ForwardPassMode.TRAIN, rng, True)
    out = workload.loss_fn(batch["targets"], logits)
    (out["summed"] / out["n_valid_examples"]).backward()
    optimizer.step()
    with torch.no_grad():
        decay = hyperparameters.ema_decay
        for e, p in zip(optimizer_state["ema"].parameters(), model.parameters(), strict=True):
            e.lerp_(p, 1 - decay)
        for e, b in zip(optimizer_state["ema"].buffers(), model.buffers(), strict=True):
            e.copy_(b)
    return optimizer_state, model, model_state


def prepare_for_eval(workload, current_param_container, current_params_types, model_state,
                     hyperparameters, loss_type, optimizer_state, eval_results, global_step,
                     rng):
    CALLS["prepare_for_eval"] += 1
    model = current_param_container
    if optimizer_state["live"] is None:
        optimizer_state["live"] = copy.deepcopy(model.state_dict())
    model.load_state_dict(optimizer_state["ema"].state_dict())
    return optimizer_state, model, model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container,
                   model_state, hyperparameters, global_step, rng):
    CALLS["data_selection"] += 1
    first, second = next(input_queue), next(input_queue)
    merged = {k: torch.cat([first[k], second[k]]) for k in ("inputs", "targets")}
    with torch.no_grad():
        logits, _ = workload.model_fn(current_param_container, merged, model_state,
                                      spec.ForwardPassMode.EVAL, rng, False)
        losses = workload.loss_fn(merged["targets"], logits)["per_example"]
    keep = losses.argsort(descending=True)[: len(first["inputs"])]
    return {k: v[keep] for k, v in merged.items()}
