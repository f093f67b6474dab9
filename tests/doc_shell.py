"""Run the docs' shell blocks in real bash, with their ``mlflow-hitl`` lines served in this process.

Each ``mlflow-hitl`` process would import MLflow, pandas and scikit-learn again (seconds of CPU each,
twenty lines a page). Here ``mlflow-hitl`` on the block's PATH is a stdlib-only client: it sends its
arguments, environment, folder and piped input over a Unix socket to a thread of the test process,
which runs the same click command (``mlflow_hitl.cli:cli``, the console script's target) with click's
``CliRunner`` and sends back stdout, stderr and the exit code. Everything else in a block (pipes,
``$(...)``, ``|| echo``, ``export``, ``printf``) is bash's own.

Piped input is read up to 1 MiB before the command starts (enough for ``yes Yes | ...``); an
exception that escapes a command comes back as exit 1 with its traceback on stderr, as it would from
the console script.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path

from click.testing import CliRunner

from hitl_support import MLFLOW_STATE_VARIABLES, mlflow_state_restored

CLIENT = """\
#!{python} -IS
import base64, json, os, socket, sys
stdin = b"" if os.isatty(0) else sys.stdin.buffer.read(1 << 20)
request = {{"argv": sys.argv[1:], "env": dict(os.environ), "cwd": os.getcwd(),
           "stdin": base64.b64encode(stdin).decode()}}
with socket.socket(socket.AF_UNIX) as conn:
    conn.connect({address!r})
    conn.sendall(json.dumps(request).encode())
    conn.shutdown(socket.SHUT_WR)
    reply = json.loads(b"".join(iter(lambda: conn.recv(1 << 16), b"")))
sys.stdout.buffer.write(base64.b64decode(reply["stdout"]))
sys.stderr.buffer.write(base64.b64decode(reply["stderr"]))
sys.exit(reply["code"])
"""


class Shell:
    """bash for the docs' blocks, with ``mlflow-hitl`` served in-process while it is open."""

    def __init__(self, folder: Path, *, src: Path) -> None:
        self._bin = folder / "bin"
        self._bin.mkdir(parents=True)
        self._address = str(folder / "cli.sock")
        self._src = src
        self._listener = socket.socket(socket.AF_UNIX)
        self._listener.bind(self._address)
        self._listener.listen()
        client = self._bin / "mlflow-hitl"
        client.write_text(CLIENT.format(python=sys.executable, address=self._address))
        client.chmod(0o755)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def run(self, code: str, cwd: Path, *, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run ``code`` with ``bash -e`` in ``cwd``; this environment's python first on the PATH."""
        env = dict(os.environ)
        path = [str(self._bin), str(Path(sys.executable).parent), env.get("PATH", "")]
        env["PATH"] = os.pathsep.join(path)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(self._src), env.get("PYTHONPATH")) if p)
        return subprocess.run(
            ["bash", "-e", "-c", code],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def close(self) -> None:
        self._listener.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # closed
                return
            with conn:
                conn.sendall(json.dumps(_invoke(json.loads(_read_all(conn)))).encode())


def _read_all(conn: socket.socket) -> bytes:
    chunks = []
    while chunk := conn.recv(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


@contextlib.contextmanager
def as_a_new_process() -> Iterator[None]:
    """MLflow's tracking URI, registry URI and active experiment as a new process finds them: unset,
    so only the environment counts; the ones set before come back after."""
    import mlflow
    from mlflow.tracking import fluent

    with mlflow_state_restored():
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        fluent._active_experiment_id = None
        for name in MLFLOW_STATE_VARIABLES:
            os.environ.pop(name, None)
        yield


def _invoke(request: dict) -> dict:
    """One ``mlflow-hitl`` command as its process would run it: its folder, its environment only."""
    from mlflow_hitl.cli import cli

    here = os.getcwd()
    env = {name: request["env"].get(name) for name in {*os.environ, *request["env"]}}
    os.chdir(request["cwd"])
    try:
        with as_a_new_process():
            result = CliRunner().invoke(
                cli,
                request["argv"],
                input=base64.b64decode(request["stdin"]),
                env=env,
                prog_name="mlflow-hitl",
            )
    finally:
        os.chdir(here)
    stderr = result.stderr_bytes or b""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(*result.exc_info)).encode()
    return {
        "stdout": base64.b64encode(result.stdout_bytes).decode(),
        "stderr": base64.b64encode(stderr).decode(),
        "code": result.exit_code,
    }
