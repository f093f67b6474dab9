"""Every code block in README.md and docs/ runs as written, against the demo's data.

The ```python, ```bash, ```console and ```sh blocks of every page run in order in one folder, the
reader's clone: ``demo-output/data/*.csv`` and ``demo-output/policy.toml`` exactly as ``make demo``
writes them (the same function builds them, once per session). Python blocks of a page share one
namespace, like a reader's session; shell blocks run in real bash with ``-e`` and this environment's
``python`` first on the PATH, their ``mlflow-hitl`` lines served by this process (see ``doc_shell``;
:func:`test_the_console_script_is_the_command_the_examples_ran` runs the installed script itself).

A signature listing, marked ``<!-- signatures ... -->``, is checked against the code instead. A block
that must not run is marked on the line before its fence with ``<!-- not-run: <why> -->``: a real
server's address, the commands that set the environment up. Output and configuration are fenced as
what they are (``text``, ``toml``, ``json``) and are not run.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.metadata
import inspect
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from doc_shell import Shell, as_a_new_process
from test_story import load_demo

ROOT = Path(__file__).resolve().parents[1]
RUNNABLE = {"python", "bash", "console", "sh"}
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(?P<why>\S.*?)\s*-->")
SIGNATURES = re.compile(r"<!--\s*signatures\b")
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*$")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(page: Path) -> list[tuple[int, str, str, str | None]]:
    """(line, language, code, not-run reason) of every fenced block of ``page``, in order.

    A signature listing (marked ``<!-- signatures ... -->``) has the reason ``"signatures"``: it is
    not run but checked against the code by :func:`test_signature_listings_match_the_code`."""
    lines = page.read_text().splitlines()
    found, index = [], 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        before = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        marker = NOT_RUN.search(before)
        why = marker["why"] if marker else "signatures" if SIGNATURES.search(before) else None
        code = "\n".join(lines[index + 1 : end]) + "\n"
        found.append((index + 1, opening["lang"], code, why))
        index = end + 1
    return found


def _name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory):
    """demo-output/ as `make demo` leaves the data: CSV files and the demo's policy, built once."""
    demo = load_demo()
    folder = tmp_path_factory.mktemp("demo") / "demo-output"
    demo.write_demo_data(folder / "data")
    (folder / "policy.toml").write_text(demo.POLICY)
    return folder


@pytest.fixture(scope="session")
def clone(tmp_path_factory, demo_data):
    """The reader's clone after `make demo`: one folder every page's examples run in, in order.

    One folder for all pages, as for a reader: MLflow keeps one engine per database URL, so a
    relative ``sqlite:///demo-output/...`` must mean the same file for the whole session."""
    folder = tmp_path_factory.mktemp("clone")
    (folder / "demo-output").mkdir()
    for item in demo_data.iterdir():
        (folder / "demo-output" / item.name).symlink_to(item)
    return folder


@pytest.fixture(scope="session")
def shell(tmp_path_factory):
    opened = Shell(tmp_path_factory.mktemp("shell"), src=ROOT / "src")
    yield opened
    opened.close()


@pytest.fixture
def workdir(clone, monkeypatch):
    """The clone as the current folder, as a reader's new Python finds it: none of this machine's
    (or an earlier test's) MLflow settings."""
    monkeypatch.chdir(clone)
    for name in ("MLFLOW_HITL_USER", "MLFLOW_HITL_STORE_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with as_a_new_process():
        yield clone
        while mlflow.active_run() is not None:
            mlflow.end_run()


def _run_shell(shell: Shell, code: str, where: Path, page: str, line: int) -> None:
    done = shell.run(code, where)
    assert done.returncode == 0, (
        f"{page}:{line} failed ({done.returncode}):\n{code}\n{done.stdout}\n{done.stderr}"
    )
    assert "Traceback" not in done.stderr, f"{page}:{line} printed a traceback:\n{done.stderr}"


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_runnable_block_of_the_page_runs_as_written(page, workdir, shell, request):
    namespace: dict = {"__name__": "__doc_example__"}
    runnable = [(line, lang, code) for line, lang, code, why in blocks(page) if why is None]
    if any("SparkSession" in code for _, _, code in runnable):
        # The page's getOrCreate() then finds the run's one local[2] session instead of starting another.
        request.getfixturevalue("spark")
    for line, lang, code, not_run in blocks(page):
        if lang not in RUNNABLE or not_run is not None:
            continue
        if lang == "python":
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    exec(compile(code, f"{_name(page)}:{line}", "exec"), namespace)  # noqa: S102
                except Exception as exc:
                    raise AssertionError(f"{_name(page)}:{line} failed: {exc!r}\n{code}") from exc
        else:
            _run_shell(shell, code, workdir, _name(page), line)
    assert not (ROOT / "mlflow.db").exists(), "an example wrote ./mlflow.db into the repository"
    assert not (workdir / "mlflow.db").exists(), f"an example of {_name(page)} fell back to ./mlflow.db"


def test_blocks_that_do_not_run_say_why_and_stay_few():
    skipped = [
        (_name(p), line)
        for p in PAGES
        for line, lang, _, why in blocks(p)
        if lang in RUNNABLE and why not in (None, "signatures")
    ]
    checked = [
        (_name(p), line)
        for p in PAGES
        for line, lang, _, why in blocks(p)
        if lang in RUNNABLE and why in (None, "signatures")
    ]
    assert len(checked) > 2 * len(skipped), f"{len(skipped)} blocks marked not-run: {skipped}"
    for page in PAGES:
        for match in NOT_RUN.finditer(page.read_text()):
            assert len(match["why"]) >= 10, f"{_name(page)}: say why a block does not run"


def _parameters(function: ast.FunctionDef) -> list[tuple[str, str, object]]:
    """(name, kind, default) of each parameter a listed ``def`` shows; annotations are the reader's."""
    arguments = function.args
    positional = [*arguments.posonlyargs, *arguments.args]
    defaults = [inspect.Parameter.empty] * (len(positional) - len(arguments.defaults))
    defaults += [ast.literal_eval(d) for d in arguments.defaults]
    found = [(a.arg, "positional", d) for a, d in zip(positional, defaults, strict=True)]
    for argument, default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True):
        value = inspect.Parameter.empty if default is None else ast.literal_eval(default)
        found.append((argument.arg, "keyword", value))
    return found


def _real_parameters(function) -> list[tuple[str, str, object]]:
    kinds = {inspect.Parameter.KEYWORD_ONLY: "keyword"}
    return [
        (p.name, kinds.get(p.kind, "positional"), p.default)
        for p in inspect.signature(function).parameters.values()
    ]


SIGNATURE_BLOCKS = [
    pytest.param(page, line, code, id=f"{_name(page)}:{line}")
    for page in PAGES
    for line, lang, code, why in blocks(page)
    if why == "signatures"
]


@pytest.mark.parametrize(("page", "line", "code"), SIGNATURE_BLOCKS)
def test_signature_listings_match_the_code(page, line, code):
    """A listing imports its names from their public module, then shows each as a ``def ...: ...``
    with the real parameters, their order, kinds (positional or keyword-only) and defaults."""
    tree = ast.parse(code)
    imports = [node for node in tree.body if isinstance(node, ast.ImportFrom)]
    assert len(imports) == 1, f"{_name(page)}:{line}: start with one `from <module> import ...`"
    module = importlib.import_module(imports[0].module)
    names = {alias.name for alias in imports[0].names}
    for function in (node for node in tree.body if isinstance(node, ast.FunctionDef)):
        where = f"{_name(page)}:{line} {function.name}"
        assert function.name in names, f"{where}: not imported from {module.__name__}"
        real = getattr(module, function.name)
        assert _parameters(function) == _real_parameters(real), f"{where}: {inspect.signature(real)}"
    assert all(hasattr(module, name) for name in names)


def test_the_shell_examples_use_the_files_the_demo_writes(demo_data):
    readme = (ROOT / "README.md").read_text()
    for name in re.findall(r"demo-output/data/([\w-]+\.csv)", readme):
        assert (demo_data / "data" / name).is_file(), name


def test_the_console_script_is_the_command_the_examples_ran(tmp_path):
    """The shell examples' ``mlflow-hitl`` is served in-process by ``mlflow_hitl.cli:cli``; this proves
    the installed console script is that command, in its own process."""
    (script,) = (
        e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == "mlflow-hitl"
    )
    assert script.value == "mlflow_hitl.cli:cli"
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "mlflow-hitl"),
            "--tracking-uri",
            f"sqlite:///{tmp_path}/m.db",
            "audit",
            "verify",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert done.returncode == 0, done.stderr
    assert "intact" in done.stdout, done.stdout


INLINE_COMMAND = re.compile(r"`(mlflow-hitl [^`]+)`")


def _parse_command_line(text: str) -> None:
    """Parse ``text`` (``mlflow-hitl ...``) as the CLI would, without running it: real commands
    (``a|b`` naming alternatives), real options, valid values. Prose may leave out required ones
    (``the content of `mlflow-hitl lineage --format html` ``)."""
    import click

    from mlflow_hitl.cli import cli

    words = shlex.split(text.split(" > ")[0])[1:]
    command, path = cli, []
    while isinstance(command, click.Group) and words and not words[0].startswith("-"):
        names = words.pop(0).split("|")
        assert all(name in command.commands for name in names), f"{text}: no command {names}"
        path.append(names[0])
        command = command.commands[names[0]]
    if words:  # an invocation, not a mention: its options and arguments must parse
        command, context = cli, cli.make_context("mlflow-hitl", [*path, *words])
        while isinstance(command, click.Group):
            rest = [*context._protected_args, *context.args]
            name, command, rest = command.resolve_command(context, rest)
            with contextlib.suppress(click.MissingParameter):
                context = command.make_context(name, rest, parent=context)


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_command_the_prose_names_exists_and_parses(page):
    """Commands in tables and sentences are not run, but each names a real command and its options."""
    for text in INLINE_COMMAND.findall(page.read_text()):
        if "<" in text or "…" in text:  # a placeholder to fill in
            continue
        _parse_command_line(text)
