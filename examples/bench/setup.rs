//! Connection setup: TCP connect + (TLS) + HTTP upgrade + closing handshake,
//! one connection after another, per second. The wss rows use a throwaway
//! CA made by the tests' certificate script, so nothing leaves the machine.

use crate::flow::PATIENCE;
use crate::raw;
use crate::stats::Transfer;
use crate::sys::cpu_time;
use crossbeam_channel::bounded;
use native_tls::{Certificate, TlsConnector};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use wsc::{Builder, Options};

/// A CA and a server certificate for 127.0.0.1 and localhost, in a
/// temporary directory.
pub struct TestCa {
    pub dir: PathBuf,
}

impl TestCa {
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn cert(&self) -> PathBuf {
        self.dir.join("good.pem")
    }
    pub fn key(&self) -> PathBuf {
        self.dir.join("good.key")
    }

    /// Makes one with the tests' certificate script (`tests/interop/gen-certs.sh`,
    /// P-256 keys); Err if it fails (no `openssl`, no `bash`).
    pub fn make() -> Result<TestCa, String> {
        let dir = std::env::temp_dir().join(format!("wsc-bench-ca-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/gen-certs.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .env("WSC_CERT_KEY", "ec")
            .output()
            .map_err(|e| format!("{}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!("{}: {}", script.display(), String::from_utf8_lossy(&out.stderr)));
        }
        Ok(TestCa { dir })
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A connector trusting the test CA, built once as a careful program would.
pub fn raw_connector(ca: &Path) -> Result<TlsConnector, String> {
    let pem = std::fs::read(ca).map_err(|e| e.to_string())?;
    let cert = Certificate::from_pem(&pem).map_err(|e| e.to_string())?;
    TlsConnector::builder().add_root_certificate(cert).build().map_err(|e| e.to_string())
}

pub fn raw_setup(url: &str, k: u64, tls: Option<&TlsConnector>) -> Result<Transfer, String> {
    let (t0, c0) = (Instant::now(), cpu_time());
    for _ in 0..k {
        raw::close(raw::connect(url, tls)?);
    }
    Ok(Transfer::new(k, 0, t0.elapsed(), cpu_time() - c0))
}

pub fn wsc_setup(url: &str, k: u64, ca: Option<&Path>) -> Result<Transfer, String> {
    let mut options = Options::new();
    if let Some(ca) = ca {
        options.ca_file(&ca.to_string_lossy()).map_err(|e| e.to_string())?;
    }
    let (tx, rx) = bounded(1);
    let (t0, c0) = (Instant::now(), cpu_time());
    for _ in 0..k {
        let (tx_close, tx_err) = (tx.clone(), tx.clone());
        Builder::new(url)
            .options(options.clone())
            .on_open(|c| {
                let _ = c.close();
            })
            .on_close(move |_, code, _| {
                let _ = tx_close.send(if code == 1000 { Ok(()) } else { Err(format!("closed {code}")) });
            })
            .on_error(move |_, e| {
                let _ = tx_err.send(Err(e.to_string()));
            })
            .connect()
            .map_err(|e| e.to_string())?;
        rx.recv_timeout(PATIENCE).map_err(|_| "wsc setup: no close within the patience limit".to_owned())??;
    }
    Ok(Transfer::new(k, 0, t0.elapsed(), cpu_time() - c0))
}
