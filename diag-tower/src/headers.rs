use diag_core::trace::Traceparent;
use diag_core::{HeaderView, ResponseHeaders};
use http::{HeaderName, HeaderValue};

/// Names the request path looks up on every request, parsed once: `HeaderMap::get`
/// with a `&str` parses (validates, lower-cases) the name on every call.
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const X_DEBUG: HeaderName = HeaderName::from_static("x-debug");

/// `map.get(name)`, without parsing the names asked for on every request.
fn get<'a>(map: &'a http::HeaderMap, name: &str) -> Option<&'a [u8]> {
    let known = match name {
        "traceparent" => &TRACEPARENT,
        "x-debug" => &X_DEBUG,
        _ => return map.get(name).map(HeaderValue::as_bytes),
    };
    let value = if map.keys_len() <= SCAN_MAX {
        // Comparing a few names is cheaper than hashing one (`HeaderMap` hashes the
        // name byte by byte, a chain of dependent multiplies); the first entry with
        // the name holds its first value.
        map.iter().find_map(|(n, v)| (n == known).then_some(v))
    } else {
        map.get(known)
    };
    value.map(HeaderValue::as_bytes)
}

/// Up to this many distinct header names, [`get`] compares names instead of hashing.
const SCAN_MAX: usize = 8;

/// An `http::HeaderMap` seen through diag's framework-neutral [`HeaderView`].
///
/// ```
/// use diag_core::HeaderView;
/// let mut map = http::HeaderMap::new();
/// map.insert("x-debug", "1".parse().unwrap());
/// assert_eq!(diag_tower::HttpHeaders(&map).get("x-debug"), Some(&b"1"[..]));
/// assert_eq!(diag_tower::HttpHeaders(&map).get("traceparent"), None);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct HttpHeaders<'a>(pub &'a http::HeaderMap);

impl HeaderView for HttpHeaders<'_> {
    fn get(&self, name: &str) -> Option<&[u8]> {
        get(self.0, name)
    }

    fn for_each(&self, f: &mut dyn FnMut(&str, &[u8])) {
        // `http` stores names lower-case already.
        for (name, value) in self.0 {
            f(name.as_str(), value.as_bytes());
        }
    }
}

/// A response's `http::HeaderMap`, read and extended by diag at the end of a request.
#[derive(Debug)]
pub struct HttpHeadersMut<'a>(pub &'a mut http::HeaderMap);

impl HeaderView for HttpHeadersMut<'_> {
    fn get(&self, name: &str) -> Option<&[u8]> {
        get(self.0, name)
    }

    fn for_each(&self, f: &mut dyn FnMut(&str, &[u8])) {
        HttpHeaders(self.0).for_each(f)
    }
}

impl ResponseHeaders for HttpHeadersMut<'_> {
    fn insert(&mut self, name: &'static str, value: &str) {
        // diag only produces valid values; one that is not is dropped, never a panic.
        if let Ok(value) = HeaderValue::from_str(value) {
            self.0.insert(HeaderName::from_static(name), value);
        }
    }

    fn insert_traceparent(&mut self, value: &Traceparent) {
        let bytes = bytes::Bytes::copy_from_slice(value.as_bytes());
        // SAFETY: a `Traceparent` holds only lower-case hex digits and `-` (its bytes are
        // written by `TraceContext::traceparent` alone), all visible ASCII, which is what
        // a header value may contain. Debug builds of `http` check it anyway.
        let value = unsafe { HeaderValue::from_maybe_shared_unchecked(bytes) };
        self.0.insert(TRACEPARENT, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(names: usize) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for i in 0..names {
            map.insert(
                HeaderName::from_bytes(format!("x-filler-{i}").as_bytes()).unwrap(),
                HeaderValue::from_static("f"),
            );
        }
        map.append(X_DEBUG, HeaderValue::from_static("first"));
        map.append(X_DEBUG, HeaderValue::from_static("second"));
        map.insert(TRACEPARENT, HeaderValue::from_static("tp"));
        map
    }

    #[test]
    fn known_names_are_found_by_scan_or_hash_alike() {
        // Below, at and above the scan limit (the two names add two keys).
        for fillers in [0, SCAN_MAX - 2, SCAN_MAX - 1, 3 * SCAN_MAX] {
            let map = map(fillers);
            assert_eq!(map.keys_len() <= SCAN_MAX, fillers + 2 <= SCAN_MAX);
            let view = HttpHeaders(&map);
            assert_eq!(view.get("x-debug"), Some(&b"first"[..]), "{fillers}");
            assert_eq!(view.get("traceparent"), Some(&b"tp"[..]), "{fillers}");
            assert_eq!(view.get("x-filler-0").is_some(), fillers > 0);
            let mut map = map;
            map.remove(X_DEBUG);
            assert_eq!(HttpHeaders(&map).get("x-debug"), None, "{fillers}");
        }
    }
}
