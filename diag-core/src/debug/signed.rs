//! Short-lived signed debug credentials: the format and the openssl recipe are in the
//! [`debug`](super) module's docs.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::RejectReason;
use super::base64::{URL_SAFE, encode};
use crate::auth::constant_time_eq;

/// The longest a signed credential may live; longer-lived ones are refused as invalid,
/// so a credential pasted into a ticket stops working by tomorrow.
///
/// ```
/// use std::time::SystemTime;
/// use diag_core::debug::{Decision, MAX_TTL, RejectReason, sign_credential};
/// let diag = diag_core::Diag::builder().token("s3cret").build().unwrap();
/// let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
/// let for_a_week = sign_credential(b"s3cret", now + 7 * MAX_TTL.as_secs());
/// let headers = vec![("x-debug".to_owned(), for_a_week)];
/// assert_eq!(diag.debug_decision(&headers, None), Decision::Rejected(RejectReason::Invalid));
/// ```
pub const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Slack for clocks that disagree between the minting host and this one.
const CLOCK_SKEW_SECS: u64 = 60;

const PREFIX: &str = "v1.";
const CONTEXT: &str = "diag-debug-v1.";
/// Unpadded base64url of 32 bytes.
const MAC_CHARS: usize = 43;

/// The signed credential valid until `expiry_unix`, under `key`.
///
/// ```
/// let c = diag_core::debug::sign_credential(b"s3cret", 1_700_000_000);
/// assert!(c.starts_with("v1.1700000000."));
/// ```
pub fn sign_credential(key: &[u8], expiry_unix: u64) -> String {
    format!("{PREFIX}{expiry_unix}.{}", mac(key, expiry_unix))
}

fn mac(key: &[u8], expiry_unix: u64) -> String {
    // HMAC accepts keys of any length, so this never takes the fallback; the fallback
    // still yields a MAC no credential can match rather than a panic.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(CONTEXT.as_bytes());
            m.update(expiry_unix.to_string().as_bytes());
            encode(&m.finalize().into_bytes(), URL_SAFE, false)
        }
        Err(_) => String::new(),
    }
}

/// Whether `value` has the shape of a signed credential (it may still be invalid).
pub(crate) fn looks_signed(value: &[u8]) -> bool {
    value.starts_with(PREFIX.as_bytes())
}

/// Checks a signed credential against `key` at time `now_unix`.
pub(crate) fn verify(key: Option<&[u8]>, value: &[u8], now_unix: u64) -> Result<(), RejectReason> {
    let rest = value
        .strip_prefix(PREFIX.as_bytes())
        .ok_or(RejectReason::Malformed)?;
    let dot = rest
        .iter()
        .position(|b| *b == b'.')
        .ok_or(RejectReason::Malformed)?;
    let (expiry, given) = (&rest[..dot], &rest[dot + 1..]);
    // One spelling per expiry: no leading zero (`v1.0001795787244.…` would be another
    // string for the same credential).
    if expiry.is_empty()
        || expiry.len() > 20
        || (expiry.len() > 1 && expiry[0] == b'0')
        || !expiry.iter().all(u8::is_ascii_digit)
    {
        return Err(RejectReason::Malformed);
    }
    if given.len() != MAC_CHARS || !given.iter().all(|b| URL_SAFE.contains(b)) {
        return Err(RejectReason::Malformed);
    }
    let expiry: u64 = std::str::from_utf8(expiry)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(RejectReason::Malformed)?;
    let key = key.ok_or(RejectReason::Invalid)?;
    // The MAC is checked before the expiry, so "expired" is only ever said of a
    // credential this service really issued.
    if !constant_time_eq(mac(key, expiry).as_bytes(), given) {
        return Err(RejectReason::Invalid);
    }
    if expiry < now_unix {
        return Err(RejectReason::Expired);
    }
    if expiry > now_unix + MAX_TTL.as_secs() + CLOCK_SKEW_SECS {
        return Err(RejectReason::Invalid);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn accepts_its_own_until_expiry() {
        let c = sign_credential(b"k", NOW + 300);
        assert_eq!(verify(Some(b"k"), c.as_bytes(), NOW), Ok(()));
        assert_eq!(verify(Some(b"k"), c.as_bytes(), NOW + 300), Ok(()));
        assert_eq!(
            verify(Some(b"k"), c.as_bytes(), NOW + 301),
            Err(RejectReason::Expired)
        );
    }

    #[test]
    fn rejects_other_keys_tampering_and_long_lives() {
        let c = sign_credential(b"k", NOW + 300);
        assert_eq!(
            verify(Some(b"other"), c.as_bytes(), NOW),
            Err(RejectReason::Invalid)
        );
        assert_eq!(verify(None, c.as_bytes(), NOW), Err(RejectReason::Invalid));
        // Moving the expiry breaks the MAC.
        let forged = c.replacen(&(NOW + 300).to_string(), &(NOW + 900).to_string(), 1);
        assert_eq!(
            verify(Some(b"k"), forged.as_bytes(), NOW),
            Err(RejectReason::Invalid)
        );
        let far = sign_credential(b"k", NOW + MAX_TTL.as_secs() + 3600);
        assert_eq!(
            verify(Some(b"k"), far.as_bytes(), NOW),
            Err(RejectReason::Invalid)
        );
        // An expired forgery is invalid, not expired.
        let old_forged = format!("v1.{}.{}", NOW - 10, "A".repeat(MAC_CHARS));
        assert_eq!(
            verify(Some(b"k"), old_forged.as_bytes(), NOW),
            Err(RejectReason::Invalid)
        );
    }

    #[test]
    fn rejects_malformed_shapes() {
        for bad in [
            "v1.",
            "v1.123",
            "v1..AAAA",
            "v1.12a.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "v1.123.short",
            "v1.123.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "v1.123.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.x",
            "v1.123456789012345678901.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(
                verify(Some(b"k"), bad.as_bytes(), NOW),
                Err(RejectReason::Malformed),
                "{bad}"
            );
        }
        // A real credential spelled with a leading zero is another string for it.
        let good = sign_credential(b"k", NOW + 60);
        assert_eq!(verify(Some(b"k"), good.as_bytes(), NOW), Ok(()));
        let padded = good.replacen("v1.", "v1.0", 1);
        assert_eq!(
            verify(Some(b"k"), padded.as_bytes(), NOW),
            Err(RejectReason::Malformed)
        );
    }

    #[test]
    fn matches_rfc4231_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut m = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        let hex: String = m
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
