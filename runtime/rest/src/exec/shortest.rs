//! A float's shortest decimal form exactly as PostgreSQL writes it (`float4out`/`float8out` with
//! `extra_float_digits` > 0: Ryu). Rust's shortest form (`{:e}`) differs in two cases, both where the
//! value lies exactly halfway between two decimal candidates:
//! - **the rounding interval's bounds**: Rust accepts a decimal lying exactly on the bound halfway to the
//!   neighbouring float when reading it back rounds to this float (ties to even: `1e23`, `9.05079e7` as a
//!   `real`); Ryu as PostgreSQL builds it never does (`9.999999999999999e+22`, `9.0507904e+07`), and
//!   takes the shortest form strictly inside;
//! - **ties between two equally near forms of the same length**: Ryu takes the one ending in an even digit
//!   (`7105.90625` as a `real` is `7105.9062`); Rust may take the other.
//!
//! Both are decided exactly, in integers: a decimal `d × 10^k` equals a bound `odd × 2^q` only when the
//! powers of two and five match.

use super::binary::sci_parts;

/// A float by its own width (the shortest form depends on it).
pub enum Shortest {
    F32(f32),
    F64(f64),
}

impl Shortest {
    /// The significant digits and decimal exponent of the value's shortest form (`125`, -7 for
    /// `1.25e-7`); the sign is the caller's.
    pub fn digits(&self) -> (String, i32) {
        let (rust, max_len) = match self {
            Shortest::F32(v) => (format!("{:e}", v.abs()), 9),
            Shortest::F64(v) => (format!("{:e}", v.abs()), 17),
        };
        let (digits, exp) = sci_parts(&rust);
        let bounds = self.bounds();
        if !bounds.iter().any(|b| b.is(&digits, exp)) {
            return self.even_at_tie(digits, exp);
        }
        // on a bound: the nearest form one digit longer, and longer until one lies strictly inside
        for len in digits.len() + 1..=max_len {
            let (d, e) = self.even_at_tie_rounded(len);
            if self.reads_back(&d, e) && !bounds.iter().any(|b| b.is(&d, e)) {
                return (d, e);
            }
        }
        (digits, exp)
    }

    fn abs(&self) -> f64 {
        match self {
            Shortest::F32(v) => f64::from(v.abs()),
            Shortest::F64(v) => v.abs(),
        }
    }

    /// `|value| = m × 2^e`, and whether it is a power of two above the smallest normal.
    fn parts(&self) -> (u128, i32, bool) {
        let (m, e, power_of_two) = match self {
            Shortest::F32(v) => {
                let bits = v.abs().to_bits();
                let (exp, mant) = ((bits >> 23) & 0xff, u64::from(bits & 0x7f_ffff));
                match exp {
                    0 => (mant, -149, false),
                    _ => (mant | 1 << 23, exp as i32 - 150, mant == 0 && exp > 1),
                }
            }
            Shortest::F64(v) => {
                let bits = v.abs().to_bits();
                let (exp, mant) = ((bits >> 52) & 0x7ff, bits & ((1 << 52) - 1));
                match exp {
                    0 => (mant, -1074, false),
                    _ => (mant | 1 << 52, exp as i32 - 1075, mant == 0 && exp > 1),
                }
            }
        };
        (u128::from(m), e, power_of_two)
    }

    /// The value itself as `odd × 2^q` (zero: `odd` 0, equal to no decimal).
    fn exact(&self) -> Bound {
        let (m, e, _) = self.parts();
        let twos = if m == 0 { 0 } else { m.trailing_zeros() };
        Bound {
            odd: m >> twos,
            q: e + twos as i32,
        }
    }

    /// The two bounds of the value's rounding interval.
    fn bounds(&self) -> [Bound; 2] {
        let (m, e, power_of_two) = self.parts();
        let lower = if power_of_two {
            // the float below is nearer at a power of two
            Bound {
                odd: 4 * m - 1,
                q: e - 2,
            }
        } else {
            Bound {
                odd: (2 * m).saturating_sub(1),
                q: e - 1,
            }
        };
        [
            Bound {
                odd: 2 * m + 1,
                q: e - 1,
            },
            lower,
        ]
    }

    fn reads_back(&self, digits: &str, exp: i32) -> bool {
        let text = format!("{digits}e{}", exp - (digits.len() as i32 - 1));
        match self {
            Shortest::F32(v) => text.parse::<f32>().ok() == Some(v.abs()),
            Shortest::F64(v) => text.parse::<f64>().ok() == Some(v.abs()),
        }
    }

    /// The value rounded to `len` significant digits, ties to the even digit.
    fn even_at_tie_rounded(&self, len: usize) -> (String, i32) {
        let (d, e) = sci_parts(&format!("{:.*e}", len - 1, self.abs()));
        let (mut d, e) = self.even_at_tie(d, e);
        while d.len() > 1 && d.ends_with('0') {
            d.pop();
        }
        (d, e)
    }

    /// `digits` × 10^(`exp` − len + 1), or the other of two equally near forms of that length when it
    /// ends in an odd digit and the value lies exactly halfway between them.
    fn even_at_tie(&self, digits: String, exp: i32) -> (String, i32) {
        let n = digits.len();
        if !digits.ends_with(['1', '3', '5', '7', '9']) {
            return (digits, exp);
        }
        let (near, near_exp) = sci_parts(&format!("{:.*e}", n, self.abs()));
        if !near.ends_with('5') || !self.exact().is(&near, near_exp) {
            return (digits, exp);
        }
        let below = &near[..n];
        let (mut even, even_exp) = if digits == below {
            increment(below, near_exp)
        } else {
            (below.to_string(), near_exp)
        };
        while even.len() > 1 && even.ends_with('0') {
            even.pop();
        }
        (even, even_exp)
    }
}

/// A bound of a float's rounding interval, `odd × 2^q`.
struct Bound {
    odd: u128,
    q: i32,
}

impl Bound {
    /// Whether `digits` × 10^(`exp` − len + 1) is exactly this bound.
    fn is(&self, digits: &str, exp: i32) -> bool {
        let Ok(mut d) = digits.parse::<u128>() else {
            return false;
        };
        if d == 0 || self.odd == 0 {
            return false;
        }
        let k = exp - (digits.len() as i32 - 1);
        let (mut twos, mut fives) = (0, 0);
        while d % 2 == 0 {
            d /= 2;
            twos += 1;
        }
        while d % 5 == 0 {
            d /= 5;
            fives += 1;
        }
        // d × 2^(twos + k) × 5^(fives + k) = odd × 2^q
        if twos + k != self.q || fives + k < 0 {
            return false;
        }
        let mut lhs = d;
        for _ in 0..fives + k {
            match lhs.checked_mul(5) {
                Some(v) if v <= self.odd => lhs = v,
                _ => return false,
            }
        }
        lhs == self.odd
    }
}

/// `digits` (× 10^`exp` for the first) plus one unit in the last place: `129` → `13`, `999` → `1`, exp + 1.
fn increment(digits: &str, exp: i32) -> (String, i32) {
    let mut d = digits.as_bytes().to_vec();
    for b in d.iter_mut().rev() {
        if *b == b'9' {
            *b = b'0';
        } else {
            *b += 1;
            return (String::from_utf8(d).expect("ASCII digits"), exp);
        }
    }
    (
        format!("1{}", String::from_utf8(d).expect("ASCII digits")),
        exp + 1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(s: Shortest) -> String {
        let (d, e) = s.digits();
        format!("{d}e{e}")
    }

    #[test]
    fn forms_on_a_bound_or_at_a_tie_are_ryus() {
        // what PostgreSQL 15 answers (extra_float_digits 3)
        assert_eq!(show(Shortest::F64(1e23)), "9999999999999999e22");
        assert_eq!(
            show(Shortest::F64(18014398509481992.0)),
            "18014398509481992e16"
        );
        assert_eq!(show(Shortest::F32(90507904.0)), "90507904e7");
        assert_eq!(show(Shortest::F32(7105.0 + 29.0 / 32.0)), "71059062e3");
        // the usual case: Rust's shortest form
        assert_eq!(show(Shortest::F64(0.1)), "1e-1");
        assert_eq!(show(Shortest::F32(1.1)), "11e0");
        assert_eq!(show(Shortest::F64(5e-324)), "5e-324");
        assert_eq!(show(Shortest::F64(0.0)), "0e0");
    }
}
