"""Every check ``validate`` runs, each declared once in its own module (``SPEC``), in the order they run.

``validate``, :class:`~mlflow_hitl.config.ValidationConfig`, the evidence report, the default gate
policy, the CLI's ``--checks`` and the docs tests read the checks from here. Adding a check: write its
module (settings, the check, ``SPEC``), add it to the tuple below, document it in
``docs/checks/<name>.md``, test it. Where a logged metric ``hitl.<check>.<metric>`` is computed:
``CHECKS[check].module``.

:data:`REVIEW_CHECKS` are the checks people's answers compute (the generator audit): declared the same
way, logged by their own command. Importing this module loads only numpy and pandas: each check imports its heavy libraries when it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from . import _adversarial, _calibration, _drift, _fairness, _generator, _generator_audit
from ._spec import BaseCheckSpec, CheckSpec, ReviewCheckSpec, ValidationInputs

__all__ = [
    "ALL_CHECKS",
    "CHECKS",
    "CHECK_NAMES",
    "REVIEW_CHECKS",
    "SIGNOFF_CHECKS",
    "BaseCheckSpec",
    "CheckSpec",
    "ReviewCheckSpec",
    "ValidationInputs",
]

CHECKS: Mapping[str, CheckSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (m.SPEC for m in (_drift, _calibration, _adversarial, _fairness, _generator))
    }
)
CHECK_NAMES: tuple[str, ...] = tuple(CHECKS)
# Checks people's answers in a review queue compute, each logged by its own command: never run by
# validate, nor required by the default gate policy, but held to a policy's bounds and signed off alike.
REVIEW_CHECKS: Mapping[str, ReviewCheckSpec] = MappingProxyType(
    {_generator_audit.SPEC.name: _generator_audit.SPEC}
)
# Every check a run's evidence can hold, a gate policy can name and a report can show.
ALL_CHECKS: Mapping[str, BaseCheckSpec] = MappingProxyType({**CHECKS, **REVIEW_CHECKS})
# What a person can sign off: each check's evidence, and the release as a whole.
SIGNOFF_CHECKS: tuple[str, ...] = (*ALL_CHECKS, "release")
