//! XML (and HTML) bodies, redacted in place, as `redact.rs` redacts JSON: the body reads
//! as sent but for the secrets. A scan, not a parser: a capture is cut at its cap and a
//! client's XML may be malformed, and neither may show a secret or stop the scan.
//!
//! - An element named by a secret field (`<password>`, `<ns:Password>`,
//!   `<wsse:UsernameToken>`) has all its content replaced: text, CDATA, child elements.
//!   An element that does not close within the capture (cut off, or malformed) takes the
//!   rest of the body with it.
//! - So does an element that a `name` or `key` attribute names so (`<add key="ApiKey"
//!   value="…"/>`, `<property name="db.password">`, an HTML form's hidden
//!   `<input name="csrf_token" value="…">`), and its `value` and `content` attributes.
//! - So does the element after a `<name>` or `<key>` whose text is a secret field's
//!   name: `<name>password</name><value>…` (XML-RPC), `<key>password</key><string>…`
//!   (a property list).
//! - An attribute named by a secret field (`<user token="…">`) has its value replaced.
//! - Other text, CDATA, comments and attribute values get the textual pass
//!   (`Redactor::text`): `<url>https://x/?token=…</url>`.

use std::ops::Range;

use super::redact::{REDACTED, Redactor};

/// Where the scan of one body is.
struct Scan {
    html: bool,
    /// Inside a `<name>` or `<key>` element, whose text names the next element.
    in_name: bool,
    /// The next element holds a secret: `<name>password</name><value>…` (XML-RPC),
    /// `<key>password</key><string>…` (a property list).
    named_next: bool,
}

/// HTML elements that never close: one named by a secret `name` must not take the rest
/// of the page with it.
const HTML_VOID: [&str; 14] = [
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];

/// HTML elements whose content is script or style text, not markup.
const HTML_RAW_TEXT: [&str; 2] = ["script", "style"];

impl Redactor {
    /// An XML (or, with `html`, HTML) body with secret elements and attributes replaced.
    pub(super) fn xml(&self, text: &str, html: bool) -> String {
        let b = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut scan = Scan {
            html,
            in_name: false,
            named_next: false,
        };
        let mut i = 0;
        while i < b.len() {
            let lt = find(b, i, b"<").unwrap_or(b.len());
            let segment = &text[i..lt];
            scan.named_next |= scan.in_name && self.is_secret_field(segment.trim());
            out.push_str(&self.text(segment));
            if lt == b.len() {
                break;
            }
            i = self.markup(text, lt, &mut scan, &mut out);
        }
        out
    }

    /// Copies the markup starting at `lt` (a `<`) to `out`, redacted, with the content of
    /// a secret element; returns where to go on from.
    fn markup(&self, text: &str, lt: usize, scan: &mut Scan, out: &mut String) -> usize {
        let b = text.as_bytes();
        let html = scan.html;
        let rest = &b[lt..];
        for (open, close) in [("<!--", "-->"), ("<![CDATA[", "]]>")] {
            if rest.starts_with(open.as_bytes()) {
                let start = lt + open.len();
                let end = find(b, start, close.as_bytes());
                out.push_str(open);
                out.push_str(&self.text(&text[start..end.unwrap_or(b.len())]));
                return match end {
                    Some(end) => {
                        out.push_str(close);
                        end + close.len()
                    }
                    None => b.len(),
                };
            }
        }
        // A declaration, a processing instruction or an end tag: nothing of a client's.
        if rest.starts_with(b"<!") || rest.starts_with(b"<?") || rest.starts_with(b"</") {
            // Past `</name>`, the next element is the named one; past any other end
            // tag, none is.
            scan.named_next &= scan.in_name && rest.starts_with(b"</");
            scan.in_name = false;
            let end = find(b, lt, b">").map_or(b.len(), |gt| gt + 1);
            out.push_str(&text[lt..end]);
            return end;
        }
        let Some(tag) = Tag::at(b, lt, html) else {
            out.push('<');
            return lt + 1;
        };
        let secret = self.is_secret_element(text, &tag) || std::mem::take(&mut scan.named_next);
        scan.in_name = tag.closed && !tag.empty && tag.is_one_of(text, &["name", "key"]);
        self.push_tag(text, &tag, secret, out);
        if !tag.closed || tag.empty {
            return tag.end;
        }
        if secret {
            out.push_str(REDACTED);
            return content_end(b, tag.end, html).unwrap_or(b.len());
        }
        if html && tag.is_one_of(text, &HTML_RAW_TEXT) {
            // `if (a<b)` in a script is no tag; its text still gets the textual pass.
            let end = raw_text_end(b, tag.end, &b[tag.name.clone()]).unwrap_or(b.len());
            out.push_str(&self.text(&text[tag.end..end]));
            return end;
        }
        tag.end
    }

    /// Whether an element's content is secret: its name is a secret field's, or a `name`
    /// or `key` attribute names one.
    fn is_secret_element(&self, text: &str, tag: &Tag) -> bool {
        self.is_secret_field(&text[tag.name.clone()])
            || tag.attrs.iter().any(|a| {
                let name = &text[a.name.clone()];
                (name.eq_ignore_ascii_case("name") || name.eq_ignore_ascii_case("key"))
                    && a.value
                        .clone()
                        .is_some_and(|v| self.is_secret_field(&text[v]))
            })
    }

    /// Copies a start tag to `out` with secret attribute values replaced and the
    /// textual pass over the others.
    fn push_tag(&self, text: &str, tag: &Tag, secret: bool, out: &mut String) {
        let mut copied = tag.start;
        for attr in &tag.attrs {
            let Some(value) = attr.value.clone() else {
                continue;
            };
            let name = &text[attr.name.clone()];
            out.push_str(&text[copied..value.start]);
            let named_value =
                name.eq_ignore_ascii_case("value") || name.eq_ignore_ascii_case("content");
            if self.is_secret_field(name) || (secret && named_value) {
                out.push_str(REDACTED);
            } else {
                out.push_str(&self.text(&text[value.clone()]));
            }
            copied = value.end;
        }
        out.push_str(&text[copied..tag.end]);
    }
}

/// A start tag, as far as the text holds it.
struct Tag {
    /// Its `<`.
    start: usize,
    name: Range<usize>,
    attrs: Vec<Attr>,
    /// Just past its `>`, or the end of the text.
    end: usize,
    /// Whether its `>` is in the text.
    closed: bool,
    /// `<x/>`, or an HTML void element: no content follows.
    empty: bool,
}

struct Attr {
    name: Range<usize>,
    /// The value without its quotes (to the end of the text when they do not close).
    value: Option<Range<usize>>,
}

impl Tag {
    /// The start tag at `lt` (a `<`), if a name starts there.
    fn at(b: &[u8], lt: usize, html: bool) -> Option<Tag> {
        let first = *b.get(lt + 1)?;
        if !(first.is_ascii_alphabetic() || first == b'_' || first == b':' || first >= 0x80) {
            return None;
        }
        let name = lt + 1..name_end(b, lt + 1);
        let mut tag = Tag {
            start: lt,
            name: name.clone(),
            attrs: Vec::new(),
            end: b.len(),
            closed: false,
            empty: false,
        };
        let mut i = name.end;
        while i < b.len() {
            match b[i] {
                b'>' => {
                    tag.closed = true;
                    tag.end = i + 1;
                    break;
                }
                b'/' if b.get(i + 1) == Some(&b'>') => {
                    (tag.closed, tag.empty) = (true, true);
                    tag.end = i + 2;
                    break;
                }
                // `<a <password>…`: a broken tag ends where the next one starts, so the
                // next one is read (and its content redacted) as a tag.
                b'<' => {
                    (tag.closed, tag.empty) = (true, true);
                    tag.end = i;
                    break;
                }
                c if c.is_ascii_whitespace() || name_end(b, i) == i => i += 1,
                _ => {
                    let (attr, next) = Attr::at(b, i);
                    tag.attrs.push(attr);
                    i = next;
                }
            }
        }
        if html {
            let name = std::str::from_utf8(&b[tag.name.clone()]).unwrap_or("");
            tag.empty |= HTML_VOID.iter().any(|v| v.eq_ignore_ascii_case(name));
        }
        Some(tag)
    }

    fn is_one_of(&self, text: &str, names: &[&str]) -> bool {
        let name = &text[self.name.clone()];
        names.iter().any(|n| n.eq_ignore_ascii_case(name))
    }
}

impl Attr {
    /// The attribute whose name starts at `i`, and where the tag goes on.
    fn at(b: &[u8], i: usize) -> (Attr, usize) {
        let name = i..name_end(b, i);
        let eq = skip_ws(b, name.end);
        if b.get(eq) != Some(&b'=') {
            return (Attr { name, value: None }, name_end(b, i).max(i + 1));
        }
        let v = skip_ws(b, eq + 1);
        let (value, next) = match b.get(v) {
            Some(&q @ (b'"' | b'\'')) => match find(b, v + 1, &[q]) {
                Some(close) => (v + 1..close, close + 1),
                None => (v + 1..b.len(), b.len()),
            },
            // HTML's unquoted `value=abc`.
            _ => {
                let end = (v..b.len())
                    .find(|&j| b[j].is_ascii_whitespace() || b[j] == b'>')
                    .unwrap_or(b.len());
                (v..end, end)
            }
        };
        (
            Attr {
                name,
                value: Some(value),
            },
            next.max(i + 1),
        )
    }
}

/// Where an element's content ends (the `<` of the end tag that closes it), for content
/// starting at `from`; `None` when it does not end within the text.
fn content_end(b: &[u8], from: usize, html: bool) -> Option<usize> {
    let mut depth = 1usize;
    let mut i = from;
    while let Some(lt) = find(b, i, b"<") {
        let rest = &b[lt..];
        i = if rest.starts_with(b"<!--") {
            find(b, lt + 4, b"-->")? + 3
        } else if rest.starts_with(b"<![CDATA[") {
            find(b, lt + 9, b"]]>")? + 3
        } else if rest.starts_with(b"</") {
            depth -= 1;
            if depth == 0 {
                return Some(lt);
            }
            find(b, lt, b">")? + 1
        } else if rest.starts_with(b"<!") || rest.starts_with(b"<?") {
            find(b, lt, b">")? + 1
        } else {
            match Tag::at(b, lt, html) {
                None => lt + 1,
                Some(tag) if !tag.closed => return None,
                Some(tag) => {
                    depth += usize::from(!tag.empty);
                    tag.end
                }
            }
        };
    }
    None
}

/// Just past a name starting at `i`: anything but white space, `/>=<` and quotes.
fn name_end(b: &[u8], i: usize) -> usize {
    (i..b.len())
        .find(|&j| b[j].is_ascii_whitespace() || b"/>=<\"'".contains(&b[j]))
        .unwrap_or(b.len())
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Where `needle` (ASCII) next starts at or after `from`.
fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

/// Where the end tag of a raw-text element named `name` (`</script`, any case) starts.
fn raw_text_end(b: &[u8], from: usize, name: &[u8]) -> Option<usize> {
    let mut i = from;
    while let Some(lt) = find(b, i, b"</") {
        let after = lt + 2;
        if b.get(after..after + name.len())
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
        {
            return Some(lt);
        }
        i = after;
    }
    None
}
