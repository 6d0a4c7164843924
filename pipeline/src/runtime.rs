//! Runs a copy: partitions flow source → bounded channel → rayon encoders → bounded channel →
//! async writer, several partitions at a time, and each table is finished as soon as its last
//! partition is committed (so index builds overlap other tables' copies).
//!
//! The data plane is plain threads joined by `crossbeam-channel`s: a reader thread drives the
//! source's async stream with `Handle::block_on` and hands each batch to the rayon pool as its
//! own encode task, and the lane thread drives the async writer. A fixed number of tokens per
//! partition bounds the batches in flight; no rayon thread ever blocks on a channel, and no
//! blocking channel operation runs on a tokio worker thread.

use crate::catalog::TableInfo;
use crate::error::{Error, ErrorKind, Result};
use crate::progress::{Progress, TableState};
use crate::sink::{BatchEncoder, Chunk, Sink};
use crate::source::{Partition, Source};
use futures::StreamExt;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;

/// Batches buffered between a partition's reader and its encoders.
pub const BATCH_CHANNEL_CAPACITY: usize = 4;
/// Encoded chunks buffered between a partition's encoders and its writer.
pub const CHUNK_CHANNEL_CAPACITY: usize = 4;

/// One table to copy and its plan.
#[derive(Debug, Clone)]
pub struct TableWork {
    /// The table, as the source describes it.
    pub table: TableInfo,
    /// Its partitions (at least one).
    pub partitions: Vec<Partition>,
}

/// Settings of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Partitions copied at once (each holds one source and one target connection).
    pub jobs: usize,
    /// Set to stop the run early; partitions in flight are rolled back.
    pub cancel: Arc<AtomicBool>,
}

/// What happened to one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableOutcome {
    /// Source table name.
    pub table: String,
    /// Rows committed to the target.
    pub rows: u64,
    /// Encoded bytes sent.
    pub bytes: u64,
    /// Wall time from first partition start to table finished.
    pub seconds: f64,
}

struct TableRun {
    work: TableWork,
    encoder: Arc<dyn BatchEncoder>,
    remaining: AtomicUsize,
    rows: std::sync::atomic::AtomicU64,
    started: Mutex<Option<Instant>>,
    elapsed: Mutex<Duration>,
}

/// Copy every table of `work` from `source` to `sink`, `opts.jobs` partitions at a time.
///
/// The sink must already be prepared. Stops at the first error (after letting partitions in
/// flight roll back) and returns it; tables finished before that stay complete. Must be called
/// from a thread that is not a tokio worker (e.g. inside `spawn_blocking`).
pub fn copy_tables(
    handle: &Handle,
    source: Arc<dyn Source>,
    sink: Arc<dyn Sink>,
    work: Vec<TableWork>,
    progress: Arc<Progress>,
    opts: &RunOptions,
) -> Result<Vec<TableOutcome>> {
    let mut runs = Vec::with_capacity(work.len());
    for w in work {
        let encoder = sink.encoder(&w.table)?;
        runs.push(Arc::new(TableRun {
            remaining: AtomicUsize::new(w.partitions.len()),
            encoder,
            rows: Default::default(),
            started: Mutex::new(None),
            elapsed: Mutex::new(Duration::ZERO),
            work: w,
        }));
    }
    // Biggest tables first, so the longest copies start early and small ones fill the gaps.
    let mut order: Vec<(Arc<TableRun>, usize)> = runs
        .iter()
        .flat_map(|r| (0..r.work.partitions.len()).map(move |i| (r.clone(), i)))
        .collect();
    order.sort_by_key(|(r, _)| std::cmp::Reverse(r.work.table.rows));
    let (queue_tx, queue_rx) = crossbeam_channel::bounded(order.len().max(1));
    for item in order {
        queue_tx
            .send(item)
            .expect("queue sized to hold every partition");
    }
    drop(queue_tx);

    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let fail = |e: Error| {
        opts.cancel.store(true, Ordering::SeqCst);
        let mut slot = failure.lock().unwrap();
        if slot.is_none()
            || slot
                .as_ref()
                .is_some_and(|f| f.kind() == ErrorKind::Cancelled)
        {
            *slot = Some(e);
        }
    };
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.max(1) {
            s.spawn(|| {
                for (run, index) in queue_rx.iter() {
                    if opts.cancel.load(Ordering::SeqCst) {
                        fail(Error::cancelled());
                        break;
                    }
                    let name = &run.work.table.name;
                    let tp = progress.table(name);
                    if let Some(tp) = tp {
                        tp.set_state(TableState::Copying);
                    }
                    run.started.lock().unwrap().get_or_insert_with(Instant::now);
                    let partition = &run.work.partitions[index];
                    let result = copy_with_retries(handle, &*source, &*sink, &run, partition, &progress, opts)
                        .and_then(|rows| {
                            run.rows.fetch_add(rows, Ordering::Relaxed);
                            if run.remaining.fetch_sub(1, Ordering::SeqCst) == 1 {
                                if let Some(tp) = tp {
                                    tp.set_state(TableState::Finishing);
                                }
                                handle.block_on(unless_cancelled(sink.finish_table(&run.work.table), &opts.cancel))?;
                                let started = run.started.lock().unwrap().unwrap_or_else(Instant::now);
                                *run.elapsed.lock().unwrap() = started.elapsed();
                                if let Some(tp) = tp {
                                    tp.set_state(TableState::Done);
                                }
                                tracing::info!(table = %name, rows = run.rows.load(Ordering::Relaxed), "table copied");
                            }
                            Ok(())
                        });
                    if let Err(e) = result {
                        if let Some(tp) = tp {
                            tp.set_state(TableState::Failed);
                        }
                        fail(e.context(format!("table \"{name}\"")));
                        break;
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap() {
        handle.block_on(sink.abort());
        return Err(e);
    }
    let tables: Vec<TableInfo> = runs.iter().map(|r| r.work.table.clone()).collect();
    if let Err(e) = handle.block_on(unless_cancelled(sink.finish(&tables), &opts.cancel)) {
        handle.block_on(sink.abort());
        return Err(e);
    }
    Ok(runs
        .iter()
        .map(|r| TableOutcome {
            table: r.work.table.name.clone(),
            rows: r.rows.load(Ordering::Relaxed),
            bytes: progress.table(&r.work.table.name).map_or(0, |t| t.bytes()),
            seconds: r.elapsed.lock().unwrap().as_secs_f64(),
        })
        .collect())
}

/// Run `work` (a table's index build, the foreign keys) unless the run is cancelled first:
/// Ctrl-C stops a long index build within a tenth of a second; the sink is dropped mid-step,
/// so it must leave nothing it cannot clean up in `abort`.
async fn unless_cancelled<T>(
    work: impl std::future::Future<Output = Result<T>>,
    cancel: &AtomicBool,
) -> Result<T> {
    let cancelled = async {
        while !cancel.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::select! {
        done = work => done,
        () = cancelled => Err(Error::cancelled()),
    }
}

/// Attempts per partition when the error is transient (connection lost, serialization
/// failure, server restarting): the waits between them add up to 31 s, long enough for a
/// server restart.
pub const PARTITION_ATTEMPTS: u32 = 6;

/// Copy one partition, retrying transient failures with exponential backoff (1 s, 2 s, 4 s,
/// 8 s, 16 s).
/// A failed attempt has rolled back, so the retry starts from nothing.
fn copy_with_retries(
    handle: &Handle,
    source: &dyn Source,
    sink: &dyn Sink,
    run: &TableRun,
    partition: &Partition,
    progress: &Progress,
    opts: &RunOptions,
) -> Result<u64> {
    let mut attempt = 1;
    loop {
        let mut counted = (0, 0);
        match copy_partition(
            handle,
            source,
            sink,
            run,
            partition,
            progress,
            opts,
            &mut counted,
        ) {
            Err(e) if e.is_retryable() && attempt < PARTITION_ATTEMPTS => {
                if opts.cancel.load(Ordering::SeqCst) {
                    return Err(e);
                }
                // Take back exactly what this attempt counted (other partitions of the table
                // may be counting at the same time).
                if let Some(c) = progress.table(&run.work.table.name) {
                    c.sub(counted.0, counted.1);
                }
                let wait = Duration::from_secs(1 << (attempt - 1));
                tracing::warn!(
                    table = %run.work.table.name,
                    partition = partition.index,
                    attempt,
                    error = %e,
                    "transient error; retrying the partition in {}s",
                    wait.as_secs()
                );
                std::thread::sleep(wait);
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Copy one partition; returns the rows the target committed. `counted` accumulates the rows
/// and bytes this attempt added to the progress counters.
#[allow(clippy::too_many_arguments)]
fn copy_partition(
    handle: &Handle,
    source: &dyn Source,
    sink: &dyn Sink,
    run: &TableRun,
    partition: &Partition,
    progress: &Progress,
    opts: &RunOptions,
    counted: &mut (u64, u64),
) -> Result<u64> {
    let table = &run.work.table;
    let started = Instant::now();
    let Some(mut writer) = handle.block_on(sink.claim(table, partition))? else {
        tracing::info!(
            table = %table.name,
            partition = partition.index,
            "partition skipped: another worker holds it or has committed it"
        );
        return Ok(0);
    };
    let mut stream = handle.block_on(source.open(table, partition))?;
    // Encoding runs as one rayon task per batch, so no pool thread ever waits on a channel
    // (several partitions share the pool; a thread parked on one partition's channel would
    // starve the others). Memory stays bounded by tokens: the reader takes one before each
    // batch and the writer returns it once that batch's chunk is sent.
    let in_flight = BATCH_CHANNEL_CAPACITY + CHUNK_CHANNEL_CAPACITY;
    let (token_tx, token_rx) = crossbeam_channel::bounded::<()>(in_flight);
    for _ in 0..in_flight {
        token_tx.send(()).expect("sized for every token");
    }
    let (chunk_tx, chunk_rx) = crossbeam_channel::unbounded::<Result<Chunk>>();
    let size_hint = Arc::new(AtomicUsize::new(64 * 1024));
    let counters = progress.table(&table.name);

    let (read, written) = std::thread::scope(|s| {
        let encoder = run.encoder.clone();
        let reader = s.spawn(move || -> Result<()> {
            while let Some(batch) = handle.block_on(stream.next()) {
                if opts.cancel.load(Ordering::Relaxed) {
                    return Err(Error::cancelled());
                }
                let batch = batch?;
                if token_rx.recv().is_err() {
                    break; // the writer stopped; its error is the one reported
                }
                let (encoder, chunk_tx, size_hint) =
                    (encoder.clone(), chunk_tx.clone(), size_hint.clone());
                rayon::spawn(move || {
                    let hint = size_hint.load(Ordering::Relaxed);
                    let chunk = encoder.encode_chunk(&batch, hint).map(|data| {
                        size_hint.store(data.len() + data.len() / 8, Ordering::Relaxed);
                        Chunk {
                            data,
                            rows: batch.num_rows() as u64,
                        }
                    });
                    let _ = chunk_tx.send(chunk);
                });
            }
            Ok(())
        });
        let mut written = Ok(());
        for chunk in chunk_rx.iter() {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    written = Err(e);
                    break;
                }
            };
            let (rows, bytes) = (chunk.rows, chunk.data.len() as u64);
            if let Err(e) = handle.block_on(writer.write(chunk)) {
                written = Err(e);
                break;
            }
            let _ = token_tx.send(());
            if let Some(c) = counters {
                c.add(rows, bytes);
                counted.0 += rows;
                counted.1 += bytes;
            }
        }
        drop(token_tx);
        drop(chunk_rx);
        let read = reader.join().expect("reader thread panicked");
        (read, written)
    });
    // Report the root cause: a writer or reader failure makes the other stages see "cancelled".
    for r in [written, read] {
        if let Err(e) = r {
            if e.kind() != ErrorKind::Cancelled || opts.cancel.load(Ordering::Relaxed) {
                return Err(e); // `writer` is dropped here: the partition rolls back
            }
        }
    }
    let rows = handle.block_on(writer.finish())?;
    tracing::info!(
        table = %table.name,
        partition = partition.index,
        of = partition.count,
        rows,
        ms = started.elapsed().as_millis() as u64,
        "partition committed"
    );
    Ok(rows)
}
