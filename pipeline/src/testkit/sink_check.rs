//! `assert_sink_conformance`: the sink rules of `connectors/SPEC.md`, checked against a live
//! sink through a probe of what readers of the target see.

use super::memory::{MemorySink, MemoryTable};
use crate::catalog::TableInfo;
use crate::sink::{BatchEncoder, Chunk, PartitionWriter, Sink};
use crate::source::Partition;
use bytes::BytesMut;
use std::sync::Arc;

/// What readers of a sink's target see, for [`assert_sink_conformance`].
#[async_trait::async_trait]
pub trait SinkProbe: Send + Sync {
    /// Rows a reader sees in `table` under its final name, or `None` when no such table exists.
    async fn visible_rows(&self, table: &TableInfo) -> Option<u64>;
}

#[async_trait::async_trait]
impl SinkProbe for MemorySink {
    async fn visible_rows(&self, table: &TableInfo) -> Option<u64> {
        self.tuples(&table.name).map(|t| t.len() as u64)
    }
}

/// Check a sink against the contract, panicking with the table and rule at the first violation.
///
/// `make_sink` gives a sink for a new run on the same target. Two runs:
/// 1. `prepare` with every table; per table `encoder`, two partitions written through
///    concurrent writers and `finish`ed (each must report its row count), plus a third writer
///    that gets every row and is dropped without `finish` (it must leave nothing); the table
///    must not be visible before `finish_table` and must show exactly its rows after; then
///    `finish`.
/// 2. The same tables renamed `<name>_aborted`: `prepare`, one partition finished, one writer
///    dropped mid-way, then `abort`: no table may remain.
pub async fn assert_sink_conformance(
    make_sink: &dyn Fn() -> Arc<dyn Sink>,
    probe: &dyn SinkProbe,
    tables: &[MemoryTable],
) {
    let infos: Vec<TableInfo> = tables.iter().map(MemoryTable::info).collect();
    let sink = make_sink();
    sink.prepare(&infos)
        .await
        .unwrap_or_else(|e| panic!("prepare failed: {e}"));
    for (table, info) in tables.iter().zip(&infos) {
        let name = &info.name;
        let encoder = sink
            .encoder(info)
            .unwrap_or_else(|e| panic!("table {name}: encoder failed: {e}"));
        let rows = table.rows();
        let half = rows / 2;
        let parts = partitions(name, &[(0, half), (half, rows), (0, rows)]);
        let mut writers = Vec::new();
        for p in &parts {
            writers.push(writer(&*sink, info, p).await);
        }
        let discarded = writers.pop().expect("three writers");
        let mut discarded = Some(discarded);
        for (p, mut w) in parts.iter().zip(writers) {
            let (start, end) = bounds(p);
            write(&mut *w, &*encoder, table, start, end).await;
            if let Some(mut d) = discarded.take() {
                write(&mut *d, &*encoder, table, 0, rows).await;
                drop(d); // never finished: its rows must not reach the target
            }
            let got = w.finish().await.unwrap_or_else(|e| {
                panic!("table {name} partition {}: finish failed: {e}", p.index)
            });
            assert_eq!(
                got,
                end - start,
                "table {name} partition {}: finish reports {got} rows",
                p.index
            );
        }
        let before = probe.visible_rows(info).await;
        assert!(
            before.unwrap_or(0) == 0,
            "table {name}: {before:?} rows are visible before finish_table"
        );
        sink.finish_table(info)
            .await
            .unwrap_or_else(|e| panic!("table {name}: finish_table failed: {e}"));
        assert_eq!(
            probe.visible_rows(info).await,
            Some(rows),
            "table {name}: after finish_table the target must show exactly its {rows} rows"
        );
    }
    sink.finish(&infos)
        .await
        .unwrap_or_else(|e| panic!("finish failed: {e}"));

    let aborted: Vec<MemoryTable> = tables
        .iter()
        .map(|t| {
            MemoryTable::new(
                format!("{}_aborted", t.name),
                t.schema.clone(),
                t.batches.clone(),
            )
        })
        .collect();
    let infos: Vec<TableInfo> = aborted.iter().map(MemoryTable::info).collect();
    let sink = make_sink();
    sink.prepare(&infos)
        .await
        .unwrap_or_else(|e| panic!("prepare (second run) failed: {e}"));
    for (table, info) in aborted.iter().zip(&infos) {
        let encoder = sink
            .encoder(info)
            .unwrap_or_else(|e| panic!("encoder failed: {e}"));
        let rows = table.rows();
        let parts = partitions(&info.name, &[(0, rows / 2), (rows / 2, rows)]);
        let mut first = writer(&*sink, info, &parts[0]).await;
        write(&mut *first, &*encoder, table, 0, rows / 2).await;
        first
            .finish()
            .await
            .unwrap_or_else(|e| panic!("table {}: finish failed: {e}", info.name));
        let mut second = writer(&*sink, info, &parts[1]).await;
        write(&mut *second, &*encoder, table, rows / 2, rows).await;
        drop(second);
    }
    sink.abort().await;
    for info in &infos {
        let left = probe.visible_rows(info).await;
        assert_eq!(
            left, None,
            "table {}: abort must leave no table behind",
            info.name
        );
    }
}

/// Partitions of `table` with the given row ranges as bounds.
fn partitions(table: &str, ranges: &[(u64, u64)]) -> Vec<Partition> {
    ranges
        .iter()
        .enumerate()
        .map(|(index, &(start, end))| Partition {
            table: table.to_string(),
            index,
            count: ranges.len(),
            description: format!("rows {start}..{end}"),
            estimated_rows: end - start,
            bounds: serde_json::json!({ "start": start, "end": end }),
        })
        .collect()
}

fn bounds(p: &Partition) -> (u64, u64) {
    let at = |k: &str| p.bounds[k].as_u64().expect("bounds set above");
    (at("start"), at("end"))
}

async fn writer(sink: &dyn Sink, info: &TableInfo, p: &Partition) -> Box<dyn PartitionWriter> {
    sink.writer(info, p).await.unwrap_or_else(|e| {
        panic!(
            "table {} partition {}: writer failed: {e}",
            info.name, p.index
        )
    })
}

/// Encode rows `start..end` of `table` batch by batch and write each as a chunk.
async fn write(
    writer: &mut dyn PartitionWriter,
    encoder: &dyn BatchEncoder,
    table: &MemoryTable,
    start: u64,
    end: u64,
) {
    let mut offset = 0u64;
    for batch in &table.batches {
        let (lo, hi) = (offset, offset + batch.num_rows() as u64);
        offset = hi;
        let (from, to) = (start.max(lo), end.min(hi));
        if from >= to {
            continue;
        }
        let slice = batch.slice((from - lo) as usize, (to - from) as usize);
        let mut out = BytesMut::new();
        encoder
            .encode(&slice, &mut out)
            .unwrap_or_else(|e| panic!("table {}: encode failed: {e}", table.name));
        let chunk = Chunk {
            data: out.freeze(),
            rows: to - from,
        };
        writer
            .write(chunk)
            .await
            .unwrap_or_else(|e| panic!("table {}: write failed: {e}", table.name));
    }
}
