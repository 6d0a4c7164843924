//! Reading a partition: a task borrows a snapshot connection, runs the partition's `SELECT` as a
//! prepared statement (binary protocol: typed values), appends each row to reused Arrow builders
//! and sends a batch every `batch_rows` rows or `batch_bytes` bytes over a bounded channel
//! (capacity 2), so memory stays flat whatever the table's size.
//!
//! Tables without a usable key get a hidden `id` column in JSONB mode: a 128-bit hash of the
//! row's values, with `-2`, `-3`, … appended for further copies of an identical row.

use crate::batch::Batches;
use crate::catalog::ident;
use crate::error::mysql;
use crate::partition::Bounds;
use crate::snapshot::Snapshot;
use crate::types::Conv;
use futures::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::Value;
use pipeline::{BatchStream, Error, Partition, Result, SourceOptions, TableInfo};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Batches buffered between the reader task and the consumer.
const CHANNEL_BATCHES: usize = 2;

/// The hidden column identifying rows of tables without a usable key (JSONB mode).
pub const ROW_HASH_COLUMN: &str = "seren:row_hash";

/// What a reader needs to know about its table.
pub(crate) struct ReadPlan {
    pub db: String,
    pub table: TableInfo,
    /// Conversion per schema field; `None` for the hidden row-hash column.
    pub convs: Vec<Option<Conv>>,
}

/// Start reading `partition` on a connection of `snapshot`.
pub(crate) fn open(
    snapshot: Arc<Snapshot>,
    plan: ReadPlan,
    partition: &Partition,
    options: &SourceOptions,
) -> Result<BatchStream> {
    let bounds: Bounds = partition.bounds_as("mysql")?;
    let table = &plan.table;
    let select: Vec<String> = table
        .schema
        .fields()
        .iter()
        .zip(&plan.convs)
        .filter_map(|(f, c)| c.map(|c| c.select(f.name())))
        .collect();
    let order = match &bounds.column {
        Some(c) => format!(" ORDER BY {}", ident(c)),
        None => String::new(),
    };
    let sql = format!(
        "SELECT {} FROM {}.{}{}{order}",
        if select.is_empty() {
            "1".to_string()
        } else {
            select.join(", ")
        },
        ident(&plan.db),
        ident(&table.name),
        bounds.where_clause()
    );
    let context = format!(
        "reading table `{}` partition {}/{} ({})",
        table.name,
        partition.index + 1,
        partition.count,
        partition.description
    );
    let convs: Vec<Conv> = plan.convs.iter().map(|c| c.unwrap_or(Conv::Text)).collect();
    let hashed = plan.convs.iter().any(Option::is_none);
    let mut batches = Batches::new(
        table.schema.clone(),
        convs,
        options.batch_rows,
        options.batch_bytes,
    );
    batches.reject_zero_dates = options.zero_dates == pipeline::ZeroDates::Error;
    let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
    let name = table.name.clone();
    tokio::spawn(async move {
        let reader = Reader {
            batches,
            hashed,
            seen: HashMap::new(),
            table: name,
        };
        if let Err(e) = reader.run(&snapshot, &sql, &tx).await {
            let _ = tx.send(Err(e.context(&context))).await;
        }
    });
    Ok(tokio_stream(rx))
}

fn tokio_stream(mut rx: mpsc::Receiver<Result<arrow_array::RecordBatch>>) -> BatchStream {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

struct Reader {
    batches: Batches,
    /// Whether the last column is the hidden row hash.
    hashed: bool,
    /// Copies seen per row hash (tables without a key only).
    seen: HashMap<u128, u32>,
    table: String,
}

impl Reader {
    async fn run(
        mut self,
        snapshot: &Arc<Snapshot>,
        sql: &str,
        tx: &mpsc::Sender<Result<arrow_array::RecordBatch>>,
    ) -> Result<()> {
        let mut lease = snapshot.lease().await?;
        let mut result = match lease.conn().exec_iter(sql, ()).await {
            Ok(result) => result,
            Err(e) => {
                lease.lose();
                return Err(mysql(e, "running the query"));
            }
        };
        let mut row_number = 0u64;
        loop {
            let row = match result.next().await {
                Ok(Some(row)) => row,
                Ok(None) => break,
                Err(e) => {
                    drop(result);
                    lease.lose();
                    return Err(mysql(e, "reading a row"));
                }
            };
            let mut values = row.unwrap();
            if self.hashed {
                let id = row_id(&mut self.seen, &values);
                values.push(Value::Bytes(id.into_bytes()));
            }
            if let Err((column, problem)) = self.batches.push_row(values) {
                drop(result);
                lease.lose();
                let name = self.batches.column_name(column);
                return Err(Error::conversion(format!(
                    "table `{}`, column `{name}`, row {row_number}: {problem}",
                    self.table
                )));
            }
            row_number += 1;
            if self.batches.full() && tx.send(self.batches.finish()).await.is_err() {
                drop(result);
                lease.lose(); // nobody listens: the copy was cancelled
                return Ok(());
            }
        }
        drop(result);
        drop(lease);
        if self.batches.zero_dates > 0 {
            tracing::warn!(
                table = %self.table,
                zero_dates = self.batches.zero_dates,
                "zero dates (0000-00-00) written as NULL"
            );
        }
        if self.batches.rows > 0 {
            let _ = tx.send(self.batches.finish()).await;
        }
        Ok(())
    }
}

/// The hidden id of a row without a key: its hash in hex, `-N` for the N-th identical copy.
pub(crate) fn row_id(seen: &mut HashMap<u128, u32>, values: &[Value]) -> String {
    let hash = row_hash(values);
    let copies = seen.entry(hash).or_insert(0);
    *copies += 1;
    match *copies {
        1 => format!("{hash:032x}"),
        n => format!("{hash:032x}-{n}"),
    }
}

/// FNV-1a (128-bit) over a self-delimiting encoding of the values: stable across runs and
/// versions, so binlog changes find the rows the snapshot wrote.
pub(crate) fn row_hash(values: &[Value]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let mut h = OFFSET;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u128::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    };
    for v in values {
        match v {
            Value::NULL => eat(&[0]),
            Value::Bytes(b) => {
                eat(&[1]);
                eat(&(b.len() as u64).to_le_bytes());
                eat(b);
            }
            Value::Int(i) => {
                eat(&[2]);
                eat(&i.to_le_bytes());
            }
            Value::UInt(u) => match i64::try_from(*u) {
                Ok(i) => {
                    eat(&[2]);
                    eat(&i.to_le_bytes());
                }
                Err(_) => {
                    eat(&[6]);
                    eat(&u.to_le_bytes());
                }
            },
            Value::Float(f) => {
                eat(&[3]);
                eat(&f64::from(*f).to_bits().to_le_bytes());
            }
            Value::Double(f) => {
                eat(&[3]);
                eat(&f.to_bits().to_le_bytes());
            }
            Value::Date(y, mo, d, h, mi, s, us) => {
                eat(&[4]);
                eat(&y.to_le_bytes());
                eat(&[*mo, *d, *h, *mi, *s]);
                eat(&us.to_le_bytes());
            }
            Value::Time(neg, d, h, m, s, us) => {
                eat(&[5, u8::from(*neg)]);
                eat(&d.to_le_bytes());
                eat(&[*h, *m, *s]);
                eat(&us.to_le_bytes());
            }
        }
    }
    h
}
