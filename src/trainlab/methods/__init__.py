"""Training methods from the literature as plain functions and small classes, for any PyTorch
loop (the functional API, as ``composer.functional`` is to Composer's algorithms).

>>> from trainlab.methods import EMA, SWA, recompute_batchnorm, AutoLRS, GhostBatchNorm1d

Each name's docstring (and its module's) cites the paper it implements. Importing this package
imports torch and the method modules only: no benchmark, CLI or workload code (scikit-learn is
imported when a Gaussian process is first fitted).
"""

from trainlab.methods.accelat import AccelAT
from trainlab.methods.autolrs import AutoLRS, BayesOpt1D, fit_exponential, forecast_exponential
from trainlab.methods.cyclical_curriculum import (
    CyclicalCurriculum,
    curriculum_subset,
    cycle_fractions,
    iter_cycle_fractions,
)
from trainlab.methods.data_diet import (
    VmapUnsupportedError,
    average_over_runs,
    el2n_scores,
    grand_scores,
    score_examples,
    select_by_score,
)
from trainlab.methods.ensemble_kd import TeacherTargets, ensemble_soft_targets
from trainlab.methods.ghost_batchnorm import GhostBatchNorm1d, GhostBatchNorm2d
from trainlab.methods.hard_samples import hard_batches, hardest
from trainlab.methods.one_pass import (
    OneEpochPlan,
    RepeatedExampleError,
    choose_model_size,
    one_pass,
    plan_one_epoch,
)
from trainlab.methods.pskd import PSKD, pskd_alpha, pskd_targets
from trainlab.methods.scaling_rules import (
    Regime,
    granziol_lr,
    hoffer_regime,
    lr_multiplier,
    rule_for_optimizer,
    scale_lr,
    scale_optimizer_lr,
)
from trainlab.methods.sortednet import SortedNet
from trainlab.methods.useful import cluster_features, slow_learnable_mask, upsampled_indices
from trainlab.methods.weight_averaging import (
    EMA,
    SWA,
    has_batchnorm,
    recompute_batchnorm,
    swa_schedule,
)
from trainlab.nn_utils import evaluating, soft_cross_entropy

__all__ = [
    # SortedNet (Valipour et al., 2023)
    "SortedNet",
    # weight averaging (Izmailov et al., 2018; Polyak & Juditsky, 1992)
    "EMA",
    "SWA",
    "recompute_batchnorm",
    "has_batchnorm",
    "swa_schedule",
    # AutoLRS (Jin et al., 2021)
    "AutoLRS",
    "BayesOpt1D",
    "fit_exponential",
    "forecast_exponential",
    # AccelAT (Nikfam et al., 2022)
    "AccelAT",
    # Ghost Batch Normalization (Hoffer et al., 2017)
    "GhostBatchNorm1d",
    "GhostBatchNorm2d",
    # batch-size scaling rules (Granziol et al., 2022; Hoffer et al., 2017)
    "rule_for_optimizer",
    "scale_lr",
    "lr_multiplier",
    "granziol_lr",
    "scale_optimizer_lr",
    "Regime",
    "hoffer_regime",
    # Data Diet: EL2N and GraNd scores (Paul et al., 2021)
    "el2n_scores",
    "grand_scores",
    "score_examples",
    "average_over_runs",
    "select_by_score",
    "VmapUnsupportedError",
    # hard samples (Sahayam et al., 2023)
    "hard_batches",
    "hardest",
    # Cyclical Curriculum Learning (Kesgin & Amasyali, 2022)
    "CyclicalCurriculum",
    "cycle_fractions",
    "iter_cycle_fractions",
    "curriculum_subset",
    # USEFUL (Nguyen et al., 2024)
    "cluster_features",
    "slow_learnable_mask",
    "upsampled_indices",
    # one epoch is all you need (Komatsuzaki, 2019)
    "one_pass",
    "RepeatedExampleError",
    "plan_one_epoch",
    "OneEpochPlan",
    "choose_model_size",
    # PS-KD (Kim et al., 2021)
    "PSKD",
    "pskd_alpha",
    "pskd_targets",
    # MEAL V2 ensemble distillation (Shen & Savvides, 2020)
    "ensemble_soft_targets",
    "TeacherTargets",
    # helpers
    "evaluating",
    "soft_cross_entropy",
]
