"""One schema per statement, through real clients: every scalar function
DataFusion registers, called with literal arguments of a fitting type, and a
set of expression shapes, return through ADBC and pyarrow.flight with exactly
the schema the server advertised (names, types, nullability, metadata), in
FlightInfo, in a prepared statement's dataset schema and in the stream; and
every result is one pyarrow's compute kernels and pandas take."""

import re

import adbc_driver_manager
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight
import pytest

from clients import connect

# A literal of each kind of type, cast to the exact type a signature names.
BASE_LITERALS = [
    (re.compile(r"^(U?Int\d+|Float\d+)$"), "7"),
    (re.compile(r"^Decimal\d*\((\d+), (-?\d+)\)$"), "1.5"),
    (re.compile(r"^(Large)?Utf8(View)?$"), "'abc'"),
    (re.compile(r"^(Large|FixedSize)?Binary(View)?"), "X'616263'"),
    (re.compile(r"^Boolean$"), "true"),
    (re.compile(r"^Date(32|64)$"), "DATE '2020-01-02'"),
    (re.compile(r"^Time(32|64)"), "TIME '03:04:05'"),
    (re.compile(r"^Timestamp"), "TIMESTAMP '2020-01-02 03:04:05'"),
    (re.compile(r"^Interval"), "INTERVAL '1 day'"),
    (re.compile(r"^Duration"), "arrow_cast(1, 'Duration(Second)')"),
    (re.compile(r"^(Large)?List"), "make_array(1, 2)"),
]

# Tried for functions whose signatures name no example types.
FALLBACK_ARGUMENTS = ["", "1", "'abc'", "1.5", "1, 2", "'abc', 'b'", "'abc', 1", "make_array(1, 2)",
                      "make_array(1, 2), 1", "TIMESTAMP '2020-01-02 03:04:05'", "'day', TIMESTAMP '2020-01-02 03:04:05'",
                      "DATE '2020-01-02'", "named_struct('a', 1)", "map(['a'], [1])", "true"]

# Expression shapes clients and BI tools send on their own.
EXPRESSIONS = [
    "SELECT version()", "SELECT current_date", "SELECT current_user()", "SELECT current_role()",
    "SELECT make_array(1, 2)", "SELECT named_struct('a', 1)", "SELECT arrow_typeof(1)", "SELECT 1",
    "SELECT NULL", "SELECT 1 UNION ALL SELECT NULL", "SELECT CASE WHEN 1 > 0 THEN 'a' END",
    "SELECT coalesce(NULL, 1)", "SELECT now()", "SELECT 'a' || 'b'", "SELECT [1, 2, 3]",
    "SELECT struct(1, 'a')", "SELECT * FROM (VALUES (1, 'a'), (2, NULL)) AS t(x, y)",
    "SELECT c_email_address, c_customer_sk FROM dl_tpc_customer LIMIT 3",
    "SELECT count(*), max(c_email_address) FROM dl_tpc_customer",
    "SELECT c_birth_country, count(*) FROM dl_tpc_customer GROUP BY 1",
    "SELECT * FROM dl_tpc_customer LIMIT 0",
]


def literal(type_name):
    for pattern, base in BASE_LITERALS:
        if pattern.match(type_name):
            cast_to = re.sub(r"^Decimal\(", "Decimal128(", type_name)
            return f"arrow_cast({base}, '{cast_to}')"
    return None


def calls(server):
    """(function, argument list) candidates, from the server's own catalogue."""
    with connect(server, "admin") as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT DISTINCT routine_name FROM information_schema.routines WHERE function_type = 'SCALAR'")
        names = sorted(row[0] for row in cursor.fetchall())
        cursor.execute(
            "SELECT specific_name, rid, ordinal_position, data_type FROM information_schema.parameters "
            "WHERE parameter_mode = 'IN' ORDER BY specific_name, rid, ordinal_position"
        )
        examples = {}
        for name, rid, _, data_type in cursor.fetchall():
            examples.setdefault(name, {}).setdefault(rid, []).append(literal(data_type))
    for name in names:
        signatures = [args for args in examples.get(name, {}).values() if None not in args]
        candidates = [", ".join(args) for args in signatures[:3]] or FALLBACK_ARGUMENTS
        yield name, candidates


def compute_on(table):
    """What a notebook does next with a result: pyarrow compute kernels fit
    for each column's type, and pandas. Raises when a type the server sent
    is one the kernels do not take."""
    for column in table.columns:
        kind = column.type
        pc.count(column)
        table.filter(pc.is_valid(column))
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            pc.utf8_upper(column)
            pc.match_substring(column, "a")
            pc.unique(column)
        elif pa.types.is_float16(kind):
            # pyarrow has no half-float kernels: a client widens first.
            pc.sum(pc.cast(column, pa.float32()))
        elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
            pc.sum(column)
            pc.min_max(column)
        elif pa.types.is_temporal(kind) and not pa.types.is_interval(kind):
            pc.min_max(column)
        elif pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            pc.binary_length(column)
        elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
            pc.list_value_length(column)
    # pandas keeps times of day as datetime.time (microseconds): a time with
    # nanoseconds (current_time()) must be cut to microseconds first.
    for i, field in enumerate(table.schema):
        if pa.types.is_time64(field.type) and field.type.unit == "ns":
            micros = pc.cast(table.column(i), pa.time64("us"), safe=False)
            table = table.set_column(i, field.name, micros)
    table.to_pandas()


def flight_schemas(client, options, sql):
    """The schema FlightInfo advertises and the schema the stream carries."""
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()), options)
    reader = client.do_get(info.endpoints[0].ticket, options)
    reader.read_all()
    return info.schema, reader.schema


def test_every_function_and_expression_returns_the_schema_it_advertised(server):
    client = flight.FlightClient(server)
    options = flight.FlightCallOptions(headers=[client.authenticate_basic_token("david", "david-pass")])
    statements = list(EXPRESSIONS)
    for name, candidates in calls(server):
        statements.extend(f'SELECT "{name}"({arguments}) AS v' for arguments in candidates)
    answered, mismatched, internal, unusable = 0, [], [], []
    with connect(server, "david") as conn:
        cursor = conn.cursor()
        for sql in statements:
            # ADBC checks the stream against FlightInfo itself ("inconsistent schema").
            try:
                cursor.execute(sql)
                table = cursor.fetch_arrow_table()
            except adbc_driver_manager.Error as error:
                if "inconsistent schema" in str(error):
                    mismatched.append((sql, str(error)))
                elif str(error).startswith("INTERNAL:"):
                    internal.append((sql, str(error)))
                continue
            answered += 1
            try:
                compute_on(table)
            except (pa.ArrowException, NotImplementedError) as error:
                unusable.append((sql, str(table.schema), str(error)))
            advertised, streamed = flight_schemas(client, options, sql)
            if not (advertised.equals(streamed, check_metadata=True) and table.schema.equals(streamed, check_metadata=True)):
                mismatched.append((sql, f"{advertised} / {streamed} / {table.schema}"))
            # A prepared statement's dataset schema is the same one.
            cursor.adbc_prepare(sql)
            prepared = cursor.adbc_execute_schema(sql)
            if not prepared.equals(streamed, check_metadata=True):
                mismatched.append((sql, f"prepared {prepared} / {streamed}"))
    assert not mismatched, mismatched[:5]
    assert not internal, internal[:5]
    assert not unusable, unusable[:5]
    # Most functions answer with one of their candidate argument lists.
    assert answered > 250, answered


@pytest.mark.parametrize("sql", ["SELECT version()", "SELECT current_date", "SELECT current_user()"])
def test_parallel_endpoints_carry_the_advertised_schema(server, sql):
    client = flight.FlightClient(server)
    headers = [client.authenticate_basic_token("tina", "tina-pass"), (b"x-lakegate-parallel", b"true")]
    options = flight.FlightCallOptions(headers=headers)
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()), options)
    for endpoint in info.endpoints:
        reader = client.do_get(endpoint.ticket, options)
        reader.read_all()
        assert reader.schema.equals(info.schema, check_metadata=True)
