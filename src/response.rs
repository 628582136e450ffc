//! The server's answer to the HTTP upgrade, kept for the application:
//! after open ([`crate::Connection::response`]) and, for a refused upgrade,
//! inside the terminal `on_error`.

/// The HTTP status and headers of the upgrade response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeResponse {
    status: u16,
    headers: Vec<(String, String)>,
}

impl HandshakeResponse {
    /// From tungstenite's parsed response; header values that are not UTF-8
    /// are kept lossily converted.
    pub(crate) fn from_http<T>(r: &tungstenite::http::Response<T>) -> HandshakeResponse {
        let headers = r
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect();
        HandshakeResponse { status: r.status().as_u16(), headers }
    }

    /// The HTTP status: 101 for an accepted upgrade.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Every header in the order received (names in lower case); a header
    /// sent several times (`Set-Cookie`) appears several times.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The first value of the header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of the header `name` (case-insensitive), joined with
    /// `", "` as HTTP allows, except `Set-Cookie`, joined with `"\n"`
    /// (its values may contain commas). `None` when absent.
    pub fn header_joined(&self, name: &str) -> Option<String> {
        let sep = if name.eq_ignore_ascii_case("set-cookie") { "\n" } else { ", " };
        let values: Vec<&str> =
            self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect();
        (!values.is_empty()).then(|| values.join(sep))
    }
}
