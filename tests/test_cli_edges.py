"""The command line's edges as a person meets them: strict JSON, usage errors, clamped requests, warnings."""

import io
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ARRESTS_TARGET
from hitl_support import log_model_run
from mlflow_hitl.cli import cli
from mlflow_hitl.review import ReviewStore, queue_consensus
from test_gates import registered  # noqa: F401 (the fixture)

SRC = Path(__file__).resolve().parents[1] / "src"


def _refuse(constant):
    raise AssertionError(f"{constant} is not JSON")


def strict_json(text):
    """``text`` parsed as strict JSON: ``NaN`` or ``Infinity`` fail the test."""
    return json.loads(text, parse_constant=_refuse)


@pytest.fixture
def loop(tracking_uri, tmp_path, arrests_model, arrests_split, monkeypatch):
    """A model's run, 60 production rows on disk, a SQLite review store and a CLI bound to them."""
    _, real, production = arrests_split
    run_id = log_model_run(arrests_model, real)
    data = tmp_path / "prod.csv"
    production.head(60).to_csv(data, index=False)
    store_uri = f"sqlite:///{tmp_path / 'hitl.db'}"
    monkeypatch.setenv("MLFLOW_HITL_STORE_URI", store_uri)

    def invoke(*args, user="eve", input=None):
        return CliRunner().invoke(
            cli,
            ["--tracking-uri", tracking_uri, *args],
            input=input,
            env={"MLFLOW_HITL_USER": user, "MLFLOW_HITL_STORE_URI": store_uri},
        )

    def create_queue(name, *options):
        return invoke("queue", "create", "--run-id", run_id, "--data", str(data), "--name", name, *options)

    return {
        "run_id": run_id,
        "invoke": invoke,
        "create_queue": create_queue,
        "store": ReviewStore(store_uri),
        "tmp_path": tmp_path,
    }


def test_consensus_json_is_strict_json_with_null_for_what_cannot_be_computed(loop):
    assert loop["create_queue"]("q", "--size", "4", "--raters", "2").exit_code == 0
    store = loop["store"]
    for item in store.items("q"):
        store.annotate("q", position=item.position, user="alice", label="Yes")
    result = loop["invoke"]("consensus", "--queue", "q", "--format", "json")
    assert result.exit_code == 0, result.output
    # Without gold items or a second rater, the accuracies cannot be computed: NaN in pandas, null in JSON.
    assert queue_consensus(store, "q").rater_quality["gold_accuracy"].isna().all()
    payload = strict_json(result.stdout)
    assert payload["rater_quality"][0]["gold_accuracy"] is None
    assert payload["rater_quality"][0]["n_labels"] == 4


def test_review_import_reads_file_format_and_prints_format_without_a_duplicate_switch(loop):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # click warns (UserWarning) when two options share a flag
        help_text = loop["invoke"]("review", "import", "--help").output
    assert "--file-format [label-studio|csv]" in help_text and "--format [text|json]" in help_text
    assert loop["create_queue"]("sheet", "--size", "3", "--random-share", "0").exit_code == 0
    sheet = loop["tmp_path"] / "sheet.txt"  # no .csv suffix: only --file-format says what it holds
    assert (
        loop["invoke"](
            "review", "export", "--queue", "sheet", "--file-format", "csv", "-o", str(sheet)
        ).exit_code
        == 0
    )
    rows = sheet.read_text().splitlines()
    sheet.write_text("\n".join([rows[0], rows[1][:-1] + "Yes,"]) + "\n")  # label the first item
    result = loop["invoke"](
        "review",
        "import",
        str(sheet),
        "--queue",
        "sheet",
        "--file-format",
        "csv",
        "--rater",
        "ann",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    assert strict_json(result.stdout) == {"added": 1, "unchanged": 0, "ignored": 0}


def test_a_sheet_with_a_shifted_row_is_refused_whole_with_its_row_number(loop):
    assert loop["create_queue"]("shifted", "--size", "3", "--random-share", "0").exit_code == 0
    sheet = loop["tmp_path"] / "sheet.csv"
    loop["invoke"]("review", "export", "--queue", "shifted", "--format", "csv", "-o", str(sheet))
    header, first, second, *rest = sheet.read_text().splitlines()
    # The first row is labelled; the second lost its separators to a semicolon-minded editor.
    first = first[:-1] + "Yes,"
    second = second.replace(",", ";")
    sheet.write_text("\n".join([header, first, second, *rest]) + "\n")
    result = loop["invoke"]("review", "import", str(sheet), "--queue", "shifted", "--rater", "ann")
    assert result.exit_code == 2, result.output
    assert "row 3 has 1 cell(s) where the header has" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert loop["store"].annotations("shifted").empty  # nothing half-written: not even the good row


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[checks.calibration]\nmax = { ece = 1.5 }\n",
            "policy.toml line 2: checks.calibration.max.ece = 1.5 is outside",
        ),
        ("[protect]\naliases = ['champion']\n# r\xe9vis\xe9\n", "is not UTF-8 text"),
    ],
)
def test_policy_set_refuses_a_bound_out_of_range_and_a_non_utf8_file_in_one_line(tmp_path, text, message):
    policy = tmp_path / "policy.toml"
    policy.write_bytes(text.encode("latin-1"))
    store_uri = f"sqlite:///{tmp_path / 'hitl.db'}"
    args = ["policy", "set", "fraud", str(policy), "--store-uri", store_uri, "--user", "root"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert ReviewStore(store_uri).policy("fraud") is None  # nothing set


def test_queue_create_says_when_it_queues_fewer_rows_than_asked(loop):
    result = loop["create_queue"]("all", "--size", "500", "--format", "json")
    assert result.exit_code == 0, result.output
    assert strict_json(result.stdout)["items"] == 60  # the data has 60 rows
    assert "warning: --size 500 but" in result.stderr and "has 60 row(s): queued 60" in result.stderr
    exact = loop["create_queue"]("some", "--size", "10")
    assert exact.exit_code == 0 and "warning" not in exact.stderr


def test_a_sign_off_by_the_models_author_is_recorded_with_a_warning_that_it_will_not_count(registered):  # noqa: F811
    store, author, run_id = registered["store"], registered["author"], registered["run_id"]
    store.grant_role(author, "fairness-reviewer", actor="root-admin")
    args = ("signoff", "--run-id", run_id, "--check", "fairness", "--approve")
    by_author = registered["invoke"](*args, user=author)
    assert by_author.exit_code == 0, by_author.output
    assert f"warning: {author} is an author of run {run_id}" in by_author.stderr
    assert "will not count this approval" in by_author.stderr
    by_reviewer = registered["invoke"](*args, user="dana")
    assert by_reviewer.exit_code == 0 and "warning" not in by_reviewer.stderr
    gate = registered["invoke"](
        "gate", "check", "models:/arrests/1", "--target", "champion", "--format", "json"
    )
    (signoff,) = [r for r in strict_json(gate.stdout)["requirements"] if r["name"] == "signoff.fairness"]
    assert f"{author} is the model's author and cannot sign off" in signoff["detail"]  # as warned


def _cli_without_tracking_uri(cwd, *args):
    """The installed CLI as a user runs it: its own process, in ``cwd``, with no tracking URI anywhere."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_HITL_STORE_URI")}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    code = "from mlflow_hitl.cli import cli; cli(prog_name='mlflow-hitl')"
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_without_a_tracking_uri_a_failed_lookup_names_the_default_store_and_leaves_nothing_behind(tmp_path):
    result = _cli_without_tracking_uri(
        tmp_path, "signoff", "--run-id", "abc", "--check", "fairness", "--approve"
    )
    assert result.returncode == 2, result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "unknown MLflow run 'abc'" in error[0]
    assert (
        "no MLflow store was here" in error[0]
        and "pass --tracking-uri or set MLFLOW_TRACKING_URI" in error[0]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no stray mlflow.db or hitl.db


def test_without_a_tracking_uri_an_existing_default_store_is_named_and_kept(tmp_path):
    (tmp_path / "mlflow.db").touch()  # someone's store (empty here): never removed
    result = _cli_without_tracking_uri(tmp_path, "gate", "check", "models:/fraud/1", "--target", "champion")
    assert result.returncode == 2, result.stderr
    assert f"MLflow's default store sqlite:///{tmp_path / 'mlflow.db'}; pass --tracking-uri" in result.stderr
    assert (tmp_path / "mlflow.db").exists()


def test_text_tables_format_numbers_alike_and_right_align_them(capsys):
    from mlflow_hitl.cli._common import table

    rows = [
        {"name": "fraud-al-1", "items": 500_000, "agreement": 0.233333, "gold": float("nan"), "blind": True},
        {"name": "q", "items": 12, "agreement": 0.5, "gold": None, "blind": False},
    ]
    table(rows, ["name", "items", "agreement", "gold", "blind"])
    header, first, second = capsys.readouterr().out.splitlines()
    assert first.split() == ["fraud-al-1", "500,000", "0.233", "n/a", "yes"]
    assert second.split() == ["q", "12", "0.500", "n/a", "no"]
    # numbers end where their header ends; text starts where its header starts
    assert first.index("500,000") + len("500,000") == header.index("items") + len("items")
    assert second.index("12") + 2 == header.index("items") + len("items")
    assert first.index("yes") == second.index("no") == header.index("blind")


def test_consensus_text_shows_what_cannot_be_computed_as_n_a(loop):
    assert loop["create_queue"]("txt", "--size", "4", "--raters", "2").exit_code == 0
    store = loop["store"]
    for item in store.items("txt"):
        store.annotate("txt", position=item.position, user="alice", label="Yes")
    result = loop["invoke"]("consensus", "--queue", "txt")
    assert result.exit_code == 0, result.output
    assert "cohen_kappa          n/a" in result.stdout
    assert "nan" not in result.stdout.lower().replace("n/a", "")


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_is_drawn_on_a_terminal_only_and_never_for_json(monkeypatch):
    from mlflow_hitl.cli._common import progress_bar

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with progress_bar("audit events") as progress:
        for done in range(0, 5_001, 1_000):
            progress(done, 5_000)
    assert "audit events" in terminal.getvalue() and "100%" in terminal.getvalue()
    with progress_bar("audit events", "json") as progress:
        assert progress is None  # scripts read stdout; stderr stays quiet too
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a pipe or a log file
    with progress_bar("audit events") as progress:
        assert progress is None


def test_long_work_reports_progress_through_the_core_callback(tmp_path, arrests_model, arrests_split):
    import mlflow_hitl

    store = ReviewStore(f"sqlite:///{tmp_path / 'hitl.db'}")
    store.grant_role("root", "admin", actor="root")  # the first admin appoints themselves
    for n in range(2):
        store.grant_role(f"user{n}", "reviewer", actor="root")
    walked = []
    result = store.verify_audit(progress=lambda done, total: walked.append((done, total)))
    assert result.ok and walked[-1] == (result.n_events, result.n_events) == (3, 3)

    _, real, _ = arrests_split
    checked = []
    mlflow_hitl.validate(
        arrests_model,
        real=real,
        target=ARRESTS_TARGET,
        checks=["calibration", "adversarial"],
        config={"adversarial": {"max_rows": 200}},
        log=False,
        progress=lambda done, total: checked.append((done, total)),
    )
    assert checked == [(0, 2), (1, 2), (2, 2)]
