"""USEFUL: upsample the examples a network learns late, to reduce simplicity bias.

Paper: Dang Nguyen, Paymon Haddad, Eric Gan, Baharan Mirzasoleiman, "Changing the Training Data
Distribution to Reduce Simplicity Bias Improves In-distribution Generalization" (NeurIPS 2024).
USEFUL = "UpSample Early For Uniform Learning".

Rule implemented. Train the model for a few epochs (the paper: about 5-10% of the run). Then,
within every class, cluster the examples into ``k = 2`` groups by k-means on the network's
outputs; the cluster with the higher mean loss holds the examples whose features are learned
late ("slow-learnable"). Upsample those examples once (each appears ``upsample = 2`` times in
the new training distribution) and retrain from scratch on that distribution.

Choices where the paper is open:

* Clustering features are the logits (``[B, C]``). For sequence outputs ``[B, L, C]`` we use the
  logits averaged over positions; for regression, the flattened outputs.
* Examples without a class label (sequence or regression targets) form a single group.
* k-means is scikit-learn's ``KMeans`` (``n_init=10``, seeded); a class with fewer than ``k``
  examples is left alone.
* "From scratch" means from the *same* initial weights (the caller keeps a copy).

A plain PyTorch loop (a short early run on a copy, then a restart on the upsampled data):

>>> import copy, torch, torch.nn.functional as F
>>> from torch import nn
>>> g = torch.Generator().manual_seed(0)
>>> X, Y = torch.randn(120, 4, generator=g), torch.randint(2, (120,), generator=g)
>>> model = nn.Linear(4, 2)
>>> early = copy.deepcopy(model)                       # the initial weights stay in ``model``
>>> opt = torch.optim.SGD(early.parameters(), lr=0.1)
>>> for _ in range(10):                                # the short early run
...     opt.zero_grad(); F.cross_entropy(early(X), Y).backward(); opt.step()
>>> with torch.no_grad():
...     logits = early(X)
>>> slow = slow_learnable_mask(logits, F.cross_entropy(logits, Y, reduction="none"), Y)
>>> idx = upsampled_indices(slow, upsample=2)          # slow examples appear twice
>>> bool((torch.bincount(idx, minlength=120) == 1 + slow.long()).all())
True
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)  # restart from the initial weights
>>> for rows in idx[torch.randperm(len(idx), generator=g)].split(32):
...     loss = F.cross_entropy(model(X[rows]), Y[rows])
...     opt.zero_grad(); loss.backward(); opt.step()
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def cluster_features(outputs: Tensor, targets: Tensor | None = None) -> Tensor:
    """The per-example features USEFUL clusters: logits, position-averaged logits for sequence
    outputs, flattened outputs for regression.
    USEFUL: Nguyen, Haddad, Gan & Mirzasoleiman, "Changing the Training Data Distribution to Reduce
    Simplicity Bias Improves In-distribution Generalization" (NeurIPS 2024)."""
    outputs = outputs.detach().float()
    if targets is not None and not targets.dtype.is_floating_point and outputs.ndim > 2:
        return outputs.flatten(1, -2).mean(1)
    return outputs.flatten(1)


def slow_learnable_mask(
    outputs: Tensor,
    losses: Tensor,
    labels: Tensor | None = None,
    num_clusters: int = 2,
    seed: int = 0,
) -> Tensor:
    """Boolean mask of the examples in the higher-mean-loss cluster of their class.

    ``outputs``: per-example features ``[N, D]`` (see :func:`cluster_features`); ``losses``:
    per-example losses ``[N]``; ``labels``: class per example ``[N]`` (``None``: one group).

    USEFUL's clustering step: Nguyen, Haddad, Gan & Mirzasoleiman, "Changing the Training Data
    Distribution to Reduce Simplicity Bias Improves In-distribution Generalization" (NeurIPS 2024).
    """
    from sklearn.cluster import KMeans

    feats = outputs.detach().float().flatten(1).cpu().numpy()
    loss = losses.detach().float().cpu().numpy()
    n = len(feats)
    groups = np.zeros(n, dtype=np.int64) if labels is None else labels.detach().cpu().numpy()
    if groups.ndim != 1:
        raise ValueError("labels must be one class per example (shape [N])")
    mask = np.zeros(n, dtype=bool)
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        if len(rows) < num_clusters:
            continue
        km = KMeans(n_clusters=num_clusters, n_init=10, random_state=seed).fit(feats[rows])
        assign = km.labels_
        means = [
            loss[rows[assign == c]].mean() if np.any(assign == c) else -np.inf
            for c in range(num_clusters)
        ]
        slow = int(np.argmax(means))
        mask[rows[assign == slow]] = True
    return torch.from_numpy(mask)


def upsampled_indices(slow: Tensor, upsample: int = 2) -> Tensor:
    """All indices once, plus the slow-learnable ones ``upsample - 1`` more times.

    USEFUL's upsampling step: Nguyen, Haddad, Gan & Mirzasoleiman, "Changing the Training Data
    Distribution to Reduce Simplicity Bias Improves In-distribution Generalization"
    (NeurIPS 2024)."""
    if upsample < 1:
        raise ValueError(f"upsample must be >= 1, got {upsample}")
    everything = torch.arange(len(slow))
    extra = torch.nonzero(slow.cpu(), as_tuple=False).flatten()
    return torch.cat([everything] + [extra] * (upsample - 1))
