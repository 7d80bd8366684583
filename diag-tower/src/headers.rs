use diag_core::HeaderView;

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
