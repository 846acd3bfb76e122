"""The built-in ``nadamw`` algorithm written as an AlgoPerf submission with trainlab's parts:
NAdamW on trainlab's decay/no-decay parameter groups, linear warmup then cosine decay to zero
over horizon x step_hint updates, label smoothing on cross-entropy workloads."""

import torch
from algoperf import spec

from trainlab import schedules
from trainlab.optim import NAdamW, param_groups


def get_batch_size(workload_name):
    raise KeyError(workload_name)  # AlgoPerf names only: trainlab uses the workload's hint


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    hp = hyperparameters
    optimizer = NAdamW(param_groups(model_params), lr=hp.learning_rate,
                       betas=(hp.beta1, 1.0 - hp.one_minus_beta2), weight_decay=hp.weight_decay)
    total = max(1, round(hp.horizon * workload.step_hint))
    warmup = round(hp.warmup_fraction * total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: schedules.warmup_cosine(step, total, warmup_steps=warmup))
    return {"optimizer": optimizer, "scheduler": scheduler}


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results,
                  global_step, rng, train_state=None):
    model = current_param_container
    logits, model_state = workload.model_fn(model, batch, model_state,
                                            spec.ForwardPassMode.TRAIN, rng, True)
    out = workload.loss_fn(batch["targets"], logits,
                           label_smoothing=hyperparameters.label_smoothing)
    loss = out["summed"] / out["n_valid_examples"]
    optimizer_state["optimizer"].zero_grad(set_to_none=True)
    loss.backward()
    optimizer_state["optimizer"].step()
    optimizer_state["scheduler"].step()
    return optimizer_state, model, model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container,
                   model_state, hyperparameters, global_step, rng):
    return next(input_queue)
