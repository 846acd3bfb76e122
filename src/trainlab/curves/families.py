"""The eleven parametric learning-curve families of Domhan, Springenberg & Hutter (IJCAI 2015).

Domhan et al., "Speeding up Automatic Hyperparameter Optimization of Deep Neural Networks by
Extrapolation of Learning Curves", IJCAI 2015, Table 1 (also in the LC-PFN paper, Adriaensen
et al. 2023, whose prior uses ``pow3``, ``ilog2`` and ``janoschek``). Each family maps the
position ``x >= 1`` on the curve (here ``x = 1 + 99 * fraction of the budget``, so that the
budget's end is ``x = 100``, the LC-PFN's curve length) to the performance ``y`` (increasing,
in [0, 1] for a good curve; see :mod:`trainlab.curves.metric_map`).

One choice the paper leaves open: its ``ilog2`` is ``c - a / log(x)``, infinite at ``x = 1``;
we use ``c - a / log(x + 1)`` (as the authors' code does). ``p0`` are starting points for the
least-squares fit near the centre of the LC-PFN prior; ``bounds`` keep each fit in the
parameter region where the family is defined (a positive exponent, a positive rate).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def vap(x, a, b, c):
    """Vapor pressure: ``exp(a + b / x + c log x)``."""
    return np.exp(a + b / x + c * np.log(x))


def pow3(x, c, a, alpha):
    """``c - a x^-alpha``."""
    return c - a * x ** (-alpha)


def loglog_linear(x, a, b):
    """``log(a log x + b)``."""
    return np.log(a * np.log(x) + b)


def hill3(x, ymax, eta, kappa):
    """Hill (zero background): ``ymax x^eta / (kappa^eta + x^eta)``."""
    return ymax * x**eta / (kappa**eta + x**eta)


def log_power(x, a, b, c):
    """``a / (1 + (x / e^b)^c)`` (increasing for ``c < 0``)."""
    return a / (1.0 + (x / np.exp(b)) ** c)


def pow4(x, c, a, b, alpha):
    """``c - (a x + b)^-alpha``."""
    return c - (a * x + b) ** (-alpha)


def mmf(x, alpha, beta, kappa, delta):
    """Morgan-Mercer-Flodin: ``alpha - (alpha - beta) / (1 + (kappa x)^delta)``."""
    return alpha - (alpha - beta) / (1.0 + (kappa * x) ** delta)


def exp4(x, c, a, b, alpha):
    """``c - exp(-a x^alpha + b)``."""
    return c - np.exp(-a * x**alpha + b)


def janoschek(x, alpha, beta, kappa, delta):
    """Janoschek: ``alpha - (alpha - beta) exp(-kappa x^delta)``."""
    return alpha - (alpha - beta) * np.exp(-kappa * x**delta)


def weibull(x, alpha, beta, kappa, delta):
    """Weibull: ``alpha - (alpha - beta) exp(-(kappa x)^delta)``."""
    return alpha - (alpha - beta) * np.exp(-((kappa * x) ** delta))


def ilog2(x, c, a):
    """``c - a / log(x + 1)``."""
    return c - a / np.log(x + 1.0)


@dataclass(frozen=True)
class Family:
    """A curve family: the function, a starting point and bounds for its least-squares fit."""

    name: str
    f: Callable[..., np.ndarray]
    p0: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]

    @property
    def n_params(self) -> int:
        return len(self.p0)


_INF = np.inf
#: the eleven families of Domhan et al. (2015), Table 1, in its order
FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("vap", vap, (-0.5, -1.0, 0.01), (-10, -50, -2), (5, 50, 2)),
        Family("pow3", pow3, (0.8, 0.5, 0.5), (-2, -5, 1e-4), (2, 5, 10)),
        Family("loglog_linear", loglog_linear, (0.2, 1.5), (1e-6, 1e-6), (50, 50)),
        Family("hill3", hill3, (0.8, 1.0, 5.0), (0, 1e-3, 1e-3), (2, 20, 1e4)),
        Family("log_power", log_power, (0.8, 1.0, -1.0), (0, -20, -20), (2, 20, 0)),
        Family("pow4", pow4, (0.8, 0.5, 1.0, 0.5), (-2, 1e-6, 1e-6, 1e-4), (2, 100, 100, 10)),
        Family("mmf", mmf, (0.8, 0.1, 0.1, 1.0), (-2, -2, 1e-6, 1e-3), (2, 2, 100, 20)),
        Family("exp4", exp4, (0.8, 0.2, 0.0, 0.5), (-2, 1e-6, -20, 1e-3), (2, 50, 20, 5)),
        Family("janoschek", janoschek, (0.8, 0.1, 0.1, 1.0), (-2, -2, 1e-6, 1e-3), (2, 2, 50, 5)),
        Family("weibull", weibull, (0.8, 0.1, 0.1, 1.0), (-2, -2, 1e-6, 1e-3), (2, 2, 50, 5)),
        Family("ilog2", ilog2, (0.8, 0.5), (-2, -5), (2, 5)),
    )
}
