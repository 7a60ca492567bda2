"""Client helpers shared by the tests: ADBC Flight SQL connections as a demo
user (password `<user>-pass`) under an optional runtime role, and reading
the token a pyarrow.flight Handshake answers with."""

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import pyarrow.flight as flight

ROLE_HEADER = "adbc.flight.sql.rpc.call_header.x-lakegate-role"


def connect(server, user, password=None, role=None, extra=None):
    options = {
        adbc_driver_manager.DatabaseOptions.USERNAME.value: user,
        adbc_driver_manager.DatabaseOptions.PASSWORD.value: password or f"{user}-pass",
        **(extra or {}),
    }
    if role:
        options[ROLE_HEADER] = role
    return flight_sql.connect(server, db_kwargs=options, autocommit=True)


def query(server, user, sql, role=None):
    with connect(server, user, role=role) as conn:
        cursor = conn.cursor()
        cursor.execute(sql)
        return cursor.fetch_arrow_table()


class TokenFromHandshake(flight.ClientAuthHandler):
    """Reads the token the Handshake answers with (the credentials travel in
    the call's header)."""

    def __init__(self):
        super().__init__()
        self.token = b""

    def authenticate(self, outgoing, incoming):
        outgoing.write(b"")
        self.token = incoming.read()

    def get_token(self):
        return self.token
