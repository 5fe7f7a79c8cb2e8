"""Efficient attention: sparse, linear, random-feature, memory-augmented and tiled variants.

Chapter 11, "Efficient attention".  Each module holds one idea and depends on
:mod:`selfattention.attention` only.
"""

from .flash import flash_attention
from .linear import LinearAttentionState, elu_feature_map, linear_attention
from .memory import KNNMemory, SegmentRecurrence, segment_mask
from .random_features import favor_attention, orthogonal_random_features, positive_random_features
from .sparse import bigbird_mask, fixed_mask, sliding_window_attention, sliding_window_mask, strided_mask

__all__ = [
    "flash_attention",
    "linear_attention",
    "elu_feature_map",
    "LinearAttentionState",
    "favor_attention",
    "orthogonal_random_features",
    "positive_random_features",
    "sliding_window_attention",
    "sliding_window_mask",
    "strided_mask",
    "fixed_mask",
    "bigbird_mask",
    "segment_mask",
    "SegmentRecurrence",
    "KNNMemory",
]
