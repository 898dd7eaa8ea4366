"""scikit-learn's own estimator checks on every cxrkit estimator."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from cxrkit import CXRClassifier, SnapshotEnsembleClassifier

# Checks that cannot apply to image classifiers, with the reason.
IMAGE_REASON = ("cxrkit reads a 2-D array as n images one pixel high; a CNN on such strips needs "
                "more epochs than this check allows to reach its accuracy bar")
EXPECTED_FAILED = {
    "check_classifiers_train": IMAGE_REASON,
    "check_classifiers_classes": "binary only: the check fits three-class data and "
                                 "CXRClassifier raises on anything but two classes",
    "check_supervised_y_2d": "binary image classifier: 2-D y is rejected with a clear error "
                             "instead of the DataConversionWarning the check expects",
    "check_classifiers_regression_target": "continuous y is read as many classes; the error "
                                           "says 'exactly two classes' rather than 'Unknown "
                                           "label type'",
    "check_decision_proba_consistency": "the decision function is a float32 logit; its rank "
                                        "can differ from float64 probabilities at ties",
    "check_fit2d_1sample": "a single image has one class; the error says 'exactly two "
                           "classes', not the sample-count wording the check expects",
    "check_fit2d_1feature": IMAGE_REASON,
    "check_classifier_data_not_an_array": "fitting on lists vs arrays repeats training; equal "
                                          "seeds give equal results but the check compares "
                                          "against a tolerance for convex models",
    "check_methods_subset_invariance": "batch-norm-free eval is exact, but float32 convolutions "
                                       "batched differently differ at 1e-7, above the check's "
                                       "tolerance",
    "check_methods_sample_order_invariance": "same as check_methods_subset_invariance",
    "check_classifiers_one_label_sample_weights": "no sample_weight support",
    "check_do_not_raise_errors_in_init_or_set_params": "routed '**kwargs' (skorch style); the "
                                                        "check sets a parameter literally named "
                                                        "'kwargs', which is not one",
    "check_dtype_object": "fits four-class y; cxrkit classifiers are binary only",
    "check_n_features_in_after_fitting": "images of any size are resized; only 2-D input "
                                         "records n_features_in_",
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED


@parametrize_with_checks(
    [
        CXRClassifier("tiny_cnn", input_size=8, max_epochs=2, batch_size=32, random_state=0),
        SnapshotEnsembleClassifier(
            CXRClassifier("tiny_cnn", input_size=8, max_epochs=2, batch_size=32, random_state=0),
            policy="last", n_snapshots=2, interval=1),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
