"""Every Flight call, as real clients make it: a misspelt Lakegate header is
refused, ListFlights and GetSchema answer under the caller's role, a table
path is a descriptor, executemany on a query says why it cannot, the
flightsql-dbapi client works, and every call leaves an audit line with the
role asked for or defaulted to."""

import json

import adbc_driver_manager
import duckdb
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from clients import connect
from conftest import raw, start_server


@pytest.fixture(scope="module")
def audited(data_dir, tmp_path_factory):
    """A server with its own audit log: (address, audit file)."""
    audit_dir = tmp_path_factory.mktemp("audit")
    with start_server(data_dir, "--audit-dir", str(audit_dir)) as address:
        yield address, audit_dir / "audit.jsonl"


# What pyarrow raises for a refused call: INVALID_ARGUMENT and UNIMPLEMENTED
# become ArrowInvalid and ArrowNotImplementedError, the others FlightErrors.
REFUSED = (flight.FlightError, pa.ArrowException)


def signed_in(address, user, *headers):
    client = flight.FlightClient(address)
    authorization = client.authenticate_basic_token(user, f"{user}-pass")
    return client, flight.FlightCallOptions(headers=[authorization, *headers])


def forged_ticket():
    """A Flight SQL statement ticket whose handle this server never sealed."""
    type_url = b"type.googleapis.com/arrow.flight.protocol.sql.TicketStatementQuery"
    handle = b"lg1.forged"
    value = bytes([0x0A, len(handle)]) + handle
    return bytes([0x0A, len(type_url)]) + type_url + bytes([0x12, len(value)]) + value


def audit_events(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_an_unknown_lakegate_header_is_refused_naming_the_known_ones(server):
    client, options = signed_in(server, "tina", (b"x-lakegate-rol", b"electronics"))
    with pytest.raises(REFUSED, match="unknown header 'x-lakegate-rol'.*x-lakegate-role"):
        client.do_get(flight.Ticket(b"SELECT 1"), options).read_all()
    extra = {"adbc.flight.sql.rpc.call_header.x-lakegate-rol": "electronics"}
    with pytest.raises(adbc_driver_manager.Error, match="INVALID_ARGUMENT.*x-lakegate-rol"):
        with connect(server, "tina", extra=extra) as conn:
            conn.cursor().execute("SELECT 1")


def test_list_flights_names_the_roles_tables_and_their_paths_answer(server, data_dir):
    client, options = signed_in(server, "tina", (b"x-lakegate-role", b"electronics"))
    listed = {tuple(p.decode() for p in info.descriptor.path): info for info in client.list_flights(options=options)}
    with connect(server, "tina", role="electronics") as conn:
        objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
    expected = {
        (schema["db_schema_name"], table["table_name"])
        for catalog in objects for schema in catalog["catalog_db_schemas"] for table in schema["db_schema_tables"]
    }
    assert set(listed) == expected and expected
    # A path descriptor is a query of the whole table under the role.
    info = client.get_flight_info(flight.FlightDescriptor.for_path("tpc", "dl_tpc_item"), options)
    assert info.schema.equals(listed[("tpc", "dl_tpc_item")].schema)
    table = client.do_get(info.endpoints[0].ticket, options).read_all()
    electronics = duckdb.sql(
        f"SELECT count(*) FROM {raw(data_dir, 'dl_tpc_item')} WHERE i_category = 'Electronics'"
    ).fetchone()[0]
    assert table.num_rows == electronics
    with pytest.raises(REFUSED, match=r"\[database, table\]"):
        client.get_flight_info(flight.FlightDescriptor.for_path("lakegate", "tpc", "dl_tpc_item"), options)
    with pytest.raises(REFUSED, match="ListFlights takes no criteria"):
        list(client.list_flights(b"tpc", options))


def test_get_schema_is_the_schema_get_flight_info_advertises(server):
    client, options = signed_in(server, "david")
    for descriptor in [
        flight.FlightDescriptor.for_command(b"SELECT c_customer_sk, c_email_address FROM dl_tpc_customer"),
        flight.FlightDescriptor.for_path("tpc", "dl_tpc_customer"),
    ]:
        schema = client.get_schema(descriptor, options).schema
        info = client.get_flight_info(descriptor, options)
        assert schema.equals(info.schema, check_metadata=True)
    # The role's view: david's e-mails are hashed, names not there at all.
    schema = client.get_schema(flight.FlightDescriptor.for_path("tpc", "dl_tpc_customer"), options).schema
    assert "c_first_name" not in schema.names
    assert schema.field("c_email_address").metadata[b"lakegate.mask"] == b"hash"
    with pytest.raises(Exception, match="unauthorized.*may not read it"):
        client.get_schema(flight.FlightDescriptor.for_command(b"SELECT * FROM dl_tpc_web_sales"), options)


def test_executemany_on_a_query_says_why_and_how(server):
    with connect(server, "david") as conn:
        cursor = conn.cursor()
        with pytest.raises(adbc_driver_manager.Error, match="would discard its rows.*execute it as a query"):
            cursor.executemany("SELECT c_customer_sk FROM dl_tpc_customer WHERE c_customer_sk = ?", [(1,), (2,)])
        # What it says to do works: the rows bound, executed as a query.
        cursor.adbc_prepare("SELECT c_customer_sk FROM dl_tpc_customer WHERE c_customer_sk = ?")
        cursor.execute(
            "SELECT c_customer_sk FROM dl_tpc_customer WHERE c_customer_sk = ?",
            pa.record_batch([pa.array([1, 2], pa.int64())], names=["0"]),
        )
        assert sorted(row[0] for row in cursor.fetchall()) == [1, 2]


def test_unsupported_calls_say_so(server):
    client, options = signed_in(server, "david")
    descriptor = flight.FlightDescriptor.for_command(b"SELECT 1")
    with pytest.raises(REFUSED, match="DoExchange is not supported"):
        writer, reader = client.do_exchange(descriptor, options)
        reader.read_chunk()


def test_the_flightsql_dbapi_client(server, data_dir):
    from flightsql import FlightSQLClient, connect as dbapi_connect

    host, port = server.removeprefix("grpc://").rsplit(":", 1)
    client = FlightSQLClient(host=host, port=int(port), user="tina", password="tina-pass", insecure=True,
                             metadata={"x-lakegate-role": "electronics"})
    conn = dbapi_connect(client)
    cursor = conn.cursor()
    cursor.execute("SELECT i_category, count(*) AS n FROM dl_tpc_item GROUP BY i_category")
    rows = cursor.fetchall()
    expected = duckdb.sql(
        f"SELECT i_category, count(*) FROM {raw(data_dir, 'dl_tpc_item')} WHERE i_category = 'Electronics' "
        "GROUP BY 1"
    ).fetchall()
    assert [tuple(r) for r in rows] == expected
    assert [d[0] for d in cursor.description] == ["i_category", "n"]
    with pytest.raises(Exception, match="may not read it"):
        cursor.execute("SELECT * FROM dl_tpc_web_sales")
    conn.close()


def test_every_call_is_audited_with_the_role_asked_for_or_defaulted_to(audited):
    address, log = audited
    client, options = signed_in(address, "tina")
    list(client.list_flights(options=options))
    client.get_schema(flight.FlightDescriptor.for_command(b"SELECT 1"), options)
    # Refused before any role is chosen: a forged ticket, invalid SQL, a
    # misspelt header; each recorded under the role tina runs as by default.
    with pytest.raises(REFUSED):
        client.do_get(flight.Ticket(forged_ticket()), options).read_all()
    with pytest.raises(REFUSED):
        client.get_flight_info(flight.FlightDescriptor.for_command(b"SELEC 1"), options)
    _, misspelt = signed_in(address, "tina", (b"x-lakegate-rol", b"electronics"))
    with pytest.raises(REFUSED):
        client.get_flight_info(flight.FlightDescriptor.for_command(b"SELECT 2"), misspelt)
    _, electronics = signed_in(address, "tina", (b"x-lakegate-role", b"electronics"))
    with pytest.raises(REFUSED):
        client.get_flight_info(flight.FlightDescriptor.for_command(b"SELEC 3"), electronics)

    events = audit_events(log)
    actions = {e["action"] for e in events}
    assert {"Handshake", "ListFlights", "GetSchema"} <= actions, actions
    failed = [e for e in events if e["outcome"] != "ok"]
    ticket = next(e for e in failed if e["action"] == "DoGet/TicketStatementQuery")
    assert (ticket["user"], ticket["role"]) == ("tina", "sales")
    invalid = next(e for e in failed if e["statement"] == "SELEC 1")
    assert (invalid["role"], invalid["error_code"]) == ("sales", "INVALID_ARGUMENT")
    header = next(e for e in failed if "unknown header" in (e["error"] or ""))
    assert header["user"] == "tina"
    asked = next(e for e in failed if e["statement"] == "SELEC 3")
    assert asked["role"] == "electronics"
