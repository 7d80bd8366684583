//! Where traces go, and how one batch gets there: a plain HTTP/1.1 `POST`.

use super::*;
use std::net::SocketAddr;

/// Where traces go: `http://host:port/path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `host:port`.
    pub(super) authority: String,
    pub(super) path: String,
}

impl Endpoint {
    /// The URL as diag shows it (on `/debug`, in its WARN and `start` event): a query
    /// (`?api_key=…`) hidden, as credentials in the URL are refused.
    pub(crate) fn shown(&self) -> String {
        let path = match self.path.split_once('?') {
            Some((path, _)) => format!("{path}?[redacted]"),
            None => self.path.clone(),
        };
        format!("http://{}{path}", self.authority)
    }

    /// Parses `http://host[:port][/path]` (port 80, path `/v1/traces` when absent).
    pub(crate) fn parse(url: &str) -> Result<Endpoint, String> {
        // As an error names it (in a WARN, the start event, a ConfigError): no query, no
        // credentials before an `@`.
        let named = {
            // Credentials first (a password may hold `?` or `#`), then the query.
            let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
            let rest = match rest.rsplit_once('@') {
                Some((_, host)) => format!("…@{host}"),
                None => rest.to_owned(),
            };
            let rest = rest.split(['?', '#']).next().unwrap_or("");
            if scheme.is_empty() {
                rest.to_owned()
            } else {
                format!("{scheme}://{rest}")
            }
        };
        let rest = url.trim().strip_prefix("http://").ok_or_else(|| {
            format!("`{named}`: only http:// is supported (send to a local collector)")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!("`{named}`: no host"));
        }
        if authority.contains('@') {
            // Not supported, and it would be printed in warnings and on `/debug`.
            return Err("credentials in the URL are not supported".to_owned());
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let path = if path.is_empty() || path == "/" {
            "/v1/traces"
        } else {
            path
        };
        Ok(Endpoint {
            authority,
            path: path.to_owned(),
        })
    }
}

/// The protocol OpenTelemetry's exporters are told to speak for traces, and the variable
/// that says so (`OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else `OTEL_EXPORTER_OTLP_PROTOCOL`),
/// read through `var`; `None` when neither is set.
pub(crate) fn otel_protocol(
    var: impl Fn(&str) -> Option<String>,
) -> Option<(&'static str, String)> {
    [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ]
    .into_iter()
    .find_map(|name| Some((name, var(name)?.trim().to_owned())))
}

/// The endpoint the environment names, read through `var`: `DIAG_OTLP_ENDPOINT`, else
/// OpenTelemetry's `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT`
/// with `/v1/traces`. OpenTelemetry's only where its exporters speak what diag speaks,
/// OTLP/HTTP with protobuf (`OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL` unset or
/// `http/protobuf`): a gRPC endpoint would only collect failures.
/// Also returns the name of the variable the endpoint came from.
pub(crate) fn endpoint_from_env(
    var: impl Fn(&str) -> Option<String>,
) -> Option<(&'static str, String)> {
    let otel = otel_protocol(&var).is_none_or(|(_, p)| p == "http/protobuf");
    [
        ("DIAG_OTLP_ENDPOINT", "", true),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", otel),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "/v1/traces", otel),
    ]
    .into_iter()
    .filter(|(_, _, usable)| *usable)
    .find_map(|(name, suffix, _)| {
        let url = var(name)?;
        let url = url.trim().trim_end_matches('/');
        (!url.is_empty()).then(|| (name, format!("{url}{suffix}")))
    })
}

/// How long the collector's looked-up addresses are used before they are looked up again.
pub(super) const RESOLVE_EVERY: Duration = Duration::from_secs(30);

/// The collector's addresses, looked up at most every [`RESOLVE_EVERY`] (not on every
/// post, up to one a second), and again at once after none of them answered. A lookup
/// that fails keeps the addresses that worked before, and is tried again after
/// `RESOLVE_EVERY`: a resolver that is down does not stop the export.
#[derive(Debug, Default)]
pub(super) struct Addresses {
    known: Vec<SocketAddr>,
    /// When `known` was looked up (or last kept after a failed lookup).
    at: Option<Instant>,
}

impl Addresses {
    /// The addresses to try, looked up with `resolve` when due.
    pub(super) fn get(
        &mut self,
        authority: &str,
        resolve: impl FnOnce(&str) -> std::io::Result<Vec<SocketAddr>>,
    ) -> Result<Vec<SocketAddr>, String> {
        let due = self.at.is_none_or(|at| at.elapsed() >= RESOLVE_EVERY);
        if !due && !self.known.is_empty() {
            return Ok(self.known.clone());
        }
        match resolve(authority) {
            Ok(found) if !found.is_empty() => {
                self.known = found;
                self.at = Some(Instant::now());
                Ok(self.known.clone())
            }
            // Stale, but better than none: asked again after RESOLVE_EVERY.
            _ if !self.known.is_empty() => {
                self.at = Some(Instant::now());
                Ok(self.known.clone())
            }
            Ok(_) => Err("no address".to_owned()),
            Err(e) => Err(io_error(e)),
        }
    }

    /// None of the addresses answered: look them up again on the next post (the
    /// collector may have moved).
    pub(super) fn forget(&mut self) {
        self.at = None;
    }

    /// For tests: as if the addresses had been looked up `by` earlier.
    #[cfg(test)]
    pub(super) fn age(&mut self, by: Duration) {
        self.at = self.at.and_then(|at| at.checked_sub(by));
    }

    /// For tests: whether the next post looks the name up.
    #[cfg(test)]
    pub(super) fn due(&self) -> bool {
        self.at.is_none_or(|at| at.elapsed() >= RESOLVE_EVERY)
    }
}

/// A connection to the first of `authority`'s addresses that answers (`localhost` may
/// name `::1` first and a collector listen on 127.0.0.1 only).
pub(super) fn connect(authority: &str, addresses: &mut Addresses) -> Result<TcpStream, String> {
    let mut last = String::from("no address");
    let resolve = |a: &str| a.to_socket_addrs().map(Iterator::collect);
    for addr in addresses.get(authority, resolve)? {
        match TcpStream::connect_timeout(&addr, TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = io_error(e),
        }
    }
    addresses.forget();
    Err(last)
}

/// An I/O error in words: a timeout of a read or write shows as `WouldBlock` ("Resource
/// temporarily unavailable") on Unix, which says nothing of what happened.
pub(super) fn io_error(e: std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            format!("no answer within {} s", TIMEOUT.as_secs())
        }
        _ => e.to_string(),
    }
}

/// One `POST` with `Connection: close`; a 2xx status is success.
pub(super) fn post(
    endpoint: &Endpoint,
    addresses: &mut Addresses,
    body: &[u8],
) -> Result<(), String> {
    let mut stream = connect(&endpoint.authority, addresses)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io_error)?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io_error)?;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-protobuf\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        endpoint.path,
        endpoint.authority,
        body.len()
    );
    stream.write_all(head.as_bytes()).map_err(io_error)?;
    stream.write_all(body).map_err(io_error)?;
    // The status line is all that is needed: `HTTP/1.1 200 OK`.
    let mut buf = [0u8; 64];
    let mut n = 0;
    while n < buf.len() {
        match stream.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => {
                n += k;
                if buf[..n].contains(&b'\n') {
                    break;
                }
            }
            Err(e) => return Err(io_error(e)),
        }
    }
    let line = String::from_utf8_lossy(&buf[..n]);
    let status = line.split(' ').nth(1).unwrap_or("");
    if status.starts_with('2') {
        Ok(())
    } else {
        Err(format!(
            "the collector answered `{}`",
            line.lines().next().unwrap_or("")
        ))
    }
}
