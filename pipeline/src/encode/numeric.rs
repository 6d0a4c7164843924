//! PostgreSQL `numeric` from exact sources: Arrow decimals, `UInt64` and decimal text.
//!
//! The binary format is a header of four 16-bit words (number of digit groups, weight of the
//! first group, sign, display scale) followed by the value's base-10000 digit groups, most
//! significant first, aligned on the decimal point: `12.3400` is groups `[12, 3400]` with weight 0
//! and display scale 4; `0.0001` is `[1]` with weight -1. Leading and trailing zero groups are
//! left out, as PostgreSQL does itself. Everything here works on decimal digit strings kept on
//! the stack, so a value never allocates.

use super::Problem;
use arrow_buffer::i256;
use bytes::{BufMut, BytesMut};

const SIGN_POS: u16 = 0x0000;
const SIGN_NEG: u16 = 0x4000;
const SIGN_NAN: u16 = 0xC000;
const SIGN_PINF: u16 = 0xD000;
const SIGN_NINF: u16 = 0xF000;
/// Most digits a numeric may show after the decimal point (PostgreSQL's `NUMERIC_DSCALE_MASK`).
const MAX_DSCALE: i64 = 0x3FFF;
/// Largest exponent accepted in decimal text; far beyond numeric's range, small enough that the
/// arithmetic on it cannot overflow.
const MAX_EXPONENT: i64 = 1_000_000_000;
/// Room for any `i256` magnitude, converted 19 digits at a time (5 × 19 ≥ 77 digits).
const DIGITS_CAP: usize = 95;

/// The decimal digits of an integer's magnitude, kept on the stack, and its sign.
pub(crate) struct Digits {
    buf: [u8; DIGITS_CAP],
    start: usize,
    negative: bool,
}

impl Digits {
    /// The digits of an unsigned 64-bit integer.
    pub(crate) fn from_u64(v: u64) -> Self {
        Self::from_u128(u128::from(v), false)
    }

    /// The digits of a 128-bit integer (a `Decimal128` value).
    pub(crate) fn from_i128(v: i128) -> Self {
        Self::from_u128(v.unsigned_abs(), v < 0)
    }

    fn from_u128(magnitude: u128, negative: bool) -> Self {
        let mut itoa = itoa::Buffer::new();
        let text = itoa.format(magnitude).as_bytes();
        let mut digits = Digits {
            buf: [0; DIGITS_CAP],
            start: DIGITS_CAP - text.len(),
            negative,
        };
        digits.buf[digits.start..].copy_from_slice(text);
        digits
    }

    /// The digits of a 256-bit integer (a `Decimal256` value).
    pub(crate) fn from_i256(v: i256) -> Self {
        if let Some(small) = v.to_i128() {
            return Self::from_i128(small);
        }
        let negative = v.is_negative();
        let bytes = v.to_le_bytes();
        let mut limbs = [0u64; 4];
        for (k, limb) in limbs.iter_mut().enumerate() {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[8 * k..8 * k + 8]);
            *limb = u64::from_le_bytes(word);
        }
        if negative {
            // Two's complement negation; the magnitude of i256::MIN (2^255) fits unsigned.
            let mut carry = true;
            for limb in &mut limbs {
                let (sum, overflow) = (!*limb).overflowing_add(u64::from(carry));
                *limb = sum;
                carry = overflow;
            }
        }
        const CHUNK: u128 = 10_000_000_000_000_000_000; // 10^19 < 2^64
        let mut digits = Digits {
            buf: [b'0'; DIGITS_CAP],
            start: DIGITS_CAP,
            negative,
        };
        while limbs.iter().any(|&l| l != 0) {
            let mut rem: u128 = 0;
            for limb in limbs.iter_mut().rev() {
                let cur = (rem << 64) | u128::from(*limb);
                *limb = (cur / CHUNK) as u64;
                rem = cur % CHUNK;
            }
            for _ in 0..19 {
                digits.start -= 1;
                digits.buf[digits.start] = b'0' + (rem % 10) as u8;
                rem /= 10;
            }
        }
        while digits.buf[digits.start] == b'0' {
            digits.start += 1;
        }
        digits
    }

    /// The ASCII digits, without leading zeros (`0` for zero).
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// As an exact numeric value scaled by `10^-scale`.
    pub(crate) fn scaled(&self, scale: i8) -> Numeric<'_> {
        Numeric::Finite {
            negative: self.negative,
            head: self.as_bytes(),
            tail: &[],
            scale: i64::from(scale),
        }
    }
}

/// An exact numeric value borrowed from its digits.
#[derive(Debug, PartialEq)]
pub(crate) enum Numeric<'a> {
    /// Not a number.
    NaN,
    /// Positive infinity.
    Infinity,
    /// Negative infinity.
    NegInfinity,
    /// `(head ++ tail) × 10^-scale`, where `head ++ tail` are ASCII digits.
    Finite {
        /// Whether the value is below zero (ignored for zero).
        negative: bool,
        /// Leading digits (the integer part of decimal text).
        head: &'a [u8],
        /// Following digits (the fraction of decimal text).
        tail: &'a [u8],
        /// Power of ten the digits are divided by; negative for trailing zeros left out.
        scale: i64,
    },
}

/// Parse decimal text the way PostgreSQL's `numeric` input does, without the whitespace: an
/// optional sign, digits with an optional decimal point, an optional exponent (`1.5E-3`), or one
/// of `NaN`, `Infinity`, `-Infinity` (also `inf`, any case).
pub(crate) fn parse(text: &str) -> Result<Numeric<'_>, Problem> {
    let s = text.as_bytes();
    let (negative, body) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if body.eq_ignore_ascii_case(b"nan") && body.len() == s.len() {
        return Ok(Numeric::NaN);
    }
    if body.eq_ignore_ascii_case(b"infinity") || body.eq_ignore_ascii_case(b"inf") {
        return Ok(if negative {
            Numeric::NegInfinity
        } else {
            Numeric::Infinity
        });
    }
    let int_len = leading_digits(body);
    let head = &body[..int_len];
    let mut rest = &body[int_len..];
    let mut tail: &[u8] = &[];
    if let Some((b'.', after)) = rest.split_first() {
        let frac_len = leading_digits(after);
        tail = &after[..frac_len];
        rest = &after[frac_len..];
    }
    if head.is_empty() && tail.is_empty() {
        return Err(not_a_number(text));
    }
    let mut exponent: i64 = 0;
    if let Some((b'e' | b'E', exp)) = rest.split_first() {
        let (exp_negative, exp_digits) = match exp.first() {
            Some(b'-') => (true, &exp[1..]),
            Some(b'+') => (false, &exp[1..]),
            _ => (false, exp),
        };
        if exp_digits.is_empty() || leading_digits(exp_digits) != exp_digits.len() {
            return Err(not_a_number(text));
        }
        for d in exp_digits {
            exponent = exponent * 10 + i64::from(d - b'0');
            if exponent > MAX_EXPONENT {
                return Err(out_of_range(text));
            }
        }
        if exp_negative {
            exponent = -exponent;
        }
        rest = &[];
    }
    if !rest.is_empty() {
        return Err(not_a_number(text));
    }
    Ok(Numeric::Finite {
        negative,
        head,
        tail,
        scale: tail.len() as i64 - exponent,
    })
}

fn leading_digits(s: &[u8]) -> usize {
    s.iter().take_while(|b| b.is_ascii_digit()).count()
}

/// Write `value` as a complete COPY field (length and binary numeric).
pub(crate) fn write_binary(out: &mut BytesMut, value: &Numeric<'_>) -> Result<(), Problem> {
    let special = |out: &mut BytesMut, sign| {
        put_header(out, 0, 0, sign, 0);
        Ok(())
    };
    let (negative, head, tail, scale) = match *value {
        Numeric::NaN => return special(out, SIGN_NAN),
        Numeric::Infinity => return special(out, SIGN_PINF),
        Numeric::NegInfinity => return special(out, SIGN_NINF),
        Numeric::Finite {
            negative,
            head,
            tail,
            scale,
        } => (negative, head, tail, scale),
    };
    let dscale = scale.max(0);
    if dscale > MAX_DSCALE {
        return Err(out_of_range_value(value));
    }
    let n = head.len() + tail.len();
    let digit = |i: usize| {
        let c = if i < head.len() {
            head[i]
        } else {
            tail[i - head.len()]
        };
        u16::from(c - b'0')
    };
    let Some(first) = (0..n).find(|&i| digit(i) != 0) else {
        // Zero: no digit groups, positive, with the display scale kept (`0.00`).
        put_header(out, 0, 0, SIGN_POS, dscale as u16);
        return Ok(());
    };
    let last = (first..n).rev().find(|&i| digit(i) != 0).unwrap_or(first);
    // Digit i stands for 10^(n - 1 - i - scale); groups are 4 digits aligned on the point.
    let top = n as i64 - 1 - scale;
    let e_high = top - first as i64;
    let e_low = top - last as i64;
    let weight = e_high.div_euclid(4);
    let low = e_low.div_euclid(4);
    if weight > i64::from(i16::MAX) {
        return Err(out_of_range_value(value));
    }
    // Both bounds checked above keep this within 0..=36864.
    let ndigits = (weight - low + 1) as usize;
    out.reserve(12 + 2 * ndigits);
    let sign = if negative { SIGN_NEG } else { SIGN_POS };
    put_header(out, ndigits, weight as i16, sign, dscale as u16);
    for group in (low..=weight).rev() {
        let mut value = 0u16;
        for e in (4 * group..4 * group + 4).rev() {
            let d = if e < e_low || e > e_high {
                0
            } else {
                digit((top - e) as usize)
            };
            value = value * 10 + d;
        }
        out.put_u16(value);
    }
    Ok(())
}

/// The field length and the four header words; `ndigits` groups must follow.
fn put_header(out: &mut BytesMut, ndigits: usize, weight: i16, sign: u16, dscale: u16) {
    out.put_i32(8 + 2 * ndigits as i32);
    out.put_u16(ndigits as u16);
    out.put_i16(weight);
    out.put_u16(sign);
    out.put_u16(dscale);
}

/// Write an exact decimal as text: `-12.3400` for digits `123400` at scale 4, `12000` for `12` at
/// scale -3. The display scale is kept, so trailing zeros of the fraction stay.
pub(crate) fn write_text(out: &mut BytesMut, digits: &Digits, scale: i8) {
    let d = digits.as_bytes();
    let zero = d == b"0";
    if digits.negative && !zero {
        out.put_u8(b'-');
    }
    if scale <= 0 {
        out.extend_from_slice(d);
        if !zero {
            out.put_bytes(b'0', scale.unsigned_abs() as usize);
        }
        return;
    }
    let scale = scale as usize;
    if d.len() > scale {
        out.extend_from_slice(&d[..d.len() - scale]);
        out.put_u8(b'.');
        out.extend_from_slice(&d[d.len() - scale..]);
    } else {
        out.extend_from_slice(b"0.");
        out.put_bytes(b'0', scale - d.len());
        out.extend_from_slice(d);
    }
}

#[cold]
fn not_a_number(text: &str) -> Problem {
    format!(
        "{:?} is not a decimal number (expected e.g. `-12.34`, `1.5E-3`, `NaN` or `Infinity`); \
         fix the value in the source, or store the column as text",
        shorten(text)
    )
}

#[cold]
fn out_of_range(text: &str) -> Problem {
    format!(
        "{:?} is outside PostgreSQL numeric's range (up to 131072 digits before the decimal \
         point and 16383 after); store the column as text or double precision instead",
        shorten(text)
    )
}

#[cold]
fn out_of_range_value(value: &Numeric<'_>) -> Problem {
    let Numeric::Finite {
        head, tail, scale, ..
    } = value
    else {
        return out_of_range("");
    };
    let digits: String = head.iter().chain(tail.iter()).map(|&b| b as char).collect();
    out_of_range(&format!("{digits}e{}", -scale))
}

fn shorten(text: &str) -> String {
    const KEEP: usize = 40;
    match text.char_indices().nth(KEEP) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (ndigits, weight, sign, dscale, groups) of the binary encoding of `value`.
    fn binary(value: &Numeric<'_>) -> (u16, i16, u16, u16, Vec<u16>) {
        let mut out = BytesMut::new();
        write_binary(&mut out, value).unwrap();
        let words: Vec<u16> = out[4..]
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        let len = i32::from_be_bytes(out[..4].try_into().unwrap());
        assert_eq!(len as usize, out.len() - 4, "field length");
        assert_eq!(words[0] as usize, words.len() - 4, "ndigits");
        (
            words[0],
            words[1] as i16,
            words[2],
            words[3],
            words[4..].to_vec(),
        )
    }

    fn text(s: &str) -> (u16, i16, u16, u16, Vec<u16>) {
        binary(&parse(s).unwrap())
    }

    #[test]
    fn text_to_binary() {
        assert_eq!(text("-12.3400"), (2, 0, SIGN_NEG, 4, vec![12, 3400]));
        assert_eq!(text("12.34"), (2, 0, SIGN_POS, 2, vec![12, 3400]));
        assert_eq!(text("0"), (0, 0, SIGN_POS, 0, vec![]));
        assert_eq!(text("-0.00"), (0, 0, SIGN_POS, 2, vec![]));
        assert_eq!(text("0.0001"), (1, -1, SIGN_POS, 4, vec![1]));
        assert_eq!(text("10000"), (1, 1, SIGN_POS, 0, vec![1]));
        assert_eq!(text("1e5"), (1, 1, SIGN_POS, 0, vec![10]));
        assert_eq!(text("1.5E-3"), (1, -1, SIGN_POS, 4, vec![15]));
        assert_eq!(text("1e-20"), (1, -5, SIGN_POS, 20, vec![1]));
        assert_eq!(text("1.50e1"), (1, 0, SIGN_POS, 1, vec![15]));
        assert_eq!(text("+.5"), (1, -1, SIGN_POS, 1, vec![5000]));
        assert_eq!(text("5."), (1, 0, SIGN_POS, 0, vec![5]));
        assert_eq!(
            text("0012345.6789"),
            (3, 1, SIGN_POS, 4, vec![1, 2345, 6789])
        );
        assert_eq!(
            text("100000000.00000001"),
            (5, 2, SIGN_POS, 8, vec![1, 0, 0, 0, 1])
        );
        assert_eq!(text("NaN"), (0, 0, SIGN_NAN, 0, vec![]));
        assert_eq!(text("Infinity"), (0, 0, SIGN_PINF, 0, vec![]));
        assert_eq!(text("-Infinity"), (0, 0, SIGN_NINF, 0, vec![]));
        assert_eq!(text("-inf"), (0, 0, SIGN_NINF, 0, vec![]));
    }

    #[test]
    fn text_rejects_what_postgres_would() {
        for bad in [
            "", "-", ".", "1.2.3", "1e", "1e+", "abc", "12a", " 1", "1 ", "-NaN", "0x10", "1e5.0",
            "١٢",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("is not a decimal number"), "{bad:?}: {err}");
        }
        let err = parse("1e99999999999").unwrap_err();
        assert!(err.contains("outside PostgreSQL numeric's range"), "{err}");
        let mut out = BytesMut::new();
        let err = write_binary(&mut out, &parse("1e-20000").unwrap()).unwrap_err();
        assert!(err.contains("outside"), "{err}");
        let err = write_binary(&mut out, &parse("1e140000").unwrap()).unwrap_err();
        assert!(err.contains("outside"), "{err}");
        assert!(write_binary(&mut out, &parse("1e131000").unwrap()).is_ok());
    }

    #[test]
    fn decimals_to_binary() {
        let d = Digits::from_i128(-123400);
        assert_eq!(binary(&d.scaled(4)), (2, 0, SIGN_NEG, 4, vec![12, 3400]));
        let d = Digits::from_i128(5);
        assert_eq!(binary(&d.scaled(6)), (1, -2, SIGN_POS, 6, vec![500]));
        assert_eq!(binary(&d.scaled(-5)), (1, 1, SIGN_POS, 0, vec![50]));
        let d = Digits::from_i128(0);
        assert_eq!(binary(&d.scaled(3)), (0, 0, SIGN_POS, 3, vec![]));
        let d = Digits::from_u64(u64::MAX);
        assert_eq!(
            binary(&d.scaled(0)),
            (5, 4, SIGN_POS, 0, vec![1844, 6744, 737, 955, 1615])
        );
        let d = Digits::from_i128(i128::MIN);
        assert_eq!(d.as_bytes(), b"170141183460469231731687303715884105728");
    }

    #[test]
    fn i256_digits_beyond_f64_and_i128() {
        let max = Digits::from_i256(i256::MAX);
        assert_eq!(
            std::str::from_utf8(max.as_bytes()).unwrap(),
            "57896044618658097711785492504343953926634992332820282019728792003956564819967"
        );
        let min = Digits::from_i256(i256::MIN);
        assert!(min.negative);
        assert_eq!(
            std::str::from_utf8(min.as_bytes()).unwrap(),
            "57896044618658097711785492504343953926634992332820282019728792003956564819968"
        );
        let ten_pow_40 = i256::from_i128(10).wrapping_pow(40);
        let d = Digits::from_i256(ten_pow_40.wrapping_neg());
        assert_eq!(d.as_bytes(), format!("1{}", "0".repeat(40)).as_bytes());
        assert_eq!(binary(&d.scaled(2)), (1, 9, SIGN_NEG, 2, vec![100]));
        let small = Digits::from_i256(i256::from_i128(-42));
        assert_eq!((small.negative, small.as_bytes()), (true, &b"42"[..]));
    }

    #[test]
    fn decimal_text() {
        let show = |v: i128, scale: i8| {
            let mut out = BytesMut::new();
            write_text(&mut out, &Digits::from_i128(v), scale);
            String::from_utf8(out.to_vec()).unwrap()
        };
        assert_eq!(show(-123400, 4), "-12.3400");
        assert_eq!(show(1, 4), "0.0001");
        assert_eq!(show(-1, 20), "-0.00000000000000000001");
        assert_eq!(show(0, 2), "0.00");
        assert_eq!(show(0, -2), "0");
        assert_eq!(show(12, -3), "12000");
        assert_eq!(show(10000, 0), "10000");
        assert_eq!(show(123, 3), "0.123");
    }
}
