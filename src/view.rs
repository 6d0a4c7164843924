//! What the user sees: the plan, a live progress bar on a terminal, and the final summary.

use crate::commands::Ui;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pipeline::{Progress, TableOutcome, TableState, TableWork};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

/// Rows per second assumed for the plan's time estimate, before anything is measured: the
/// SQLite → PostgreSQL rates in bench/RESULTS.md (2 cores), rounded down. The GIN index on JSONB
/// documents dominates a JSONB load, so it has its own figure.
pub fn estimated_rows_per_sec(mode: pipeline::Mode, gin: seren_postgres::GinIndex) -> f64 {
    match (mode, gin) {
        (pipeline::Mode::Native, _) => 300_000.0,
        (pipeline::Mode::Jsonb, seren_postgres::GinIndex::None) => 120_000.0,
        (pipeline::Mode::Jsonb, seren_postgres::GinIndex::Path) => 30_000.0,
        (pipeline::Mode::Jsonb, seren_postgres::GinIndex::Full) => 15_000.0,
    }
}

/// `12.3 MB`-style sizes.
pub fn human_bytes(b: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

/// `1,234,567`-style counts.
pub fn human_count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Print the plan as a table (text mode only).
pub fn print_plan(header: &str, work: &[TableWork], warnings: &[String], rows_per_sec: f64) {
    println!("{header}");
    let width = work
        .iter()
        .map(|w| w.table.name.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    println!(
        "  {:<width$}  {:>12}  {:>10}  {:>10}",
        "table", "rows", "size", "partitions"
    );
    // A source that reports rows but no size (some MongoDB-wire servers) leaves the size unknown.
    let unknown = |w: &TableWork| w.table.bytes == 0 && w.table.rows > 0;
    for w in work {
        println!(
            "  {:<width$}  {:>12}  {:>10}  {:>10}",
            w.table.name,
            human_count(w.partitions.iter().map(|p| p.estimated_rows).sum()),
            if unknown(w) {
                "unknown".to_string()
            } else {
                human_bytes(w.table.bytes)
            },
            w.partitions.len()
        );
    }
    let rows: u64 = work
        .iter()
        .flat_map(|w| &w.partitions)
        .map(|p| p.estimated_rows)
        .sum();
    let bytes: u64 = work.iter().map(|w| w.table.bytes).sum();
    let secs = (rows as f64 / rows_per_sec).ceil() as u64;
    println!(
        "  total: {} tables, {} rows, {}; estimated time ~{}s",
        work.len(),
        human_count(rows),
        match (work.iter().any(unknown), bytes) {
            (true, 0) => "size unknown".to_string(),
            (true, _) => format!("{} and tables of unknown size", human_bytes(bytes)),
            (false, _) => human_bytes(bytes),
        },
        secs.max(1)
    );
    for w in warnings {
        println!("  warning: {w}");
    }
}

/// Ask `question` on the terminal; true only for an explicit yes.
pub fn confirm(question: &str) -> bool {
    use std::io::Write;
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Live progress on stderr while the copy runs (terminal only): a total bar (rows, bytes, rate,
/// ETA) and one bar per table in flight. Stops when dropped.
pub struct ProgressView {
    bars: Option<MultiProgress>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ProgressView {
    /// Start drawing `progress` if stderr is a terminal and output is for people.
    pub fn start(progress: Arc<Progress>, ui: &Ui) -> ProgressView {
        if ui.json || ui.quiet || !std::io::stderr().is_terminal() {
            return ProgressView {
                bars: None,
                task: None,
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let style = |t: &str| ProgressStyle::with_template(t).expect("valid template");
        let total = multi.add(ProgressBar::new(progress.snapshot().rows_expected));
        total.set_style(style(
            "total {bar:30} {human_pos}/{human_len} rows  {msg}  {per_sec}  ETA {eta}",
        ));
        let table_style = style("  {prefix:20} {bar:20} {human_pos}/{human_len} rows  {msg}");
        let m = multi.clone();
        let task = tokio::spawn(async move {
            let mut table_bars: Vec<Option<ProgressBar>> = vec![None; progress.tables.len()];
            loop {
                let s = progress.snapshot();
                total.set_position(s.rows);
                total.set_message(human_bytes(s.bytes));
                for (t, slot) in progress.tables.iter().zip(table_bars.iter_mut()) {
                    match (t.state(), slot.as_ref()) {
                        (TableState::Copying | TableState::Finishing, None) => {
                            let b = m.insert_before(&total, ProgressBar::new(t.rows_expected));
                            b.set_style(table_style.clone());
                            b.set_prefix(t.name.clone());
                            *slot = Some(b);
                        }
                        (TableState::Done | TableState::Failed, Some(b)) => {
                            b.finish_and_clear();
                            m.remove(b);
                            *slot = None;
                        }
                        _ => {}
                    }
                    if let Some(b) = slot {
                        b.set_position(t.rows());
                        b.set_message(match t.state() {
                            TableState::Finishing => "building indexes".to_string(),
                            _ => human_bytes(t.bytes()),
                        });
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        ProgressView {
            bars: Some(multi),
            task: Some(task),
        }
    }
}

impl Drop for ProgressView {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if let Some(m) = self.bars.take() {
            let _ = m.clear();
        }
    }
}

/// Print the per-table summary (text mode).
pub fn print_summary(outcomes: &[TableOutcome], seconds: f64, warnings: &[String]) {
    let width = outcomes
        .iter()
        .map(|o| o.table.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    println!(
        "  {:<width$}  {:>12}  {:>10}  {:>8}",
        "table", "rows", "bytes", "seconds"
    );
    for o in outcomes {
        println!(
            "  {:<width$}  {:>12}  {:>10}  {:>8.2}",
            o.table,
            human_count(o.rows),
            human_bytes(o.bytes),
            o.seconds
        );
    }
    let rows: u64 = outcomes.iter().map(|o| o.rows).sum();
    let bytes: u64 = outcomes.iter().map(|o| o.bytes).sum();
    println!(
        "✓ copied {} rows ({}) in {:.2}s: {} rows/s",
        human_count(rows),
        human_bytes(bytes),
        seconds,
        human_count((rows as f64 / seconds.max(1e-3)) as u64)
    );
    for w in warnings {
        println!("  warning: {w}");
    }
}

/// JSON progress lines on stderr (`init --json-progress`): one a second while the copy runs and
/// a last one when dropped. The job server reads them to report a job's progress per database
/// and table; they never carry a connection string.
pub struct JsonProgress {
    last: Option<(Arc<Progress>, String)>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl JsonProgress {
    /// Start printing `progress` of `database` (a name or the source's location), if `enabled`.
    pub fn start(progress: Arc<Progress>, database: &str, enabled: bool) -> JsonProgress {
        if !enabled {
            return JsonProgress {
                last: None,
                task: None,
            };
        }
        let (p, db) = (progress.clone(), database.to_string());
        let task = tokio::spawn(async move {
            loop {
                eprintln!("{}", progress_line(&p, &db));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        JsonProgress {
            last: Some((progress, database.to_string())),
            task: Some(task),
        }
    }
}

impl Drop for JsonProgress {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if let Some((p, db)) = self.last.take() {
            eprintln!("{}", progress_line(&p, &db));
        }
    }
}

/// One progress line: `{"event": "progress", "database", "rows", "rows_expected", "bytes",
/// "tables": [{"table", "state", "rows", "rows_expected", "bytes"}]}`.
pub fn progress_line(progress: &Progress, database: &str) -> serde_json::Value {
    let s = progress.snapshot();
    let tables: Vec<_> = progress
        .tables
        .iter()
        .map(|t| {
            serde_json::json!({
                "table": t.name,
                "state": t.state(),
                "rows": t.rows(),
                "rows_expected": t.rows_expected,
                "bytes": t.bytes(),
            })
        })
        .collect();
    serde_json::json!({
        "event": "progress",
        "database": database,
        "rows": s.rows,
        "rows_expected": s.rows_expected,
        "bytes": s.bytes,
        "tables": tables,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanises_numbers() {
        assert_eq!(human_count(1234567), "1,234,567");
        assert_eq!(human_count(12), "12");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500_000), "1.5 MB");
    }
}
