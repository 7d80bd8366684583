//! Shared helpers: headers, strategies and checks every property uses.

use diag_core::HeaderView;
use proptest::prelude::*;
use proptest::sample::Index;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

/// The endpoint token (also the debug token and signing key where configured).
pub(crate) const TOKEN: &str = "s3cret-Endpoint-T0ken";
pub(crate) const INSTANCE: &str = "eu-west-1/checkout-0";

/// `cases` per property, unless `PROPTEST_CASES` asks for another number (a longer hunt).
pub(crate) fn config(cases: u32) -> ProptestConfig {
    let default = ProptestConfig::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() {
        default.cases
    } else {
        cases
    };
    ProptestConfig {
        cases,
        // Never write `proptest-regressions/` files into the source tree.
        failure_persistence: None,
        ..default
    }
}

thread_local! {
    static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
}

pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    RT.with(|rt| rt.block_on(f))
}

pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// Bytes that print readably (escaped, huge values abbreviated) when a case fails.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Bytes(pub(crate) Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 160;
        if self.0.len() <= SHOWN {
            write!(f, "b\"{}\"", self.0.escape_ascii())
        } else {
            write!(
                f,
                "b\"{}\"...({} bytes in all, ending b\"{}\")",
                self.0[..SHOWN].escape_ascii(),
                self.0.len(),
                self.0[self.0.len() - 16..].escape_ascii()
            )
        }
    }
}

/// Text that prints abbreviated when huge.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Text(pub(crate) String);

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(160) {
            None => write!(f, "{:?}", self.0),
            Some((cut, _)) => write!(f, "{:?}...({} bytes in all)", &self.0[..cut], self.0.len()),
        }
    }
}

/// Request headers as an HTTP crate holds them: names in any case, values arbitrary bytes
/// (not necessarily UTF-8). `get` finds the first line of a name, whatever its case;
/// `for_each` hands names over lower-case, as [`HeaderView`] promises.
#[derive(Clone, Debug, Default)]
pub(crate) struct RawHeaders(pub(crate) Vec<(String, Bytes)>);

impl HeaderView for RawHeaders {
    fn get(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.0.as_slice())
    }

    fn for_each(&self, f: &mut dyn FnMut(&str, &[u8])) {
        for (n, v) in &self.0 {
            f(&n.to_ascii_lowercase(), &v.0);
        }
    }
}

impl RawHeaders {
    /// All lines of `name` joined by `", "`, as list-valued headers combine.
    pub(crate) fn joined(&self, name: &str) -> Option<String> {
        let values: Vec<String> = self
            .0
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(&v.0).into_owned())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }
}

/// A valid HTTP field value: visible ASCII, spaces and tabs only (what every HTTP library
/// accepts without complaint).
pub(crate) fn valid_header_value(v: &str) -> bool {
    v.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

pub(crate) fn is_lower_hex(s: &[u8]) -> bool {
    s.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `00-<32 hex>-<16 hex>-0[01]`, neither id all zeros: what diag may write.
pub(crate) fn check_written_traceparent(tp: &str) -> Result<(), String> {
    let b = tp.as_bytes();
    let ok = b.len() == 55
        && b.starts_with(b"00-")
        && b[35] == b'-'
        && b[52] == b'-'
        && is_lower_hex(&b[3..35])
        && is_lower_hex(&b[36..52])
        && (&b[53..] == b"00" || &b[53..] == b"01")
        && &b[3..35] != "0".repeat(32).as_bytes()
        && &b[36..52] != "0".repeat(16).as_bytes();
    if ok {
        Ok(())
    } else {
        Err(format!("malformed traceparent written: {tp:?}"))
    }
}

pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

pub(crate) fn in_10_8(ip: IpAddr) -> bool {
    matches!(canonical(ip), IpAddr::V4(v4) if v4.octets()[0] == 10)
}

pub(crate) fn in_192_0_2(ip: IpAddr) -> bool {
    matches!(canonical(ip), IpAddr::V4(v4) if v4.octets()[..3] == [192, 0, 2])
}

/// One forwarding hop's address, as documented for `client_ip`: an address, with or
/// without a port (`a.b.c.d:port`, `[v6]:port`), optionally in double quotes.
pub(crate) fn hop_of(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    let hop = if hop.len() >= 2 && hop.starts_with('"') && hop.ends_with('"') {
        &hop[1..hop.len() - 1]
    } else {
        hop
    };
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = hop.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    let v6 = hop.strip_prefix('[')?.strip_suffix(']')?;
    v6.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
}

/// Walks hops given from the right past trusted proxies: the first untrusted one, or
/// `None` at a hop that is no address.
pub(crate) fn walk_of<'a>(
    peer: IpAddr,
    hops: impl Iterator<Item = &'a str>,
    trusted: impl Fn(IpAddr) -> bool,
) -> Option<IpAddr> {
    let mut client = peer;
    for hop in hops {
        client = canonical(hop_of(hop)?);
        if !trusted(client) {
            break;
        }
    }
    Some(client)
}

/// The forwarding headers of a request, as the access rules read them.
#[derive(Default)]
pub(crate) struct Forwarding {
    pub(crate) xff: Option<String>,
    pub(crate) forwarded: Option<String>,
    pub(crate) real_ip: Option<String>,
}

impl Forwarding {
    /// From header lines: each header's lines joined with `, `.
    pub(crate) fn from_lines<'a>(lines: impl Iterator<Item = (&'a str, &'a str)> + Clone) -> Self {
        let joined = |name: &str| {
            let values: Vec<&str> = lines
                .clone()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
                .collect();
            (!values.is_empty()).then(|| values.join(", "))
        };
        Forwarding {
            xff: joined("x-forwarded-for"),
            forwarded: joined("forwarded"),
            real_ip: joined("x-real-ip"),
        }
    }
}

/// Who the client is, as documented for diag's access and network checks: the peer when
/// no forwarding header came; else (from a trusted proxy only) `X-Forwarded-For`, else
/// `Forwarded`'s `for=` values, else `X-Real-IP`, walked from the right; the first two
/// must agree when both came, and an `X-Real-IP` beside them that names an untrusted
/// address must name their client. `None`: nobody can tell.
pub(crate) fn client_of(
    peer: IpAddr,
    f: &Forwarding,
    trusted: impl Fn(IpAddr) -> bool + Copy,
) -> Option<IpAddr> {
    let peer = canonical(peer);
    if f.xff.is_none() && f.forwarded.is_none() && f.real_ip.is_none() {
        return Some(peer);
    }
    if !trusted(peer) {
        return None;
    }
    let from_xff = f
        .xff
        .as_deref()
        .map(|v| walk_of(peer, v.rsplit(','), trusted));
    let from_forwarded = f.forwarded.as_deref().map(|v| {
        let fors: Vec<&str> = v
            .split(',')
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                    .map_or("", |(_, v)| v.trim())
            })
            .collect();
        walk_of(peer, fors.into_iter().rev(), trusted)
    });
    let client = match (from_xff, from_forwarded) {
        (Some(a), Some(b)) => {
            if a == b {
                a
            } else {
                None
            }
        }
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return walk_of(peer, f.real_ip.as_deref().into_iter(), trusted),
    }?;
    match f.real_ip.as_deref() {
        None => Some(client),
        Some(real_ip) => {
            let named = canonical(hop_of(real_ip)?);
            (trusted(named) || named == client).then_some(client)
        }
    }
}

/// Whether a request coming from `peer` with these headers counts as coming from the
/// allowed network `allowed`, when `trusted` proxies are believed: a request that came
/// through a proxy nobody declared, or whose client nobody can tell, never does.
pub(crate) fn from_network(
    peer: Option<SocketAddr>,
    f: &Forwarding,
    trusted: impl Fn(IpAddr) -> bool + Copy,
    allowed: impl Fn(IpAddr) -> bool,
) -> bool {
    let Some(peer) = peer else { return false };
    client_of(peer.ip(), f, trusted).is_some_and(allowed)
}

pub(crate) fn peer_strategy() -> BoxedStrategy<Option<SocketAddr>> {
    let fixed = prop::sample::select(vec![
        "127.0.0.1",
        "127.9.8.7",
        "::1",
        "::ffff:127.0.0.1",
        "10.0.0.2",
        "10.255.1.1",
        "::ffff:10.0.0.3",
        "192.0.2.7",
        "::ffff:192.0.2.8",
        "203.0.113.9",
        "2001:db8::1",
        "0.0.0.0",
        "::",
    ])
    .prop_map(|s| s.parse::<IpAddr>().expect("a literal address"));
    prop_oneof![
        1 => Just(None),
        6 => (fixed, any::<u16>()).prop_map(|(ip, port)| Some(SocketAddr::new(ip, port))),
        2 => (any::<IpAddr>(), any::<u16>()).prop_map(|(ip, port)| Some(SocketAddr::new(ip, port))),
    ]
    .boxed()
}

/// `X-Forwarded-For` values: lists of hops (addresses, trusted proxies, loopback, garbage)
/// with uneven spacing, or anything at all.
pub(crate) fn xff_strategy() -> BoxedStrategy<Vec<u8>> {
    let hop = prop_oneof![
        prop::sample::select(vec![
            "127.0.0.1",
            "::1",
            "10.0.0.5",
            "10.9.9.9",
            "192.0.2.9",
            "::ffff:192.0.2.10",
            "198.51.100.2",
            "203.0.113.7",
            "[::1]",
            "127.0.0.1:8080",
            "203.0.113.7:5555",
            "[2001:db8::1]:443",
            "[::1]:x",
            "\"[::1]:80\"",
            "unknown",
            "",
            "300.1.1.1",
        ])
        .prop_map(str::to_owned),
        any::<IpAddr>().prop_map(|ip| ip.to_string()),
        "[ -~]{0,12}",
    ];
    prop_oneof![
        4 => (prop::collection::vec((hop, "[ \t]{0,2}"), 1..5)).prop_map(|hops| {
            hops.into_iter()
                .map(|(h, pad)| format!("{pad}{h}{pad}"))
                .collect::<Vec<_>>()
                .join(",")
                .into_bytes()
        }),
        1 => generic_value(),
    ]
    .boxed()
}

/// `Forwarded` values (RFC 7239): elements of `for=`, `by=`, `proto=` pairs, some
/// quoted, some without `for=`, or anything at all.
pub(crate) fn forwarded_strategy() -> BoxedStrategy<Vec<u8>> {
    let hop = xff_strategy().prop_map(|v| String::from_utf8_lossy(&v).into_owned());
    let element = (
        hop,
        prop::sample::select(vec!["for", "For", "by", "for "]),
        prop::sample::select(vec!["", ";proto=http", ";by=10.0.0.5", "; host=x"]),
        any::<bool>(),
    )
        .prop_map(|(hop, key, extra, quoted)| {
            let first = hop.split(',').next().unwrap_or("").trim().to_owned();
            if quoted {
                format!("{key}=\"{first}\"{extra}")
            } else {
                format!("{key}={first}{extra}")
            }
        });
    prop_oneof![
        4 => prop::collection::vec(element, 1..4).prop_map(|e| e.join(", ").into_bytes()),
        1 => generic_value(),
    ]
    .boxed()
}

/// Any header value: random bytes, random text, control characters, or huge.
pub(crate) fn generic_value() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..48),
        4 => ".{0,32}".prop_map(String::into_bytes),
        2 => "[ -~]{0,48}".prop_map(String::into_bytes),
        1 => "[\\x00-\\x1f\\x7f\u{80}-\u{ff}\u{202e}\u{2066}]{1,8}".prop_map(String::into_bytes),
        1 => (1_000usize..70_000, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
    ]
    .boxed()
}

/// One byte of `value` changed: replaced, deleted, duplicated, upper-cased, or a byte
/// inserted.
pub(crate) fn mutate(value: Vec<u8>) -> BoxedStrategy<Vec<u8>> {
    (Just(value), any::<Index>(), any::<u8>(), 0u8..5)
        .prop_map(|(mut v, at, byte, op)| {
            if v.is_empty() {
                return vec![byte];
            }
            let i = at.index(v.len());
            match op {
                0 => v[i] = if v[i] == byte { byte ^ 1 } else { byte },
                1 => {
                    v.remove(i);
                }
                2 => v.insert(i, v[i]),
                3 => v[i] = v[i].to_ascii_uppercase(),
                _ => v.insert(at.index(v.len() + 1), byte),
            }
            v
        })
        .boxed()
}
