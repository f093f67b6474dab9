"""The review loop from the shell: queues, labelling, Label Studio/CSV round trips, consensus, snapshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .._format import number
from .._progress import or_silent
from .._review_options import DEFAULT_MIN_AGREEMENT, GENERATOR_AUDIT, METHODS, QUEUE_KINDS, STRATEGIES
from ._common import (
    BadInput,
    acting_user,
    csv_list,
    emit_json,
    json_text,
    open_store,
    output_format,
    progress_bar,
    store_option,
    table,
    translate_errors,
    user_option,
    warn,
)

_METHODS = click.Choice(list(METHODS))


# -- queue --------------------------------------------------------------------------------------


@click.group()
def queue() -> None:
    """Review queues: which rows people label, and why.

    \b
    Example:
      mlflow-hitl queue create --run-id R --data prod.csv --size 300 --raters 3 --blind --name fraud-al-1
      mlflow-hitl queue create --kind generator-audit --synthetic syn.csv --real real.csv \\
          --sensitive sex,race --per-group 40 --raters 2 --run-id G --name gen-audit-1
    """


@queue.command("create")
@click.option("--name", required=True, help="Queue name, unique in the store.")
@click.option(
    "--kind",
    type=click.Choice(list(QUEUE_KINDS)),
    default="model",
    show_default=True,
    help="model: rows the model is unsure of; generator-audit: a blind realism audit of synthetic rows.",
)
@click.option(
    "--data", "data_path", type=click.Path(), help="Rows to choose from (.csv or .parquet); --kind model."
)
@click.option(
    "--run-id", help="The run whose model scores the rows; the queue and its snapshots belong to it."
)
@click.option("--model-uri", help="The model to score with (default: runs:/<run-id>/model).")
@click.option(
    "--strategy",
    type=click.Choice(list(STRATEGIES)),
    default="least-confidence",
    show_default=True,
)
@click.option("--size", type=click.IntRange(min=1), help="How many rows to queue; --kind model.")
@click.option(
    "--raters", type=click.IntRange(min=1), default=1, show_default=True, help="Independent labels per item."
)
@click.option("--blind", is_flag=True, help="Never show reviewers the model's prediction.")
@click.option("--group", "group_column", help="Stratify by this column (e.g. a sensitive feature).")
@click.option(
    "--random-share",
    type=click.FloatRange(0, 1),
    default=0.1,
    show_default=True,
    help="Share of uniformly random control rows.",
)
@click.option("--gold-column", help="Column with known labels for gold items (hidden from reviewers).")
@click.option(
    "--synthetic", "synthetic_path", type=click.Path(), help="The generator's rows; --kind generator-audit."
)
@click.option(
    "--real", "real_path", type=click.Path(), help="Real rows, shown as controls; --kind generator-audit."
)
@click.option(
    "--sensitive", help="Columns to stratify by, comma separated (e.g. sex,race); --kind generator-audit."
)
@click.option(
    "--per-group",
    type=click.IntRange(min=1),
    help="Synthetic rows per group and per large-enough intersection; --kind generator-audit.",
)
@click.option(
    "--control-ratio",
    type=click.FloatRange(0, 10, min_open=True),
    default=1.0,
    show_default=True,
    help="Real rows per synthetic row, per group; --kind generator-audit.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@store_option
@user_option
@output_format
@translate_errors
def queue_create(
    name: str,
    kind: str,
    data_path: str | None,
    run_id: str | None,
    model_uri: str | None,
    strategy: str,
    size: int | None,
    raters: int,
    blind: bool,
    group_column: str | None,
    random_share: float,
    gold_column: str | None,
    synthetic_path: str | None,
    real_path: str | None,
    sensitive: str | None,
    per_group: int | None,
    control_ratio: float,
    seed: int,
    store_uri: str | None,
    user: str | None,
    output_format: str,
) -> None:
    """Score rows with a run's model and queue the least-confident ones for review.

    With --kind generator-audit: a blind queue of synthetic rows, --per-group of every --sensitive
    group (and of every intersection large enough), mixed with real rows as controls (--control-ratio
    per synthetic row), in a seeded order. Reviewers answer realistic or not realistic, with reason
    tags; nobody labelling sees which rows are synthetic.

    \b
    Example:
      mlflow-hitl queue create --run-id R --data prod.csv --strategy least-confidence \\
          --size 300 --raters 3 --blind --name fraud-al-1
    """
    if kind == GENERATOR_AUDIT:
        _create_generator_audit(
            name,
            run_id=run_id,
            synthetic_path=synthetic_path,
            real_path=real_path,
            sensitive=sensitive,
            per_group=per_group,
            control_ratio=control_ratio,
            raters=raters,
            seed=seed,
            store_uri=store_uri,
            user=user,
            output_format=output_format,
        )
        return
    _create_model_queue(
        name,
        data_path=data_path,
        run_id=run_id,
        model_uri=model_uri,
        strategy=strategy,
        size=size,
        raters=raters,
        blind=blind,
        group_column=group_column,
        random_share=random_share,
        gold_column=gold_column,
        seed=seed,
        store_uri=store_uri,
        user=user,
        output_format=output_format,
    )


def _create_model_queue(
    name: str,
    *,
    data_path: str | None,
    run_id: str | None,
    model_uri: str | None,
    strategy: str,
    size: int | None,
    raters: int,
    blind: bool,
    group_column: str | None,
    random_share: float,
    gold_column: str | None,
    seed: int,
    store_uri: str | None,
    user: str | None,
    output_format: str,
) -> None:
    """--kind model: the rows of --data scored by the run's model, the least-confident ones queued."""
    from .._io import read_table
    from ..adapter.logging import resolve_run_id
    from ..adapter.review import queue_from_model

    if data_path is None or size is None:
        option = "--data" if data_path is None else "--size"
        raise BadInput(f"Missing option '{option}' (a --kind model queue needs it)")
    if model_uri is None and run_id is None:
        raise BadInput("pass --run-id (its model scores the rows) or --model-uri")
    if run_id is not None:
        resolve_run_id(run_id)
    data = read_table(data_path, "--data")
    store = open_store(store_uri)
    created = queue_from_model(
        store,
        name,
        data=data,
        model=model_uri or f"runs:/{run_id}/model",
        actor=acting_user(user),
        size=size,
        strategy=strategy,
        raters_per_item=raters,
        blind=blind,
        run_id=run_id,
        group_column=group_column,
        random_share=random_share,
        gold_column=gold_column,
        seed=seed,
    )
    progress = store.progress(name)
    if progress["items"] < size:
        warn(f"--size {size:,} but {data_path} has {len(data):,} row(s): queued {progress['items']:,}")
    if output_format == "json":
        emit_json(
            {"queue": created.name, "run_id": created.run_id, "classes": list(created.classes), **progress}
        )
        return
    click.echo(
        f"queue {created.name}: {number(progress['items'])} items × {created.raters_per_item} rater(s), "
        f"classes {', '.join(map(str, created.classes))}{', blind' if created.blind else ''}"
    )


def _create_generator_audit(
    name: str,
    *,
    run_id: str | None,
    synthetic_path: str | None,
    real_path: str | None,
    sensitive: str | None,
    per_group: int | None,
    control_ratio: float,
    raters: int,
    seed: int,
    store_uri: str | None,
    user: str | None,
    output_format: str,
) -> None:
    """``queue create --kind generator-audit``: read both sets, sample them, create the blind queue."""
    from .._io import read_table
    from ..review import queue_generator_audit

    if synthetic_path is None or real_path is None or sensitive is None or per_group is None:
        given = {
            "--synthetic": synthetic_path,
            "--real": real_path,
            "--sensitive": sensitive,
            "--per-group": per_group,
        }
        raise BadInput(
            f"--kind {GENERATOR_AUDIT} needs {', '.join(o for o, v in given.items() if v is None)}"
        )
    if run_id is not None:
        from ..adapter.logging import resolve_run_id

        resolve_run_id(run_id)
    synthetic = read_table(synthetic_path, "--synthetic")
    real = read_table(real_path, "--real")
    store = open_store(store_uri)
    created = queue_generator_audit(
        store,
        name,
        synthetic=synthetic,
        real=real,
        sensitive=csv_list(sensitive),
        per_group=per_group,
        control_ratio=control_ratio,
        raters_per_item=raters,
        actor=acting_user(user),
        run_id=run_id,
        seed=seed,
    )
    progress = store.progress(name)
    if output_format == "json":
        emit_json({"queue": created.name, "run_id": created.run_id, "kind": GENERATOR_AUDIT, **progress})
        return
    click.echo(
        f"queue {created.name}: generator audit of {number(progress['items'])} rows (synthetic and real, "
        f"shuffled) × {created.raters_per_item} rater(s), blind"
    )


@queue.command("list")
@store_option
@output_format
@translate_errors
def queue_list(store_uri: str | None, output_format: str) -> None:
    """List queues and how far along they are.

    \b
    Example:
      mlflow-hitl queue list --format json
    """
    store = open_store(store_uri)
    rows = [
        {
            "name": q.name,
            "run_id": q.run_id or "",
            "raters": q.raters_per_item,
            "blind": q.blind,
            **store.progress(q.name),
        }
        for q in store.queues()
    ]
    if output_format == "json":
        emit_json(rows)
    else:
        table(
            rows,
            [
                "name",
                "items",
                "labels",
                "labels_needed",
                "complete_items",
                "adjudicated",
                "raters",
                "blind",
                "run_id",
            ],
        )


# -- review -------------------------------------------------------------------------------------


@click.group()
def review() -> None:
    """Label queued items: in the terminal, or round-trip through Label Studio or a spreadsheet.

    \b
    Example:
      mlflow-hitl review label --queue fraud-al-1 --user alice
    """


def _show_item(item: Any, queue_classes: tuple[Any, ...], done: int, total: int) -> None:
    click.echo("")
    click.secho(
        f"item {item.position}  ({done}/{total} labels in the queue)  selected by {item.reason}", bold=True
    )
    width = max((len(str(k)) for k in item.payload), default=0)
    for key, value in item.payload.items():
        click.echo(f"  {str(key).ljust(width)}  {value}")
    if item.prediction is not None:
        click.echo(f"  {'model says'.ljust(width)}  {item.prediction} ({item.confidence:.2f})")
    click.echo(f"  classes: {', '.join(f'[{i}] {c}' for i, c in enumerate(queue_classes, 1))}")


@review.command("label")
@click.option("--queue", "queue_name", required=True)
@store_option
@user_option
@translate_errors
def review_label(queue_name: str, store_uri: str | None, user: str | None) -> None:
    """Label items one by one in the terminal.

    Type a class (or its number); s skips the item, c adds a comment first, q quits.

    \b
    Example:
      mlflow-hitl review label --queue fraud-al-1 --user alice
    """
    store = open_store(store_uri)
    user = acting_user(user)
    queue_ = store.queue(queue_name)
    by_text = {str(c): c for c in queue_.classes} | {str(i): c for i, c in enumerate(queue_.classes, 1)}
    labelled, skipped = 0, set()
    while (item := store.next_item(queue_name, user=user, exclude=skipped)) is not None:
        progress = store.progress(queue_name)
        _show_item(item, queue_.classes, progress["labels"], progress["labels_needed"])
        comment = None
        while True:
            answer = click.prompt("label (s skip, c comment, q quit)", default="", show_default=False).strip()
            if answer == "c":
                comment = click.prompt("comment") or None
                continue
            if answer in ("s", "q") or answer in by_text:
                break
            click.echo(f"  '{answer}' is not a class; choose from {', '.join(map(str, queue_.classes))}")
        if answer in ("s", "q"):
            store.release(queue_name, position=item.position, user=user)
            if answer == "q":
                break
            skipped.add(item.position)
            continue
        if queue_.strategy == GENERATOR_AUDIT:
            comment = _audit_reasons(comment)
        store.annotate(
            queue_name,
            position=item.position,
            user=user,
            label=by_text[answer],
            comment=comment,
            source="terminal",
        )
        labelled += 1
    else:
        click.echo("\nnothing left for you in this queue")
    click.echo(f"{user} labelled {labelled} item(s) in {queue_name}")


def _audit_reasons(comment: str | None) -> str | None:
    """A generator audit's reason tags, asked after the answer and folded into the comment
    (``other`` asks what, unless a comment already says)."""
    from ..errors import InputError
    from ..review import AUDIT_TAGS, audit_comment, read_audit_comment

    menu = " ".join(f"[{i}] {tag}" for i, tag in enumerate(AUDIT_TAGS, 1))
    by_number = {str(i): tag for i, tag in enumerate(AUDIT_TAGS, 1)}
    while True:
        typed = click.prompt(
            f"reasons, comma separated (enter: none): {menu}", default="", show_default=False
        )
        parts = [by_number.get(p.strip(), p.strip()) for p in typed.split(",") if p.strip()]
        try:
            tagged = audit_comment(parts, comment)
            break
        except InputError as exc:
            click.echo(f"  {exc}")
    tags, note = read_audit_comment(tagged)
    if "other" in tags and not note:
        note = click.prompt("other: what is wrong with it", default="", show_default=False) or None
    return audit_comment(tags, note)


_EXPORT_FORMATS = click.Choice(["label-studio", "label-studio-config", "csv"])


@review.command("export")
@click.option("--queue", "queue_name", required=True)
@click.option(
    "--format",
    "--file-format",
    "file_format",
    type=_EXPORT_FORMATS,
    default="label-studio",
    show_default=True,
    help="What to write (--file-format is the same switch, named as on review import).",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="File to write (default: stdout).")
@store_option
@translate_errors
def review_export(queue_name: str, file_format: str, output: str | None, store_uri: str | None) -> None:
    """Export a queue's items as Label Studio tasks, its labelling config, or a CSV sheet.

    Blind queues never export the model's prediction.

    \b
    Example:
      mlflow-hitl review export --queue fraud-al-1 --format label-studio > tasks.json
    """
    from ..review import csv_tasks, label_studio_config, label_studio_tasks

    store = open_store(store_uri)
    queue_ = store.queue(queue_name)
    with progress_bar("exporting") as progress:
        step = or_silent(progress)
        if file_format == "label-studio-config":
            text = label_studio_config(queue_)
        else:
            items = store.items(queue_name)
            step(1, 2)
            text = (
                json_text(label_studio_tasks(queue_, items), sort_keys=False)
                if file_format == "label-studio"
                else csv_tasks(queue_, items)
            )
        step(2, 2)
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=not text.endswith("\n"))


@review.command("import")
@click.argument("path", type=click.Path())
@click.option("--queue", "queue_name", required=True)
@click.option(
    "--file-format",
    "file_format",
    type=click.Choice(["label-studio", "csv"]),
    help="What PATH holds. Default: from its name (.json Label Studio, .csv a sheet).",
)
@click.option("--rater", help="The rater of a single-rater CSV sheet without a user column.")
@store_option
@user_option
@output_format
@translate_errors
def review_import(
    path: str,
    queue_name: str,
    file_format: str | None,
    rater: str | None,
    store_uri: str | None,
    user: str | None,
    output_format: str,
) -> None:
    """Import labels from a Label Studio JSON export or a CSV sheet: all or nothing, and idempotent.

    --format is how the outcome is printed (text or json); --file-format is what PATH holds.

    \b
    Example:
      mlflow-hitl review import --queue fraud-al-1 export.json
    """
    from ..review import read_annotations_csv, read_label_studio_export

    file = Path(path)
    if not file.is_file():
        raise BadInput(f"file {path} does not exist")
    file_format = file_format or ("csv" if file.suffix.lower() == ".csv" else "label-studio")
    store = open_store(store_uri)
    queue_ = store.queue(queue_name)
    with progress_bar("importing", output_format) as progress:
        step = or_silent(progress)
        data = file.read_bytes()
        if file_format == "csv":
            records, ignored = read_annotations_csv(data, queue=queue_, user=rater)
        else:
            records, ignored = read_label_studio_export(data, queue=queue_)
        step(1, 2)  # read and checked; the import itself is one all-or-nothing transaction
        report = store.import_annotations(queue_name, records, actor=acting_user(user), source=file_format)
        step(2, 2)
    result = {"added": report.added, "unchanged": report.unchanged, "ignored": ignored}
    if output_format == "json":
        emit_json(result)
    else:
        click.echo(
            f"added {number(report.added)}, unchanged {number(report.unchanged)}, "
            f"ignored {number(ignored)} (cancelled or empty)"
        )


@review.command("adjudicate")
@click.option("--queue", "queue_name", required=True)
@click.option("--method", type=_METHODS, default="majority", show_default=True)
@click.option(
    "--min-agreement", type=click.FloatRange(0, 1), default=DEFAULT_MIN_AGREEMENT, show_default=True
)
@store_option
@user_option
@translate_errors
def review_adjudicate(
    queue_name: str, method: str, min_agreement: float, store_uri: str | None, user: str | None
) -> None:
    """Settle the items raters disagree on (needs the adjudicator role).

    \b
    Example:
      mlflow-hitl review adjudicate --queue fraud-al-1 --user carol
    """
    from ..review import consensus_of

    store = open_store(store_uri)
    user = acting_user(user)
    labels = store.queue_labels(queue_name)
    queue_ = labels.queue
    state = consensus_of(labels, method=method, min_agreement=min_agreement)
    items = {i.position: i for i in labels.items}
    by_text = {str(c): c for c in queue_.classes} | {str(i): c for i, c in enumerate(queue_.classes, 1)}
    settled = 0
    for position in state.pending:
        row = state.labels.loc[position]
        _show_item(items[position], queue_.classes, settled, len(state.pending))
        click.echo(f"  raters: {row['raters']}  (agreement {row['agreement']:.2f})")
        answer = click.prompt("final label (s skip, q quit)", default="", show_default=False).strip()
        while answer not in by_text and answer not in ("s", "q"):
            answer = click.prompt(f"choose from {', '.join(map(str, queue_.classes))}, s or q").strip()
        if answer == "q":
            break
        if answer == "s":
            continue
        note = click.prompt("note", default="", show_default=False) or None
        store.adjudicate(queue_name, position=position, user=user, label=by_text[answer], note=note)
        settled += 1
    click.echo(f"{user} adjudicated {settled} of {len(state.pending)} item(s) in {queue_name}")


# -- consensus ----------------------------------------------------------------------------------


@click.command()
@click.option("--queue", "queue_name", required=True)
@click.option("--method", type=_METHODS, default="majority", show_default=True)
@click.option(
    "--min-agreement",
    type=click.FloatRange(0, 1),
    default=DEFAULT_MIN_AGREEMENT,
    show_default=True,
    help="Items below it (or tied) go to adjudication.",
)
@store_option
@output_format
@translate_errors
def consensus(
    queue_name: str, method: str, min_agreement: float, store_uri: str | None, output_format: str
) -> None:
    """One label per item, agreement statistics, and what needs adjudication.

    \b
    Example:
      mlflow-hitl consensus --queue fraud-al-1 --method dawid-skene
    """
    from ..review import queue_consensus

    state = queue_consensus(open_store(store_uri), queue_name, method=method, min_agreement=min_agreement)
    summary = state.summary()
    if output_format == "json":
        quality = state.rater_quality.reset_index().to_dict(orient="records")
        emit_json(
            {
                **summary,
                "rater_quality": quality,
                "labels": state.labels.reset_index().to_dict(orient="records"),
            }
        )
        return
    stats = summary["agreement"] or {}
    click.echo(
        f"{queue_name} ({method}): {number(summary['verified_items'])} verified of "
        f"{number(summary['labelled_items'])} labelled, {number(len(state.pending))} for adjudication, "
        f"{number(len(state.incomplete))} incomplete"
    )
    for key in ("cohen_kappa", "fleiss_kappa", "krippendorff_alpha", "percent_agreement"):
        value = stats.get(key)
        click.echo(f"  {key:<20} {number(value)}")
    if not state.rater_quality.empty:
        rows = state.rater_quality.reset_index().to_dict(orient="records")
        table(
            rows,
            [
                c
                for c in [
                    "rater",
                    "n_labels",
                    "agreement_with_consensus",
                    "gold_accuracy",
                    "estimated_accuracy",
                ]
                if c in rows[0]
            ],
        )


# -- labels -------------------------------------------------------------------------------------


@click.group()
def labels() -> None:
    """Verified-label snapshots: immutable, hashed, linked to MLflow runs.

    \b
    Example:
      mlflow-hitl labels publish --queue fraud-al-1
    """


@labels.command("publish")
@click.option("--queue", "queue_name", required=True)
@click.option("--method", type=_METHODS, default="majority", show_default=True)
@click.option(
    "--min-agreement", type=click.FloatRange(0, 1), default=DEFAULT_MIN_AGREEMENT, show_default=True
)
@click.option("--run-id", help="Publish into this run (default: the queue's run).")
@click.option("--label-column", default="label", show_default=True)
@store_option
@user_option
@output_format
@translate_errors
def labels_publish(
    queue_name: str,
    method: str,
    min_agreement: float,
    run_id: str | None,
    label_column: str,
    store_uri: str | None,
    user: str | None,
    output_format: str,
) -> None:
    """Publish the queue's human-verified labels as a snapshot in its run.

    \b
    Example:
      mlflow-hitl labels publish --queue fraud-al-1 --method dawid-skene
    """
    from ..adapter.review import publish_labels

    with progress_bar("publishing", output_format) as progress:
        record = publish_labels(
            open_store(store_uri),
            queue_name,
            actor=acting_user(user),
            method=method,
            min_agreement=min_agreement,
            run_id=run_id,
            label_column=label_column,
            progress=progress,
        )
    if output_format == "json":
        emit_json(record)
        return
    if not record["republished"]:
        click.echo(f"snapshot {record['id']} already holds exactly these labels; nothing new published")
        return
    click.echo(
        f"snapshot {record['id']}: {number(record['n_items'])} verified labels in run {record['run_id']} "
        f"at {record['artifact_path']}/"
    )
    if record["pending"] or record["incomplete"]:
        click.echo(
            f"not included: {len(record['pending'])} awaiting adjudication, {len(record['incomplete'])} incomplete"
        )


@labels.command("list")
@click.option("--queue", "queue_name")
@store_option
@output_format
@translate_errors
def labels_list(queue_name: str | None, store_uri: str | None, output_format: str) -> None:
    """List published snapshots.

    \b
    Example:
      mlflow-hitl labels list --queue fraud-al-1
    """
    store = open_store(store_uri)
    if queue_name:
        store.queue(queue_name)
    rows = store.snapshots(queue_name).to_dict(orient="records")
    if output_format == "json":
        emit_json(rows)
    else:
        table(rows, ["id", "queue", "n_items", "method", "run_id", "created_by", "created_at"])
