use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use diag_core::trace::Traceparent;
use diag_core::{HeaderView, ResponseHeaders};

/// Names the request path asks for on every request, parsed once: a `&str` key is
/// parsed (validated, lower-cased) on every lookup, and `HeaderName::from_static` with
/// a name known only at run time on every call.
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const X_DEBUG: HeaderName = HeaderName::from_static("x-debug");
const X_DEBUG_LEVEL: HeaderName = HeaderName::from_static("x-debug-level");

/// `map.get(name)`, without parsing the names diag asks for on every request.
fn get<'a>(map: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    let known = match name {
        "traceparent" => &TRACEPARENT,
        "x-debug" => &X_DEBUG,
        "x-debug-level" => &X_DEBUG_LEVEL,
        "content-length" => &header::CONTENT_LENGTH,
        "forwarded" => &header::FORWARDED,
        _ => return map.get(name).map(HeaderValue::as_bytes),
    };
    map.get(known).map(HeaderValue::as_bytes)
}

/// The name of a header diag adds to a response, parsed at compile time when it is
/// one of diag's own.
fn response_header_name(name: &'static str) -> HeaderName {
    const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");
    const X_DEBUG_ID: HeaderName = HeaderName::from_static("x-debug-id");
    const X_TRACE_ID: HeaderName = HeaderName::from_static("x-trace-id");
    const X_DEBUG_INSTANCE: HeaderName = HeaderName::from_static("x-debug-instance");
    const X_DEBUG_STATUS: HeaderName = HeaderName::from_static("x-debug-status");
    match name {
        "traceparent" => TRACEPARENT,
        "server-timing" => SERVER_TIMING,
        "x-debug-id" => X_DEBUG_ID,
        "x-trace-id" => X_TRACE_ID,
        "x-debug-instance" => X_DEBUG_INSTANCE,
        "x-debug-status" => X_DEBUG_STATUS,
        "vary" => actix_web::http::header::VARY,
        "cache-control" => actix_web::http::header::CACHE_CONTROL,
        _ => HeaderName::from_static(name),
    }
}

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
        get(self.0, name)
    }

    fn for_each(&self, f: &mut dyn FnMut(&str, &[u8])) {
        for (name, value) in self.0.iter() {
            f(name.as_str(), value.as_bytes());
        }
    }
}

/// A response's actix-web `HeaderMap`, read and extended by diag at the end of a request.
///
/// ```
/// use actix_web::http::header::HeaderMap;
/// use diag_core::request::RequestView;
///
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let guard = diag.begin(&RequestView {
///     method: "GET", route: Some("/"), uri: "/", headers: &(), peer: &|| None,
/// });
/// let mut headers = HeaderMap::new();
/// let _tap = guard.finish(503, &mut diag_actix::ActixHeadersMut(&mut headers));
/// assert!(headers.contains_key("traceparent"), "an error names its trace");
/// ```
#[derive(Debug)]
pub struct ActixHeadersMut<'a>(pub &'a mut HeaderMap);

impl HeaderView for ActixHeadersMut<'_> {
    fn get(&self, name: &str) -> Option<&[u8]> {
        get(self.0, name)
    }

    fn for_each(&self, f: &mut dyn FnMut(&str, &[u8])) {
        ActixHeaders(self.0).for_each(f)
    }
}

impl ResponseHeaders for ActixHeadersMut<'_> {
    fn insert(&mut self, name: &'static str, value: &str) {
        // diag only produces valid values; one that is not is dropped, never a panic.
        if let Ok(value) = HeaderValue::from_str(value) {
            self.0.insert(response_header_name(name), value);
        }
    }

    fn append(&mut self, name: &'static str, value: &str) {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.0.append(response_header_name(name), value);
        }
    }

    fn insert_traceparent(&mut self, value: &Traceparent) {
        // A handler's own `traceparent` is kept.
        if self.0.contains_key(TRACEPARENT) {
            return;
        }
        let bytes = actix_web::web::Bytes::copy_from_slice(value.as_bytes());
        // SAFETY: a `Traceparent` holds only lower-case hex digits and `-` (its bytes are
        // written by `TraceContext::traceparent` alone), all visible ASCII, which is what
        // a header value may contain.
        let value = unsafe { HeaderValue::from_maybe_shared_unchecked(bytes) };
        self.0.insert(TRACEPARENT, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_are_found_like_any_other() {
        let mut map = HeaderMap::new();
        map.append(X_DEBUG, HeaderValue::from_static("first"));
        map.append(X_DEBUG, HeaderValue::from_static("second"));
        map.insert(TRACEPARENT, HeaderValue::from_static("tp"));
        map.insert(X_DEBUG_LEVEL, HeaderValue::from_static("trace"));
        map.insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
        map.insert(
            HeaderName::from_static("x-other"),
            HeaderValue::from_static("o"),
        );
        let view = ActixHeaders(&map);
        assert_eq!(view.get("x-debug"), Some(&b"first"[..]));
        assert_eq!(view.get("traceparent"), Some(&b"tp"[..]));
        assert_eq!(view.get("x-debug-level"), Some(&b"trace"[..]));
        assert_eq!(view.get("content-length"), Some(&b"5"[..]));
        assert_eq!(view.get("x-other"), Some(&b"o"[..]));
        assert_eq!(view.get("forwarded"), None);
    }

    #[test]
    fn diag_s_response_headers_land_under_their_names() {
        let mut map = HeaderMap::new();
        let mut headers = ActixHeadersMut(&mut map);
        for name in [
            "server-timing",
            "x-debug-id",
            "x-trace-id",
            "x-debug-status",
        ] {
            headers.insert(name, "v");
        }
        headers.insert("x-custom-debug", "c");
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ctx = diag_core::trace::TraceContext::from_traceparent(tp.as_bytes()).unwrap();
        headers.insert_traceparent(&ctx.traceparent());
        for name in [
            "server-timing",
            "x-debug-id",
            "x-trace-id",
            "x-debug-status",
        ] {
            assert_eq!(map.get(name).unwrap(), "v", "{name}");
        }
        assert_eq!(map.get("x-custom-debug").unwrap(), "c");
        assert_eq!(map.get("traceparent").unwrap(), tp);
    }

    #[test]
    fn a_handler_s_own_traceparent_is_kept() {
        let ours = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let trace = diag_core::trace::TraceContext::from_traceparent(ours.as_bytes()).unwrap();
        let mut map = HeaderMap::new();
        ActixHeadersMut(&mut map).insert_traceparent(&trace.traceparent());
        assert_eq!(map.get(TRACEPARENT).unwrap(), ours, "added when absent");
        let own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        map.insert(TRACEPARENT, HeaderValue::from_static(own));
        ActixHeadersMut(&mut map).insert_traceparent(&trace.traceparent());
        assert_eq!(map.get(TRACEPARENT).unwrap(), own, "the handler's is kept");
    }
}
