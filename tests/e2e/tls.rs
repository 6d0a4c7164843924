//! TLS as in psql: `sslmode` from `disable` to `verify-full`, and `sslrootcert`, against a
//! throwaway PostgreSQL that rejects unencrypted connections.

use crate::harness::{run, tempdir};
use seren_replicator::throwaway::ThrowawayPg;
use std::path::Path;
use std::process::Command;

fn openssl(dir: &Path, args: &[&str]) {
    let ok = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 signed by it, and an unrelated CA.
fn certificates(dir: &Path) {
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    for ca in ["ca", "other"] {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.crt"),
                "-days",
                "2",
                "-subj",
                &format!("/CN=seren {ca}"),
            ],
        );
    }
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
    Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(dir)
        .status()
        .unwrap();
    Command::new("chmod")
        .args(["0600"])
        .arg(dir.join("server.key"))
        .status()
        .unwrap();
    Command::new("chmod")
        .args(["0755"])
        .arg(dir)
        .status()
        .unwrap();
}

#[test]
fn sslmodes_work_as_in_psql() {
    let certs = tempdir();
    certificates(certs.path());
    let cert = format!(
        "ssl_cert_file={}",
        certs.path().join("server.crt").display()
    );
    let key = format!("ssl_key_file={}", certs.path().join("server.key").display());
    let pg = ThrowawayPg::start(&["ssl=on", &cert, &key]).unwrap();
    // Only encrypted connections are accepted from now on.
    let hba = pg.dir().join("data/pg_hba.conf");
    let old = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("hostnossl all all 127.0.0.1/32 reject\n{old}"),
    )
    .unwrap();
    let reload = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-d",
            &format!("{}?sslmode=require", pg.url("postgres")),
            "-c",
            "SELECT pg_reload_conf()",
        ])
        .status()
        .unwrap();
    assert!(reload.success());
    std::thread::sleep(std::time::Duration::from_millis(300));

    let src = certs.path().join("src.db");
    rusqlite::Connection::open(&src)
        .unwrap()
        .execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);")
        .unwrap();
    let source = src.to_str().unwrap();
    let ca = certs.path().join("ca.crt");
    let other = certs.path().join("other.crt");
    let validate = |target: String| run(&["validate", "--source", source, "--target", &target]);

    let (code, out, err) = validate(format!("{}?sslmode=disable", pg.url("postgres")));
    assert_eq!(code, 5, "{out}{err}");
    assert!(
        out.contains("✗ target reachable") && out.contains("no encryption"),
        "{out}"
    );

    for target in [
        pg.url("postgres"), // prefer, the default, upgrades to TLS
        format!("{}?sslmode=require", pg.url("postgres")),
        format!("{}?sslmode=verify-full&sslrootcert={}", pg.url("postgres"), ca.display()),
        format!("host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=verify-ca sslrootcert='{}'", pg.port, ca.display()),
    ] {
        let (code, out, err) = validate(target.clone());
        assert_eq!(code, 0, "{target}: {out}{err}");
    }
    let (code, out, _) = validate(format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        pg.url("postgres"),
        other.display()
    ));
    assert_eq!(code, 5);
    assert!(out.contains("certificate verify failed"), "{out}");
    let (code, _, err) = run(&[
        "init",
        "--source",
        source,
        "--target",
        &format!("{}?sslmode=sometimes", pg.url("postgres")),
        "-y",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("sslmode `sometimes`"), "{err}");
}
