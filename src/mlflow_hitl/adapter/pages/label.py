"""Label: the next item reserved for me, its fields, the classes as buttons (keys 1-9), skip, comment, undo.

Blind queues: the model's prediction, its confidence, the selection score and the reason the row
was picked are never rendered (the page reads items through the API, which already hides the
prediction and confidence, and leaves out the rest itself), and the page makes no request of its
own from the browser, so nothing else could carry them.

Every action is a form ``POST`` (CSRF-checked) answered by a redirect to the next item: a reload
never labels twice, and each reservation is made by an action, never by merely opening a page.

A generator audit asks whether each row is realistic (its two classes as the buttons) and offers the
reason tags as check boxes, sent with the answer and kept in its comment. Its items look alike
whichever set they came from: the page shows the row and nothing else.
"""

from __future__ import annotations

from typing import Any

from ...review import AUDIT_TAGS, audit_comment, is_generator_audit
from ._web import (
    Page,
    attempt,
    class_by_text,
    find_run,
    form,
    item_at,
    query,
    redirect,
    render,
    run_link,
    store,
)
from .image import image_urls

__all__ = ["PAGES"]

_SOURCE = "web"


def _positions(text: str | None) -> list[int]:
    return [int(p) for p in (text or "").split(",") if p.strip().isdigit()]


def _show(refusal: Any = None) -> Any:
    name = str(query("queue") or "")
    queue = store().queue(name)
    position = query("item")
    item = None if position is None or not position.isdigit() else item_at(name, int(position))
    run = find_run(queue.run_id)
    return render(
        "label.html",
        refusal=refusal,
        queue=queue,
        item=item,
        images={} if item is None else image_urls(queue, item, run),
        progress=store().progress(name),
        last=query("last"),
        skipped=query("skipped") or "",
        done=query("done") == "1",
        run_link=None if run is None else run_link(run.info.experiment_id, run.info.run_id),
        keys=list(zip(range(1, 10), queue.classes, strict=False)),
        audit_tags=AUDIT_TAGS if is_generator_audit(queue) else (),
    )


def _next(name: str, skipped: list[int], **extra: Any) -> Any:
    """Reserve the next item for me and show it; the queue's page says so when nothing is left."""
    item = store().next_item(name, user="", exclude=skipped)
    shown = ",".join(map(str, skipped)) or None
    if item is None:
        return redirect("label", queue=name, done=1, skipped=shown, **extra)
    return redirect("label", queue=name, item=item.position, skipped=shown, **extra)


def _act() -> Any:
    from flask import request

    name = str(query("queue") or "")
    action, skipped = form("action"), _positions(form("skipped"))
    position = form("position")
    client = store()
    if action == "next":
        return _next(name, skipped)
    if position is None or not position.isdigit():
        return _show()
    where = int(position)
    if action == "skip":
        refusal = attempt(lambda: client.release(name, position=where, user=""))
        return _show(refusal) if refusal else _next(name, [*skipped, where])
    if action == "undo":
        current = form("current")
        if current is not None and current.isdigit():  # give back the item on screen: it is shown again later
            client.release(name, position=int(current), user="")
        refusal = attempt(lambda: client.withdraw(name, position=where, user=""))
        if refusal:
            return _show(refusal)
        return redirect("label", queue=name, item=where, skipped=",".join(map(str, skipped)) or None)
    queue = client.queue(name)
    label = class_by_text(queue.classes).get(request.form.get("label", ""), request.form.get("label"))
    tags = request.form.getlist("tags") if is_generator_audit(queue) else []
    refusal = attempt(
        lambda: client.annotate(
            name,
            position=where,
            user="",
            label=label,
            comment=audit_comment(tags, form("comment")),
            source=_SOURCE,
        )
    )
    return _show(refusal) if refusal else _next(name, skipped, last=where)


def _label() -> Any:
    from flask import request

    return _act() if request.method == "POST" else _show()


PAGES = (Page("label", _label, methods=("GET", "POST")),)
