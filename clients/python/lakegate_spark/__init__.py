"""A PySpark 4 Python data source for Lakegate.

    from lakegate_spark import LakegateDataSource
    spark.dataSource.register(LakegateDataSource)
    frame = (spark.read.format("lakegate")
             .option("uri", "grpc://lakegate.example:50051")
             .option("username", "tina").option("password", "...")
             .option("role", "sales")
             .load("SELECT * FROM tpc.dl_tpc_web_sales"))

The driver signs in, asks Lakegate for the query's parallel endpoints
(`x-lakegate-parallel: true`) and gives each to one Spark partition; each
task redeems its ticket with DoGet and yields the Arrow record batches as
they arrive. Every ticket is sealed to the user and role that asked, so
tasks read exactly what the role may read and nothing else; no JVM connector
is involved. The options are listed in `clients/python/README.md`: `uri`,
`username` and `password` (or `token`), `role`, `query` (or the argument
of `load`), `source_identity`, `tls_root_certs`, `parallel`.

An error the server answers (a wrong password, a role the user may not
assume, a table the role may not read) fails the Spark job with the
server's message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import pyarrow.flight as flight
from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import StructType

__all__ = ["LakegateDataSource"]

ROLE_HEADER = b"x-lakegate-role"
PARALLEL_HEADER = b"x-lakegate-parallel"
SOURCE_IDENTITY_HEADER = b"x-lakegate-source-identity"


@dataclass(frozen=True)
class _Connection:
    """How to reach the server and who signs in: picklable, so that tasks
    connect as the driver did."""

    uri: str
    tls_root_certs: bytes | None
    headers: tuple[tuple[bytes, bytes], ...]

    @staticmethod
    def from_options(options) -> "_Connection":
        uri = options.get("uri")
        if not uri:
            raise ValueError("option 'uri' is required (grpc://host:port)")
        certs = options.get("tls_root_certs")
        connection = _Connection(uri, open(certs, "rb").read() if certs else None, ())
        headers = []
        token = options.get("token")
        if token:
            headers.append((b"authorization", f"Bearer {token}".encode()))
        elif options.get("username"):
            client = connection.client()
            source = options.get("source_identity")
            sign_in_options = flight.FlightCallOptions(
                headers=[(SOURCE_IDENTITY_HEADER, source.encode())] if source else [])
            headers.append(client.authenticate_basic_token(
                options["username"], options.get("password", ""), sign_in_options))
        else:
            raise ValueError("give option 'username' (and 'password'), or 'token'")
        if options.get("role"):
            headers.append((ROLE_HEADER, options["role"].encode()))
        if options.get("source_identity"):
            headers.append((SOURCE_IDENTITY_HEADER, options["source_identity"].encode()))
        return _Connection(uri, connection.tls_root_certs, tuple(headers))

    def client(self) -> flight.FlightClient:
        if self.tls_root_certs:
            return flight.FlightClient(self.uri, tls_root_certs=self.tls_root_certs)
        return flight.FlightClient(self.uri)

    def call_options(self, *extra: tuple[bytes, bytes]) -> flight.FlightCallOptions:
        return flight.FlightCallOptions(headers=[*self.headers, *extra])


@dataclass(frozen=True)
class _Endpoint(InputPartition):
    """One endpoint of the query: its sealed ticket."""

    ticket: bytes


class LakegateDataSource(DataSource):
    """`spark.read.format("lakegate")`: the rows a query returns under the
    role's policy, read in parallel (see the module documentation)."""

    @classmethod
    def name(cls) -> str:
        return "lakegate"

    def _query(self) -> str:
        query = self.options.get("query") or self.options.get("path")
        if not query:
            raise ValueError("give the SQL as option 'query' or to load(...)")
        return query

    def _info(self) -> tuple[_Connection, flight.FlightInfo]:
        connection = _Connection.from_options(self.options)
        parallel = self.options.get("parallel", "true").lower() != "false"
        extra = [(PARALLEL_HEADER, b"true")] if parallel else []
        descriptor = flight.FlightDescriptor.for_command(self._query().encode())
        info = connection.client().get_flight_info(descriptor, connection.call_options(*extra))
        return connection, info

    def schema(self) -> StructType:
        _, info = self._info()
        return from_arrow_schema(info.schema)

    def reader(self, schema: StructType) -> DataSourceReader:
        connection, info = self._info()
        return _LakegateReader(connection, [endpoint.ticket.ticket for endpoint in info.endpoints])


class _LakegateReader(DataSourceReader):
    def __init__(self, connection: _Connection, tickets: list[bytes]) -> None:
        self.connection = connection
        self.tickets = tickets

    def partitions(self) -> list[_Endpoint]:
        return [_Endpoint(ticket) for ticket in self.tickets]

    def read(self, partition: _Endpoint) -> Iterator:
        client = self.connection.client()
        reader = client.do_get(flight.Ticket(partition.ticket), self.connection.call_options())
        for chunk in reader:
            if chunk.data is not None and chunk.data.num_rows > 0:
                yield chunk.data
