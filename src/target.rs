//! Where to connect, checked before any thread is started so a bad URI is
//! reported by `connect` itself (WSC_ERR_INVALID_URI) rather than a callback.

use crate::error::Error;
use tungstenite::http::Uri;

#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) uri: Uri,
    /// Host name or address, without IPv6 brackets.
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: bool,
}

impl Target {
    pub(crate) fn parse(uri: &str) -> Result<Target, Error> {
        let parsed: Uri = uri.parse().map_err(|e| Error::InvalidUri(format!("'{uri}' does not parse: {e}")))?;
        let tls = match parsed.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            Some(other) => {
                return Err(Error::InvalidUri(format!("scheme '{other}' is not supported: use ws:// or wss://")))
            }
            None => return Err(Error::InvalidUri(format!("'{uri}' has no scheme: use ws:// or wss://"))),
        };
        let host =
            parsed.host().filter(|h| !h.is_empty()).ok_or_else(|| Error::InvalidUri(format!("'{uri}' has no host")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = parsed.port_u16().unwrap_or(if tls { 443 } else { 80 });
        // `ws://host:port` has no path; the request line needs one.
        let uri = if parsed.path_and_query().is_none() {
            let mut parts = parsed.into_parts();
            parts.path_and_query = Some(tungstenite::http::uri::PathAndQuery::from_static("/"));
            Uri::from_parts(parts).map_err(|e| Error::InvalidUri(format!("'{uri}': {e}")))?
        } else {
            parsed
        };
        Ok(Target { uri, host, port, tls })
    }
}
