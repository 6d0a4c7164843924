//! Planning and reading partitions: rowid ranges that cover every row exactly once, filters,
//! batch bounds, and readers that stop when their stream is dropped.

use crate::support::*;
use futures::StreamExt;
use pipeline::{ErrorKind, Mode, SourceOptions};
use seren_sqlite::ROWID_COLUMN;
use std::collections::BTreeSet;

/// A table of `n` rows without a primary key, at rowids `rowid(i)`.
fn numbered(n: i64, rowid: impl Fn(i64) -> i64) -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, path) = db("CREATE TABLE t (n INTEGER, s TEXT);");
    let mut c = rusqlite::Connection::open(&path).unwrap();
    let tx = c.transaction().unwrap();
    {
        let mut st = tx
            .prepare("INSERT INTO t (rowid, n, s) VALUES (?1, ?2, 'x')")
            .unwrap();
        for i in 1..=n {
            st.execute([rowid(i), i]).unwrap();
        }
    }
    tx.commit().unwrap();
    (dir, path)
}

#[tokio::test]
async fn a_big_table_splits_into_partitions_that_cover_every_row_once() {
    // Sparse rowids with a huge jump: an even split of [min, max] would be badly skewed.
    let (_dir, path) = numbered(300_000, |i| {
        if i <= 150_000 {
            i * 3
        } else {
            i * 3 + (1 << 40)
        }
    });
    let opts = SourceOptions {
        partition_rows: 100_000,
        ..options(Mode::Jsonb)
    };
    let source = open(&path, &opts).await;
    let info = source.describe("t").await.unwrap();
    assert_eq!(info.rows, 300_000);
    let partitions = source.plan(&info, None).await.unwrap();
    assert_eq!(partitions.len(), 3);
    let mut seen = BTreeSet::new();
    for (i, p) in partitions.iter().enumerate() {
        assert_eq!((p.index, p.count, p.table.as_str()), (i, 3, "t"));
        assert_eq!(p.estimated_rows, 100_000, "{}", p.description);
        let batches = read_partition(&*source, &info, p).await;
        assert!(batches.iter().all(|b| b.num_rows() <= opts.batch_rows));
        let rowids = ints(&batches, ROWID_COLUMN);
        assert_eq!(rowids.len(), 100_000, "{}: exact quantiles", p.description);
        assert!(
            rowids.windows(2).all(|w| w[0] < w[1]),
            "rowid order within a partition"
        );
        for r in rowids {
            assert!(seen.insert(r.unwrap()), "rowid {r:?} read twice");
        }
    }
    let expected: BTreeSet<i64> = (1..=300_000)
        .map(|i| {
            if i <= 150_000 {
                i * 3
            } else {
                i * 3 + (1 << 40)
            }
        })
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(partitions[0].description, "rowid 3..300000");
    assert_eq!(
        partitions[1].description,
        format!("rowid 300001..{}", 600_000 + (1i64 << 40))
    );
}

#[tokio::test]
async fn contiguous_rowids_split_evenly_and_ends_stay_open() {
    let (_dir, path) = numbered(1000, |i| i);
    let opts = SourceOptions {
        partition_rows: 300,
        batch_rows: 64,
        ..options(Mode::Jsonb)
    };
    let source = open(&path, &opts).await;
    let info = source.describe("t").await.unwrap();
    let partitions = source.plan(&info, None).await.unwrap();
    let sizes: Vec<u64> = partitions.iter().map(|p| p.estimated_rows).collect();
    assert_eq!(sizes, [250, 250, 250, 250]);
    let descriptions: Vec<_> = partitions.iter().map(|p| p.description.as_str()).collect();
    assert_eq!(
        descriptions,
        [
            "rowid 1..250",
            "rowid 251..500",
            "rowid 501..750",
            "rowid 751..1000"
        ]
    );
    // Rows added after planning, below and above the planned range, still land in a partition.
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch("INSERT INTO t (rowid, n) VALUES (-5, 0), (5000, 0);")
        .unwrap();
    drop(c);
    let mut all = Vec::new();
    for p in &partitions {
        let batches = read_partition(&*source, &info, p).await;
        assert!(batches.iter().all(|b| b.num_rows() <= 64));
        all.extend(ints(&batches, ROWID_COLUMN).into_iter().map(Option::unwrap));
    }
    let expected: Vec<i64> = std::iter::once(-5).chain(1..=1000).chain([5000]).collect();
    assert_eq!(all, expected);
}

#[tokio::test]
async fn the_filter_selects_rows_in_every_partition() {
    let (_dir, path) = numbered(10_000, |i| i);
    let opts = SourceOptions {
        partition_rows: 1000,
        ..options(Mode::Native)
    };
    let source = open(&path, &opts).await;
    let (_, partitions, batches) = read_table(&*source, "t", Some("n % 3 = 0 OR s IS NULL")).await;
    assert_eq!(
        partitions.len(),
        4,
        "3333 matching rows in partitions of 1000"
    );
    assert_eq!(
        partitions.iter().map(|p| p.estimated_rows).sum::<u64>(),
        3333
    );
    let got = ints(&batches, "n");
    let want: Vec<_> = (1..=10_000).filter(|n| n % 3 == 0).map(Some).collect();
    assert_eq!(got, want);
    let bounds = partitions[1].bounds.to_string();
    assert!(bounds.contains("n % 3 = 0 OR s IS NULL"), "{bounds}");
}

#[tokio::test]
async fn a_filter_sqlite_rejects_is_a_config_error_naming_the_table() {
    let (_dir, path) = numbered(10, |i| i);
    let source = open(&path, &options(Mode::Jsonb)).await;
    let info = source.describe("t").await.unwrap();
    for filter in ["no_such_col = 1", "n = = 1", "1; DELETE FROM t"] {
        let e = source.plan(&info, Some(filter)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{filter}: {e}");
        assert!(e.to_string().contains("table \"t\""), "{e}");
        assert!(e.to_string().contains(filter), "{e}");
    }
    let e = source
        .plan(&info, Some("no_such_col = 1"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no such column: no_such_col"), "{e}");
    let (_, _, batches) = read_table(&*source, "t", None).await;
    assert_eq!(rows(&batches), 10, "nothing was deleted");
}

#[tokio::test]
async fn batches_are_bounded_by_bytes() {
    let (_dir, path) = db("CREATE TABLE b (id INTEGER PRIMARY KEY, data BLOB);
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 20)
         INSERT INTO b SELECT i, randomblob(100000) FROM s;");
    let opts = SourceOptions {
        batch_bytes: 250_000,
        ..options(Mode::Native)
    };
    let source = open(&path, &opts).await;
    let (_, _, batches) = read_table(&*source, "b", None).await;
    assert_eq!(rows(&batches), 20);
    assert!(
        batches.iter().all(|b| b.num_rows() <= 3),
        "{:?}",
        batches.iter().map(|b| b.num_rows()).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn dropping_the_stream_stops_the_reader_and_releases_the_file() {
    let (_dir, path) = numbered(200_000, |i| i);
    let opts = SourceOptions {
        batch_rows: 1000,
        ..options(Mode::Jsonb)
    };
    let source = open(&path, &opts).await;
    let info = source.describe("t").await.unwrap();
    let partition = &source.plan(&info, Some("n > 0")).await.unwrap()[0];
    let mut stream = source.open(&info, partition).await.unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap().num_rows(), 1000);
    drop(stream);
    // A reader still stepping would hold a shared lock and make this write wait and fail.
    let writer = rusqlite::Connection::open(&path).unwrap();
    writer
        .busy_timeout(std::time::Duration::from_secs(3))
        .unwrap();
    writer.execute("DELETE FROM t WHERE n > 100", []).unwrap();
}
