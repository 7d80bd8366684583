//! A read-only view of request headers that knows no HTTP crate.
//!
//! Adapters implement [`HeaderView`] over their framework's header map (http 1.x in
//! `diag-tower`, actix-web's own in `diag-actix`), so the core never names a framework type.

use crate::trace::Traceparent;

/// Read access to a request's headers, as the core needs it.
///
/// Names passed in are lower-case ASCII.
///
/// ```
/// use diag_core::HeaderView;
/// let headers = vec![("accept".to_owned(), "text/html".to_owned())];
/// assert_eq!(headers.get("accept"), Some(&b"text/html"[..]));
/// assert_eq!(headers.get("x-debug"), None);
/// ```
pub trait HeaderView {
    /// The first value of the header `name`, if present.
    ///
    /// ```
    /// use diag_core::HeaderView;
    /// let headers = vec![("X-Request-Id".to_owned(), "r-42".to_owned())];
    /// assert_eq!(headers.get("x-request-id"), Some(&b"r-42"[..]));
    /// assert_eq!(().get("x-request-id"), None);
    /// ```
    fn get(&self, name: &str) -> Option<&[u8]>;

    /// Calls `f` with every header line, in order, names lower-case.
    ///
    /// ```
    /// use diag_core::HeaderView;
    /// let headers = vec![
    ///     ("Accept".to_owned(), "*/*".to_owned()),
    ///     ("x-debug".to_owned(), "1".to_owned()),
    /// ];
    /// let mut names = Vec::new();
    /// headers.for_each(&mut |name, _value| names.push(name.to_owned()));
    /// assert_eq!(names, ["accept", "x-debug"]);
    /// ```
    fn for_each(&self, f: &mut dyn FnMut(&str, &[u8]));

    /// The first value of `name` as UTF-8 text, if present and valid.
    ///
    /// ```
    /// use diag_core::HeaderView;
    /// let headers = vec![("user-agent".to_owned(), "curl/8.5.0".to_owned())];
    /// assert_eq!(headers.get_str("user-agent"), Some("curl/8.5.0"));
    /// ```
    fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// All values of `name` joined by `", "` (how list-valued headers such as
    /// `X-Forwarded-For` combine), or `None` when absent.
    ///
    /// ```
    /// use diag_core::HeaderView;
    /// let headers = vec![
    ///     ("x-forwarded-for".to_owned(), "203.0.113.7".to_owned()),
    ///     ("x-forwarded-for".to_owned(), "10.0.0.2".to_owned()),
    /// ];
    /// assert_eq!(headers.get_joined("x-forwarded-for").as_deref(), Some("203.0.113.7, 10.0.0.2"));
    /// assert_eq!(headers.get_joined("forwarded"), None);
    /// ```
    fn get_joined(&self, name: &str) -> Option<String> {
        let mut out: Option<String> = None;
        self.for_each(&mut |n, v| {
            if n == name {
                let v = String::from_utf8_lossy(v);
                match &mut out {
                    Some(s) => {
                        s.push_str(", ");
                        s.push_str(&v);
                    }
                    None => out = Some(v.into_owned()),
                }
            }
        });
        out
    }
}

impl HeaderView for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_bytes())
    }

    fn for_each(&self, f: &mut dyn FnMut(&str, &[u8])) {
        for (n, v) in self {
            f(&n.to_ascii_lowercase(), v.as_bytes());
        }
    }
}

/// No headers at all.
impl HeaderView for () {
    fn get(&self, _: &str) -> Option<&[u8]> {
        None
    }

    fn for_each(&self, _: &mut dyn FnMut(&str, &[u8])) {}
}

/// The response head at [`RequestGuard::finish`](crate::request::RequestGuard::finish):
/// read (a debug request captures it) and extended with diag's own headers, in place,
/// without copies.
///
/// ```
/// use diag_core::{HeaderView, ResponseHeaders};
/// let mut headers: Vec<(String, String)> = Vec::new();
/// ResponseHeaders::insert(&mut headers, "traceparent", "00-...");
/// assert_eq!(headers.get_str("traceparent"), Some("00-..."));
/// ```
pub trait ResponseHeaders: HeaderView {
    /// Sets header `name` (lower-case) to `value`, replacing any value it had.
    ///
    /// ```
    /// use diag_core::{HeaderView, ResponseHeaders};
    /// let mut headers = vec![("X-Trace-Id".to_owned(), "old".to_owned())];
    /// // `Vec::insert` would win over the trait method: call it by its path.
    /// ResponseHeaders::insert(&mut headers, "x-trace-id", "4bf92f3577b34da6a3ce929d0e0e4736");
    /// assert_eq!(headers.len(), 1); // replaced, whatever its case
    /// assert_eq!(headers.get_str("x-trace-id"), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    /// ```
    fn insert(&mut self, name: &'static str, value: &str);

    /// Adds a line for header `name` (lower-case), keeping the lines it has: how diag's
    /// `Server-Timing` joins a handler's own.
    ///
    /// ```
    /// use diag_core::{HeaderView, ResponseHeaders};
    /// let mut headers = vec![("server-timing".to_owned(), "db;dur=5".to_owned())];
    /// // `Vec::append` would win over the trait method: call it by its path.
    /// ResponseHeaders::append(&mut headers, "server-timing", "total;dur=7");
    /// assert_eq!(headers.get_joined("server-timing").as_deref(), Some("db;dur=5, total;dur=7"));
    /// ```
    fn append(&mut self, name: &'static str, value: &str);

    /// Sets `traceparent` (on every response, or on a debug request's and an error's
    /// only, as configured: see
    /// [`RequestGuard::finish`](crate::request::RequestGuard::finish)), unless the response
    /// has one already: a handler (or a tracer of the service's own) that sets it is
    /// kept, as diag never changes what the service answers. An adapter may override
    /// this to build the value without validating it: a [`Traceparent`] is always 55
    /// bytes of lower-case hex digits and dashes.
    ///
    /// ```
    /// use diag_core::trace::TraceContext;
    /// use diag_core::{HeaderView, ResponseHeaders};
    /// let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    /// let trace = TraceContext::from_traceparent(tp.as_bytes()).unwrap();
    /// let mut headers: Vec<(String, String)> = Vec::new();
    /// headers.insert_traceparent(&trace.traceparent());
    /// assert_eq!(headers.get_str("traceparent"), Some(tp));
    ///
    /// let own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    /// let mut headers = vec![("traceparent".to_owned(), own.to_owned())];
    /// headers.insert_traceparent(&trace.traceparent());
    /// assert_eq!(headers.get_str("traceparent"), Some(own), "the handler's is kept");
    /// ```
    fn insert_traceparent(&mut self, value: &Traceparent) {
        if self.get("traceparent").is_none() {
            self.insert("traceparent", value.as_str());
        }
    }
}

impl ResponseHeaders for Vec<(String, String)> {
    fn insert(&mut self, name: &'static str, value: &str) {
        self.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.push((name.to_owned(), value.to_owned()));
    }

    fn append(&mut self, name: &'static str, value: &str) {
        self.push((name.to_owned(), value.to_owned()));
    }
}

/// Discards what is inserted (benchmarks, tests that only need the side effects).
impl ResponseHeaders for () {
    fn insert(&mut self, _: &'static str, _: &str) {}

    fn append(&mut self, _: &'static str, _: &str) {}
}
