//! A read's rows, received in PostgreSQL's binary format, written as the JSON PostgreSQL itself would
//! write for them (`json_agg` of the rows): byte for byte the same body, without PostgreSQL spending
//! its CPU on JSON. Only types whose JSON form follows from their binary form alone are written here
//! ([`encodable`]); the statement hands PostgreSQL's own `to_json` of every other column through as is
//! (see [`crate::sql`]), and `tests/binary_rows.rs` compares both paths over random rows.
//!
//! The forms follow PostgreSQL's `datum_to_json`: numbers as their output text (`NaN` and infinities
//! quoted; floats as `float4out`/`float8out` write them under the session's `extra_float_digits`, which
//! the read's trailer reports), text escaped as `escape_json` does, dates and timestamps as ISO 8601
//! (`T` between date and time, ` BC` after a year before 1), arrays as nested JSON arrays whatever
//! their bounds.

use super::shortest::Shortest;
use postgres_types::{FromSql, Type};
use std::fmt::Write;

/// A column's value as sent, whatever its type.
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> Result<Raw<'a>, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Scalar types written here (their arrays too).
fn scalar(ty: &Type) -> bool {
    [
        Type::BOOL,
        Type::INT2,
        Type::INT4,
        Type::INT8,
        Type::FLOAT4,
        Type::FLOAT8,
        Type::TEXT,
        Type::VARCHAR,
        Type::BPCHAR,
        Type::NAME,
        Type::UUID,
        Type::NUMERIC,
        Type::JSON,
        Type::JSONB,
        Type::DATE,
        Type::TIMESTAMP,
    ]
    .contains(ty)
}

/// Whether every column of `columns` (the rows' columns, without the trailer) can be written here;
/// floats only when the trailer reports `extra_float_digits` (`floats`).
pub fn encodable(columns: &[tokio_postgres::Column], floats: bool) -> bool {
    let ok = |ty: &Type| scalar(ty) && (floats || ![Type::FLOAT4, Type::FLOAT8].contains(ty));
    !columns.is_empty()
        && columns.iter().all(|c| match c.type_().kind() {
            postgres_types::Kind::Array(elem) => ok(elem),
            _ => ok(c.type_()),
        })
}

/// The JSON array of `rows`' first `n` columns, as `coalesce(json_agg(row), '[]')` writes it in a
/// session whose `extra_float_digits` is `float_digits`.
pub fn body(rows: &[tokio_postgres::Row], n: usize, float_digits: i32) -> Result<String, String> {
    let Some(first) = rows.first() else {
        return Ok("[]".into());
    };
    let columns = &first.columns()[..n];
    // Keys escaped once, with the separators around them.
    let keys: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut k = String::from(if i == 0 { "{" } else { "," });
            escape(&mut k, c.name());
            k.push(':');
            k
        })
        .collect();
    let mut out = String::with_capacity(64 * rows.len() * n);
    out.push('[');
    for (r, row) in rows.iter().enumerate() {
        if r > 0 {
            out.push_str(", \n ");
        }
        for (i, (key, c)) in keys.iter().zip(columns).enumerate() {
            out.push_str(key);
            let raw: Option<Raw> = row.try_get(i).map_err(|e| e.to_string())?;
            match raw {
                None => out.push_str("null"),
                Some(Raw(b)) => value(&mut out, c.type_(), b, float_digits)?,
            }
        }
        out.push('}');
    }
    out.push(']');
    Ok(out)
}

type Res = Result<(), String>;

fn short(what: &str) -> String {
    format!("malformed binary {what}")
}

fn be<const N: usize>(b: &[u8], at: usize, what: &str) -> Result<[u8; N], String> {
    b.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| short(what))
}

fn i32_at(b: &[u8], at: usize) -> Result<i32, String> {
    be::<4>(b, at, "int4").map(i32::from_be_bytes)
}

// Type OIDs (`pg_type.oid`) of the scalars written here.
const BOOL: u32 = 16;
const INT2: u32 = 21;
const INT4: u32 = 23;
const INT8: u32 = 20;
const FLOAT4: u32 = 700;
const FLOAT8: u32 = 701;
const JSON: u32 = 114;
const JSONB: u32 = 3802;
const UUID: u32 = 2950;
const NUMERIC: u32 = 1700;
const DATE: u32 = 1082;
const TIMESTAMP: u32 = 1114;

/// One value of type `ty` (a scalar of [`scalar`] or an array of one).
fn value(out: &mut String, ty: &Type, b: &[u8], float_digits: i32) -> Res {
    if let postgres_types::Kind::Array(elem) = ty.kind() {
        return array(out, elem, b, float_digits);
    }
    match ty.oid() {
        BOOL => out.push_str(if b.first() == Some(&1) {
            "true"
        } else {
            "false"
        }),
        INT2 => {
            let _ = write!(out, "{}", i16::from_be_bytes(be(b, 0, "int2")?));
        }
        INT4 => {
            let _ = write!(out, "{}", i32::from_be_bytes(be(b, 0, "int4")?));
        }
        INT8 => {
            let _ = write!(out, "{}", i64::from_be_bytes(be(b, 0, "int8")?));
        }
        FLOAT4 => {
            let x = f32::from_be_bytes(be(b, 0, "float4")?);
            float(out, f64::from(x), Shortest::F32(x), float_digits);
        }
        FLOAT8 => {
            let x = f64::from_be_bytes(be(b, 0, "float8")?);
            float(out, x, Shortest::F64(x), float_digits);
        }
        JSON => out.push_str(utf8(b)?),
        // jsonb's binary form is a version byte (1) and the text PostgreSQL writes for it.
        JSONB => match b.split_first() {
            Some((1, text)) => out.push_str(utf8(text)?),
            _ => return Err(short("jsonb")),
        },
        UUID => uuid(out, b)?,
        NUMERIC => numeric(out, b)?,
        DATE => {
            let days = i32_at(b, 0)?;
            match days {
                i32::MAX => out.push_str("\"infinity\""),
                i32::MIN => out.push_str("\"-infinity\""),
                d => {
                    out.push('"');
                    let (y, m, dd) = j2date(i64::from(d) + POSTGRES_EPOCH_JDATE);
                    ymd(out, y, m, dd);
                    bc(out, y);
                    out.push('"');
                }
            }
        }
        TIMESTAMP => timestamp(out, i64::from_be_bytes(be(b, 0, "timestamp")?)),
        // text, varchar, bpchar, name: their text in the client's encoding (UTF-8).
        _ => escape(out, utf8(b)?),
    }
    Ok(())
}

fn utf8(b: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(b).map_err(|_| short("text"))
}

/// `array_to_json`: nested arrays by dimension, elements as scalars, lower bounds ignored.
fn array(out: &mut String, elem: &Type, b: &[u8], float_digits: i32) -> Res {
    let ndim = usize::try_from(i32_at(b, 0)?).map_err(|_| short("array"))?;
    if ndim == 0 {
        out.push_str("[]");
        return Ok(());
    }
    let mut dims = Vec::with_capacity(ndim);
    for d in 0..ndim {
        let len = i32_at(b, 12 + 8 * d)?;
        dims.push(usize::try_from(len).map_err(|_| short("array"))?);
    }
    let mut at = 12 + 8 * ndim;
    array_dim(out, (elem, float_digits), b, &dims, &mut at)
}

fn array_dim(
    out: &mut String,
    (elem, float_digits): (&Type, i32),
    b: &[u8],
    dims: &[usize],
    at: &mut usize,
) -> Res {
    out.push('[');
    for i in 0..dims[0] {
        if i > 0 {
            out.push(',');
        }
        if dims.len() > 1 {
            array_dim(out, (elem, float_digits), b, &dims[1..], at)?;
            continue;
        }
        let len = i32_at(b, *at)?;
        *at += 4;
        if len < 0 {
            out.push_str("null");
            continue;
        }
        let end = *at + len as usize;
        let v = b.get(*at..end).ok_or_else(|| short("array"))?;
        value(out, elem, v, float_digits)?;
        *at = end;
    }
    out.push(']');
    Ok(())
}

/// PostgreSQL's `escape_json` (the same as serde_json's escaping).
fn escape(out: &mut String, s: &str) {
    let _ = supactl_common::json_text::string(out, s);
}

fn uuid(out: &mut String, b: &[u8]) -> Res {
    if b.len() != 16 {
        return Err(short("uuid"));
    }
    out.push('"');
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        let _ = write!(out, "{x:02x}");
    }
    out.push('"');
    Ok(())
}

/// `numeric_out` (a JSON number; `NaN` and the infinities as strings, as `datum_to_json` quotes them).
fn numeric(out: &mut String, b: &[u8]) -> Res {
    let h = |at| be::<2>(b, at, "numeric").map(u16::from_be_bytes);
    let (ndigits, weight, sign, dscale) = (h(0)?, h(2)? as i16, h(4)?, h(6)?);
    match sign {
        0xC000 => {
            out.push_str("\"NaN\"");
            return Ok(());
        }
        0xD000 => {
            out.push_str("\"Infinity\"");
            return Ok(());
        }
        0xF000 => {
            out.push_str("\"-Infinity\"");
            return Ok(());
        }
        0x4000 => out.push('-'),
        0 => {}
        _ => return Err(short("numeric")),
    }
    let mut digits = Vec::with_capacity(usize::from(ndigits));
    for k in 0..usize::from(ndigits) {
        digits.push(h(8 + 2 * k)?);
    }
    let digit = |d: i32| -> u16 {
        usize::try_from(d)
            .ok()
            .and_then(|d| digits.get(d).copied())
            .unwrap_or(0)
    };
    let weight = i32::from(weight);
    let mut d = 0;
    if weight < 0 {
        d = weight + 1;
        out.push('0');
    } else {
        while d <= weight {
            if d == 0 {
                let _ = write!(out, "{}", digit(d));
            } else {
                let _ = write!(out, "{:04}", digit(d));
            }
            d += 1;
        }
    }
    if dscale > 0 {
        out.push('.');
        let mut frac = String::with_capacity(usize::from(dscale) + 4);
        while frac.len() < usize::from(dscale) {
            let _ = write!(frac, "{:04}", digit(d));
            d += 1;
        }
        out.push_str(&frac[..usize::from(dscale)]);
    }
    Ok(())
}

/// `float4out`/`float8out` as `datum_to_json` writes them (`x` the value widened): with
/// `extra_float_digits` > 0 the shortest exact digits, in positional notation for a decimal exponent
/// from -4 up to (not including) 6 for `real` and 15 for `double precision`, otherwise as `d.ddde+XX`;
/// else `%.{6 or 15 + extra_float_digits}g`; `NaN` and the infinities quoted.
fn float(out: &mut String, x: f64, shortest: Shortest, float_digits: i32) {
    if x.is_nan() {
        return out.push_str("\"NaN\"");
    }
    if x.is_infinite() {
        return out.push_str(if x > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
    }
    let dig = if matches!(shortest, Shortest::F32(_)) {
        6
    } else {
        15
    };
    if float_digits > 0 {
        let (digits, exp) = shortest.digits();
        if (-4..dig).contains(&exp) {
            positional(out, x.is_sign_negative(), &digits, exp);
        } else {
            scientific(out, x.is_sign_negative(), &digits, exp);
        }
        return;
    }
    // C's %g with `precision` significant digits.
    let precision = (dig + float_digits).max(1);
    let sci = format!("{:.*e}", (precision - 1) as usize, x);
    let (mut digits, exp) = sci_parts(&sci);
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    if (-4..precision).contains(&exp) {
        positional(out, x.is_sign_negative(), &digits, exp);
    } else {
        scientific(out, x.is_sign_negative(), &digits, exp);
    }
}

/// The significant digits and decimal exponent of Rust's `{:e}` output (`-1.25e-7` → `125`, -7).
pub(super) fn sci_parts(sci: &str) -> (String, i32) {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let digits = mantissa.chars().filter(char::is_ascii_digit).collect();
    (digits, exp.parse().unwrap_or(0))
}

/// `digits` × 10^(`exp` − digits + 1) without an exponent: `150`, `1.5`, `0.0015`.
fn positional(out: &mut String, negative: bool, digits: &str, exp: i32) {
    if negative {
        out.push('-');
    }
    let n = digits.len() as i32;
    if exp >= n - 1 {
        out.push_str(digits);
        out.extend(std::iter::repeat_n('0', (exp - (n - 1)) as usize));
    } else if exp >= 0 {
        let (int, frac) = digits.split_at(exp as usize + 1);
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
        out.push_str(digits);
    }
}

/// `d.ddde±XX` (at least two digits of exponent).
fn scientific(out: &mut String, negative: bool, digits: &str, exp: i32) {
    if negative {
        out.push('-');
    }
    let (first, rest) = digits.split_at(1);
    out.push_str(first);
    if !rest.is_empty() {
        out.push('.');
        out.push_str(rest);
    }
    let sign = if exp < 0 { '-' } else { '+' };
    let _ = write!(out, "e{sign}{:02}", exp.unsigned_abs());
}

/// Julian day of 2000-01-01, PostgreSQL's epoch for dates and timestamps.
const POSTGRES_EPOCH_JDATE: i64 = 2_451_545;
const USECS_PER_DAY: i64 = 86_400_000_000;

/// PostgreSQL's `j2date`: a Julian day to (year, month, day), year 0 being 1 BC.
fn j2date(jd: i64) -> (i64, i64, i64) {
    let mut julian = jd + 32044;
    let mut quad = julian / 146_097;
    let extra = (julian - quad * 146_097) * 4 + 3;
    julian += 60 + quad * 3 + extra / 146_097;
    quad = julian / 1461;
    julian -= quad * 1461;
    let mut y = julian * 4 / 1461;
    julian = if y != 0 {
        (julian + 305) % 365
    } else {
        (julian + 306) % 366
    } + 123;
    y += quad * 4;
    let quad = julian * 2141 / 65536;
    let day = julian - 7834 * quad / 256;
    let month = (quad + 10) % 12 + 1;
    (y - 4800, month, day)
}

/// `YYYY-MM-DD` (at least four digits of year, counted back from 1 BC).
fn ymd(out: &mut String, y: i64, m: i64, d: i64) {
    let year = if y > 0 { y } else { 1 - y };
    let _ = write!(out, "{year:04}-{m:02}-{d:02}");
}

fn bc(out: &mut String, y: i64) {
    if y <= 0 {
        out.push_str(" BC");
    }
}

/// A `timestamp` (microseconds since 2000-01-01) as `JsonEncodeDateTime` writes it.
fn timestamp(out: &mut String, t: i64) {
    match t {
        i64::MAX => return out.push_str("\"infinity\""),
        i64::MIN => return out.push_str("\"-infinity\""),
        _ => {}
    }
    let (days, time) = (t.div_euclid(USECS_PER_DAY), t.rem_euclid(USECS_PER_DAY));
    let (y, m, d) = j2date(days + POSTGRES_EPOCH_JDATE);
    out.push('"');
    ymd(out, y, m, d);
    let secs = time / 1_000_000;
    let frac = time % 1_000_000;
    let _ = write!(
        out,
        "T{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if frac != 0 {
        let f = format!("{frac:06}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    bc(out, y);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_follow_postgresql_calendar() {
        assert_eq!(j2date(POSTGRES_EPOCH_JDATE), (2000, 1, 1));
        assert_eq!(j2date(0), (-4713, 11, 24));
        let mut s = String::new();
        timestamp(&mut s, -1);
        assert_eq!(s, "\"1999-12-31T23:59:59.999999\"");
    }

    #[test]
    fn text_is_escaped_as_postgresql_does() {
        let mut s = String::new();
        escape(&mut s, "a\"\\\n\u{1}\u{7f}é");
        assert_eq!(s, "\"a\\\"\\\\\\n\\u0001\u{7f}é\"");
    }

    #[test]
    fn floats_are_written_as_postgresql_writes_them() {
        let f8 = |x: f64, digits: i32| {
            let mut s = String::new();
            float(&mut s, x, Shortest::F64(x), digits);
            s
        };
        let f4 = |x: f32, digits: i32| {
            let mut s = String::new();
            float(&mut s, f64::from(x), Shortest::F32(x), digits);
            s
        };
        // What PostgreSQL 15 answers for `to_json(x)`.
        for (x, shown) in [
            (1e14, "100000000000000"),
            (1e15, "1e+15"),
            (1234567890123456.0, "1.234567890123456e+15"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-0.0, "-0"),
            (1234560000000.0, "1234560000000"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::NEG_INFINITY, "\"-Infinity\""),
        ] {
            assert_eq!(f8(x, 1), shown);
        }
        assert_eq!(f4(1e6, 1), "1e+06");
        assert_eq!(f4(123456.0, 1), "123456");
        assert_eq!(f4(1.1, 1), "1.1");
        // exactly halfway between two 8-digit forms: the even one, as Ryu (found by the property test)
        assert_eq!(f4(7105.0 + 29.0 / 32.0, 1), "7105.9062");
        assert_eq!(f4(-(7105.0 + 29.0 / 32.0), 1), "-7105.9062");
        assert_eq!(f4(f32::NAN, 1), "\"NaN\"");
        // extra_float_digits 0 and -15
        assert_eq!(f8(123456789012345678.0, 0), "1.23456789012346e+17");
        assert_eq!(f8(0.1, 0), "0.1");
        assert_eq!(f4(1.1, -15), "1");
        assert_eq!(f8(123.0, -15), "1e+02");
    }

    #[test]
    fn numerics_keep_their_scale() {
        let enc = |words: &[u16]| {
            let b: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
            let mut s = String::new();
            numeric(&mut s, &b).unwrap();
            s
        };
        // 12345.670 : digits 1, 2345, 6700; weight 1; dscale 3
        assert_eq!(enc(&[3, 1, 0, 3, 1, 2345, 6700]), "12345.670");
        // -0.0001 : digit 1, weight -1
        assert_eq!(enc(&[1, 0xFFFF, 0x4000, 4, 1]), "-0.0001");
        assert_eq!(enc(&[0, 0, 0, 2]), "0.00");
        assert_eq!(enc(&[0, 0, 0xC000, 0]), "\"NaN\"");
    }
}
