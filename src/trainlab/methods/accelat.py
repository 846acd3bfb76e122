"""AccelAT: the learning rate cut when the accuracy gradient flattens.

Paper: Nikfam, Marchisio, Martina & Shafique, "AccelAT: A Framework for Accelerating the
Adversarial Training of Deep Neural Networks through Accuracy Gradient" (IEEE Access, 2022).

Training starts at a fixed learning rate. After every epoch the controller records the held-out
accuracy ``acc_e`` and its moving mean over the last ``window`` epochs,
``m_e = mean(acc_{e-window+1..e})``. The *accuracy gradient* is ``m_e - m_{e-1}``. The lr is
multiplied by ``factor`` when all three hold::

    more than ``window`` means recorded before this one,
    at least ``patience`` epochs since the last cut (a "quiet" period; none before the first),
    m_e - m_{e-1} < threshold

and it never goes below ``min_lr``. Defaults are the paper's: ``factor=0.8``, ``window=5``,
``patience=5``, ``threshold=0.005`` (accuracy as a fraction), ``min_lr = 1e-3 x`` the initial
lr (1e-6 against 1e-3 in the paper). Choices where the paper is open: every parameter group is
multiplied (and clipped) separately, so their ratios are kept; the accuracy of the first
epochs is averaged over the epochs that exist.

The accuracy must come from data the model does not train on. In the trainlab benchmark the
``accelat`` algorithm holds out a slice of the *training* split and measures it inside the
timed update; it never reads the workload's validation split, which belongs to the scorer.

Plain PyTorch loop (``accuracy`` on held-out data after each epoch; here a made-up series that
flattens):

>>> model = torch.nn.Linear(2, 2)
>>> opt = torch.optim.SGD(model.parameters(), lr=1e-3)
>>> ctl = AccelAT(opt)
>>> for accuracy in [0.5, 0.6, 0.7, 0.75, 0.78, 0.8, 0.8, 0.8, 0.8, 0.8]:
...     # for x, y in train_loader: opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
...     lr = ctl.step(accuracy)                     # the lr for the next epoch
>>> ctl.cuts, round(lr, 6)       # epoch 10: mean 0.8 after 0.796, a gradient below 0.005
([10], 0.0008)
"""

from __future__ import annotations

import math

import torch


class AccelAT:
    """Per-epoch learning-rate controller driven by the gradient of held-out accuracy: Nikfam,
    Marchisio, Martina & Shafique, "AccelAT: A Framework for Accelerating the Adversarial
    Training of Deep Neural Networks through Accuracy Gradient" (IEEE Access, 2022).

    Rule: after epoch ``e``, with ``m_e`` the mean accuracy of the last ``window`` epochs,
    every group's lr is multiplied by ``factor`` (not below its ``min_lr``) when more than
    ``window`` means came before, ``patience`` epochs passed since the last cut, and
    ``m_e - m_{e-1} < threshold``.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        factor: float = 0.8,
        threshold: float = 0.005,
        window: int = 5,
        patience: int = 5,
        min_lr: float | None = None,
    ) -> None:
        if not 0.0 < factor < 1.0:
            raise ValueError("factor must be in (0, 1)")
        if window < 1 or patience < 1:
            raise ValueError("window and patience must be >= 1")
        self.optimizer = optimizer
        self.factor, self.threshold = factor, threshold
        self.window, self.patience = window, patience
        initial = [float(g["lr"]) for g in optimizer.param_groups]
        self.min_lrs = [min_lr if min_lr is not None else 1e-3 * lr for lr in initial]
        self.accuracies: list[float] = []
        self.means: list[float] = []
        #: accuracy gradient of each epoch (nan until two means exist)
        self.gradients: list[float] = []
        #: epochs (1-based) after which the lr was cut
        self.cuts: list[int] = []
        self._quiet = patience  # the first cut needs no quiet period

    @property
    def lr(self) -> float:
        """The first parameter group's learning rate."""
        return float(self.optimizer.param_groups[0]["lr"])

    def step(self, accuracy: float) -> float:
        """Record one epoch's held-out accuracy; cut the lr if the accuracy gradient is flat.
        Returns the (first group's) learning rate for the next epoch."""
        self.accuracies.append(float(accuracy))
        mean = sum(self.accuracies[-self.window :]) / len(self.accuracies[-self.window :])
        gradient = mean - self.means[-1] if self.means else math.nan
        self._quiet += 1
        flat = gradient < self.threshold  # False while the gradient is nan
        if len(self.means) > self.window and self._quiet > self.patience and flat:
            for group, floor in zip(self.optimizer.param_groups, self.min_lrs, strict=True):
                group["lr"] = max(group["lr"] * self.factor, floor)
            self.cuts.append(len(self.accuracies))
            self._quiet = 1
        self.means.append(mean)
        self.gradients.append(gradient)
        return self.lr
