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

import re

__all__ = [
    "ConfigError",
    "HitlError",
    "InputError",
    "ModelError",
    "NotFoundError",
    "PermissionDeniedError",
    "first_line",
    "mask_credentials",
]


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


# The user information of an address: ``scheme://user:password@`` or ``scheme://token@``.
_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.\-]*://)([^\s/@:]*)(:[^\s/@]*)?@")


def mask_credentials(text: str) -> str:
    """``text`` with every address's password (or bare token) replaced by ``***``, the user kept:
    ``postgresql://mlflow:***@db/mlflow``. For store URLs in reprs and for messages that quote one."""
    return _USERINFO.sub(lambda m: f"{m[1]}{m[2]}:***@" if m[3] else f"{m[1]}***@", text)


def first_line(error: BaseException | str, *, with_type: bool = False) -> str:
    """The first non-blank line of an error's message: what a one-line CLI error or a wrapped error shows.

    Library errors (pandas, scikit-learn, MLflow) often carry a multi-line message or a traceback
    excerpt; one line is what a person reads. ``with_type`` prefixes the class name
    (``ValueError: ...``), for errors raised by third-party code whose type is part of the story.
    An empty message falls back to the class name. Credentials in an address are masked
    (``postgresql://user:***@host/db``): MLflow quotes its tracking URI in some errors, and a line made on
    the server can reach any client (a gate decision's detail, an audit event).
    """
    text = mask_credentials(str(getattr(error, "message", None) or error).strip())
    line = text.splitlines()[0] if text else ""
    if isinstance(error, BaseException) and (with_type or not line):
        return f"{type(error).__name__}: {line}".rstrip(": ")
    return line
