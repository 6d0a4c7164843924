//! Splitting a collection into `_id` ranges.
//!
//! Bounds come from a `$sample` of `_id`s sorted by the server. MongoDB's range operators only
//! match values of the bound's type bracket (`{_id: {$lt: ObjectId(…)}}` never matches a string
//! `_id`), so the ranges use the bracket most sampled ids have (ObjectId, string, number or date)
//! and one more partition takes every `_id` of any other type: together they cover the
//! collection without overlap whatever mix of `_id` types it holds. Collections up to
//! `partition_rows` documents, any whose sample fails, and (unless `partition_rows` was set)
//! any whose server plans `_id` ranges as collection scans are read as one partition.

use crate::error::mongo;
use crate::source::MongoSource;
use base64::Engine as _;
use futures::TryStreamExt;
use mongodb::bson::{doc, oid::ObjectId, Bson, Document, RawDocumentBuf};
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
    if !source.options.partition_rows_given && !ranges_use_an_index(source, &table.name).await {
        tracing::info!(
            collection = %table.name,
            "the server plans _id range reads as collection scans, so the collection is read in \
             one stream (set --partition-rows to split it anyway)"
        );
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

/// Whether the server plans an `_id` range read of collection `name` with an index (`explain`,
/// which plans without running): where it plans a collection scan instead, every range partition
/// would read the whole collection. An `explain` that fails says nothing: ranges are used.
async fn ranges_use_an_index(source: &MongoSource, name: &str) -> bool {
    let probe = doc! {
        "explain": {"find": name, "filter": {"_id": {"$gte": ObjectId::from_bytes([0; 12])}}},
        "verbosity": "queryPlanner",
    };
    let Ok(reply) = source.db.run_command(probe).await else {
        return true;
    };
    let Ok(plan) = reply
        .get_document("queryPlanner")
        .and_then(|q| q.get_document("winningPlan"))
    else {
        return true;
    };
    !scans_collection(plan)
}

/// Whether a winning plan reads the whole collection: a `COLLSCAN` and no index stage.
fn scans_collection(plan: &Document) -> bool {
    let mut stages = Vec::new();
    plan_stages(plan, &mut stages);
    let indexed = |s: &&str| s.contains("IXSCAN") || *s == "IDHACK" || s.starts_with("EXPRESS");
    stages.contains(&"COLLSCAN") && !stages.iter().any(indexed)
}

/// Every `stage` name in a plan (stages nest in `inputStage(s)`, `queryPlan`, `shards`, …).
fn plan_stages<'a>(plan: &'a Document, out: &mut Vec<&'a str>) {
    for (key, value) in plan {
        match value {
            Bson::String(stage) if key == "stage" => out.push(stage),
            Bson::Document(d) => plan_stages(d, out),
            Bson::Array(items) => {
                for item in items {
                    if let Bson::Document(d) = item {
                        plan_stages(d, out);
                    }
                }
            }
            _ => {}
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plan_without_an_index_stage_scans_the_collection() {
        let collscan = doc! {"stage": "COLLSCAN", "direction": "forward"};
        let fetch = doc! {"stage": "FETCH", "inputStage": {"stage": "IXSCAN", "indexName": "_id_"}};
        let sbe = doc! {"queryPlan": {"stage": "FETCH", "inputStage": {"stage": "IXSCAN"}}};
        let clustered = doc! {"stage": "CLUSTERED_IXSCAN"};
        let sharded = doc! {"stage": "SHARD_MERGE", "shards": [
            {"winningPlan": {"stage": "SHARDING_FILTER", "inputStage": {"stage": "COLLSCAN"}}},
        ]};
        assert!(scans_collection(&collscan));
        assert!(scans_collection(&sharded));
        for plan in [fetch, sbe, clustered, doc! {"stage": "EXPRESS_IXSCAN"}] {
            assert!(!scans_collection(&plan), "{plan}");
        }
    }
}
