//! The file itself: location forms, bad paths explained, and never a byte written.

use crate::support::*;
use pipeline::{ErrorKind, Mode, Side, SourceFactory};
use seren_sqlite::SqliteFactory;

#[test]
fn the_factory_accepts_its_location_forms_only() {
    let (dir, path) = db("CREATE TABLE t (x);");
    let bare = dir.path().join("no_extension");
    std::fs::copy(&path, &bare).unwrap();
    let text = dir.path().join("notes");
    std::fs::write(&text, "just some text, long enough to have a header\n").unwrap();
    let f = SqliteFactory;
    assert_eq!(f.name(), "sqlite");
    for yes in [
        "sqlite:///abs/app.db",
        "sqlite://rel/app",
        "x.db",
        "dir/X.SQLITE",
        "a.sqlite3",
    ] {
        assert!(f.accepts(yes), "{yes}");
    }
    assert!(
        f.accepts(bare.to_str().unwrap()),
        "a SQLite file by its header"
    );
    for no in [
        "postgresql://h/x.db",
        "ftp://nowhere/x",
        "x.csv",
        text.to_str().unwrap(),
    ] {
        assert!(!f.accepts(no), "{no}");
    }
}

#[tokio::test]
async fn sqlite_urls_open_absolute_and_relative_paths() {
    let (_dir, path) = db("CREATE TABLE t (x); INSERT INTO t VALUES (1);");
    let opts = options(Mode::Jsonb);
    let absolute = format!("sqlite://{}", path.display());
    assert!(absolute.starts_with("sqlite:///"));
    let source = SqliteFactory.open(&absolute, &opts).await.unwrap();
    assert_eq!(source.list_tables().await.unwrap(), ["t"]);
    let cwd = std::env::current_dir().unwrap();
    let relative = pathdiff(&path, &cwd);
    let source = SqliteFactory
        .open(&format!("sqlite://{relative}"), &opts)
        .await
        .unwrap();
    assert_eq!(source.describe("t").await.unwrap().rows, 1);
}

/// `path` relative to `base` (both absolute), with `..` steps.
fn pathdiff(path: &std::path::Path, base: &std::path::Path) -> String {
    let (p, b): (Vec<_>, Vec<_>) = (path.components().collect(), base.components().collect());
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out: Vec<String> = b[common..].iter().map(|_| "..".to_string()).collect();
    out.extend(
        p[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    out.join("/")
}

#[tokio::test]
async fn bad_locations_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(Mode::Jsonb);
    let open_err = |p: std::path::PathBuf| {
        let opts = opts.clone();
        async move {
            SqliteFactory
                .open(p.to_str().unwrap(), &opts)
                .await
                .err()
                .unwrap()
        }
    };

    let missing = dir.path().join("missing.db");
    let e = open_err(missing.clone()).await;
    assert_eq!((e.kind(), e.side()), (ErrorKind::Connect, Side::Source));
    assert!(e.to_string().contains(missing.to_str().unwrap()), "{e}");
    assert!(e.to_string().contains("check the path"), "{e}");
    assert!(!missing.exists(), "opening must not create the file");

    let not_sqlite = dir.path().join("notes.db");
    std::fs::write(&not_sqlite, "just some text, not a database\n").unwrap();
    let e = open_err(not_sqlite.clone()).await;
    assert_eq!(e.kind(), ErrorKind::Schema);
    assert_eq!(
        e.to_string(),
        format!(
            "{} is not a SQLite database (it does not start with the SQLite header)",
            not_sqlite.display()
        )
    );
    let short = dir.path().join("short.db");
    std::fs::write(&short, "SQLite").unwrap();
    assert_eq!(open_err(short).await.kind(), ErrorKind::Schema);
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, "").unwrap();
    assert_eq!(open_err(empty).await.kind(), ErrorKind::Schema);

    let directory = dir.path().join("dir.db");
    std::fs::create_dir(&directory).unwrap();
    let e = open_err(directory).await;
    assert_eq!(e.kind(), ErrorKind::Connect);
    assert!(e.to_string().contains("is a directory"), "{e}");

    // The right header over garbage: SQLite's own complaint, as a schema error.
    let damaged = dir.path().join("damaged.db");
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend(std::iter::repeat_n(0xAB, 4096));
    std::fs::write(&damaged, bytes).unwrap();
    let e = open_err(damaged).await;
    assert_eq!(e.kind(), ErrorKind::Schema, "{e}");
}

/// Bytes and modification time of the database file.
fn snapshot(path: &std::path::Path) -> (Vec<u8>, std::time::SystemTime) {
    (
        std::fs::read(path).unwrap(),
        std::fs::metadata(path).unwrap().modified().unwrap(),
    )
}

#[tokio::test]
async fn reading_everything_leaves_the_file_untouched() {
    for journal in ["DELETE", "WAL"] {
        let (dir, path) = db(&format!(
            "PRAGMA journal_mode = {journal};
             CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT, d DATE, b BLOB);
             CREATE TABLE nokey (x, y);
             WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 5000)
             INSERT INTO t SELECT i, 'row ' || i, '2024-01-01', randomblob(i % 50) FROM s;
             INSERT INTO nokey SELECT s, id FROM t;"
        ));
        std::thread::sleep(std::time::Duration::from_millis(20)); // a write would change mtime
        let before = snapshot(&path);
        for mode in [Mode::Jsonb, Mode::Native] {
            let opts = pipeline::SourceOptions {
                partition_rows: 1000,
                ..options(mode)
            };
            let source = open(&path, &opts).await;
            for table in source.list_tables().await.unwrap() {
                let (_, partitions, batches) = read_table(&*source, &table, Some("1 = 1")).await;
                assert_eq!(partitions.len(), 5);
                assert_eq!(rows(&batches), 5000);
            }
        }
        let after = snapshot(&path);
        assert_eq!(after.1, before.1, "{journal}: modification time changed");
        assert!(after.0 == before.0, "{journal}: the database file changed");
        // A WAL reader needs SQLite's shared-memory index: it may leave an empty -wal and a
        // -shm file beside the database, which SQLite itself manages. Nothing else.
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let p = entry.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            match name.as_str() {
                "test.db" | "test.db-shm" => {}
                "test.db-wal" => assert_eq!(std::fs::metadata(&p).unwrap().len(), 0),
                other => panic!("{journal}: unexpected file {other}"),
            }
        }
    }
}
