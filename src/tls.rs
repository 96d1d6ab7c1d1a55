//! TLS for every HTTP client infercheck builds: rustls with the ring
//! provider, installed as the process default the first time a client is
//! built (reqwest's `rustls-no-provider` feature needs one installed before
//! any `reqwest::Client` is built, or it panics).
//!
//! Ground floor: imports nothing of the project. Build reqwest clients
//! through [`client_builder`] (or call [`install`] first), never
//! `reqwest::Client::new()` directly.

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
