use diag_core::trace::Traceparent;
use diag_core::{HeaderView, ResponseHeaders};
use http::{HeaderName, HeaderValue};

/// Names the request path looks up on every request, parsed once: `HeaderMap::get`
/// with a `&str` parses (validates, lower-cases) the name on every call.
pub(crate) const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const X_DEBUG: HeaderName = HeaderName::from_static("x-debug");
const X_DEBUG_LEVEL: HeaderName = HeaderName::from_static("x-debug-level");
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// `map.get(name)`, without parsing the names asked for on every request.
fn get<'a>(map: &'a http::HeaderMap, name: &str) -> Option<&'a [u8]> {
    let known = match name {
        "traceparent" => &TRACEPARENT,
        "x-debug" => &X_DEBUG,
        // Asked only on a debug request's path: parsed once here too, not per call.
        "x-debug-level" => &X_DEBUG_LEVEL,
        "content-length" => &http::header::CONTENT_LENGTH,
        "forwarded" => &http::header::FORWARDED,
        // A gRPC server's response heads and trailers.
        "content-type" => &http::header::CONTENT_TYPE,
        "grpc-status" => &GRPC_STATUS,
        _ => return map.get(name).map(HeaderValue::as_bytes),
    };
    map.get(known).map(HeaderValue::as_bytes)
}

/// The name of a header diag adds to a debug request's response: its own names are
/// parsed at compile time (`HeaderName::from_static` with a name known only at run time
/// parses it on every call).
fn response_header_name(name: &'static str) -> HeaderName {
    const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");
    const X_DEBUG_ID: HeaderName = HeaderName::from_static("x-debug-id");
    const X_TRACE_ID: HeaderName = HeaderName::from_static("x-trace-id");
    const X_DEBUG_INSTANCE: HeaderName = HeaderName::from_static("x-debug-instance");
    const X_DEBUG_STATUS: HeaderName = HeaderName::from_static("x-debug-status");
    match name {
        "server-timing" => SERVER_TIMING,
        "x-debug-id" => X_DEBUG_ID,
        "x-trace-id" => X_TRACE_ID,
        "x-debug-instance" => X_DEBUG_INSTANCE,
        "x-debug-status" => X_DEBUG_STATUS,
        "vary" => http::header::VARY,
        "cache-control" => http::header::CACHE_CONTROL,
        _ => HeaderName::from_static(name),
    }
}

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
///
/// ```
/// use diag_core::request::RequestView;
///
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let guard = diag.begin(&RequestView {
///     method: "GET", route: Some("/"), uri: "/", headers: &(), peer: &|| None,
/// });
/// let mut res = http::Response::new(());
/// let _tap = guard.finish(503, &mut diag_tower::HttpHeadersMut(res.headers_mut()));
/// assert!(res.headers().contains_key("traceparent"), "an error names its trace");
/// ```
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
            self.0.insert(response_header_name(name), value);
        }
    }

    fn append(&mut self, name: &'static str, value: &str) {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.0.append(response_header_name(name), value);
        }
    }

    fn insert_traceparent(&mut self, value: &Traceparent) {
        // A handler's own `traceparent` is kept. A scan of the few names a response
        // has costs less than hashing one (`entry` instead of `insert`: +100
        // instructions a request).
        if self.0.keys().any(|name| *name == TRACEPARENT) {
            return;
        }
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
        map.insert(X_DEBUG_LEVEL, HeaderValue::from_static("trace"));
        map.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("5"));
        map
    }

    #[test]
    fn known_names_are_found_like_any_other() {
        for fillers in [0, 3, 40] {
            let map = map(fillers);
            let view = HttpHeaders(&map);
            assert_eq!(view.get("x-debug"), Some(&b"first"[..]), "{fillers}");
            assert_eq!(view.get("traceparent"), Some(&b"tp"[..]), "{fillers}");
            assert_eq!(view.get("x-debug-level"), Some(&b"trace"[..]));
            assert_eq!(view.get("content-length"), Some(&b"5"[..]));
            assert_eq!(view.get("forwarded"), None);
            assert_eq!(view.get("x-filler-0").is_some(), fillers > 0);
            let mut map = map;
            map.remove(X_DEBUG);
            assert_eq!(HttpHeaders(&map).get("x-debug"), None, "{fillers}");
        }
    }

    #[test]
    fn a_handler_s_own_traceparent_is_kept() {
        let ours = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let trace = diag_core::trace::TraceContext::from_traceparent(ours.as_bytes()).unwrap();
        let mut map = http::HeaderMap::new();
        HttpHeadersMut(&mut map).insert_traceparent(&trace.traceparent());
        assert_eq!(map.get(TRACEPARENT).unwrap(), ours, "added when absent");
        let own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        map.insert(TRACEPARENT, HeaderValue::from_static(own));
        HttpHeadersMut(&mut map).insert_traceparent(&trace.traceparent());
        assert_eq!(map.get(TRACEPARENT).unwrap(), own, "the handler's is kept");
    }
}
