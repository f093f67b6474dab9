"""A sealed folder: every file pinned by its sha256 in ``manifest.json``, checkable offline, years later.

The dossier of a model version is one (see :mod:`~mlflow_hitl.adapter.dossier`). :func:`seal` writes
the manifest over the files already in the folder; :func:`check_seal` re-hashes them and lists what
changed, what is missing and what was added. Nothing here needs MLflow or the review store, so a
folder can be checked on a machine that has neither.

The manifest cannot vouch for itself: whoever edits a file can also rewrite its line. The sha256 of
``manifest.json`` (returned by both functions) is what to keep elsewhere; given back as
``expected_sha256``, it turns a rewritten manifest into a finding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ._hashing import sha256_file
from .errors import InputError

__all__ = ["MANIFEST", "SealCheck", "check_seal", "seal"]

MANIFEST = "manifest.json"


def _files(folder: Path) -> list[str]:
    """Every regular file below ``folder`` except the manifest, as sorted POSIX paths."""
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.relative_to(folder).as_posix() != MANIFEST
    )


def seal(folder: Path, *, kind: str, meta: dict[str, Any]) -> str:
    """Write ``folder/manifest.json``: ``kind``, ``meta`` and the sha256 of every other file; returns its sha256."""
    manifest = {
        "kind": kind,
        **meta,
        "algorithm": "sha256",
        "files": {name: sha256_file(folder / name) for name in _files(folder)},
    }
    path = folder / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return sha256_file(path)


@dataclass(frozen=True)
class SealCheck:
    """What :func:`check_seal` found: ``ok`` when every listed file is there unchanged and nothing was added.

    ``changed``, ``missing`` and ``extra`` are paths relative to the folder; ``manifest_changed`` is
    set when an ``expected_sha256`` was given and ``manifest.json`` no longer has it.
    """

    folder: Path
    manifest_sha256: str
    files: int
    changed: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    manifest_changed: bool = False

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.extra or self.manifest_changed)

    def problems(self) -> list[str]:
        """One line per finding, for people."""
        lines = [f"{MANIFEST} differs from the sha256 kept for it"] if self.manifest_changed else []
        lines += [f"{name} was changed" for name in self.changed]
        lines += [f"{name} is missing" for name in self.missing]
        lines += [f"{name} was added" for name in self.extra]
        return lines


def _listed(folder: Path, kind: str) -> dict[str, str]:
    """The manifest's ``{path: sha256}``; an ``InputError`` when ``folder`` holds no manifest of ``kind``."""
    if not folder.is_dir():
        raise InputError(f"{folder} is not a {kind}: no such folder")
    path = folder / MANIFEST
    if not path.is_file():
        raise InputError(f"{folder} is not a {kind}: it has no {MANIFEST}")
    try:
        manifest = json.loads(path.read_bytes())
    except ValueError:
        manifest = None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(manifest, dict) or manifest.get("kind") != kind or not isinstance(files, dict):
        raise InputError(f"{path} is not the manifest of a {kind}")
    for name, digest in files.items():
        parts = PurePosixPath(name).parts
        if not isinstance(digest, str) or not parts or name.startswith("/") or ".." in parts:
            raise InputError(f"{path} is not the manifest of a {kind}: it lists {name!r}")
    return files


def check_seal(folder: Path, *, kind: str, expected_sha256: str | None = None) -> SealCheck:
    """Re-hash every file ``folder/manifest.json`` lists (see :class:`SealCheck`).

    Raises ``InputError`` when ``folder`` is not a sealed folder of ``kind`` (no folder, no manifest,
    or a manifest that is not one).
    """
    listed = _listed(folder, kind)
    manifest_sha256 = sha256_file(folder / MANIFEST)
    present = set(_files(folder))
    return SealCheck(
        folder=folder,
        manifest_sha256=manifest_sha256,
        files=len(listed),
        changed=tuple(n for n in sorted(listed) if n in present and sha256_file(folder / n) != listed[n]),
        missing=tuple(sorted(set(listed) - present)),
        extra=tuple(sorted(present - set(listed))),
        manifest_changed=expected_sha256 is not None and expected_sha256.lower() != manifest_sha256,
    )
