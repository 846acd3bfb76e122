"""Optimizers from the literature, as ``torch.optim.Optimizer`` subclasses, and
:func:`create_optimizer` to build one by name."""

from trainlab.optim.adan import Adan
from trainlab.optim.dadapt_adam import DAdaptAdam
from trainlab.optim.dog import DoG
from trainlab.optim.factory import create_optimizer, param_groups
from trainlab.optim.lamb import LAMB
from trainlab.optim.lion import Lion
from trainlab.optim.muon import Muon, muon_param_groups, newton_schulz
from trainlab.optim.nadamw import NAdamW
from trainlab.optim.prodigy import Prodigy
from trainlab.optim.schedule_free import ScheduleFreeAdamW, ScheduleFreeSGD
from trainlab.optim.sgdw import SGDW
from trainlab.optim.shampoo import Shampoo

__all__ = [
    "LAMB",
    "SGDW",
    "Adan",
    "DAdaptAdam",
    "DoG",
    "Lion",
    "Muon",
    "NAdamW",
    "Prodigy",
    "Shampoo",
    "ScheduleFreeAdamW",
    "ScheduleFreeSGD",
    "create_optimizer",
    "muon_param_groups",
    "newton_schulz",
    "param_groups",
]
