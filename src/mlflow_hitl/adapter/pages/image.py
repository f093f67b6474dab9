"""Image: a picture from the queue's run artifacts that an item's field names, for the Label page.

A field is shown as an image when its value names an image file (``.png``, ``.jpg``/``.jpeg``,
``.gif``, ``.webp``) among the artifacts of the queue's own run: ``runs:/<that run>/<path>``, the
run's ``mlflow-artifacts:`` location followed by a path, or a relative path (the queue knows its
run). Anything else (another run, ``http(s):`` or ``file:`` URIs, a path with ``..`` or starting at
``/``) stays text and is never fetched.

``/hitl/image?queue=Q&item=N&column=C&run_id=R`` serves one such picture. It is addressed by the
item, not by a path, so it can only serve what the Label page would show: the path is read from the
item's field (through the API, as the page reads it, blind queues included) and checked again here.
``run_id`` must be the queue's run, and MLflow's basic-auth must let the user read that run, exactly
as for MLflow's own artifact download (``may_use_run("read", run_id)``). The answer is served only when its
bytes are a PNG, JPEG, GIF or WebP file (SVG can carry script: never served), with that type and
``X-Content-Type-Options: nosniff``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ...errors import InputError, NotFoundError, PermissionDeniedError
from ..api import may_use_run
from ..registration import local_path
from ._web import Page, find_run, item_at, page_url, query, store

__all__ = ["PAGES", "image_urls"]

_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp")
_MAX_BYTES = 20 * 1024 * 1024
_RUNS = "runs:/"


def _clean(path: str) -> str | None:
    """``path`` when it is a plain relative path to an image file, else ``None`` (no ``..``, no root)."""
    parts = path.split("/")
    if "\\" in path or any(part in ("", ".", "..") for part in parts):
        return None
    return path if path.lower().endswith(_EXTENSIONS) else None


def image_path(value: Any, *, run_id: str | None, artifact_uri: str | None) -> str | None:
    """The path among run ``run_id``'s artifacts of the image ``value`` names, or ``None``: show it as text."""
    if not isinstance(value, str) or not run_id:
        return None
    text = value.strip()
    if text.startswith(_RUNS):
        owner, _, path = text[len(_RUNS) :].partition("/")
        return _clean(path) if owner == run_id else None
    root = (artifact_uri or "").rstrip("/") + "/"
    if root.startswith("mlflow-artifacts:") and text.startswith(root):
        return _clean(text[len(root) :])
    return None if urlparse(text).scheme else _clean(text)


def image_urls(queue: Any, item: dict[str, Any], run: Any) -> dict[str, str]:
    """``{column: URL of its image}`` for the item's fields that name an image of the queue's run."""
    if run is None:
        return {}
    return {
        column: page_url("image", queue=queue.name, item=item["position"], column=column, run_id=queue.run_id)
        for column, value in item["payload"].items()
        if image_path(value, run_id=queue.run_id, artifact_uri=run.info.artifact_uri) is not None
    }


def _content_type(data: bytes) -> str | None:
    """The image type the bytes are (by their signature, not their name); ``None`` for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _bytes(file: Path, run: Any, path: str) -> bytes:
    if not file.is_file():
        raise NotFoundError(f"run {run.info.run_id} has no artifact {path}")
    if file.stat().st_size > _MAX_BYTES:
        raise InputError(f"artifact {path} is larger than {_MAX_BYTES // 2**20} MB: not shown")
    return file.read_bytes()


def _read(run: Any, path: str) -> bytes:
    """The artifact's bytes: in place from a local or proxied store (never outside the run's folder), else downloaded."""
    local = local_path(run.info.artifact_uri)
    if local is not None:
        root = local.resolve()
        file = (root / path).resolve()
        if not file.is_relative_to(root):  # a link inside the run's folder pointing out of it
            raise NotFoundError(f"run {run.info.run_id} has no artifact {path}")
        return _bytes(file, run, path)
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        try:
            found = mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path=path, dst_path=tmp
            )
        except Exception as exc:  # each artifact store raises its own type for a missing file
            raise NotFoundError(f"run {run.info.run_id} has no artifact {path}") from exc
        return _bytes(Path(found), run, path)


def _image() -> Any:
    from flask import make_response

    name, position, column = str(query("queue") or ""), query("item"), str(query("column") or "")
    queue = store().queue(name)
    if not queue.run_id or query("run_id") != queue.run_id:
        raise NotFoundError(f"queue {name!r} has no run {query('run_id')!r}")
    if not may_use_run("read", queue.run_id):
        raise PermissionDeniedError(f"you may not read the artifacts of run {queue.run_id}")
    if position is None or not position.isdigit():
        raise InputError("'item' must be an item's position")
    item, run = item_at(name, int(position)), find_run(queue.run_id)
    if run is None:
        raise NotFoundError(f"this server has no run {queue.run_id!r}")
    path = image_path(item["payload"].get(column), run_id=queue.run_id, artifact_uri=run.info.artifact_uri)
    if path is None:
        raise NotFoundError(f"item {position} of queue {name!r} names no image of its run in {column!r}")
    data = _read(run, path)
    kind = _content_type(data)
    if kind is None:
        raise NotFoundError(f"{path} is not a PNG, JPEG, GIF or WebP image: not shown")
    response = make_response(data)
    response.headers["Content-Type"] = kind
    return response


PAGES = (Page("image", _image),)
