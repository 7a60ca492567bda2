"""The demo scenario (DESIGN §4) through the ADBC Flight SQL driver against
the real server. Expected answers are computed by DuckDB from the raw Parquet
files, never by Lakegate."""

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import duckdb
import pytest

from clients import ROLE_HEADER, connect, query
from conftest import raw


def test_david_sees_customers_without_names_and_with_hashed_emails(server, data_dir):
    table = query(server, "david", "SELECT * FROM dl_tpc_customer")
    stored = duckdb.sql(f"SELECT * FROM {raw(data_dir, 'dl_tpc_customer')} LIMIT 0").columns
    hidden = {"c_salutation", "c_first_name", "c_last_name"}
    assert table.column_names == [c for c in stored if c not in hidden]
    assert table.schema.field("c_email_address").metadata == {b"lakegate.mask": b"hash"}

    expected = duckdb.sql(
        f"SELECT c_customer_sk, CASE WHEN c_email_address IS NULL THEN NULL ELSE sha256(c_email_address) END "
        f"FROM {raw(data_dir, 'dl_tpc_customer')} ORDER BY 1"
    ).fetchall()
    got = sorted(zip(table.column("c_customer_sk").to_pylist(), table.column("c_email_address").to_pylist()))
    assert got == expected


def test_david_is_denied_customer_address(server):
    with pytest.raises(Exception, match="does not exist or role 'marketing' may not read it"):
        query(server, "david", "SELECT * FROM dl_tpc_customer_address LIMIT 10")


def test_tina_as_sales_sees_west_coast_web_sales(server, data_dir):
    table = query(server, "tina", "SELECT ws_order_number, ws_item_sk FROM dl_tpc_web_sales")
    expected = duckdb.sql(
        f"SELECT ws_order_number, ws_item_sk FROM {raw(data_dir, 'dl_tpc_web_sales')} "
        f"WHERE ws_bill_addr_sk IN (SELECT ca_address_sk FROM {raw(data_dir, 'dl_tpc_customer_address')} "
        f"WHERE ca_state IN ('CA', 'OR', 'WA')) ORDER BY 1, 2"
    ).fetchall()
    assert len(expected) > 0
    assert sorted(zip(table.column(0).to_pylist(), table.column(1).to_pylist())) == expected


def test_tina_as_electronics_sees_electronics_items_only(server, data_dir):
    table = query(server, "tina", "SELECT i_item_sk, i_category FROM dl_tpc_item", role="electronics")
    expected = duckdb.sql(
        f"SELECT i_item_sk FROM {raw(data_dir, 'dl_tpc_item')} WHERE i_category = 'Electronics' ORDER BY 1"
    ).fetchall()
    assert sorted(table.column(0).to_pylist()) == [row[0] for row in expected]
    assert set(table.column(1).to_pylist()) == {"Electronics"}


def test_a_role_the_user_may_not_assume_is_refused(server):
    with pytest.raises(Exception, match="may not assume role 'marketing'"):
        query(server, "tina", "SELECT 1", role="marketing")


def test_wrong_password_and_unknown_user_are_refused_alike(server):
    messages = []
    for user, password in [("david", "wrong"), ("nobody", "wrong")]:
        with pytest.raises(Exception) as failure:
            with connect(server, user, password=password) as conn:
                conn.cursor().execute("SELECT 1")
        messages.append(str(failure.value))
    assert all("nauthenticated" in m or "UNAUTHENTICATED" in m for m in messages), messages


def test_plain_pyarrow_flight_with_sql_text(server, data_dir):
    """Notebooks without Flight SQL: a descriptor or a ticket that is SQL text."""
    import pyarrow.flight as flight

    client = flight.FlightClient(server)
    authorization = client.authenticate_basic_token("tina", "tina-pass")
    options = flight.FlightCallOptions(headers=[authorization, (b"x-lakegate-role", b"electronics")])

    descriptor = flight.FlightDescriptor.for_command(b"SELECT DISTINCT i_category FROM dl_tpc_item")
    info = client.get_flight_info(descriptor, options)
    assert len(info.endpoints) == 1
    table = client.do_get(info.endpoints[0].ticket, options).read_all()
    assert table.column(0).to_pylist() == ["Electronics"]

    table = client.do_get(flight.Ticket(b"SELECT count(*) AS n FROM dl_tpc_item"), options).read_all()
    expected = duckdb.sql(
        f"SELECT count(*) FROM {raw(data_dir, 'dl_tpc_item')} WHERE i_category = 'Electronics'"
    ).fetchone()[0]
    assert table.column("n").to_pylist() == [expected]

    # SQL text is refused like any statement the role may not run.
    with pytest.raises(flight.FlightUnauthorizedError, match="may not read it"):
        client.do_get(flight.Ticket(b"SELECT * FROM dl_tpc_web_sales"), options).read_all()
    # And an unauthenticated caller gets nothing.
    with pytest.raises(flight.FlightUnauthenticatedError):
        flight.FlightClient(server).do_get(flight.Ticket(b"SELECT 1")).read_all()


def test_adbc_get_info_reports_the_server(server):
    with connect(server, "david") as conn:
        info = conn.adbc_get_info()
    assert info["vendor_name"] == "Lakegate"
    assert info["vendor_version"]


def test_prepared_statement_with_a_parameter(server, data_dir):
    """The ADBC driver prepares every statement; parameters bind through DoPut."""
    with connect(server, "tina", role="electronics") as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT i_item_sk FROM dl_tpc_item WHERE i_item_sk < ? ORDER BY 1", parameters=(500,))
        got = cursor.fetch_arrow_table().column(0).to_pylist()
        # The same prepared text with another value, on the same cursor.
        cursor.execute("SELECT i_item_sk FROM dl_tpc_item WHERE i_item_sk < ? ORDER BY 1", parameters=(100,))
        fewer = cursor.fetch_arrow_table().column(0).to_pylist()
    expected = duckdb.sql(
        f"SELECT i_item_sk FROM {raw(data_dir, 'dl_tpc_item')} "
        f"WHERE i_category = 'Electronics' AND i_item_sk < 500 ORDER BY 1"
    ).fetchall()
    assert got == [row[0] for row in expected]
    assert fewer == [sk for sk in got if sk < 100]


def test_get_objects_and_table_schema_show_only_what_the_role_may_describe(server, data_dir):
    with connect(server, "david") as conn:
        objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
        schema = conn.adbc_get_table_schema("dl_tpc_customer", db_schema_filter="tpc")
    tables = {
        table["table_name"]: [column["column_name"] for column in table["table_columns"]]
        for catalog in objects
        for db_schema in catalog["catalog_db_schemas"]
        for table in db_schema["db_schema_tables"]
    }
    assert "dl_tpc_customer_address" not in tables
    assert "dl_tpc_customer" in tables
    hidden = {"c_salutation", "c_first_name", "c_last_name"}
    assert not hidden & set(tables["dl_tpc_customer"])
    assert schema.names == tables["dl_tpc_customer"]
    assert schema.field("c_email_address").metadata[b"lakegate.mask"] == b"hash"


def test_a_ticket_replayed_by_another_user_is_refused(server):
    import pyarrow.flight as flight

    def signed_in(user):
        client = flight.FlightClient(server)
        authorization = client.authenticate_basic_token(user, f"{user}-pass")
        return client, flight.FlightCallOptions(headers=[authorization])

    david, david_options = signed_in("david")
    info = david.get_flight_info(flight.FlightDescriptor.for_command(b"SELECT c_customer_sk FROM dl_tpc_customer"), david_options)
    ticket = info.endpoints[0].ticket
    assert david.do_get(ticket, david_options).read_all().num_rows > 0
    tina, tina_options = signed_in("tina")
    with pytest.raises(flight.FlightUnauthorizedError, match="issued to another user"):
        tina.do_get(ticket, tina_options).read_all()


def test_an_expired_token_is_refused(data_dir):
    import time

    import pyarrow.flight as flight

    from conftest import start_server

    with start_server(data_dir, "--token-ttl", "1") as address:
        client = flight.FlightClient(address)
        authorization = client.authenticate_basic_token("david", "david-pass")
        options = flight.FlightCallOptions(headers=[authorization])
        assert client.do_get(flight.Ticket(b"SELECT 1 AS one"), options).read_all().num_rows == 1
        time.sleep(2.1)
        with pytest.raises(flight.FlightUnauthenticatedError):
            client.do_get(flight.Ticket(b"SELECT 1 AS one"), options).read_all()


def test_use_persists_with_the_cookie_middleware(server):
    """USE (and the `schema` session option) survive across calls of one
    connection when the client keeps cookies."""
    with flight_sql.connect(
        server,
        db_kwargs={
            adbc_driver_manager.DatabaseOptions.USERNAME.value: "david",
            adbc_driver_manager.DatabaseOptions.PASSWORD.value: "david-pass",
            "adbc.flight.sql.rpc.with_cookie_middleware": "true",
        },
        autocommit=True,
    ) as conn:
        assert conn.adbc_current_catalog == "lakegate"
        conn.adbc_current_db_schema = "tpc"
        assert conn.adbc_current_db_schema == "tpc"
        cursor = conn.cursor()
        cursor.execute("USE tpc")
        cursor.fetchall()
        cursor.execute("SELECT count(*) FROM dl_tpc_customer")
        assert cursor.fetchone()[0] > 0


def test_32_concurrent_clients_with_mixed_roles_get_only_their_own_rows(server, data_dir):
    """Each client checks its own answer; they run at the same time."""
    from concurrent.futures import ThreadPoolExecutor

    item = raw(data_dir, "dl_tpc_item")
    sales = raw(data_dir, "dl_tpc_web_sales")
    address = raw(data_dir, "dl_tpc_customer_address")
    expected = {
        ("tina", "electronics"): duckdb.sql(f"SELECT count(*) FROM {item} WHERE i_category = 'Electronics'").fetchone()[0],
        ("tina", "sales"): duckdb.sql(
            f"SELECT count(*) FROM {sales} WHERE ws_bill_addr_sk IN "
            f"(SELECT ca_address_sk FROM {address} WHERE ca_state IN ('CA', 'OR', 'WA'))"
        ).fetchone()[0],
        ("admin", None): duckdb.sql(f"SELECT count(*) FROM {item}").fetchone()[0],
    }
    table_of = {("tina", "electronics"): "dl_tpc_item", ("tina", "sales"): "dl_tpc_web_sales", ("admin", None): "dl_tpc_item"}
    clients = [list(expected)[i % len(expected)] for i in range(32)]

    def run(client):
        user, role = client
        with connect(server, user, role=role) as conn:
            cursor = conn.cursor()
            answers = []
            for _ in range(3):
                cursor.execute(f"SELECT count(*) FROM {table_of[client]}")
                answers.append(cursor.fetchone()[0])
            return client, answers

    with ThreadPoolExecutor(max_workers=32) as pool:
        for client, answers in pool.map(run, clients):
            assert answers == [expected[client]] * 3, client


PARALLEL_HEADER = "adbc.flight.sql.rpc.call_header.x-lakegate-parallel"


def read_in_parts(server, user, sql, role=None):
    """adbc_execute_partitions on one connection, each part read on a new one."""
    options = {PARALLEL_HEADER: "true"}
    with connect(server, user, role=role, extra=options) as conn:
        partitions, _schema = conn.cursor().adbc_execute_partitions(sql)
    tables = []
    for partition in partitions:
        with connect(server, user, role=role) as reader:
            cursor = reader.cursor()
            cursor.adbc_read_partition(partition)
            tables.append(cursor.fetch_arrow_table())
    return partitions, tables


def test_parallel_endpoints_reassemble_the_single_stream_result(server):
    import os

    import pyarrow as pa

    sql = "SELECT ws_order_number, ws_item_sk, ws_net_paid FROM dl_tpc_web_sales"
    for user, role in [("admin", None), ("tina", "sales")]:
        partitions, tables = read_in_parts(server, user, sql, role=role)
        whole = query(server, user, sql, role=role)
        parts = pa.concat_tables(tables)
        assert sorted(parts.to_pylist(), key=str) == sorted(whole.to_pylist(), key=str), user
        if user == "admin" and (os.cpu_count() or 1) >= 2:
            # Four files, at least two cores: the scan splits.
            assert len(partitions) >= 2

    # ORDER BY: one endpoint, in order.
    partitions, tables = read_in_parts(server, "admin", sql + " ORDER BY ws_order_number, ws_item_sk")
    assert len(partitions) == 1
    keys = list(zip(tables[0].column(0).to_pylist(), tables[0].column(1).to_pylist()))
    assert keys == sorted(keys)


def test_tls(data_dir, tmp_path):
    """--tls-cert/--tls-key: clients that trust the certificate connect over
    grpc+tls; a plain-text client gets nowhere, and a client that connects
    and never starts the handshake is disconnected after 10 s."""
    import socket
    import subprocess
    import time

    import pyarrow.flight as flight

    from conftest import start_server

    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    with start_server(data_dir, "--tls-cert", str(cert), "--tls-key", str(key)) as address:
        assert address.startswith("grpc+tls://")
        location = address.replace("127.0.0.1", "localhost")
        host, port = address.removeprefix("grpc+tls://").rsplit(":", 1)
        silent = socket.create_connection((host, int(port)))
        connected = time.monotonic()
        client = flight.FlightClient(location, tls_root_certs=cert.read_bytes())
        options = flight.FlightCallOptions(headers=[client.authenticate_basic_token("david", "david-pass")])
        assert client.do_get(flight.Ticket(b"SELECT 1 AS one"), options).read_all().num_rows == 1

        with flight_sql.connect(location, db_kwargs={
            adbc_driver_manager.DatabaseOptions.USERNAME.value: "david",
            adbc_driver_manager.DatabaseOptions.PASSWORD.value: "david-pass",
            "adbc.flight.sql.client_option.tls_root_certs": cert.read_text(),
        }, autocommit=True) as conn:
            cursor = conn.cursor()
            cursor.execute("SELECT count(*) FROM dl_tpc_customer")
            assert cursor.fetchone()[0] > 0

        plain = flight.FlightClient(location.replace("grpc+tls://", "grpc://"))
        with pytest.raises(flight.FlightError):
            plain.authenticate_basic_token("david", "david-pass")

        # The silent client: the server closes the connection (an empty
        # read) once the handshake time is over, not before.
        silent.settimeout(20)
        assert silent.recv(1) == b""
        waited = time.monotonic() - connected
        assert 9 < waited < 15, waited
        silent.close()


def serving_a_running_query(data_dir, audit_dir, grace):
    """Starts `lakegate serve` with `--shutdown-grace grace`, auditing into
    `audit_dir`, and a query that runs for ages: the process and the open
    result stream (its first batch read)."""
    import re
    import subprocess

    import pyarrow.flight as flight

    from conftest import BINARY, CATALOG

    process = subprocess.Popen(
        [BINARY, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir), "--catalog", CATALOG,
         "--audit-dir", str(audit_dir), "--shutdown-grace", str(grace)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        address = re.search(r"(grpc://\S+)", process.stdout.readline()).group(1)
        client = flight.FlightClient(address)
        options = flight.FlightCallOptions(headers=[client.authenticate_basic_token("admin", "admin-pass")])
        reader = client.do_get(flight.Ticket(b"SELECT value FROM generate_series(1, 10000000000)"), options)
        reader.read_chunk()  # the query is running
    except BaseException:
        process.kill()
        raise
    return process, reader


def test_shutdown_ends_running_streams_and_keeps_the_audit_log(data_dir, tmp_path):
    """SIGTERM: the server stops taking calls, gives running queries
    --shutdown-grace seconds, then ends their streams and exits; the audit
    log has the cancelled read."""
    import json
    import time

    import pyarrow.flight as flight

    audit_dir = tmp_path / "audit"
    process, reader = serving_a_running_query(data_dir, audit_dir, grace=1)
    try:
        started = time.monotonic()
        process.terminate()
        assert process.wait(timeout=30) == 0
        assert time.monotonic() - started < 15
        with pytest.raises(flight.FlightError):
            while True:
                reader.read_chunk()
    finally:
        if process.poll() is None:
            process.kill()
    events = [json.loads(line) for line in (audit_dir / "audit.jsonl").read_text().splitlines()]
    reads = [e for e in events if e["statement"] and "generate_series" in e["statement"]]
    assert reads and reads[-1]["outcome"] in ("error", "cancelled"), reads
    assert reads[-1]["rows"] > 0


def test_a_second_signal_stops_at_once_with_the_audit_log_synced(data_dir, tmp_path):
    """SIGINT (Ctrl-C) during a long grace period: the server waits; a second
    SIGINT stops it at once, the audit log written."""
    import json
    import signal
    import time

    audit_dir = tmp_path / "audit"
    process, _reader = serving_a_running_query(data_dir, audit_dir, grace=600)
    try:
        process.send_signal(signal.SIGINT)
        assert "shutting down" in process.stdout.readline()
        time.sleep(1)
        assert process.poll() is None, "the first signal waits for running queries"
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130
        assert time.monotonic() - started < 10
    finally:
        if process.poll() is None:
            process.kill()
    events = [json.loads(line) for line in (audit_dir / "audit.jsonl").read_text().splitlines()]
    assert any(e["action"] == "Handshake" and e["user"] == "admin" for e in events), events
