"""Evidence an earlier validation left in a run that a new, narrower validation did not recompute.

MLflow cannot delete a run's artifacts through its client, and deleting evidence would lose what
reviewers may already have read. So when ``log_validation`` logs into a run whose ``hitl/`` already
holds files of checks it did not run (a second ``validate(checks=["calibration"])`` after a full one),
those files are kept, and marked:

- the new ``summary.json`` is the truth: its ``checks`` are only the checks this validation ran, and
  the gate judges only those (a policy requiring a check left out finds it "not run");
- ``details.earlier`` lists, per earlier validation, the files kept, the statuses of its checks that
  were not re-run, its ``summary.json`` digest (the one its ``evidence.registered`` event pins) and,
  when the audit chain can be read, that event's number and time;
- the manifest keeps each kept file with the digest the earlier validation recorded, so the files stay
  verifiable (an edit is still "altered") and the gate no longer reports them as "added".

Only files an earlier ``summary.json`` vouched for are kept this way: a file nobody's manifest names is
still reported as added. A file kept from an older validation stays attributed to it when it is carried
through several narrower ones.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._hashing import sha256_hex
from ..errors import HitlError

__all__ = [
    "EarlierEvidenceWarning",
    "earlier_evidence",
    "earlier_message",
    "logged_summary",
    "warn_earlier",
]

_ALWAYS_WRITTEN = frozenset({"report.html", "summary.json"})


class EarlierEvidenceWarning(UserWarning):
    """A run kept files of checks an earlier validation ran and this one did not (see the module doc)."""


def logged_summary(run_id: str, root: str) -> tuple[dict[str, Any], str] | None:
    """``(summary, sha256 of its bytes)`` of the ``<root>/summary.json`` already in run ``run_id``, else ``None``."""
    from .downloads import download_quietly

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = download_quietly(run_id=run_id, artifact_path=f"{root}/summary.json", dst_path=tmp)
        except Exception:  # nothing logged yet (each artifact store raises its own type)
            return None
        data = Path(path).read_bytes()
    try:
        summary = json.loads(data)
    except ValueError:
        return None
    return (summary, sha256_hex(data)) if isinstance(summary, dict) else None


def _registration(run_id: str, summary_sha256: str) -> dict[str, Any] | None:
    """``{"seq", "time"}`` of the ``evidence.registered`` event that pinned ``summary_sha256``, if readable."""
    from ..review import EVIDENCE_REGISTERED
    from .review import open_store

    try:
        store = open_store()
    except Exception:  # no review store: the digest alone identifies the validation
        return None
    try:
        events = store.audit_events(subject=f"run:{run_id}", action=EVIDENCE_REGISTERED)
        for event in reversed(events.to_dict(orient="records")):
            with contextlib.suppress(ValueError, TypeError):
                if json.loads(event["payload"]).get("summary_sha256") == summary_sha256:
                    return {"seq": int(event["seq"]), "time": str(event["time"])}
    except HitlError:
        return None
    finally:
        store.close()
    return None


def earlier_evidence(
    run_id: str, previous: tuple[dict[str, Any], str] | None, written: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """``(details.earlier, kept manifest entries)`` for a validation about to write ``written`` into a run
    whose current summary is ``previous``; both empty when nothing earlier is left behind."""
    if previous is None:
        return {}, {}
    summary, digest = previous
    manifest = summary.get("manifest") if isinstance(summary.get("manifest"), dict) else {}
    kept = {p: d for p, d in sorted(manifest.items()) if p not in written and p not in _ALWAYS_WRITTEN}
    if not kept:
        return {}, {}
    carried = (summary.get("details") or {}).get("earlier") or {}
    origin = {f: key for key, entry in carried.items() for f in entry.get("files", ())}
    out: dict[str, Any] = {}
    for path in kept:
        key = origin.get(path, digest)
        if key not in out:
            out[key] = _entry(run_id, key, carried.get(key), summary, digest)
        out[key]["files"].append(path)
    for entry in out.values():
        statuses = entry.pop("statuses")
        entry["checks"] = {c: s for c, s in statuses.items() if f"{c}/result.json" in entry["files"]}
    return out, kept


def _entry(
    run_id: str, key: str, carried: Mapping[str, Any] | None, summary: Mapping[str, Any], digest: str
) -> dict[str, Any]:
    if carried is not None:  # kept before: still the older validation's
        return {
            "registration": carried.get("registration"),
            "fingerprints": carried.get("fingerprints") or {},
            "statuses": dict(carried.get("checks") or {}),
            "files": [],
        }
    return {
        "registration": _registration(run_id, digest),
        "fingerprints": (summary.get("details") or {}).get("fingerprints") or {},
        "statuses": dict(summary.get("checks") or {}),
        "files": [],
    }


def earlier_message(run_id: str, earlier: Mapping[str, Any], ran: list[str]) -> str:
    """One line: which checks' files an earlier validation left, that they are kept and marked, and what the gate judges."""
    checks = sorted({c for entry in earlier.values() for c in entry.get("checks", {})})
    files = sum(len(entry.get("files", ())) for entry in earlier.values())
    what = f"checks {', '.join(checks)}" if checks else "files"
    return (
        f"run {run_id} held {what} from an earlier validation that this one did not run: their {files} "
        "file(s) under hitl/ are kept, marked in summary.json (details.earlier) with that validation's "
        f"digest; the gate judges only this validation's checks ({', '.join(ran) or 'none'}). "
        "Validate with every check you mean to keep, or log to a new run"
    )


def warn_earlier(run_id: str, earlier: Mapping[str, Any], ran: list[str]) -> None:
    warnings.warn(earlier_message(run_id, earlier, ran), EarlierEvidenceWarning, stacklevel=4)
