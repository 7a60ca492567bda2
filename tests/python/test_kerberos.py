"""Kerberos sign-in against a real MIT KDC: a throwaway realm made by
scripts/kdc in a temporary directory (kdb5_util, kadmin.local, krb5kdc on a
free loopback port), a keytab for Lakegate's service principal, and seed 000's personas
as user principals. Clients get tickets with `kinit`, build the Negotiate
token with the `gssapi` binding, and send it through pyarrow.flight's
Handshake and through ADBC's authorization header."""

import base64
import os
import shutil
import subprocess

import adbc_driver_flightsql.dbapi as flight_sql
import duckdb
import gssapi
import pyarrow.flight as flight
import pytest

from clients import TokenFromHandshake
from conftest import BINARY, CATALOG, ROOT, raw, start_serving

REALM = "LAKE.TEST"
SERVICE = f"HTTP/localhost@{REALM}"
SPNEGO = gssapi.OID.from_int_seq("1.3.6.1.5.5.2")
PERSONAS = {"tina": "sales", "david": "marketing"}


class Realm:
    """A running KDC (scripts/kdc) and the files its clients and servers
    need."""

    def __init__(self, directory, env):
        self.dir = directory
        self.env = {**os.environ, **env}

    def ticket(self, principal):
        """A credential cache holding `principal`'s ticket-granting ticket."""
        cache = self.dir / f"{principal}.ccache"
        subprocess.run(["kinit", "-k", "-t", str(self.dir / f"{principal}.keytab"), "-c", f"FILE:{cache}",
                        principal], env=self.env, check=True, capture_output=True, timeout=60)
        return cache

    def negotiate(self, principal, service=SERVICE):
        """The SPNEGO token `principal` sends to `service`."""
        os.environ["KRB5_CONFIG"] = self.env["KRB5_CONFIG"]
        credentials = gssapi.Credentials(usage="initiate", store={"ccache": f"FILE:{self.ticket(principal)}"})
        target = gssapi.Name(service, gssapi.NameType.kerberos_principal)
        context = gssapi.SecurityContext(name=target, creds=credentials, usage="initiate", mech=SPNEGO)
        return base64.b64encode(context.step()).decode()


@pytest.fixture(scope="module")
def realm(tmp_path_factory):
    for tool in ("krb5kdc", "kdb5_util", "kadmin.local", "kinit"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            pytest.fail(f"{tool} is not installed (scripts/test installs Debian's krb5-kdc, "
                        "krb5-admin-server and krb5-user)")
    directory = tmp_path_factory.mktemp("kdc")
    started = subprocess.run([str(ROOT / "scripts" / "kdc"), str(directory), *PERSONAS],
                             capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr
    env = dict(line.split("=", 1) for line in started.stdout.split())
    try:
        yield Realm(directory, env)
    finally:
        subprocess.run([str(ROOT / "scripts" / "kdc"), "stop", str(directory)], timeout=30)


def serve(data_dir, realm, keytab="service.keytab"):
    command = ["serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir), "--catalog", CATALOG,
               "--kerberos-keytab", str(realm.dir / keytab), "--kerberos-principal", SERVICE]
    return start_serving(command, env=realm.env)


def handshake(address, negotiate):
    """pyarrow.flight's Handshake with the Negotiate header: the client, and
    the bearer token the Handshake answers with."""
    client = flight.FlightClient(address)
    options = flight.FlightCallOptions(headers=[(b"authorization", f"Negotiate {negotiate}".encode())])
    handler = TokenFromHandshake()
    client.authenticate(handler, options)
    return client, f"Bearer {handler.token.decode()}"


def query(client, bearer, sql):
    options = flight.FlightCallOptions(headers=[(b"authorization", bearer.encode())])
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()), options)
    return client.do_get(info.endpoints[0].ticket, options).read_all()


def expected(data_dir, persona):
    if persona == "david":
        return duckdb.sql(f"SELECT count(*) FROM {raw(data_dir, 'dl_tpc_customer')}").fetchone()[0]
    return duckdb.sql(
        f"SELECT count(*) FROM {raw(data_dir, 'dl_tpc_web_sales')} WHERE ws_bill_addr_sk IN "
        f"(SELECT ca_address_sk FROM {raw(data_dir, 'dl_tpc_customer_address')} "
        "WHERE ca_state IN ('CA', 'OR', 'WA'))").fetchone()[0]


TABLE = {"david": "dl_tpc_customer", "tina": "dl_tpc_web_sales"}


def test_personas_sign_in_with_kerberos_tickets(data_dir, realm):
    with serve(data_dir, realm) as (address, _):
        for persona, role in PERSONAS.items():
            client, bearer = handshake(address, realm.negotiate(persona))
            assert bearer.startswith("Bearer lg1.")
            who = query(client, bearer, "SELECT current_user(), current_role()").to_pylist()
            assert who == [{"current_user()": persona, "current_role()": role}], who
            count = query(client, bearer, f"SELECT count(*) AS n FROM {TABLE[persona]}").column(0)[0].as_py()
            assert count == expected(data_dir, persona), persona


def test_adbc_sends_the_negotiate_token_as_its_authorization_header(data_dir, realm):
    """ADBC sends a fixed authorization header and calls no Handshake: its
    first call signs in with the Kerberos token, the answer's bearer token
    replaces the header for the calls after it."""
    with serve(data_dir, realm) as (address, _):
        for persona, role in PERSONAS.items():
            header = f"Negotiate {realm.negotiate(persona)}"
            with flight_sql.connect(address, db_kwargs={"adbc.flight.sql.authorization_header": header},
                                    autocommit=True) as conn:
                cursor = conn.cursor()
                cursor.execute("SELECT current_user(), current_role()")
                assert cursor.fetchall() == [(persona, role)]
                cursor.execute(f"SELECT count(*) FROM {TABLE[persona]}")
                assert cursor.fetchall() == [(expected(data_dir, persona),)]


def test_refused_kerberos_tokens(data_dir, realm):
    """A replayed token, a ticket for another service and a server holding a
    stale key are all refused, UNAUTHENTICATED."""
    with serve(data_dir, realm) as (address, _):
        token = realm.negotiate("tina")
        handshake(address, token)
        with pytest.raises(flight.FlightUnauthenticatedError, match="invalid credentials"):
            handshake(address, token)
        elsewhere = realm.negotiate("tina", service=f"HTTP/elsewhere@{REALM}")
        with pytest.raises(flight.FlightUnauthenticatedError, match="invalid credentials"):
            handshake(address, elsewhere)
        with pytest.raises(flight.FlightUnauthenticatedError, match="invalid credentials"):
            handshake(address, base64.b64encode(b"\x60\x03garbage").decode())
    with serve(data_dir, realm, keytab="stale.keytab") as (address, _):
        with pytest.raises(flight.FlightUnauthenticatedError, match="invalid credentials"):
            handshake(address, realm.negotiate("tina"))


def test_a_keytab_without_the_service_key_stops_the_server(data_dir, realm):
    result = subprocess.run(
        [BINARY, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir), "--catalog", CATALOG,
         "--kerberos-keytab", str(realm.dir / "tina.keytab"), "--kerberos-principal", SERVICE],
        env=realm.env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "no key for it in the keytab" in result.stderr, result.stderr
