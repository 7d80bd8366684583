//! Renders span and event fields for a debug request's record: bounded, and with
//! credentials redacted by field name.

use std::fmt::{self, Write};

use tracing::field::{Field, Visit};

use crate::debug::StaticText;

/// The most fields kept per span or event; further ones are left out.
pub(crate) const MAX_FIELDS: usize = 32;
/// The longest rendered field value, in bytes; longer ones are cut and end with `…`.
pub(crate) const MAX_VALUE_BYTES: usize = 1024;
/// What a redacted value is replaced with.
pub(crate) const REDACTED: &str = "[redacted]";

/// Field names whose values never reach a debug record (compared case-insensitively,
/// with `_` and `-` alike).
const SECRET_NAMES: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-debug",
    "password",
    "passwd",
    "secret",
    "token",
    "api-key",
    "apikey",
];

/// Collects fields as `(name, rendered value)`; the `message` field separately.
#[derive(Default)]
pub(crate) struct FieldRecorder {
    pub(crate) message: Option<String>,
    pub(crate) fields: Vec<(StaticText, String)>,
}

impl FieldRecorder {
    /// Starts from fields already recorded (a span's `record` adds to them).
    pub(crate) fn with_fields(fields: Vec<(StaticText, String)>) -> Self {
        FieldRecorder {
            message: None,
            fields,
        }
    }

    fn push(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if field.name() == "message" {
            self.message = Some(bounded(value));
            return;
        }
        let rendered = if is_secret(field.name()) {
            REDACTED.to_owned()
        } else {
            bounded(value)
        };
        // A span's later `record` replaces the value it declared empty.
        if let Some(slot) = self.fields.iter_mut().find(|(n, _)| n == field.name()) {
            slot.1 = rendered;
        } else if self.fields.len() < MAX_FIELDS {
            self.fields
                .push((StaticText::Borrowed(field.name()), rendered));
        }
    }
}

impl Visit for FieldRecorder {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, format_args!("{value:?}"));
    }
}

fn is_secret(name: &str) -> bool {
    SECRET_NAMES.iter().any(|s| {
        s.len() == name.len()
            && s.bytes().zip(name.bytes()).all(|(a, b)| {
                let b = if b == b'_' {
                    b'-'
                } else {
                    b.to_ascii_lowercase()
                };
                a == b
            })
    })
}

/// Renders `value`, cut at [`MAX_VALUE_BYTES`] on a character boundary.
fn bounded(value: fmt::Arguments<'_>) -> String {
    struct Capped(String, bool);
    impl Write for Capped {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let room = MAX_VALUE_BYTES - self.0.len();
            if s.len() <= room {
                self.0.push_str(s);
                Ok(())
            } else {
                let mut cut = room;
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                self.0.push_str(&s[..cut]);
                self.1 = true;
                // Stop formatting: the rest would be thrown away.
                Err(fmt::Error)
            }
        }
    }
    let mut out = Capped(String::new(), false);
    let _ = out.write_fmt(value);
    if out.1 {
        out.0.push('…');
    }
    out.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_matched_by_name() {
        assert!(is_secret("Authorization"));
        assert!(is_secret("set_cookie"));
        assert!(is_secret("X-Debug"));
        assert!(!is_secret("authorized"));
        assert!(!is_secret("user"));
    }

    #[test]
    fn long_values_are_cut_on_a_char_boundary() {
        let long = "é".repeat(MAX_VALUE_BYTES);
        let s = bounded(format_args!("{long}"));
        assert!(s.ends_with('…'));
        assert!(s.len() <= MAX_VALUE_BYTES + '…'.len_utf8());
        assert_eq!(bounded(format_args!("short {}", 1)), "short 1");
    }
}
