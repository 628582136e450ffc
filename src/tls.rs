//! TLS through native-tls (OpenSSL here). Certificates are read when the
//! option is set, so a missing CA file fails the setter, not the connection.
//!
//! Building a connector parses the whole system CA bundle (tens of
//! milliseconds), so it is built once per set of TLS options and shared by
//! their clones: every default `Options` shares one, and each setter starts
//! a fresh cache.

use crate::error::{ConnectionError, Error, ErrorKind};
use native_tls::{Certificate, Identity, TlsConnector};
use std::sync::{Arc, OnceLock};

type Cache = Arc<OnceLock<TlsConnector>>;

#[derive(Clone)]
pub(crate) struct TlsOptions {
    extra_roots: Vec<Certificate>,
    identity: Option<Identity>,
    danger_accept_invalid_certs: bool,
    connector: Cache,
}

impl Default for TlsOptions {
    fn default() -> Self {
        static DEFAULT: OnceLock<Cache> = OnceLock::new();
        TlsOptions {
            extra_roots: Vec::new(),
            identity: None,
            danger_accept_invalid_certs: false,
            connector: DEFAULT.get_or_init(Cache::default).clone(),
        }
    }
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("extra_roots", &self.extra_roots.len())
            .field("identity", &self.identity.is_some())
            .field("danger_accept_invalid_certs", &self.danger_accept_invalid_certs)
            .finish()
    }
}

fn read(path: &str, what: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::InvalidArgument(format!("cannot read {what} '{path}': {e}")))
}

impl TlsOptions {
    pub(crate) fn danger_accept_invalid_certs(&mut self, accept: bool) {
        self.danger_accept_invalid_certs = accept;
        self.connector = Cache::default();
    }

    pub(crate) fn add_ca_file(&mut self, path: &str) -> Result<(), Error> {
        let pem = read(path, "CA file")?;
        let certs = Certificate::stack_from_pem(&pem)
            .map_err(|e| Error::InvalidArgument(format!("'{path}' is not a PEM certificate file: {e}")))?;
        if certs.is_empty() {
            return Err(Error::InvalidArgument(format!("'{path}' holds no PEM certificate")));
        }
        self.extra_roots.extend(certs);
        self.connector = Cache::default();
        Ok(())
    }

    pub(crate) fn set_identity(&mut self, cert_path: &str, key_path: &str) -> Result<(), Error> {
        let cert = read(cert_path, "client certificate")?;
        let key = read(key_path, "client key")?;
        let identity = Identity::from_pkcs8(&cert, &key)
            .map_err(|e| Error::InvalidArgument(format!("bad client certificate or key: {e}")))?;
        self.identity = Some(identity);
        self.connector = Cache::default();
        Ok(())
    }

    /// The connector for these options, built on first use.
    pub(crate) fn connector(&self) -> Result<TlsConnector, ConnectionError> {
        if let Some(c) = self.connector.get() {
            return Ok(c.clone());
        }
        let built = self.build()?;
        Ok(self.connector.get_or_init(|| built).clone())
    }

    fn build(&self) -> Result<TlsConnector, ConnectionError> {
        let mut b = TlsConnector::builder();
        for cert in &self.extra_roots {
            b.add_root_certificate(cert.clone());
        }
        if let Some(id) = &self.identity {
            b.identity(id.clone());
        }
        if self.danger_accept_invalid_certs {
            b.danger_accept_invalid_certs(true).danger_accept_invalid_hostnames(true);
        }
        b.build().map_err(|e| ConnectionError::new(ErrorKind::Tls, format!("TLS setup failed: {e}")))
    }
}
