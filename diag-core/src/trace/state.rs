//! W3C `tracestate`: the vendor entries that travel beside `traceparent`. A service
//! that continues a caller's trace must pass them on to the services it calls, or the
//! vendors' own context (a sampling decision, a tenant) is lost at that hop.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::HeaderView;

/// The longest `tracestate` passed on, in bytes, after optional white space is removed
/// (the W3C spec asks every participant to propagate at least 512).
///
/// ```
/// use diag_core::trace::{MAX_TRACESTATE_LEN, TraceState};
/// let long = "x".repeat(200);
/// let header = format!("a={long},b={long},c={long},d=1");
/// let (state, trimmed) = TraceState::parse(header.as_bytes()).unwrap().unwrap();
/// assert!(trimmed && state.as_str().len() <= MAX_TRACESTATE_LEN);
/// // The right-most member over 128 bytes went first.
/// assert_eq!(state.as_str(), format!("a={long},b={long},d=1"));
/// ```
pub const MAX_TRACESTATE_LEN: usize = 512;

/// The most list members a `tracestate` may have (the W3C limit); one with more is
/// discarded whole.
///
/// ```
/// use diag_core::trace::{MAX_TRACESTATE_MEMBERS, TraceState, TraceStateError};
/// let members: Vec<String> = (0..=MAX_TRACESTATE_MEMBERS).map(|i| format!("k{i}=v")).collect();
/// let too_many = members.join(",");
/// assert_eq!(TraceState::parse(too_many.as_bytes()), Err(TraceStateError::Invalid));
/// ```
pub const MAX_TRACESTATE_MEMBERS: usize = 32;

/// Members longer than this are the first removed when the whole is over
/// [`MAX_TRACESTATE_LEN`], as the W3C spec suggests.
const LONG_MEMBER: usize = 128;

/// A valid `tracestate` header value, normalised (members joined by `,`, no white
/// space) and at most [`MAX_TRACESTATE_LEN`] bytes. Cheap to clone.
///
/// ```
/// use diag_core::trace::{TraceState, TraceStateError};
/// let (state, trimmed) = TraceState::parse(b"congo=t61rcWkgMzE, rojo=00f067aa0ba902b7")
///     .unwrap()
///     .unwrap();
/// assert_eq!(state.as_str(), "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
/// assert!(!trimmed);
/// // Anything malformed discards the whole header, as the spec asks.
/// assert_eq!(TraceState::parse(b"congo=t61,Rojo=1"), Err(TraceStateError::Invalid));
/// // Empty members are allowed and dropped; nothing left is no tracestate.
/// assert_eq!(TraceState::parse(b" , "), Ok(None));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TraceState(Arc<str>);

/// Why an incoming `tracestate` was not passed on.
///
/// ```
/// use diag_core::trace::{TraceState, TraceStateError};
/// assert_eq!(TraceState::parse(b"no-equals-sign"), Err(TraceStateError::Invalid));
/// assert_eq!(TraceState::parse(b"a=1,a=2"), Err(TraceStateError::Invalid), "repeated key");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceStateError {
    /// A member is not `key=value` as the spec writes them, a key repeats, or there are
    /// more than [`MAX_TRACESTATE_MEMBERS`] members.
    #[error(
        "tracestate is not a list of distinct key=value members (at most {MAX_TRACESTATE_MEMBERS})"
    )]
    Invalid,
}

impl TraceState {
    /// Parses a `tracestate` value (several header lines joined by `,` are one value).
    /// `Ok(None)` when it has no members; otherwise the state and whether members
    /// were removed to fit [`MAX_TRACESTATE_LEN`] (the longest, over 128 bytes, first,
    /// then from the right, where the oldest entries are).
    ///
    /// ```
    /// use diag_core::trace::TraceState;
    /// let (state, trimmed) = TraceState::parse(b"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
    ///     .unwrap()
    ///     .unwrap();
    /// assert_eq!(state.as_str(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    /// assert!(!trimmed);
    /// assert_eq!(TraceState::parse(b""), Ok(None));
    /// ```
    pub fn parse(value: &[u8]) -> Result<Option<(TraceState, bool)>, TraceStateError> {
        let mut members: Vec<&[u8]> = Vec::new();
        for member in value.split(|&b| b == b',') {
            let member = member.trim_ascii();
            if member.is_empty() {
                continue;
            }
            let Some(eq) = member.iter().position(|&b| b == b'=') else {
                return Err(TraceStateError::Invalid);
            };
            let (key, value) = (&member[..eq], &member[eq + 1..]);
            if !valid_key(key) || !valid_value(value) {
                return Err(TraceStateError::Invalid);
            }
            if members.len() == MAX_TRACESTATE_MEMBERS
                || members
                    .iter()
                    .any(|m| m.starts_with(key) && m[key.len()] == b'=')
            {
                return Err(TraceStateError::Invalid);
            }
            members.push(member);
        }
        let joined_len = |m: &[&[u8]]| m.iter().map(|s| s.len() + 1).sum::<usize>();
        let mut trimmed = false;
        while joined_len(&members).saturating_sub(1) > MAX_TRACESTATE_LEN {
            trimmed = true;
            match members.iter().rposition(|m| m.len() > LONG_MEMBER) {
                Some(long) => members.remove(long),
                None => members.pop().unwrap_or_default(),
            };
        }
        if members.is_empty() {
            return Ok(None);
        }
        let joined = members.join(&b","[..]);
        // Every byte was checked to be visible ASCII.
        let text = String::from_utf8(joined).map_err(|_| TraceStateError::Invalid)?;
        Ok(Some((TraceState(Arc::from(text)), trimmed)))
    }

    /// The header value.
    ///
    /// ```
    /// use diag_core::trace::TraceState;
    /// let (state, _) = TraceState::parse(b"congo=t61rcWkgMzE ,  rojo=1").unwrap().unwrap();
    /// assert_eq!(state.as_str(), "congo=t61rcWkgMzE,rojo=1");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TraceState").field(&&*self.0).finish()
    }
}

/// Reads the `tracestate` of requests that continue a caller's trace, and counts what
/// could not be passed on (`diag_tracestate_dropped_total`).
#[derive(Debug, Default)]
pub(crate) struct IncomingTraceState {
    /// Headers discarded whole (malformed).
    invalid: AtomicU64,
    /// Headers passed on without some of their members (over the length cap).
    over_length: AtomicU64,
}

impl IncomingTraceState {
    /// The request's `tracestate`, all its lines joined, if present and valid.
    #[cold]
    #[inline(never)]
    pub(crate) fn read(&self, headers: &dyn HeaderView) -> Option<TraceState> {
        headers.get("tracestate")?;
        // Several lines are one list; joining them walks the headers, so only when
        // there is one at all.
        let joined = headers.get_joined("tracestate")?;
        match TraceState::parse(joined.as_bytes()) {
            Ok(Some((state, trimmed))) => {
                if trimmed {
                    self.over_length.fetch_add(1, Ordering::Relaxed);
                }
                Some(state)
            }
            Ok(None) => None,
            Err(TraceStateError::Invalid) => {
                self.invalid.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// `(invalid, over_length)` so far.
    pub(crate) fn dropped(&self) -> (u64, u64) {
        (
            self.invalid.load(Ordering::Relaxed),
            self.over_length.load(Ordering::Relaxed),
        )
    }
}

/// `simple-key` (`lcalpha 0*255(lcalpha / DIGIT / "_" / "-"/ "*" / "/")`) or
/// `multi-tenant-key` (`tenant-id "@" system-id`).
fn valid_key(key: &[u8]) -> bool {
    let rest_ok = |s: &[u8]| {
        s.iter()
            .all(|&b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/'))
    };
    match key.iter().position(|&b| b == b'@') {
        None => (1..=256).contains(&key.len()) && key[0].is_ascii_lowercase() && rest_ok(&key[1..]),
        Some(at) => {
            let (tenant, system) = (&key[..at], &key[at + 1..]);
            (1..=241).contains(&tenant.len())
                && (tenant[0].is_ascii_lowercase() || tenant[0].is_ascii_digit())
                && rest_ok(&tenant[1..])
                && (1..=14).contains(&system.len())
                && system[0].is_ascii_lowercase()
                && rest_ok(&system[1..])
        }
    }
}

/// `0*255(chr) nblk-chr`: visible ASCII and spaces but no `,` or `=` (a trailing space
/// is white space around the member, already trimmed).
fn valid_value(value: &[u8]) -> bool {
    (1..=256).contains(&value.len())
        && value
            .iter()
            .all(|&b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(value: &str) -> Result<Option<(String, bool)>, TraceStateError> {
        TraceState::parse(value.as_bytes()).map(|o| o.map(|(s, t)| (s.as_str().to_owned(), t)))
    }

    #[test]
    fn valid_members_are_normalised() {
        assert_eq!(
            parsed("a=1 ,\tb=2,, c@vendor=x y ").unwrap(),
            Some(("a=1,b=2,c@vendor=x y".to_owned(), false))
        );
        assert_eq!(parsed("").unwrap(), None);
        assert_eq!(parsed("0tenant@sys=1").unwrap().unwrap().0, "0tenant@sys=1");
    }

    #[test]
    fn anything_malformed_discards_the_whole() {
        for bad in [
            "a",
            "A=1",
            "1a=1",
            "a=",
            "a=1=2",
            "a=\u{e9}",
            "a=1,a=2",
            "@s=1",
            "t@=1",
            "t@Sys=1",
            "t@waytoolongsystemid=1",
            "a b=1",
        ] {
            assert_eq!(parsed(bad), Err(TraceStateError::Invalid), "{bad:?}");
        }
        let many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        assert_eq!(parsed(&many.join(",")), Err(TraceStateError::Invalid));
        assert!(parsed(&many[..32].join(",")).unwrap().is_some());
    }

    #[test]
    fn over_length_drops_long_members_first_then_from_the_right() {
        let long = format!("big={}", "x".repeat(200));
        let small: Vec<String> = (0..20)
            .map(|i| format!("k{i:02}={}", "v".repeat(15)))
            .collect();
        // 20 small members of 19 bytes: 399 bytes with commas; the long one makes 604.
        let value = format!("{},{long}", small.join(","));
        let (state, trimmed) = parsed(&value).unwrap().unwrap();
        assert!(trimmed);
        assert_eq!(
            state,
            small.join(","),
            "the long member went, all the small stayed"
        );
        // Only small members, over the limit: the rightmost go until it fits.
        let many: Vec<String> = (0..30)
            .map(|i| format!("k{i:02}={}", "v".repeat(15)))
            .collect();
        let (state, trimmed) = parsed(&many.join(",")).unwrap().unwrap();
        assert!(trimmed && state.len() <= MAX_TRACESTATE_LEN);
        assert_eq!(state, many[..25].join(","), "{} bytes", state.len());
    }

    /// Whatever a client sends: no panic, and what is passed on is valid, within the
    /// caps, and normalised (parsing it again gives it back unchanged). The inputs are
    /// lists of `key=value` members of random length and count, with random white space
    /// and, now and then, a byte no member may hold.
    #[test]
    fn arbitrary_input_never_panics_and_what_passes_is_valid() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let key_bytes = b"abcz09_-*/";
        let (mut passed, mut trimmed) = (0, 0);
        for _ in 0..5_000 {
            let mut input = Vec::new();
            for m in 0..next(36) {
                if m > 0 {
                    input.extend_from_slice([&b","[..], b", ", b" ,\t"][next(3) as usize]);
                }
                let first = b"az"[next(2) as usize];
                input.push(first);
                for _ in 0..next(12) {
                    input.push(key_bytes[next(key_bytes.len() as u64) as usize]);
                }
                // Keys must not repeat.
                input.extend_from_slice(m.to_string().as_bytes());
                if next(10) == 0 {
                    input.extend_from_slice(b"@vendor");
                }
                input.push(b'=');
                let longest = if next(8) == 0 { 250 } else { 30 };
                for _ in 0..1 + next(longest) {
                    // Visible ASCII but the list's own `,` and `=`.
                    match b' ' + 1 + next(94) as u8 {
                        b',' | b'=' => input.push(b'x'),
                        b => input.push(b),
                    }
                }
                if next(50) == 0 {
                    input.push([b'=', 0x7f, 0xff, b'A'][next(4) as usize]);
                }
            }
            match TraceState::parse(&input) {
                Ok(Some((state, cut))) => {
                    passed += 1;
                    trimmed += usize::from(cut);
                    let text = state.as_str();
                    assert!(text.len() <= MAX_TRACESTATE_LEN, "{text}");
                    assert!(text.split(',').count() <= MAX_TRACESTATE_MEMBERS, "{text}");
                    let again = TraceState::parse(text.as_bytes()).unwrap().unwrap();
                    assert_eq!(again, (state.clone(), false), "{text}");
                }
                Ok(None) => assert!(input.iter().all(|b| matches!(b, b',' | b' ' | b'\t'))),
                Err(TraceStateError::Invalid) => {}
            }
        }
        // Enough of them pass, and are cut, for the checks above to mean something.
        assert!(
            passed > 2_000 && trimmed > 1_000,
            "{passed} passed, {trimmed} trimmed"
        );
    }
}
