//! Benchmark: the server CPU a sign-in costs per call, per method, against
//! the cost of opening one of Lakegate's own bearer tokens, measured in the
//! same run.
//!
//! * `lakegate token`: opening a sealed token (HMAC-SHA256 and its JSON),
//!   what every call after a Handshake pays; the baseline.
//! * `JWT, same token`: an OpenID provider's RS256 token sent on every call,
//!   as ADBC's OAuth flow does: verified once, then remembered by its hash.
//! * `JWT, new token`: the first call with a token (signature, claims).
//! * `client certificate`: reading the user from a certificate rustls has
//!   verified (the TLS handshake itself is per connection, not per call).
//! * `password (Argon2)`: a Basic sign-in, what a Handshake costs.
//!
//! * `Kerberos (Handshake)`: accepting a SPNEGO token (a build with
//!   `--features kerberos`; each token is good once, the Handshake answers
//!   it with a Lakegate token).
//!
//! The provider is a loopback HTTP server serving a discovery document and
//! the key set of an RSA key made for the run (`openssl genrsa`); its keys
//! are fetched once, before timing. The KDC is MIT's, made for the run by
//! `scripts/kdc` (left out, with a message, where it cannot run).
//!
//! Run: `cargo bench --bench sign_in` (release build). Results are printed
//! and written to `$CARGO_TARGET_DIR/bench-results/sign-in.json`. Under
//! `cargo test` each case runs a few times, as a smoke test.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lakegate_flight::EnvelopeKey;
use lakegate_identity::{CertificateUsers, IdentityConfig, OidcVerifier, Principal, UserField};
use password_hash::{PasswordHash, PasswordVerifier};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What a Lakegate token holds after an OIDC sign-in (the shape of the
/// service's own claims).
#[derive(Serialize, Deserialize)]
struct Claims {
    #[serde(flatten)]
    principal: Principal,
    method: String,
    source: Option<String>,
}

/// An RSA signing key, PKCS#1 DER, made by openssl for this run.
fn rsa_key() -> EncodingKey {
    let pem = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "2048"])
        .output()
        .expect("openssl makes the benchmark's RSA key");
    let der = std::process::Command::new("openssl")
        .args(["rsa", "-traditional", "-outform", "DER"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&pem.stdout)?;
            child.wait_with_output()
        })
        .expect("openssl converts the key");
    EncodingKey::from_rsa_der(&der.stdout)
}

/// Kerberos: a KDC made for the run (scripts/kdc), a ticket from `kinit`,
/// fresh SPNEGO tokens made with GSSAPI before timing (each is good once),
/// and the acceptor the server uses. MIT Kerberos reads the keytab and the
/// credential cache from the environment, which may only change before any
/// thread starts: the benchmark starts itself again with it set.
#[cfg(feature = "kerberos")]
mod kerberos {
    use std::path::PathBuf;
    use std::process::Command;
    use std::time::Duration;

    use lakegate_identity::{KerberosAcceptor, KerberosConfig, KerberosNames};
    use libgssapi::context::{ClientCtx, CtxFlags};
    use libgssapi::name::Name;
    use libgssapi::oid::{GSS_MECH_SPNEGO, GSS_NT_KRB5_PRINCIPAL};

    const SERVICE: &str = "HTTP/localhost@LAKE.TEST";
    /// Names the KDC directory once the environment is set.
    const READY: &str = "LAKEGATE_BENCH_KDC";

    /// Before any thread: without a KDC yet, makes one and starts the
    /// benchmark again with the environment naming it. Returns the KDC's
    /// directory when running with it, `None` when Kerberos cannot run here.
    pub fn prepare() -> Option<PathBuf> {
        if let Ok(dir) = std::env::var(READY) {
            return Some(PathBuf::from(dir));
        }
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let dir = std::env::temp_dir().join(format!("lakegate-bench-kdc-{}", std::process::id()));
        let started = Command::new(root.join("scripts/kdc"))
            .arg(&dir)
            .arg("bench")
            .output()
            .ok()?;
        if !started.status.success() {
            eprintln!(
                "Kerberos left out: scripts/kdc failed ({})",
                String::from_utf8_lossy(&started.stderr).trim()
            );
            return None;
        }
        let mut env: Vec<(String, String)> = String::from_utf8_lossy(&started.stdout)
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let cache = format!("FILE:{}", dir.join("bench.ccache").display());
        let kinit = Command::new("kinit")
            .args(["-k", "-t"])
            .arg(dir.join("bench.keytab"))
            .args(["-c", &cache, "bench"])
            .envs(env.iter().cloned())
            .status();
        if !kinit.is_ok_and(|s| s.success()) {
            eprintln!("Kerberos left out: kinit failed");
            return None;
        }
        env.push(("KRB5CCNAME".into(), cache));
        env.push((
            "KRB5_KTNAME".into(),
            format!("FILE:{}", dir.join("service.keytab").display()),
        ));
        env.push((READY.into(), dir.display().to_string()));
        let error = std::os::unix::process::CommandExt::exec(
            Command::new(std::env::current_exe().ok()?)
                .args(std::env::args_os().skip(1))
                .envs(env),
        );
        panic!("cannot start the benchmark again with the KDC's environment: {error}");
    }

    /// Mean time of accepting one token, over `count` fresh tokens.
    pub fn accept(count: u32) -> Duration {
        let tokens: Vec<Vec<u8>> = (0..count + count.div_ceil(10))
            .map(|_| {
                let target = Name::new(SERVICE.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL)).unwrap();
                let mut context = ClientCtx::new(
                    None,
                    target,
                    CtxFlags::GSS_C_MUTUAL_FLAG,
                    Some(GSS_MECH_SPNEGO),
                );
                context.step(None, None).unwrap().unwrap().to_vec()
            })
            .collect();
        let names = KerberosNames::new(&KerberosConfig::default(), "LAKE.TEST");
        let acceptor = KerberosAcceptor::new(SERVICE, names).unwrap();
        let mut tokens = tokens.iter();
        super::time(count, |_| {
            let user = acceptor.accept(tokens.next().unwrap()).unwrap();
            assert_eq!(user, "bench");
        })
    }

    /// Stops the KDC.
    pub fn finish(dir: &std::path::Path) {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let _ = Command::new(root.join("scripts/kdc"))
            .arg("stop")
            .arg(dir)
            .status();
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Serves `discovery` and `jwks` on a loopback port until the process ends.
async fn provider(jwks: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let discovery = format!(r#"{{"issuer":"{issuer}","jwks_uri":"{issuer}/jwks"}}"#);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let (discovery, jwks) = (discovery.clone(), jwks.clone());
            tokio::spawn(async move {
                let mut request = vec![0; 4096];
                let read = socket.read(&mut request).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&request[..read]);
                let body = if text.starts_with("GET /jwks") {
                    jwks
                } else {
                    discovery
                };
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    issuer
}

/// Mean time of `f` over `iterations` calls, after a tenth as many warm-ups.
fn time(iterations: u32, mut f: impl FnMut(u32)) -> Duration {
    for i in 0..iterations.div_ceil(10) {
        f(i);
    }
    let started = Instant::now();
    for i in 0..iterations {
        f(i);
    }
    started.elapsed() / iterations
}

async fn run(full: bool, kdc: Option<PathBuf>) {
    let scale: u32 = if full { 1 } else { 1000 };
    let key = rsa_key();
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some("bench-key".into());
    let jwks = serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap();
    let issuer = provider(jwks).await;
    let config = IdentityConfig::parse(&format!(
        "[[oidc.issuer]]\nissuer = \"{issuer}\"\naudience = [\"lakegate\"]"
    ))
    .unwrap();
    let verifier = OidcVerifier::new(&config.oidc).unwrap().unwrap();
    verifier.prefetch_keys().await;

    let now = jsonwebtoken::get_current_timestamp();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("bench-key".into());
    let token = |n: u32| {
        let claims = serde_json::json!({
            "iss": issuer, "aud": "lakegate", "sub": format!("user-{n}"),
            "groups": ["analysts", "electronics-team"], "iat": now, "exp": now + 3600,
        });
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    };
    let fresh_count: u32 = 2_000 / scale.min(200);
    let fresh: Vec<String> = (0..fresh_count + fresh_count.div_ceil(10))
        .map(token)
        .collect();
    let same = token(u32::MAX);

    let envelope = EnvelopeKey::random();
    let sealed = envelope.seal(
        &Claims {
            principal: Principal {
                user: "ann".into(),
                provider_groups: vec!["analysts".into(), "electronics-team".into()],
                provider_only: true,
            },
            method: "oidc".into(),
            source: Some("studio-profile-7".into()),
        },
        Duration::from_secs(3600),
    );
    let certificate = {
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "svc-etl");
        let pair = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&pair).unwrap().der().to_vec()
    };
    let users = CertificateUsers::new(UserField::CommonName);
    let hash = lakegate_catalog::hash_password("tina-pass");

    let handle = tokio::runtime::Handle::current();
    #[cfg(not(feature = "kerberos"))]
    let _ = &kdc;
    let results: Vec<(&str, Duration)> = tokio::task::spawn_blocking(move || {
        let token_open = time(200_000 / scale, |_| {
            black_box(envelope.open::<Claims>(black_box(&sealed)).unwrap());
        });
        let jwt_same = time(200_000 / scale, |_| {
            black_box(handle.block_on(verifier.verify(black_box(&same))).unwrap());
        });
        let mut next = fresh.iter();
        let jwt_new = time(fresh_count, |_| {
            let token = next.next().unwrap();
            black_box(handle.block_on(verifier.verify(token)).unwrap());
        });
        let certificate = time(100_000 / scale, |_| {
            black_box(users.user_of(black_box(&certificate)).unwrap());
        });
        let parsed = PasswordHash::new(&hash).unwrap();
        let password = time((50 / scale).max(2), |_| {
            argon2::Argon2::default()
                .verify_password(b"tina-pass", &parsed)
                .unwrap();
        });
        #[allow(unused_mut)]
        let mut results = vec![
            ("lakegate token", token_open),
            ("JWT, same token", jwt_same),
            ("JWT, new token", jwt_new),
            ("client certificate", certificate),
            ("password (Argon2)", password),
        ];
        #[cfg(feature = "kerberos")]
        if let Some(dir) = &kdc {
            results.push((
                "Kerberos (Handshake)",
                kerberos::accept((2_000 / scale).max(3)),
            ));
            kerberos::finish(dir);
        }
        results
    })
    .await
    .unwrap();

    let baseline = results[0].1.as_secs_f64();
    println!("sign-in cost per call (server CPU, one core):");
    println!("{:<22} {:>12} {:>10}", "method", "per call", "vs token");
    for (name, took) in &results {
        println!(
            "{name:<22} {:>9.2} µs {:>9.1}x",
            took.as_secs_f64() * 1e6,
            took.as_secs_f64() / baseline
        );
    }
    let added = |name: &str| {
        results
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
            .as_secs_f64()
            - baseline
    };
    println!(
        "JWT on every call adds {:.2} µs per call over the token path (target ≤ 50 µs); \
         a token's first call adds {:.1} µs",
        added("JWT, same token") * 1e6,
        added("JWT, new token") * 1e6
    );
    if full {
        let json = serde_json::json!({
            "benchmark": "sign_in",
            "unit": "microseconds per call",
            "results": results.iter().map(|(name, took)| serde_json::json!({
                "method": name,
                "per_call_us": took.as_secs_f64() * 1e6,
                "vs_token": took.as_secs_f64() / baseline,
            })).collect::<Vec<_>>(),
        });
        let dir =
            PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()))
                .join("bench-results");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sign-in.json");
        std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
        println!("written to {}", path.display());
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    // Before any thread exists (see the kerberos module).
    #[cfg(feature = "kerberos")]
    let kdc = kerberos::prepare();
    #[cfg(not(feature = "kerberos"))]
    let kdc = {
        println!("Kerberos left out: a build without --features kerberos");
        None
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(full, kdc));
}
