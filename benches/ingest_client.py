"""The ingest benchmark's client (driven by benches/ingest.rs): the same
Arrow table appended to a Delta table by the deltalake library directly (D)
and through Lakegate by ADBC bulk ingestion (L), interleaved, the first
iteration a warm-up. Checks both tables hold every row, and writes the
medians and L/D as JSON."""

import argparse
import json
import statistics
import time

import adbc_driver_flightsql.dbapi as flight_sql
import deltalake
import pyarrow as pa
import pyarrow.parquet as pq


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lakegate", required=True)
    parser.add_argument("--parquet", required=True)
    parser.add_argument("--copy", required=True, help="Lakegate's Delta table, to check")
    parser.add_argument("--baseline", required=True, help="deltalake's own table")
    parser.add_argument("--iterations", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    data = pq.read_table(args.parquet).combine_chunks()
    rows = data.num_rows
    # Each Arrow batch of an ingestion travels as one gRPC message (16 MiB
    # at most, on both sides): the batches a notebook would send.
    batches = data.to_batches(max_chunksize=16_384)
    conn = flight_sql.connect(args.lakegate, db_kwargs={"username": "admin", "password": "admin-pass"},
                              autocommit=True)
    properties = deltalake.WriterProperties(compression="ZSTD")

    def direct():
        deltalake.write_deltalake(args.baseline, data, mode="append", writer_properties=properties)

    def through_lakegate():
        reader = pa.RecordBatchReader.from_batches(data.schema, batches)
        written = conn.cursor().adbc_ingest("web_sales_copy", reader, mode="append", db_schema_name="out")
        assert written == rows, (written, rows)

    variants = {"D": direct, "L": through_lakegate}
    times = {name: [] for name in variants}
    order = list(variants)
    for iteration in range(args.iterations):
        for name in order:
            started = time.perf_counter()
            variants[name]()
            if iteration > 0:
                times[name].append(time.perf_counter() - started)
        order = order[1:] + order[:1]
    conn.close()

    # Every append is there, whole: one version per iteration.
    for path in (args.copy, args.baseline):
        table = deltalake.DeltaTable(path)
        count = sum(batch.num_rows for batch in table.to_pyarrow_dataset().to_batches(columns=[]))
        assert count == rows * args.iterations, (path, count, rows * args.iterations)
    assert deltalake.DeltaTable(args.copy).version() == args.iterations

    medians = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "rows": rows,
        "iterations_measured": args.iterations - 1,
        "median_s": medians,
        "ratio_L_over_D": medians["L"] / medians["D"],
        "target_L_over_D": 1.2,
    }
    with open(args.out, "w") as out:
        json.dump(result, out, indent=2)
    print(f"ingest of {rows} rows: D deltalake {medians['D']:.2f} s, L Lakegate {medians['L']:.2f} s, "
          f"L/D {result['ratio_L_over_D']:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
