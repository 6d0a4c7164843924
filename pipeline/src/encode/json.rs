//! JSON text written straight into the output buffer: escaped strings, shortest round-trip
//! numbers, base64 and the tagged objects (`{"_type":…}`) for values JSON has no type for.

use super::column::F16;
use base64::Engine as _;
use bytes::{BufMut, BytesMut};
use std::io::Write as _;

/// What each byte becomes inside a JSON string: 0 stays as is, `u` is written `\u00XX`, any
/// other value is the letter of a two-character escape (`\n`, `\"`, …).
static ESCAPE: [u8; 256] = escape_table();

const fn escape_table() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Write `s` as a JSON string. Returns `false`, having written nothing, when `s` contains U+0000,
/// which `jsonb` cannot store (the caller then writes the bytes instead).
pub(crate) fn write_string(out: &mut BytesMut, s: &str) -> bool {
    let bytes = s.as_bytes();
    let start = out.len();
    out.reserve(bytes.len() + 2);
    out.put_u8(b'"');
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape = ESCAPE[b as usize];
        if escape == 0 {
            continue;
        }
        if b == 0 {
            out.truncate(start);
            return false;
        }
        out.extend_from_slice(&bytes[run..i]);
        run = i + 1;
        if escape == b'u' {
            out.extend_from_slice(b"\\u00");
            out.put_u8(HEX[usize::from(b >> 4)]);
            out.put_u8(HEX[usize::from(b & 0xf)]);
        } else {
            out.put_u8(b'\\');
            out.put_u8(escape);
        }
    }
    out.extend_from_slice(&bytes[run..]);
    out.put_u8(b'"');
    true
}

/// The escaped `"name":` key of an object member, prefixed with `,` unless it comes `first`.
pub(crate) fn object_key(name: &str, first: bool) -> Result<Vec<u8>, String> {
    let mut out = BytesMut::new();
    if !first {
        out.put_u8(b',');
    }
    if !write_string(&mut out, name) {
        return Err(format!(
            "the name {name:?} contains U+0000, which jsonb keys cannot hold; rename it in the source"
        ));
    }
    out.put_u8(b':');
    Ok(out.to_vec())
}

/// Write `bytes` as standard base64 with padding (no quotes).
pub(crate) fn write_base64(out: &mut BytesMut, bytes: &[u8]) {
    let len = bytes.len().div_ceil(3) * 4;
    let start = out.len();
    out.resize(start + len, 0);
    base64::engine::general_purpose::STANDARD
        .encode_slice(bytes, &mut out[start..])
        .expect("the slice is sized for padded base64");
}

/// The opening `{"_type":"<tag>","<key>":"` of a tagged value, for literal tag and key; the
/// caller writes text that needs no escaping, then [`close_tagged`].
macro_rules! tag_open {
    ($tag:literal, $key:literal) => {
        concat!("{\"_type\":\"", $tag, "\",\"", $key, "\":\"").as_bytes()
    };
}
pub(crate) use tag_open;

/// The opening `{"_type":<tag>,"data":"` of a binary value whose tag comes from field metadata,
/// or `None` when the tag contains U+0000.
pub(crate) fn bytes_tag_open(tag: &str) -> Option<Vec<u8>> {
    let mut out = BytesMut::new();
    out.extend_from_slice(b"{\"_type\":");
    if !write_string(&mut out, tag) {
        return None;
    }
    out.extend_from_slice(b",\"data\":\"");
    Some(out.to_vec())
}

/// End a tagged value.
pub(crate) fn close_tagged(out: &mut BytesMut) {
    out.extend_from_slice(b"\"}");
}

/// How a float that JSON (and PostgreSQL `numeric`) cannot carry as a number is spelled: NaN, the
/// infinities and negative zero. `None` for an ordinary number.
pub(crate) fn float_special(x: f64) -> Option<&'static str> {
    if x.is_nan() {
        Some("NaN")
    } else if x == f64::INFINITY {
        Some("Infinity")
    } else if x == f64::NEG_INFINITY {
        Some("-Infinity")
    } else if x == 0.0 && x.is_sign_negative() {
        Some("-0.0")
    } else {
        None
    }
}

/// A float: a number when it is an ordinary one, else `{"_type":"float","value":"NaN"}` etc.
/// `finite` writes the number (the shortest text that reads back as the same value).
pub(crate) fn write_float(out: &mut BytesMut, x: f64, finite: impl FnOnce(&mut BytesMut)) {
    match float_special(x) {
        Some(name) => {
            out.extend_from_slice(tag_open!("float", "value"));
            out.extend_from_slice(name.as_bytes());
            close_tagged(out);
        }
        None => finite(out),
    }
}

/// The shortest decimal text of a finite `f16` that reads back as the same `f16` (ryu has no
/// half-precision mode, and the `f32` text of a half is longer than needed: `0.099975586` for
/// what `0.1` already identifies).
pub(crate) fn write_f16(out: &mut BytesMut, x: F16) {
    let wide = x.to_f64();
    let mut ryu = ryu::Buffer::new();
    // Five significant digits always identify a half (11-bit significand).
    for precision in 0..5 {
        let mut buf = [0u8; 32];
        let mut cursor = &mut buf[..];
        if write!(cursor, "{wide:.precision$e}").is_err() {
            break;
        }
        let written = 32 - cursor.len();
        let parsed = std::str::from_utf8(&buf[..written])
            .ok()
            .and_then(|t| t.parse::<f64>().ok());
        if let Some(candidate) = parsed.filter(|&c| F16::from_f64(c) == x) {
            out.extend_from_slice(ryu.format_finite(candidate).as_bytes());
            return;
        }
    }
    out.extend_from_slice(ryu.format_finite(x.to_f32()).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(f: impl FnOnce(&mut BytesMut)) -> String {
        let mut out = BytesMut::new();
        f(&mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn strings_escape_exactly_what_json_requires() {
        let s = "a\"b\\c\nd\te\u{1}\u{1f}\u{7f}é😀\u{2028}/";
        let text = json(|o| assert!(write_string(o, s)));
        assert_eq!(
            text,
            "\"a\\\"b\\\\c\\nd\\te\\u0001\\u001f\u{7f}é😀\u{2028}/\""
        );
        assert_eq!(serde_json::from_str::<String>(&text).unwrap(), s);
        for c in (1u8..0x80).map(char::from) {
            let s = format!("x{c}y");
            let text = json(|o| assert!(write_string(o, &s)));
            assert_eq!(serde_json::from_str::<String>(&text).unwrap(), s, "{c:?}");
        }
        assert_eq!(json(|o| assert!(write_string(o, ""))), "\"\"");
    }

    #[test]
    fn strings_with_nul_write_nothing() {
        let mut out = BytesMut::from(&b"[1,"[..]);
        assert!(!write_string(&mut out, "ab\"\u{0}cd"));
        assert_eq!(&out[..], b"[1,");
    }

    #[test]
    fn keys() {
        assert_eq!(object_key("a\"b", true).unwrap(), b"\"a\\\"b\":");
        assert_eq!(object_key("x", false).unwrap(), b",\"x\":");
        assert!(object_key("a\0", true).unwrap_err().contains("U+0000"));
    }

    #[test]
    fn base64_is_standard_with_padding() {
        for (input, expected) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"\xff\xfe\xfd\x00", "//79AA=="),
        ] {
            assert_eq!(json(|o| write_base64(o, input)), expected);
        }
    }

    #[test]
    fn floats() {
        let f64_text = |x: f64| {
            json(|o| {
                write_float(o, x, |o| {
                    o.extend_from_slice(ryu::Buffer::new().format(x).as_bytes())
                })
            })
        };
        assert_eq!(f64_text(1.5), "1.5");
        assert_eq!(f64_text(3.0), "3.0");
        assert_eq!(f64_text(1e100), "1e100");
        assert_eq!(f64_text(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(f64_text(f64::NAN), r#"{"_type":"float","value":"NaN"}"#);
        assert_eq!(
            f64_text(f64::INFINITY),
            r#"{"_type":"float","value":"Infinity"}"#
        );
        assert_eq!(
            f64_text(f64::NEG_INFINITY),
            r#"{"_type":"float","value":"-Infinity"}"#
        );
        assert_eq!(f64_text(-0.0), r#"{"_type":"float","value":"-0.0"}"#);
        assert_eq!(f64_text(0.0), "0.0");
        for x in [1e100, 3.0, 5e-324, f64::MAX, -1.25e-7, 123456789.125] {
            let v: serde_json::Value = serde_json::from_str(&f64_text(x)).unwrap();
            assert_eq!(v.as_f64(), Some(x));
        }
    }

    #[test]
    fn halves_print_shortest() {
        let show = |x: f32| json(|o| write_f16(o, F16::from_f32(x)));
        assert_eq!(show(0.1), "0.1");
        assert_eq!(show(1.0), "1.0");
        assert_eq!(show(65504.0), "65500.0"); // the shortest text that reads back as 65504
        assert_eq!(show(-2.5), "-2.5");
        assert_eq!(show(6e-8), "6e-8");
        for bits in 0..=u16::MAX {
            let x = F16::from_bits(bits);
            if !x.is_finite() {
                continue;
            }
            let text = json(|o| write_f16(o, x));
            let back = F16::from_f64(text.parse::<f64>().unwrap());
            assert_eq!(back.to_bits(), bits, "{text}");
            assert!(text.len() <= 12, "{text}");
        }
    }
}
