//! `verify`: compare a source table with its copy, row for row, without loading either into
//! memory. Each row is reduced to a 128-bit digest and the digests are summed (an
//! order-independent multiset hash), alongside a row count.
//!
//! Source rows go through the same encoder that wrote them; target rows come back with
//! `COPY … TO STDOUT (FORMAT binary)`. Native rows are compared byte for byte; JSONB rows compare
//! `id`, `_source_type` and the `data` document in a canonical form (keys sorted, numbers by
//! value), since PostgreSQL normalises JSON text it stores.

use crate::conn::{query_error, PgTarget};
use crate::ddl::{qualified, quote_ident};
use bytes::{Buf, BytesMut};
use futures::StreamExt;
use pipeline::encode::{jsonb_columns, JsonbEncoder, NativeEncoder};
use pipeline::{BatchEncoder, Error, Mode, PgType, Result, Side, Source, TableInfo};
use serde::Serialize;

/// The outcome of comparing one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableCheck {
    /// Source table name.
    pub table: String,
    /// Rows read from the source.
    pub source_rows: u64,
    /// Rows read from the target.
    pub target_rows: u64,
    /// Content digest of the source rows.
    pub source_digest: String,
    /// Content digest of the target rows.
    pub target_digest: String,
    /// Whether both sides hold the same rows.
    pub matches: bool,
}

#[derive(Default)]
struct Digest {
    rows: u64,
    sum: u128,
}

impl Digest {
    /// Digest one tuple; the fields at the `json` positions are `jsonb`, compared canonically.
    fn add_tuple(&mut self, fields: &[Option<&[u8]>], json: &[usize]) -> Result<()> {
        let mut canon = Vec::with_capacity(64);
        for (i, f) in fields.iter().enumerate() {
            match f {
                None => canon.extend_from_slice(b"\xff\xff\xff\xff"),
                Some(v) if json.contains(&i) => {
                    let text = v.strip_prefix(&[1u8]).unwrap_or(v);
                    let value: serde_json::Value = serde_json::from_slice(text).map_err(|e| {
                        Error::conversion(format!("verify: unreadable JSON document: {e}"))
                    })?;
                    let c = canonical(value).to_string();
                    canon.extend_from_slice(&(c.len() as u32).to_be_bytes());
                    canon.extend_from_slice(c.as_bytes());
                }
                Some(v) => {
                    canon.extend_from_slice(&(v.len() as u32).to_be_bytes());
                    canon.extend_from_slice(v);
                }
            }
        }
        self.rows += 1;
        self.sum = self.sum.wrapping_add(xxhash_rust::xxh3::xxh3_128(&canon));
        Ok(())
    }

    /// Digest every complete tuple at the front of `buf`, leaving a partial one in place.
    fn consume(&mut self, buf: &mut BytesMut, json: &[usize]) -> Result<()> {
        loop {
            let Some((len, fields)) = parse_tuple(buf)? else {
                return Ok(());
            };
            let fields: Vec<Option<&[u8]>> =
                fields.iter().map(|r| r.clone().map(|r| &buf[r])).collect();
            self.add_tuple(&fields, json)?;
            buf.advance(len);
        }
    }

    fn hex(&self) -> String {
        format!("{:032x}", self.sum)
    }
}

type Fields = Vec<Option<std::ops::Range<usize>>>;

/// One tuple at the start of `buf`: its byte length and field ranges. `None` when incomplete.
/// A field count of -1 (the trailer) yields an empty tuple of length 2 with no fields.
fn parse_tuple(buf: &[u8]) -> Result<Option<(usize, Fields)>> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let n = i16::from_be_bytes([buf[0], buf[1]]);
    if n == -1 {
        return Ok(None);
    }
    let mut pos = 2;
    let mut fields = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n {
        if buf.len() < pos + 4 {
            return Ok(None);
        }
        let len = i32::from_be_bytes(buf[pos..pos + 4].try_into().unwrap());
        pos += 4;
        if len < 0 {
            fields.push(None);
            continue;
        }
        let end = pos + len as usize;
        if buf.len() < end {
            return Ok(None);
        }
        fields.push(Some(pos..end));
        pos = end;
    }
    Ok(Some((pos, fields)))
}

/// Sort keys (serde_json's default map is ordered) and represent integral numbers as integers,
/// so `1e16`, `10000000000000000` and `1.0e16` compare equal, as they do in jsonb.
fn canonical(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.2e18 => Value::from(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(canonical).collect()),
        // Sorted here: `serde_json/preserve_order` (enabled by the `bson` crate) keeps input order.
        Value::Object(o) => {
            let mut members: Vec<_> = o.into_iter().map(|(k, v)| (k, canonical(v))).collect();
            members.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(members.into_iter().collect())
        }
        other => other,
    }
}

/// Compare `table` in `source` (only rows matching `filter`, as `init` copied them) with its
/// copy in `schema` on `target`.
pub async fn verify_table(
    source: &dyn Source,
    table: &TableInfo,
    filter: Option<&str>,
    target: &PgTarget,
    schema: &str,
    mode: Mode,
) -> Result<TableCheck> {
    let encoder: Box<dyn BatchEncoder> = match mode {
        Mode::Jsonb => Box::new(JsonbEncoder::new(table, source.kind())?),
        Mode::Native => Box::new(NativeEncoder::new(table)?),
    };
    // JSONB mode's `jsonb` columns (`data`, and flat ones) compare canonically: PostgreSQL
    // normalises the JSON text it stores.
    let (columns, json): (Vec<String>, Vec<usize>) = match mode {
        Mode::Jsonb => {
            let columns = jsonb_columns(table)?;
            let json = (columns.iter().enumerate())
                .filter(|(_, (_, ty))| *ty == PgType::Jsonb)
                .map(|(i, _)| i)
                .collect();
            (
                columns.into_iter().map(|(c, _)| quote_ident(&c)).collect(),
                json,
            )
        }
        Mode::Native => (
            (pipeline::encode::native_columns(table)?.into_iter())
                .map(|(c, _)| quote_ident(&c))
                .collect(),
            Vec::new(),
        ),
    };
    let mut src = Digest::default();
    let mut buf = BytesMut::new();
    for partition in source.plan(table, filter).await? {
        let mut stream = source.open(table, &partition).await?;
        while let Some(batch) = stream.next().await {
            encoder.encode(&batch?, &mut buf)?;
            src.consume(&mut buf, &json)?;
        }
    }

    let client = target.connect().await?;
    let what = format!(
        "reading table {} from the target",
        qualified(schema, &table.name)
    );
    let sql = format!(
        "COPY (SELECT {} FROM {}) TO STDOUT (FORMAT binary)",
        columns.join(", "),
        qualified(schema, &table.name)
    );
    let stream = client
        .copy_out(&sql)
        .await
        .map_err(|e| query_error(Side::Target, &what, e))?;
    let mut stream = std::pin::pin!(stream);
    let mut dst = Digest::default();
    let mut buf = BytesMut::new();
    let mut header_done = false;
    while let Some(chunk) = stream.next().await {
        buf.extend_from_slice(&chunk.map_err(|e| query_error(Side::Target, &what, e))?);
        if !header_done {
            if buf.len() < pipeline::encode::COPY_HEADER.len() {
                continue;
            }
            buf.advance(pipeline::encode::COPY_HEADER.len());
            header_done = true;
        }
        dst.consume(&mut buf, &json)?;
    }
    Ok(TableCheck {
        table: table.name.clone(),
        source_rows: src.rows,
        target_rows: dst.rows,
        source_digest: src.hex(),
        target_digest: dst.hex(),
        matches: src.rows == dst.rows && src.sum == dst.sum,
    })
}
