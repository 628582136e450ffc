//! TLS through native-tls (OpenSSL here). Certificates are read when the
//! option is set, so a missing CA file fails the setter, not the connection.

use crate::error::{ConnectionError, Error, ErrorKind};
use native_tls::{Certificate, Identity, TlsConnector};

#[derive(Clone, Default)]
pub(crate) struct TlsOptions {
    extra_roots: Vec<Certificate>,
    identity: Option<Identity>,
    pub(crate) danger_accept_invalid_certs: bool,
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
    pub(crate) fn add_ca_file(&mut self, path: &str) -> Result<(), Error> {
        let pem = read(path, "CA file")?;
        let certs = Certificate::stack_from_pem(&pem)
            .map_err(|e| Error::InvalidArgument(format!("'{path}' is not a PEM certificate file: {e}")))?;
        if certs.is_empty() {
            return Err(Error::InvalidArgument(format!("'{path}' holds no PEM certificate")));
        }
        self.extra_roots.extend(certs);
        Ok(())
    }

    pub(crate) fn set_identity(&mut self, cert_path: &str, key_path: &str) -> Result<(), Error> {
        let cert = read(cert_path, "client certificate")?;
        let key = read(key_path, "client key")?;
        let identity = Identity::from_pkcs8(&cert, &key)
            .map_err(|e| Error::InvalidArgument(format!("bad client certificate or key: {e}")))?;
        self.identity = Some(identity);
        Ok(())
    }

    pub(crate) fn connector(&self) -> Result<TlsConnector, ConnectionError> {
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
