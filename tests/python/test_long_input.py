"""Long and deep statements through every entry of the real server: 100,000-term
OR chains and IN lists answer correctly (checked against DuckDB over the raw
files, under the role's policy), nesting past the documented limit and
statements past the size limit are refused with INVALID_ARGUMENT naming the
limit, and the server goes on serving after each."""

import subprocess

import duckdb
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from clients import ROLE_HEADER, connect, query
from conftest import BINARY, CATALOG, raw

TERMS = 100_000


def or_chain(column, values):
    return " OR ".join(f"{column} = {v}" for v in values)


# What the chains below select, as DuckDB reads it fast (DuckDB itself takes
# minutes over a 100,000-term OR chain).
ORDERS_IN_CHAIN = f"ws_order_number BETWEEN 1 AND {TERMS}"


def sales_orders_expected(data_dir, where):
    """The count tina as `sales` must see: her row filter (bill-to addresses
    in CA, OR, WA) and `where`, computed by DuckDB from the raw files."""
    return duckdb.sql(
        f"SELECT count(*) FROM {raw(data_dir, 'dl_tpc_web_sales')} "
        f"WHERE ws_bill_addr_sk IN (SELECT ca_address_sk FROM {raw(data_dir, 'dl_tpc_customer_address')} "
        f"WHERE ca_state IN ('CA', 'OR', 'WA')) AND ({where})"
    ).fetchall()[0][0]


def assert_still_serving(server):
    assert query(server, "david", "SELECT 1 AS one").column("one").to_pylist() == [1]


def test_a_100000_term_or_chain_answers_under_a_row_filter(server, data_dir):
    where = or_chain("ws_order_number", range(1, TERMS + 1))
    got = query(server, "tina", f"SELECT count(*) AS n FROM dl_tpc_web_sales WHERE {where}")
    expected = sales_orders_expected(data_dir, ORDERS_IN_CHAIN)
    assert expected > 0
    assert got.column("n").to_pylist() == [expected]
    assert_still_serving(server)


def test_a_100000_value_in_list_answers(server, data_dir):
    values = ", ".join(str(v) for v in range(1, TERMS + 1))
    got = query(server, "admin", f"SELECT count(*) AS n FROM dl_tpc_customer WHERE c_customer_sk IN ({values})")
    expected = duckdb.sql(
        f"SELECT count(*) FROM {raw(data_dir, 'dl_tpc_customer')} WHERE c_customer_sk <= {TERMS}"
    ).fetchall()[0][0]
    assert got.column("n").to_pylist() == [expected]


def test_a_prepared_100000_term_chain_with_a_parameter_answers(server, data_dir):
    where = or_chain("ws_order_number", range(1, TERMS + 1))
    with connect(server, "tina") as conn:
        cursor = conn.cursor()
        cursor.execute(f"SELECT count(*) AS n FROM dl_tpc_web_sales WHERE ({where}) AND ws_quantity > ?", parameters=(50,))
        got = cursor.fetch_arrow_table()
    expected = sales_orders_expected(data_dir, f"{ORDERS_IN_CHAIN} AND ws_quantity > 50")
    assert got.column("n").to_pylist() == [expected]


def test_plain_flight_descriptor_and_ticket_take_long_statements(server, data_dir):
    where = or_chain("ws_order_number", range(1, TERMS + 1))
    sql = f"SELECT count(*) AS n FROM dl_tpc_web_sales WHERE {where}".encode()
    client = flight.FlightClient(server)
    options = flight.FlightCallOptions(headers=[client.authenticate_basic_token("tina", "tina-pass")])
    expected = sales_orders_expected(data_dir, ORDERS_IN_CHAIN)
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql), options)
    from_descriptor = client.do_get(info.endpoints[0].ticket, options).read_all()
    from_ticket = client.do_get(flight.Ticket(sql), options).read_all()
    assert from_descriptor.column("n").to_pylist() == [expected]
    assert from_ticket.column("n").to_pylist() == [expected]
    assert from_descriptor.schema == info.schema


def test_the_query_command_reads_a_long_statement_from_standard_input(data_dir):
    values = ", ".join(str(v) for v in range(1, TERMS + 1))
    sql = f"SELECT count(*) AS n FROM dl_tpc_customer WHERE c_customer_sk IN ({values})"
    printed = subprocess.run(
        [BINARY, "query", "--catalog", CATALOG, "--data-dir", str(data_dir), "--user", "admin", "--format", "csv", "-"],
        input=sql,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    expected = duckdb.sql(
        f"SELECT count(*) FROM {raw(data_dir, 'dl_tpc_customer')} WHERE c_customer_sk <= {TERMS}"
    ).fetchall()[0][0]
    assert printed.split() == ["n", str(expected)]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT " + "(" * 400 + "1" + ")" * 400,
        "SELECT " + "abs(" * 400 + "1" + ")" * 400,
        "SELECT " + " - ".join(["1"] * 400),
        "SELECT * FROM " + "(SELECT * FROM " * 300 + "dl_tpc_item" + ") AS t" * 300,
    ],
    ids=["parentheses", "function calls", "minus chain", "subqueries"],
)
def test_nesting_past_the_limit_is_refused_naming_it(server, sql):
    with pytest.raises(Exception, match="INVALID_ARGUMENT|InvalidArgument|Invalid argument") as refused:
        query(server, "admin", sql)
    assert "256 levels" in str(refused.value)
    assert_still_serving(server)


def test_a_statement_past_the_size_limit_is_refused_before_it_is_read(server):
    sql = "SELECT 1 -- " + "x" * (9 * 1024 * 1024)
    with pytest.raises(Exception, match="bytes") as refused:
        query(server, "admin", sql)
    message = str(refused.value)
    assert "INVALID_ARGUMENT" in message or "Invalid argument" in message or "InvalidArgument" in message, message
    assert_still_serving(server)
