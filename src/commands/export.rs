//! `export`: write every selected source table to Parquet, one zstd file per source partition,
//! `<target>/<table>/part-00000.parquet` …, several partitions at a time.
//!
//! Any source works: sources are opened in native mode, so their Arrow schema is typed; a
//! PostgreSQL source is read through the typed reader (`seren_postgres::typed`) rather than as
//! raw COPY rows. Existing output is refused unless `--overwrite`, checked for every table
//! before anything is written.

use super::Ui;
use crate::cli::ExportArgs;
use crate::session;
use anyhow::Result;
use futures::StreamExt;
use pipeline::{Error, ErrorKind, Mode, Partition, Side, Source, SourceOptions, TableInfo};
use seren_parquet::{part_file_name, table_dir, PartWriter};
use seren_postgres::typed::TypedPgSource;
use seren_postgres::PgTarget;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One table's output.
#[derive(Debug, Default, Clone, serde::Serialize)]
struct Written {
    table: String,
    directory: PathBuf,
    files: usize,
    rows: u64,
    bytes: u64,
}

pub async fn run(args: ExportArgs, ui: &Ui) -> Result<i32> {
    let options = SourceOptions {
        mode: Mode::Native,
        ..SourceOptions::default()
    };
    let source: Arc<dyn Source> = if session::is_postgres(&args.source) {
        let server = PgTarget::parse(&args.source, Side::Source)?;
        Arc::new(TypedPgSource::open(server, options).await?)
    } else {
        let registry = crate::connectors::registry();
        let shown = seren_postgres::redact_conninfo(&args.source);
        registry
            .find(&args.source, &shown)?
            .open(&args.source, &options)
            .await?
    };
    let selected = session::select(&*source, &args.selection).await?;
    if selected.is_empty() {
        anyhow::bail!(Error::config(format!(
            "nothing to export: no tables selected in source {}",
            source.location()
        )));
    }
    let mut tables = Vec::with_capacity(selected.len());
    for (table, filter) in selected {
        let partitions = source.plan(&table, filter.as_deref()).await?;
        let dir = args.target.join(table_dir(&table.name));
        if !ui.quiet {
            for w in &table.warnings {
                eprintln!("warning: table \"{}\": {w}", table.name);
            }
        }
        tables.push((Arc::new(table), dir, partitions));
    }
    prepare_directories(&args.target, tables.iter().map(|t| &t.1), args.overwrite)?;

    let jobs = args.jobs.map_or_else(
        || std::thread::available_parallelism().map_or(2, |n| n.get()),
        |j| j as usize,
    );
    let started = Instant::now();
    let handle = tokio::runtime::Handle::current();
    let cancel = Arc::new(AtomicBool::new(false));
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_ctrl_c.store(true, Ordering::SeqCst);
        }
    });
    let row_group_bytes = usize::try_from(args.row_group_bytes).unwrap_or(usize::MAX);
    let written = tokio::task::spawn_blocking(move || {
        write_all(&handle, source, tables, jobs, row_group_bytes, &cancel)
    })
    .await??;
    let seconds = started.elapsed().as_secs_f64();
    if ui.json {
        let rows: u64 = written.iter().map(|w| w.rows).sum();
        println!(
            "{}",
            serde_json::json!({
                "ok": true,
                "target": args.target,
                "rows": rows,
                "seconds": seconds,
                "tables": written,
            })
        );
    } else if !ui.quiet {
        for w in &written {
            println!(
                "{:<30} {:>12} rows  {:>4} files  {:>12} bytes  {}",
                w.table,
                w.rows,
                w.files,
                w.bytes,
                w.directory.display()
            );
        }
        let rows: u64 = written.iter().map(|w| w.rows).sum();
        println!(
            "exported {rows} rows of {} tables in {seconds:.1} s",
            written.len()
        );
    }
    Ok(0)
}

/// Create the output directories, refusing (before writing anything) any that already holds
/// files unless `overwrite`, which empties them.
fn prepare_directories<'a>(
    target: &Path,
    dirs: impl Iterator<Item = &'a PathBuf> + Clone,
    overwrite: bool,
) -> Result<()> {
    let io = |path: &Path, e: std::io::Error| {
        Error::new(
            ErrorKind::Io,
            Side::Target,
            format!("preparing {}: {e}", path.display()),
        )
    };
    if target.exists() && !target.is_dir() {
        anyhow::bail!(Error::config(format!(
            "--target {} is a file; give a directory to write the Parquet files into",
            target.display()
        )));
    }
    for dir in dirs.clone() {
        let used = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
        if used && !overwrite {
            anyhow::bail!(Error::new(
                ErrorKind::Conflict,
                Side::Target,
                format!(
                    "{} already holds files; pass --overwrite to replace them, or choose \
                     another --target",
                    dir.display()
                ),
            ));
        }
    }
    for dir in dirs {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| io(dir, e))?;
        }
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    Ok(())
}

type Task = (usize, Partition);

/// Write every partition, `jobs` at a time, each into its own file. Stops at the first error.
fn write_all(
    handle: &tokio::runtime::Handle,
    source: Arc<dyn Source>,
    tables: Vec<(Arc<TableInfo>, PathBuf, Vec<Partition>)>,
    jobs: usize,
    row_group_bytes: usize,
    cancel: &AtomicBool,
) -> Result<Vec<Written>> {
    let queue: VecDeque<Task> = tables
        .iter()
        .enumerate()
        .flat_map(|(t, (_, _, parts))| parts.iter().map(move |p| (t, p.clone())))
        .collect();
    let queue = Mutex::new(queue);
    let written = Mutex::new(
        tables
            .iter()
            .map(|(t, dir, _)| Written {
                table: t.name.clone(),
                directory: dir.clone(),
                ..Written::default()
            })
            .collect::<Vec<_>>(),
    );
    let failed: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Some((t, partition)) = queue.lock().unwrap().pop_front() else {
                    return;
                };
                let (table, dir, _) = &tables[t];
                let path = dir.join(part_file_name(partition.index));
                let result = write_partition(
                    handle,
                    &*source,
                    table,
                    &partition,
                    &path,
                    row_group_bytes,
                    cancel,
                );
                match result {
                    Ok((rows, bytes)) => {
                        let mut w = written.lock().unwrap();
                        w[t].files += 1;
                        w[t].rows += rows;
                        w[t].bytes += bytes;
                    }
                    Err(e) => {
                        stop.store(true, Ordering::SeqCst);
                        failed.lock().unwrap().get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().unwrap() {
        return Err(e);
    }
    Ok(written.into_inner().unwrap())
}

/// Stream one partition into one Parquet file.
fn write_partition(
    handle: &tokio::runtime::Handle,
    source: &dyn Source,
    table: &TableInfo,
    partition: &Partition,
    path: &Path,
    row_group_bytes: usize,
    cancel: &AtomicBool,
) -> Result<(u64, u64)> {
    let mut writer = PartWriter::create(path, table, row_group_bytes)?;
    let result = (|| -> Result<()> {
        let mut stream = handle.block_on(source.open(table, partition))?;
        while let Some(batch) = handle.block_on(stream.next()) {
            if cancel.load(Ordering::SeqCst) {
                anyhow::bail!(Error::cancelled());
            }
            writer.write(&table.name, &batch?)?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(writer.finish(&table.name)?),
        Err(e) => {
            writer.abort();
            Err(e)
        }
    }
}
