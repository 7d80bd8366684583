use serde::Serialize;

use crate::auth::AuthError;

/// What an endpoint answers, for the adapter to write back.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use diag_core::EndpointRequest;
/// let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
/// let req = EndpointRequest { method: "GET".into(), path: "/debug".into(), ..Default::default() };
/// let resp = diag.serve(req).await;
/// // An adapter copies these onto its framework's response.
/// assert_eq!(resp.status, 401);
/// assert_eq!(resp.header("www-authenticate"), Some("Bearer realm=\"diag\""));
/// assert!(resp.body.starts_with(b"{\"error\":"));
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiagResponse {
    /// HTTP status code.
    pub status: u16,
    /// Header lines to set.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

pub(crate) const JSON: &str = "application/json";

/// A form `?format=` names, in any case: `text` (or `txt`) or `json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Json,
}

impl Format {
    /// The form `value` names, `None` for one diag does not serve.
    pub(crate) fn parse(value: &str) -> Option<Format> {
        if value.eq_ignore_ascii_case("text") || value.eq_ignore_ascii_case("txt") {
            Some(Format::Text)
        } else if value.eq_ignore_ascii_case("json") {
            Some(Format::Json)
        } else {
            None
        }
    }
}

impl DiagResponse {
    /// A response with `content-type` set, never cached, and never content-sniffed:
    /// diag's pages show what clients sent (captured bodies, URIs), which a browser must
    /// not take for HTML or script.
    ///
    /// ```
    /// use diag_core::DiagResponse;
    /// let resp = DiagResponse::new(200, "text/plain; charset=utf-8", "ok\n");
    /// assert_eq!(resp.header("content-type"), Some("text/plain; charset=utf-8"));
    /// assert_eq!(resp.header("cache-control"), Some("no-store"));
    /// assert_eq!(resp.header("x-content-type-options"), Some("nosniff"));
    /// assert_eq!(resp.body, b"ok\n");
    /// ```
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        DiagResponse {
            status,
            headers: vec![
                ("content-type", content_type.to_owned()),
                ("cache-control", "no-store".to_owned()),
                ("x-content-type-options", "nosniff".to_owned()),
            ],
            body: body.into(),
        }
    }

    /// `value` as JSON, pretty-printed when asked.
    ///
    /// ```
    /// use diag_core::DiagResponse;
    /// let resp = DiagResponse::json(200, &serde_json::json!({"healthy": true}), false);
    /// assert_eq!(resp.header("content-type"), Some("application/json"));
    /// assert_eq!(resp.body, b"{\"healthy\":true}\n");
    /// ```
    pub fn json(status: u16, value: &impl Serialize, pretty: bool) -> Self {
        let body = if pretty {
            serde_json::to_vec_pretty(value)
        } else {
            serde_json::to_vec(value)
        };
        match body {
            Ok(mut body) => {
                body.push(b'\n');
                DiagResponse::new(status, JSON, body)
            }
            Err(e) => DiagResponse::error(500, &format!("could not render JSON: {e}")),
        }
    }

    /// A JSON error body: `{"error": "..."}`.
    ///
    /// ```
    /// use diag_core::DiagResponse;
    /// let resp = DiagResponse::error(503, "diagnostics are starting");
    /// assert_eq!(resp.status, 503);
    /// assert_eq!(resp.body, b"{\"error\":\"diagnostics are starting\"}\n");
    /// ```
    pub fn error(status: u16, message: &str) -> Self {
        let mut body =
            serde_json::to_vec(&serde_json::json!({ "error": message })).unwrap_or_default();
        body.push(b'\n');
        DiagResponse::new(status, JSON, body)
    }

    /// This response, when it is an [`error`](Self::error), as one plain-text line
    /// (`error: …`); anything else as it is.
    pub(crate) fn error_as_text(self) -> Self {
        if self.status < 400 || self.header("content-type") != Some(JSON) {
            return self;
        }
        let Ok(serde_json::Value::Object(body)) = serde_json::from_slice(&self.body) else {
            return self;
        };
        let Some(message) = body.get("error").and_then(|m| m.as_str()) else {
            return self;
        };
        let mut text = DiagResponse::new(
            self.status,
            "text/plain; charset=utf-8",
            format!("error: {message}\n"),
        );
        // The rest of the error's own headers (`www-authenticate`, `allow`).
        for (name, value) in self.headers {
            if !text
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                text.headers.push((name, value));
            }
        }
        text
    }

    /// 413: the request body is over [`EndpointRequest::MAX_BODY`](crate::EndpointRequest::MAX_BODY).
    /// Adapters answer with it while reading an endpoint's body.
    ///
    /// ```
    /// use diag_core::DiagResponse;
    /// let resp = DiagResponse::body_too_large();
    /// assert_eq!(resp.status, 413);
    /// assert_eq!(resp.header("content-type"), Some("application/json"));
    /// ```
    pub fn body_too_large() -> Self {
        DiagResponse::error(
            413,
            &format!(
                "request body over {} bytes",
                crate::EndpointRequest::MAX_BODY
            ),
        )
    }

    /// 401 with both challenges (a browser asks for Basic credentials), or 403 when no
    /// credentials could help: they are right but only read, or no token is configured
    /// and the client is not on loopback.
    pub(crate) fn unauthorized(e: AuthError) -> Self {
        if !e.credentials_can_help() {
            return DiagResponse::error(403, &e.to_string());
        }
        let mut r = DiagResponse::error(401, &e.to_string());
        r.headers
            .push(("www-authenticate", "Bearer realm=\"diag\"".to_owned()));
        r.headers.push((
            "www-authenticate",
            "Basic realm=\"diag\", charset=\"UTF-8\"".to_owned(),
        ));
        r
    }

    pub(crate) fn not_found(message: &str) -> Self {
        DiagResponse::error(404, message)
    }

    pub(crate) fn method_not_allowed(allow: &'static str) -> Self {
        let mut r = DiagResponse::error(405, &format!("method not allowed; use {allow}"));
        r.headers.push(("allow", allow.to_owned()));
        r
    }

    /// The value of header `name`, if set.
    ///
    /// ```
    /// use diag_core::DiagResponse;
    /// let resp = DiagResponse::new(200, "application/json", "{}");
    /// assert_eq!(resp.header("Content-Type"), Some("application/json")); // any case
    /// assert_eq!(resp.header("etag"), None);
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
