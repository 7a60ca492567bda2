"""Enterprise sign-in against real servers: OIDC tokens from a real OpenID
provider (npm oauth2-mock-server, started here) through ADBC's OAuth flow
and as bearer tokens, key rotation, every refused token; client
certificates over mutual TLS; a source identity bound at sign-in."""

import base64
import datetime
import hashlib
import hmac
import json
import os
import pathlib
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import duckdb
import jwt
import pyarrow.flight as flight
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from clients import TokenFromHandshake
from conftest import CATALOG, ROOT, raw, start_server, start_serving

OAUTH_MOCK = pathlib.Path(os.environ.get("LAKEGATE_OAUTH_MOCK", ""))
PROVIDER_SCRIPT = ROOT / "tests" / "identity" / "oidc_provider.mjs"
ROLE = "x-lakegate-role"
SOURCE = "x-lakegate-source-identity"
ITEMS = "SELECT i_category, count(*) AS n FROM dl_tpc_item GROUP BY 1 ORDER BY 1"

# The OAuth clients the provider knows, and whom each signs in as. `ann` and
# `zed` are users only the provider knows; `tina` is a catalog user.
CLIENTS = {
    "ann-notebook": {"sub": "ann", "groups": ["electronics-team", "unknown-group"]},
    "tina-notebook": {"sub": "tina", "groups": []},
    "zed-job": {"sub": "zed", "groups": ["unknown-group"]},
}

# Added to a copy of the demo catalog: a group the provider's users are in,
# and a user with no password (certificates only).
IDENTITY_PRINCIPALS = """
[[group]]
name = "electronics-team"
may_assume = ["electronics"]

[[user]]
name = "svc-etl"
may_assume = ["electronics"]
default_role = "electronics"
"""


class Provider:
    """The running OpenID provider: its issuer URL and its commands."""

    def __init__(self, process, issuer):
        self.process = process
        self.issuer = issuer
        self.lock = threading.Lock()

    def command(self, line):
        with self.lock:
            self.process.stdin.write(line + "\n")
            self.process.stdin.flush()
            return json.loads(self.process.stdout.readline())

    def token(self, client):
        body = urllib.parse.urlencode(
            {"grant_type": "client_credentials", "client_id": client, "client_secret": "s"}).encode()
        with urllib.request.urlopen(f"{self.issuer}/token", data=body, timeout=10) as response:
            return json.loads(response.read())["access_token"]

    def private_key(self):
        """The current signing key, for tokens the provider would never issue."""
        jwk = self.command("private-key")
        return jwk["kid"], jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(jwk))


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    if not (OAUTH_MOCK / "node_modules" / "oauth2-mock-server").exists():
        pytest.fail(f"oauth2-mock-server is not installed in {OAUTH_MOCK} (scripts/test installs it)")
    # ES modules resolve packages from the script's own directory.
    script = OAUTH_MOCK / "oidc_provider.mjs"
    shutil.copy(PROVIDER_SCRIPT, script)
    process = subprocess.Popen(["node", str(script), json.dumps(CLIENTS)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        issuer = json.loads(process.stdout.readline())["issuer"]
        yield Provider(process, issuer)
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def identity_catalog(tmp_path_factory):
    catalog = tmp_path_factory.mktemp("identity-catalog")
    for file in pathlib.Path(CATALOG).glob("*.toml"):
        shutil.copy(file, catalog)
    (catalog / "identity.toml").write_text(IDENTITY_PRINCIPALS)
    return catalog


def identity_settings(tmp_path, provider, refetch_secs=30, auto_users=True):
    path = tmp_path / "identity.toml"
    path.write_text(f"""
[oidc]
auto_users = {str(auto_users).lower()}

[[oidc.issuer]]
issuer = "{provider.issuer}"
audience = ["lakegate"]
groups_claim = "groups"
jwks_min_refetch_secs = {refetch_secs}
""")
    return path


def electronics_counts(data_dir):
    return duckdb.sql(f"SELECT i_category, count(*) AS n FROM {raw(data_dir, 'dl_tpc_item')} "
                      "WHERE i_category = 'Electronics' GROUP BY 1 ORDER BY 1").fetchall()


def rows(table):
    return [tuple(row.values()) for row in table.to_pylist()]


def bearer_query(address, token, sql, headers=(), ca=None):
    if ca:
        client = flight.FlightClient(address, tls_root_certs=ca.encode(), override_hostname="localhost")
    else:
        client = flight.FlightClient(address)
    options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {token}".encode()), *headers])
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()), options)
    return client.do_get(info.endpoints[0].ticket, options).read_all()


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_oidc_client_credentials_through_adbc(data_dir, provider, identity_catalog, pki, tmp_path):
    """A notebook signs in with ADBC's OAuth client-credentials flow as a
    user only the provider knows: its group opens the electronics role,
    and it reads exactly that role's rows. (ADBC sends OAuth tokens over
    TLS only.)"""
    settings = identity_settings(tmp_path, provider)
    tls = ["--tls-cert", str(pki["dir"] / "server.pem"), "--tls-key", str(pki["dir"] / "server.key")]
    with start_server(data_dir, "--identity", str(settings), *tls, catalog=identity_catalog) as address:
        ca = pki["ca"]
        options = {
            adbc_driver_flightsql.DatabaseOptions.TLS_ROOT_CERTS.value: ca,
            adbc_driver_flightsql.DatabaseOptions.TLS_OVERRIDE_HOSTNAME.value: "localhost",
            adbc_driver_flightsql.DatabaseOptions.OAUTH_FLOW.value: "client_credentials",
            adbc_driver_flightsql.DatabaseOptions.OAUTH_TOKEN_URI.value: f"{provider.issuer}/token",
            adbc_driver_flightsql.DatabaseOptions.OAUTH_CLIENT_ID.value: "ann-notebook",
            adbc_driver_flightsql.DatabaseOptions.OAUTH_CLIENT_SECRET.value: "ann-secret",
        }
        with flight_sql.connect(address, db_kwargs=options, autocommit=True) as conn:
            cursor = conn.cursor()
            cursor.execute(ITEMS)
            assert rows(cursor.fetch_arrow_table()) == electronics_counts(data_dir)
            cursor.execute("SELECT current_user(), current_role()")
            assert rows(cursor.fetch_arrow_table()) == [("ann", "electronics")]

        # A catalog user signed in by the provider keeps its own roles.
        tina = bearer_query(address, provider.token("tina-notebook"), "SELECT current_role()", ca=ca)
        assert tina.column(0).to_pylist() == ["sales"]
        # A provider user whose groups open no role reads nothing.
        with pytest.raises(flight.FlightUnauthorizedError, match="no default role"):
            bearer_query(address, provider.token("zed-job"), "SELECT 1", ca=ca)
        # The provider's group opens electronics and nothing else.
        with pytest.raises(flight.FlightUnauthorizedError, match="may not assume role 'sales'"):
            bearer_query(address, provider.token("ann-notebook"), "SELECT 1", [(ROLE.encode(), b"sales")], ca=ca)


def test_oidc_users_unknown_to_the_catalog_need_auto_users(data_dir, provider, identity_catalog, tmp_path):
    settings = identity_settings(tmp_path, provider, auto_users=False)
    with start_server(data_dir, "--identity", str(settings), catalog=identity_catalog) as address:
        with pytest.raises(flight.FlightUnauthorizedError, match="unknown user 'ann'"):
            bearer_query(address, provider.token("ann-notebook"), "SELECT 1")
        tina = bearer_query(address, provider.token("tina-notebook"), "SELECT current_user()")
        assert tina.column(0).to_pylist() == ["tina"]


def test_oidc_token_exchanged_at_the_handshake(data_dir, provider, identity_catalog, tmp_path):
    """A provider's token sent once, on the Handshake, is exchanged for a
    Lakegate token that carries the provider's groups and the source
    identity; the audit records the sign-in as OIDC."""
    settings = identity_settings(tmp_path, provider)
    audit = tmp_path / "audit"
    with start_server(data_dir, "--identity", str(settings), "--audit-dir", str(audit),
                      catalog=identity_catalog) as address:
        client = flight.FlightClient(address)
        handler = TokenFromHandshake()
        headers = [(b"authorization", f"Bearer {provider.token('ann-notebook')}".encode()),
                   (SOURCE.encode(), b"notebook-ann")]
        client.authenticate(handler, flight.FlightCallOptions(headers=headers))
        token = handler.token.decode()
        assert token.startswith("lg1.")
        who = bearer_query(address, token, "SELECT current_user(), current_role()").to_pylist()
        assert who == [{"current_user()": "ann", "current_role()": "electronics"}]
    events = [json.loads(line) for line in (audit / "audit.jsonl").read_text().splitlines()]
    ann = [e for e in events if e["user"] == "ann"]
    assert ann and {e["sign_in"] for e in ann} == {"oidc"}, ann
    assert {e["source_identity"] for e in ann} == {"notebook-ann"}, ann


def test_oidc_key_rotation(data_dir, provider, identity_catalog, tmp_path):
    """The provider switches keys: a token signed with the new key is
    accepted after one refetch of its key set; tokens of the old key stay
    valid until they expire."""
    settings = identity_settings(tmp_path, provider, refetch_secs=1)
    log = tmp_path / "server.log"
    env = {**os.environ, "RUST_LOG": "lakegate_identity=info"}
    command = ["serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir), "--catalog",
               str(identity_catalog), "--identity", str(settings)]
    with open(log, "w") as stderr, start_serving(command, env=env, stderr=stderr) as (address, _):
        old = provider.token("ann-notebook")
        assert bearer_query(address, old, "SELECT 1").num_rows == 1
        new_kid = provider.command("rotate")["kid"]
        new = provider.token("ann-notebook")
        assert jwt.get_unverified_header(new)["kid"] == new_kid
        time.sleep(1.2)  # past the refetch floor
        assert bearer_query(address, new, "SELECT 1").num_rows == 1
        assert bearer_query(address, old, "SELECT 1").num_rows == 1
        assert bearer_query(address, new, "SELECT 1").num_rows == 1
    fetches = [line for line in log.read_text().splitlines() if "signing keys from" in line]
    # One fetch at start, one for the new key.
    assert len(fetches) == 2, fetches
    assert "2 signing keys" in fetches[-1]


def test_every_bad_token_is_refused_alike(data_dir, provider, identity_catalog, tmp_path):
    """Expired, wrong audience, wrong issuer, alg none, a tampered
    signature, HS256 keyed with the provider's public key, an unknown key:
    UNAUTHENTICATED, with one message for all."""
    settings = identity_settings(tmp_path, provider)
    kid, key = provider.private_key()
    now = int(time.time())
    good = {"iss": provider.issuer, "aud": "lakegate", "sub": "ann", "groups": ["electronics-team"],
            "iat": now, "nbf": now - 5, "exp": now + 600}

    def signed(claims, **header):
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, **header})

    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    hs_header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    hs_payload = b64(json.dumps(good).encode())
    hs_signature = b64(hmac.new(public_pem, f"{hs_header}.{hs_payload}".encode(), hashlib.sha256).digest())
    valid = signed(good)
    head, payload, signature = valid.split(".")
    tampered_payload = b64(json.dumps({**good, "sub": "tina"}).encode())
    bad_tokens = {
        "expired": signed({**good, "exp": now - 3600, "nbf": now - 7200}),
        "wrong audience": signed({**good, "aud": "another-service"}),
        "wrong issuer": signed({**good, "iss": "http://127.0.0.1:1/evil"}),
        "alg none": f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{payload}.",
        "tampered payload": f"{head}.{tampered_payload}.{signature}",
        "tampered signature": f"{head}.{payload}.{signature[:-4]}AAAA",
        "HS256 with the public key": f"{hs_header}.{hs_payload}.{hs_signature}",
        "unknown key": signed(good, kid="no-such-key"),
        "not yet valid": signed({**good, "nbf": now + 3600}),
    }
    with start_server(data_dir, "--identity", str(settings), catalog=identity_catalog) as address:
        assert bearer_query(address, valid, "SELECT current_user()").column(0).to_pylist() == ["ann"]
        for what, token in bad_tokens.items():
            with pytest.raises(flight.FlightUnauthenticatedError) as refused:
                bearer_query(address, token, "SELECT 1")
            assert "invalid credentials" in str(refused.value), what
            assert "audience" not in str(refused.value) and "expired" not in str(refused.value), what


def test_source_identity_is_bound_at_sign_in(data_dir, identity_catalog, tmp_path):
    """The source identity sent at the Handshake is sealed into the token:
    a later call naming another is refused, one naming none runs under the
    bound one, and every audit event carries it."""
    audit = tmp_path / "audit"
    with start_server(data_dir, "--audit-dir", str(audit), catalog=identity_catalog) as address:
        client = flight.FlightClient(address)
        signed_in = flight.FlightCallOptions(headers=[(SOURCE.encode(), b"studio-profile-7")])
        (name, value), = [client.authenticate_basic_token("tina", "tina-pass", signed_in)]
        token = value.decode().removeprefix("Bearer ")
        assert bearer_query(address, token, "SELECT 1").num_rows == 1
        assert bearer_query(address, token, "SELECT 2", [(SOURCE.encode(), b"studio-profile-7")]).num_rows == 1
        with pytest.raises(flight.FlightUnauthorizedError, match="source identity is bound at sign-in"):
            bearer_query(address, token, "SELECT 3", [(SOURCE.encode(), b"someone-else")])
        # A sign-in that named none is bound to none.
        (_, bare), = [client.authenticate_basic_token("tina", "tina-pass")]
        with pytest.raises(flight.FlightUnauthorizedError, match="source identity is bound at sign-in"):
            bearer_query(address, bare.decode().removeprefix("Bearer "), "SELECT 4",
                         [(SOURCE.encode(), b"studio-profile-7")])
    events = [json.loads(line) for line in (audit / "audit.jsonl").read_text().splitlines()]
    tina = [e for e in events if e["user"] == "tina" and e["outcome"] == "ok"]
    bound = [e for e in tina if e.get("statement") in ("SELECT 1", "SELECT 2")]
    assert len(bound) >= 4, tina  # GetFlightInfo and DoGet of each
    assert {e["source_identity"] for e in bound} == {"studio-profile-7"}
    assert {e["sign_in"] for e in tina} == {"password"}
    refused = [e for e in events if e.get("statement") == "SELECT 3"]
    assert refused and refused[0]["outcome"] == "denied", events


# ---- mutual TLS -------------------------------------------------------------

def make_ca(name):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def issue(ca, common_name, *, server=False, days=(1, 30)):
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
               .issuer_name(ca_cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=days[0]))
               .not_valid_after(now + datetime.timedelta(days=days[1]))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        usage = x509.oid.ExtendedKeyUsageOID.SERVER_AUTH
    else:
        usage = x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH
    builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    ca, other_ca = make_ca("Lakegate test clients"), make_ca("Someone else")
    server_cert, server_key = issue(ca, "localhost", server=True)
    files = {"ca": pem(ca[0]), "server.pem": server_cert, "server.key": server_key}
    for name, text in files.items():
        (directory / name).write_text(text)
    return {
        "dir": directory,
        "ca": files["ca"],
        "svc-etl": issue(ca, "svc-etl"),
        "tina": issue(ca, "tina"),
        "other-ca": issue(other_ca, "svc-etl"),
        "expired": issue(ca, "svc-etl", days=(30, -1)),
    }


def tls_flags(pki, mode):
    directory = pki["dir"]
    return ["--tls-cert", str(directory / "server.pem"), "--tls-key", str(directory / "server.key"),
            "--tls-client-ca", str(directory / "ca"), "--tls-client-auth", mode]


def mtls_query(address, pki, who, sql, extra=None):
    options = {
        adbc_driver_flightsql.DatabaseOptions.TLS_ROOT_CERTS.value: pki["ca"],
        adbc_driver_flightsql.DatabaseOptions.TLS_OVERRIDE_HOSTNAME.value: "localhost",
        **(extra or {}),
    }
    if who:
        cert, key = pki[who]
        options[adbc_driver_flightsql.DatabaseOptions.MTLS_CERT_CHAIN.value] = cert
        options[adbc_driver_flightsql.DatabaseOptions.MTLS_PRIVATE_KEY.value] = key
    with flight_sql.connect(address, db_kwargs=options, autocommit=True) as conn:
        cursor = conn.cursor()
        cursor.execute(sql)
        return rows(cursor.fetch_arrow_table())


def test_client_certificates_sign_in_without_a_password(data_dir, identity_catalog, pki):
    with start_server(data_dir, *tls_flags(pki, "required"), catalog=identity_catalog) as address:
        assert address.startswith("grpc+tls://")
        # A user with no password at all signs in with its certificate.
        assert mtls_query(address, pki, "svc-etl", ITEMS) == electronics_counts(data_dir)
        assert mtls_query(address, pki, "tina", "SELECT current_user(), current_role()") == [("tina", "sales")]
        for who in ("other-ca", "expired", None):
            with pytest.raises((adbc_driver_manager.Error, flight.FlightError)):
                mtls_query(address, pki, who, "SELECT 1")


def test_optional_client_certificates(data_dir, identity_catalog, pki):
    """With certificates optional, a client without one signs in with a
    password; one with a certificate still signs in by it."""
    with start_server(data_dir, *tls_flags(pki, "optional"), catalog=identity_catalog) as address:
        password = {
            adbc_driver_manager.DatabaseOptions.USERNAME.value: "david",
            adbc_driver_manager.DatabaseOptions.PASSWORD.value: "david-pass",
        }
        assert mtls_query(address, pki, None, "SELECT current_user()", password) == [("david",)]
        assert mtls_query(address, pki, "svc-etl", "SELECT current_user()") == [("svc-etl",)]
        with pytest.raises((adbc_driver_manager.Error, flight.FlightError)):
            mtls_query(address, pki, "other-ca", "SELECT 1")
        # A user with no password cannot sign in with one, empty or not.
        for guess in ("", "svc-etl-pass"):
            no_password = {
                adbc_driver_manager.DatabaseOptions.USERNAME.value: "svc-etl",
                adbc_driver_manager.DatabaseOptions.PASSWORD.value: guess,
            }
            with pytest.raises(adbc_driver_manager.Error, match="(?i)unauthenticated|invalid credentials"):
                mtls_query(address, pki, None, "SELECT 1", no_password)
        # No certificate and no password: nothing.
        with pytest.raises(adbc_driver_manager.Error, match="(?i)unauthenticated|authentication required"):
            mtls_query(address, pki, None, "SELECT 1")
