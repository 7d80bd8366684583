//! Base64, by hand: diag encodes (MACs, binary bodies) and decodes only HTTP Basic
//! credentials, and the alphabet table is smaller than a dependency.

/// RFC 4648 §5 alphabet (URL- and header-safe), used unpadded for credential MACs.
pub(crate) const URL_SAFE: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// RFC 4648 §4 alphabet, used padded for binary bodies in captures.
pub(crate) const STANDARD: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes `bytes` with `alphabet`, with `=` padding when `pad`.
pub(crate) fn encode(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        let sextets = [n >> 18, n >> 12, n >> 6, n];
        // A chunk of k bytes carries k + 1 meaningful sextets.
        for (i, s) in sextets.iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(alphabet[(s & 63) as usize]));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes `input` in `alphabet`, `=` padding optional; `None` on any other byte (and
/// on a length no encoding has).
pub(crate) fn decode(input: &[u8], alphabet: &[u8; 64]) -> Option<Vec<u8>> {
    let input = input
        .strip_suffix(b"==")
        .or(input.strip_suffix(b"="))
        .unwrap_or(input);
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 2);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in input {
        let v = alphabet.iter().position(|&a| a == c)?;
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    // A lone sixth of a byte is no encoding of anything.
    (bits < 6).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4648 §10's test vectors.
    const VECTORS: [(&str, &str); 7] = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];

    #[test]
    fn decode_inverts_encode() {
        for (plain, encoded) in VECTORS {
            assert_eq!(
                decode(encoded.as_bytes(), STANDARD).unwrap(),
                plain.as_bytes()
            );
            let unpadded = encoded.trim_end_matches('=');
            assert_eq!(
                decode(unpadded.as_bytes(), STANDARD).unwrap(),
                plain.as_bytes()
            );
        }
        assert_eq!(decode(b"+/+/", STANDARD).unwrap(), [0xfb, 0xff, 0xbf]);
        assert_eq!(decode(b"-_8", URL_SAFE).unwrap(), [0xfb, 0xff]);
        assert!(decode(b"Zm9v YmFy", STANDARD).is_none());
        assert!(
            decode(b"Zm9vY", STANDARD).is_none(),
            "a lone sixth of a byte"
        );
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(
            decode(encode(&bytes, STANDARD, true).as_bytes(), STANDARD).unwrap(),
            bytes
        );
    }

    #[test]
    fn rfc4648_vectors() {
        for (plain, encoded) in VECTORS {
            assert_eq!(encode(plain.as_bytes(), STANDARD, true), encoded);
            assert_eq!(
                encode(plain.as_bytes(), URL_SAFE, false),
                encoded.trim_end_matches('=')
            );
        }
        assert_eq!(encode(&[0xfb, 0xff], STANDARD, true), "+/8=");
        assert_eq!(encode(&[0xfb, 0xff], URL_SAFE, false), "-_8");
    }
}
