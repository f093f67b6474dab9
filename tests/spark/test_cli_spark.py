"""``mlflow-hitl validate --engine spark``: the same data read by Spark, in the run's one session, gives the
pandas run's verdicts; a table name, a folder of Parquet parts and a CSV are read; bad input is one line.
Two checks only (drift's Spark equality is tested in test_validate_spark.py): what is tested here is the reading."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner

from conftest import ARRESTS_TARGET
from mlflow_hitl.cli import cli

pytestmark = pytest.mark.spark

FAST_TOML = """
[fairness]
n_bootstrap = 50
[drift]
render_report = false
"""
CHECKS = "calibration,fairness"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, spark, arrests_split, arrests_model):
    """real as a Parquet file, synthetic as a folder of Parquet parts (Spark's), production as CSV;
    the model saved to a local folder; the thresholds file."""
    import mlflow.sklearn

    synthetic, real, production = arrests_split
    folder = tmp_path_factory.mktemp("cli-spark")
    real.to_parquet(folder / "real.parquet", index=False)
    spark.createDataFrame(synthetic).repartition(2).write.parquet(str(folder / "synthetic"))
    production.to_csv(folder / "production.csv", index=False)
    synthetic.to_parquet(folder / "synthetic.parquet", index=False)  # the pandas run's copy
    mlflow.sklearn.save_model(arrests_model, str(folder / "model"))
    (folder / "fast.toml").write_text(FAST_TOML)
    return folder


def _validate(folder, *args):
    return CliRunner().invoke(
        cli,
        [
            "validate",
            "--model-uri",
            str(folder / "model"),
            "--target",
            ARRESTS_TARGET,
            "--sensitive",
            "colour,sex",
            "--checks",
            CHECKS,
            "--config",
            str(folder / "fast.toml"),
            "--no-log",
            "--format",
            "json",
            *args,
        ],
    )


def test_spark_engine_gives_the_pandas_verdicts_in_the_active_session(spark, inputs, tracking_uri):
    """real by table name, synthetic from a folder of Parquet parts, production from CSV: one Spark run."""
    from pyspark.sql import SparkSession

    spark.read.parquet(str(inputs / "real.parquet")).createOrReplaceTempView("hitl_cli_real")
    pandas_run = _validate(
        inputs,
        "--real",
        str(inputs / "real.parquet"),
        "--synthetic",
        str(inputs / "synthetic.parquet"),
        "--production",
        str(inputs / "production.csv"),
    )
    spark_run = _validate(
        inputs,
        "--engine",
        "spark",
        "--real",
        "table:hitl_cli_real",
        "--synthetic",
        str(inputs / "synthetic"),
        "--production",
        str(inputs / "production.csv"),
    )
    assert pandas_run.exit_code in (0, 1) and spark_run.exit_code == pandas_run.exit_code, spark_run.output
    ours, theirs = json.loads(spark_run.stdout), json.loads(pandas_run.stdout)
    assert ours["details"]["engine"]["name"] == "spark" and "engine" not in theirs["details"]
    assert ours["details"]["rows"] == theirs["details"]["rows"]
    assert {n: c["status"] for n, c in ours["checks"].items()} == {
        n: c["status"] for n, c in theirs["checks"].items()
    }
    assert set(ours["checks"]) == set(CHECKS.split(","))
    assert ours["checks"]["fairness"]["metrics"] == theirs["checks"]["fairness"]["metrics"]
    assert SparkSession.getActiveSession() is spark  # reused, not replaced or stopped


def test_a_missing_spark_table_is_one_line(spark, inputs, tracking_uri):
    missing = _validate(inputs, "--engine", "spark", "--real", "table:no_such_table")
    assert missing.exit_code == 2
    assert missing.stderr.startswith("Error: --real: cannot read table:no_such_table with Spark:")
    assert len(missing.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "real, message",
    [
        ("nowhere.parquet", "--real: file nowhere.parquet does not exist"),
        ("real.txt", "--real: real.txt is not a .csv or .parquet file, a folder of Parquet parts"),
    ],
)
def test_a_path_spark_cannot_read_is_one_line(inputs, tracking_uri, real, message):
    result = _validate(inputs, "--engine", "spark", "--real", real)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_spark_engine_without_pyspark_names_the_extra(inputs, tracking_uri, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark", None)  # `import pyspark` raises ImportError
    result = _validate(inputs, "--engine", "spark", "--real", str(inputs / "real.parquet"))
    assert result.exit_code == 2
    assert result.stderr.strip() == ("Error: --engine spark needs pyspark: pip install 'mlflow-hitl[spark]'")
