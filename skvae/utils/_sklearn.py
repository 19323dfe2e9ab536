"""The one place that imports scikit-learn's private validation utilities.

``_fit_context`` and ``_param_validation`` are private in scikit-learn; keeping
their imports here means a scikit-learn change is mended in one file.
"""

from sklearn.base import _fit_context
from sklearn.utils._param_validation import (
    Interval,
    Options,
    StrOptions,
    validate_params,
)
from sklearn.utils.validation import (
    _check_feature_names_in,
    check_array,
    check_is_fitted,
    validate_data,
)

__all__ = [
    "Interval",
    "check_array",
    "Options",
    "StrOptions",
    "_check_feature_names_in",
    "_fit_context",
    "check_is_fitted",
    "validate_data",
    "validate_params",
]
