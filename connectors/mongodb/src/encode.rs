//! BSON → JSON text for the JSONB `data` column, straight from the raw document bytes the driver
//! returns (no intermediate `Document`). The rules are in `README-MongoDB.md` and continue
//! `docs/jsonb-encoding.md`; [`crate::decode`] is their exact inverse.
//!
//! Three rules make the round trip exact through PostgreSQL's `jsonb`, which reorders object
//! members (shorter keys first, then bytewise) and keeps numbers as `numeric`:
//! * a document whose keys are not already in `jsonb`'s order carries `"_keys": [...]`, its
//!   member names in source order;
//! * a source key spelled `_type` or `_keys` (with any number of leading `_`) gets one more `_`;
//! * doubles are written in plain decimal notation with a fraction (`5.0`, never `1e100`), so
//!   they stay doubles; Int32 values are plain integers, Int64 values are plain integers outside
//!   the Int32 range and `{"_type":"int64","value":"5"}` inside it.

use base64::Engine as _;
use std::fmt::Write as _;

/// Why a document could not be encoded (malformed BSON or a key that is not UTF-8).
pub type Problem = String;

/// A BSON element: its type byte and its value bytes.
#[derive(Clone, Copy)]
pub(crate) struct Element<'a> {
    pub(crate) kind: u8,
    pub(crate) value: &'a [u8],
}

/// Iterates the `(key, element)` pairs of one BSON document's bytes.
pub(crate) struct Elements<'a> {
    rest: &'a [u8],
}

fn le_i32(b: &[u8]) -> Result<i32, Problem> {
    b.get(..4)
        .map(|s| i32::from_le_bytes(s.try_into().expect("4 bytes")))
        .ok_or_else(|| "truncated BSON".to_string())
}

/// Split `n` bytes off `b`.
fn take(b: &[u8], n: usize) -> Result<(&[u8], &[u8]), Problem> {
    if n > b.len() {
        return Err("truncated BSON".into());
    }
    Ok(b.split_at(n))
}

/// A C string (up to its NUL) and what follows it.
fn cstring(b: &[u8]) -> Result<(&[u8], &[u8]), Problem> {
    let end = b
        .iter()
        .position(|&c| c == 0)
        .ok_or("unterminated BSON key")?;
    Ok((&b[..end], &b[end + 1..]))
}

impl<'a> Elements<'a> {
    /// The elements of the document `doc` (its whole bytes, length prefix included).
    pub(crate) fn new(doc: &'a [u8]) -> Result<Self, Problem> {
        let len = le_i32(doc)?;
        if len < 5 || len as usize != doc.len() || doc[doc.len() - 1] != 0 {
            return Err("malformed BSON document length".into());
        }
        Ok(Elements {
            rest: &doc[4..doc.len() - 1],
        })
    }

    /// The next `(key, element)`, `None` at the end.
    pub(crate) fn next_element(&mut self) -> Result<Option<(&'a [u8], Element<'a>)>, Problem> {
        let Some((&kind, after)) = self.rest.split_first() else {
            return Ok(None);
        };
        let (key, body) = cstring(after)?;
        let size = match kind {
            0x01 | 0x09 | 0x11 | 0x12 => 8,
            0x02 | 0x0D | 0x0E => 4 + checked_len(body)?,
            0x03 | 0x04 | 0x0F => checked_len(body)?,
            0x05 => 5 + checked_len(body)?,
            0x06 | 0x0A | 0xFF | 0x7F => 0,
            0x07 => 12,
            0x08 => 1,
            0x0B => {
                let (_, r) = cstring(body)?;
                let (_, r) = cstring(r)?;
                body.len() - r.len()
            }
            0x0C => 4 + checked_len(body)? + 12,
            0x10 => 4,
            0x13 => 16,
            other => return Err(format!("unknown BSON element type 0x{other:02x}")),
        };
        let (value, rest) = take(body, size)?;
        self.rest = rest;
        Ok(Some((key, Element { kind, value })))
    }
}

fn checked_len(b: &[u8]) -> Result<usize, Problem> {
    usize::try_from(le_i32(b)?).map_err(|_| "negative BSON length".to_string())
}

/// The bytes of a BSON string value (length-prefixed, NUL-terminated).
pub(crate) fn string_bytes(value: &[u8]) -> Result<&[u8], Problem> {
    let len = checked_len(value)?;
    if len == 0 || value.len() < 4 + len {
        return Err("malformed BSON string".into());
    }
    Ok(&value[4..4 + len - 1])
}

/// Whether `key` is `_type` or `_keys` behind one or more `_`: such source keys get one more `_`.
pub(crate) fn is_reserved_spelling(key: &str) -> bool {
    let bare = key.trim_start_matches('_');
    key.len() > bare.len() && (bare == "type" || bare == "keys")
}

/// `jsonb`'s storage order of object keys: shorter first, then bytewise.
pub(crate) fn jsonb_key_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// Write `s` as a JSON string (valid UTF-8 without NUL, checked by the caller).
pub(crate) fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    let mut run = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[run..i]);
        run = i + 1;
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
    }
    out.push_str(&s[run..]);
    out.push('"');
}

/// Write string bytes: a JSON string, or — when they are not UTF-8 or contain NUL, which `jsonb`
/// cannot hold — `{"_type":"bytes","data":base64}` of the exact bytes.
fn write_text(out: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(s) if !bytes.contains(&0) => write_json_string(out, s),
        _ => {
            out.push_str(r#"{"_type":"bytes","data":""#);
            base64::engine::general_purpose::STANDARD.encode_string(bytes, out);
            out.push_str("\"}");
        }
    }
}

/// A double in plain decimal notation with at least one fractional digit (`5.0`, `0.0000001`,
/// `1000…0.0`), or the tagged `float` object for NaN, the infinities and -0.0.
pub(crate) fn write_double(out: &mut String, v: f64) {
    if !v.is_finite() || (v == 0.0 && v.is_sign_negative()) {
        let text = if v.is_nan() {
            "NaN"
        } else if v.is_infinite() {
            if v > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            }
        } else {
            "-0.0"
        };
        let _ = write!(out, r#"{{"_type":"float","value":"{text}"}}"#);
        return;
    }
    let mut buf = ryu::Buffer::new();
    let short = buf.format_finite(v);
    let (mantissa, exp) = match short.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().expect("ryu exponent")),
        None => (short, 0),
    };
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    // Position of the decimal point within `digits`.
    let point = int.len() as i32 + exp;
    out.push_str(sign);
    if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(digits.trim_end_matches('0'));
        if digits.trim_end_matches('0').is_empty() {
            out.push('0');
        }
    } else if point as usize >= digits.len() {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', point as usize - digits.len()));
        out.push_str(".0");
    } else {
        let (a, b) = digits.split_at(point as usize);
        out.push_str(a);
        out.push('.');
        out.push_str(b);
    }
}

/// Write one element's value.
pub(crate) fn write_value(out: &mut String, e: Element<'_>) -> Result<(), Problem> {
    let v = e.value;
    let b64 = |out: &mut String, data: &[u8]| {
        base64::engine::general_purpose::STANDARD.encode_string(data, out)
    };
    match e.kind {
        0x01 => write_double(out, f64::from_le_bytes(v.try_into().expect("8 bytes"))),
        0x02 => write_text(out, string_bytes(v)?),
        0x03 => write_document(out, v)?,
        0x04 => write_array(out, v)?,
        0x05 => {
            let (payload, subtype) = (&v[5..], v[4]);
            let _ = write!(out, r#"{{"_type":"binary","subtype":{subtype},"data":""#);
            b64(out, payload);
            out.push('"');
            if subtype == 4 && payload.len() == 16 {
                let h = hex(payload);
                let _ = write!(
                    out,
                    r#","uuid":"{}-{}-{}-{}-{}""#,
                    &h[..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..]
                );
            }
            out.push('}');
        }
        0x06 => out.push_str(r#"{"_type":"undefined"}"#),
        0x07 => {
            let _ = write!(out, r#"{{"_type":"objectid","$oid":"{}"}}"#, hex(v));
        }
        0x08 => out.push_str(if v[0] != 0 { "true" } else { "false" }),
        0x09 => {
            let ms = i64::from_le_bytes(v.try_into().expect("8 bytes"));
            let _ = write!(out, r#"{{"_type":"datetime","$date":{ms}}}"#);
        }
        0x0A => out.push_str("null"),
        0x0B => {
            let (pattern, r) = cstring(v)?;
            let (options, _) = cstring(r)?;
            out.push_str(r#"{"_type":"regex","pattern":"#);
            write_text(out, pattern);
            out.push_str(r#","options":"#);
            write_text(out, options);
            out.push('}');
        }
        0x0C => {
            let len = 4 + checked_len(v)?;
            out.push_str(r#"{"_type":"dbpointer","ref":"#);
            write_text(out, string_bytes(&v[..len])?);
            let _ = write!(out, r#","$oid":"{}"}}"#, hex(&v[len..]));
        }
        0x0D => {
            out.push_str(r#"{"_type":"javascript","code":"#);
            write_text(out, string_bytes(v)?);
            out.push('}');
        }
        0x0E => {
            out.push_str(r#"{"_type":"symbol","value":"#);
            write_text(out, string_bytes(v)?);
            out.push('}');
        }
        0x0F => {
            let code_len = 4 + checked_len(&v[4..])?;
            let (code, scope) = take(&v[4..], code_len)?;
            out.push_str(r#"{"_type":"javascript","code":"#);
            write_text(out, string_bytes(code)?);
            out.push_str(r#","scope":"#);
            write_document(out, scope)?;
            out.push('}');
        }
        0x10 => {
            let _ = write!(
                out,
                "{}",
                i32::from_le_bytes(v.try_into().expect("4 bytes"))
            );
        }
        0x11 => {
            let i = u32::from_le_bytes(v[..4].try_into().expect("4 bytes"));
            let t = u32::from_le_bytes(v[4..].try_into().expect("4 bytes"));
            let _ = write!(out, r#"{{"_type":"timestamp","t":{t},"i":{i}}}"#);
        }
        0x12 => {
            let n = i64::from_le_bytes(v.try_into().expect("8 bytes"));
            if i32::try_from(n).is_ok() {
                let _ = write!(out, r#"{{"_type":"int64","value":"{n}"}}"#);
            } else {
                let _ = write!(out, "{n}");
            }
        }
        0x13 => {
            let bytes: [u8; 16] = v.try_into().expect("16 bytes");
            let d = mongodb::bson::Decimal128::from_bytes(bytes);
            let text = d.to_string();
            let _ = write!(out, r#"{{"_type":"decimal","value":"{text}""#);
            // Non-canonical encodings and NaN payloads do not survive the text: keep the bits.
            if text
                .parse::<mongodb::bson::Decimal128>()
                .ok()
                .map(|p| p.bytes())
                != Some(bytes)
            {
                let _ = write!(out, r#","bits":"{}""#, hex(&bytes));
            }
            out.push('}');
        }
        0xFF => out.push_str(r#"{"_type":"minkey"}"#),
        0x7F => out.push_str(r#"{"_type":"maxkey"}"#),
        other => return Err(format!("unknown BSON element type 0x{other:02x}")),
    }
    Ok(())
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Write a whole BSON document (its bytes) as a JSON object.
pub fn write_document(out: &mut String, doc: &[u8]) -> Result<(), Problem> {
    let mut elements = Elements::new(doc)?;
    let mut keys: Vec<String> = Vec::new();
    out.push('{');
    while let Some((key, element)) = elements.next_element()? {
        let key = std::str::from_utf8(key)
            .map_err(|_| format!("a field name is not valid UTF-8: {key:?}"))?;
        let key = if is_reserved_spelling(key) {
            format!("_{key}")
        } else {
            key.to_string()
        };
        if !keys.is_empty() {
            out.push(',');
        }
        write_json_string(out, &key);
        out.push(':');
        write_value(out, element)?;
        keys.push(key);
    }
    let in_jsonb_order = keys
        .windows(2)
        .all(|w| jsonb_key_order(&w[0], &w[1]).is_lt());
    if !in_jsonb_order {
        out.push_str(r#","_keys":["#);
        for (i, key) in keys.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_json_string(out, key);
        }
        out.push(']');
    }
    out.push('}');
    Ok(())
}

fn write_array(out: &mut String, doc: &[u8]) -> Result<(), Problem> {
    let mut elements = Elements::new(doc)?;
    out.push('[');
    let mut first = true;
    while let Some((_, element)) = elements.next_element()? {
        if !first {
            out.push(',');
        }
        first = false;
        write_value(out, element)?;
    }
    out.push(']');
    Ok(())
}

/// The JSON text of a whole document, as stored in `data`.
pub fn document_json(doc: &[u8]) -> Result<String, Problem> {
    let mut out = String::with_capacity(doc.len() + doc.len() / 4);
    write_document(&mut out, doc)?;
    Ok(out)
}

/// The BSON type name used as the `id` prefix of a non-ObjectId, non-string `_id`.
pub(crate) fn type_name(kind: u8) -> &'static str {
    match kind {
        0x01 => "double",
        0x02 => "string",
        0x03 => "document",
        0x04 => "array",
        0x05 => "binary",
        0x06 => "undefined",
        0x08 => "bool",
        0x09 => "datetime",
        0x0A => "null",
        0x0B => "regex",
        0x0C => "dbpointer",
        0x0D | 0x0F => "javascript",
        0x0E => "symbol",
        0x10 => "int32",
        0x11 => "timestamp",
        0x12 => "int64",
        0x13 => "decimal",
        0xFF => "minkey",
        0x7F => "maxkey",
        _ => "unknown",
    }
}

/// The `id` text of an `_id` value: an ObjectId as its 24 hex digits, a string (UTF-8 without
/// NUL) as itself, anything else as `<type>:<value>` so values of different types never collide:
/// Int64, DateTime (milliseconds) and Decimal128 as their plain text (`int64:5`,
/// `datetime:-86400000`, `decimal:7.00`), every other type as its JSON encoding (`int32:5`,
/// `double:5.0`, `bool:true`, `document:{"a":1}`, `string:{"_type":"bytes",…}`).
pub(crate) fn id_text(e: Element<'_>) -> Result<String, Problem> {
    match e.kind {
        0x07 => return Ok(hex(e.value)),
        0x02 => {
            let bytes = string_bytes(e.value)?;
            if let (Ok(s), false) = (std::str::from_utf8(bytes), bytes.contains(&0)) {
                return Ok(s.to_string());
            }
        }
        _ => {}
    }
    let mut out = String::from(type_name(e.kind));
    out.push(':');
    let v = e.value;
    match e.kind {
        0x12 => {
            let _ = write!(
                out,
                "{}",
                i64::from_le_bytes(v.try_into().expect("8 bytes"))
            );
        }
        0x09 => {
            let _ = write!(
                out,
                "{}",
                i64::from_le_bytes(v.try_into().expect("8 bytes"))
            );
        }
        0x13 => {
            let bytes: [u8; 16] = v.try_into().expect("16 bytes");
            let _ = write!(out, "{}", mongodb::bson::Decimal128::from_bytes(bytes));
        }
        _ => write_value(&mut out, e)?,
    }
    Ok(out)
}

/// The `id` text and the `data` JSON of one document.
pub fn id_and_json(doc: &[u8]) -> Result<(String, String), Problem> {
    let mut elements = Elements::new(doc)?;
    let mut id = None;
    while let Some((key, element)) = elements.next_element()? {
        if key == b"_id" {
            id = Some(id_text(element)?);
            break;
        }
    }
    let id = id.ok_or("the document has no `_id`")?;
    Ok((id, document_json(doc)?))
}

/// The `id` text of a document's `_id` (from a change event's `documentKey`).
pub fn id_of(doc: &[u8]) -> Result<String, Problem> {
    let mut elements = Elements::new(doc)?;
    while let Some((key, element)) = elements.next_element()? {
        if key == b"_id" {
            return id_text(element);
        }
    }
    Err("the document has no `_id`".into())
}
