"""The LC-PFN prior over learning curves (Adriaensen et al., NeurIPS 2023, Section 3.2).

A curve of length ``n`` (points ``x = 1..n``, the paper's ``n = 100``) is

    y(x) = sum_k w_k f_k(x; theta_k) + eps,   eps ~ N(0, sigma^2)

over three of Domhan et al.'s families, ``pow3``, ``ilog2`` and ``janoschek``
(:mod:`trainlab.curves.families`), with weights ``w_k ~ U(0, 1)`` (not normalised) and the
paper's "peaked" parameter priors:

* pow3: ``c ~ U(0, 1.25)``, ``a ~ U(-0.6, 0.6)``, ``alpha ~ LogNormal(0, 2)``;
* ilog2: ``c ~ U(0, 1)``, ``a ~ U(-0.5, 0.5)``;
* janoschek: ``alpha ~ U(0, 1)``, ``beta ~ U(0, 2)``, ``kappa ~ LogNormal(-2, 1)``,
  ``delta ~ LogNormal(0, 0.5)``;
* noise: ``log sigma ~ N(-4, 1)`` (the authors' code draws the noise's standard deviation so).

A noise-free curve is rejected (and drawn again) unless it increases overall
(``y(n) > y(1)``) and stays in [0, 1], the paper's constraint; the noisy curve may leave
[0, 1] slightly. Sampling is vectorised with numpy and seeded by a ``numpy.random.Generator``.
"""

from __future__ import annotations

import numpy as np

from trainlab.curves.families import ilog2, janoschek, pow3

#: the paper's curve length
CURVE_LENGTH = 100


def _draw(rng: np.random.Generator, m: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = rng.uniform(0.0, 1.0, size=(3, m, 1))
    y = w[0] * pow3(
        x,
        rng.uniform(0.0, 1.25, (m, 1)),
        rng.uniform(-0.6, 0.6, (m, 1)),
        rng.lognormal(0.0, 2.0, (m, 1)),
    )
    y += w[1] * ilog2(x, rng.uniform(0.0, 1.0, (m, 1)), rng.uniform(-0.5, 0.5, (m, 1)))
    y += w[2] * janoschek(
        x,
        rng.uniform(0.0, 1.0, (m, 1)),
        rng.uniform(0.0, 2.0, (m, 1)),
        rng.lognormal(-2.0, 1.0, (m, 1)),
        rng.lognormal(0.0, 0.5, (m, 1)),
    )
    sigma = np.exp(rng.normal(-4.0, 1.0, (m, 1)))
    return y, sigma


def sample_curves(
    n_curves: int, rng: np.random.Generator, length: int = CURVE_LENGTH
) -> tuple[np.ndarray, np.ndarray]:
    """``n_curves`` curves from the prior: ``(clean, noisy)``, each ``(n_curves, length)``
    float32, the clean ones increasing overall and in [0, 1]."""
    if n_curves < 1 or length < 2:
        raise ValueError("need n_curves >= 1 and length >= 2")
    x = np.arange(1, length + 1, dtype=np.float64)[None, :]
    clean, noisy, have = [], [], 0
    while have < n_curves:
        m = max(16, 2 * (n_curves - have))
        with np.errstate(all="ignore"):
            y, sigma = _draw(rng, m, x)
        ok = (
            np.isfinite(y).all(axis=1)
            & (y[:, -1] > y[:, 0])
            & (y.min(axis=1) >= 0.0)
            & (y.max(axis=1) <= 1.0)
        )
        y, sigma = y[ok], sigma[ok]
        clean.append(y)
        noisy.append(y + sigma * rng.standard_normal(y.shape))
        have += len(y)
    return (
        np.concatenate(clean)[:n_curves].astype(np.float32),
        np.concatenate(noisy)[:n_curves].astype(np.float32),
    )
