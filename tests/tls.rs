//! Authenticated back-ends over https: a CA made in the test signs a
//! loopback server's certificate (and a client's, for mTLS); the target's
//! pre-flight and the Prometheus client reach it with the plan's CA bundle,
//! credential and client certificate, and fail with the certificate problem
//! named when the CA is wrong.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use infercheck::plan::{Overrides, resolve_source};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, RootCertStore, server::WebPkiClientVerifier};

/// A CA and a certificate it signed for 127.0.0.1, all PEM.
struct Pki {
    ca_pem: String,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Pki {
            ca_pem: ca.pem(),
            ca,
        }
    }

    /// A leaf for 127.0.0.1 signed by this CA: (cert PEM, key PEM, DERs).
    fn leaf(
        &self,
    ) -> (
        String,
        String,
        CertificateDer<'static>,
        PrivateKeyDer<'static>,
    ) {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let der_key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (cert.pem(), key.serialize_pem(), cert.der().clone(), der_key)
    }
}

/// An https server on 127.0.0.1:0 answering every request with `body`
/// (JSON); it keeps each request's head. With `client_ca`, it demands a
/// client certificate signed by it.
struct Server {
    url: String,
    heads: Arc<Mutex<Vec<String>>>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

async fn serve(pki: &Pki, client_ca: Option<&Pki>, body: &'static str) -> Server {
    let (_, _, cert, key) = pki.leaf();
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(ca.ca.der().clone()).unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider())
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(vec![cert], key).unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, seen) = (acceptor.clone(), seen.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return; // the client refused our certificate, or we its
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).into_owned());
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    Server { url, heads }
}

/// A plan aimed at `url` with `extra` TOML in `[target]`, resolved with
/// files read from `dir`.
fn plan(dir: &std::path::Path, url: &str, extra: &str) -> infercheck::plan::Plan {
    let source = format!(
        "[target]\nbase_url = \"{url}\"\n{extra}\n[[phases]]\nname = \"p\"\nduration = \"1s\"\nload = {{ type = \"constant\", rate = 1 }}\n"
    );
    resolve_source("tls.toml", &source, Some(dir), &Overrides::default()).unwrap()
}

const UP: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"vllm","instance":"10.0.0.7:8000"},"value":[1700000000,"1"]}]}}"#;

#[tokio::test]
async fn an_https_target_with_the_plans_ca_and_token_answers_the_preflight() {
    let pki = Pki::new();
    let server = serve(&pki, None, "{}").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &pki.ca_pem).unwrap();
    std::fs::write(dir.path().join("token"), "s3cr3t-token-value\n").unwrap();
    let plan = plan(
        dir.path(),
        &server.url,
        "tls = { ca_file = \"ca.pem\" }\nauth = { bearer_file = \"token\" }",
    );
    let base = plan.target.base_url.clone().unwrap();
    let checked =
        infercheck::runner::preflight::check(&base, Duration::from_secs(5), &plan.target.access)
            .await;
    assert_eq!(checked, Ok(()));
    let heads = server.heads.lock().unwrap().join("\n").to_ascii_lowercase();
    assert!(
        heads.contains("authorization: bearer s3cr3t-token-value"),
        "the bearer token from the file reached the server: {heads}"
    );
    let resolved = serde_json::to_string(&plan.target).unwrap();
    assert!(
        !resolved.contains("s3cr3t"),
        "the resolved plan names the token's file, not its value: {resolved}"
    );
    assert!(resolved.contains("token"), "{resolved}");
}

#[tokio::test]
async fn a_target_signed_by_another_ca_fails_naming_the_certificate_problem() {
    let (pki, other) = (Pki::new(), Pki::new());
    let server = serve(&pki, None, "{}").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &other.ca_pem).unwrap();
    let plan = plan(dir.path(), &server.url, "tls = { ca_file = \"ca.pem\" }");
    let base = plan.target.base_url.clone().unwrap();
    let error =
        infercheck::runner::preflight::check(&base, Duration::from_secs(5), &plan.target.access)
            .await
            .unwrap_err();
    assert!(
        error.contains("invalid peer certificate"),
        "the error names the certificate problem: {error}"
    );
    // Without the plan's CA, the built-in roots do not know the test CA either.
    let plain =
        infercheck::runner::preflight::check(&base, Duration::from_secs(5), &Default::default())
            .await
            .unwrap_err();
    assert!(plain.contains("certificate"), "{plain}");
}

#[tokio::test]
async fn insecure_skip_verify_reaches_an_unknown_ca_and_the_report_is_told() {
    let pki = Pki::new();
    let server = serve(&pki, None, "{}").await;
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(
        dir.path(),
        &server.url,
        "tls = { insecure_skip_verify = true }",
    );
    let base = plan.target.base_url.clone().unwrap();
    let checked =
        infercheck::runner::preflight::check(&base, Duration::from_secs(5), &plan.target.access)
            .await;
    assert_eq!(checked, Ok(()));
    let warning = plan.target.access.unverified_warning("the target").unwrap();
    assert!(warning.contains("not verified"), "{warning}");
    let resolved = serde_json::to_value(&plan.target).unwrap();
    assert_eq!(resolved["access"]["tls"]["insecure_skip_verify"], true);
}

#[tokio::test]
async fn prometheus_over_mtls_with_basic_auth_answers_and_a_missing_client_cert_is_refused() {
    let pki = Pki::new();
    let server = serve(&pki, Some(&pki), UP).await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _, _) = pki.leaf();
    std::fs::write(dir.path().join("ca.pem"), &pki.ca_pem).unwrap();
    std::fs::write(dir.path().join("client.pem"), cert).unwrap();
    std::fs::write(dir.path().join("client.key"), key).unwrap();
    // SAFETY: the variable's name is this test's own; nothing else reads it.
    unsafe { std::env::set_var("INFERCHECK_TLS_TEST_PROM_PASSWORD", "hunter2-prom") };
    let source = format!(
        r#"[observe]
prometheus = "{url}"
tls = {{ ca_file = "ca.pem", client_cert_file = "client.pem", client_key_file = "client.key" }}
auth = {{ basic_user = "ci", basic_password_env = "INFERCHECK_TLS_TEST_PROM_PASSWORD" }}
[[phases]]
name = "p"
duration = "1s"
load = {{ type = "constant", rate = 1 }}
"#,
        url = server.url
    );
    let plan = resolve_source(
        "prom.toml",
        &source,
        Some(dir.path()),
        &Overrides::default(),
    )
    .unwrap();
    let url = plan.observe.prometheus.clone().unwrap();
    let found = infercheck::sample::prom::job_instances(&url, "vllm", &plan.observe.access)
        .await
        .unwrap();
    assert_eq!(found, vec!["http://10.0.0.7:8000".to_owned()]);
    let heads = server.heads.lock().unwrap().join("\n").to_ascii_lowercase();
    // base64("ci:hunter2-prom")
    assert!(
        heads.contains(&"authorization: basic Y2k6aHVudGVyMi1wcm9t".to_ascii_lowercase()),
        "{heads}"
    );
    let resolved = serde_json::to_string(&plan.observe).unwrap();
    assert!(!resolved.contains("hunter2"), "{resolved}");

    let mut no_client_cert = plan.observe.access.clone();
    no_client_cert.tls.material = Some(Arc::new(
        infercheck::tls::TlsMaterial::parse(Some(("ca.pem", pki.ca_pem.as_bytes())), None).unwrap(),
    ));
    let refused = infercheck::sample::prom::job_instances(&url, "vllm", &no_client_cert).await;
    assert!(
        refused.is_err(),
        "a server demanding a client certificate refuses one without"
    );
}

#[test]
fn credentials_inline_or_from_unset_variables_are_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let refuse = |extra: &str| {
        let source = format!(
            "[target]\nbase_url = \"https://127.0.0.1:1\"\n{extra}\n[[phases]]\nname = \"p\"\nduration = \"1s\"\nload = {{ type = \"constant\", rate = 1 }}\n"
        );
        resolve_source("bad.toml", &source, Some(dir.path()), &Overrides::default())
            .unwrap_err()
            .to_string()
    };
    let inline = refuse("headers = { Authorization = \"Bearer abc\" }");
    assert!(
        inline.contains("carries a credential") && !inline.contains("abc"),
        "{inline}"
    );
    let unset = refuse("auth = { bearer_env = \"INFERCHECK_TLS_TEST_NEVER_SET\" }");
    assert!(
        unset.contains("INFERCHECK_TLS_TEST_NEVER_SET") && unset.contains("not set"),
        "{unset}"
    );
    let missing = refuse("tls = { ca_file = \"nowhere.pem\" }");
    assert!(
        missing.contains("target.tls.ca_file") && missing.contains("nowhere.pem"),
        "{missing}"
    );
    std::fs::write(dir.path().join("junk.pem"), "not a certificate").unwrap();
    let junk = refuse("tls = { ca_file = \"junk.pem\" }");
    assert!(junk.contains("junk.pem"), "{junk}");
    let half = refuse("tls = { client_cert_file = \"c.pem\" }");
    assert!(half.contains("go together"), "{half}");
    let unknown = refuse("auth = { password = \"inline\" }");
    assert!(unknown.contains("unknown field"), "{unknown}");
}
