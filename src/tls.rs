//! TLS and credentials for every HTTP client infercheck builds: rustls with
//! the ring provider, installed as the process default the first time a
//! client is built (reqwest's `rustls-no-provider` feature needs one
//! installed before any `reqwest::Client` is built, or it panics), and
//! [`Access`] — how one back-end (the target, Prometheus, Jaeger, Tempo) is
//! reached: a credential and the TLS trust settings, already loaded.
//!
//! Ground floor: imports nothing of the project. Build reqwest clients
//! through [`client_builder`] or [`Access::builder`] (or call [`install`]
//! first), never `reqwest::Client::new()` directly.
//!
//! Invariant: a credential's value is held only in a [`Secret`], which
//! prints as `***`, and goes out only as a sensitive header value; what an
//! `Access` serialises is where the credential came from, never its value.

use std::path::PathBuf;
use std::sync::Arc;

use reqwest::header::{HeaderName, HeaderValue};
use serde::Serialize;

/// Installs ring as the process's rustls provider; later calls do nothing.
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err only when another provider is already installed, which is as
        // good: every client then uses that one.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// `reqwest::Client::builder()` with the TLS provider installed.
pub fn client_builder() -> reqwest::ClientBuilder {
    install();
    reqwest::Client::builder()
}

/// A client with reqwest's defaults.
pub fn client() -> reqwest::Client {
    client_builder()
        .build()
        .expect("a default reqwest client always builds once TLS is installed")
}

/// A credential: printed as `***` so it never reaches a log or report.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// How one back-end is reached. The default is no credential and the
/// built-in trust roots.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Access {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    #[serde(skip_serializing_if = "TlsSettings::is_default")]
    pub tls: TlsSettings,
}

/// A credential sent on every request, as one header.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Auth {
    pub scheme: AuthScheme,
    /// Where the value was read: `env NAME` or `file PATH`.
    pub from: String,
    /// The header that carries it.
    pub header: String,
    /// The whole header value (`Bearer …`, `Basic …`, or the key itself).
    #[serde(skip)]
    pub value: Secret,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthScheme {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `Authorization: Basic base64(user:password)`.
    Basic,
    /// The token as the value of a named header (`x-api-key`).
    Header,
}

/// Which certificates are trusted and which one infercheck presents.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TlsSettings {
    /// Trust only the CAs in this PEM bundle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The client certificate (mTLS), PEM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cert_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_key_file: Option<PathBuf>,
    /// Certificates are not verified at all; the report says so.
    pub insecure_skip_verify: bool,
    /// The files' contents, parsed when the plan was read.
    #[serde(skip)]
    pub material: Option<Arc<TlsMaterial>>,
}

/// A PEM file's name (for errors) and contents.
pub type NamedPem<'a> = (&'a str, &'a [u8]);

/// Parsed certificates, ready to hand to reqwest.
pub struct TlsMaterial {
    pub roots: Vec<reqwest::Certificate>,
    pub identity: Option<reqwest::Identity>,
}

/// Parsed material is the same only as itself (it is compared through the
/// settings that name its files).
impl PartialEq for TlsMaterial {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("roots", &self.roots.len())
            .field("identity", &self.identity.is_some())
            .finish()
    }
}

impl TlsSettings {
    pub fn is_default(&self) -> bool {
        self.ca_file.is_none() && self.client_cert_file.is_none() && !self.insecure_skip_verify
    }
}

impl TlsMaterial {
    /// Parses a CA bundle and a client certificate with its key (all PEM).
    /// The error says which file is wrong and why.
    pub fn parse(
        ca: Option<NamedPem<'_>>,
        client: Option<(NamedPem<'_>, NamedPem<'_>)>,
    ) -> Result<TlsMaterial, String> {
        install();
        let roots = match ca {
            Some((name, pem)) => {
                let roots = reqwest::Certificate::from_pem_bundle(pem)
                    .map_err(|e| format!("{name}: not a PEM certificate bundle ({e})"))?;
                if roots.is_empty() {
                    return Err(format!("{name}: holds no PEM certificate"));
                }
                roots
            }
            None => Vec::new(),
        };
        let identity = match client {
            Some(((cert_name, cert), (key_name, key))) => {
                let mut pem = cert.to_vec();
                pem.push(b'\n');
                pem.extend_from_slice(key);
                Some(reqwest::Identity::from_pem(&pem).map_err(|e| {
                    format!(
                        "{cert_name} with {key_name}: not a PEM certificate and private key ({e})"
                    )
                })?)
            }
            None => None,
        };
        Ok(TlsMaterial { roots, identity })
    }
}

impl Access {
    /// The credential as a sensitive header (never printed by reqwest or
    /// hyper's Debug), if there is one.
    pub fn header(&self) -> Option<(HeaderName, HeaderValue)> {
        let auth = self.auth.as_ref()?;
        let name = HeaderName::from_bytes(auth.header.as_bytes()).ok()?;
        let mut value = HeaderValue::from_str(&auth.value.0).ok()?;
        value.set_sensitive(true);
        Some((name, value))
    }

    /// Applies the TLS settings to a builder (the credential is not added:
    /// see [`Access::builder`] or [`Access::header`]).
    pub fn tls(&self, mut builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        let tls = &self.tls;
        if let Some(material) = &tls.material {
            if !material.roots.is_empty() {
                builder = builder.tls_certs_only(material.roots.iter().cloned());
            }
            if let Some(identity) = &material.identity {
                builder = builder.identity(identity.clone());
            }
        }
        if tls.insecure_skip_verify {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        builder
    }

    /// A client builder with the provider installed, the TLS settings
    /// applied and the credential as a default header. A caller that sets
    /// its own `default_headers` must add [`Access::header`] to them.
    pub fn builder(&self) -> reqwest::ClientBuilder {
        let mut builder = self.tls(client_builder());
        if let Some((name, value)) = self.header() {
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(name, value);
            builder = builder.default_headers(headers);
        }
        builder
    }

    /// One line for the report when verification is off, naming `what`.
    pub fn unverified_warning(&self, what: &str) -> Option<String> {
        self.tls.insecure_skip_verify.then(|| {
            format!(
                "TLS certificates of {what} were not verified (insecure_skip_verify): \
                 anyone on the path could read the traffic and its credentials"
            )
        })
    }
}

/// An error with its whole chain of causes, so a TLS failure names the
/// certificate problem (`invalid peer certificate: UnknownIssuer`) rather
/// than only "error sending request".
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}
