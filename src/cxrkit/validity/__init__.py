"""Validity guards: leakage, duplicates, confounding, shortcut probes.

Every guard returns a :class:`GuardResult` (PASS / WARN / FAIL, numbers, advice);
:func:`run_data_checks` runs the data-only guards, :func:`format_guards`
renders them as text. See docs/validity.md.
"""

from ._result import STATUSES, GuardResult, format_guards
from .checks import check_dataset, duplicate_guard, patient_coverage, run_data_checks
from .confounding import age_confounding, categorical_confounding, check_confounding, cramers_v
from .duplicates import (
    SIMILARITY_THRESHOLD,
    ImageHashes,
    compute_hashes,
    cross_duplicates,
    duplicate_clusters,
    find_near_duplicates,
    merge_duplicate_groups,
)
from .isolation import SealedLabels, TestLabelAccessError
from .leakage import (
    GroupAwareCV,
    PatientLeakageWarning,
    check_train_test_leakage,
    splitter_leakage,
    warn_if_splitter_leaks,
)
from .multilabel_folds import PatientMultilabelStratifiedKFold
from .probes import CentreBlackout, LeaveOneSourceOut, shortcut_probe, source_probe
from .splits import holdout_split

__all__ = [
    "STATUSES",
    "GuardResult",
    "format_guards",
    "check_dataset",
    "duplicate_guard",
    "patient_coverage",
    "run_data_checks",
    "age_confounding",
    "categorical_confounding",
    "check_confounding",
    "cramers_v",
    "SIMILARITY_THRESHOLD",
    "ImageHashes",
    "compute_hashes",
    "cross_duplicates",
    "duplicate_clusters",
    "find_near_duplicates",
    "merge_duplicate_groups",
    "SealedLabels",
    "TestLabelAccessError",
    "GroupAwareCV",
    "PatientLeakageWarning",
    "check_train_test_leakage",
    "splitter_leakage",
    "warn_if_splitter_leaks",
    "PatientMultilabelStratifiedKFold",
    "CentreBlackout",
    "LeaveOneSourceOut",
    "shortcut_probe",
    "source_probe",
    "holdout_split",
]
