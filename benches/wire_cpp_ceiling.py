"""The C++ Flight implementation's ceiling for `cargo bench --bench wire`.

A bare `pyarrow.flight` server (Arrow's C++ Flight and gRPC's C++ core; no
Python runs per batch) streams, from memory, the batches of an Arrow IPC
file that `wire_client.py` wrote from Lakegate's own answer: the same
batches the Rust ceiling streams. Tickets as the Rust ceiling's: `scan` is
every batch, `part/I/N` every Nth batch from the Ith, so that two parts read
at once give the ceiling of two streams.

    python wire_cpp_ceiling.py BATCHES.arrow

prints the port it listens on (loopback) as its first line, then serves
until it is killed.
"""

import sys

import pyarrow as pa
import pyarrow.flight as flight


class Ceiling(flight.FlightServerBase):
    def __init__(self, batches):
        super().__init__("grpc://127.0.0.1:0")
        self._batches = batches
        self._schema = batches[0].schema

    def do_get(self, context, ticket):
        ticket = ticket.ticket.decode()
        if ticket == "scan":
            batches = self._batches
        elif ticket.startswith("part/"):
            _, index, parts = ticket.split("/")
            batches = self._batches[int(index) :: int(parts)]
        else:
            raise flight.FlightServerError(f"unknown ticket {ticket!r}")
        return flight.RecordBatchStream(pa.Table.from_batches(batches, self._schema))


def main():
    (path,) = sys.argv[1:]
    # Read into memory (not mapped from the file), as the Rust ceiling
    # holds its batches; the batches point into this one buffer.
    with open(path, "rb") as file:
        data = pa.py_buffer(file.read())
    batches = pa.ipc.open_file(data).read_all().to_batches()
    server = Ceiling(batches)
    print(server.port, flush=True)
    server.serve()


if __name__ == "__main__":
    main()
