"""The addresses of the server's pages (``/hitl/<page>?<query>``), in one place.

The pages (``adapter/pages``) serve them, and the gate writes one into a version's tag (the release
page of a blocked version): both build them here, so a link can never point at a page that moved. Core,
not the pages' own module, because the pages import the gate: the gate could not import them back.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

__all__ = ["PAGE_PREFIX", "page_url", "release_page"]

PAGE_PREFIX = "/hitl"


def page_url(path: str, **query: Any) -> str:
    """``/hitl/<path>?query`` with the query's values quoted (``None`` and ``""`` left out)."""
    shown = {k: v for k, v in query.items() if v is not None and v != ""}
    return f"{PAGE_PREFIX}/{path}" + (f"?{urlencode(shown)}" if shown else "")


def release_page(model_name: str, version: str | int) -> str:
    """Where the server's pages show a version's release: its evidence, sign-offs and gate decisions."""
    return page_url("release", model=model_name, version=str(version))
