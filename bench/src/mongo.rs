//! MongoDB → PostgreSQL: one generated collection (ObjectId, strings, int, double, date, nested
//! document, small array; ~250 bytes per document) on a throwaway SecantusDB (a MongoDB-wire
//! server in Python), read by a bare Rust-driver scan (`find({})` over raw documents: the read
//! cost) and loaded into empty PostgreSQL databases by seren-replicator, in one run.
//!
//! Usage: `seren-bench mongo [DOCS]` (default 1,000,000). SecantusDB is found as `$SECANTUSD`,
//! else `target/secantus-venv/bin/secantusd-py` in the workspace (see `scripts/test`).
//! `seren-bench mongo-scan URI COLLECTION OUT` is the bare scan, run as its own process so that
//! its peak RSS is measured like the others'.

use super::{count_arg, createdb, loadavg, measure, our_binary, print_report, Measure};
use anyhow::{bail, Context, Result};
use mongodb::bson::{doc, oid::ObjectId, DateTime, Document, RawDocumentBuf};
use seren_replicator::throwaway::ThrowawayPg;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DB: &str = "bench";
const COLL: &str = "docs";
const BATCH: u64 = 10_000;

/// A throwaway SecantusDB; killed by PID when dropped.
struct Secantus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Secantus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn executable() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("SECANTUSD") {
        return Ok(PathBuf::from(p));
    }
    let ws = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    ws.ancestors()
        .map(|d| d.join("target/secantus-venv/bin/secantusd-py"))
        .find(|p| p.is_file())
        .context(
            "secantusd-py not found: python3 -m venv target/secantus-venv && \
             target/secantus-venv/bin/pip install 'SecantusDB==0.7.0b3' (or set SECANTUSD)",
        )
}

impl Secantus {
    fn start() -> Result<Secantus> {
        let exe = executable()?;
        let dir = tempfile::Builder::new()
            .prefix("seren-bench-mongo.")
            .tempdir_in("/tmp")?;
        let log = dir.path().join("log");
        let child = Command::new(&exe)
            .args(["--host", "127.0.0.1", "--port", "0", "--storage-path"])
            .arg(dir.path().join("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let mut s = Secantus {
            child,
            port: 0,
            _dir: dir,
        };
        let started = Instant::now();
        loop {
            let mut text = String::new();
            if let Ok(mut f) = std::fs::File::open(&log) {
                let _ = f.read_to_string(&mut text);
            }
            let port = text.lines().find_map(|l| {
                l.split("secantus listening on 127.0.0.1:")
                    .nth(1)
                    .and_then(|p| p.trim().parse::<u16>().ok())
            });
            if let Some(port) = port {
                s.port = port;
                return Ok(s);
            }
            if let Ok(Some(status)) = s.child.try_wait() {
                bail!("SecantusDB exited ({status}) before listening: {text}");
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("SecantusDB did not start listening within 60 s: {text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn uri(&self) -> String {
        format!(
            "mongodb://127.0.0.1:{}/{DB}?directConnection=true",
            self.port
        )
    }
}

fn document(i: u64) -> Document {
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    doc! {
        "_id": ObjectId::new(),
        "name": format!("user-{i:08}"),
        "email": format!("user{i}@example.com"),
        "n": (i % 1_000_000) as i32,
        "score": (h % 1_000_000) as f64 / 1000.0,
        "created": DateTime::from_millis(1_600_000_000_000 + (i as i64) * 1_337),
        "active": i % 3 == 0,
        "address": {
            "street": format!("{} Main Street", h % 10_000),
            "city": format!("City {}", i % 1000),
            "zip": format!("{:05}", h % 100_000),
        },
        "tags": [format!("t{}", i % 7), format!("t{}", i % 11), format!("t{}", i % 13)],
        "note": format!("{:016x}{:016x} lorem ipsum dolor", h, h.rotate_left(17)),
    }
}

/// Insert `docs` generated documents in batches; returns the collection's BSON bytes.
async fn load(uri: &str, docs: u64) -> Result<u64> {
    let client = mongodb::Client::with_uri_str(uri).await?;
    let coll = client.database(DB).collection::<Document>(COLL);
    let mut bytes = 0u64;
    let mut i = 0;
    while i < docs {
        let batch: Vec<Document> = (i..(i + BATCH).min(docs)).map(document).collect();
        for d in &batch {
            bytes += RawDocumentBuf::from_document(d)?.as_bytes().len() as u64;
        }
        coll.insert_many(batch).await?;
        i += BATCH;
        if i % 100_000 == 0 {
            eprintln!("  {i} documents");
        }
    }
    Ok(bytes)
}

/// The bare scan: `find({})` over raw documents; (documents, bytes). `like_ours`: with the
/// connector's read option (`readConcern: majority`).
async fn scan(uri: &str, coll: &str, like_ours: bool) -> Result<(u64, u64)> {
    let client = mongodb::Client::with_uri_str(uri).await?;
    let db = client.database(DB);
    let mut cursor = if like_ours {
        let options = mongodb::options::CollectionOptions::builder()
            .read_concern(mongodb::options::ReadConcern::majority())
            .build();
        db.collection_with_options::<RawDocumentBuf>(coll, options)
            .find(doc! {})
            .await?
    } else {
        db.collection::<RawDocumentBuf>(coll).find(doc! {}).await?
    };
    let (mut n, mut bytes) = (0u64, 0u64);
    while cursor.advance().await? {
        n += 1;
        bytes += cursor.current().as_bytes().len() as u64;
    }
    Ok((n, bytes))
}

/// `seren-bench mongo-scan URI COLLECTION OUT [--like-ours]`: writes "documents bytes" to OUT.
pub fn scan_main(args: &[String]) -> Result<()> {
    let (uri, coll, out, like_ours) = match args {
        [uri, coll, out] => (uri, coll, out, false),
        [uri, coll, out, flag] if flag == "--like-ours" => (uri, coll, out, true),
        _ => bail!("usage: seren-bench mongo-scan URI COLLECTION OUT [--like-ours]"),
    };
    let (n, bytes) = tokio::runtime::Runtime::new()?.block_on(scan(uri, coll, like_ours))?;
    std::fs::write(out, format!("{n} {bytes}"))?;
    Ok(())
}

/// `seren-bench mongo [DOCS]`.
pub fn run(arg: Option<&String>) -> Result<()> {
    let docs = count_arg(arg, 1_000_000)?;
    let bin = our_binary()?;
    let server = Secantus::start()?;
    let uri = server.uri();
    eprintln!("inserting {docs} documents into SecantusDB …");
    let started = Instant::now();
    let bytes = tokio::runtime::Runtime::new()?.block_on(load(&uri, docs))?;
    let mb = bytes as f64 / 1e6;
    let load_s = started.elapsed().as_secs_f64();
    eprintln!(
        "loaded in {load_s:.1} s ({mb:.0} MB BSON, {:.0} B/document)",
        bytes as f64 / docs as f64
    );
    let shown_uri = "mongodb://127.0.0.1:$PORT/bench?directConnection=true";
    let mut results: Vec<Measure> = Vec::new();
    let mut loads = Vec::new();

    let me = std::env::current_exe()?;
    for (label, flag) in [
        ("bare driver scan (find {}, raw documents)", None),
        (
            "bare scan, readConcern majority (as ours)",
            Some("--like-ours"),
        ),
    ] {
        let out = tempfile::NamedTempFile::new()?;
        let mut m = measure(
            label,
            &format!(
                "seren-bench mongo-scan '{shown_uri}' {COLL} OUT{}",
                flag.map_or(String::new(), |f| format!(" {f}"))
            ),
            Command::new(&me)
                .args(["mongo-scan", &uri, COLL])
                .arg(out.path())
                .args(flag),
        )?;
        loads.push(format!("{label}: {}", loadavg()));
        let got = std::fs::read_to_string(out.path())?;
        m.note = if got == format!("{docs} {bytes}") {
            format!("{docs} documents, {bytes} bytes ✓")
        } else {
            format!("✗ read {got} (documents bytes), want {docs} {bytes}")
        };
        eprintln!("  {label}: {:.2} s, {}", m.seconds, m.note);
        results.push(m);
    }

    // The last run splits the collection into `_id` ranges read in parallel even where the
    // server plans range reads as collection scans (the others then read it in one stream).
    let runs: [(&str, &[&str]); 4] = [
        ("jsonb", &[]),
        ("jsonb_nogin", &["--gin-index", "none"]),
        ("native", &["--mode", "native"]),
        (
            "jsonb_nogin_split",
            &["--gin-index", "none", "--partition-rows", "250000"],
        ),
    ];
    let pg = ThrowawayPg::start(&["shared_buffers=512MB", "max_wal_size=4GB"])?;
    for (name, flags) in runs {
        let url = createdb(&pg, &format!("ours_{name}"))?;
        let shown = format!(
            "seren-replicator init --source '{shown_uri}' --target $PG/ours_{name} {}-y -q",
            flags.iter().map(|f| format!("{f} ")).collect::<String>()
        );
        let label = if flags.is_empty() {
            "seren-replicator (default: jsonb, GIN)".to_string()
        } else {
            format!("seren-replicator {}", flags.join(" "))
        };
        let mut m = measure(
            &label,
            &shown,
            Command::new(&bin)
                .args(["init", "--source", &uri, "--target", &url, "-y", "-q"])
                .args(flags),
        )?;
        loads.push(format!("{name}: {}", loadavg()));
        m.note = super::count_note(&url, COLL, docs);
        eprintln!("  {}: {:.2} s, {}", m.name, m.seconds, m.note);
        results.push(m);
    }
    drop(pg);
    drop(server);
    println!(
        "MongoDB (SecantusDB) → PostgreSQL, {docs} documents, {mb:.0} MB BSON; load average after \
         each run: {}",
        loads.join("; ")
    );
    print_report(
        "documents",
        docs,
        mb,
        &results,
        "bare driver scan (find {}, raw documents)",
        false,
        serde_json::json!({"load_seconds": load_s, "loadavg": loads}),
    );
    Ok(())
}
