//! The change-set applier against a real PostgreSQL, through the library API: hand-built change
//! sets (upserts, deletes, truncate, one key several times in a set, a table without a key)
//! must leave exactly the expected rows and the set's position; a set that fails part-way must
//! leave neither its changes nor its position.

use crate::harness::{fresh_db, psql};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use pipeline::{ChangeOp, ChangeSet, Mode, OnTypeMismatch, Side, TableChange, TableInfo};
use serde_json::json;
use seren_postgres::apply::Applier;
use seren_postgres::ddl::{column_list, layout, qualified};
use seren_postgres::sync_state::{self, Method, SyncKey, SyncState};
use seren_postgres::PgTarget;
use std::collections::BTreeMap;
use std::sync::Arc;

const SCHEMA: &str = "Sync \"Target\"";
const ITEMS: &str = "Items \"q\" é";
const ORDERS: &str = "select";
const LOG: &str = "log";

fn items() -> TableInfo {
    TableInfo {
        name: ITEMS.into(),
        schema: Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
        ])),
        primary_key: vec!["id".into()],
        ..Default::default()
    }
}

fn orders() -> TableInfo {
    TableInfo {
        name: ORDERS.into(),
        schema: Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("Note", DataType::Utf8, true),
            Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        ])),
        primary_key: vec!["id".into()],
        ..Default::default()
    }
}

fn log() -> TableInfo {
    TableInfo {
        name: LOG.into(),
        schema: Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
        ])),
        ..Default::default()
    }
}

fn rows3(t: &TableInfo, ids: &[i64], names: &[Option<&str>], third: ArrayRef) -> RecordBatch {
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.to_vec())),
        Arc::new(StringArray::from(names.to_vec())),
        third,
    ];
    RecordBatch::try_new(t.schema.clone(), cols).unwrap()
}

fn item_rows(rows: &[(i64, &str, i64)]) -> RecordBatch {
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let names: Vec<Option<&str>> = rows.iter().map(|r| Some(r.1)).collect();
    let n = Arc::new(Int64Array::from(
        rows.iter().map(|r| r.2).collect::<Vec<_>>(),
    ));
    rows3(&items(), &ids, &names, n)
}

fn item_keys(ids: &[i64]) -> RecordBatch {
    let names = vec![None; ids.len()];
    let n = Arc::new(Int64Array::from(vec![None::<i64>; ids.len()]));
    rows3(&items(), ids, &names, n)
}

fn order_rows(rows: &[(i64, &str, i64)]) -> RecordBatch {
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let names: Vec<Option<&str>> = rows.iter().map(|r| Some(r.1)).collect();
    let at = Arc::new(TimestampMicrosecondArray::from(
        rows.iter().map(|r| r.2).collect::<Vec<_>>(),
    ));
    rows3(&orders(), &ids, &names, at)
}

fn log_rows(rows: &[(i64, &str)]) -> RecordBatch {
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        )),
    ];
    RecordBatch::try_new(log().schema.clone(), cols).unwrap()
}

fn change(table: &str, op: ChangeOp, rows: RecordBatch) -> TableChange {
    TableChange {
        table: table.into(),
        op,
        rows,
    }
}

fn set(changes: Vec<TableChange>, position: serde_json::Value, at: i64) -> ChangeSet {
    ChangeSet {
        changes,
        position,
        committed_at_ms: Some(at),
    }
}

/// Create `table` as `init` lays it out (with its primary key) in `SCHEMA`.
fn create(db: &str, table: &TableInfo, mode: Mode) {
    let l = layout(table, mode, "test").unwrap();
    let key = match mode {
        Mode::Jsonb => ", PRIMARY KEY (\"id\")".to_string(),
        Mode::Native if table.primary_key.is_empty() => String::new(),
        Mode::Native => format!(", PRIMARY KEY ({})", column_list(&table.primary_key)),
    };
    psql(
        db,
        &format!(
            "CREATE TABLE {} ({}{key})",
            qualified(SCHEMA, &table.name),
            l.definitions.join(", ")
        ),
    );
}

fn key() -> SyncKey {
    SyncKey {
        source_kind: "test".into(),
        source_location: "/tmp/nowhere.db".into(),
        target_schema: SCHEMA.into(),
    }
}

async fn setup(url: &str, db: &str, mode: Mode, tables: &[TableInfo]) -> (PgTarget, Applier) {
    psql(db, "CREATE SCHEMA \"Sync \"\"Target\"\"\"");
    for t in tables {
        create(db, t, mode);
    }
    let target = PgTarget::parse(url, Side::Target).unwrap();
    let client = target.connect().await.unwrap();
    sync_state::ensure_table(&client).await.unwrap();
    let state = SyncState {
        key: key(),
        mode,
        on_type_mismatch: OnTypeMismatch::Fail,
        tables: tables.iter().map(|t| t.name.clone()).collect(),
        filters: BTreeMap::new(),
        flatten: BTreeMap::new(),
        method: Method::ChangeCapture,
        position: Some(json!({"n": 0})),
        last_applied_at: None,
        last_commit_at: None,
        caught_up_at: None,
        last_refresh_at: None,
    };
    sync_state::save(&client, &state).await.unwrap();
    let applier = Applier::new(&target, key(), mode, tables).await.unwrap();
    (target, applier)
}

fn stored_position(db: &str) -> String {
    psql(
        db,
        "SELECT position::text || ' ' || coalesce(extract(epoch FROM last_commit_at)::bigint::text, '-') \
         FROM seren_replicator.source_sync",
    )
}

fn q(table: &str) -> String {
    qualified(SCHEMA, table)
}

#[tokio::test]
async fn jsonb_upserts_deletes_and_repeated_keys() {
    let (url, db) = fresh_db();
    let (_target, mut applier) = setup(&url, &db, Mode::Jsonb, &[items()]).await;
    let first = set(
        vec![
            change(
                ITEMS,
                ChangeOp::Upsert,
                item_rows(&[(1, "a", 10), (2, "b", 20), (1, "a2", 11)]),
            ),
            change(ITEMS, ChangeOp::Delete, item_keys(&[2])),
            change(
                ITEMS,
                ChangeOp::Upsert,
                item_rows(&[(3, "c", 30), (2, "b2", 21)]),
            ),
            change(ITEMS, ChangeOp::Delete, item_keys(&[3])),
            change(ITEMS, ChangeOp::Upsert, item_rows(&[(3, "c2", 31)])),
        ],
        json!({"n": 1}),
        1_700_000_000_000,
    );
    let counts = applier.apply(&[first], false).await.unwrap();
    // Inserted: 1 and 2, then 3 and 2 again, then 3 again; deleted: 2, then 3.
    assert_eq!((counts.inserted, counts.updated, counts.deleted), (5, 0, 2));
    let table = q(ITEMS);
    let all = format!(
        "SELECT string_agg(id || ':' || (data->>'name') || ':' || (data->>'n') || ':' || _source_type, ' ' ORDER BY id) FROM {table}"
    );
    assert_eq!(psql(&db, &all), "1:a2:11:test 2:b2:21:test 3:c2:31:test");
    assert_eq!(stored_position(&db), "{\"n\": 1} 1700000000");

    let stamps = format!("SELECT string_agg(id || '=' || extract(epoch FROM _migrated_at), ' ' ORDER BY id) FROM {table}");
    let before = psql(&db, &stamps);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = set(
        vec![change(
            ITEMS,
            ChangeOp::Upsert,
            item_rows(&[(3, "c2", 31), (1, "a3", 12)]),
        )],
        json!({"n": 2}),
        1_700_000_100_000,
    );
    let counts = applier.apply(&[second], false).await.unwrap();
    assert_eq!((counts.inserted, counts.updated, counts.deleted), (0, 1, 0));
    assert_eq!(psql(&db, &all), "1:a3:12:test 2:b2:21:test 3:c2:31:test");
    let after = psql(&db, &stamps);
    let (b, a): (Vec<&str>, Vec<&str>) = (before.split(' ').collect(), after.split(' ').collect());
    assert_ne!(a[0], b[0], "changed row 1 gets a new _migrated_at");
    assert_eq!(&a[1..], &b[1..], "unchanged rows keep _migrated_at");
    assert_eq!(stored_position(&db), "{\"n\": 2} 1700000100");
}

#[tokio::test]
async fn native_truncate_keyless_tables_and_failure_rolls_back() {
    let (url, db) = fresh_db();
    let (_target, mut applier) = setup(&url, &db, Mode::Native, &[orders(), log()]).await;
    let t0 = 1_700_000_000_000_000i64; // 2023-11-14 22:13:20 UTC, in microseconds
    let first = set(
        vec![
            change(
                ORDERS,
                ChangeOp::Upsert,
                order_rows(&[(1, "one", t0), (2, "two", t0)]),
            ),
            change(ORDERS, ChangeOp::Truncate, order_rows(&[])),
            change(
                ORDERS,
                ChangeOp::Upsert,
                order_rows(&[(3, "three", t0), (3, "drei", t0 + 1)]),
            ),
            change(
                LOG,
                ChangeOp::Upsert,
                log_rows(&[(1, "x"), (1, "x"), (2, "y"), (3, "z")]),
            ),
        ],
        json!({"file": "bin.1", "pos": 100}),
        1_700_000_000_000,
    );
    let counts = applier.apply(&[first], false).await.unwrap();
    assert_eq!(counts.truncated, 1);
    let orders_sql = format!(
        "SELECT string_agg(id || ':' || \"Note\" || ':' || \"at\", ' ' ORDER BY id) FROM {}",
        q(ORDERS)
    );
    assert_eq!(psql(&db, &orders_sql), "3:drei:2023-11-14 22:13:20.000001");
    let log_sql = format!(
        "SELECT string_agg(a || b, ' ' ORDER BY a, b) FROM {}",
        q(LOG)
    );
    assert_eq!(psql(&db, &log_sql), "1x 1x 2y 3z");

    // Keyless: each delete row removes one equal row; an update is a delete plus an upsert.
    let second = set(
        vec![
            change(LOG, ChangeOp::Delete, log_rows(&[(1, "x"), (3, "z")])),
            change(LOG, ChangeOp::Upsert, log_rows(&[(3, "zz")])),
            change(ORDERS, ChangeOp::Upsert, order_rows(&[(3, "three", t0)])),
        ],
        json!({"file": "bin.1", "pos": 200}),
        1_700_000_001_000,
    );
    let counts = applier.apply(&[second], false).await.unwrap();
    assert_eq!((counts.inserted, counts.updated, counts.deleted), (1, 1, 2));
    assert_eq!(psql(&db, &log_sql), "1x 2y 3zz");
    assert_eq!(psql(&db, &orders_sql), "3:three:2023-11-14 22:13:20");
    assert_eq!(
        stored_position(&db),
        "{\"pos\": 200, \"file\": \"bin.1\"} 1700000001"
    );

    // A set whose second entry cannot be written: nothing of it lands, the position stays.
    let bad = set(
        vec![
            change(ORDERS, ChangeOp::Upsert, order_rows(&[(4, "four", t0)])),
            change(LOG, ChangeOp::Delete, log_rows(&[(2, "y")])),
            change(
                ORDERS,
                ChangeOp::Upsert,
                order_rows(&[(5, "ancient", i64::MIN + 1)]),
            ),
        ],
        json!({"file": "bin.1", "pos": 300}),
        1_700_000_002_000,
    );
    let err = applier.apply(&[bad], false).await.unwrap_err();
    assert!(err.to_string().contains(ORDERS), "{err}");
    assert_eq!(psql(&db, &orders_sql), "3:three:2023-11-14 22:13:20");
    assert_eq!(psql(&db, &log_sql), "1x 2y 3zz");
    assert_eq!(
        stored_position(&db),
        "{\"pos\": 200, \"file\": \"bin.1\"} 1700000001"
    );

    // The applier keeps working after a failed set.
    let next = set(
        vec![change(ORDERS, ChangeOp::Delete, order_rows(&[(3, "", 0)]))],
        json!({"file": "bin.1", "pos": 400}),
        1_700_000_003_000,
    );
    applier.apply(&[next], true).await.unwrap();
    assert_eq!(
        psql(&db, &format!("SELECT count(*) FROM {}", q(ORDERS))),
        "0"
    );
    assert_eq!(
        psql(
            &db,
            "SELECT caught_up_at IS NOT NULL FROM seren_replicator.source_sync"
        ),
        "t"
    );
}
