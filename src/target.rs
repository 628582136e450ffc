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
        let host = parsed
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Error::InvalidUri(format!("'{uri}' has no host")))?
            .to_owned();
        let port = parsed.port_u16().unwrap_or(if tls { 443 } else { 80 });
        // `ws://host:port` has no path and `ws://host?x=1` an empty one; the
        // request line needs an absolute path: `GET /` and `GET /?x=1`.
        let uri = match parsed.path_and_query().map(|pq| pq.as_str()) {
            Some(pq) if pq.starts_with('/') => parsed,
            pq => {
                let path = format!("/{}", pq.unwrap_or(""));
                let mut parts = parsed.into_parts();
                parts.path_and_query = Some(path.parse().map_err(|e| Error::InvalidUri(format!("'{uri}': {e}")))?);
                Uri::from_parts(parts).map_err(|e| Error::InvalidUri(format!("'{uri}': {e}")))?
            }
        };
        Ok(Target { uri, host, port, tls })
    }
}

#[cfg(test)]
mod tests {
    use super::Target;
    use proptest::prelude::*;

    fn request_target(uri: &str) -> String {
        Target::parse(uri).unwrap().uri.path_and_query().unwrap().as_str().to_owned()
    }

    #[test]
    fn the_request_target_is_always_an_absolute_path() {
        assert_eq!(request_target("ws://h:1"), "/");
        assert_eq!(request_target("ws://h:1?x=1"), "/?x=1");
        assert_eq!(request_target("ws://h?x=1&y=%20"), "/?x=1&y=%20");
        assert_eq!(request_target("ws://h/"), "/");
        assert_eq!(request_target("wss://h/a/b?c"), "/a/b?c");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Any string: a target or an error, never a panic.
        #[test]
        fn any_string_parses_or_is_refused(s in any::<String>()) {
            let _ = Target::parse(&s);
        }

        /// URI-shaped strings: when accepted, the request line starts with '/'.
        #[test]
        fn accepted_uris_have_an_absolute_path(
            scheme in "(ws|wss|http|WS|)",
            host in "[a-z0-9.\\[\\]:-]{0,20}",
            port in proptest::option::of(any::<u32>()),
            rest in "[ -~]{0,30}",
        ) {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let uri = format!("{scheme}://{host}{port}{rest}");
            if let Ok(t) = Target::parse(&uri) {
                let pq = t.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
                prop_assert!(pq.starts_with('/'), "{uri:?} gave {pq:?}");
                prop_assert!(!t.host.is_empty());
            }
        }
    }
}
