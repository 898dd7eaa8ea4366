"""scikit-learn's own estimator checks on every cxrkit estimator."""

from __future__ import annotations

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from cxrkit import CXRClassifier, SnapshotEnsembleClassifier

# Checks that fail for image classifiers, with the reason. Only checks that do
# fail are listed (an expected failure that passes would hide a regression):
# pyproject.toml sets xfail_strict, so such a pass fails the suite.
COMMON = {
    "check_supervised_y_2d": "a one-column 2-D y is read as the 1-D labels it holds, without "
    "the DataConversionWarning the check expects",
    "check_classifier_data_not_an_array": "fitting on lists vs arrays repeats training; equal "
    "seeds give equal results but the check compares "
    "against a tolerance for convex models",
    "check_dtype_object": "an object-dtype X of numbers is not an image source: it is "
    "refused with a DataError naming the accepted inputs (image paths or a numeric array)",
    "check_class_weight_classifiers": "expects class weights of 1000:0.0001 to make a "
    "2-epoch network on 8 px images predict class 0 for 87 % of the test rows, as a convex "
    "model would; the tiny network moves towards it but not that far in 2 epochs",
}
EXPECTED_FAILED = {
    "CXRClassifier": {
        **COMMON,
        "check_do_not_raise_errors_in_init_or_set_params": "routed '**kwargs' (skorch style); "
        "the check sets a parameter literally "
        "named 'kwargs', which is not one",
    },
    "SnapshotEnsembleClassifier": COMMON,
}

# Checks whose outcome depends on float rounding, not on the estimator's behaviour:
# both outcomes are accepted (a non-strict expected failure), with the reason.
# check_methods_subset_invariance compares predictions on a subset with the same
# rows predicted as part of the whole set at rtol 1e-7; the snapshot members are
# float32 convolutions, and a batch of a different size may take another kernel
# (different summation order), so the two differ by about 1e-7 on some machines
# and library versions and not on others.
ROUNDING_DEPENDENT = {
    "SnapshotEnsembleClassifier": {
        "check_methods_subset_invariance": "float32 convolutions over batches of other sizes "
        "differ by ~1e-7, at the check's tolerance",
    },
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED[type(estimator).__name__]


@parametrize_with_checks(
    [
        CXRClassifier("tiny_cnn", input_size=8, max_epochs=2, batch_size=32, random_state=0),
        SnapshotEnsembleClassifier(
            CXRClassifier("tiny_cnn", input_size=8, max_epochs=2, batch_size=32, random_state=0),
            policy="last",
            n_snapshots=2,
            interval=1,
        ),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check, request):
    name = check.func.__name__ if hasattr(check, "func") else check.__name__
    reason = ROUNDING_DEPENDENT.get(type(estimator).__name__, {}).get(name)
    if reason is not None:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=False))
    check(estimator)
