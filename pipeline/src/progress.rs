//! Counters the pipeline updates as it goes and a front end reads (a terminal bar, JSON lines).

use serde::Serialize;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// Where one table is in its copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TableState {
    /// Not started.
    Pending,
    /// Rows are being copied.
    Copying,
    /// Rows are in; indexes and constraints are being built.
    Finishing,
    /// Complete.
    Done,
    /// Failed; nothing of it was made visible.
    Failed,
}

/// Live counters of one table.
#[derive(Debug)]
pub struct TableProgress {
    /// Source table name.
    pub name: String,
    /// Rows expected (from the plan).
    pub rows_expected: u64,
    rows: AtomicU64,
    bytes: AtomicU64,
    state: AtomicU8,
}

impl TableProgress {
    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }
    /// Encoded bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
    /// Current state.
    pub fn state(&self) -> TableState {
        match self.state.load(Ordering::Relaxed) {
            0 => TableState::Pending,
            1 => TableState::Copying,
            2 => TableState::Finishing,
            3 => TableState::Done,
            _ => TableState::Failed,
        }
    }
    pub(crate) fn add(&self, rows: u64, bytes: u64) {
        self.rows.fetch_add(rows, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    /// Take back what a failed attempt of a partition had counted.
    pub(crate) fn sub(&self, rows: u64, bytes: u64) {
        self.rows.fetch_sub(rows, Ordering::Relaxed);
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
    }
    pub(crate) fn set_state(&self, state: TableState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }
}

/// Progress of a whole run.
#[derive(Debug)]
pub struct Progress {
    /// One entry per table, in plan order.
    pub tables: Vec<TableProgress>,
    started: Instant,
}

impl Progress {
    /// Counters for tables `(name, rows expected)`.
    pub fn new(tables: impl IntoIterator<Item = (String, u64)>) -> Self {
        Progress {
            tables: tables
                .into_iter()
                .map(|(name, rows_expected)| TableProgress {
                    name,
                    rows_expected,
                    rows: AtomicU64::new(0),
                    bytes: AtomicU64::new(0),
                    state: AtomicU8::new(TableState::Pending as u8),
                })
                .collect(),
            started: Instant::now(),
        }
    }

    /// The counters of table `name`.
    pub fn table(&self, name: &str) -> Option<&TableProgress> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// A consistent-enough view of the totals for display.
    pub fn snapshot(&self) -> ProgressSnapshot {
        let rows = self.tables.iter().map(|t| t.rows()).sum();
        let bytes = self.tables.iter().map(|t| t.bytes()).sum();
        let rows_expected = self.tables.iter().map(|t| t.rows_expected).sum();
        let elapsed = self.started.elapsed();
        let rate = rows as f64 / elapsed.as_secs_f64().max(1e-3);
        let eta = (rate > 0.0 && rows_expected > rows)
            .then(|| Duration::from_secs_f64((rows_expected - rows) as f64 / rate));
        ProgressSnapshot {
            rows,
            bytes,
            rows_expected,
            elapsed,
            rows_per_sec: rate,
            eta,
        }
    }
}

/// Totals at one instant.
#[derive(Debug, Clone, Serialize)]
pub struct ProgressSnapshot {
    /// Rows written.
    pub rows: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Rows expected in total.
    pub rows_expected: u64,
    /// Time since the copy started.
    pub elapsed: Duration,
    /// Average rows per second so far.
    pub rows_per_sec: f64,
    /// Estimated time left, once a rate is known.
    pub eta: Option<Duration>,
}
