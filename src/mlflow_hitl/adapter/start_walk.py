"""The server's walk of the whole audit chain at start, in the background.

A server process verifies its chain incrementally (from the head its last full walk verified, see
:meth:`~mlflow_hitl.review.ReviewStore.verify_audit`), but its first verification walks everything:
about 5 s at 1,000,000 events on a quiet machine, which the first Release page or gate decision after a
start would otherwise wait for. :func:`start` makes that walk in a thread as the app starts (the start
itself is not delayed), through the store the requests use, so they share what it remembers. A request
arriving during the walk waits for it (the store makes one full walk at a time) and then walks only the
events appended since; it never walks the chain a second time nor sees part of a walk.

:func:`status` is what ``GET /hitl/api/audit/status`` answers: how far this process's start-up walk
verified the chain, for operators (and tests) to see.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import first_line
from ..review import ReviewStore

__all__ = ["start", "status"]

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_state: dict[str, Any] = {"state": "not started"}


def _set(**fields: Any) -> None:
    with _lock:
        _state.clear()
        _state.update(fields)


def status() -> dict[str, Any]:
    """The start-up walk: ``state`` (``not started``, ``walking``, ``verified``, ``broken``, ``failed``) and,
    once over, ``seconds``, and ``head_seq``/``n_events`` (verified) or ``first_bad_seq``/``problem``."""
    with _lock:
        return dict(_state)


def _walk(open_store: Callable[[], ReviewStore]) -> None:
    started = time.perf_counter()
    try:
        result = open_store().verify_audit(incremental=True)
    except Exception as exc:  # a store that is down now: requests will walk when they need to
        _set(state="failed", seconds=round(time.perf_counter() - started, 3), problem=first_line(exc))
        _log.error("mlflow-hitl could not walk the audit chain at start: %s", first_line(exc))
        return
    seconds = round(time.perf_counter() - started, 3)
    if result.ok:
        _set(state="verified", seconds=seconds, head_seq=result.head_seq, n_events=result.n_events)
        _log.info("mlflow-hitl: audit chain verified up to event %d in %.1f s", result.head_seq, seconds)
    else:
        _set(state="broken", seconds=seconds, first_bad_seq=result.first_bad_seq, problem=result.problem)
        _log.warning(
            "mlflow-hitl: the audit chain is broken at event %s: %s", result.first_bad_seq, result.problem
        )


def start(open_store: Callable[[], ReviewStore]) -> threading.Thread:
    """Walk the chain of ``open_store()`` (the requests' own store) in a daemon thread; return the thread."""
    _set(state="walking")
    thread = threading.Thread(target=_walk, args=(open_store,), name="mlflow-hitl-audit-walk", daemon=True)
    thread.start()
    return thread
