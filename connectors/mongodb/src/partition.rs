//! Splitting a collection into `_id` ranges.
//!
//! Bounds come from a `$sample` of `_id`s sorted by the server. MongoDB's range operators only
//! match values of the bound's type bracket (`{_id: {$lt: ObjectId(…)}}` never matches a string
//! `_id`), so the ranges use the bracket most sampled ids have (ObjectId, string, number or date)
//! and one more partition takes every `_id` of any other type: together they cover the
//! collection without overlap whatever mix of `_id` types it holds. Collections up to
//! `partition_rows` documents, and any whose sample fails, are read as one partition.

use crate::error::mongo;
use crate::source::MongoSource;
use base64::Engine as _;
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document, RawDocumentBuf};
use pipeline::{Error, Partition, Result, TableInfo};

/// Sampled `_id`s per partition: enough for even ranges without a long `$sample`.
const SAMPLES_PER_PARTITION: u64 = 20;
/// At most this many partitions per collection.
const MAX_PARTITIONS: u64 = 256;

/// The `$type` alias of a BSON type's comparison bracket, for the types ranges are built on.
fn bracket(v: &Bson) -> Option<&'static str> {
    Some(match v {
        Bson::ObjectId(_) => "objectId",
        Bson::String(_) => "string",
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => "number",
        Bson::DateTime(_) => "date",
        _ => return None,
    })
}

/// A bound as base64 of the BSON document `{"v": bound}`: exact for every type, and JSON-safe.
fn pack(v: &Bson) -> Result<String> {
    let raw = RawDocumentBuf::from_document(&doc! {"v": v.clone()})
        .map_err(|e| Error::conversion(format!("encoding a partition bound: {e}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(raw.as_bytes()))
}

fn unpack(s: &str) -> Result<Bson> {
    let bad = |e: String| Error::config(format!("bad partition bound `{s}`: {e}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| bad(e.to_string()))?;
    let d: Document = mongodb::bson::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    d.get("v").cloned().ok_or_else(|| bad("no value".into()))
}

/// The query for a partition's `bounds`: the user's filter and the partition's `_id` range.
pub(crate) fn query(table: &str, bounds: &serde_json::Value) -> Result<Document> {
    let filter = bounds.get("filter").and_then(|f| f.as_str());
    let mut parts = vec![];
    let user = MongoSource::parse_filter(table, filter)?;
    if !user.is_empty() {
        parts.push(user);
    }
    if let Some(other) = bounds.get("other_than").and_then(|t| t.as_str()) {
        parts.push(doc! {"_id": {"$not": {"$type": other}}});
    }
    if let Some(only) = bounds.get("only").and_then(|t| t.as_str()) {
        parts.push(doc! {"_id": {"$type": only}});
    }
    let mut range = Document::new();
    if let Some(lo) = bounds.get("from").and_then(|b| b.as_str()) {
        range.insert("$gte", unpack(lo)?);
    }
    if let Some(hi) = bounds.get("before").and_then(|b| b.as_str()) {
        range.insert("$lt", unpack(hi)?);
    }
    if !range.is_empty() {
        parts.push(doc! {"_id": range});
    }
    Ok(match parts.len() {
        0 => Document::new(),
        1 => parts.pop().expect("one part"),
        _ => doc! {"$and": parts},
    })
}

/// Split `table` into partitions.
pub(crate) async fn plan(
    source: &MongoSource,
    table: &TableInfo,
    filter: Option<&str>,
) -> Result<Vec<Partition>> {
    MongoSource::parse_filter(&table.name, filter)?; // reject a bad filter before reading
    let base = serde_json::json!({ "filter": filter });
    let whole = |rows: u64| {
        vec![Partition {
            table: table.name.clone(),
            index: 0,
            count: 1,
            description: "whole collection".into(),
            estimated_rows: rows,
            bounds: base.clone(),
        }]
    };
    let limit = source.options.partition_rows.max(1);
    if table.rows <= limit {
        return Ok(whole(table.rows));
    }
    let wanted = table.rows.div_ceil(limit).min(MAX_PARTITIONS);
    let ids = match sample(source, &table.name, wanted * SAMPLES_PER_PARTITION).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(collection = %table.name, error = %e, "no _id sample: one partition");
            return Ok(whole(table.rows));
        }
    };
    // The bracket most sampled ids belong to, and its ids in the server's sort order.
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for b in ids.iter().filter_map(bracket) {
        match counts.iter_mut().find(|c| c.0 == b) {
            Some(c) => c.1 += 1,
            None => counts.push((b, 1)),
        }
    }
    let Some(&(kind, _)) = counts.iter().max_by_key(|c| c.1) else {
        return Ok(whole(table.rows));
    };
    let same: Vec<&Bson> = ids.iter().filter(|v| bracket(v) == Some(kind)).collect();
    let step = (same.len() as u64 / wanted).max(1) as usize;
    let mut bounds: Vec<&Bson> = same.iter().copied().skip(step).step_by(step).collect();
    bounds.dedup();
    let per = table.rows / (bounds.len() as u64 + 2);
    let mut partitions = Vec::new();
    let mut push = |description: String, b: serde_json::Value| {
        partitions.push((description, b));
    };
    for i in 0..=bounds.len() {
        let mut b = base.clone();
        let lo = i.checked_sub(1).map(|j| bounds[j]);
        let hi = bounds.get(i).copied();
        if let Some(lo) = lo {
            b["from"] = pack(lo)?.into();
        }
        if let Some(hi) = hi {
            b["before"] = pack(hi)?.into();
        }
        if lo.is_none() && hi.is_none() {
            b["only"] = kind.into();
        }
        let show = |v: Option<&Bson>| v.map_or("…".to_string(), |v| v.to_string());
        push(format!("{kind} _id {} .. {}", show(lo), show(hi)), b);
    }
    let mut rest = base.clone();
    rest["other_than"] = kind.into();
    push(format!("_id of types other than {kind}"), rest);
    let count = partitions.len();
    Ok(partitions
        .into_iter()
        .enumerate()
        .map(|(index, (description, bounds))| Partition {
            table: table.name.clone(),
            index,
            count,
            description,
            estimated_rows: per,
            bounds,
        })
        .collect())
}

/// About `size` `_id`s of the collection, sorted by the server (BSON order).
async fn sample(source: &MongoSource, name: &str, size: u64) -> Result<Vec<Bson>> {
    let coll = source.db.collection::<Document>(name);
    let pipeline = vec![
        doc! {"$sample": {"size": size as i64}},
        doc! {"$project": {"_id": 1}},
        doc! {"$sort": {"_id": 1}},
    ];
    let what = || format!("sampling _id values of collection `{name}`");
    let docs: Vec<Document> = coll
        .aggregate(pipeline)
        .await
        .map_err(|e| mongo(e, what()))?
        .try_collect()
        .await
        .map_err(|e| mongo(e, what()))?;
    Ok(docs
        .into_iter()
        .filter_map(|mut d| d.remove("_id"))
        .collect())
}
