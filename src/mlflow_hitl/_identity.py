"""Who is acting, when nothing authenticates them.

Locally the acting user is ``--user``, else ``$MLFLOW_HITL_USER``, else the OS user: that
identifies, it does not authenticate. Behind ``mlflow server --app-name hitl`` the server's
authenticated user is used instead.
"""

from __future__ import annotations

import getpass
import os

__all__ = ["USER_ENV", "acting_user"]

USER_ENV = "MLFLOW_HITL_USER"


def acting_user(user: str | None = None) -> str:
    return user or os.environ.get(USER_ENV) or getpass.getuser()
