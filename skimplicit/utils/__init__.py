"""Low-level utilities shared by the estimators and the search (no estimator imports)."""

from ._validation import (
    check_fold_classes,
    check_fold_weights,
    check_sample_weight,
    is_constant_target,
    nothing_to_tune,
)
from ._rows import merge_duplicate_rows

__all__ = ["check_fold_classes", "check_fold_weights", "check_sample_weight",
           "is_constant_target", "merge_duplicate_rows", "nothing_to_tune"]
