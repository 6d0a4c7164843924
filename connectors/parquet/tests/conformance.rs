//! The Parquet source against the conformance kit (`pipeline::testkit`), in both modes: the kit's
//! fixture tables written as Parquet files (several small row groups, one table in two files).

use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use pipeline::testkit::{assert_source_conformance, fixtures, MemoryTable};
use pipeline::{Mode, SourceOptions};
use seren_parquet::ParquetFactory;
use std::path::Path;

/// Write `batches` of `table` to `path` in row groups of at most 3 rows.
fn write(path: &Path, table: &MemoryTable, batches: &[arrow_array::RecordBatch]) {
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(3))
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(file, table.schema.clone(), Some(props))
        .unwrap_or_else(|e| panic!("table {}: {e}", table.name));
    for b in batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
}

fn options(mode: Mode) -> SourceOptions {
    SourceOptions {
        mode,
        partition_rows: 2,
        batch_rows: 2,
        ..SourceOptions::default()
    }
}

#[tokio::test]
async fn parquet_source_conforms_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    // Parquet has no negative decimal scale, so the decimal fixture (scale -3 among others)
    // cannot be written as a file.
    let tables: Vec<MemoryTable> = fixtures::all()
        .into_iter()
        .filter(|t| t.name != "decimals")
        .collect();
    for table in &tables {
        let sub = dir.path().join(&table.name);
        std::fs::create_dir(&sub).unwrap();
        // The first batch in one file, the rest in a second: row numbers run across files.
        let (first, rest) = table.batches.split_at(table.batches.len().min(1));
        write(&sub.join("part-00000.parquet"), table, first);
        if !rest.is_empty() {
            write(&sub.join("part-00001.parquet"), table, rest);
        }
    }
    for mode in [Mode::Jsonb, Mode::Native] {
        let report = assert_source_conformance(
            &ParquetFactory,
            dir.path().to_str().unwrap(),
            &options(mode),
        )
        .await;
        for table in &tables {
            let got = report
                .table(&table.name)
                .unwrap_or_else(|| panic!("{mode:?}: table {} not listed", table.name));
            assert_eq!(got.rows, table.rows(), "{mode:?}: {}", table.name);
            assert!(got.max_batch_rows <= 2, "{mode:?}: {got:?}");
        }
        let ints = report.table("ints").unwrap();
        assert!(ints.partitions > 1, "{mode:?}: row groups split: {ints:?}");
    }
}
