"""The Python side of `cargo bench --bench tpch` (see benches/tpch.rs).

A worker the Rust runner drives over stdin/stdout, one JSON object a line,
so that the Python variants interleave with the in-process ones:

  {"op": "run", "variant": V, "sql": S, "save": PATH or null}
      runs S in variant V, answers {"seconds": s, "rows": n, "error": null}
      or {"seconds": s, "rows": 0, "error": "..."}; with "save", writes the
      result to PATH as an Arrow IPC file (for the runner's comparison)
  {"op": "chart", "report": JSON_PATH, "png": PNG_PATH}
      draws the per-query ratios of the runner's report, answers {"ok": true}
  {"op": "quit"}

Variants:

  D-analyst, D-admin  Lakegate over Flight SQL through the ADBC driver
                      (execute, then fetch the whole result as Arrow)
  E                   DuckDB on the same Parquet files, over the views of
                      benches/tpch/analyst_views.sql (the analyst policy)
  F                   the plain DataFusion Flight SQL peer, same ADBC client
  G-analyst           D-analyst through nginx (grpc_pass) to two Lakegate
                      servers sharing one key: each call lands on either

Time is wall time from `execute` to the last batch, in this process.
"""

import argparse
import json
import pathlib
import re
import sys
import time

import pyarrow as pa
import pyarrow.feather  # noqa: F401  (registers the IPC file writer)

def adbc_cursor(uri, user):
    """A cursor on a new connection (the cursor keeps its connection)."""
    import adbc_driver_flightsql.dbapi as flight_sql

    db_kwargs = {"username": user, "password": f"{user}-pass"} if user else {}
    return flight_sql.connect(uri, db_kwargs=db_kwargs, autocommit=True).cursor()


def duckdb_dialect(views_sql):
    """The views in DuckDB's dialect: its sha256() answers hex text already."""
    return re.sub(r"encode\(sha256\((\w+)\), 'hex'\)", r"sha256(\1)", views_sql)


def duckdb_connection(data_dir, views):
    import duckdb

    connection = duckdb.connect()
    connection.execute("CREATE SCHEMA raw")
    # Every table directory `lakegate bench data` wrote.
    for table in sorted(p.name for p in pathlib.Path(data_dir, "tpch").iterdir() if p.is_dir()):
        files = f"{data_dir}/tpch/{table}/*.parquet"
        connection.execute(f"CREATE VIEW raw.{table} AS SELECT * FROM read_parquet('{files}')")
    with open(views) as text:
        connection.execute(duckdb_dialect(text.read()))
    return connection


class Variants:
    """Connections, opened on first use and kept (sign-in is not measured)."""

    def __init__(self, args):
        self.args = args
        self.open = {}

    def runner(self, variant):
        if variant not in self.open:
            self.open[variant] = self.connect(variant)
        return self.open[variant]

    def connect(self, variant):
        if variant in ("D-analyst", "D-admin"):
            user = variant.split("-", 1)[1]
            cursor = adbc_cursor(self.args.lakegate, user)
            return lambda sql: fetch_adbc(cursor, sql)
        if variant == "G-analyst":
            if not self.args.fleet:
                raise RuntimeError("no balancer was started")
            cursor = adbc_cursor(self.args.fleet, "analyst")
            return lambda sql: fetch_adbc(cursor, sql)
        if variant == "F":
            if not self.args.peer:
                raise RuntimeError("no peer server was started")
            cursor = adbc_cursor(self.args.peer, None)
            return lambda sql: fetch_adbc(cursor, sql)
        if variant == "E":
            connection = duckdb_connection(self.args.data_dir, self.args.views)
            return lambda sql: connection.execute(sql).to_arrow_table()
        raise RuntimeError(f"unknown variant {variant}")


def fetch_adbc(cursor, sql):
    cursor.execute(sql)
    return cursor.fetch_arrow_table()


def chart(report_path, png_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(report_path) as text:
        report = json.load(text)
    ratios = [r for r in report["ratios"] if any(v is not None for v in r["per_query"].values())]
    queries = sorted({q for r in ratios for q in r["per_query"]})
    figure, axis = plt.subplots(figsize=(13, 6))
    width = 0.8 / max(len(ratios), 1)
    for i, ratio in enumerate(ratios):
        values = [ratio["per_query"].get(q) for q in queries]
        positions = [x + (i - (len(ratios) - 1) / 2) * width for x in range(len(queries))]
        heights = [v if v is not None else 0 for v in values]
        geomean = ratio["geomean"]
        label = f"{ratio['name']} (geomean {geomean:.2f})" if geomean else ratio["name"]
        axis.bar(positions, heights, width, label=label)
    axis.axhline(1.0, color="black", linewidth=0.8)
    axis.set_yscale("log")
    axis.set_xticks(range(len(queries)), [q.upper() for q in queries])
    axis.set_ylabel("ratio of median times (log scale)")
    axis.set_title(f"TPC-H SF{report['scale']}: per-query ratios, {report['iterations']} interleaved iterations")
    axis.legend(fontsize=8, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.08))
    figure.tight_layout()
    # The legend sits below the axes: keep it inside the image.
    figure.savefig(png_path, dpi=110, bbox_inches="tight")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lakegate", required=True, help="grpc://host:port of Lakegate")
    parser.add_argument("--peer", help="grpc://host:port of the plain DataFusion peer")
    parser.add_argument("--fleet", help="grpc://host:port of nginx in front of two Lakegate servers")
    parser.add_argument("--data-dir", required=True, help="holds tpch/<table>/*.parquet")
    parser.add_argument("--views", required=True, help="benches/tpch/analyst_views.sql")
    args = parser.parse_args()
    variants = Variants(args)
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "quit":
            break
        if request["op"] == "chart":
            chart(request["report"], request["png"])
            answer = {"ok": True}
        else:
            started = time.perf_counter()
            try:
                table = variants.runner(request["variant"])(request["sql"])
                seconds = time.perf_counter() - started
                if request.get("save"):
                    pa.feather.write_feather(table, request["save"], compression="uncompressed")
                answer = {"seconds": seconds, "rows": table.num_rows, "error": None}
            except Exception as error:  # the runner decides what a failure means
                answer = {"seconds": time.perf_counter() - started, "rows": 0, "error": str(error)}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
