"""Feeding a production queue off the request path: a bounded buffer, a background thread, a disk spool.

A served model must answer as fast with routing as without, and answer when the review store is
down. So the request path only hands its rows to :meth:`QueueFeeder.submit` (a lock and an append to
a buffer: microseconds); a background thread scores them in batches (every ``batch_rows`` rows or
``flush_seconds``), routes them (:class:`Router`) and appends the chosen ones to the queue
(:meth:`QueueStore.append_items`, idempotent by request id).

When the store cannot be reached, batches go to a spool on local disk (JSON lines in ``spool_dir``,
one file per process, locked while written) and are re-sent every ``retry_seconds``; spool files a
process left behind (a crash, another worker) are re-sent by whichever process gets to them first,
and a batch sent twice is queued once. Memory and disk are bounded (``max_pending_rows``,
``max_spool_bytes``): what does not fit is dropped and counted, never waited for. :meth:`stats` says
what happened to every row, a warning line says when rows are dropped, and the buffer is flushed at
interpreter exit.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._plain import plain_json
from ..errors import InputError, NotFoundError, first_line
from ._http_store import _split
from ._interface import QueueStore
from ._records import ImportReport
from ._routing import Router, RoutingRule

try:  # POSIX: a spool file being written is locked, so another process never replays it half-written
    import fcntl
except ImportError:  # pragma: no cover - Windows: one process per spool folder
    fcntl = None  # type: ignore[assignment]

__all__ = ["DROP_CAUSES", "FeederSettings", "QueueFeeder"]

_log = logging.getLogger("mlflow_hitl.serving")
DROP_CAUSES = ("buffer_full", "spool_full", "rejected", "scoring_failed", "at_exit")
_WARN_EVERY_SECONDS = 60.0


class _Spool:
    """Batches on local disk while the store is away: ``spool-<pid>-<id>.jsonl``, one batch a line."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._file: Any = None

    def files(self) -> list[Path]:
        return sorted(self.folder.glob("spool-*.jsonl")) if self.folder.is_dir() else []

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.files() if p.exists())

    def write(self, line: str) -> bool:
        """Append one batch; ``False`` (nothing written) when the spool would pass ``max_bytes``."""
        data = (line + "\n").encode()
        if self.size() + len(data) > self.max_bytes:
            return False
        if self._file is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"spool-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
            self._file = path.open("ab")
            if fcntl is not None:
                fcntl.flock(self._file, fcntl.LOCK_EX)
        self._file.write(data)
        self._file.flush()
        return True

    @property
    def writing(self) -> bool:
        """Whether this process has spooled batches since the last replay (newer ones must queue behind)."""
        return self._file is not None

    def rotate(self) -> None:
        """Close the file being written (and release its lock), so it can be replayed."""
        if self._file is not None:
            self._file.close()
            self._file = None

    @contextlib.contextmanager
    def claimed(self, path: Path) -> Any:
        """``path``'s batches, locked for this process; ``None`` when another process holds it."""
        try:
            handle = path.open("rb")
        except FileNotFoundError:  # replayed and removed by another process meanwhile
            yield None
            return
        with handle:
            if fcntl is not None:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # being written or replayed by another process
                    yield None
                    return
            yield [line for line in handle.read().decode().splitlines() if line.strip()]


def _payload_line(payload: dict[str, Any]) -> str:
    return json.dumps(
        {
            "rows": _split(payload["rows"]),
            "selection": _split(payload["selection"]),
            "request_ids": [str(v) for v in payload["request_ids"]],
            "predictions": None
            if payload["predictions"] is None
            else [plain_json(v) for v in payload["predictions"]],
            "confidences": [plain_json(v) for v in payload["confidences"]],
        },
        allow_nan=False,
    )


def _payload_from_line(line: str) -> dict[str, Any]:
    data = json.loads(line)
    for key in ("rows", "selection"):
        data[key] = pd.DataFrame(data[key]["data"], columns=data[key]["columns"], index=data[key]["index"])
    data["selection"]["inclusion_probability"] = data["selection"]["inclusion_probability"].astype(float)
    return data


@dataclass(frozen=True)
class FeederSettings:
    """How a :class:`QueueFeeder` batches, bounds and retries; checked when made, so a routed model with
    impossible settings is refused when it is logged, not when it is served.

    ``batch_rows``/``flush_seconds``: a batch is scored and sent every so many rows or seconds;
    ``max_pending_rows``: rows waiting in memory at most; ``retry_seconds``: how often a store that
    was away is tried again; ``max_spool_bytes``: the spool's size on disk at most.
    """

    batch_rows: int = 256
    flush_seconds: float = 1.0
    max_pending_rows: int = 10_000
    retry_seconds: float = 5.0
    max_spool_bytes: int = 256 * 2**20

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name.endswith("_seconds"):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                    raise InputError(f"{field.name} must be a number of seconds > 0, got {value!r}")
            elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{field.name} must be a whole number ≥ 1, got {value!r}")


class QueueFeeder:
    """Routes served rows to review queue ``queue`` without ever holding up a request; see the module docstring.

    ``score(frame)`` gives the model's class probabilities (columns in the order of ``classes``);
    ``open_store()`` opens the review store (again after a failure). The queue is created, with
    ``raters_per_item``/``blind``/``run_id``, by the first batch that finds it missing. ``settings``:
    see :class:`FeederSettings`.
    """

    def __init__(
        self,
        *,
        queue: str,
        classes: Sequence[Any],
        score: Callable[[pd.DataFrame], np.ndarray],
        open_store: Callable[[], QueueStore],
        rule: RoutingRule,
        actor: str,
        spool_dir: str | Path,
        raters_per_item: int = 1,
        blind: bool = False,
        run_id: str | None = None,
        settings: FeederSettings = FeederSettings(),
    ) -> None:
        self.queue = queue
        self.classes = list(classes)
        self.router = Router(rule)
        self._score = score
        self._open_store = open_store
        self._actor = actor
        self._queue_options = {"raters_per_item": raters_per_item, "blind": blind, "run_id": run_id}
        self.settings = settings
        self._spool = _Spool(Path(spool_dir), settings.max_spool_bytes)
        self._batch_rows, self._flush_seconds = settings.batch_rows, float(settings.flush_seconds)
        self._max_pending, self._retry_seconds = settings.max_pending_rows, float(settings.retry_seconds)

        self._lock = threading.Condition()
        self._working = threading.Lock()  # one batch at a time reaches the store and the spool
        self._pending: list[tuple[pd.DataFrame, np.ndarray | None, np.ndarray | str]] = []
        self._pending_rows = 0
        self._taken = self._done = 0  # rows handed to the thread, and rows it has finished with
        self._counts = dict.fromkeys(
            ("requests", "rows", "routed", "control", "appended", "duplicates", "spooled", "replayed"), 0
        )
        self._dropped = dict.fromkeys(DROP_CAUSES, 0)
        self._store: QueueStore | None = None
        self._retry_at = 0.0  # monotonic time before which the store is not tried again
        self._outage: str | None = None
        self._warned_at = -_WARN_EVERY_SECONDS
        self._warned_drops = 0
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._stopping = False
        atexit.register(self.close)
        with self._lock:
            self._ensure_thread()  # at once: spool files an earlier process left are re-sent without waiting for traffic

    # -- the request path -----------------------------------------------------------------------

    def submit(
        self, rows: pd.DataFrame, predictions: Any = None, request_ids: Sequence[str] | None = None
    ) -> None:
        """Hand a request's rows (with the model's answer for them) to the background thread.

        Never raises and never waits on the store: when the buffer holds ``max_pending_rows`` the
        rows are dropped and counted. One frame larger than the whole buffer (batch scoring) is
        routed here instead, on the caller's thread: a batch job waits for its rows to be routed
        (and appended or spooled) rather than losing them. ``request_ids`` (one per row) default to
        a fresh id per request with the row's position (``<hex>-0``, ``<hex>-1``...).
        """
        try:
            n = len(rows)
            ids: np.ndarray | str = (
                uuid.uuid4().hex if request_ids is None else np.asarray(request_ids, dtype=object)
            )
            labels = _labels(predictions, n)
            with self._lock:
                self._counts["requests"] += 1
                self._counts["rows"] += n
                self._ensure_thread()
                inline = n > self._max_pending and not self._stopping
                if not inline:
                    if self._pending_rows + n > self._max_pending or self._stopping:
                        self._dropped["at_exit" if self._stopping else "buffer_full"] += n
                        return
                    self._pending.append((rows, labels, ids))
                    self._pending_rows += n
                    if self._pending_rows >= self._batch_rows:
                        self._lock.notify_all()
            if inline:
                with self._working:
                    self._process([(rows, labels, ids)])
        except Exception:  # routing must never fail a prediction
            _log.exception("mlflow-hitl could not take a request's rows for routing")

    def _ensure_thread(self) -> None:
        """Start the thread on first use, and again in a forked child (threads do not survive a fork)."""
        if self._thread is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._thread = threading.Thread(
                target=self._run, name=f"mlflow-hitl-feeder-{self.queue}", daemon=True
            )
            self._thread.start()

    # -- what happened --------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counts of rows since start: ``rows`` seen, ``routed`` (of which ``control``), ``over_budget``,
        ``appended``, ``duplicates`` (already queued), ``spooled`` and ``replayed``, ``pending`` (in
        memory), ``spool_bytes``, ``dropped`` (total) and ``dropped_by_cause``; ``store`` is
        ``"up"`` or the last error while it is away."""
        with self._lock:
            counts = dict(self._counts)
            dropped = dict(self._dropped)
            pending = self._pending_rows
            outage = self._outage
        return {
            **counts,
            "over_budget": self.router.over_budget,
            "pending": pending,
            "spool_bytes": self._spool.size(),
            "dropped": sum(dropped.values()),
            "dropped_by_cause": dropped,
            "store": "up" if outage is None else outage,
        }

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every row submitted so far is appended, spooled or dropped; ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._taken + self._pending_rows
            self._lock.notify_all()
            while self._done < target:
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None or not self._thread.is_alive():
                    return self._done >= target
                self._lock.wait(min(left, 0.05))
                self._lock.notify_all()
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Flush and stop the thread (at exit too): rows still in memory after ``timeout`` are dropped, counted."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            self._lock.notify_all()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join(timeout)
        with self._lock:
            self._dropped["at_exit"] += self._pending_rows
            self._pending.clear()
            self._pending_rows = 0
        if self._working.acquire(timeout=1.0):  # not under a thread still writing the spool
            self._spool.rotate()
            self._working.release()
        stats = self.stats()
        _log.log(
            logging.WARNING if stats["dropped"] else logging.INFO,
            "mlflow-hitl routing to %r stopped: %s rows seen, %s routed, %s appended, %s spooled, %s dropped %s",
            self.queue,
            stats["rows"],
            stats["routed"],
            stats["appended"],
            stats["spooled"],
            stats["dropped"],
            {k: v for k, v in stats["dropped_by_cause"].items() if v},
        )

    # -- the background thread ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._pending_rows < self._batch_rows and not self._stopping:
                    self._lock.wait(self._flush_seconds)
                batch, self._pending, n = self._pending, [], self._pending_rows
                self._pending_rows = 0
                self._taken += n
                stopping = self._stopping
            try:
                with self._working:
                    if batch:
                        self._process(batch)
                    if time.monotonic() >= self._retry_at or stopping:
                        self._replay()
            except Exception:  # a bug must not end the thread: the next batches still get routed
                _log.exception("mlflow-hitl routing failed on a batch of %d rows", n)
            finally:
                with self._lock:
                    self._done += n
                    self._lock.notify_all()
            self._warn_drops()
            if stopping:
                return

    def _process(self, batch: list[tuple[pd.DataFrame, np.ndarray | None, np.ndarray | str]]) -> None:
        n = sum(len(rows) for rows, _, _ in batch)
        try:  # a request that is not a table (a tensor model's array) cannot be queued as rows either
            frames = [rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows) for rows, _, _ in batch]
            frame = (
                pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
            )
            proba = np.asarray(self._score(frame), dtype=float)
            selection = self.router.route(proba)
        except Exception as exc:
            with self._lock:
                self._dropped["scoring_failed"] += n
            _log.warning("mlflow-hitl could not score %d rows for routing: %s", n, first_line(exc))
            return
        if selection.empty:
            return
        picked = selection["row"].to_numpy()
        ids, labels = _batch_values(batch, picked)
        first = ~pd.Series(ids).duplicated().to_numpy()  # a request repeated within the batch: queued once
        with self._lock:
            self._counts["routed"] += len(picked)
            self._counts["control"] += int(selection["inclusion_probability"].notna().sum())
            self._counts["duplicates"] += int((~first).sum())
        picked = picked[first]
        self._send(
            {
                "rows": frame.iloc[picked].reset_index(drop=True),
                "selection": selection[first].assign(row=np.arange(len(picked))),
                "request_ids": [i for i, keep in zip(ids, first, strict=True) if keep],
                "predictions": None
                if labels is None
                else [v for v, keep in zip(labels, first, strict=True) if keep],
                "confidences": proba.max(axis=1)[picked],
            }
        )

    def _send(self, payload: dict[str, Any]) -> None:
        """Append now if the store is up (and none of this process's older batches waits in the spool), else spool."""
        if time.monotonic() >= self._retry_at and not self._spool.writing and self._deliver(payload):
            return
        self._to_spool(_payload_line(payload), len(payload["request_ids"]))

    def _to_spool(self, line: str, n: int) -> None:
        written = self._spool.write(line)
        with self._lock:
            if written:
                self._counts["spooled"] += n
            else:
                self._dropped["spool_full"] += n

    def _replay(self) -> None:
        """Re-send every spool file no other process holds, oldest batch first; stop at the first failure."""
        self._spool.rotate()
        for path in self._spool.files():
            with self._spool.claimed(path) as lines:
                if lines is None:
                    continue
                for at, line in enumerate(lines):
                    if not self._deliver(_payload_from_line(line)):
                        if at:  # keep only what is still to send (what was sent would be a duplicate)
                            spare = path.with_suffix(".tmp")
                            spare.write_text("".join(f"{rest}\n" for rest in lines[at:]))
                            os.replace(spare, path)
                        return
                    with self._lock:
                        self._counts["replayed"] += len(json.loads(line)["request_ids"])
                path.unlink()

    def _deliver(self, payload: dict[str, Any]) -> bool:
        """Append one batch; ``False`` when the store cannot be reached (the caller keeps the batch)."""
        n = len(payload["request_ids"])
        try:
            if self._store is None:
                self._store = self._open_store()
            report = self._append(self._store, payload)
        except InputError as exc:  # the store refused the rows themselves: sending them again cannot help
            if self._store is None:  # ... unless it was the store that could not be opened
                return self._unavailable(exc)
            with self._lock:
                self._dropped["rejected"] += n
            _log.warning("review queue %r refused %d routed rows: %s", self.queue, n, first_line(exc))
            return True
        except Exception as exc:  # down, unreachable, locked, refused for now: keep the batch, retry later
            return self._unavailable(exc)
        with self._lock:
            self._counts["appended"] += report.added
            self._counts["duplicates"] += report.unchanged
            recovered, self._outage = self._outage is not None, None
        if recovered:
            _log.warning("review store is back: routed rows go to queue %r again", self.queue)
        return True

    def _append(self, store: QueueStore, payload: dict[str, Any]) -> Any:
        values = {k: payload[k] for k in ("selection", "predictions", "confidences")}
        try:
            return store.append_items(
                self.queue,
                rows=payload["rows"],
                request_ids=payload["request_ids"],
                actor=self._actor,
                **values,
            )
        except NotFoundError:  # the queue is made by the first batch that needs it
            pass
        try:
            store.create_queue(
                self.queue,
                rows=payload["rows"].set_axis(list(payload["request_ids"])),
                classes=self.classes,
                actor=self._actor,
                strategy=self.router.rule.strategy,
                **values,
                **self._queue_options,
            )
        except InputError as exc:
            try:
                store.queue(self.queue)  # made by another process meanwhile?
            except NotFoundError:
                raise exc from None  # no: the rows or the classes themselves were refused
            return self._append(store, payload)
        return ImportReport(added=len(payload["request_ids"]), unchanged=0)

    def _unavailable(self, exc: BaseException) -> bool:
        self._retry_at = time.monotonic() + self._retry_seconds
        message = first_line(exc, with_type=True)
        with self._lock:
            first, self._outage = self._outage is None, message
        if first:
            _log.warning(
                "review store unavailable (%s): routed rows are spooled to %s and re-sent every %gs",
                message,
                self._spool.folder,
                self._retry_seconds,
            )
        return False

    def _warn_drops(self) -> None:
        with self._lock:
            dropped = sum(self._dropped.values())
            causes = {k: v for k, v in self._dropped.items() if v}
        now = time.monotonic()
        if dropped > self._warned_drops and now - self._warned_at >= _WARN_EVERY_SECONDS:
            self._warned_at, self._warned_drops = now, dropped
            _log.warning(
                "mlflow-hitl routing to %r has dropped %d rows so far: %s", self.queue, dropped, causes
            )


def _labels(predictions: Any, n: int) -> np.ndarray | None:
    """The model's answer as one label per row, when it is one (else ``None``: nothing to show reviewers)."""
    if predictions is None:
        return None
    if isinstance(predictions, (pd.DataFrame, pd.Series)):
        predictions = predictions.to_numpy()
    values = np.asarray(predictions, dtype=object)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    return values if values.ndim == 1 and len(values) == n else None


def _batch_values(
    batch: list[tuple[pd.DataFrame, np.ndarray | None, np.ndarray | str]], picked: np.ndarray
) -> tuple[list[str], list[Any] | None]:
    """The request id and prediction of each picked row of the concatenated batch."""
    starts = np.cumsum([0] + [len(rows) for rows, _, _ in batch])
    chunk = np.searchsorted(starts, picked, side="right") - 1
    ids, labels = [], []
    for i, c in zip(picked, chunk, strict=True):
        _, chunk_labels, chunk_ids = batch[c]
        at = int(i - starts[c])
        ids.append(f"{chunk_ids}-{at}" if isinstance(chunk_ids, str) else str(chunk_ids[at]))
        labels.append(None if chunk_labels is None else chunk_labels[at])
    return ids, (None if all(label is None for label in labels) else labels)
