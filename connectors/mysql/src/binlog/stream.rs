//! The binlog change stream: events from a file and offset, rows events decoded into the same
//! Arrow schema and values the snapshot reader produces, grouped per committed transaction
//! (XID, or `COMMIT` for non-transactional tables) with the position after it.
//!
//! MariaDB writes V1 rows events and sends GTIDs as their own event type (decoded by nothing
//! here: positions are file and offset). The stream connection asks for heartbeats, so an idle
//! server still sends something every couple of seconds, and `next` returns an empty set then.

use super::decode::normalize;
use super::Position;
use crate::batch::Batches;
use crate::catalog::Column;
use crate::error::{mysql, source_error};
use crate::read::{row_id, ROW_HASH_COLUMN};
use crate::source::MySqlSource;
use crate::types::Conv;
use futures::StreamExt;
use mysql_async::binlog::events::{EventData, RowsEventData};
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn, OptsBuilder, Value};
use pipeline::{ChangeOp, ChangeSet, ChangeStream, ErrorKind, Result, TableChange, TableInfo};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Heartbeat period asked of the server, in nanoseconds (2 s).
const HEARTBEAT_NANOS: u64 = 2_000_000_000;
/// MariaDB's GTID event, which opens a transaction (mysql_common does not decode it).
const MARIADB_GTID_EVENT: u8 = 162;
/// Longest wait for an event before returning an empty set (the heartbeat should come first).
const IDLE: Duration = Duration::from_secs(5);
/// Transactions touching no streamed table are passed over silently for up to this long, so a
/// busy server's other traffic does not cost one target transaction each.
const QUIET: Duration = Duration::from_secs(1);
/// The largest event the stream accepts: MariaDB writes events of tens of megabytes.
const MAX_PACKET: usize = 1 << 30;

/// How rows of one table are decoded.
struct TableDecoder {
    name: String,
    schema: arrow_schema::SchemaRef,
    columns: Vec<Column>,
    /// Per schema field: the catalog column it reads (`None`: the hidden row hash).
    field_columns: Vec<Option<usize>>,
    convs: Vec<Conv>,
    /// Catalog indexes of the columns identifying a row.
    key: Vec<usize>,
}

impl TableDecoder {
    fn new(info: &TableInfo, columns: Vec<Column>, mode: pipeline::Mode) -> Result<Self> {
        let mut field_columns = Vec::new();
        let mut convs = Vec::new();
        for field in info.schema.fields() {
            match columns.iter().position(|c| c.name == *field.name()) {
                Some(i) => {
                    field_columns.push(Some(i));
                    convs.push(Conv::of(&columns[i], mode));
                }
                None if field.name() == ROW_HASH_COLUMN => {
                    field_columns.push(None);
                    convs.push(Conv::Text);
                }
                None => {
                    return Err(source_error(
                        ErrorKind::Schema,
                        format!(
                            "table `{}` no longer has column `{}`; run init again",
                            info.name,
                            field.name()
                        ),
                    ))
                }
            }
        }
        let key = info
            .primary_key
            .iter()
            .filter_map(|k| columns.iter().position(|c| &c.name == k))
            .collect();
        Ok(TableDecoder {
            name: info.name.clone(),
            schema: info.schema.clone(),
            columns,
            field_columns,
            convs,
            key,
        })
    }

    /// A binlog row image in catalog order, normalized to protocol values.
    fn values(&self, row: mysql_async::binlog::row::BinlogRow) -> Result<Vec<Value>> {
        let raw = row.unwrap();
        if raw.len() != self.columns.len() {
            return Err(source_error(
                ErrorKind::Schema,
                format!(
                    "table `{}` has {} columns in the binlog but {} in the catalog read at \
                     start: its definition changed; run init again",
                    self.name,
                    raw.len(),
                    self.columns.len()
                ),
            ));
        }
        raw.into_iter()
            .zip(&self.columns)
            .map(|(v, c)| {
                let v = Value::try_from(v).map_err(|e| {
                    source_error(
                        ErrorKind::Conversion,
                        format!("table `{}`, column `{}`: {e}", self.name, c.name),
                    )
                })?;
                normalize(c, v).map_err(|p| {
                    source_error(
                        ErrorKind::Conversion,
                        format!("table `{}`, column `{}`: {p}", self.name, c.name),
                    )
                })
            })
            .collect()
    }

    /// A row in schema order (with its hidden hash when the table has one).
    fn schema_row(&self, values: &[Value]) -> Vec<Value> {
        self.field_columns
            .iter()
            .map(|c| match c {
                Some(i) => values[*i].clone(),
                None => Value::Bytes(row_id(&mut HashMap::new(), values).into_bytes()),
            })
            .collect()
    }
}

/// Rows of one table and op, in a transaction not yet committed.
struct Pending {
    table: String,
    op: ChangeOp,
    rows: Vec<Vec<Value>>,
}

/// The open stream.
struct BinlogChanges {
    stream: BinlogStream,
    db: String,
    file: String,
    pos: u64,
    decoders: HashMap<String, TableDecoder>,
    txn: Vec<Pending>,
    in_txn: bool,
    /// When `next` last returned a set.
    returned: Instant,
}

/// Start streaming after `position`.
pub(crate) async fn open(
    source: &MySqlSource,
    position: Position,
    tables: &[TableInfo],
) -> Result<Box<dyn ChangeStream>> {
    let mut decoders = HashMap::new();
    for t in tables {
        let catalog = source.catalog_table(&t.name).await?;
        decoders.insert(
            t.name.clone(),
            TableDecoder::new(t, catalog.columns, source.options.mode)?,
        );
    }
    let what = format!(
        "starting the binlog stream from {}:{}",
        position.file, position.pos
    );
    let opts =
        OptsBuilder::from_opts(source.location.opts().clone()).max_allowed_packet(Some(MAX_PACKET));
    let mut conn = Conn::new(opts).await.map_err(|e| mysql(e, &what))?;
    // MariaDB: real GTID events instead of dummy BEGIN queries (ignored by MySQL).
    let _ = conn.query_drop("SET @mariadb_slave_capability = 4").await;
    conn.query_drop(format!("SET @master_heartbeat_period = {HEARTBEAT_NANOS}"))
        .await
        .map_err(|e| mysql(e, &what))?;
    let server_id = 0x5E00_0000 | (std::process::id() & 0xFFFF);
    let request = BinlogStreamRequest::new(server_id)
        .with_filename(position.file.as_bytes())
        .with_pos(position.pos);
    let stream = conn
        .get_binlog_stream(request)
        .await
        .map_err(|e| mysql(e, &what))?;
    Ok(Box::new(BinlogChanges {
        stream,
        db: source.location.database().to_string(),
        file: position.file,
        pos: position.pos,
        decoders,
        txn: Vec::new(),
        in_txn: false,
        returned: Instant::now(),
    }))
}

impl BinlogChanges {
    fn position(&self) -> serde_json::Value {
        serde_json::json!({"file": self.file, "pos": self.pos})
    }

    /// Nothing more to send now: an idle set at the current position.
    fn idle(&mut self) -> ChangeSet {
        self.returned = Instant::now();
        ChangeSet {
            changes: Vec::new(),
            position: self.position(),
            committed_at_ms: None,
        }
    }

    /// A transaction committed at `log_pos`: its set, unless it touched no streamed table and
    /// one was returned less than `QUIET` ago (it is then passed over, the position moving on).
    fn committed(&mut self, log_pos: u64, timestamp: u32) -> Result<Option<ChangeSet>> {
        self.pos = self.pos.max(log_pos);
        if self.txn.is_empty() && self.returned.elapsed() < QUIET {
            self.in_txn = false;
            return Ok(None);
        }
        self.returned = Instant::now();
        self.commit(timestamp).map(Some)
    }

    /// The committed transaction as a change set.
    fn commit(&mut self, timestamp: u32) -> Result<ChangeSet> {
        let mut changes = Vec::with_capacity(self.txn.len());
        for pending in std::mem::take(&mut self.txn) {
            let decoder = &self.decoders[&pending.table];
            let mut batches = Batches::new(
                decoder.schema.clone(),
                decoder.convs.clone(),
                usize::MAX,
                usize::MAX,
            );
            for (n, row) in pending.rows.into_iter().enumerate() {
                batches.push_row(row).map_err(|(c, p)| {
                    source_error(
                        ErrorKind::Conversion,
                        format!(
                            "table `{}`, column `{}`, changed row {n}: {p}",
                            decoder.name,
                            batches.column_name(c)
                        ),
                    )
                })?;
            }
            changes.push(TableChange {
                table: pending.table,
                op: pending.op,
                rows: batches.finish()?,
            });
        }
        self.in_txn = false;
        Ok(ChangeSet {
            changes,
            position: self.position(),
            committed_at_ms: Some(i64::from(timestamp) * 1000),
        })
    }

    /// Queue one row change.
    fn push(&mut self, table: &str, op: ChangeOp, row: Vec<Value>) {
        match self.txn.last_mut() {
            Some(p) if p.table == table && p.op == op => p.rows.push(row),
            _ => self.txn.push(Pending {
                table: table.to_string(),
                op,
                rows: vec![row],
            }),
        }
    }
}

/// Decode one rows event into (table, op, schema-order row) changes.
fn decode_rows(
    stream: &BinlogStream,
    db: &str,
    decoders: &HashMap<String, TableDecoder>,
    data: &RowsEventData<'_>,
) -> Result<Vec<(String, ChangeOp, Vec<Value>)>> {
    let Some(tme) = stream.get_tme(data.table_id()) else {
        return Err(source_error(
            ErrorKind::Query,
            "a binlog rows event came without its table map; restart sync",
        ));
    };
    if tme.database_name() != db {
        return Ok(Vec::new());
    }
    let Some(decoder) = decoders.get(tme.table_name().as_ref()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for row in data.rows(tme) {
        let (before, after) = row.map_err(|e| {
            source_error(
                ErrorKind::Query,
                format!("decoding a binlog row of table `{}`: {e}", decoder.name),
            )
        })?;
        let before = before.map(|r| decoder.values(r)).transpose()?;
        let after = after.map(|r| decoder.values(r)).transpose()?;
        let name = decoder.name.clone();
        match (before, after) {
            (None, Some(after)) => out.push((name, ChangeOp::Upsert, decoder.schema_row(&after))),
            (Some(before), None) => out.push((name, ChangeOp::Delete, decoder.schema_row(&before))),
            (Some(before), Some(after)) => {
                let moved =
                    decoder.key.is_empty() || decoder.key.iter().any(|&k| before[k] != after[k]);
                if moved {
                    out.push((name.clone(), ChangeOp::Delete, decoder.schema_row(&before)));
                }
                out.push((name, ChangeOp::Upsert, decoder.schema_row(&after)));
            }
            (None, None) => {}
        }
    }
    Ok(out)
}

/// The file a ROTATE event names. mysql_common 0.37.3 leaves the 4 checksum bytes on the name
/// of the artificial ROTATE the server sends first; binlog names end in `.` and digits.
fn rotate_name(raw: &[u8]) -> String {
    let looks_right = |n: &[u8]| {
        let digits = n.iter().rev().take_while(|b| b.is_ascii_digit()).count();
        digits >= 1 && n.len() > digits && n[n.len() - digits - 1] == b'.'
    };
    if !looks_right(raw) && raw.len() > 4 && looks_right(&raw[..raw.len() - 4]) {
        return String::from_utf8_lossy(&raw[..raw.len() - 4]).into_owned();
    }
    String::from_utf8_lossy(raw).into_owned()
}

#[async_trait::async_trait]
impl ChangeStream for BinlogChanges {
    async fn next(&mut self) -> Result<Option<ChangeSet>> {
        loop {
            let event = match tokio::time::timeout(IDLE, self.stream.next()).await {
                Err(_) if !self.in_txn => return Ok(Some(self.idle())),
                Err(_) => continue,
                Ok(None) => {
                    return Err(source_error(
                        ErrorKind::Connect,
                        "the server closed the binlog stream; restart sync to resume from the \
                         last applied position",
                    ))
                }
                Ok(Some(Err(e))) => return Err(mysql(e, "reading the binlog stream")),
                Ok(Some(Ok(event))) => event,
            };
            let header = event.header();
            let log_pos = u64::from(header.log_pos());
            let data = event.read_data().map_err(|e| {
                source_error(
                    ErrorKind::Query,
                    format!("decoding a binlog event at {}:{}: {e}", self.file, log_pos),
                )
            })?;
            if header.event_type_raw() == MARIADB_GTID_EVENT {
                self.in_txn = true;
                continue;
            }
            // Only a position between transactions may be reported, and it only moves forward
            // within a file (the server resends the file's format description first).
            let advance = |this: &mut Self| {
                if !this.in_txn && log_pos != 0 {
                    this.pos = this.pos.max(log_pos);
                }
            };
            match data {
                Some(EventData::RotateEvent(r)) => {
                    self.file = rotate_name(r.name_raw());
                    self.pos = r.position();
                    continue;
                }
                Some(EventData::HeartbeatEvent) if !self.in_txn => return Ok(Some(self.idle())),
                Some(EventData::RowsEvent(rows)) => {
                    self.in_txn = true;
                    let changes = decode_rows(&self.stream, &self.db, &self.decoders, &rows)?;
                    for (table, op, row) in changes {
                        self.push(&table, op, row);
                    }
                }
                Some(EventData::TableMapEvent(_)) => {} // kept by the stream itself
                Some(EventData::XidEvent(_)) => {
                    if let Some(set) = self.committed(log_pos, header.timestamp())? {
                        return Ok(Some(set));
                    }
                }
                Some(EventData::QueryEvent(q)) => match q.query().trim() {
                    "BEGIN" => self.in_txn = true,
                    "COMMIT" => {
                        if let Some(set) = self.committed(log_pos, header.timestamp())? {
                            return Ok(Some(set));
                        }
                    }
                    _ => advance(self),
                },
                _ => advance(self),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::rotate_name;

    #[test]
    fn stray_checksum_bytes_are_cut_from_rotate_names() {
        assert_eq!(rotate_name(b"binlog.000002"), "binlog.000002");
        assert_eq!(
            rotate_name(b"binlog.000002\x9a\x01\xff\x10"),
            "binlog.000002"
        );
    }
}
