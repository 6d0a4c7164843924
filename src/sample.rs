//! Generated SQLite databases: the demo's sample (several tables, every SQLite type, awkward
//! names and values) and the benchmark's wide table. Deterministic for a given size.

use anyhow::Result;
use rusqlite::{params, Connection};
use std::path::Path;

/// A small deterministic generator (xorshift), so samples are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: i64) -> i64 {
        (self.next() % n as u64) as i64
    }
    fn word(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| (b'a' + self.below(26) as u8) as char)
            .collect()
    }
}

/// Write the demo database to `path`: `customers` (rows/10), `orders` (rows), `Order Items`
/// (a composite-key WITHOUT ROWID table, rows/2), `events` (no primary key, rows/4) and
/// `edge_cases` (NUL text, invalid UTF-8, ±Infinity, -0.0, i64 extremes, unicode, empty values).
pub fn generate_demo(path: &Path, rows: u64) -> Result<()> {
    let mut db = Connection::open(path)?;
    db.execute_batch(
        "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;
         CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE,
             balance REAL, created_at DATETIME, active BOOLEAN, avatar BLOB);
         CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id),
             amount NUMERIC, note TEXT, ordered_on DATE);
         CREATE INDEX orders_by_customer ON orders (customer_id);
         CREATE TABLE \"Order Items\" (order_id INTEGER, line INTEGER, sku TEXT, qty INTEGER,
             PRIMARY KEY (order_id, line)) WITHOUT ROWID;
         CREATE TABLE events (kind TEXT, payload TEXT, at TIMESTAMP);
         CREATE TABLE edge_cases (id INTEGER PRIMARY KEY, label TEXT, value);",
    )?;
    let rows = rows as i64;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let tx = db.transaction()?;
    {
        let customers = (rows / 10).max(1);
        let mut st = tx.prepare("INSERT INTO customers VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?;
        for id in 1..=customers {
            let name = format!("{} {}", rng.word(6), rng.word(8));
            let avatar = (id % 7 == 0).then(|| rng.next().to_le_bytes().to_vec());
            st.execute(params![
                id,
                name,
                format!("user{id}@example.com"),
                (rng.below(10_000_000) as f64) / 100.0 - 1000.0,
                format!(
                    "2024-{:02}-{:02} {:02}:{:02}:{:02}",
                    1 + id % 12,
                    1 + id % 28,
                    id % 24,
                    id % 60,
                    id % 59
                ),
                (id % 3 != 0) as i64,
                avatar,
            ])?;
        }
        let mut st = tx.prepare("INSERT INTO orders VALUES (?1, ?2, ?3, ?4, ?5)")?;
        for id in 1..=rows {
            st.execute(params![
                id,
                1 + rng.below(customers),
                format!("{}.{:02}", rng.below(100_000), rng.below(100)),
                (id % 5 == 0).then(|| format!("note {} — {}", rng.word(12), "ünïcødé ✓")),
                format!("2023-{:02}-{:02}", 1 + id % 12, 1 + id % 28),
            ])?;
        }
        let mut st = tx.prepare("INSERT INTO \"Order Items\" VALUES (?1, ?2, ?3, ?4)")?;
        for i in 0..rows / 2 {
            st.execute(params![
                1 + i / 3,
                i % 3,
                format!("SKU-{}", rng.word(5)),
                1 + rng.below(9)
            ])?;
        }
        let mut st = tx.prepare("INSERT INTO events VALUES (?1, ?2, ?3)")?;
        for i in 0..rows / 4 {
            let kind = ["login", "logout", "purchase", "refund"][(i % 4) as usize];
            st.execute(params![
                kind,
                format!(
                    "{{\"session\":{},\"ok\":{}}}",
                    rng.below(1_000_000),
                    i % 2 == 0
                ),
                format!("2024-03-{:02}T{:02}:00:00", 1 + i % 28, i % 24),
            ])?;
        }
        tx.execute_batch(
            "INSERT INTO edge_cases VALUES
               (1, 'nul in text', 'a' || char(0) || 'b'),
               (2, 'invalid utf-8', CAST(x'C328' AS TEXT)),
               (3, 'blob', x'00FF10'),
               (4, '+infinity', 1e999),
               (5, '-infinity', -1e999),
               (6, 'negative zero', -0.0),
               (7, 'i64 max', 9223372036854775807),
               (8, 'i64 min', -9223372036854775808),
               (9, 'unicode', '日本語 🚀 \"quoted\" \\ backslash'),
               (10, 'empty text', ''),
               (11, 'null', NULL),
               (12, 'real', 0.1);",
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Write the benchmark table `wide` with `rows` rows of 10 columns: an integer key, three
/// integers, two reals, two texts, a timestamp and a short blob.
pub fn generate_wide(path: &Path, rows: u64) -> Result<()> {
    let mut db = Connection::open(path)?;
    db.execute_batch(
        "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;
         CREATE TABLE wide (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER, c INTEGER, x REAL,
             y REAL, s TEXT, t TEXT, at DATETIME, bin BLOB);",
    )?;
    let rows = rows as i64;
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let tx = db.transaction()?;
    {
        let mut st =
            tx.prepare("INSERT INTO wide VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")?;
        for id in 1..=rows {
            st.execute(params![
                id,
                rng.below(1000),
                // Kept under 2^53: pgloader fails on integers beyond its 62-bit fixnums.
                rng.below(1 << 53),
                rng.below(1 << 31),
                rng.next() as f64 / 3.7e15,
                (rng.below(1_000_000) as f64) / 7.0,
                rng.word(12),
                format!("{} {}", rng.word(8), rng.word(16)),
                format!(
                    "2024-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
                    1 + id % 12,
                    1 + id % 28,
                    id % 24,
                    id % 60,
                    id % 59,
                    id % 1_000_000
                ),
                rng.next().to_be_bytes().to_vec(),
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}
