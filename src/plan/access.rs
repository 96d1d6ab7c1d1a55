//! How a back-end is reached: the `auth` and `tls` tables of `[target]`,
//! `[observe]` (Prometheus) and `[traces]` (Jaeger, Tempo). Credentials
//! come from environment variables or files named in the plan, never from
//! the plan's text; certificate files are read and parsed here, so a wrong
//! path or a broken PEM fails before any request is sent. The result is a
//! [`tls::Access`], which serialises where a credential came from, never
//! its value.

use std::ops::Range;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;
use serde_spanned::Spanned;

use super::PlanError;
use crate::tls::{Access, Auth, AuthScheme, Secret, TlsMaterial, TlsSettings};

/// `auth = { ... }`: exactly one credential, each part from `*_env` (an
/// environment variable's name) or `*_file` (a file's path, its trailing
/// newline dropped).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub bearer_env: Option<Spanned<String>>,
    pub bearer_file: Option<Spanned<String>>,
    /// The token goes in this header instead (`x-api-key`); needs a bearer.
    pub header: Option<Spanned<String>>,
    /// Basic auth's user name (not a secret, so it may be written inline).
    pub basic_user: Option<Spanned<String>>,
    pub basic_user_env: Option<Spanned<String>>,
    pub basic_password_env: Option<Spanned<String>>,
    pub basic_password_file: Option<Spanned<String>>,
}

/// `tls = { ... }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// Trust only the CAs of this PEM bundle.
    pub ca_file: Option<Spanned<String>>,
    /// mTLS: the client certificate and its private key, PEM.
    pub client_cert_file: Option<Spanned<String>>,
    pub client_key_file: Option<Spanned<String>>,
    /// Skip certificate verification (flagged in the report).
    pub insecure_skip_verify: Option<bool>,
}

/// Header names that carry credentials: refused in `target.headers`,
/// whose values are written into report.json.
pub const CREDENTIAL_HEADERS: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "api-key",
];

type ErrorAt<'a> = &'a dyn Fn(Range<usize>, String) -> PlanError;

/// Resolves one back-end's access. `table` names it in errors
/// (`target`, `observe`, `traces`); files are read from `base_dir`;
/// `legacy_bearer` is `target.api_key_env`'s token, if given.
pub fn resolve(
    table: &str,
    auth: Option<Spanned<RawAuth>>,
    tls: Option<Spanned<RawTls>>,
    legacy_bearer: Option<(Spanned<String>, Secret)>,
    base_dir: Option<&Path>,
    error: ErrorAt<'_>,
) -> Result<Access, PlanError> {
    let auth = match (auth, legacy_bearer) {
        (Some(auth), Some((var, _))) => {
            return Err(error(
                var.span().start.min(auth.span().start)..auth.span().end,
                format!("{table}.api_key_env and {table}.auth both give a credential: keep one"),
            ));
        }
        (Some(auth), None) => Some(resolve_auth(table, auth, base_dir, error)?),
        (None, Some((var, token))) => Some(bearer(
            format!("env {}", var.get_ref()),
            "authorization",
            &token,
        )),
        (None, None) => None,
    };
    let tls = match tls {
        Some(tls) => resolve_tls(table, tls, base_dir, error)?,
        None => TlsSettings::default(),
    };
    Ok(Access { auth, tls })
}

fn bearer(from: String, header: &str, token: &Secret) -> Auth {
    let (scheme, value) = if header == "authorization" {
        (AuthScheme::Bearer, format!("Bearer {}", token.0))
    } else {
        (AuthScheme::Header, token.0.clone())
    };
    Auth {
        scheme,
        from,
        header: header.to_owned(),
        value: Secret(value),
    }
}

fn resolve_auth(
    table: &str,
    raw: Spanned<RawAuth>,
    base_dir: Option<&Path>,
    error: ErrorAt<'_>,
) -> Result<Auth, PlanError> {
    let span = raw.span();
    let raw = raw.into_inner();
    let read = |env: &Option<Spanned<String>>, file: &Option<Spanned<String>>, what: &str| {
        secret_from(table, what, env.as_ref(), file.as_ref(), base_dir, error)
    };
    let token = read(&raw.bearer_env, &raw.bearer_file, "bearer")?;
    let password = read(
        &raw.basic_password_env,
        &raw.basic_password_file,
        "basic_password",
    )?;
    let user = match (&raw.basic_user, &raw.basic_user_env) {
        (Some(_), Some(env)) => {
            return Err(error(
                env.span(),
                format!("{table}.auth: give basic_user or basic_user_env, not both"),
            ));
        }
        // What the report may say about the user: the inline name itself,
        // or only the variable it came from.
        (Some(user), None) => Some((user.get_ref().clone(), format!("user {}", user.get_ref()))),
        (None, Some(env)) => Some((
            env_value(table, "basic_user_env", env, error)?.0,
            format!("user from env {}", env.get_ref()),
        )),
        (None, None) => None,
    };
    match (token, user, password) {
        (Some((from, token)), None, None) => {
            let header = match &raw.header {
                Some(name) => header_name(table, name, error)?,
                None => "authorization".to_owned(),
            };
            Ok(bearer(from, &header, &token))
        }
        (None, Some((user, user_from)), Some((from, password))) => {
            if let Some(name) = &raw.header {
                return Err(error(
                    name.span(),
                    format!("{table}.auth.header applies to a bearer token, not basic auth"),
                ));
            }
            if user.contains(':') {
                return Err(error(
                    span,
                    format!("{table}.auth: a basic-auth user name cannot hold `:`"),
                ));
            }
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", password.0));
            Ok(Auth {
                scheme: AuthScheme::Basic,
                from: format!("{user_from}, password from {from}"),
                header: "authorization".to_owned(),
                value: Secret(format!("Basic {encoded}")),
            })
        }
        (None, Some(_), None) => Err(error(
            span,
            format!("{table}.auth: basic auth needs basic_password_env or basic_password_file"),
        )),
        (None, None, Some(_)) => Err(error(
            span,
            format!("{table}.auth: basic auth needs basic_user or basic_user_env"),
        )),
        (None, None, None) => Err(error(
            span,
            format!(
                "{table}.auth gives no credential: set bearer_env or bearer_file, or \
                 basic_user with basic_password_env or basic_password_file"
            ),
        )),
        (Some(_), _, _) => Err(error(
            span,
            format!("{table}.auth: give a bearer token or basic auth, not both"),
        )),
    }
}

/// A secret from `*_env` or `*_file` (not both); `None` when neither is set.
fn secret_from(
    table: &str,
    what: &str,
    env: Option<&Spanned<String>>,
    file: Option<&Spanned<String>>,
    base_dir: Option<&Path>,
    error: ErrorAt<'_>,
) -> Result<Option<(String, Secret)>, PlanError> {
    match (env, file) {
        (Some(_), Some(file)) => Err(error(
            file.span(),
            format!("{table}.auth: give {what}_env or {what}_file, not both"),
        )),
        (Some(env), None) => {
            let key = format!("{what}_env");
            let value = env_value(table, &key, env, error)?;
            Ok(Some((format!("env {}", env.get_ref()), value)))
        }
        (None, Some(file)) => {
            let path = relative(base_dir, file.get_ref());
            let text = std::fs::read_to_string(&path).map_err(|e| {
                error(
                    file.span(),
                    format!(
                        "{table}.auth.{what}_file: cannot read {}: {e}",
                        path.display()
                    ),
                )
            })?;
            let value = text.trim_end_matches(['\n', '\r']).to_owned();
            if value.is_empty() {
                return Err(error(
                    file.span(),
                    format!("{table}.auth.{what}_file: {} is empty", path.display()),
                ));
            }
            Ok(Some((format!("file {}", path.display()), Secret(value))))
        }
        (None, None) => Ok(None),
    }
}

fn env_value(
    table: &str,
    key: &str,
    var: &Spanned<String>,
    error: ErrorAt<'_>,
) -> Result<Secret, PlanError> {
    match std::env::var(var.get_ref()) {
        Ok(value) if !value.is_empty() => Ok(Secret(value)),
        Ok(_) => Err(error(
            var.span(),
            format!(
                "environment variable `{}` ({table}.auth.{key}) is empty",
                var.get_ref()
            ),
        )),
        Err(_) => Err(error(
            var.span(),
            format!(
                "environment variable `{}` ({table}.auth.{key}) is not set",
                var.get_ref()
            ),
        )),
    }
}

fn header_name(
    table: &str,
    name: &Spanned<String>,
    error: ErrorAt<'_>,
) -> Result<String, PlanError> {
    let lower = name.get_ref().to_ascii_lowercase();
    reqwest::header::HeaderName::from_bytes(lower.as_bytes())
        .map(|_| lower.clone())
        .map_err(|_| {
            error(
                name.span(),
                format!(
                    "{table}.auth.header: `{}` is not a valid header name",
                    name.get_ref()
                ),
            )
        })
}

fn resolve_tls(
    table: &str,
    raw: Spanned<RawTls>,
    base_dir: Option<&Path>,
    error: ErrorAt<'_>,
) -> Result<TlsSettings, PlanError> {
    let span = raw.span();
    let raw = raw.into_inner();
    let read = |file: &Spanned<String>, key: &str| -> Result<(PathBuf, Vec<u8>), PlanError> {
        let path = relative(base_dir, file.get_ref());
        std::fs::read(&path)
            .map(|bytes| (path.clone(), bytes))
            .map_err(|e| {
                error(
                    file.span(),
                    format!("{table}.tls.{key}: cannot read {}: {e}", path.display()),
                )
            })
    };
    let ca = raw
        .ca_file
        .as_ref()
        .map(|f| read(f, "ca_file"))
        .transpose()?;
    let client = match (&raw.client_cert_file, &raw.client_key_file) {
        (Some(cert), Some(key)) => Some((
            read(cert, "client_cert_file")?,
            read(key, "client_key_file")?,
        )),
        (None, None) => None,
        _ => {
            return Err(error(
                span,
                format!("{table}.tls: client_cert_file and client_key_file go together"),
            ));
        }
    };
    let name = |path: &Path| path.display().to_string();
    let (ca_name, cert_name, key_name) = (
        ca.as_ref().map(|(p, _)| name(p)),
        client.as_ref().map(|((p, _), _)| name(p)),
        client.as_ref().map(|(_, (p, _))| name(p)),
    );
    let material = if ca.is_some() || client.is_some() {
        let ca_arg = ca
            .as_ref()
            .zip(ca_name.as_deref())
            .map(|((_, b), n)| (n, b.as_slice()));
        let client_arg = client.as_ref().map(|((_, cert), (_, key))| {
            (
                (cert_name.as_deref().unwrap_or_default(), cert.as_slice()),
                (key_name.as_deref().unwrap_or_default(), key.as_slice()),
            )
        });
        let material = TlsMaterial::parse(ca_arg, client_arg)
            .map_err(|m| error(span.clone(), format!("{table}.tls: {m}")))?;
        Some(std::sync::Arc::new(material))
    } else {
        None
    };
    Ok(TlsSettings {
        ca_file: ca.map(|(p, _)| p),
        client_cert_file: client.as_ref().map(|((p, _), _)| p.clone()),
        client_key_file: client.map(|(_, (p, _))| p),
        insecure_skip_verify: raw.insecure_skip_verify.unwrap_or(false),
        material,
    })
}

fn relative(base_dir: Option<&Path>, file: &str) -> PathBuf {
    base_dir.map_or_else(|| PathBuf::from(file), |dir| dir.join(file))
}
