"""Clinical-validation metrics: calibration, operating points, decision curves, conformal sets."""

from .calibration import brier_score, calibration_intercept_slope, expected_calibration_error
from .conformal import conformal_sets
from .decision_curve import net_benefit
from .estimator import ClinicalClassifier, check_threshold_rule
from .thresholds import select_threshold

__all__ = [
    "ClinicalClassifier",
    "brier_score",
    "calibration_intercept_slope",
    "check_threshold_rule",
    "expected_calibration_error",
    "conformal_sets",
    "net_benefit",
    "select_threshold",
]
