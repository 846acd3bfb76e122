"""LC-PFN: learning-curve extrapolation in one forward pass of a prior-data fitted network.

Adriaensen, Rakotoarison, Müller & Hutter, "Efficient Bayesian Learning Curve Extrapolation
using Prior-Data Fitted Networks", NeurIPS 2023. A transformer is trained on curves drawn from
a prior (:mod:`trainlab.curves.prior`) to output, for a query position ``x`` and the observed
points ``(x_i, y_i)``, the posterior predictive ``p(y | x, D)`` as a *bar distribution*: a
softmax over ``B`` buckets of [0, 1] whose density is uniform within each bucket. Training
minimises the cross-entropy of held-out points of each prior curve, which makes the output
approximate the Bayesian posterior predictive under that prior (PFN, Müller et al. 2022).

The authors' ``lcpfn`` package (PyPI 0.1.3) ships no weights (it downloads them on first use),
so trainlab trains its own small PFN with the paper's recipe at a CPU-sized scale:

* architecture: each observed point is a token ``Linear(x/100) + Linear(y)``, each query a
  token ``Linear(x/100)``; a pre-norm ``nn.TransformerEncoder`` (``d_model=64``, 4 heads,
  3 layers, feed-forward 128, 0.1 M parameters; the authors' released models: ``d_model`` 512,
  6 or 12 layers, 1000 buckets) in which every token attends
  to the observed tokens only (the PFN attention mask), so queries do not see each other;
  a linear head gives the ``B = 100`` bucket logits;
* buckets: borders at the quantiles of prior values (each bucket equally likely a priori, the
  paper's choice), the outer borders at 0 and 1; targets are clipped to [0, 1];
* training: batches of prior curves of length 100, the number of observed points drawn
  uniformly from 1..99 per batch, the loss on all later points (noisy targets, as the
  paper), Adam with a cosine decay; ``tools/train_lcpfn.py`` is the seeded script that made
  the committed weights ``lcpfn_weights.pt`` (0.23 MB in half precision, loaded with
  ``torch.load(weights_only=True)``): 3000 steps of 64 curves (192 000 curves; the paper
  trains on millions), seed 0, one thread, validation NLL -1.83; on 40 noisy prior curves seen
  to half their length its 90 % interval covers the final value 90 % of the time.

Use in a plain loop (``accs`` the validation accuracies at ``steps``, budget ``max_steps``)::

    from trainlab.curves import predict_final
    p = predict_final("lc-pfn", [s / max_steps for s in steps], accs, target=0.9,
                      metric="accuracy", higher_is_better=True)
    if p.p_target < 0.05: stop()  # p.mean, p.lower, p.upper: the final accuracy predicted
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trainlab.curves.metric_map import X_END

WEIGHTS = Path(__file__).with_name("lcpfn_weights.pt")
#: the model's size, saved with its weights
DEFAULT_CONFIG = {"d_model": 64, "nhead": 4, "num_layers": 3, "dim_feedforward": 128,
                  "n_buckets": 100}  # fmt: skip


class BarDistribution:
    """A distribution on [0, 1] with piecewise-constant density: bucket ``i`` spans
    ``[borders[i], borders[i+1]]`` and holds probability ``probs[..., i]``."""

    def __init__(self, borders: torch.Tensor, probs: torch.Tensor) -> None:
        self.borders = borders
        self.probs = probs
        self.widths = borders[1:] - borders[:-1]

    def mean(self) -> torch.Tensor:
        mids = (self.borders[1:] + self.borders[:-1]) / 2
        return (self.probs * mids).sum(-1)

    def cdf(self, v: float | torch.Tensor) -> torch.Tensor:
        """``P(y <= v)``, linear within a bucket."""
        v = torch.as_tensor(v, dtype=self.borders.dtype)
        inside = ((v[..., None] - self.borders[:-1]) / self.widths).clamp(0.0, 1.0)
        return (self.probs * inside).sum(-1)

    def quantile(self, q: float) -> torch.Tensor:
        cum = torch.cumsum(self.probs, -1)
        i = torch.searchsorted(cum, torch.full_like(cum[..., :1], q)).clamp(max=cum.shape[-1] - 1)
        before = torch.gather(cum, -1, i) - torch.gather(self.probs, -1, i)
        share = ((q - before) / torch.gather(self.probs, -1, i).clamp_min(1e-12)).clamp(0, 1)
        return (self.borders[i] + share * self.widths[i]).squeeze(-1)


class LCPFNModel(nn.Module):
    """The PFN transformer: ``forward(x_obs, y_obs, x_query) -> logits``.

    Shapes: ``x_obs, y_obs``: ``(batch, n)``; ``x_query``: ``(batch, m)``, positions on the
    curve in [1, 100]; logits: ``(batch, m, n_buckets)``. ``borders`` (a buffer,
    ``n_buckets + 1`` increasing values from 0 to 1) are the buckets of the output."""

    def __init__(self, d_model: int = 64, nhead: int = 4, num_layers: int = 3,
                 dim_feedforward: int = 128, n_buckets: int = 100) -> None:  # fmt: skip
        super().__init__()
        self.config = {"d_model": d_model, "nhead": nhead, "num_layers": num_layers,
                       "dim_feedforward": dim_feedforward, "n_buckets": n_buckets}  # fmt: skip
        self.x_encoder = nn.Linear(1, d_model)
        self.y_encoder = nn.Linear(1, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, nhead, dim_feedforward, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_buckets)
        self.register_buffer("borders", torch.linspace(0.0, 1.0, n_buckets + 1))

    def forward(self, x_obs: torch.Tensor, y_obs: torch.Tensor, x_query: torch.Tensor
                ) -> torch.Tensor:  # fmt: skip
        n = x_obs.shape[1]
        obs = self.x_encoder(x_obs[..., None] / X_END) + self.y_encoder(y_obs[..., None])
        query = self.x_encoder(x_query[..., None] / X_END)
        tokens = torch.cat([obs, query], dim=1)
        total = tokens.shape[1]
        # True = may not attend: every token sees the observed tokens only
        mask = torch.ones(total, total, dtype=torch.bool, device=tokens.device)
        mask[:, :n] = False
        out = self.encoder(tokens, mask=mask)
        return self.head(self.norm(out[:, n:]))

    def posterior(self, x_obs: torch.Tensor, y_obs: torch.Tensor, x_query: torch.Tensor
                  ) -> BarDistribution:  # fmt: skip
        """The predictive distribution at each query (shapes as :meth:`forward`)."""
        logits = self(x_obs, y_obs, x_query)
        return BarDistribution(self.borders, torch.softmax(logits, -1))


def bar_nll(logits: torch.Tensor, borders: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean negative log density of ``y`` (clipped to [0, 1]) under the bar distributions
    ``logits`` (``(..., B)``): cross-entropy of the bucket plus log of its width."""
    y = y.clamp(0.0, 1.0)
    index = (torch.searchsorted(borders, y.contiguous(), right=True) - 1).clamp(
        0, len(borders) - 2
    )
    log_p = torch.log_softmax(logits, -1).gather(-1, index[..., None]).squeeze(-1)
    widths = borders[1:] - borders[:-1]
    return (torch.log(widths[index]) - log_p).mean()


def save_model(model: LCPFNModel, path: str | Path, meta: dict[str, Any] | None = None) -> None:
    """Save the weights in half precision with the model's size (for ``weights_only`` loads)."""
    state = {k: (v.half() if v.is_floating_point() and k != "borders" else v)
             for k, v in model.state_dict().items()}  # fmt: skip
    torch.save({"config": model.config, "state": state, "meta": meta or {}}, path)


def load_model(path: str | Path = WEIGHTS) -> LCPFNModel:
    """The trained PFN at ``path`` (default: the committed weights), in eval mode."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = LCPFNModel(**blob["config"])
    model.load_state_dict({k: v.float() for k, v in blob["state"].items()})
    return model.eval()


@functools.cache
def _default_model() -> LCPFNModel:
    return load_model(WEIGHTS)


#: the PFN saw at most this many observed points (curves of 100, one held out at least)
MAX_OBSERVED = 99


@torch.no_grad()
def pfn_posterior(x: np.ndarray, y: np.ndarray, model: LCPFNModel | None = None
                  ) -> BarDistribution:  # fmt: skip
    """The LC-PFN's predictive distribution of ``y`` at the budget's end (``x = 100``) given
    observed points ``x`` (in [1, 100]) and ``y`` (in [0, 1]); longer curves are thinned
    evenly to :data:`MAX_OBSERVED` points, the last one kept."""
    model = model or _default_model()
    x, y = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float32)
    if len(x) > MAX_OBSERVED:
        keep = np.unique(np.round(np.linspace(0, len(x) - 1, MAX_OBSERVED)).astype(int))
        x, y = x[keep], y[keep]
    dist = model.posterior(
        torch.from_numpy(x)[None], torch.from_numpy(y)[None], torch.tensor([[X_END]])
    )
    return BarDistribution(dist.borders, dist.probs[0, 0])


class PFNPosterior:
    """A :class:`~trainlab.curves.metric_map.UnitPosterior` over a bar distribution."""

    def __init__(self, dist: BarDistribution) -> None:
        self.dist = dist

    def mean(self) -> float:
        return float(self.dist.mean())

    def quantile(self, q: float) -> float:
        return float(self.dist.quantile(q))

    def sf(self, v: float) -> float:
        return float(1.0 - self.dist.cdf(v))
