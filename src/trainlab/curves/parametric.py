"""The parametric learning-curve ensemble of Domhan, Springenberg & Hutter (IJCAI 2015).

Domhan et al. model a curve as a weighted combination of the eleven families of
:mod:`trainlab.curves.families`,

    y(x) = sum_k w_k f_k(x; theta_k) + eps,   eps ~ N(0, sigma^2),   w_k >= 0,

with a prior that the combined curve increases (``f(x_1) < f(x_T)``) and ends in [0, 1], and
sample the posterior of ``(w, theta, sigma)`` by MCMC (emcee, 250 000 samples). That costs
seconds to minutes per curve; an early-stopping rule runs it at every evaluation of every
trial, so trainlab uses a Laplace approximation of the same model instead (the cost is ~0.1 s):

1. each family is fitted by least squares (``scipy.optimize.curve_fit``, trust-region with the
   parameter bounds of :data:`~trainlab.curves.families.FAMILIES`), a family with at least as
   many parameters as observed points is skipped; fits that fail, or whose curve breaks the
   prior (not finite, not increasing from ``x_1`` to ``x_T = 100``, outside [-0.05, 1.05] at
   ``x_T``), are dropped;
2. the weights ``w >= 0`` are the non-negative least-squares combination of the kept fits
   (``scipy.optimize.nnls``); ``sigma^2`` is the residual variance of the combination
   (divided by ``n - 1``, at least 1e-6);
3. the posterior of each ``theta_k`` is approximated by ``N(theta_hat_k, Sigma_k)``, Sigma_k the
   covariance ``curve_fit`` returns (the Gauss-Newton inverse Hessian times the residual
   variance; flat prior); 2000 joint draws of the combination are kept when they satisfy the
   paper's prior (the combined curve increases from ``x_1`` to ``x_T`` and ends in [0, 1]:
   rejection sampling), plus observation noise ``N(0, sigma^2)``, clipped to [0, 1] (the range
   of the mapped metric). The weights are held at their
   NNLS values (the paper samples them too): their uncertainty is the part this leaves out.

If no draw survives (a very uncertain fit) the combination's point prediction with the noise
alone is used. Seeded: the same curve and seed give the same prediction.

Use in a plain loop (``accs`` the validation accuracies at ``steps``, budget ``max_steps``)::

    from trainlab.curves import predict_final
    p = predict_final("lc-parametric", [s / max_steps for s in steps], accs, target=0.9,
                      metric="accuracy", higher_is_better=True)
    print(p.mean, (p.lower, p.upper), p.p_target)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit, nnls

from trainlab.curves.families import FAMILIES, Family
from trainlab.curves.metric_map import X_END, SamplePosterior

#: joint draws of the Laplace approximation
N_SAMPLES = 2000


@dataclass(frozen=True)
class FamilyFit:
    """One family's least-squares fit: parameters, their covariance, the residual variance."""

    family: Family
    params: np.ndarray
    cov: np.ndarray | None  # None when curve_fit could not estimate it
    sse: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.family.f(np.asarray(x, dtype=np.float64), *self.params)


def fit_family(family: Family, x: np.ndarray, y: np.ndarray) -> FamilyFit | None:
    """Least-squares fit of ``family`` to points ``(x, y)``; ``None`` when it fails or breaks
    the prior (see the module docstring). Needs more points than the family has parameters."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) <= family.n_params:
        return None
    p0 = np.clip(family.p0, np.add(family.lower, 1e-9), np.subtract(family.upper, 1e-9))
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", OptimizeWarning)
            params, cov = curve_fit(family.f, x, y, p0=p0, bounds=(family.lower, family.upper),
                                    max_nfev=2000)  # fmt: skip
    except (RuntimeError, ValueError, FloatingPointError):
        return None
    with np.errstate(all="ignore"):
        ends = family.f(np.array([x[0], X_END]), *params)
        sse = float(np.sum((family.f(x, *params) - y) ** 2))
    if not (np.isfinite(ends).all() and np.isfinite(sse)):
        return None
    if ends[1] < ends[0] or not -0.05 <= ends[1] <= 1.05:
        return None
    cov = cov if np.isfinite(cov).all() else None
    return FamilyFit(family, params, cov, sse)


def _draws(fit: FamilyFit, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` parameter draws from ``N(params, cov)`` (``(n, n_params)``), clipped to the
    bounds; the point estimate repeated when there is no covariance."""
    if fit.cov is None:
        return np.repeat(fit.params[None], n, axis=0)
    values, vectors = np.linalg.eigh((fit.cov + fit.cov.T) / 2)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    draws = fit.params + rng.standard_normal((n, len(fit.params))) @ root.T
    return np.clip(draws, fit.family.lower, fit.family.upper)


def fit_ensemble(x: np.ndarray, y: np.ndarray) -> tuple[list[FamilyFit], np.ndarray, float]:
    """The kept family fits, their NNLS weights and the noise variance ``sigma^2``."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    fits = [f for f in (fit_family(fam, x, y) for fam in FAMILIES.values()) if f is not None]
    if not fits:
        return [], np.zeros(0), max(1e-6, float(np.var(y)) if len(y) > 1 else 1e-2)
    columns = np.stack([f(x) for f in fits], axis=1)
    weights, _ = nnls(columns, y)
    if not weights.any():
        weights = np.full(len(fits), 1.0 / len(fits))
    residual = y - columns @ weights
    sigma2 = max(1e-6, float(residual @ residual) / max(1, len(y) - 1))
    return fits, weights, sigma2


def parametric_posterior(x: np.ndarray, y: np.ndarray, seed: int = 0) -> SamplePosterior:
    """The ensemble's predictive distribution of ``y`` at the budget's end (``x = 100``), from
    observed points ``x`` (in [1, 100], increasing) and ``y`` (in [0, 1])."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    rng = np.random.default_rng(seed)
    fits, weights, sigma2 = fit_ensemble(x, y)
    noise = rng.normal(0.0, np.sqrt(sigma2), N_SAMPLES)
    if not fits:  # nothing fits (too few points): the last value, with the noise
        return SamplePosterior(np.clip(y[-1] + noise, 0.0, 1.0))
    keep = weights > 0
    fits, weights = [f for f, k in zip(fits, keep, strict=True) if k], weights[keep]
    ends = np.array([x[0], X_END])
    start = np.zeros(N_SAMPLES)
    final = np.zeros(N_SAMPLES)
    with np.errstate(all="ignore"):
        for fit, w in zip(fits, weights, strict=True):
            theta = _draws(fit, rng, N_SAMPLES)
            values = fit.family.f(ends[None, :], *(theta.T[:, :, None]))
            start += w * values[:, 0]
            final += w * values[:, 1]
    ok = np.isfinite(final) & np.isfinite(start) & (final > start) & (final >= 0) & (final <= 1)
    if ok.sum() < N_SAMPLES // 20:
        point = float(sum(w * f(np.array([X_END]))[0] for f, w in zip(fits, weights,
                                                                        strict=True)))
        return SamplePosterior(np.clip(np.clip(point, 0.0, 1.0) + noise, 0.0, 1.0))
    return SamplePosterior(np.clip(final[ok] + noise[ok], 0.0, 1.0))
