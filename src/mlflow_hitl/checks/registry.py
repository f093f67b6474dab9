"""Every check ``validate`` runs, each declared once in its own module (``SPEC``), in the order they run.

``validate``, :class:`~mlflow_hitl.config.ValidationConfig`, the evidence report, the default gate
policy, the CLI's ``--checks`` and the docs tests read the checks from here. Adding a check: write its
module (settings, the check, ``SPEC``), add it to the tuple below, document it in
``docs/checks/<name>.md``, test it. Where a logged metric ``hitl.<check>.<metric>`` is computed:
``CHECKS[check].module``.

Importing this module loads only numpy and pandas: each check imports its heavy libraries when it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from . import _adversarial, _calibration, _drift, _fairness, _generator
from ._spec import CheckSpec, ValidationInputs

__all__ = ["CHECKS", "CHECK_NAMES", "SIGNOFF_CHECKS", "CheckSpec", "ValidationInputs"]

CHECKS: Mapping[str, CheckSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (m.SPEC for m in (_drift, _calibration, _adversarial, _fairness, _generator))
    }
)
CHECK_NAMES: tuple[str, ...] = tuple(CHECKS)
# What a person can sign off: each check's evidence, and the release as a whole.
SIGNOFF_CHECKS: tuple[str, ...] = (*CHECK_NAMES, "release")
