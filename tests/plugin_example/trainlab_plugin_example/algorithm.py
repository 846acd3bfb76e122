# trainlab_plugin_example/algorithm.py
import torch

from trainlab.algorithms.recipe import SCHEDULES, OptimizerPart, Recipe, add_optimizer
from trainlab.registry import register_algorithm
from trainlab.spec import Param, SearchSpace


class SignSGD(torch.optim.Optimizer):
    """Sign descent with decoupled weight decay: p <- p (1 - lr wd) - lr sign(grad)."""

    def __init__(self, params, lr=1e-3, weight_decay=0.0):
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                    p.add_(p.grad.sign(), alpha=-group["lr"])
        return loss


SIGNSGD = add_optimizer(
    OptimizerPart(
        "plugin_signsgd",
        SearchSpace(
            (
                Param("learning_rate", 1e-3, 1e-5, 1e-1, log=True),
                Param("weight_decay", 0.0, 0.0, 0.5),
            )
        ),
        # groups: weights (decay at the optimizer's default) and biases/norms (weight_decay 0)
        lambda groups, hp: SignSGD(groups, lr=hp["learning_rate"], weight_decay=hp["weight_decay"]),
        "sign descent",
    )
)

# the part composes with every schedule (-a plugin_signsgd+rex); this also names one recipe
register_algorithm("plugin_signsgd", lambda: Recipe(SIGNSGD, SCHEDULES["cosine"], "plugin_signsgd"))
