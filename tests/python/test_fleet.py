"""A fleet: two `lakegate serve` processes sharing one key behind nginx
(`grpc_pass`, round robin). ADBC clients through the balancer get each
role's exact rows (DuckDB reads the files for the ground truth) while their
calls, tickets included, land on either server; at SIGTERM one server
drains (health checks NOT_SERVING, calls still served, then no new
connections), a stream it was running finishes, and the clients querying
through the balancer meanwhile never see a failure."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import duckdb
import pytest

from clients import query
from conftest import CATALOG, raw, serving_process

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

NGINX_CONF = """
worker_processes 1;
daemon off;
user root;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream lakegate {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port} http2;
        client_max_body_size 64m;
        location / {{
            grpc_pass grpc://lakegate;
            grpc_read_timeout 300s;
            grpc_send_timeout 300s;
            grpc_next_upstream error timeout;
        }}
    }}
}}
"""


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def nginx_in_front_of(addresses, directory):
    """nginx on a free loopback port, balancing gRPC over `addresses`
    (host:port); yields its grpc:// address."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    servers = "\n".join(f"        server {address} max_fails=1 fail_timeout=10s;" for address in addresses)
    conf = directory / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=directory, port=port, servers=servers))
    process = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(directory)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start: {process.stderr.read()}")
            time.sleep(0.05)
        yield f"grpc://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture()
def fleet(data_dir, tmp_path):
    """Two servers over the demo lake sharing one key (each auditing into
    its own directory, draining 2 s at SIGTERM), nginx in front; yields the
    balancer's address, the servers' processes and addresses, and their audit
    directories."""
    key = tmp_path / "fleet.key"
    key.write_bytes(os.urandom(48).hex().encode())
    with contextlib.ExitStack() as stack:
        servers = []
        for name in ["a", "b"]:
            audit = tmp_path / f"audit-{name}"
            command = ["serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir), "--catalog", CATALOG,
                       "--key-file", str(key),
                       "--audit-dir", str(audit), "--drain-seconds", "2", "--shutdown-grace", "30"]
            address, _, process = stack.enter_context(serving_process(command))
            servers.append((address, audit, process))
        balancer = stack.enter_context(
            nginx_in_front_of([address.removeprefix("grpc://") for address, _, _ in servers], tmp_path / "nginx"))
        yield balancer, servers


def calls(audit):
    path = audit / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_clients_through_the_balancer_get_each_role_exact_rows(fleet, data_dir):
    balancer, servers = fleet
    west_coast = duckdb.sql(
        f"SELECT ws_order_number, ws_item_sk FROM {raw(data_dir, 'dl_tpc_web_sales')} "
        f"WHERE ws_bill_addr_sk IN (SELECT ca_address_sk FROM {raw(data_dir, 'dl_tpc_customer_address')} "
        f"WHERE ca_state IN ('CA', 'OR', 'WA')) ORDER BY 1, 2").fetchall()
    electronics = duckdb.sql(
        f"SELECT i_item_sk FROM {raw(data_dir, 'dl_tpc_item')} WHERE i_category = 'Electronics' ORDER BY 1"
    ).fetchall()
    assert west_coast and electronics
    for _ in range(4):
        table = query(balancer, "tina", "SELECT ws_order_number, ws_item_sk FROM dl_tpc_web_sales")
        assert sorted(zip(table.column(0).to_pylist(), table.column(1).to_pylist())) == west_coast
        table = query(balancer, "tina", "SELECT i_item_sk FROM dl_tpc_item", role="electronics")
        assert sorted(table.column(0).to_pylist()) == [row[0] for row in electronics]
        with pytest.raises(Exception, match="does not exist or role 'marketing' may not read it"):
            query(balancer, "david", "SELECT * FROM dl_tpc_customer_address")
    # Both servers answered calls, and tickets crossed: a query planned on
    # one server (GetFlightInfo) had its ticket redeemed (DoGet) on the other.
    events = sorted((e["time"], server, e) for server, (_, audit, _) in enumerate(servers) for e in calls(audit))
    assert {server for _, server, _ in events} == {0, 1}, "both servers took calls"
    planned_on, crossed = {}, 0
    for _, server, event in events:
        key = (event["user"], event["statement"])
        if event["action"].startswith("GetFlightInfo/CommandPreparedStatementQuery"):
            planned_on[key] = server
        elif event["action"] == "DoGet/TicketStatementQuery" and planned_on.get(key, server) != server:
            crossed += 1
    assert crossed > 0, "no ticket was redeemed by the other server"


def test_a_draining_server_hands_its_calls_to_the_other(fleet):
    balancer, servers = fleet
    (first, _, process), _ = servers
    failures, answered, stop = [], [], threading.Event()

    def keep_querying():
        while not stop.is_set():
            try:
                table = query(balancer, "tina", "SELECT count(*) FROM dl_tpc_item", role="electronics")
                answered.append(table.column(0)[0].as_py())
            except Exception as error:  # noqa: BLE001 (every failure counts)
                failures.append(str(error))

    import pyarrow.flight as flight
    # A stream running on the first server since before the signal.
    client = flight.FlightClient(first)
    options = flight.FlightCallOptions(headers=[client.authenticate_basic_token("admin", "admin-pass")])
    reader = client.do_get(flight.Ticket(b"SELECT value FROM generate_series(1, 3000000)"), options)
    rows = reader.read_chunk().data.num_rows

    worker = threading.Thread(target=keep_querying)
    worker.start()
    time.sleep(1)
    process.send_signal(signal.SIGTERM)
    time.sleep(4)  # the drain (2 s), then the first server takes no new connections
    stop.set()
    worker.join(timeout=60)
    assert not failures, failures[:3]
    assert len(answered) > 4 and len(set(answered)) == 1
    # The running stream finishes whole, within the grace period.
    while True:
        try:
            rows += reader.read_chunk().data.num_rows
        except StopIteration:
            break
    assert rows == 3_000_000
    assert process.wait(timeout=30) == 0



@pytest.mark.skipif(not os.environ.get("LAKEGATE_TEST_POSTGRES"), reason="needs the test script's PostgreSQL")
def test_the_sign_in_throttle_holds_across_a_fleet_sharing_a_store(data_dir, tmp_path):
    """Two servers on one PostgreSQL store: failed sign-ins made on either
    count together, so five failures spread over both lock the user out of
    both, even with the right password; another user is not affected."""
    import uuid

    import pyarrow.flight as flight

    from test_administration import BOOTSTRAP, serve_store

    base = os.environ["LAKEGATE_TEST_POSTGRES"].rstrip("/")
    name = f"lakegate_fleet_{uuid.uuid4().hex[:12]}"
    subprocess.run(["psql", f"{base}/postgres", "-qc", f"CREATE DATABASE {name}"], check=True)
    store = f"{base}/{name}"
    try:
        with contextlib.ExitStack() as stack:
            addresses = [stack.enter_context(serve_store(data_dir, store, "--catalog", CATALOG, env=BOOTSTRAP))[0]
                         for _ in range(2)]

            def sign_in(address, user, password):
                flight.FlightClient(address).authenticate_basic_token(user, password)

            for attempt in range(5):
                with pytest.raises(flight.FlightUnauthenticatedError):
                    sign_in(addresses[attempt % 2], "tina", "wrong")
            for address in addresses:
                with pytest.raises(Exception, match="too many failed sign-in attempts"):
                    sign_in(address, "tina", "tina-pass")
                sign_in(address, "david", "david-pass")
    finally:
        subprocess.run(["psql", f"{base}/postgres", "-qc", f"DROP DATABASE {name} WITH (FORCE)"], check=True)
