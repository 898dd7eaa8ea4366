"""Lung-field segmentation: a trainable segmenter, its masks, and their cache.

:class:`LungSegmenter` learns lung masks (``fit(images, masks, groups=)``);
:func:`load_lung_masks` reads a folder of manual masks;
:func:`cross_validate_segmenter` gives patient-grouped Dice and IoU; the
``lung_crop``, ``lung_mask`` and ``lung_blackout`` transforms and the lung
validity guards use a fitted segmenter through the process-wide
:class:`MaskCache`. See docs/segmentation.md.
"""

from ._cache import MaskCache, clear_mask_cache, get_mask_cache, lung_mask_stats
from ._cli import write_overlays
from ._cv import cluster_bootstrap_mean, cross_validate_segmenter
from ._data import LungMaskSet, load_lung_masks, synthetic_lung_images
from ._estimator import LungSegmenter, read_images, read_masks
from ._masks import LungMaskResult, clean_lung_mask, dice_iou, judge_lung_mask
from ._network import create_segmentation_network, list_segmentation_networks
from ._persist import SEGMENTER_ENV, default_segmenter, load_segmenter, save_segmenter
from ._training import DiceBCELoss, SegmentationNet, random_affine

__all__ = [
    "DiceBCELoss",
    "LungMaskResult",
    "LungMaskSet",
    "LungSegmenter",
    "MaskCache",
    "SEGMENTER_ENV",
    "SegmentationNet",
    "clean_lung_mask",
    "clear_mask_cache",
    "cluster_bootstrap_mean",
    "create_segmentation_network",
    "cross_validate_segmenter",
    "default_segmenter",
    "dice_iou",
    "get_mask_cache",
    "judge_lung_mask",
    "list_segmentation_networks",
    "load_lung_masks",
    "load_segmenter",
    "lung_mask_stats",
    "random_affine",
    "read_images",
    "read_masks",
    "save_segmenter",
    "synthetic_lung_images",
    "write_overlays",
]
