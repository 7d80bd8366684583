//! JSON redacted in place, as `redact_xml.rs` redacts XML: a walk over string tokens,
//! not a parse, so the body reads as the client sent it (key order, spacing, numbers
//! beyond `f64`) but for the secrets, and the same walk serves JSON that the capture's
//! cap cut off or that does not parse.
//!
//! - A string followed by `:` is a key (exactly so in valid JSON); a secret key's value
//!   is replaced up to where it ends, and a nested value that does not close within the
//!   capture takes the rest of the text with it.
//! - A key written with escapes (`"pass\u0077ord"`) is matched as it decodes.
//! - Any other string gets the pairs pass inside it (`redact_text.rs`): a URL's query,
//!   JSON encoded in a string (`"{\"password\":…}"`).

use super::redact::{REDACTED, Redactor};
use super::redact_text::Quote;

impl Redactor {
    /// Walks string tokens; a string followed by `:` is a key, and a secret key's value
    /// is replaced up to where it ends (or to the end of the text); any other string
    /// gets [`text_pairs`](Self::text_pairs) inside it. A key written with escapes
    /// (`"pass\u0077ord"`) is matched as it decodes.
    pub(super) fn json_text(&self, text: &str) -> String {
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
pub(super) fn value_end(b: &[u8], start: usize) -> usize {
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

#[cfg(test)]
mod tests {
    use crate::debug::redact::tests::redactor;
    use crate::debug::redact::{BodyRedaction, REDACTED};

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
}
