"""Gates: a model version takes a protected alias or stage only when its evidence meets the policy.

Pure: no MLflow, no database, no files. The MLflow side collects :class:`Evidence` and enforces.

- :func:`parse_policy`, :func:`default_policy`, :func:`policy_to_toml`, :func:`policy_hash`: the TOML
  policy per registered model (:class:`Policy`, :class:`CheckRule`, :class:`SignoffRule`), refused with
  a line-precise :class:`PolicyError` when it does not fit the schema (``docs/gates/policy.md``).
- :func:`is_protected`, :func:`decide`: whether a target needs the gate, and the :class:`GateDecision`
  listing every :class:`Requirement`, met or not, with a hash of exactly the evidence it looked at
  (:func:`decision_hash` recomputes it from a stored ``to_dict()``); :func:`bound_requirements`, the
  policy's bounds on one check's metrics, as the evidence report shows them.
"""

from ._decision import (
    Evidence,
    GateDecision,
    Requirement,
    bound_requirements,
    decide,
    decision_hash,
    is_protected,
)
from ._policy import (
    CheckRule,
    Policy,
    PolicyError,
    SignoffRule,
    default_policy,
    parse_policy,
    policy_hash,
    policy_to_toml,
)

__all__ = [
    "CheckRule",
    "Evidence",
    "GateDecision",
    "Policy",
    "PolicyError",
    "Requirement",
    "SignoffRule",
    "bound_requirements",
    "decide",
    "decision_hash",
    "default_policy",
    "is_protected",
    "parse_policy",
    "policy_hash",
    "policy_to_toml",
]
