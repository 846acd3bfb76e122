"""Models of learning curves: how a validation metric moves with training steps and the
learning-rate schedule. Plain numpy/scipy; no benchmark imports.

* :mod:`~trainlab.curves.annealing`: the scaling law with learning-rate annealing (Tissue et
  al., 2024), which predicts the loss curve of any schedule from one or two runs.
"""
