"""Errors raised by mlflow-hitl.

Every error descends from one base, so ``except HitlError`` catches all of ours::

    HitlError
     ├── InputError (also ValueError)     bad data, columns, labels, probabilities
     │    └── ConfigError                 unknown check, unknown threshold, bad value
     ├── ModelError                       the model cannot be loaded or cannot predict
     ├── NotFoundError (also LookupError) an unknown run, model, queue or artifact
     └── PermissionDeniedError            the acting user lacks the role an action needs

``InputError`` also subclasses ``ValueError`` (and ``NotFoundError`` ``LookupError``) so the
``except`` clauses people already write around pandas and scikit-learn code keep working.
The CLI maps every ``HitlError`` to a one-line message and exit code 2.
"""

from __future__ import annotations

__all__ = ["ConfigError", "HitlError", "InputError", "ModelError", "NotFoundError", "PermissionDeniedError"]


class HitlError(Exception):
    """Base class of every error mlflow-hitl raises on purpose."""


class InputError(HitlError, ValueError):
    """The data handed to a check cannot be used as given; the message names the input and the fix."""


class ConfigError(InputError):
    """A check name, threshold name or threshold value in ``config`` is not valid."""


class ModelError(HitlError):
    """The model could not be loaded, or failed when asked for predictions."""


class NotFoundError(HitlError, LookupError):
    """An MLflow run, model or artifact that was named does not exist."""


class PermissionDeniedError(HitlError):
    """The acting user does not hold the role the action needs; the message names role and user."""
