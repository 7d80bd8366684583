//! Secrets out of captures, when they are read: the flight recorder keeps a capture as
//! it was recorded and redacts it for every reader (`FlightRecorder::get`/`recent`, the
//! capture list), so nothing `/debug/requests` serves, as JSON or as text, carries a
//! credential or a configured secret field. Redacting on read keeps the cost off the
//! debug request itself, which the recorder may evict before anyone looks.
//!
//! - Header values of `authorization`, `proxy-authorization`, `cookie`, `set-cookie`,
//!   the debug header, and configured headers become `[redacted]`.
//! - Configured fields (default: [`DEFAULT_FIELDS`]) are redacted, matched without
//!   regard to case, in JSON bodies at any depth, in form bodies and query strings,
//!   and in span and log fields.
//! - Bodies are redacted in place: every `"field": value` of a secret field has its value
//!   replaced, and everything else stays as the client sent it (key order, spacing,
//!   numbers). A JSON body that is complete and parses is reported as redacted as
//!   [`BodyRedaction::Json`] (every string followed by `:` is then a key, so the pass is
//!   exact); one that is truncated or does not parse (and any other text body) as
//!   [`BodyRedaction::Textual`], where a nested value that does not close within the
//!   capture takes the rest of the body with it. Pairs inside JSON string values (a URL's
//!   query, JSON encoded in a string) are redacted too.
//! - XML and HTML bodies are scanned in place by `redact_xml.rs` ([`BodyRedaction::Xml`]).
//! - Text of no known format (plain-text bodies, JSON that does not parse, header values,
//!   span and log field values, log messages, text inside XML) gets a pass over
//!   `k=v`, `k = v`, `k: v`, `"k": v`, `'k': v` and `"k" => v` pairs (see
//!   `TextPair::value` for where each kind of value ends).

/// What a redacted value reads as.
///
/// ```
/// # use diag_core::debug::DebugLevel;
/// # use diag_core::request::RequestView;
/// # use diag_core::trace::TraceId;
/// use diag_core::debug::REDACTED;
/// # let diag = diag_core::Diag::builder().build().unwrap();
/// let headers = vec![("authorization".to_owned(), "Bearer eyJhbGciOi".to_owned())];
/// # let view = RequestView { method: "GET", route: None, uri: "/", headers: &headers, peer: &|| None };
/// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
/// debug.finish_incomplete();
/// let capture = diag.debug_mode().recorder().get(debug.id()).unwrap();
/// assert_eq!(capture.request.headers[0].1, REDACTED);
/// ```
pub const REDACTED: &str = "[redacted]";

/// Headers always redacted (the debug header is added to these).
///
/// ```
/// # use diag_core::debug::DebugLevel;
/// # use diag_core::request::RequestView;
/// # use diag_core::trace::TraceId;
/// use diag_core::debug::{ALWAYS_REDACTED_HEADERS, REDACTED};
/// # let diag = diag_core::Diag::builder().build().unwrap();
/// let headers: Vec<(String, String)> =
///     ALWAYS_REDACTED_HEADERS.iter().map(|h| (h.to_string(), "secret".to_owned())).collect();
/// # let view = RequestView { method: "GET", route: None, uri: "/", headers: &headers, peer: &|| None };
/// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
/// debug.finish_incomplete();
/// let capture = diag.debug_mode().recorder().get(debug.id()).unwrap();
/// assert!(capture.request.headers.iter().all(|(_, value)| value == REDACTED));
/// ```
pub const ALWAYS_REDACTED_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// Body, query and log fields redacted unless the builder says otherwise, and matched
/// as whole words of a name (see [`redact_field`](crate::DiagBuilder::redact_field)):
/// `token` hides `access_token`, `X-Auth-Token` and `refreshToken`; `api_key` hides
/// `apiKey` and the header `X-Api-Key`; `password` hides `user_password`, but not
/// `passwords_policy`.
///
/// ```
/// # use diag_core::debug::DebugLevel;
/// # use diag_core::request::RequestView;
/// # use diag_core::trace::TraceId;
/// use diag_core::debug::DEFAULT_FIELDS;
/// assert!(DEFAULT_FIELDS.contains(&"password"));
/// # let diag = diag_core::Diag::builder().build().unwrap();
/// # let view = RequestView { method: "GET", route: None, uri: "/login?user=ada&Password=hunter2", headers: &(), peer: &|| None };
/// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
/// debug.finish_incomplete();
/// let capture = diag.debug_mode().recorder().get(debug.id()).unwrap();
/// assert_eq!(capture.request.uri, "/login?user=ada&Password=[redacted]");
/// ```
pub const DEFAULT_FIELDS: [&str; 16] = [
    "password",
    "passwd",
    "secret",
    "token",
    "access_token",
    "refresh_token",
    "api_key",
    "card_number",
    "cvv",
    "authorization",
    "authentication",
    "auth",
    "cookie",
    "session_id",
    "credential",
    "credentials",
];

/// How a body was redacted, as reported with the capture.
///
/// ```
/// # use diag_core::debug::DebugLevel;
/// # use diag_core::request::RequestView;
/// # use diag_core::trace::TraceId;
/// use diag_core::debug::BodyRedaction;
/// # let diag = diag_core::Diag::builder().build().unwrap();
/// let form = vec![("content-type".to_owned(), "application/x-www-form-urlencoded".to_owned())];
/// # let view = RequestView { method: "POST", route: None, uri: "/login", headers: &form, peer: &|| None };
/// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
/// debug.request_chunk(b"user=ada&password=hunter2");
/// debug.request_end();
/// debug.finish_incomplete();
/// let body = diag.debug_mode().recorder().get(debug.id()).unwrap().request.body.clone();
/// assert_eq!(body.redaction, Some(BodyRedaction::Form));
/// assert_eq!(body.text.as_deref(), Some("user=ada&password=[redacted]"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyRedaction {
    /// Complete, valid JSON; matching fields replaced at any depth, the rest as sent.
    Json,
    /// A textual pass over `"field": value` patterns (truncated or unparsable JSON, or text).
    Textual,
    /// `application/x-www-form-urlencoded` pairs.
    Form,
    /// `multipart/form-data` parts: a secret field's part content replaced, then the
    /// textual pass over the rest.
    Multipart,
    /// XML or HTML (or text that starts as markup): the content of an element, and the
    /// value of an attribute, named by a secret field replaced in place (an element cut
    /// off by the capture's cap to the end), then the textual pass over text and
    /// attribute values.
    Xml,
}

/// The redaction rules of one `Diag`.
#[derive(Clone, Debug)]
pub(crate) struct Redactor {
    headers: Vec<String>,
    /// The fields, each as the words of its name (see [`words`] and
    /// [`words_between_separators`]).
    fields: Vec<Vec<String>>,
    /// Key fragments the operator made secret with `secret_key` (lower case): a header or
    /// field whose name contains one is redacted too. The default fragments are not
    /// here: `key` alone would hide every `cache_key` of a capture.
    fragments: Vec<String>,
}

impl Redactor {
    pub(crate) fn new(debug_header: &str, extra_headers: &[String], fields: &[String]) -> Self {
        let mut headers: Vec<String> = ALWAYS_REDACTED_HEADERS
            .iter()
            .map(|s| (*s).to_owned())
            .chain(std::iter::once(debug_header.to_owned()))
            .chain(extra_headers.iter().cloned())
            .map(|s| s.trim().to_ascii_lowercase())
            .collect();
        headers.sort();
        headers.dedup();
        // Each field both ways it splits (`apiKey`: `api key`, and `apikey`), and its
        // words joined (`api_key` is also `apikey`, as `X-Apikey` writes it).
        let mut fields: Vec<Vec<String>> = fields
            .iter()
            .flat_map(|s| {
                [
                    words(s),
                    words_between_separators(s),
                    vec![words(s).concat()],
                ]
            })
            .filter(|w| !w.is_empty() && !w[0].is_empty())
            .collect();
        fields.sort();
        fields.dedup();
        Redactor {
            headers,
            fields,
            fragments: Vec::new(),
        }
    }

    /// These rules, also redacting names that contain one of `fragments` (lower case).
    pub(crate) fn with_fragments(mut self, fragments: Vec<String>) -> Self {
        self.fragments = fragments;
        self
    }

    /// A header is secret when it is named, or when its name holds a secret field's
    /// words (`X-Api-Key`, `X-Auth-Token`).
    fn is_secret_header(&self, name: &str) -> bool {
        self.headers.iter().any(|h| h.eq_ignore_ascii_case(name)) || self.is_secret_field(name)
    }

    /// A field is secret when the words of its name hold the words of a secret field's,
    /// in a row, or its name contains an operator's fragment.
    pub(super) fn is_secret_field(&self, name: &str) -> bool {
        if !self.fields.is_empty() {
            // Split where camel case starts a word, and not: `passworD` is `password`
            // in odd case, not `passwor` and `d`.
            for name_words in [words(name), words_between_separators(name)] {
                if self
                    .fields
                    .iter()
                    .any(|f| name_words.windows(f.len()).any(|w| w == f.as_slice()))
                {
                    return true;
                }
            }
        }
        self.has_fragment(name)
    }

    fn has_fragment(&self, name: &str) -> bool {
        if self.fragments.is_empty() {
            return false;
        }
        let name = name.to_ascii_lowercase();
        self.fragments.iter().any(|f| name.contains(f.as_str()))
    }

    /// Copies headers, redacting secret ones.
    pub(crate) fn headers(&self, headers: &dyn crate::HeaderView) -> Vec<(String, String)> {
        let mut out = Vec::new();
        headers.for_each(&mut |name, value| {
            let value = if self.is_secret_header(name) {
                REDACTED.to_owned()
            } else {
                // A URL in a value (`Referer`, `X-Original-URL`) keeps its query secrets,
                // and pairs in it (`user=ada; password=…`) theirs.
                let value = String::from_utf8_lossy(value);
                if value.contains('?') {
                    self.text(&self.uri(&value))
                } else {
                    self.text(&value)
                }
            };
            out.push((name.to_owned(), value));
        });
        out
    }

    /// A path and query with secret query parameters redacted.
    pub(crate) fn uri(&self, uri: &str) -> String {
        match uri.split_once('?') {
            Some((path, query)) => format!("{path}?{}", self.form(query)),
            None => uri.to_owned(),
        }
    }

    /// `k=v&...` with secret keys' values redacted. A nested key (`user[password]`, as
    /// Rails and PHP forms write them) is secret when its last part is.
    pub(crate) fn form(&self, text: &str) -> String {
        text.split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if self.is_secret_form_key(&percent_decode(k)) => {
                    format!("{k}={REDACTED}")
                }
                _ => pair.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The pass for text of no known format (a plain-text or unlabelled body, a header
    /// value, a span or log field, text inside XML): [`text_pairs`](Self::text_pairs),
    /// then [`json_text`](Self::json_text) for JSON written into the text.
    pub(super) fn text(&self, text: &str) -> String {
        self.json_text(&self.text_pairs(text))
    }

    /// `key=value`, `key = value`, `key: value` and `"key" => value` pairs in text that is
    /// no form, a secret key's value replaced as far as its kind of pair reaches (see
    /// [`TextPair::value`]). A bare key counts only shaped like one (letters, digits,
    /// `_.-[]%+`, and whole: prose with an `&` and an `=` in it keeps its words), a quoted
    /// one (`"k"`, `'k'`, and `\"k\"` inside a JSON string) whatever it holds.
    fn text_pairs(&self, text: &str) -> String {
        let b = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let (mut i, mut copied) = (0, 0);
        while i < b.len() {
            let Some(pair) = TextPair::at(b, i) else {
                i += 1;
                continue;
            };
            if !self.is_secret_form_key(&percent_decode(&text[pair.key.clone()])) {
                i = pair.key_end;
                continue;
            }
            let Some((start, end, quote)) = pair.value(b) else {
                i = pair.key_end;
                continue;
            };
            out.push_str(&text[copied..start]);
            out.push_str(quote);
            out.push_str(REDACTED);
            out.push_str(quote);
            (i, copied) = (end.max(i + 1), end);
        }
        out.push_str(&text[copied..]);
        out
    }

    fn is_secret_form_key(&self, key: &str) -> bool {
        if self.is_secret_field(key) {
            return true;
        }
        // `user[password]`, `users[0][password]`, `password[]`: the last named part.
        let mut parts = key.split(['[', ']']).filter(|p| !p.is_empty());
        parts
            .next_back()
            .is_some_and(|last| self.is_secret_field(last))
    }

    /// Span or log fields, copied for a reader, with secret ones redacted and the
    /// textual pass over the others.
    pub(crate) fn fields<K: AsRef<str>>(&self, fields: &[(K, String)]) -> Vec<(String, String)> {
        fields
            .iter()
            .map(|(k, v)| {
                let k = k.as_ref();
                // Other values may hold secrets of their own: a `TraceLayer` span's `uri`
                // carries the query.
                let v = if self.is_secret_header(k) {
                    REDACTED.to_owned()
                } else {
                    self.text(v)
                };
                (k.to_owned(), v)
            })
            .collect()
    }

    /// A text body, redacted as its content type and completeness allow.
    pub(crate) fn body_text(
        &self,
        content_type: Option<&str>,
        text: &str,
        complete: bool,
    ) -> (String, Option<BodyRedaction>) {
        // Nothing to redact in: no pass is named (an empty body said "redacted" before).
        if (self.fields.is_empty() && self.fragments.is_empty()) || text.is_empty() {
            return (text.to_owned(), None);
        }
        let ct = content_type.unwrap_or("").to_ascii_lowercase();
        let looks_json = matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'['));
        // The client chose the label: `curl -d '{"password": …}'` sends JSON labelled as a
        // form. Such a body goes through the JSON passes; a real form gets the textual
        // pass too, for JSON inside one of its values.
        let form = ct.starts_with("application/x-www-form-urlencoded");
        if form && !looks_json {
            return (self.json_text(&self.form(text)), Some(BodyRedaction::Form));
        }
        if ct.starts_with("multipart/")
            && let Some(boundary) = content_type.and_then(multipart_boundary)
        {
            let parts = self.multipart(text, boundary);
            return (self.text(&parts), Some(BodyRedaction::Multipart));
        }
        if let Some(html) = markup(&ct, text) {
            return (self.xml(text, html), Some(BodyRedaction::Xml));
        }
        let jsonish = ct.contains("json") || ((ct.is_empty() || form) && looks_json);
        // In valid JSON every string followed by `:` is a key, so the same walk is exact
        // there; it keeps the body as sent (key order, spacing, numbers beyond `f64`),
        // where a parse and re-serialization would show the reader another body.
        let valid =
            jsonish && complete && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
        if valid {
            return (self.json_text(text), Some(BodyRedaction::Json));
        }
        // Plain text, a type nobody named, or JSON that is none (`{password: "…"}`,
        // `{'password': …}`, cut short): pairs of every shape, and `"password":` values.
        (self.text(text), Some(BodyRedaction::Textual))
    }

    /// `multipart/form-data` with the content of every part named by a secret field
    /// (`Content-Disposition: form-data; name="password"`) replaced; a part cut off by
    /// the capture's cap is replaced to the end.
    fn multipart(&self, text: &str, boundary: &str) -> String {
        let delimiter = format!("--{boundary}");
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find(&delimiter) {
            out.push_str(&rest[..at + delimiter.len()]);
            rest = &rest[at + delimiter.len()..];
            let Some(head_end) = rest
                .find("\r\n\r\n")
                .map(|i| i + 4)
                .or_else(|| rest.find("\n\n").map(|i| i + 2))
            else {
                break;
            };
            let head = &rest[..head_end];
            out.push_str(head);
            rest = &rest[head_end..];
            let end = rest.find(&delimiter).unwrap_or(rest.len());
            let content = &rest[..end];
            if part_name(head).is_some_and(|name| self.is_secret_form_key(name)) {
                out.push_str(REDACTED);
                // The line break before the next delimiter belongs to the framing.
                let kept = content.len() - content.trim_end_matches(['\r', '\n']).len();
                out.push_str(&content[content.len() - kept.min(2)..]);
            } else {
                out.push_str(content);
            }
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    }

    /// Walks string tokens; a string followed by `:` is a key, and a secret key's value
    /// is replaced up to where it ends (or to the end of the text); any other string
    /// gets [`text_pairs`](Self::text_pairs) inside it. A key written with escapes
    /// (`"pass\u0077ord"`) is matched as it decodes.
    fn json_text(&self, text: &str) -> String {
        let b = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let (mut i, mut copied) = (0, 0);
        while i < b.len() {
            if b[i] != b'"' {
                i += 1;
                continue;
            }
            let key_end = string_end(b, i);
            let mut j = skip_ws(b, key_end);
            let key = text.get(i + 1..key_end.saturating_sub(1)).unwrap_or("");
            let secret = |key: &str| {
                if !key.contains('\\') {
                    return self.is_secret_field(key);
                }
                serde_json::from_str::<String>(&text[i..key_end])
                    .is_ok_and(|key| self.is_secret_field(&key))
            };
            let is_key = j < b.len() && b[j] == b':';
            if is_key && secret(key) {
                j = skip_ws(b, j + 1);
                let value_end = value_end(b, j);
                out.push_str(&text[copied..j]);
                out.push('"');
                out.push_str(REDACTED);
                out.push('"');
                copied = value_end;
                i = value_end;
                continue;
            }
            if !is_key {
                // A string value may hold pairs of its own: a URL's query, JSON encoded
                // in a string (`"{\"password\":…}"`). Replacing them keeps its escapes
                // whole, so valid JSON stays valid.
                let inner_end = Quote::Double.closing(b, i + 1).unwrap_or(b.len());
                let inner = &text[i + 1..inner_end];
                let redacted = self.text_pairs(inner);
                if redacted != inner {
                    out.push_str(&text[copied..=i]);
                    out.push_str(&redacted);
                    copied = inner_end;
                }
            }
            i = key_end;
        }
        out.push_str(&text[copied..]);
        out
    }
}

/// A key in text and the separator after it, as [`Redactor::text_pairs`] finds them.
struct TextPair {
    /// The key's name, without its quotes.
    key: std::ops::Range<usize>,
    /// Just past the key and its closing quote.
    key_end: usize,
    quote: Option<Quote>,
    separator: Separator,
    /// Just past the separator.
    after: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Separator {
    /// `=`
    Equals,
    /// `:`, or `=>` (a Ruby hash, as Rails logs print one).
    Colon,
}

impl TextPair {
    /// The pair whose key starts at `i`, if a key starts there and a separator follows
    /// it. A quoted string that is no key is not skipped by the caller: it may hold
    /// pairs of its own (`"see https://x/?token=…"`).
    fn at(b: &[u8], i: usize) -> Option<TextPair> {
        let (key, quote, key_end) = if is_key_byte(b[i]) {
            if i > 0 && is_key_byte(b[i - 1]) {
                return None;
            }
            let end = (i..b.len())
                .find(|&j| !is_key_byte(b[j]))
                .unwrap_or(b.len());
            (i..end, None, end)
        } else {
            let q = Quote::at(b, i)?;
            let start = i + q.len();
            let close = q.closing(b, start)?;
            if close == start || b[start..close].contains(&b'\n') {
                return None;
            }
            (start..close, Some(q), close + q.len())
        };
        let k = skip_hspace(b, key_end);
        let (separator, after) = match (b.get(k), b.get(k + 1)) {
            (Some(b'='), Some(b'>')) => (Separator::Colon, k + 2),
            (Some(b'='), _) => (Separator::Equals, k + 1),
            // `app::auth::token` is a path, not a pair.
            (Some(b':'), next) if next != Some(&b':') => (Separator::Colon, k + 1),
            _ => return None,
        };
        Some(TextPair {
            key,
            key_end,
            quote,
            separator,
            after,
        })
    }

    /// Where the value starts and ends, and the quote its replacement goes in (a JSON
    /// object, array or number: `"`, or `\"` inside a JSON string). A quoted value is
    /// its quotes' content (to the end of the text if they do not close: a capture cut
    /// inside it); a JSON-quoted key's bare value ends as JSON's does; `k=v` ends at a
    /// space, `&` or `; ` (a query, a cookie list, logfmt); `k: v` and `k = v` take the
    /// rest of the line and the lines indented under it (a log line, YAML, an ini file:
    /// such values hold spaces).
    fn value(&self, b: &[u8]) -> Option<(usize, usize, &'static str)> {
        let v = skip_hspace(b, self.after);
        let first = *b.get(v)?;
        if let Some(q) = Quote::at(b, v) {
            let start = v + q.len();
            return Some((start, q.closing(b, start).unwrap_or(b.len()), ""));
        }
        let quote = match self.quote {
            Some(Quote::Double) => "\"",
            Some(Quote::Escaped) => "\\\"",
            _ => "",
        };
        if matches!(first, b'{' | b'[') {
            return Some((v, value_end(b, v), quote));
        }
        if !quote.is_empty() {
            return Some((v, value_end(b, v), quote)).filter(|(s, e, _)| e > s);
        }
        if self.separator == Separator::Equals && v == self.after {
            return Some((v, bare_end(b, v), "")).filter(|(s, e, _)| e > s);
        }
        block(b, self.key.start, v)
    }
}

/// A `k: v` value from `v`: the rest of its line and the lines indented deeper than the
/// key's (YAML's `password: |` and continued scalars), from the first that holds
/// anything.
fn block(b: &[u8], key: usize, v: usize) -> Option<(usize, usize, &'static str)> {
    let line_start = b[..key]
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(0, |p| p + 1);
    let indent = skip_hspace(b, line_start) - line_start;
    let (mut start, mut end) = (v, line_end(b, v));
    loop {
        let next = skip_newline(b, end);
        let content = skip_hspace(b, next);
        if next == end
            || content - next <= indent
            || matches!(b.get(content), None | Some(b'\n' | b'\r'))
        {
            break;
        }
        if start == end
            || b[start..end]
                .iter()
                .all(|&c| matches!(c, b'|' | b'>' | b'-' | b'+'))
        {
            start = content;
        }
        end = line_end(b, content);
    }
    (end > start).then_some((start, end, ""))
}

fn skip_newline(b: &[u8], mut i: usize) -> usize {
    if b.get(i) == Some(&b'\r') {
        i += 1;
    }
    if b.get(i) == Some(&b'\n') {
        i += 1;
    }
    i
}

/// A quote that opens a string in text.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    Double,
    Single,
    /// `\"`: a string inside a JSON string (`"{\"password\":\"…\"}"`).
    Escaped,
}

impl Quote {
    fn at(b: &[u8], i: usize) -> Option<Quote> {
        match b.get(i)? {
            b'"' if i == 0 || b[i - 1] != b'\\' => Some(Quote::Double),
            b'\'' => Some(Quote::Single),
            b'\\' if b.get(i + 1) == Some(&b'"') => Some(Quote::Escaped),
            _ => None,
        }
    }

    fn len(self) -> usize {
        if self == Quote::Escaped { 2 } else { 1 }
    }

    /// Index of the quote that closes a string whose content starts at `from`, skipping
    /// backslash escapes.
    fn closing(self, b: &[u8], from: usize) -> Option<usize> {
        let mut i = from;
        while i < b.len() {
            match b[i] {
                b'\\' if self == Quote::Escaped && b.get(i + 1) == Some(&b'"') => return Some(i),
                b'\\' => i += 2,
                b'"' if self == Quote::Double => return Some(i),
                b'\'' if self == Quote::Single => return Some(i),
                _ => i += 1,
            }
        }
        None
    }
}

/// HTTP authentication schemes, whose credential follows after a space.
const AUTH_SCHEMES: [&str; 6] = ["basic", "bearer", "digest", "token", "negotiate", "ntlm"];

/// A byte of a bare key: letters, digits, `_.-[]%+` (`user[password]`, `pass%77ord`).
fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_.-[]%+".contains(&b)
}

fn skip_hspace(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t') {
        i += 1;
    }
    i
}

/// Where a bare `k=v` value ends: at white space, `&` or a quote (a URL inside an
/// attribute), or at `;` or `,` with a space or the end after it (`a=1; b=2`), so
/// `password=a;b` is one value. Escapes (`\"` in a JSON string) stay whole.
fn bare_end(b: &[u8], mut i: usize) -> usize {
    // `auth=Basic dXNl…`: the credential is the word after the scheme.
    let word = &b[i..(i..b.len()).find(|&j| b[j] == b' ').unwrap_or(b.len())];
    if AUTH_SCHEMES
        .iter()
        .any(|s| s.as_bytes().eq_ignore_ascii_case(word))
    {
        i = skip_hspace(b, i + word.len());
    }
    while i < b.len() {
        match b[i] {
            b'\\' => {
                i += 2;
                continue;
            }
            b'&' | b'"' => return i,
            c if c.is_ascii_whitespace() => return i,
            b';' | b',' if b.get(i + 1).is_none_or(u8::is_ascii_whitespace) => return i,
            _ => {}
        }
        i += 1;
    }
    b.len()
}

fn line_end(b: &[u8], i: usize) -> usize {
    (i..b.len())
        .find(|&j| matches!(b[j], b'\n' | b'\r'))
        .unwrap_or(b.len())
}

/// The words of a name, lower case: split at anything not a letter or digit and where
/// camel case starts a word (`refreshToken`, `APIKey`: `api`, `key`).
fn words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut out = Vec::new();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            continue;
        }
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1);
        let starts_word = c.is_uppercase()
            && prev.is_some_and(|p| {
                p.is_lowercase()
                    || p.is_numeric()
                    || (p.is_uppercase() && next.is_some_and(|n| n.is_lowercase()))
            });
        if starts_word && !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Whether a body (`ct` lower case) gets the XML pass, and then whether it is HTML
/// (whose `<input>` and `<meta>` never close): an XML or HTML type, or plain or
/// unlabelled text that starts as markup (SOAP sent as `text/plain`).
fn markup(ct: &str, text: &str) -> Option<bool> {
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence == "text/html" {
        return Some(true);
    }
    if essence.ends_with("/xml") || essence.ends_with("+xml") {
        return Some(false);
    }
    let start = text.trim_start();
    let starts_as_markup = start.starts_with('<')
        && start[1..]
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'?' || b == b'!');
    if !(essence.is_empty() || essence == "text/plain") || !starts_as_markup {
        return None;
    }
    let head = start.get(..14).unwrap_or(start).to_ascii_lowercase();
    Some(head.starts_with("<!doctype html") || head.starts_with("<html"))
}

/// The `boundary` parameter of a `multipart/...` content type, unquoted.
fn multipart_boundary(content_type: &str) -> Option<&str> {
    param(content_type, "boundary").filter(|b| !b.is_empty())
}

/// The `name` of a multipart part, from its `Content-Disposition` header (not its
/// `filename`).
fn part_name(head: &str) -> Option<&str> {
    let value = head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case("content-disposition")
            .then_some(v)
    })?;
    param(value, "name")
}

/// The parameter `name` of a header value (`type; name="value"`), unquoted.
fn param<'v>(value: &'v str, name: &str) -> Option<&'v str> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"'))
    })
}

/// The words of a name split only at what is not a letter or digit, lower case.
fn words_between_separators(name: &str) -> Vec<String> {
    name.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Index just past the string starting at `start` (a `"`), or the end of the text.
fn string_end(b: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Index just past the JSON value starting at `start`, or the end of the text when it
/// does not end within it (a truncated nested value takes the rest along).
fn value_end(b: &[u8], start: usize) -> usize {
    match b.get(start) {
        None => start,
        Some(b'"') => string_end(b, start),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut i = start;
            while i < b.len() {
                match b[i] {
                    b'"' => {
                        i = string_end(b, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            b.len()
        }
        Some(_) => {
            let mut i = start;
            while i < b.len() && !matches!(b[i], b',' | b'}' | b']') && !b[i].is_ascii_whitespace()
            {
                i += 1;
            }
            i
        }
    }
}

/// `%XX` and `+` decoding for matching form keys; invalid escapes are kept as they are.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor() -> Redactor {
        let fields: Vec<String> = DEFAULT_FIELDS
            .iter()
            .map(|s| (*s).to_owned())
            .chain(["ssn".to_owned()])
            .collect();
        Redactor::new("x-debug", &["X-Internal-Key".to_owned()], &fields)
    }

    #[test]
    fn names_split_into_words() {
        for (name, expected) in [
            ("access_token", &["access", "token"][..]),
            ("X-Auth-Token", &["x", "auth", "token"]),
            ("refreshToken", &["refresh", "token"]),
            ("APIKey", &["api", "key"]),
            ("user[password]", &["user", "password"]),
            ("card.number2", &["card", "number2"]),
            ("v2Secret", &["v2", "secret"]),
            ("", &[]),
        ] {
            assert_eq!(words(name), expected, "{name}");
        }
    }

    /// The default fields hide secret-looking names however they are written, in
    /// headers, fields and query strings, and leave names that merely contain the letters.
    #[test]
    fn default_fields_match_whole_words() {
        let r = redactor();
        for secret in [
            "user_password",
            "userPassword",
            "client_secret",
            "apiKey",
            "api-key",
            "X-Api-Key",
            "X-Auth-Token",
            "refreshToken",
            "card.number",
            "CVV",
            "ssn",
            "customer_ssn",
        ] {
            assert!(r.is_secret_field(secret), "{secret}");
            assert!(r.is_secret_header(secret), "{secret}");
        }
        for plain in [
            "passwords_policy",
            "tokens_used",
            "secretary",
            "className",
            "card",
            "key",
            "cache_key",
            "sec-websocket-key",
            "accept",
        ] {
            assert!(!r.is_secret_field(plain), "{plain}");
            assert!(!r.is_secret_header(plain), "{plain}");
        }
        let headers = r.headers(&vec![
            ("X-Api-Key".to_owned(), "k123".to_owned()),
            ("X-Auth-Token".to_owned(), "t123".to_owned()),
            ("X-Password".to_owned(), "p".to_owned()),
            ("x-request-id".to_owned(), "r1".to_owned()),
        ]);
        let values: Vec<&str> = headers.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(values, [REDACTED, REDACTED, REDACTED, "r1"]);
        assert_eq!(
            r.uri("/a?apiKey=b&api-key=c&page=2"),
            "/a?apiKey=[redacted]&api-key=[redacted]&page=2"
        );
    }

    /// A multipart form's secret parts are replaced, whatever else they carry (a file
    /// named like a secret is kept: `filename` is not `name`); a part the cap cut off is
    /// replaced to the end.
    #[test]
    fn multipart_parts_named_by_secret_fields() {
        let r = redactor();
        let ct = "multipart/form-data; boundary=\"XyZ\"";
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nada\r\n\
                    --XyZ\r\ncontent-disposition: form-data; name=\"password\"\r\n\r\nhunter2\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"password.txt\"\r\n\
                    Content-Type: text/plain\r\n\r\nnotes\r\n--XyZ--\r\n";
        let (out, how) = r.body_text(Some(ct), body, true);
        assert_eq!(how, Some(BodyRedaction::Multipart));
        assert_eq!(out, body.replace("hunter2", REDACTED), "{out}");
        let cut = "--XyZ\r\nContent-Disposition: form-data; name=\"api_key\"\r\n\r\nAK-1234";
        let (out, _) = r.body_text(Some(ct), cut, false);
        assert!(!out.contains("AK-1234") && out.ends_with(REDACTED), "{out}");
    }

    /// What the last review found in clear: joined spellings, URLs in header values,
    /// `k=v` pairs in a plain-text body.
    #[test]
    fn joined_names_urls_in_headers_and_plain_text_pairs() {
        let r = redactor();
        for secret in [
            "apikey",
            "X-Apikey",
            "accesstoken",
            "cardNumber",
            "x-session-id",
            "X-Auth",
            "Cookie",
        ] {
            assert!(r.is_secret_header(secret), "{secret}");
        }
        let headers = r.headers(&vec![(
            "referer".to_owned(),
            "https://app/reset?token=T1&page=2".to_owned(),
        )]);
        assert_eq!(headers[0].1, "https://app/reset?token=[redacted]&page=2");
        for ct in [Some("text/plain"), None] {
            let (out, _) = r.body_text(ct, "user=ada&password=LEAK", true);
            assert_eq!(out, "user=ada&password=[redacted]", "{ct:?}");
        }
        // Prose with an `&` and an `=` keeps its words: `cvV) & x` is no key, and a
        // key is whole (`xcvv` is none); a real key beside them still counts.
        let prose = "see f(cvV) & then x) xcvv=2 & y=3";
        assert_eq!(r.body_text(Some("text/plain"), prose, true).0, prose);
        assert_eq!(
            r.body_text(
                Some("text/plain"),
                "see f(cvV) & cvv=2 & user_password = 3",
                true
            )
            .0,
            "see f(cvV) & cvv=[redacted] & user_password = [redacted]"
        );
    }

    /// An operator's `secret_key` fragment hides every header and field whose name
    /// contains it, whatever the case; names without it stay.
    #[test]
    fn secret_key_fragments_match_inside_names() {
        let r = redactor().with_fragments(vec!["session".to_owned()]);
        let fields = r.fields(&[
            ("Session_Ref", "s-1".to_owned()),
            ("cache_key", "p:7".to_owned()),
            ("user", "ada".to_owned()),
        ]);
        let values: Vec<&str> = fields.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(values, [REDACTED, "p:7", "ada"]);
        let headers = r.headers(&vec![
            ("X-Session-Token".to_owned(), "t".to_owned()),
            ("accept".to_owned(), "*/*".to_owned()),
        ]);
        assert_eq!(headers[0].1, REDACTED);
        assert_eq!(headers[1].1, "*/*");
        assert_eq!(
            r.uri("/a?mySession=1&page=2"),
            "/a?mySession=[redacted]&page=2"
        );
        // Without fragments, the same names pass (only exact configured fields go).
        assert_eq!(
            redactor().fields(&[("session_ref", "s-1".to_owned())])[0].1,
            "s-1"
        );
    }

    #[test]
    fn every_secret_header() {
        let r = redactor();
        let h: Vec<(String, String)> = [
            ("Authorization", "Bearer A1"),
            ("proxy-authorization", "Basic A2"),
            ("cookie", "sid=A3"),
            ("set-cookie", "sid=A4; HttpOnly"),
            ("x-debug", "A5"),
            ("x-internal-key", "A6"),
            ("accept", "text/plain"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let out = r.headers(&h);
        assert_eq!(out.len(), 7);
        for (name, value) in &out[..6] {
            assert_eq!(value, REDACTED, "{name}");
        }
        assert_eq!(out[6], ("accept".to_owned(), "text/plain".to_owned()));
    }

    #[test]
    fn nested_json_fields_when_complete() {
        let r = redactor();
        let body = r#"{"user":{"name":"ann","Password":"hunter2","cards":[{"card_number":"4111","cvv":123}]},"ssn":{"a":1}}"#;
        let (out, how) = r.body_text(Some("application/json"), body, true);
        assert_eq!(how, Some(BodyRedaction::Json));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["user"]["name"], "ann");
        assert_eq!(v["user"]["Password"], REDACTED);
        assert_eq!(v["user"]["cards"][0]["card_number"], REDACTED);
        assert_eq!(v["user"]["cards"][0]["cvv"], REDACTED);
        assert_eq!(v["ssn"], REDACTED);
        for secret in ["hunter2", "4111", "123"] {
            assert!(!out.contains(secret), "{secret} in {out}");
        }
    }

    /// A complete JSON body reads as the client sent it, but for the secrets: key
    /// order, spacing, and numbers `f64` cannot hold (a re-serialized body showed
    /// `1.2345678901234568e22` for an id the client sent exactly).
    #[test]
    fn complete_json_keeps_the_bytes_the_client_sent() {
        let r = redactor();
        let body = "{ \"zeta\": 1.10,\n  \"id\": 12345678901234567890123, \"password\":\"p\", \"a\": [1e2] }";
        let (out, how) = r.body_text(Some("application/json"), body, true);
        assert_eq!(how, Some(BodyRedaction::Json));
        assert_eq!(
            out,
            "{ \"zeta\": 1.10,\n  \"id\": 12345678901234567890123, \"password\":\"[redacted]\", \"a\": [1e2] }"
        );
        // A key written with escapes is matched as it decodes, in either pass.
        for complete in [true, false] {
            let (out, _) = r.body_text(None, r#"{"pass\u0077ord": "p2", "x\"y": 3}"#, complete);
            assert_eq!(out, r#"{"pass\u0077ord": "[redacted]", "x\"y": 3}"#);
        }
    }

    #[test]
    fn truncated_json_gets_the_textual_pass() {
        let r = redactor();
        let body =
            r#"{"a": "x", "password" : "hun\"ter2", "n": {"cvv": 987, "card_number": "4111 1111"#;
        let (out, how) = r.body_text(Some("application/json"), body, false);
        assert_eq!(how, Some(BodyRedaction::Textual));
        assert_eq!(
            out,
            r#"{"a": "x", "password" : "[redacted]", "n": {"cvv": "[redacted]", "card_number": "[redacted]""#
        );
        // A nested secret value cut off by truncation takes the rest with it.
        let (out, _) = r.body_text(None, r#"{"token": {"v": "abc", "w": ["#, false);
        assert_eq!(out, r#"{"token": "[redacted]""#);
        // A key mentioned inside a string value is not a key.
        let (out, _) = r.body_text(None, r#"{"note": "password", "x": 1"#, false);
        assert_eq!(out, r#"{"note": "password", "x": 1"#);
    }

    #[test]
    fn invalid_json_and_text_bodies_get_the_textual_pass() {
        let r = redactor();
        let (out, how) = r.body_text(Some("application/json"), r#"{"password": "p1",}"#, true);
        assert_eq!(how, Some(BodyRedaction::Textual));
        assert!(!out.contains("p1"));
        let (out, _) = r.body_text(Some("text/plain"), r#"log "secret": "s3" end"#, true);
        assert!(!out.contains("s3"), "{out}");
    }

    #[test]
    fn an_empty_body_is_not_called_redacted() {
        let r = redactor();
        for ct in [
            None,
            Some("application/json"),
            Some("application/x-www-form-urlencoded"),
        ] {
            assert_eq!(r.body_text(ct, "", true), (String::new(), None), "{ct:?}");
        }
        // A body with something in it still names its pass.
        assert_eq!(r.body_text(None, " ", true).1, Some(BodyRedaction::Textual));
    }

    #[test]
    fn form_and_query() {
        let r = redactor();
        let (out, how) = r.body_text(
            Some("application/x-www-form-urlencoded"),
            "user=ann&pass%77ord=hunter2&api_key=k9",
            true,
        );
        assert_eq!(how, Some(BodyRedaction::Form));
        assert_eq!(out, "user=ann&pass%77ord=[redacted]&api_key=[redacted]");
        assert_eq!(
            r.uri("/login?next=%2F&token=abc"),
            "/login?next=%2F&token=[redacted]"
        );
        assert_eq!(r.uri("/plain"), "/plain");
        // Nested keys, as Rails and PHP forms write them.
        assert_eq!(
            r.uri("/login?user%5Bpassword%5D=x&users[0][token]=y&user[name]=ann&password[]=z"),
            "/login?user%5Bpassword%5D=[redacted]&users[0][token]=[redacted]&user[name]=ann&password[]=[redacted]"
        );
        // JSON labelled as a form (`curl -d '{...}'`): redacted as JSON all the same.
        let (out, how) = r.body_text(
            Some("application/x-www-form-urlencoded"),
            r#"{"user":"ann","data":{"password":"hunter2"}}"#,
            true,
        );
        assert_eq!(how, Some(BodyRedaction::Json));
        assert_eq!(out, r#"{"user":"ann","data":{"password":"[redacted]"}}"#);
        // JSON inside a form value.
        let (out, _) = r.body_text(
            Some("application/x-www-form-urlencoded"),
            r#"a=1&payload={"password":"hunter2"}"#,
            true,
        );
        assert!(!out.contains("hunter2"), "{out}");
    }

    #[test]
    fn span_and_log_fields() {
        let r = redactor();
        let f = vec![
            ("password".to_owned(), "p".to_owned()),
            ("cookie".to_owned(), "c".to_owned()),
            ("user".to_owned(), "ann".to_owned()),
        ];
        let out = r.fields(&f);
        assert_eq!(out[0].1, REDACTED);
        assert_eq!(out[1].1, REDACTED);
        assert_eq!(out[2].1, "ann");
    }

    /// XML bodies: elements and attributes named by secret fields, whatever their
    /// namespace prefix, lose their content; the rest reads as sent.
    #[test]
    fn xml_elements_and_attributes_named_by_secret_fields() {
        let r = redactor();
        for ct in [
            "application/xml",
            "text/xml; charset=utf-8",
            "application/soap+xml",
            "application/atom+xml",
        ] {
            let body = "<?xml version=\"1.0\"?>\n<login><user>ada</user><password>hunter2</password>\
                        <ns:Password>x1</ns:Password><user token=\"abc\" id='7'/></login>";
            let (out, how) = r.body_text(Some(ct), body, true);
            assert_eq!(how, Some(BodyRedaction::Xml), "{ct}");
            assert_eq!(
                out,
                "<?xml version=\"1.0\"?>\n<login><user>ada</user><password>[redacted]</password>\
                 <ns:Password>[redacted]</ns:Password><user token=\"[redacted]\" id='7'/></login>",
                "{ct}"
            );
        }
        // CDATA, nested elements and comments inside a secret element: all of it goes.
        let body = "<a><apiKey><![CDATA[k</apiKey>1]]></apiKey><credentials><u>ada</u>\
                    <!-- </credentials> --><p t=\"a>b\">pw</p></credentials><n>1</n></a>";
        let (out, _) = r.body_text(Some("application/xml"), body, true);
        assert_eq!(
            out,
            "<a><apiKey>[redacted]</apiKey><credentials>[redacted]</credentials><n>1</n></a>"
        );
        // WS-Security: the whole `UsernameToken` is a token.
        let soap = "<s:Envelope><s:Header><wsse:UsernameToken><wsse:Username>bob</wsse:Username>\
                    <wsse:Password Type=\"#PasswordText\">pw9</wsse:Password></wsse:UsernameToken>\
                    </s:Header></s:Envelope>";
        let (out, _) = r.body_text(Some("application/soap+xml"), soap, true);
        assert!(
            !out.contains("pw9") && out.contains("<s:Envelope>"),
            "{out}"
        );
        // Names that merely contain the letters stay; a self-closing secret is empty.
        let plain =
            "<passwords_policy>8</passwords_policy><password/><tokens_used n=\"3\">4</tokens_used>";
        assert_eq!(r.body_text(Some("text/xml"), plain, true).0, plain);
    }

    /// Config files name their secrets in an attribute: `<add key="ApiKey" value=..>`,
    /// `<property name="db.password">`, an HTML form's hidden token.
    #[test]
    fn xml_elements_named_by_a_name_or_key_attribute() {
        let r = redactor();
        let body = "<c><add key=\"ApiKey\" value=\"k1\"/><add key=\"Theme\" value=\"dark\"/>\
                    <property name=\"db.password\">p2</property></c>";
        let (out, _) = r.body_text(Some("application/xml"), body, true);
        assert_eq!(
            out,
            "<c><add key=\"ApiKey\" value=\"[redacted]\"/><add key=\"Theme\" value=\"dark\"/>\
             <property name=\"db.password\">[redacted]</property></c>"
        );
    }

    /// XML-RPC and property lists name a secret in one element and hold it in the next;
    /// HTML holds a form's hidden token in an `<input>` that never closes.
    #[test]
    fn xml_named_values_and_html() {
        let r = redactor();
        let body = "<struct><member><name>password</name><value><string>rpc1</string></value>\
                    </member><member><name>user</name><value>ada</value></member></struct>\
                    <dict><key>api_key</key><string>pl1</string><key>n</key><integer>1</integer></dict>";
        let (out, _) = r.body_text(Some("text/xml"), body, true);
        assert_eq!(
            out,
            "<struct><member><name>password</name><value>[redacted]</value>\
             </member><member><name>user</name><value>ada</value></member></struct>\
             <dict><key>api_key</key><string>[redacted]</string><key>n</key><integer>1</integer></dict>"
        );
        let page = "<!DOCTYPE html><form><input type=hidden name=csrf_token value=c1>\
                    <input name=user value=ada></form><meta name=\"csrf-token\" content=\"c2\">\
                    <script>var token = 'c3'; if (a<b) { x(\"</p>\") }</script><p>shown</p>";
        for ct in [Some("text/html; charset=utf-8"), None] {
            let (out, how) = r.body_text(ct, page, true);
            assert_eq!(how, Some(BodyRedaction::Xml));
            for secret in ["c1", "c2", "c3"] {
                assert!(!out.contains(secret), "{secret} in {out}");
            }
            assert!(
                out.contains("value=ada") && out.ends_with("<p>shown</p>"),
                "{out}"
            );
        }
    }

    /// A capture cut inside a secret element, its start tag or an attribute's value
    /// shows none of the secret's first bytes; malformed XML fails closed.
    #[test]
    fn truncated_and_malformed_xml() {
        let r = redactor();
        for (body, expected) in [
            ("<a><password>hunt", "<a><password>[redacted]"),
            ("<a><password><![CDATA[hun", "<a><password>[redacted]"),
            ("<a><secret><v>s1</v><v>s2", "<a><secret>[redacted]"),
            ("<a><user token=\"ab", "<a><user token=\"[redacted]"),
            (
                "<a><user token='ab' x=\"1",
                "<a><user token='[redacted]' x=\"1",
            ),
            ("<a><passw", "<a><passw"),
            // An unclosed element inside a secret one: the rest of the body goes.
            ("<a><token>x<br></token><b>1</b>", "<a><token>[redacted]"),
            (
                "<<<>>><password>>x</password>",
                "<<<>>><password>[redacted]</password>",
            ),
        ] {
            for ct in ["application/xml", "text/xml"] {
                let (out, _) = r.body_text(Some(ct), body, false);
                assert_eq!(out, expected, "{body}");
            }
        }
    }

    /// Text that is no form: `;`-separated pairs, pairs with spaces, `key: value` lines,
    /// quoted keys, a Ruby hash; a pair's value ends where its kind of pair ends.
    #[test]
    fn text_pairs_with_semicolons_spaces_and_colons() {
        let r = redactor();
        for (body, expected) in [
            (
                "password=x; token=y; theme=dark",
                "password=[redacted]; token=[redacted]; theme=dark",
            ),
            ("password = hunter2", "password = [redacted]"),
            (
                "login failed\npassword: hunter 2\nuser: ada",
                "login failed\npassword: [redacted]\nuser: ada",
            ),
            (
                "ts=1 level=warn api_key=AK1 msg=\"retry\"",
                "ts=1 level=warn api_key=[redacted] msg=\"retry\"",
            ),
            (
                "{'password': 'x', 'user': 'ada'}",
                "{'password': '[redacted]', 'user': 'ada'}",
            ),
            ("\"password\" : \"x\"", "\"password\" : \"[redacted]\""),
            (
                "{\"password\"=>\"x\", \"u\"=>\"ada\"}",
                "{\"password\"=>\"[redacted]\", \"u\"=>\"ada\"}",
            ),
            (
                "User(name=ada, password=pw1, role=admin)",
                "User(name=ada, password=[redacted], role=admin)",
            ),
            ("password=a;b", "password=[redacted]"),
            ("auth=Basic dXNlcjpw next=1", "auth=[redacted] next=1"),
            (
                "password:\n  hunter2\nuser: ada",
                "password:\n  [redacted]\nuser: ada",
            ),
            (
                "db:\n  password: |\n    s1\n    s2\n  user: ada",
                "db:\n  password: |\n    [redacted]\n  user: ada",
            ),
            (
                "see app::auth::token and a::b",
                "see app::auth::token and a::b",
            ),
        ] {
            for ct in [Some("text/plain"), None] {
                assert_eq!(r.body_text(ct, body, true).0, expected, "{ct:?}");
            }
        }
    }

    /// Header values that are not redacted whole get the same pass.
    #[test]
    fn pairs_in_header_values() {
        let r = redactor();
        let headers = r.headers(&vec![
            (
                "x-custom-creds".to_owned(),
                "user=ada; password=x".to_owned(),
            ),
            ("x-note".to_owned(), "token: abc".to_owned()),
            ("cache-control".to_owned(), "max-age=0, no-cache".to_owned()),
            (
                "date".to_owned(),
                "Tue, 15 Nov 1994 08:12:31 GMT".to_owned(),
            ),
        ]);
        let values: Vec<&str> = headers.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(
            values,
            [
                "user=ada; password=[redacted]",
                "token: [redacted]",
                "max-age=0, no-cache",
                "Tue, 15 Nov 1994 08:12:31 GMT"
            ]
        );
    }

    /// What an adversarial pass found: JSON that is declared JSON but is none (keys not
    /// quoted, or quoted with `'`), secrets inside a JSON string value (a URL's query,
    /// JSON encoded in a string), span and log fields whose value holds a URL.
    #[test]
    fn secrets_inside_json_strings_and_malformed_json() {
        let r = redactor();
        for body in ["{password: \"p1\", user: \"ada\"}", "{'password': 'p1'}"] {
            let (out, how) = r.body_text(Some("application/json"), body, true);
            assert_eq!(how, Some(BodyRedaction::Textual));
            assert!(!out.contains("p1"), "{out}");
        }
        let body = r#"{"cb":"https://x/cb?token=T1&page=2","payload":"{\"password\":\"p2\",\"n\":1}","note":"password"}"#;
        for complete in [true, false] {
            let (out, how) = r.body_text(Some("application/json"), body, complete);
            assert_eq!(
                out,
                r#"{"cb":"https://x/cb?token=[redacted]&page=2","payload":"{\"password\":\"[redacted]\",\"n\":1}","note":"password"}"#
            );
            if complete {
                assert_eq!(how, Some(BodyRedaction::Json));
                serde_json::from_str::<serde_json::Value>(&out).unwrap();
            }
        }
        // JSON in a string in a string: the replacement's quotes are escaped too.
        let body = r#"{"p":"{\"q\":\"{\\\"token\\\":12}\"}"}"#;
        let (out, how) = r.body_text(Some("application/json"), body, true);
        assert_eq!(how, Some(BodyRedaction::Json));
        assert_eq!(out, r#"{"p":"{\"q\":\"{\\\"token\\\":\"[redacted]\"}\"}"}"#);
        serde_json::from_str::<serde_json::Value>(&out).unwrap();
        // A value cut inside an escaped JSON string shows none of it.
        let (out, _) = r.body_text(None, r#"{"payload":"{\"token\":\"abc"#, false);
        assert!(!out.contains("abc"), "{out}");
        let fields = r.fields(&[("uri", "/reset?token=T2&x=1".to_owned())]);
        assert_eq!(fields[0].1, "/reset?token=[redacted]&x=1");
    }

    const PLANTED: &str = "QZX9vKw2Lp";

    /// Bodies with [`PLANTED`] in a secret place, and the content types to send them as.
    fn planted_bodies() -> Vec<(String, &'static [Option<&'static str>])> {
        const XML: &[Option<&str>] = &[
            Some("application/xml"),
            Some("text/xml"),
            Some("application/soap+xml"),
        ];
        const TEXT: &[Option<&str>] = &[Some("text/plain"), None, Some("application/xml")];
        [
            (XML, "<password>{S}</password>"),
            (XML, "<a><ns:Token n=\"1\"><![CDATA[{S}]]></ns:Token></a>"),
            (XML, "<user token=\"{S}\"/>"),
            (XML, "<secret><v>{S}</v></secret>"),
            (XML, "<add key=\"api_key\" value='{S}'/>"),
            (TEXT, "password={S}; theme=dark"),
            (TEXT, "password = {S}"),
            (TEXT, "password: {S}"),
            (TEXT, "\"password\" : \"{S}\""),
            (TEXT, "{'token': '{S}'}"),
        ]
        .into_iter()
        .map(|(types, body)| (body.replace("{S}", PLANTED), types))
        .collect()
    }

    proptest::proptest! {
        /// No input makes a pass panic, and a planted secret, in a body cut anywhere
        /// (as the capture's cap cuts it), shows none of its bytes.
        #[test]
        fn no_input_panics_and_no_planted_secret_shows(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            syntax in "[<>/=\"' :;,&?!\\\\\\[\\]{}a-zA-Z\n-]{0,200}",
            noise in ("[a-z0-9 ,.]{0,30}", "[a-z0-9 ,.\n]{0,30}"),
            case in proptest::prelude::any::<proptest::sample::Index>(),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            let r = redactor();
            let types = [
                None,
                Some("text/plain"),
                Some("application/json"),
                Some("application/xml"),
                Some("application/x-www-form-urlencoded"),
                Some("multipart/form-data; boundary=b"),
            ];
            for text in [String::from_utf8_lossy(&bytes).into_owned(), syntax] {
                for ct in types {
                    for complete in [true, false] {
                        let _ = r.body_text(ct, &text, complete);
                    }
                }
                let _ = r.headers(&vec![("x-note".to_owned(), text.clone())]);
                let _ = r.fields(&[("note", text.clone())]);
            }
            let bodies = planted_bodies();
            let (body, types) = &bodies[case.index(bodies.len())];
            let body = format!("{}\n{body}\n{}", noise.0, noise.1);
            let mut at = cut.index(body.len() + 1);
            while !body.is_char_boundary(at) {
                at -= 1;
            }
            for ct in *types {
                for text in [&body[..], &body[..at]] {
                    let (out, _) = r.body_text(*ct, text, text.len() == body.len());
                    proptest::prop_assert!(!out.contains(&PLANTED[..2]), "{ct:?}: {text:?} -> {out:?}");
                }
            }
        }
    }
}
