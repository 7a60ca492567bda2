"""The client side of `cargo bench --bench wire` (see benches/wire.rs).

Throughput, in MB/s of Arrow payload (the in-memory size of the table the
client ends up with), for the largest demo table, variants interleaved:

  parquet-local     pyarrow reads the Parquet files itself (no server)
  ceiling           a bare arrow-flight (Rust) server streams the same
                    batches from memory: the transport's own ceiling
  ceiling-parallel  the same, in two parts read at once (every other batch
                    each, one connection each): the ceiling of two streams
  ceiling-parquet   the same bare server decodes the Parquet files on each
                    DoGet (the parquet crate, no DataFusion): what serving
                    these files costs any arrow-rs Flight server
  ceiling-cpp, ceiling-cpp-parallel
                    the same batches from memory, one stream and two, served
                    by Arrow's C++ Flight implementation (a bare pyarrow.flight
                    server, `wire_cpp_ceiling.py`, in a process of its own):
                    what the other implementation every pyarrow client also
                    speaks reaches on this machine
  lakegate          Lakegate, lake administrator, one stream
  lakegate-parallel Lakegate, lake administrator, parallel endpoints read
                    by one thread each
  lakegate-policy   Lakegate as tina/sales: row filter with a subquery
  lakegate-cached   Lakegate with the table in its table cache
                    (`--table-cache`): decoded batches from memory, as the
                    ceiling's, so the difference is Lakegate's own path
  lakegate-cached-parallel   the same, parallel endpoints
  text, text-cached  Lakegate and Lakegate with the table cache, one
                    stream of a scan of text columns (`--text-scan`: the
                    largest table has none), in the classic types every
                    client reads (the default)
  text-view-types, text-cached-view-types
                    the same from Lakegates that read and send Arrow's view
                    types (`--view-types`): the baseline of what classic
                    types cost

Beside each variant's wall time, the CPU time it costs the servers' process
(user and system, from /proc: loopback TCP is system time of the sender and
the receiver) and this client, per scan: on a machine where the client and
the server share the cores, a variant that keeps every core busy is bound by
CPU, not by the transport, and the CPU it adds over the ceiling is what it
does beyond streaming batches from memory.

Latency: `SELECT ws_order_number FROM dl_tpc_web_sales LIMIT 10` through the
ADBC Flight SQL driver (`cursor.execute`, `fetch_arrow_table`), 1,000 times,
p50 and p99, in alternating blocks with `SELECT 1`: the same calls with
nothing to read, the machine's floor for a query. The driver's cursor keeps
its statement prepared while the text stays the same, so each query is a
GetFlightInfo and a DoGet (the prepare and its close come once a block, in
its unmeasured warm-up).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq

SCAN = b"SELECT * FROM dl_tpc_web_sales"


_SIGNED_IN = {}


def signed_in(location, user, extra_headers=(), connection=0):
    """A client and call options carrying a bearer token, made once per
    (location, user, headers, connection): sign-in (an Argon2 check) is not
    part of what is measured."""
    key = (location, user, tuple(extra_headers), connection)
    if key not in _SIGNED_IN:
        client = flight.FlightClient(location)
        authorization = client.authenticate_basic_token(user, f"{user}-pass")
        _SIGNED_IN[key] = (client, flight.FlightCallOptions(headers=[authorization, *extra_headers]))
    return _SIGNED_IN[key]


_TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid):
    """CPU seconds (user and system, all threads) a process has used."""
    with open(f"/proc/{pid}/stat") as stat:
        # The command name (field 2) may hold spaces; it ends at the last ')'.
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def parquet_local(path):
    return pq.read_table(path)


_CEILING = {}


def bare(location):
    client = _CEILING.setdefault(location, flight.FlightClient(location))
    return client.do_get(flight.Ticket(b"scan")).read_all()


def in_parallel(reads):
    """Runs each of `reads` (functions returning a table) on a thread of its
    own, at once, and concatenates their tables in order."""
    tables = [None] * len(reads)

    def read(i):
        tables[i] = reads[i]()

    threads = [threading.Thread(target=read, args=(i,)) for i in range(len(reads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return pa.concat_tables(tables)


def bare_parallel(location, parts=2):
    clients = [_CEILING.setdefault((location, i), flight.FlightClient(location)) for i in range(parts)]
    return in_parallel([
        lambda i=i: clients[i].do_get(flight.Ticket(f"part/{i}/{parts}".encode())).read_all()
        for i in range(parts)
    ])


def start_cpp_ceiling(table, directory):
    """Starts `wire_cpp_ceiling.py` serving `table`'s batches; returns the
    process and its location."""
    path = os.path.join(directory, "batches.arrow")
    with pa.ipc.new_file(path, table.schema) as writer:
        for batch in table.to_batches():
            writer.write_batch(batch)
    server = subprocess.Popen(
        [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "wire_cpp_ceiling.py"), path],
        stdout=subprocess.PIPE,
        text=True,
    )
    port = server.stdout.readline().strip()
    if not port:
        server.kill()
        raise RuntimeError("the C++ ceiling server did not start")
    return server, f"grpc://127.0.0.1:{port}"


def lakegate(location, user="admin", role=None, scan=SCAN):
    headers = [(b"x-lakegate-role", role.encode())] if role else []
    client, options = signed_in(location, user, headers)
    return client.do_get(flight.Ticket(scan), options).read_all()


def lakegate_parallel(location):
    """Reads every endpoint of the scan at once (one thread and connection
    each); returns the table and the number of endpoints."""
    client, options = signed_in(location, "admin", [(b"x-lakegate-parallel", b"true")])
    info = client.get_flight_info(flight.FlightDescriptor.for_command(SCAN), options)

    def read(i, endpoint):
        # One connection per endpoint, as parallel readers have.
        reader, reader_options = signed_in(location, "admin", connection=i + 1)
        return reader.do_get(endpoint.ticket, reader_options).read_all()

    reads = [lambda i=i, e=e: read(i, e) for i, e in enumerate(info.endpoints)]
    return in_parallel(reads), len(reads)


LIMIT_10 = "SELECT ws_order_number FROM dl_tpc_web_sales LIMIT 10"
# The same calls with nothing to read or enforce: what the round trips of an
# ADBC execute (GetFlightInfo and DoGet of the prepared statement) and the
# client's own work cost on this machine, the baseline of the latency.
SELECT_1 = "SELECT 1 AS one"


def latency(location, queries, block=50):
    """p50 and p99 in ms of LIMIT_10 and of SELECT_1 through ADBC, in
    alternating blocks of `block` queries (so that both see the machine's
    same moments; alternating query by query slowed both, on the client's
    side as much as the server's)."""
    samples = {LIMIT_10: [], SELECT_1: []}
    with flight_sql.connect(location, db_kwargs={"username": "admin", "password": "admin-pass"}, autocommit=True) as conn:
        cursor = conn.cursor()
        for start in range(0, queries, block):
            for sql, times in samples.items():
                for i in range(min(block, queries - start) + 5):
                    started = time.perf_counter()
                    cursor.execute(sql)
                    cursor.fetch_arrow_table()
                    if i >= 5:  # the block's warm-up
                        times.append((time.perf_counter() - started) * 1000)
    percentiles = {}
    for sql, times in samples.items():
        times.sort()
        percentiles[sql] = (times[len(times) // 2], times[int(len(times) * 0.99) - 1])
    return percentiles[LIMIT_10], percentiles[SELECT_1]


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--report":
        # The Markdown and chart of a run already made, from its JSON.
        with open(sys.argv[2]) as text:
            write_report(json.load(text), sys.argv[2])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--lakegate", required=True)
    parser.add_argument("--lakegate-cached", required=True, help="Lakegate with the table cache loaded")
    parser.add_argument("--lakegate-view-types", required=True, help="Lakegate sending view types")
    parser.add_argument("--lakegate-cached-view-types", required=True, help="the same, table cache loaded")
    parser.add_argument("--ceiling", required=True)
    parser.add_argument("--decoding", required=True, help="the bare server decoding the Parquet files")
    parser.add_argument("--text-scan", required=True, help="the SQL of the text scan")
    parser.add_argument("--parquet", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--scan-in-process", required=True, help="WALL_S,CPU_S of the server's scan without transport")
    parser.add_argument("--iterations", type=int, default=7)
    parser.add_argument("--latency-queries", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        # The C++ server streams the very batches Lakegate returns.
        cpp, cpp_location = start_cpp_ceiling(lakegate(args.lakegate_cached), directory)
        try:
            measure(args, cpp.pid, cpp_location)
        finally:
            cpp.kill()
            cpp.wait()


def measure(args, cpp_pid, cpp_location):
    variants = {
        "parquet-local": lambda: parquet_local(args.parquet),
        "ceiling": lambda: bare(args.ceiling),
        "ceiling-parallel": lambda: bare_parallel(args.ceiling),
        "ceiling-parquet": lambda: bare(args.decoding),
        "ceiling-cpp": lambda: bare(cpp_location),
        "ceiling-cpp-parallel": lambda: bare_parallel(cpp_location),
        "lakegate": lambda: lakegate(args.lakegate),
        "lakegate-parallel": lambda: lakegate_parallel(args.lakegate)[0],
        "lakegate-policy": lambda: lakegate(args.lakegate, "tina", "sales"),
        "lakegate-cached": lambda: lakegate(args.lakegate_cached),
        "lakegate-cached-parallel": lambda: lakegate_parallel(args.lakegate_cached)[0],
        "text": lambda: lakegate(args.lakegate, scan=args.text_scan.encode()),
        "text-view-types": lambda: lakegate(args.lakegate_view_types, scan=args.text_scan.encode()),
        "text-cached": lambda: lakegate(args.lakegate_cached, scan=args.text_scan.encode()),
        "text-cached-view-types": lambda: lakegate(args.lakegate_cached_view_types, scan=args.text_scan.encode()),
    }
    for run in variants.values():  # warm caches and connections once
        run()
    seconds = {name: [] for name in variants}
    server_cpu = {name: 0.0 for name in variants}
    client_cpu = {name: 0.0 for name in variants}
    # The process whose CPU a variant costs: the C++ server's own, or the
    # benchmark's, which runs every Rust server.
    server_pid = {name: cpp_pid if name.startswith("ceiling-cpp") else args.server_pid for name in variants}
    sizes = {}
    rows = {}
    for _ in range(args.iterations):
        for name, run in variants.items():
            server_before, client_before = process_cpu(server_pid[name]), time.process_time()
            started = time.perf_counter()
            table = run()
            seconds[name].append(time.perf_counter() - started)
            server_cpu[name] += process_cpu(server_pid[name]) - server_before
            client_cpu[name] += time.process_time() - client_before
            sizes[name] = table.nbytes
            rows[name] = table.num_rows
    _, endpoints = lakegate_parallel(args.lakegate)
    whole = {name: count for name, count in rows.items()
             if name != "lakegate-policy" and not name.startswith("text")}
    assert len(set(whole.values())) == 1, rows
    (p50, p99), (floor_p50, floor_p99) = latency(args.lakegate, args.latency_queries)

    results = {"rows": rows, "endpoints": endpoints, "iterations": args.iterations, "variants": {}}
    for name in variants:
        median = statistics.median(seconds[name])
        results["variants"][name] = {
            "median_s": median,
            "mb_per_s": sizes[name] / median / 1e6,
            "bytes": sizes[name],
            "rows": rows[name],
            # Per scan, averaged over the iterations.
            "server_cpu_s": server_cpu[name] / args.iterations,
            "client_cpu_s": client_cpu[name] / args.iterations,
            "cores_busy": (server_cpu[name] + client_cpu[name]) / sum(seconds[name]),
        }
    for name, entry in results["variants"].items():
        if name.startswith("text"):  # another scan: no ceiling to compare
            continue
        for baseline in ("ceiling", "ceiling-parallel", "ceiling-parquet", "ceiling-cpp-parallel"):
            key = "vs_" + baseline.replace("-", "_")
            entry[key] = entry["mb_per_s"] / results["variants"][baseline]["mb_per_s"]
    # What sending classic types (the default) costs against sending the
    # view types DataFusion produces: time of one stream, classic / view.
    # (Times, not MB/s: the two kinds of arrays differ in size.)
    median_s = {name: entry["median_s"] for name, entry in results["variants"].items()}
    results["classic_types_cost"] = {
        "decoding": median_s["text"] / median_s["text-view-types"],
        "cached": median_s["text-cached"] / median_s["text-cached-view-types"],
    }
    wall, cpu = (float(v) for v in args.scan_in_process.split(","))
    results["scan_in_process"] = {"median_s": wall, "server_cpu_s": cpu}
    results["latency_ms"] = {
        "p50": p50,
        "p99": p99,
        "select_1_p50": floor_p50,
        "select_1_p99": floor_p99,
        "queries": args.latency_queries,
    }
    results["cores"] = os.cpu_count()
    with open(args.out, "w") as out:
        json.dump(results, out, indent=2)
    write_report(results, args.out)


def markdown(results):
    """The report of a run, as Markdown."""
    lines = []
    variants = results["variants"]
    iterations = results.get("iterations", 7)
    rows = results["rows"]
    lines.append(f"Full scan of dl_tpc_web_sales ({rows['lakegate']:,} rows), median of {iterations}, interleaved\n")
    lines.append("| variant | median s | MB/s | vs ceiling | vs ceiling-parallel | vs ceiling-parquet "
                 "| vs ceiling-cpp-parallel | server CPU s | client CPU s | cores busy |")
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, entry in variants.items():
        if name.startswith("text"):
            continue
        lines.append(
            f"| {name} | {entry['median_s']:.3f} | {entry['mb_per_s']:.0f} | {entry['vs_ceiling']:.2f} "
            f"| {entry['vs_ceiling_parallel']:.2f} | {entry['vs_ceiling_parquet']:.2f} "
            f"| {entry['vs_ceiling_cpp_parallel']:.2f} "
            f"| {entry['server_cpu_s']:.3f} | {entry['client_cpu_s']:.3f} | {entry['cores_busy']:.2f} |"
        )
    lines.append(f"\nA scan of text columns ({rows['text']:,} rows), one stream, median of {iterations}, "
                 "interleaved with the above\n")
    lines.append("| variant | median s | MB/s | server CPU s | client CPU s |")
    lines.append("| --- | ---: | ---: | ---: | ---: |")
    for name in ("text", "text-view-types", "text-cached", "text-cached-view-types"):
        entry = variants[name]
        lines.append(f"| {name} | {entry['median_s']:.3f} | {entry['mb_per_s']:.0f} "
                     f"| {entry['server_cpu_s']:.3f} | {entry['client_cpu_s']:.3f} |")
    cost = results["classic_types_cost"]
    lines.append(f"\nclassic types, time against view types (one stream of text): "
                 f"{cost['decoding']:.3f} decoding the files, {cost['cached']:.3f} from the table cache")
    if "cores" in results:
        lines.append(f"\ncores on this machine: {results['cores']}")
    lines.append(f"\nparallel endpoints: {results['endpoints']}\n")
    latency = results["latency_ms"]
    lines.append(f"ADBC `SELECT ... LIMIT 10`: p50 {latency['p50']:.2f} ms, p99 {latency['p99']:.2f} ms "
                 f"over {latency['queries']} queries\n")
    lines.append(f"ADBC `SELECT 1` (the round trips alone): p50 {latency['select_1_p50']:.2f} ms, "
                 f"p99 {latency['select_1_p99']:.2f} ms; LIMIT 10 adds "
                 f"{latency['p50'] - latency['select_1_p50']:.2f} ms at p50 "
                 f"({latency['p50'] / latency['select_1_p50']:.2f}x)\n")
    scan = results["scan_in_process"]
    lines.append(f"Lakegate's scan in process, no transport (median of {iterations}): "
                 f"{scan['median_s']:.3f} s, {scan['server_cpu_s']:.3f} CPU s per scan")
    return "\n".join(lines) + "\n"


# The wire targets of the chart: two endpoints from the table cache at
# 1.8 GB/s or more, with server CPU per GB 30 % below the 0.63 s measured
# before the copies were removed.
TARGET_MB_PER_S = 1800
TARGET_SERVER_S_PER_GB = 0.63 * 0.7


def chart(results, png_path):
    """Throughput and server CPU per GB of the full-scan variants, beside
    the wire targets. The row-filtered scan (5 % of the rows) is left out:
    its CPU per GB sent is of another scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name for name in results["variants"]
             if not name.startswith("text") and name not in ("parquet-local", "lakegate-policy")]
    entries = [results["variants"][name] for name in names]
    figure, (rate_axis, cpu_axis) = plt.subplots(1, 2, figsize=(13, 5.5))
    colors = ["tab:orange" if name.startswith("lakegate") else "tab:gray" for name in names]
    rates = [e["mb_per_s"] for e in entries]
    rate_axis.barh(names, rates, color=colors)
    rate_axis.axvline(TARGET_MB_PER_S, color="black", linewidth=0.8, linestyle="--",
                      label="target, two endpoints from the table cache")
    rate_axis.set_xlabel("MB/s of Arrow data (median)")
    rate_axis.invert_yaxis()
    per_gb = [e["server_cpu_s"] / e["bytes"] * 1e9 for e in entries]
    cpu_axis.barh(names, per_gb, color=colors)
    cpu_axis.axvline(TARGET_SERVER_S_PER_GB, color="black", linewidth=0.8, linestyle="--",
                     label="target, two endpoints from the table cache")
    cpu_axis.set_xlabel("server CPU seconds per GB sent")
    cpu_axis.invert_yaxis()
    cpu_axis.set_yticks(range(len(names)), [""] * len(names))
    for axis, values, form in ((rate_axis, rates, "{:.0f}"), (cpu_axis, per_gb, "{:.2f}")):
        for position, value in enumerate(values):
            axis.annotate(form.format(value), (value, position), xytext=(3, 0),
                          textcoords="offset points", va="center", fontsize=8)
        axis.legend(fontsize=8, loc="upper right")
        axis.margins(x=0.15)
    figure.suptitle(f"Full scan of dl_tpc_web_sales ({results['rows']['lakegate']:,} rows), "
                    f"{results.get('iterations', 7)} interleaved iterations")
    figure.tight_layout()
    figure.savefig(png_path, dpi=110)


def write_report(results, json_path):
    """Prints the report and writes it beside `json_path`: Markdown (.md)
    and the chart (.png)."""
    text = markdown(results)
    print("\n" + text)
    base = os.path.splitext(json_path)[0]
    with open(base + ".md", "w") as out:
        out.write(text)
    chart(results, base + ".png")


if __name__ == "__main__":
    main()
