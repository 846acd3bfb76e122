"""Growing a network during training: Net2Net (Chen et al., ICLR 2016) and MixtureGrowth
(Pham et al., WACV 2024); see :mod:`.net2net`, :mod:`.models` and :mod:`.mixture_growth`."""

from trainlab.methods.growth.models import (
    DepthSlot,
    UnsupportedModel,
    WidthSite,
    depth_slots,
    family,
    grow,
    grown_copy,
    kept_slots,
    shrink,
    width_sites,
)
from trainlab.methods.growth.net2net import (
    Expansion,
    GrowthLog,
    carry_optimizer_state,
    identity_conv,
    identity_linear,
    narrow,
    random_mapping,
    replication_counts,
    undo_batchnorm,
    widen,
    zero_output,
)

__all__ = [
    "DepthSlot",
    "Expansion",
    "GrowthLog",
    "UnsupportedModel",
    "WidthSite",
    "carry_optimizer_state",
    "depth_slots",
    "family",
    "grow",
    "grown_copy",
    "identity_conv",
    "identity_linear",
    "kept_slots",
    "narrow",
    "random_mapping",
    "replication_counts",
    "shrink",
    "undo_batchnorm",
    "widen",
    "width_sites",
    "zero_output",
]
