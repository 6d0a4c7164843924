//! Parquet → PostgreSQL: one generated Parquet file (int64, float64, utf8 with NULLs,
//! timestamp, bool, date, decimal(12,2); snappy, 1M-row row groups) and a CSV file of the same
//! values, loaded into empty databases of a throwaway PostgreSQL by seren-replicator
//! (`--mode native`), by a server-side `COPY t FROM '/path/file.csv' (FORMAT csv)` (no client at
//! all: the lower bound) and by `psql \copy`, in one run.
//!
//! Usage: `seren-bench parquet [ROWS]` (default 5,000,000).

use super::{count_arg, createdb, loadavg, measure, our_binary, print_report, Measure};
use anyhow::Result;
use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array, RecordBatch,
    StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::{Datelike, Timelike};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use seren_replicator::throwaway::ThrowawayPg;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

const TABLE: &str = "events";
const BATCH: u64 = 65_536;
const COLUMNS: &str = "id bigint NOT NULL, amount double precision, name text, at timestamp, \
                       flag boolean, day date, price numeric(12,2)";
/// 2020-01-01 00:00:00 UTC in microseconds; 2000-01-01 in days.
const T0_US: i64 = 1_577_836_800_000_000;
const D0: i32 = 10_957;

struct Row {
    id: i64,
    amount: f64,
    name: Option<String>,
    at_us: i64,
    flag: bool,
    day: i32,
    /// Hundredths.
    price: i128,
}

fn row(i: u64) -> Row {
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    Row {
        id: i as i64,
        amount: i as f64 * 1.000001 + 0.5,
        name: (i % 10 != 0).then(|| format!("name-{}-{:x}", i % 100_000, h >> 36)),
        at_us: T0_US + i as i64 * 1_234_567,
        flag: i % 3 == 0,
        day: D0 + (i % 10_000) as i32,
        price: (h % 100_000_000) as i128,
    }
}

fn write_csv(w: &mut impl Write, r: &Row) -> std::io::Result<()> {
    let at = chrono::DateTime::from_timestamp_micros(r.at_us)
        .expect("in range")
        .naive_utc();
    let day = chrono::NaiveDate::from_num_days_from_ce_opt(r.day + 719_163).expect("in range");
    writeln!(
        w,
        "{},{},{},{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06},{},{:04}-{:02}-{:02},{}.{:02}",
        r.id,
        r.amount,
        r.name.as_deref().unwrap_or(""),
        at.year(),
        at.month(),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.nanosecond() / 1000,
        if r.flag { "t" } else { "f" },
        day.year(),
        day.month(),
        day.day(),
        r.price / 100,
        r.price % 100
    )
}

/// Write `rows` rows to `parquet` and the same values to `csv`.
fn generate(rows: u64, parquet: &Path, csv: &Path) -> Result<()> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("amount", DataType::Float64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        Field::new("flag", DataType::Boolean, true),
        Field::new("day", DataType::Date32, true),
        Field::new("price", DataType::Decimal128(12, 2), true),
    ]));
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut pq =
        ArrowWriter::try_new(std::fs::File::create(parquet)?, schema.clone(), Some(props))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(csv)?);
    let mut start = 0;
    while start < rows {
        let batch: Vec<Row> = (start..(start + BATCH).min(rows)).map(row).collect();
        for r in &batch {
            write_csv(&mut out, r)?;
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(batch.iter().map(|r| r.id))),
            Arc::new(Float64Array::from_iter_values(
                batch.iter().map(|r| r.amount),
            )),
            Arc::new(StringArray::from_iter(
                batch.iter().map(|r| r.name.as_deref()),
            )),
            Arc::new(TimestampMicrosecondArray::from_iter_values(
                batch.iter().map(|r| r.at_us),
            )),
            Arc::new(BooleanArray::from_iter(batch.iter().map(|r| Some(r.flag)))),
            Arc::new(Date32Array::from_iter_values(batch.iter().map(|r| r.day))),
            Arc::new(
                Decimal128Array::from_iter_values(batch.iter().map(|r| r.price))
                    .with_precision_and_scale(12, 2)?,
            ),
        ];
        pq.write(&RecordBatch::try_new(schema.clone(), cols)?)?;
        start += BATCH;
    }
    pq.close()?;
    out.flush()?;
    Ok(())
}

/// `seren-bench parquet [ROWS]`.
pub fn run(arg: Option<&String>) -> Result<()> {
    let rows = count_arg(arg, 5_000_000)?;
    let bin = our_binary()?;
    let dir = tempfile::Builder::new()
        .prefix("seren-bench-parquet.")
        .tempdir_in("/tmp")?;
    // The server reads the CSV file itself, as user postgres.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let pq = dir.path().join(format!("{TABLE}.parquet"));
    let csv = dir.path().join(format!("{TABLE}.csv"));
    eprintln!("generating {rows} rows (Parquet + CSV) …");
    let started = Instant::now();
    generate(rows, &pq, &csv)?;
    let pq_mb = std::fs::metadata(&pq)?.len() as f64 / 1e6;
    let csv_mb = std::fs::metadata(&csv)?.len() as f64 / 1e6;
    eprintln!(
        "generated in {:.1} s: Parquet {pq_mb:.0} MB, CSV {csv_mb:.0} MB",
        started.elapsed().as_secs_f64()
    );

    let pg = ThrowawayPg::start(&["shared_buffers=512MB", "max_wal_size=4GB"])?;
    let (pq_s, csv_s) = (pq.display().to_string(), csv.display().to_string());
    let mut results: Vec<Measure> = Vec::new();
    let mut loads = Vec::new();

    let url = createdb(&pg, "ours_native")?;
    let mut m = measure(
        "seren-replicator --mode native",
        "seren-replicator init --source ./events.parquet --target $PG/ours_native --mode native -y -q",
        Command::new(&bin).args([
            "init", "--source", &pq_s, "--target", &url, "--mode", "native", "-y", "-q",
        ]),
    )?;
    loads.push(format!("ours: {}", loadavg()));
    m.note = super::count_note(&url, TABLE, rows);
    eprintln!("  ours: {:.2} s, {}", m.seconds, m.note);
    results.push(m);

    for (db, label, copy) in [
        (
            "copy_server",
            "server-side COPY FROM 'file.csv'",
            format!("COPY {TABLE} FROM '{csv_s}' (FORMAT csv)"),
        ),
        (
            "psql_copy",
            "psql \\copy FROM file.csv",
            format!("\\copy {TABLE} FROM '{csv_s}' (FORMAT csv)"),
        ),
    ] {
        let url = createdb(&pg, db)?;
        super::psql_query(&url, &format!("CREATE TABLE {TABLE} ({COLUMNS})"))?;
        let mut m = measure(
            label,
            &format!(
                "psql -X -d $PG/{db} -c \"{}\" (table created first: {COLUMNS})",
                copy.replace(&csv_s, "/path/events.csv")
            ),
            Command::new("psql").args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &url,
                "-c",
                &copy,
            ]),
        )?;
        loads.push(format!("{db}: {}", loadavg()));
        m.note = super::count_note(&url, TABLE, rows);
        eprintln!("  {db}: {:.2} s, {}", m.seconds, m.note);
        results.push(m);
    }
    // Same values? Compare a per-row hash of the text form of every row.
    let digest = "SELECT count(*), sum(hashtext(t::text)::numeric) FROM events t";
    let ours = super::psql_query(&pg.url("ours_native"), digest)?;
    let copied = super::psql_query(&pg.url("copy_server"), digest)?;
    let same = if ours == copied {
        format!(
            "rows identical to the CSV COPY (count, Σ hashtext(row::text) = {})",
            ours.trim()
        )
    } else {
        format!(
            "✗ rows differ: ours {} vs COPY {}",
            ours.trim(),
            copied.trim()
        )
    };
    eprintln!("  {same}");
    drop(pg);

    println!(
        "Parquet → PostgreSQL, {rows} rows × 7 columns: Parquet {pq_mb:.0} MB (snappy), the same \
         values as CSV {csv_mb:.0} MB (MB/s below: CSV MB); {same}; load average after each run: {}",
        loads.join("; ")
    );
    print_report(
        "rows",
        rows,
        csv_mb,
        &results,
        "server-side COPY FROM 'file.csv'",
        true,
        serde_json::json!({"parquet_mb": pq_mb, "csv_mb": csv_mb, "loadavg": loads}),
    );
    Ok(())
}
