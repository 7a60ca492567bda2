"""The Python side of `cargo bench --bench spark` (see benches/spark.rs).

For each server (1, 2 and 4 endpoints for the same query), interleaved over
the iterations:

  pyarrow  GetFlightInfo with `x-lakegate-parallel: true`, then every
           endpoint read at once, one thread each, to the last batch
  spark    the data source of clients/python in a local[2] session, read
           into Spark's `noop` sink (every row converted, nothing written)

Each is timed from the request to the last row; the medians and
spark/pyarrow are printed as Markdown and written as JSON.
"""

import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import pyarrow.flight as flight


def pyarrow_read(address, query, expected_endpoints):
    client = flight.FlightClient(address)
    headers = [client.authenticate_basic_token("admin", "admin-pass"), (b"x-lakegate-parallel", b"true")]
    options = flight.FlightCallOptions(headers=headers)
    started = time.perf_counter()
    info = client.get_flight_info(flight.FlightDescriptor.for_command(query.encode()), options)
    assert len(info.endpoints) == expected_endpoints, (len(info.endpoints), expected_endpoints)

    def read(endpoint):
        reader = flight.FlightClient(address).do_get(endpoint.ticket, options)
        return sum(chunk.data.num_rows for chunk in reader if chunk.data is not None)

    with concurrent.futures.ThreadPoolExecutor(len(info.endpoints)) as pool:
        rows = sum(pool.map(read, info.endpoints))
    return time.perf_counter() - started, rows


def spark_read(spark, address, query):
    started = time.perf_counter()
    frame = (spark.read.format("lakegate").option("uri", address).option("username", "admin")
             .option("password", "admin-pass").load(query))
    frame.write.format("noop").mode("overwrite").save()
    return time.perf_counter() - started, frame.rdd.getNumPartitions()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", required=True)
    parser.add_argument("--partitions", required=True)
    parser.add_argument("--query", required=True)
    parser.add_argument("--package", required=True, help="clients/python")
    parser.add_argument("--out", required=True)
    parser.add_argument("--iterations", type=int, default=3)
    args = parser.parse_args()
    servers = args.servers.split(",")
    partitions = [int(p) for p in args.partitions.split(",")]

    target = tempfile.mkdtemp(prefix="lakegate-spark-")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--target", target, args.package], check=True)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [target, os.environ.get("PYTHONPATH")]))
    os.environ["PYSPARK_PYTHON"] = sys.executable
    sys.path.insert(0, target)
    from pyspark.sql import SparkSession

    from lakegate_spark import LakegateDataSource

    spark = (SparkSession.builder.master("local[2]").appName("lakegate-bench")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    spark.dataSource.register(LakegateDataSource)

    times = {n: {"pyarrow": [], "spark": []} for n in partitions}
    rows = None
    for iteration in range(args.iterations + 1):  # the first warms up
        for address, n in zip(servers, partitions):
            seconds, read_rows = pyarrow_read(address, args.query, n)
            rows = rows or read_rows
            assert read_rows == rows
            spark_seconds, spark_partitions = spark_read(spark, address, args.query)
            assert spark_partitions == n, (spark_partitions, n)
            if iteration > 0:
                times[n]["pyarrow"].append(seconds)
                times[n]["spark"].append(spark_seconds)
    spark.stop()

    report = {"query": args.query, "rows": rows, "iterations": args.iterations, "partitions": {}}
    print(f"{args.query}: {rows} rows, median of {args.iterations} iterations")
    print("| endpoints (Spark partitions) | pyarrow s | Spark s | Spark/pyarrow |")
    print("| ---: | ---: | ---: | ---: |")
    for n in partitions:
        pyarrow_s = statistics.median(times[n]["pyarrow"])
        spark_s = statistics.median(times[n]["spark"])
        report["partitions"][str(n)] = {"pyarrow_seconds": pyarrow_s, "spark_seconds": spark_s,
                                        "ratio": spark_s / pyarrow_s}
        print(f"| {n} | {pyarrow_s:.3f} | {spark_s:.3f} | {spark_s / pyarrow_s:.2f} |")
    with open(args.out, "w") as out:
        json.dump(report, out, indent=2)


if __name__ == "__main__":
    main()
