"""The parametric learning-curve ensemble of Domhan, Springenberg & Hutter (IJCAI 2015).

Domhan et al. model a curve as a weighted combination of the eleven families of
:mod:`trainlab.curves.families`,

    y(x) = sum_k w_k f_k(x; theta_k) + eps,   eps ~ N(0, sigma^2),   w_k >= 0,

with a prior that the combined curve increases (``f(x_1) < f(x_T)``) and ends in [0, 1], and
sample the posterior of ``(w, theta, sigma)`` by MCMC (emcee, 250 000 samples). That costs
seconds to minutes per curve; an early-stopping rule runs it at every evaluation of every
trial, so trainlab approximates the same posterior cheaply (~0.1-0.3 s a curve):

1. each family is fitted by least squares (``scipy.optimize.curve_fit``, trust-region with the
   parameter bounds of :data:`~trainlab.curves.families.FAMILIES`); a family with at least as
   many parameters as observed points is skipped; fits that fail, or whose curve breaks the
   prior (not finite, not increasing from ``x_1`` to ``x_T = 100``, outside [-0.05, 1.05] at
   ``x_T``), are dropped;
2. the weights: where the families fit the observed part about equally well (the usual case
   early in a curve), the paper's posterior spreads its weight over them; we approximate it by
   a *mixture* of the families with posterior weights from the BIC approximation of each
   family's evidence, ``w_k ~ exp(-BIC_k / 2)``, ``BIC_k = n log(SSE_k / n) + p_k log n``,
   rather than one combination (a non-negative least-squares combination, tried first,
   concentrates on the single best-fitting family and is overconfident: on 60 curves of the
   LC-PFN prior its 90 % interval covered the final value 68 % of the time at 25 % of the
   curve, the mixture 90 %);
3. within a family, ``theta_k ~ N(theta_hat_k, Sigma_k)`` (Laplace: Sigma_k the covariance
   ``curve_fit`` returns, the Gauss-Newton inverse Hessian times the residual variance; flat
   prior); draws breaking the paper's prior (the curve does not increase from ``x_1`` to
   ``x_T``, or ends outside [0, 1]) are rejected (rejection sampling; if too few survive, the
   point estimate fills in); each draw gets observation noise ``N(0, sigma_k^2)``,
   ``sigma_k^2 = SSE_k / (n - p_k)``; the result is clipped to [0, 1] (the mapped metric's
   range). 2000 draws in all.

With fewer points than any family needs (1-2), the prediction is the last value with the
spread of the values so far. Seeded: the same curve and seed give the same prediction.

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
from scipy.optimize import OptimizeWarning, curve_fit

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


def fit_ensemble(x: np.ndarray, y: np.ndarray) -> tuple[list[FamilyFit], np.ndarray]:
    """The kept family fits and their posterior weights (BIC approximation of the evidence,
    summing to 1)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    fits = [f for f in (fit_family(fam, x, y) for fam in FAMILIES.values()) if f is not None]
    if not fits:
        return [], np.zeros(0)
    n = len(y)
    bic = np.array([n * np.log(max(f.sse, 1e-12) / n) + f.family.n_params * np.log(n)
                    for f in fits])  # fmt: skip
    weights = np.exp(-(bic - bic.min()) / 2)
    return fits, weights / weights.sum()


def parametric_posterior(x: np.ndarray, y: np.ndarray, seed: int = 0) -> SamplePosterior:
    """The ensemble's predictive distribution of ``y`` at the budget's end (``x = 100``), from
    observed points ``x`` (in [1, 100], increasing) and ``y`` (in [0, 1])."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    rng = np.random.default_rng(seed)
    fits, weights = fit_ensemble(x, y)
    if not fits:  # nothing fits (too few points): the last value, with the spread so far
        sigma = float(np.std(y)) if len(y) > 1 else 0.05
        return SamplePosterior(np.clip(y[-1] + rng.normal(0.0, sigma, N_SAMPLES), 0.0, 1.0))
    ends = np.array([x[0], X_END])
    out = []
    for fit, count in zip(fits, rng.multinomial(N_SAMPLES, weights), strict=True):
        if count == 0:
            continue
        theta = _draws(fit, rng, 3 * count)  # extra draws: some break the prior
        with np.errstate(all="ignore"):
            values = fit.family.f(ends[None, :], *(theta.T[:, :, None]))
        ok = np.isfinite(values).all(1) & (values[:, 1] > values[:, 0])
        ok &= (values[:, 1] >= 0.0) & (values[:, 1] <= 1.0)
        final = values[ok, 1][:count]
        if len(final) < count:  # too few kept: the point estimate for the rest
            final = np.concatenate([final, np.repeat(fit(ends[1:]), count - len(final))])
        sigma = np.sqrt(fit.sse / max(1, len(y) - fit.family.n_params))
        out.append(final + rng.normal(0.0, max(sigma, 1e-3), count))
    return SamplePosterior(np.clip(np.concatenate(out), 0.0, 1.0))
