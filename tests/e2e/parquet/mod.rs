//! Parquet → PostgreSQL (`init --source *.parquet`) and `export` to Parquet, against the
//! per-binary PostgreSQL cluster. Parquet files are written in the tests by the `parquet` crate.

mod export;
mod source;

use ::parquet::arrow::ArrowWriter;
use ::parquet::file::properties::WriterProperties;
use arrow_array::RecordBatch;
use std::path::Path;

/// Write `batch` to `path` with at most `group_rows` rows per row group.
pub fn write_parquet(path: &Path, batch: &RecordBatch, group_rows: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(group_rows))
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
}

/// `format_type` of every column of `table` in `db`, in order.
pub fn column_types(db: &str, table: &str) -> String {
    crate::harness::psql(
        db,
        &format!(
            "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || \
             CASE WHEN attnotnull THEN ' not null' ELSE '' END, ', ' ORDER BY attnum) \
             FROM pg_attribute WHERE attrelid = '{table}'::regclass AND attnum > 0 \
             AND NOT attisdropped"
        ),
    )
}
