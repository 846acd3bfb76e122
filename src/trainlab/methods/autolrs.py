"""AutoLRS: the learning rate of each training stage chosen by Bayesian optimization on the fly.

Paper: Jin, Zhou, Zhao, Zhu, Guo, Canini & Krishnamurthy, "AutoLRS: Automatic Learning-Rate
Schedule by Bayesian Optimization on the Fly" (ICLR 2021).

Training is cut into stages. At the start of a stage the model and optimizer are checkpointed,
then ``n_trials`` candidate learning rates are explored, each for ``tau'`` steps from the
checkpoint: the candidate's loss curve ``l_0..l_{tau'-1}`` is fitted with an exponential model
``l(t) = a exp(b t) + c`` (``b < 0``), whose value at ``t = tau`` forecasts the loss the
candidate would reach after a whole stage; the pair (lr, forecast) is one observation of the
black-box function that a Gaussian process models, and the next candidate minimizes the lower
confidence bound ``mu - kappa sigma`` over ``log lr`` in ``[lr_min, lr_max]``. After the last
trial the checkpoint is restored and the stage trains ``tau`` steps with the candidate whose
forecast was lowest. Then ``tau`` and ``tau'`` double (while ``tau < tau_max``) and the next
stage begins. Every exploration step is a real optimizer step on a real batch: a caller that
counts steps counts them too.

Choices and simplifications (the paper's numbers in brackets):

- ``tau' = tau / 10`` and ``n_trials = 10`` [same], ``tau`` doubles up to ``tau_max`` [1000 to
  8000 steps]; all are arguments (a custom ``tau'`` keeps its ratio to ``tau``). Every
  parameter group gets the same lr.
- GP: scikit-learn's ``GaussianProcessRegressor`` on ``log lr`` scaled to [0, 1], Matérn-5/2
  kernel times a fitted constant plus fitted white noise, normalized targets, hyperparameters
  by marginal likelihood (the reference uses scikit-optimize's GP, also Matérn-5/2).
- Acquisition: LCB ``mu - kappa sigma`` minimized on a 256-point grid (points already tried
  excluded); the first candidate is drawn at random [as in the reference]. The stage's lr is
  the tried candidate with the lowest forecast [same]. ``kappa = 2`` is our choice: the
  reference passes ``kappa = 1e6`` to scikit-optimize, which makes LCB pure uncertainty
  sampling (a space-filling design that ignores the GP mean). On the noisy quadratic of the
  tests (best lr 0.0166 over 200 steps, range [1e-3, 1], 10 trials of 20 steps, 6 seeds) both
  found it: mean loss ratio to the optimum 1.16 with ``kappa = 2`` and 1.28 with ``1e6``
  (worst 0.26 and 0.31 decades off). ``kappa`` is an argument.
- Forecasts always use the training loss of the exploration steps (the paper switches to
  validation loss in late stages; a benchmark submission may not look at validation data).
  Outliers are dropped by two rounds of refitting without points whose residual exceeds
  3 robust standard deviations (the reference smooths with iterated splines).
- The forecast is the paper's model evaluated ``tau`` steps ahead, with the decay rate free
  (as in the reference, any ``b < 0``), so a slowly falling curve is extrapolated along its
  exponential rather than read off its asymptote. One bound is added: ``c >= loss_floor``
  (0 by default: cross-entropy and squared error are non-negative), the loss's known lower
  bound, not a fitted value: a nearly straight window (a small lr) cannot be extrapolated
  below zero and win the search on that. ``loss_floor=None`` is the reference's unbounded fit
  (on the noisy quadratic above it did as well: mean ratio 1.23, worst 0.18 decades).
- A candidate whose loss turns non-finite ends its exploration at once and is recorded with a
  penalty (twice the largest loss seen in the stage) instead of the reference's 1e6, which would
  swamp a GP on standardized values.

Plain PyTorch loop:

>>> _ = torch.manual_seed(0)
>>> model = nn.Linear(4, 1)
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> ctl = AutoLRS(model, opt, lr_min=1e-3, lr_max=0.5, tau=30, n_trials=3)
>>> for step in range(100):
...     x = torch.randn(16, 4)
...     loss = (model(x) - x.sum(1, keepdim=True)).pow(2).mean()
...     opt.zero_grad(); loss.backward(); opt.step()
...     ctl.step(loss.item())          # may restore the checkpoint and set the next lr
>>> ctl.stage, len(ctl.history)        # stage 0: 3 x 3 + 30 steps; stage 1: tau = 60
(1, 2)

While ``ctl.exploring``, ``ctl.reference_state()`` holds the weights training continues from.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

# --------------------------------------------------------------------------------------------
# Exponential forecasting


def _fit_for_rate(
    t: np.ndarray, y: np.ndarray, rate: float, floor: float | None
) -> tuple[float, float, float]:
    """Least-squares ``a, c`` of ``y ~ a exp(-rate t) + c`` subject to ``c >= floor``;
    returns ``(a, c, sse)``."""
    e = np.exp(-rate * t)
    design = np.stack([e, np.ones_like(t)], axis=1)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    a, c = float(coef[0]), float(coef[1])
    if floor is not None and c < floor:  # the constraint is active: c = floor, 1-D fit of a
        c = floor
        a = float(e @ (y - c) / (e @ e))
    sse = float(np.sum((a * e + c - y) ** 2))
    return a, c, sse


def _fit_exponential_once(
    t: np.ndarray, y: np.ndarray, rate_min: float, rate_max: float, floor: float | None
) -> tuple[float, float, float]:
    from scipy.optimize import minimize_scalar

    log_rates = np.linspace(math.log(rate_min), math.log(rate_max), 64)
    sses = [_fit_for_rate(t, y, math.exp(lr), floor)[2] for lr in log_rates]
    i = int(np.argmin(sses))
    lo, hi = log_rates[max(i - 1, 0)], log_rates[min(i + 1, len(log_rates) - 1)]
    if hi > lo:
        res = minimize_scalar(
            lambda lr: _fit_for_rate(t, y, math.exp(lr), floor)[2],
            bounds=(lo, hi),
            method="bounded",
            options={"xatol": 1e-6},
        )
        best = float(res.x) if res.fun <= sses[i] else float(log_rates[i])
    else:
        best = float(log_rates[i])
    rate = math.exp(best)
    a, c, _ = _fit_for_rate(t, y, rate, floor)
    return a, -rate, c


def fit_exponential(
    losses: Sequence[float] | np.ndarray,
    rate_min: float = 1e-5,
    rate_max: float = 1.0,
    outlier_rounds: int = 2,
    floor: float | None = None,
) -> tuple[float, float, float]:
    """Fit ``l(t) = a exp(b t) + c`` with ``b = -rate``, ``rate`` in ``[rate_min, rate_max]``, to
    ``losses`` observed at ``t = 0, 1, ...``; returns ``(a, b, c)``.

    For each rate, ``a`` and ``c`` solve a linear least-squares problem (with ``c >= floor``
    when a floor is given: a loss bounded below has its asymptote there or above); the rate
    minimizes the residual (log-grid search refined by a bounded scalar search). Then up to
    ``outlier_rounds`` refits drop points whose residual exceeds 3 robust standard deviations
    (1.4826 * MAD).

    AutoLRS's loss forecast: Jin et al., "AutoLRS: Automatic Learning-Rate Schedule by
    Bayesian Optimization on the Fly" (ICLR 2021), fit this model to each candidate's losses.

    >>> losses = [2.0 * math.exp(-0.1 * t) + 0.5 for t in range(30)]
    >>> [round(v, 3) for v in fit_exponential(losses)]
    [2.0, -0.1, 0.5]
    """
    y = np.asarray(losses, dtype=np.float64)
    if y.ndim != 1 or len(y) < 3:
        raise ValueError("need at least three losses to fit an exponential")
    if not np.all(np.isfinite(y)):
        raise ValueError("losses must be finite")
    t = np.arange(len(y), dtype=np.float64)
    keep = np.ones(len(y), dtype=bool)
    a, b, c = _fit_exponential_once(t, y, rate_min, rate_max, floor)
    for _ in range(outlier_rounds):
        resid = y - (a * np.exp(b * t) + c)
        mad = float(np.median(np.abs(resid[keep] - np.median(resid[keep]))))
        if mad <= 0:
            break
        new_keep = np.abs(resid) <= 3.0 * 1.4826 * mad
        if new_keep.sum() < 3 or np.array_equal(new_keep, keep):
            break
        keep = new_keep
        a, b, c = _fit_exponential_once(t[keep], y[keep], rate_min, rate_max, floor)
    return a, b, c


def forecast_exponential(
    losses: Sequence[float] | np.ndarray,
    at: float,
    rate_min: float = 1e-5,
    rate_max: float = 1.0,
    floor: float | None = None,
) -> float:
    """The fitted exponential of :func:`fit_exponential` evaluated at step ``at``: AutoLRS's
    forecast of the loss a candidate learning rate reaches after a stage (Jin et al., 2021)."""
    a, b, c = fit_exponential(losses, rate_min, rate_max, floor=floor)
    return a * math.exp(b * at) + c


# --------------------------------------------------------------------------------------------
# Bayesian optimization over one log-scaled variable


def _gaussian_process(seed: int):
    """scikit-learn's GP with the reference's kernel family: a Matérn-5/2 with a fitted scale,
    plus fitted white noise (forecasts from noisy losses are noisy), on normalized targets."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(
        length_scale=0.3, length_scale_bounds=(0.03, 3.0), nu=2.5
    ) + WhiteKernel(1e-3, (1e-8, 1.0))
    return GaussianProcessRegressor(
        kernel, normalize_y=True, n_restarts_optimizer=2, random_state=seed
    )


class BayesOpt1D:
    """Minimize a noisy function of one variable in ``[low, high]`` (log scale if ``log``).

    ``ask()`` proposes a point: at random first, then the minimizer of the lower confidence
    bound ``mu - kappa * sigma`` of a Gaussian process (scikit-learn, Matérn-5/2 + noise) fitted
    to the observations, over a grid of ``grid`` points, skipping points already tried.
    ``tell(x, y)`` records an observation; ``best()`` is the observed point with the lowest
    value. AutoLRS's search over learning rates (Jin et al., "AutoLRS: Automatic Learning-Rate
    Schedule by Bayesian Optimization on the Fly" (ICLR 2021)).

    >>> bo = BayesOpt1D(1e-3, 1.0, rng=0)
    >>> for _ in range(8):
    ...     lr = bo.ask()
    ...     bo.tell(lr, (math.log10(lr) + 2) ** 2)      # best at 1e-2
    >>> round(math.log10(bo.best()), 1)
    -2.0
    """

    def __init__(
        self,
        low: float,
        high: float,
        log: bool = True,
        kappa: float = 2.0,
        grid: int = 256,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        if not low < high or (log and low <= 0):
            raise ValueError("need 0 < low < high (log scale) or low < high")
        self.low, self.high, self.log, self.kappa = low, high, log, kappa
        self.grid = np.linspace(0.0, 1.0, grid)
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.xs: list[float] = []
        self.ys: list[float] = []

    def _to_unit(self, x: float) -> float:
        if self.log:
            return (math.log(x) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (x - self.low) / (self.high - self.low)

    def _from_unit(self, u: float) -> float:
        u = min(max(u, 0.0), 1.0)
        if self.log:
            x = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            x = self.low + u * (self.high - self.low)
        return min(max(x, self.low), self.high)  # no rounding past the ends

    def posterior(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The GP's mean and standard deviation at unit-scaled points ``u``."""
        from sklearn.exceptions import ConvergenceWarning

        gp = _gaussian_process(int(self.rng.integers(2**31)))
        tried = np.array([self._to_unit(x) for x in self.xs])[:, None]
        with warnings.catch_warnings():  # hyperparameters at their bounds are fine here
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(tried, np.asarray(self.ys))
        mean, std = gp.predict(np.asarray(u, dtype=np.float64)[:, None], return_std=True)
        return mean, std

    def ask(self) -> float:
        if not self.xs:
            return self._from_unit(float(self.rng.uniform()))
        if len(self.xs) == 1 or np.ptp(self.ys) == 0:  # nothing to model yet: farthest point
            tried = np.array([self._to_unit(x) for x in self.xs])
            far = np.min(np.abs(self.grid[:, None] - tried[None, :]), axis=1)
            return self._from_unit(float(self.grid[int(np.argmax(far))]))
        mean, std = self.posterior(self.grid)
        lcb = mean - self.kappa * std
        tried = np.array([self._to_unit(x) for x in self.xs])
        spacing = self.grid[1] - self.grid[0]
        too_close = np.min(np.abs(self.grid[:, None] - tried[None, :]), axis=1) < 0.5 * spacing
        lcb[too_close] = np.inf
        if np.all(np.isinf(lcb)):
            return self._from_unit(float(self.rng.uniform()))
        return self._from_unit(float(self.grid[int(np.argmin(lcb))]))

    def tell(self, x: float, y: float) -> None:
        self.xs.append(float(x))
        self.ys.append(float(y))

    def best(self) -> float:
        if not self.xs:
            raise ValueError("no observations yet")
        return self.xs[int(np.argmin(self.ys))]


# --------------------------------------------------------------------------------------------
# The controller


class AutoLRS:
    """The AutoLRS controller for a plain training loop (see the module docstring): Jin, Zhou,
    Zhao, Zhu, Guo, Canini & Krishnamurthy, "AutoLRS: Automatic Learning-Rate Schedule by
    Bayesian Optimization on the Fly" (ICLR 2021).

    Rule: per stage, ``n_trials`` candidate lrs each run ``tau'`` steps from a checkpoint;
    each is scored by its exponential loss forecast ``tau`` steps ahead; a GP/LCB search picks
    the candidates; the stage then trains ``tau`` steps at the best one; ``tau`` doubles up to
    ``tau_max``.

    Call :meth:`step` with the training loss after every optimizer step. The controller sets
    every parameter group's ``lr``, checkpoints the model and optimizer at the start of each
    stage and restores them after each exploration. ``loss_floor`` is a lower bound of the loss
    (0 for cross-entropy and squared error; ``None`` for none) that the forecast's asymptote
    respects.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        lr_min: float,
        lr_max: float,
        tau: int = 1000,
        tau_prime: int | None = None,
        n_trials: int = 10,
        tau_max: int = 8000,
        kappa: float = 2.0,
        loss_floor: float | None = 0.0,
        seed: int = 0,
    ) -> None:
        if not 0 < lr_min < lr_max:
            raise ValueError("need 0 < lr_min < lr_max")
        if n_trials < 1 or tau < 1:
            raise ValueError("need n_trials >= 1 and tau >= 1")
        self.model, self.optimizer = model, optimizer
        self.lr_min, self.lr_max = lr_min, lr_max
        self.tau = tau
        self.tau_prime = tau_prime if tau_prime is not None else max(3, tau // 10)
        self._ratio = self.tau_prime / tau  # tau' grows with tau
        if self.tau_prime < 3:
            raise ValueError("tau_prime must be >= 3 (an exponential has three parameters)")
        self.n_trials, self.tau_max, self.kappa = n_trials, tau_max, kappa
        self.loss_floor = loss_floor
        self.rng = np.random.default_rng(seed)
        self.stage = 0
        #: (stage, chosen lr, its forecast, tau) per finished search
        self.history: list[tuple[int, float, float, int]] = []
        self._start_stage()

    # -- public -----------------------------------------------------------------------------
    @property
    def lr(self) -> float:
        return self._lr

    @property
    def exploring(self) -> bool:
        return self._exploring

    def reference_state(self) -> dict | None:
        """While exploring, the model's ``state_dict`` at the stage checkpoint (the weights that
        training continues from; evaluate these); ``None`` when the live model is the one."""
        return self._ckpt_model if self._exploring else None

    def step(self, loss: float) -> None:
        """Record the training loss of the step just taken and set up the next one."""
        loss = float(loss)
        if self._exploring:
            if math.isfinite(loss):
                self._losses.append(loss)
                self._stage_max = max(self._stage_max, abs(loss))
            if not math.isfinite(loss):
                self._finish_trial(2.0 * max(self._stage_max, 1e-8))
            elif len(self._losses) >= self.tau_prime:
                forecast = forecast_exponential(self._losses, at=self.tau, floor=self.loss_floor)
                self._finish_trial(forecast)
            return
        self._exploit_left -= 1
        if self._exploit_left <= 0:
            if self.tau < self.tau_max:
                self.tau = min(2 * self.tau, self.tau_max)
                self.tau_prime = max(3, round(self._ratio * self.tau))
            self.stage += 1
            self._start_stage()

    # -- internals --------------------------------------------------------------------------
    def _set_lr(self, lr: float) -> None:
        self._lr = float(lr)
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr

    def _start_stage(self) -> None:
        self._ckpt_model = copy.deepcopy(self.model.state_dict())
        self._ckpt_opt = copy.deepcopy(self.optimizer.state_dict())
        self._bo = BayesOpt1D(self.lr_min, self.lr_max, log=True, kappa=self.kappa, rng=self.rng)
        self._exploring = True
        self._stage_max = 0.0
        self._start_trial(self._bo.ask())

    def _start_trial(self, lr: float) -> None:
        self._losses: list[float] = []
        self._set_lr(lr)

    def _restore(self) -> None:
        self.model.load_state_dict(self._ckpt_model)
        # load_state_dict may keep references to the given tensors: hand it a copy
        self.optimizer.load_state_dict(copy.deepcopy(self._ckpt_opt))

    def _finish_trial(self, forecast: float) -> None:
        self._bo.tell(self._lr, forecast)
        self._restore()
        if len(self._bo.xs) < self.n_trials:
            self._start_trial(self._bo.ask())
            return
        best = self._bo.best()
        self.history.append((self.stage, best, min(self._bo.ys), self.tau))
        self._exploring = False
        self._exploit_left = self.tau
        self._set_lr(best)
