"""No password leaves in a message: store URLs in reprs and errors, and MLflow's errors that quote its
tracking URI, which on the server reach any client through a gate decision's detail."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mlflow_hitl.adapter.registration import version_model_digest
from mlflow_hitl.errors import first_line, mask_credentials
from mlflow_hitl.review import HttpReviewStore, masked_url


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://mlflow:s3cr%40t@db:5432/mlflow", "postgresql://mlflow:***@db:5432/mlflow"),
        ("postgresql+psycopg://mlflow:pw@db/mlflow", "postgresql+psycopg://mlflow:***@db/mlflow"),
        ("mysql://root:@db/mlflow", "mysql://root:***@db/mlflow"),  # an empty password is one too
        ("https://ghp_token@github.com/org/repo", "https://***@github.com/org/repo"),
        (
            "set to http://u:p@h:5000/x, then https://v:q@k",
            "set to http://u:***@h:5000/x, then https://v:***@k",
        ),
        # Nothing to hide: addresses without user information, e-mail addresses, plain text.
        ("sqlite:///tmp/mlflow.db and s3://bucket/key@v2", "sqlite:///tmp/mlflow.db and s3://bucket/key@v2"),
        ("ask alice@example.com", "ask alice@example.com"),
    ],
)
def test_an_address_keeps_its_user_and_loses_its_password(text, shown):
    assert mask_credentials(text) == shown
    assert first_line(ValueError(f"{text}\nsecond line")) == shown


def test_store_reprs_show_no_password():
    assert (
        masked_url("postgresql://hitl:pw@127.0.0.1:5432/hitl") == "postgresql://hitl:***@127.0.0.1:5432/hitl"
    )
    # SQLAlchemy's rendering, unchanged: the server's key folder is a hash of it (server_home.store_folder).
    assert (
        masked_url("postgresql://postgres@127.0.0.1:5432/hitl") == "postgresql://postgres@127.0.0.1:5432/hitl"
    )
    assert repr(HttpReviewStore("https://rita:pw@mlflow.example.com")) == (
        "HttpReviewStore('https://rita:***@mlflow.example.com')"
    )


def test_a_model_version_the_server_cannot_read_says_why_without_its_database_password(monkeypatch):
    """MLflow's own error quotes the tracking URI (on the server: the database) when a proxied artifact
    cannot be read from the process; the problem the gate records and shows never holds its password
    (MLflow 3.17 leaves the user information out itself; ``first_line`` masks it whatever the version)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://mlflow:hunter2@127.0.0.1:9/mlflow")
    version = SimpleNamespace(source="mlflow-artifacts:/1/0123abcd/artifacts/model", name="m", version="1")
    digest, problem = version_model_digest(None, version)
    assert digest is None
    assert "tracking URI must be a valid http or https URI" in problem  # MLflow's reason, kept
    assert "127.0.0.1:9/mlflow" in problem and "hunter2" not in problem
