"""NAdamW with linear warmup and cosine decay, written against AlgoPerf v0.6's API.

Hyperparameters: learning_rate, one_minus_beta1, beta2, weight_decay, warmup_factor (warmup
as a fraction of step_hint) and, optionally, label_smoothing.
"""

import math

import torch
from absl import logging
from algoperf import spec
from algoperf.pytorch_utils import pytorch_setup

USE_PYTORCH_DDP, RANK, DEVICE, N_GPUS = pytorch_setup()


class NAdamW(torch.optim.Optimizer):
    """Adam with Nesterov momentum (Dozat, 2016) and decoupled weight decay."""

    def __init__(self, params, lr, betas, eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["t"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                state["t"] += 1
                t, m, v, g = state["t"], state["m"], state["v"], p.grad
                p.mul_(1 - group["lr"] * group["weight_decay"])
                m.lerp_(g, 1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                nesterov = beta1 * m / (1 - beta1 ** (t + 1)) + (1 - beta1) * g / (1 - beta1**t)
                denom = (v / (1 - beta2**t)).sqrt_().add_(group["eps"])
                p.addcdiv_(nesterov, denom, value=-group["lr"])


def get_batch_size(workload_name):
    sizes = {"criteo1tb": 262_144, "fastmri": 32, "imagenet_resnet": 1024, "wmt": 128}
    return sizes[workload_name]


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    del model_state, rng
    optimizer = NAdamW(
        model_params.parameters(), lr=hyperparameters.learning_rate,
        betas=(1.0 - hyperparameters.one_minus_beta1, hyperparameters.beta2),
        weight_decay=hyperparameters.weight_decay,
    )
    warmup = max(1, int(hyperparameters.warmup_factor * workload.step_hint))

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, workload.step_hint - warmup))
        return 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    logging.info("NAdamW: %d warmup steps", warmup)
    return {"optimizer": optimizer, "scheduler": scheduler}


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results,
                  global_step, rng, train_state=None):
    del current_params_types, loss_type, eval_results, train_state
    model = current_param_container
    optimizer_state["optimizer"].zero_grad()
    logits, new_state = workload.model_fn(
        params=model, augmented_and_preprocessed_input_batch=batch, model_state=model_state,
        mode=spec.ForwardPassMode.TRAIN, rng=rng, update_batch_norm=True)
    smoothing = getattr(hyperparameters, "label_smoothing", 0.0)
    out = workload.loss_fn(label_batch=batch["targets"], logits_batch=logits,
                           mask_batch=batch.get("weights"), label_smoothing=smoothing)
    loss = out["summed"] / out["n_valid_examples"]
    loss.backward()
    optimizer_state["optimizer"].step()
    optimizer_state["scheduler"].step()
    return optimizer_state, model, new_state


def prepare_for_eval(workload, current_param_container, current_params_types, model_state,
                     hyperparameters, loss_type, optimizer_state, eval_results, global_step,
                     rng):
    return optimizer_state, current_param_container, model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container,
                   model_state, hyperparameters, global_step, rng):
    return next(input_queue)
