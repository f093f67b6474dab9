"""The review store of a team: the API that ``mlflow server --app-name hitl`` serves under ``/hitl/api/``.

:class:`HttpReviewStore` has the public methods of :class:`~mlflow_hitl.review.ReviewStore` and
gives the same types back (dataclasses, DataFrames, dicts), so the CLI and the Python API do not
care which one they hold. The differences are the point of team mode:

- the acting user is whoever the server authenticated: the ``user``/``actor`` arguments are taken
  for the shared interface and never sent, so nobody can act under another's name;
- the database and the audit key are the server's; a client cannot append audit events
  (:meth:`HttpReviewStore.record_event` is refused), only take the actions that record them.

Credentials come from the environment, as MLflow's own client reads them:
``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` (basic auth) or ``MLFLOW_TRACKING_TOKEN``
(a bearer token); ``MLFLOW_TRACKING_INSECURE_TLS``, ``MLFLOW_TRACKING_SERVER_CERT_PATH`` and
``MLFLOW_TRACKING_CLIENT_CERT_PATH`` for TLS; ``MLFLOW_HTTP_REQUEST_TIMEOUT`` (seconds, 120).
This module does not import MLflow.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from .._plain import plain_json
from .._progress import Progress
from ..errors import HitlError, InputError, NotFoundError, PermissionDeniedError, mask_credentials
from ._audit import ChainVerification
from ._records import AnnotationRecord, ImportReport, Item, Queue, QueueLabels, check_page

__all__ = ["HttpReviewStore"]

_API = "/hitl/api"
_API_HEADER = "X-MLflow-Hitl-API"
_PAGE = 10_000  # the most the server gives per page
_ERRORS: Mapping[str, type[HitlError]] = {
    "INVALID_PARAMETER_VALUE": InputError,
    "RESOURCE_DOES_NOT_EXIST": NotFoundError,
    "PERMISSION_DENIED": PermissionDeniedError,
}
_NO_PLUGIN = (
    "this MLflow server does not run the mlflow-hitl plugin: start it with `mlflow server --app-name hitl`"
)


def _split(frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "columns": [str(c) for c in frame.columns],
        "index": [plain_json(k) for k in frame.index],
        "data": [[plain_json(v) for v in row] for row in frame.itertuples(index=False, name=None)],
    }


def _frame(answer: Mapping[str, Any], key: str) -> pd.DataFrame:
    return pd.DataFrame(answer[key], columns=answer["columns"])


def _queue(data: Mapping[str, Any]) -> Queue:
    return Queue(**{**data, "classes": tuple(data["classes"]), "columns": tuple(data["columns"])})


def _item(data: Mapping[str, Any] | None) -> Item | None:
    return None if data is None else Item(**data)


class HttpReviewStore:
    """The review store behind ``mlflow server --app-name hitl`` at ``url`` (the tracking URI).

    ``HttpReviewStore("https://mlflow.example.com")``: every call is one or more requests to
    ``/hitl/api/``; the server's refusals come back as the same :class:`~mlflow_hitl.errors.HitlError`
    subclasses the SQL store raises, with the server's one-line message.
    """

    def __init__(
        self, url: str, *, transport: Callable[[str, str, dict[str, Any]], dict[str, Any]] | None = None
    ) -> None:
        """``transport(method, route, fields)``, when given, answers in place of the HTTP round trip:
        the server's own pages pass one that runs the route in-process as the authenticated user."""
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InputError(f"a review server URL starts with http:// or https://, got {url!r}")
        import requests

        self.url = url.rstrip("/")
        self._session = requests.Session()
        self._transport = transport

    def __repr__(self) -> str:
        return f"HttpReviewStore({mask_credentials(self.url)!r})"

    def close(self) -> None:
        self._session.close()

    # -- requests -------------------------------------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        """Authentication and TLS from the environment, read at each request as MLflow's client does."""
        env = os.environ
        settings: dict[str, Any] = {"timeout": float(env.get("MLFLOW_HTTP_REQUEST_TIMEOUT", "120"))}
        headers = {}
        if env.get("MLFLOW_TRACKING_USERNAME") and env.get("MLFLOW_TRACKING_PASSWORD"):
            settings["auth"] = (env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"])
        elif env.get("MLFLOW_TRACKING_TOKEN"):
            headers["Authorization"] = f"Bearer {env['MLFLOW_TRACKING_TOKEN']}"
        settings["headers"] = headers
        if env.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
            settings["verify"] = False
        elif env.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
            settings["verify"] = env["MLFLOW_TRACKING_SERVER_CERT_PATH"]
        if env.get("MLFLOW_TRACKING_CLIENT_CERT_PATH"):
            settings["cert"] = env["MLFLOW_TRACKING_CLIENT_CERT_PATH"]
        return settings

    def _call(self, method: str, route: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        import requests

        url = f"{self.url}{_API}/{route}"
        fields = {k: v for k, v in (params or {}).items() if v is not None}
        if self._transport is not None:
            return self._transport(method, route, fields)
        try:
            if method == "GET":
                response = self._session.get(url, params=fields, **self._settings())
            else:
                response = self._session.post(url, json=fields, **self._settings())
        except requests.RequestException as exc:
            raise HitlError(f"cannot reach the review server {mask_credentials(self.url)}: {exc}") from exc
        if response.status_code == 401:
            raise PermissionDeniedError(
                f"{mask_credentials(self.url)} did not accept the credentials: set MLFLOW_TRACKING_USERNAME and "
                "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)"
            )
        if _API_HEADER not in response.headers:
            if response.status_code == 403:
                raise PermissionDeniedError(
                    f"{mask_credentials(self.url)} refused the request before it reached mlflow-hitl "
                    f"(is the server started with `mlflow server --app-name hitl`?)"
                )
            raise HitlError(_NO_PLUGIN)
        try:
            answer = response.json()
        except ValueError as exc:
            raise HitlError(
                f"{route}: the server's answer is not JSON (HTTP {response.status_code})"
            ) from exc
        if response.status_code != 200:
            error = _ERRORS.get(str(answer.get("error_code")), HitlError)
            raise error(str(answer.get("message") or f"HTTP {response.status_code}"))
        return answer

    def _pages(
        self, route: str, key: str, params: Mapping[str, Any], offset: int, limit: int | None
    ) -> list[Any]:
        """Rows from ``offset`` on, in pages of at most 10,000, until ``limit`` rows or the end."""
        check_page(offset, limit)
        rows: list[Any] = []
        at: int | None = offset
        while at is not None and (limit is None or len(rows) < limit):
            page = _PAGE if limit is None else min(_PAGE, limit - len(rows))
            answer = self._call("GET", route, {**params, "offset": at, "limit": page})
            rows.extend(answer[key])
            at = answer["next_offset"]
        return rows

    # -- queues ---------------------------------------------------------------------------------

    def create_queue(
        self,
        name: str,
        *,
        rows: pd.DataFrame,
        selection: pd.DataFrame,
        classes: Sequence[Any],
        actor: str,
        raters_per_item: int = 1,
        blind: bool = False,
        strategy: str = "least-confidence",
        run_id: str | None = None,
        predictions: Sequence[Any] | None = None,
        confidences: Sequence[float] | None = None,
        gold: Mapping[Any, Any] | None = None,
    ) -> Queue:
        """As :meth:`ReviewStore.create_queue`; the server's authenticated user creates it (``actor`` is not sent)."""
        answer = self._call(
            "POST",
            "queues/create",
            {
                "name": name,
                "rows": _split(rows),
                "selection": _split(selection),
                "classes": [plain_json(c) for c in classes],
                "raters_per_item": raters_per_item,
                "blind": blind,
                "strategy": strategy,
                "run_id": run_id,
                "predictions": None if predictions is None else [plain_json(v) for v in predictions],
                "confidences": None if confidences is None else [plain_json(v) for v in confidences],
                "gold": None if gold is None else [[plain_json(k), plain_json(v)] for k, v in gold.items()],
            },
        )
        return _queue(answer["queue"])

    def append_items(
        self,
        name: str,
        *,
        rows: pd.DataFrame,
        selection: pd.DataFrame,
        request_ids: Sequence[str],
        actor: str,
        predictions: Sequence[Any] | None = None,
        confidences: Sequence[float] | None = None,
    ) -> ImportReport:
        """As :meth:`ReviewStore.append_items`; the server's authenticated user appends (``actor`` is not sent)."""
        answer = self._call(
            "POST",
            "items/append",
            {
                "queue": name,
                "rows": _split(rows),
                "selection": _split(selection),
                "request_ids": [plain_json(v) for v in request_ids],
                "predictions": None if predictions is None else [plain_json(v) for v in predictions],
                "confidences": None if confidences is None else [plain_json(v) for v in confidences],
            },
        )
        return ImportReport(added=int(answer["added"]), unchanged=int(answer["unchanged"]))

    def queue(self, name: str) -> Queue:
        return _queue(self._call("GET", "queues/get", {"queue": name})["queue"])

    def queues(self) -> list[Queue]:
        return [_queue(q) for q in self._call("GET", "queues/list")["queues"]]

    def progress(self, name: str) -> dict[str, int]:
        return dict(self._call("GET", "queues/progress", {"queue": name})["progress"])

    def items(self, name: str, *, offset: int = 0, limit: int | None = None) -> list[Item]:
        return [Item(**i) for i in self._pages("items/list", "items", {"queue": name}, offset, limit)]

    def queue_labels(self, name: str) -> QueueLabels:
        """As :meth:`ReviewStore.queue_labels`: the queue, items, labels, adjudications and gold of one read."""
        answer = self._call("GET", "queues/labels", {"queue": name})
        return QueueLabels(
            queue=_queue(answer["queue"]),
            items=tuple(Item(**i) for i in answer["items"]),
            annotations=_frame(answer["annotations"], "rows"),
            adjudications=_frame(answer["adjudications"], "rows"),
            gold={int(k): v for k, v in answer["gold"]},
        )

    def gold(self, name: str) -> dict[int, Any]:
        return {int(k): v for k, v in self._call("GET", "queues/gold", {"queue": name})["gold"]}

    # -- labelling ------------------------------------------------------------------------------

    def next_item(self, name: str, *, user: str, exclude: Collection[int] = ()) -> Item | None:
        """As :meth:`ReviewStore.next_item`, reserved for the authenticated user (``user`` is not sent)."""
        answer = self._call("POST", "items/next", {"queue": name, "exclude": [int(e) for e in exclude]})
        return _item(answer["item"])

    def release(self, name: str, *, position: int, user: str) -> None:
        self._call("POST", "items/release", {"queue": name, "position": int(position)})

    def annotate(
        self,
        name: str,
        *,
        position: int,
        user: str,
        label: Any,
        comment: str | None = None,
        source: str = "python",
    ) -> None:
        """As :meth:`ReviewStore.annotate`; the rater is the authenticated user (``user`` is not sent)."""
        self._call(
            "POST",
            "annotations/create",
            {
                "queue": name,
                "position": int(position),
                "label": plain_json(label),
                "comment": comment,
                "source": source,
            },
        )

    def withdraw(self, name: str, *, position: int, user: str) -> None:
        """As :meth:`ReviewStore.withdraw`: the authenticated user's own label (``user`` is not sent)."""
        self._call("POST", "annotations/withdraw", {"queue": name, "position": int(position)})

    def import_annotations(
        self, name: str, records: Iterable[AnnotationRecord], *, actor: str, source: str
    ) -> ImportReport:
        """As :meth:`ReviewStore.import_annotations`; the authenticated user is the importer."""
        body = [
            {k: plain_json(v) for k, v in dataclasses.asdict(record).items() if v is not None}
            for record in records
        ]
        answer = self._call("POST", "annotations/import", {"queue": name, "records": body, "source": source})
        return ImportReport(added=int(answer["added"]), unchanged=int(answer["unchanged"]))

    def annotations(
        self,
        name: str,
        *,
        offset: int = 0,
        limit: int | None = None,
        from_position: int = 0,
        to_position: int | None = None,
    ) -> pd.DataFrame:
        columns = ["item", "rater", "label", "comment", "source", "created_at"]
        window = {"from_position": from_position, "to_position": to_position}
        params = {"queue": name, **{k: v for k, v in window.items() if v}}
        rows = self._pages("annotations/list", "annotations", params, offset, limit)
        return pd.DataFrame(rows, columns=columns)

    def adjudicate(self, name: str, *, position: int, user: str, label: Any, note: str | None = None) -> None:
        self._call(
            "POST",
            "adjudications/create",
            {"queue": name, "position": int(position), "label": plain_json(label), "note": note},
        )

    def adjudications(self, name: str) -> pd.DataFrame:
        return _frame(self._call("GET", "adjudications/list", {"queue": name}), "adjudications")

    def label_counts(self, name: str) -> pd.DataFrame:
        return _frame(self._call("GET", "queues/label-counts", {"queue": name}), "counts")

    # -- roles and sign-offs --------------------------------------------------------------------

    def grant_role(self, user: str, role: str, *, actor: str) -> None:
        self._call("POST", "roles/grant", {"user": user, "role": role})

    def revoke_role(self, user: str, role: str, *, actor: str) -> None:
        self._call("POST", "roles/revoke", {"user": user, "role": role})

    def roles(self, user: str | None = None) -> pd.DataFrame:
        return _frame(self._call("GET", "roles/list", {"user": user}), "roles")

    def sign_off(
        self,
        *,
        run_id: str,
        check: str,
        user: str,
        approve: bool,
        note: str | None = None,
        evidence_sha256: str | None = None,
    ) -> dict[str, Any]:
        body = {"run_id": run_id, "check": check, "approve": bool(approve), "note": note}
        if evidence_sha256 is not None:  # only when given: a server older than the field refuses it
            body["evidence_sha256"] = evidence_sha256
        return dict(self._call("POST", "signoffs/create", body)["signoff"])

    def signoffs(self, run_id: str | None = None) -> pd.DataFrame:
        return _frame(self._call("GET", "signoffs/list", {"run_id": run_id}), "signoffs")

    # -- snapshots and policies -----------------------------------------------------------------

    def record_snapshot(
        self,
        name: str,
        *,
        snapshot_id: str,
        run_id: str | None,
        method: str,
        n_items: int,
        labels_sha256: str,
        manifest_sha256: str,
        actor: str,
    ) -> dict[str, Any]:
        answer = self._call(
            "POST",
            "snapshots/create",
            {
                "queue": name,
                "snapshot_id": snapshot_id,
                "run_id": run_id,
                "method": method,
                "n_items": int(n_items),
                "labels_sha256": labels_sha256,
                "manifest_sha256": manifest_sha256,
            },
        )
        return dict(answer["snapshot"])

    def snapshots(self, name: str | None = None, *, run_id: str | None = None) -> pd.DataFrame:
        return _frame(self._call("GET", "snapshots/list", {"queue": name, "run_id": run_id}), "snapshots")

    def set_policy(self, model_name: str, *, policy: str, policy_hash: str, actor: str) -> dict[str, Any]:
        """As :meth:`ReviewStore.set_policy`; the server parses and hashes the text and refuses a wrong hash."""
        answer = self._call(
            "POST", "policies/set", {"model": model_name, "policy": policy, "policy_hash": policy_hash}
        )
        return dict(answer["policy"])

    def policy(self, model_name: str) -> dict[str, Any] | None:
        record = self._call("GET", "policies/get", {"model": model_name})["policy"]
        return None if record is None else dict(record)

    # -- gates ----------------------------------------------------------------------------------

    def gate_decision(
        self, model_name: str, version: str | int, target: str, *, record: bool
    ) -> dict[str, Any]:
        """The gate's decision as the server computes it (``GateDecision.to_dict()``); ``record``: as
        ``gate check`` records it, with the authenticated user as actor. Not part of the SQL store: locally
        the adapter decides itself."""
        query = {"model": model_name, "version": int(version), "target": target}
        if record:
            return dict(self._call("POST", "gate/check", query)["decision"])
        return dict(self._call("GET", "gate/decision", query)["decision"])

    def register_evidence(self, run_id: str, *, model_uri: str | None) -> tuple[int, str]:
        """Ask the server to register run ``run_id``'s evidence (``evidence.registered``); the event's
        ``(seq, hash)``. The server hashes the run's files and the model ``model_uri`` (a model of the
        run; ``None``: the one model the run logged) itself. Not part of the SQL store: locally the
        adapter records the event."""
        answer = self._call("POST", "evidence/register", {"run_id": run_id, "model_uri": model_uri})
        return int(answer["seq"]), str(answer["hash"])

    # -- audit ----------------------------------------------------------------------------------

    def record_event(
        self, *, actor: str, action: str, subject: str, payload: Mapping[str, Any]
    ) -> tuple[int, str]:
        """Refused: in team mode only the server appends audit events, for the actions it performs."""
        raise PermissionDeniedError(
            f"{action}: audit events are recorded by the mlflow-hitl server for the actions it performs; "
            "a client cannot append them"
        )

    def audit_head(self) -> tuple[int, str]:
        answer = self._call("GET", "audit/head")
        return int(answer["seq"]), str(answer["hash"])

    def verify_audit(
        self, *, incremental: bool = False, progress: Progress | None = None
    ) -> ChainVerification:
        """The server walks its chain (with its key and anchors) and says what it found; ``progress``
        is not told (the walk runs on the server, in one request)."""
        data = self._call("GET", "audit/verify", {"incremental": str(bool(incremental)).lower()})[
            "verification"
        ]
        known = {f.name for f in dataclasses.fields(ChainVerification)}
        values = {k: v for k, v in data.items() if k in known}
        if "key_ids" in values:
            values["key_ids"] = tuple(values["key_ids"])
        return ChainVerification(**values)

    def audit_event(self, seq: int) -> dict[str, Any] | None:
        event = self._call("GET", "audit/event", {"seq": int(seq)})["event"]
        return None if event is None else dict(event)

    def audit_events(
        self,
        *,
        subject: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        after_seq: int = 0,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> pd.DataFrame:
        """Events in order after ``after_seq``, fetched in pages of at most 10,000; ``limit`` stops early.

        ``newest_first`` with ``limit``: the newest ``limit`` events (at most 10,000), newest first, in one
        call; without ``limit``, every event read in order and turned round.
        """
        check_page(after_seq, limit, "after_seq")
        filters = {"subject": subject, "actor": actor, "action": action}
        if newest_first:
            if limit is None:
                return self.audit_events(**filters, after_seq=after_seq)[::-1].reset_index(drop=True)
            answer = self._call(
                "GET",
                "audit/events",
                {**filters, "after_seq": after_seq, "limit": min(limit, _PAGE), "newest_first": True},
            )
            return pd.DataFrame(answer["events"], columns=answer["columns"])
        rows: list[dict[str, Any]] = []
        columns: list[str] = []
        after: int | None = after_seq
        while after is not None and (limit is None or len(rows) < limit):
            page = _PAGE if limit is None else min(_PAGE, limit - len(rows))
            answer = self._call("GET", "audit/events", {**filters, "after_seq": after, "limit": page})
            rows.extend(answer["events"])
            columns = answer["columns"]
            after = answer["next_after_seq"]
        return pd.DataFrame(rows, columns=columns)
