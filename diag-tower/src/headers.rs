use diag_core::{HeaderView, ResponseHeaders};
use http::{HeaderName, HeaderValue};

/// An `http::HeaderMap` seen through diag's framework-neutral [`HeaderView`].
///
/// ```
/// use diag_core::HeaderView;
/// let mut map = http::HeaderMap::new();
/// map.insert("x-debug", "1".parse().unwrap());
/// assert_eq!(diag_tower::HttpHeaders(&map).get("x-debug"), Some(&b"1"[..]));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct HttpHeaders<'a>(pub &'a http::HeaderMap);

impl HeaderView for HttpHeaders<'_> {
    fn get(&self, name: &str) -> Option<&[u8]> {
        self.0.get(name).map(|v| v.as_bytes())
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
        self.0.get(name).map(|v| v.as_bytes())
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
}
