use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use diag_core::{HeaderView, ResponseHeaders};

/// An actix-web `HeaderMap` seen through diag's framework-neutral [`HeaderView`].
///
/// ```
/// use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
/// use diag_core::HeaderView;
/// let mut map = HeaderMap::new();
/// map.insert(HeaderName::from_static("x-debug"), HeaderValue::from_static("1"));
/// assert_eq!(diag_actix::ActixHeaders(&map).get("x-debug"), Some(&b"1"[..]));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ActixHeaders<'a>(pub &'a HeaderMap);

impl HeaderView for ActixHeaders<'_> {
    fn get(&self, name: &str) -> Option<&[u8]> {
        self.0.get(name).map(|v| v.as_bytes())
    }

    fn for_each(&self, f: &mut dyn FnMut(&str, &[u8])) {
        for (name, value) in self.0.iter() {
            f(name.as_str(), value.as_bytes());
        }
    }
}

/// A response's actix-web `HeaderMap`, read and extended by diag at the end of a request.
#[derive(Debug)]
pub struct ActixHeadersMut<'a>(pub &'a mut HeaderMap);

impl HeaderView for ActixHeadersMut<'_> {
    fn get(&self, name: &str) -> Option<&[u8]> {
        self.0.get(name).map(|v| v.as_bytes())
    }

    fn for_each(&self, f: &mut dyn FnMut(&str, &[u8])) {
        ActixHeaders(self.0).for_each(f)
    }
}

impl ResponseHeaders for ActixHeadersMut<'_> {
    fn insert(&mut self, name: &'static str, value: &str) {
        // diag only produces valid values; one that is not is dropped, never a panic.
        if let Ok(value) = HeaderValue::from_str(value) {
            self.0.insert(HeaderName::from_static(name), value);
        }
    }
}
