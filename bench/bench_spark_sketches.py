"""The memory of Spark drift's quantile-sketch job alone: does it fit the local-mode heap at a given size?

    /work/main/.venv/bin/python bench/bench_spark_sketches.py --rows 50000000                 # 512m heap, 13 columns
    /work/main/.venv/bin/python bench/bench_spark_sketches.py --rows 50000000 --memory 1g
    /work/main/.venv/bin/python bench/bench_spark_sketches.py --rows 50000000 --columns 4
    /work/main/.venv/bin/python bench/bench_spark_sketches.py --rows 50000000 --partitions 50

Drift sketches every numeric column with a large reference in one ``approxQuantile`` job per set, at
the relative error drift uses (``mlflow_hitl.spark._drift._ACCURACY``) and its quantile grid. The
partial sketches of every partition are merged in one task, on the heap, where Spark does not spill
them: ``bench_spark.py`` at 50M rows failed there with a 512m heap. This script runs only that job on
``--columns`` generated normal columns (``spark.range``, 250,000 rows per partition, as
``bench_spark.py`` partitions), with nothing cached, and prints its wall time, CPU seconds (the JVM and
the driver) and the JVM's peak resident size, or the error that stopped it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from bench_spark import _status_kb, cpu_seconds, java_pid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--columns", type=int, default=13, help="numeric columns sketched in the one job")
    parser.add_argument("--memory", default="512m", help="spark.driver.memory (the local-mode heap)")
    parser.add_argument("--partitions", type=int, help="partitions (default: one per 250,000 rows)")
    args = parser.parse_args()

    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from mlflow_hitl.spark._drift import _ACCURACY, _CELLS

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.driver.memory", args.memory)
        .config("spark.driver.extraJavaOptions", "-XX:+UseParallelGC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("OFF")
    jvm = java_pid(spark)
    partitions = args.partitions or max(1, args.rows // 250_000)
    frame = spark.range(0, args.rows, numPartitions=partitions).select(
        *[(F.randn(i) * (i + 1) + F.rand(100 + i)).alias(f"x{i}") for i in range(args.columns)]
    )
    started, cpu = time.perf_counter(), cpu_seconds(jvm)
    try:
        frame.approxQuantile(frame.columns, [j / _CELLS for j in range(_CELLS + 1)], 1.0 / _ACCURACY)
        outcome = "finished"
    except Exception as exc:  # the bench reports the failure it measures
        outcome = f"failed: {str(exc).splitlines()[0][:160]}"
    print(
        f"{args.rows:,} rows x {args.columns} columns, {partitions} partitions, heap {args.memory}: {outcome}; "
        f"{time.perf_counter() - started:.0f} s wall, {cpu_seconds(jvm) - cpu:.0f} CPU s, "
        f"JVM peak {_status_kb(jvm, 'VmHWM') // 1024} MB"
    )


if __name__ == "__main__":
    main()
