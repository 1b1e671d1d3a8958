//! Time-based one-time passwords (RFC 6238) as GoTrue's TOTP factors use them: HMAC-SHA1, 6 digits, a
//! 30-second period, a 20-byte secret shown in base32, one period of clock skew either way, and the
//! `otpauth://` URI authenticator apps scan. Pure, so it is unit-tested against the RFC's vectors.

use hmac::{Hmac, Mac};
use percent_encoding::utf8_percent_encode;
use rand::RngCore;
use sha1::Sha1;
use subtle::ConstantTimeEq;

pub const DIGITS: u32 = 6;
pub const PERIOD: i64 = 30;
/// Periods of clock skew accepted on either side of the current one.
const SKEW: i64 = 1;

/// A new secret: 20 random bytes in base32 (32 characters, no padding).
pub fn new_secret() -> String {
    let mut raw = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut raw);
    base32(&raw)
}

/// RFC 4648 base32 without padding.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes base32 (upper case, no padding); `None` on any other character.
pub fn from_base32(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buf = (buf << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    Some(out)
}

/// The code of `key` for the period containing `unix_secs`.
pub fn code(key: &[u8], unix_secs: i64) -> String {
    hotp(key, (unix_secs / PERIOD) as u64)
}

/// RFC 4226's HOTP value of `counter`, as `DIGITS` decimal digits.
fn hotp(key: &[u8], counter: u64) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("hmac accepts any key length");
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = (h[19] & 0x0f) as usize;
    let bin = u32::from_be_bytes([h[off] & 0x7f, h[off + 1], h[off + 2], h[off + 3]]);
    format!(
        "{:0width$}",
        bin % 10u32.pow(DIGITS),
        width = DIGITS as usize
    )
}

/// Whether `given` is the code of the current period, or of one period before or after (clocks
/// drift), compared in constant time.
pub fn check(key: &[u8], given: &str, unix_secs: i64) -> bool {
    let given = given.trim();
    if given.len() != DIGITS as usize || !given.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    (-SKEW..=SKEW).fold(false, |ok, d| {
        let expected = code(key, unix_secs + d * PERIOD);
        ok | bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
    })
}

/// The `otpauth://totp/…` URI an authenticator app scans (Google Authenticator's key URI format).
pub fn uri(issuer: &str, account: &str, secret: &str) -> String {
    let enc = |s: &str| utf8_percent_encode(s, crate::service::URL_VALUE).to_string();
    format!(
        "otpauth://totp/{}:{}?algorithm=SHA1&digits={DIGITS}&issuer={}&period={PERIOD}&secret={secret}",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1, truncated to 6 digits (the RFC lists 8).
    #[test]
    fn rfc_6238_vectors() {
        let key = b"12345678901234567890";
        for (t, eight) in [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
        ] {
            assert_eq!(code(key, t), eight[2..], "t={t}");
        }
    }

    #[test]
    fn skew_of_one_period_and_no_more() {
        let key = b"12345678901234567890";
        let now = 1_700_000_000;
        assert!(check(key, &code(key, now), now));
        assert!(check(key, &code(key, now - 30), now));
        assert!(check(key, &code(key, now + 30), now));
        assert!(!check(key, &code(key, now - 90), now));
        assert!(!check(key, "12345", now));
        assert!(!check(key, "abcdef", now));
    }

    #[test]
    fn base32_round_trip_and_secret_shape() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(from_base32("MZXW6YTBOI").unwrap(), b"foobar");
        let s = new_secret();
        assert_eq!(s.len(), 32);
        assert_eq!(from_base32(&s).unwrap().len(), 20);
        assert!(from_base32("abc").is_none());
        assert_eq!(
            uri("My App", "a@b.io", "ABC"),
            "otpauth://totp/My%20App:a%40b.io?algorithm=SHA1&digits=6&issuer=My%20App&period=30&secret=ABC"
        );
    }
}
