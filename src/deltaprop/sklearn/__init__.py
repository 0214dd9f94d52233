"""scikit-learn's MLPClassifier and MLPRegressor on deltaprop's engine: change the import.

:mod:`.estimators` holds the two estimators, :mod:`.base` what they share, :mod:`.bookkeeping`
scikit-learn's attributes and its L-BFGS solver, :mod:`.files` a fitted estimator as a model file.
"""

from .estimators import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
