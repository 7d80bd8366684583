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
    /// Fields left out over [`MAX_FIELDS`], and values cut at [`MAX_VALUE_BYTES`].
    pub(crate) cut: u64,
}

impl FieldRecorder {
    /// Starts from fields already recorded (a span's `record` adds to them).
    pub(crate) fn with_fields(fields: Vec<(StaticText, String)>) -> Self {
        FieldRecorder {
            message: None,
            fields,
            cut: 0,
        }
    }

    fn push(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        self.push_rendered(field, || bounded(value));
    }

    /// Keeps `render()` as `field`'s value (the message, or a field unless secret);
    /// `render` says whether it cut the value.
    fn push_rendered(&mut self, field: &Field, render: impl FnOnce() -> (String, bool)) {
        if field.name() == "message" {
            let (message, cut) = render();
            self.cut += u64::from(cut);
            self.message = Some(message);
            return;
        }
        // A span's later `record` replaces the value it declared empty; a new field past
        // the cap is left out before its value is rendered (and counted once).
        let slot = self.fields.iter().position(|(n, _)| n == field.name());
        if slot.is_none() && self.fields.len() >= MAX_FIELDS {
            self.cut += 1;
            return;
        }
        let rendered = if is_secret(field.name()) {
            REDACTED.to_owned()
        } else {
            let (value, cut) = render();
            self.cut += u64::from(cut);
            value
        };
        match slot {
            Some(i) => self.fields[i].1 = rendered,
            None => self
                .fields
                .push((StaticText::Borrowed(field.name()), rendered)),
        }
    }
}

// Strings and integers are copied or rendered directly: no trip through `fmt`.
impl Visit for FieldRecorder {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push_rendered(field, || bounded_str(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push_rendered(field, || {
            (itoa::Buffer::new().format(value).to_owned(), false)
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push_rendered(field, || {
            (itoa::Buffer::new().format(value).to_owned(), false)
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push_rendered(field, || {
            (if value { "true" } else { "false" }.to_owned(), false)
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, format_args!("{value:?}"));
    }
}

/// `value`, cut at [`MAX_VALUE_BYTES`] on a character boundary (then ending with `…`),
/// and whether it was cut.
fn bounded_str(value: &str) -> (String, bool) {
    if value.len() <= MAX_VALUE_BYTES {
        return (value.to_owned(), false);
    }
    let mut cut = MAX_VALUE_BYTES;
    while !value.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = String::with_capacity(cut + '…'.len_utf8());
    out.push_str(&value[..cut]);
    out.push('…');
    (out, true)
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

/// Renders `value`, cut at [`MAX_VALUE_BYTES`] on a character boundary, and whether it
/// was cut.
fn bounded(value: fmt::Arguments<'_>) -> (String, bool) {
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
    (out.0, out.1)
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
        let (s, cut) = bounded(format_args!("{long}"));
        assert!(cut && s.ends_with('…'));
        assert!(s.len() <= MAX_VALUE_BYTES + '…'.len_utf8());
        assert_eq!(
            bounded(format_args!("short {}", 1)),
            ("short 1".into(), false)
        );
        assert_eq!(
            bounded_str(&long),
            (s, true),
            "the direct path cuts the same way"
        );
        assert_eq!(bounded_str("short"), ("short".into(), false));
    }

    #[test]
    fn fields_over_the_cap_and_cut_values_are_counted() {
        let cs =
            tracing::callsite!(name: "t", kind: tracing::metadata::Kind::EVENT, fields: late, long);
        let fields = tracing::callsite::Callsite::metadata(cs).fields();
        let full = (0..MAX_FIELDS)
            .map(|i| (StaticText::from(format!("f{i}")), "v".to_owned()))
            .collect();
        let mut r = FieldRecorder::with_fields(full);
        r.record_str(&fields.field("late").unwrap(), "left out");
        assert_eq!((r.fields.len(), r.cut), (MAX_FIELDS, 1));
        // Left out whole: counted once, not also as a cut value.
        r.record_str(
            &fields.field("long").unwrap(),
            &"x".repeat(MAX_VALUE_BYTES + 1),
        );
        assert_eq!((r.fields.len(), r.cut), (MAX_FIELDS, 2));
        let mut r = FieldRecorder::default();
        r.record_str(
            &fields.field("long").unwrap(),
            &"x".repeat(MAX_VALUE_BYTES + 1),
        );
        r.record_debug(&fields.field("long").unwrap(), &"y".repeat(MAX_VALUE_BYTES));
        assert_eq!(r.cut, 2, "both values cut");
        r.record_str(&fields.field("long").unwrap(), "short");
        assert_eq!(r.cut, 2);
    }

    #[test]
    fn every_kind_of_value_is_recorded_and_secrets_redacted() {
        use tracing::field::{Field, Visit};
        let cs = tracing::callsite!(name: "t", kind: tracing::metadata::Kind::EVENT, fields: s, u, i, b, d, password, message);
        let fields = tracing::callsite::Callsite::metadata(cs).fields();
        let f = |name: &str| -> Field { fields.field(name).unwrap() };
        let mut r = FieldRecorder::default();
        r.record_str(&f("s"), "text");
        r.record_u64(&f("u"), 1299);
        r.record_i64(&f("i"), -5);
        r.record_bool(&f("b"), true);
        r.record_debug(&f("d"), &Some(1));
        r.record_str(&f("password"), "hunter2");
        r.record_str(&f("message"), "hello");
        let got: Vec<(&str, &str)> = r.fields.iter().map(|(k, v)| (&**k, v.as_str())).collect();
        assert_eq!(
            got,
            [
                ("s", "text"),
                ("u", "1299"),
                ("i", "-5"),
                ("b", "true"),
                ("d", "Some(1)"),
                ("password", REDACTED)
            ]
        );
        assert_eq!(r.message.as_deref(), Some("hello"));
    }
}
