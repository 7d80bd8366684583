//! Pairs in text of no known format, redacted in place: `password=…`, `password = …`,
//! `password: …`, `"password": …`, `'password': …` and `"password" => …`, wherever they
//! stand (a plain-text body, JSON that does not parse, a header value, a span or log
//! field, a log message, text inside XML or inside a JSON string). A scan, not a parser:
//! such text keeps to no grammar, and a capture cut at its cap may end inside a pair;
//! neither may show a secret or stop the scan.
//!
//! - A bare key counts only shaped like one, and whole (`user[password]`, `pass%77ord`),
//!   so prose with an `&` and an `=` in it keeps its words; a quoted key (`"k"`, `'k'`,
//!   `\"k\"` inside a JSON string) counts whatever it holds.
//! - A secret key's value is replaced as far as its kind of pair reaches
//!   (`TextPair::value`): `k=v` to a space, `&` or `; ` (a query, a cookie list,
//!   logfmt); `k: v` and `k = v` to the end of the line and the lines indented under it
//!   (a log line, YAML, an ini file); a quoted value to its closing quote; a JSON-quoted
//!   key's bare value as JSON's ends. A value the capture cut off goes to the end.

use super::redact::{REDACTED, Redactor, percent_decode};
use super::redact_json::value_end;

impl Redactor {
    /// `key=value`, `key = value`, `key: value` and `"key" => value` pairs in text that is
    /// no form, a secret key's value replaced as far as its kind of pair reaches (see
    /// [`TextPair::value`]). A bare key counts only shaped like one (letters, digits,
    /// `_.-[]%+`, and whole: prose with an `&` and an `=` in it keeps its words), a quoted
    /// one (`"k"`, `'k'`, and `\"k\"` inside a JSON string) whatever it holds.
    pub(super) fn text_pairs(&self, text: &str) -> String {
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
pub(super) enum Quote {
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
    pub(super) fn closing(self, b: &[u8], from: usize) -> Option<usize> {
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
pub(crate) const AUTH_SCHEMES: [&str; 6] =
    ["basic", "bearer", "digest", "token", "negotiate", "ntlm"];

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

#[cfg(test)]
mod tests {
    use crate::debug::redact::tests::redactor;

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
}
