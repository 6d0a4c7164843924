//! JSON (as stored in the JSONB `data` column) → BSON bytes: the exact inverse of
//! [`crate::encode`]. `document_from_json(document_json(doc)) == doc`, byte for byte, for every
//! document whose keys are unique, also after the JSON went through PostgreSQL's `jsonb` (which
//! reorders members: the `_keys` list restores the source order).
//!
//! The JSON is parsed by a small parser of its own so that numbers keep their text (`5` is an
//! Int32, `5.0` a double, parsed with Rust's exact `f64` parser) and members keep their order.

use crate::encode::{is_reserved_spelling, Problem};
use base64::Engine as _;

/// A parsed JSON value, numbers kept as text, members in document order.
#[derive(Debug)]
enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> Problem {
        format!("invalid JSON at byte {}: {what}", self.pos)
    }

    fn skip_ws(&mut self) {
        while self
            .s
            .get(self.pos)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Result<(), Problem> {
        self.skip_ws();
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected `{}`", c as char)))
        }
    }

    fn value(&mut self) -> Result<Json, Problem> {
        self.skip_ws();
        let rest = &self.s[self.pos..];
        let word = |w: &[u8], v: Json, p: &mut Self| {
            if rest.starts_with(w) {
                p.pos += w.len();
                Ok(v)
            } else {
                Err(p.error("unexpected token"))
            }
        };
        match rest.first() {
            Some(b'n') => word(b"null", Json::Null, self),
            Some(b't') => word(b"true", Json::Bool(true), self),
            Some(b'f') => word(b"false", Json::Bool(false), self),
            Some(b'"') => self.string().map(Json::String),
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if self.s.get(self.pos) == Some(&b']') {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value()?);
                    self.skip_ws();
                    match self.s.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Json::Array(items));
                        }
                        _ => return Err(self.error("expected `,` or `]`")),
                    }
                }
            }
            Some(b'{') => {
                self.pos += 1;
                let mut members = Vec::new();
                self.skip_ws();
                if self.s.get(self.pos) == Some(&b'}') {
                    self.pos += 1;
                    return Ok(Json::Object(members));
                }
                loop {
                    self.skip_ws();
                    let key = self.string()?;
                    self.eat(b':')?;
                    members.push((key, self.value()?));
                    self.skip_ws();
                    match self.s.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Json::Object(members));
                        }
                        _ => return Err(self.error("expected `,` or `}`")),
                    }
                }
            }
            Some(b'-' | b'0'..=b'9') => {
                let start = self.pos;
                while self
                    .s
                    .get(self.pos)
                    .is_some_and(|c| matches!(c, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                {
                    self.pos += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.pos]).expect("ASCII");
                Ok(Json::Number(text.to_string()))
            }
            _ => Err(self.error("unexpected character")),
        }
    }

    fn hex4(&mut self) -> Result<u32, Problem> {
        let digits = self
            .s
            .get(self.pos..self.pos + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .ok_or_else(|| self.error("bad \\u escape"))?;
        self.pos += 4;
        Ok(digits)
    }

    fn string(&mut self) -> Result<String, Problem> {
        if self.s.get(self.pos) != Some(&b'"') {
            return Err(self.error("expected a string"));
        }
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.pos) else {
                return Err(self.error("unterminated string"));
            };
            self.pos += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = *self
                        .s
                        .get(self.pos)
                        .ok_or_else(|| self.error("bad escape"))?;
                    self.pos += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let mut code = self.hex4()?;
                            if (0xD800..0xDC00).contains(&code)
                                && self.s.get(self.pos..self.pos + 2) == Some(b"\\u")
                            {
                                self.pos += 2;
                                let low = self.hex4()?;
                                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                            }
                            char::from_u32(code).ok_or_else(|| self.error("bad \\u escape"))?
                        }
                        _ => return Err(self.error("bad escape")),
                    };
                    let mut buf = [0; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                c => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| self.error("string is not UTF-8"))
    }
}

fn parse(text: &str) -> Result<Json, Problem> {
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
    };
    let v = p.value()?;
    p.skip_ws();
    if p.pos != p.s.len() {
        return Err(p.error("trailing characters"));
    }
    Ok(v)
}

/// Rebuild the BSON document (its bytes) that [`crate::encode::document_json`] wrote as `json`.
pub fn document_from_json(json: &str) -> Result<Vec<u8>, Problem> {
    match parse(json)? {
        Json::Object(members) => {
            let mut out = Vec::new();
            write_document(&mut out, members)?;
            Ok(out)
        }
        _ => Err("a document must be a JSON object".into()),
    }
}

/// Append a BSON document built from an object's members (restoring `_keys` order).
fn write_document(out: &mut Vec<u8>, mut members: Vec<(String, Json)>) -> Result<(), Problem> {
    if let Some(at) = members.iter().position(|(k, _)| k == "_keys") {
        let (_, Json::Array(order)) = members.remove(at) else {
            return Err("`_keys` must be an array of names".into());
        };
        let mut ordered = Vec::with_capacity(members.len());
        for name in order {
            let Json::String(name) = name else {
                return Err("`_keys` must be an array of names".into());
            };
            let at = members
                .iter()
                .position(|(k, _)| *k == name)
                .ok_or_else(|| format!("`_keys` names `{name}`, which the object lacks"))?;
            ordered.push(members.swap_remove(at));
        }
        if !members.is_empty() {
            return Err("`_keys` does not name every member".into());
        }
        members = ordered;
    }
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    for (key, value) in members {
        let key = if is_reserved_spelling(&key) {
            key[1..].to_string()
        } else {
            key
        };
        write_element(out, &key, value)?;
    }
    out.push(0);
    let len = (out.len() - start) as i32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

fn write_array(out: &mut Vec<u8>, items: Vec<Json>) -> Result<(), Problem> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    for (i, item) in items.into_iter().enumerate() {
        write_element(out, &i.to_string(), item)?;
    }
    out.push(0);
    let len = (out.len() - start) as i32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as i32 + 1).to_le_bytes());
    out.extend_from_slice(bytes);
    out.push(0);
}

fn put_cstring(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), Problem> {
    if bytes.contains(&0) {
        return Err("a BSON key, regex or C string cannot contain NUL".into());
    }
    out.extend_from_slice(bytes);
    out.push(0);
    Ok(())
}

fn unhex(s: &str, len: usize) -> Result<Vec<u8>, Problem> {
    if s.len() != len * 2 {
        return Err(format!("`{s}` is not {len} bytes of hex"));
    }
    (0..len)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| format!("bad hex `{s}`")))
        .collect()
}

fn unbase64(s: &str) -> Result<Vec<u8>, Problem> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("bad base64: {e}"))
}

/// The fields of a tagged object.
struct Tagged(Vec<(String, Json)>);

impl Tagged {
    fn take(&mut self, name: &str) -> Result<Json, Problem> {
        let at = self
            .0
            .iter()
            .position(|(k, _)| k == name)
            .ok_or_else(|| format!("tagged value lacks `{name}`"))?;
        Ok(self.0.swap_remove(at).1)
    }
    fn str(&mut self, name: &str) -> Result<String, Problem> {
        match self.take(name)? {
            Json::String(s) => Ok(s),
            _ => Err(format!("`{name}` must be a string")),
        }
    }
    fn num<T: std::str::FromStr>(&mut self, name: &str) -> Result<T, Problem> {
        match self.take(name)? {
            Json::Number(n) => n.parse().map_err(|_| format!("`{name}` out of range: {n}")),
            _ => Err(format!("`{name}` must be a number")),
        }
    }
    /// String bytes: a JSON string or a `bytes` tagged object.
    fn text(&mut self, name: &str) -> Result<Vec<u8>, Problem> {
        text_bytes(self.take(name)?)
    }
}

fn text_bytes(v: Json) -> Result<Vec<u8>, Problem> {
    match v {
        Json::String(s) => Ok(s.into_bytes()),
        Json::Object(m) => {
            let mut t = Tagged(m);
            if t.str("_type")? != "bytes" {
                return Err("expected a string".into());
            }
            unbase64(&t.str("data")?)
        }
        _ => Err("expected a string".into()),
    }
}

/// Append one element: type byte, key, value.
fn write_element(out: &mut Vec<u8>, key: &str, value: Json) -> Result<(), Problem> {
    let kind_at = out.len();
    out.push(0);
    put_cstring(out, key.as_bytes())?;
    let kind = match value {
        Json::Null => 0x0A,
        Json::Bool(b) => {
            out.push(u8::from(b));
            0x08
        }
        Json::String(s) => {
            put_string(out, s.as_bytes());
            0x02
        }
        Json::Number(n) => {
            if n.contains(['.', 'e', 'E']) {
                let v: f64 = n.parse().map_err(|_| format!("bad number {n}"))?;
                out.extend_from_slice(&v.to_le_bytes());
                0x01
            } else if let Ok(v) = n.parse::<i32>() {
                out.extend_from_slice(&v.to_le_bytes());
                0x10
            } else {
                let v: i64 = n
                    .parse()
                    .map_err(|_| format!("integer out of range: {n}"))?;
                out.extend_from_slice(&v.to_le_bytes());
                0x12
            }
        }
        Json::Array(items) => {
            write_array(out, items)?;
            0x04
        }
        Json::Object(members) if !members.iter().any(|(k, _)| k == "_type") => {
            write_document(out, members)?;
            0x03
        }
        Json::Object(members) => write_tagged(out, Tagged(members))?,
    };
    out[kind_at] = kind;
    Ok(())
}

/// Append the value of a tagged object; returns its BSON type byte.
fn write_tagged(out: &mut Vec<u8>, mut t: Tagged) -> Result<u8, Problem> {
    let tag = t.str("_type")?;
    Ok(match tag.as_str() {
        "objectid" => {
            out.extend(unhex(&t.str("$oid")?, 12)?);
            0x07
        }
        "datetime" => {
            out.extend_from_slice(&t.num::<i64>("$date")?.to_le_bytes());
            0x09
        }
        "binary" => {
            let subtype: u8 = t.num("subtype")?;
            let data = unbase64(&t.str("data")?)?;
            out.extend_from_slice(&(data.len() as i32).to_le_bytes());
            out.push(subtype);
            out.extend(data);
            0x05
        }
        "decimal" => {
            let bytes = match t.take("bits") {
                Ok(Json::String(bits)) => unhex(&bits, 16)?,
                _ => t
                    .str("value")?
                    .parse::<mongodb::bson::Decimal128>()
                    .map_err(|e| format!("bad decimal: {e}"))?
                    .bytes()
                    .to_vec(),
            };
            out.extend(bytes);
            0x13
        }
        "float" => {
            let v: f64 = match t.str("value")?.as_str() {
                "NaN" => f64::NAN,
                "Infinity" => f64::INFINITY,
                "-Infinity" => f64::NEG_INFINITY,
                "-0.0" => -0.0,
                other => return Err(format!("bad float `{other}`")),
            };
            out.extend_from_slice(&v.to_le_bytes());
            0x01
        }
        "int64" => {
            let v: i64 = t.str("value")?.parse().map_err(|_| "bad int64")?;
            out.extend_from_slice(&v.to_le_bytes());
            0x12
        }
        "bytes" => {
            put_string(out, &unbase64(&t.str("data")?)?);
            0x02
        }
        "regex" => {
            put_cstring(out, &t.text("pattern")?)?;
            put_cstring(out, &t.text("options")?)?;
            0x0B
        }
        "timestamp" => {
            out.extend_from_slice(&t.num::<u32>("i")?.to_le_bytes());
            out.extend_from_slice(&t.num::<u32>("t")?.to_le_bytes());
            0x11
        }
        "minkey" => 0xFF,
        "maxkey" => 0x7F,
        "undefined" => 0x06,
        "symbol" => {
            put_string(out, &t.text("value")?);
            0x0E
        }
        "dbpointer" => {
            put_string(out, &t.text("ref")?);
            out.extend(unhex(&t.str("$oid")?, 12)?);
            0x0C
        }
        "javascript" => {
            let code = t.text("code")?;
            match t.take("scope") {
                Ok(Json::Object(scope)) => {
                    let start = out.len();
                    out.extend_from_slice(&[0; 4]);
                    put_string(out, &code);
                    write_document(out, scope)?;
                    let len = (out.len() - start) as i32;
                    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
                    0x0F
                }
                _ => {
                    put_string(out, &code);
                    0x0D
                }
            }
        }
        other => return Err(format!("unknown tag `_type: {other}`")),
    })
}
