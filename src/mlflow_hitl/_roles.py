"""The people's roles, in one light module: the review store enforces them, gate policies name them
and the CLI offers them, and none of those should need the others' imports to know the list."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["DEFAULT_SIGNOFF_ROLE", "ROLES", "SIGNOFF_ROLES", "signoff_role"]

ROLES: tuple[str, ...] = ("reviewer", "adjudicator", "fairness-reviewer", "release-manager", "admin")
# The role a sign-off of each check needs; checks not listed need DEFAULT_SIGNOFF_ROLE.
SIGNOFF_ROLES: Mapping[str, str] = MappingProxyType(
    {"fairness": "fairness-reviewer", "release": "release-manager"}
)
DEFAULT_SIGNOFF_ROLE = "reviewer"


def signoff_role(check: str) -> str:
    """The role a sign-off of ``check`` needs."""
    return SIGNOFF_ROLES.get(check, DEFAULT_SIGNOFF_ROLE)
