//! The job server (`serve`) and its clients (`init --remote`, `jobs …`): jobs submitted over
//! HTTP complete and verify exact, survive a `kill -9` of the server, need the bearer token,
//! never show a password (API, logs, the state file's raw bytes), and the server answers every
//! path `docs/openapi.json` documents with the fields it documents; a PostgreSQL job store
//! keeps jobs across restarts as the SQLite one does; a job past its timeout is interrupted.

mod server;
mod workers;

use crate::bad_input_suite::{assert_clean, pw_url};
use crate::harness::{cli, free_port, fresh_db, output, psql, run, tempdir};
use serde_json::Value;
use server::{http, run_remote, sqlite_source, JobServer, PASSWORD_URL, TOKEN};
use std::time::{Duration, Instant};

#[test]
fn sqlite_job_submitted_with_init_remote_completes_and_verifies() {
    let dir = tempdir();
    let server = JobServer::start(dir.path());
    let source = sqlite_source(dir.path(), 3000);
    let (_, db) = fresh_db();
    let target = pw_url(&db, PASSWORD_URL);
    let tokens = dir.path().join("tokens");
    let started = Instant::now();
    let (code, out, err) = run_remote(
        &[
            "init",
            "--remote",
            &server.url(),
            "--token-file",
            tokens.to_str().unwrap(),
            "--source",
            &source,
            "--target",
            &target,
        ],
        "not-used-the-file-wins",
    );
    assert_eq!(code, 0, "{out}\n{err}\nserver:\n{}", server.output());
    let mut seen = format!("{out}{err}");
    assert!(out.contains("Trace ID: "), "{out}");
    assert!(out.contains("completed successfully"), "{out}");
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("Job ID: "))
        .expect("a job id")
        .trim()
        .to_string();
    eprintln!("sqlite job done in {:?}", started.elapsed());

    // The copy is exact.
    let (code, out, err) = run(&["verify", "--source", &source, "--target", &target]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(psql(&db, "SELECT count(*) FROM orders"), "6000");

    // Status, exit code and progress per table, from the child's JSON lines.
    let (code, job) = server.call("GET", &format!("/jobs/{id}"), None);
    assert_eq!(code, 200);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["exit_code"], 0);
    assert_eq!(job["attempts"], 1);
    assert_eq!(job["result"]["ok"], true, "{job}");
    let tables = job["progress"]["databases"][0]["tables"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(tables.len(), 2, "{job}");
    for t in &tables {
        assert_eq!(t["state"], "done", "{job}");
        assert_eq!(t["rows"], t["rows_expected"], "{job}");
    }
    assert_eq!(job["progress"]["rows"], 9000, "{job}");
    assert!(job["target"].as_str().unwrap().contains(":***@"), "{job}");
    seen.push_str(&job.to_string());
    let (_, logs) = server.call("GET", &format!("/jobs/{id}/logs"), None);
    assert!(!logs["lines"].as_array().unwrap().is_empty(), "{logs}");
    seen.push_str(&logs.to_string());
    let (_, list) = server.call("GET", "/jobs", None);
    assert_eq!(list["jobs"][0]["id"], id.as_str());
    seen.push_str(&list.to_string());

    // The `jobs` commands, text and JSON.
    let url = server.url();
    for args in [
        vec!["jobs", "status", id.as_str()],
        vec!["jobs", "logs", id.as_str()],
        vec!["jobs", "list"],
        vec!["jobs", "list", "--json"],
        vec!["jobs", "status", id.as_str(), "--json"],
    ] {
        let mut a = args.clone();
        a.extend(["--remote", &url]);
        let (code, out, err) = run_remote(&a, TOKEN);
        assert_eq!(code, 0, "{a:?}\n{out}\n{err}");
        seen.push_str(&format!("{out}{err}"));
    }
    let (code, out, err) = run_remote(&["jobs", "cancel", &id, "--remote", &server.url()], TOKEN);
    assert_eq!(code, 1, "a finished job cannot be cancelled: {out}\n{err}");
    assert!(err.contains("already succeeded"), "{err}");

    // No password anywhere: API answers, logs, the server's own output, the state file.
    seen.push_str(&server.output());
    assert_clean(&[&seen, &server.state_bytes()]);
    assert!(!server.state_bytes().contains("Pw-9f3kq"));
}

/// A PostgreSQL source database big enough that its copy takes several seconds.
fn pg_source(tables: usize, rows: usize) -> String {
    let (_, src) = fresh_db();
    for t in 0..tables {
        psql(
            &src,
            &format!(
                "CREATE TABLE t{t} (id bigint PRIMARY KEY, s text, n numeric);
                 INSERT INTO t{t} SELECT i, repeat(md5(i::text), 3), i * 0.5
                 FROM generate_series(1, {rows}) i;"
            ),
        );
    }
    src
}

#[test]
fn pg_job_survives_a_server_kill_and_resumes() {
    let dir = tempdir();
    let port = free_port();
    let mut server = JobServer::start_on(dir.path(), port);
    let src = pg_source(4, 300_000);
    let source = pw_url(&src, PASSWORD_URL);
    let (_, dst) = fresh_db();
    let target = pw_url(&dst, PASSWORD_URL);
    // The client follows the job across the restart (it keeps asking while the server is down).
    let (mut child, client_log) = {
        let mut c = cli();
        c.env("SEREN_REMOTE_TOKEN", TOKEN);
        c.env("SEREN_REMOTE_API", server.url());
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = c
            .args([
                "init",
                "--no-sync",
                "-j",
                "2",
                "--source",
                &source,
                "--target",
                &target,
            ])
            .stdout(std::process::Stdio::from(log.reopen().unwrap()))
            .stderr(std::process::Stdio::from(log.reopen().unwrap()))
            .spawn()
            .unwrap();
        (child, log)
    };
    let printed = || std::fs::read_to_string(client_log.path()).unwrap_or_default();
    let started = Instant::now();
    let id = loop {
        if let Some(id) = printed().lines().find_map(|l| l.strip_prefix("Job ID: ")) {
            break id.trim().to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{}", printed());
        std::thread::sleep(Duration::from_millis(100));
    };
    // Kill the server once rows are moving but before the copy is done.
    loop {
        let (_, job) = server.call("GET", &format!("/jobs/{id}"), None);
        let rows = job["progress"]["rows"].as_u64().unwrap_or(0);
        assert!(
            matches!(job["status"].as_str(), Some("queued" | "running")),
            "finished before the kill: {job}"
        );
        if rows > 0 {
            assert!(rows < 1_200_000, "{job}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{job}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut seen = server.kill();
    std::thread::sleep(Duration::from_secs(1));
    let server = JobServer::start_on(dir.path(), port);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "client still waiting:\n{}\nserver:\n{}",
            printed(),
            server.output()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(
        status.success(),
        "{}\nserver:\n{}",
        printed(),
        server.output()
    );
    eprintln!("pg job with a restart done in {:?}", started.elapsed());
    let job = server.wait_finished(&id, Duration::from_secs(10));
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    let (_, logs) = server.call("GET", &format!("/jobs/{id}/logs"), None);
    assert!(logs.to_string().contains("resuming the job"), "{logs}");
    let (code, out, err) = run(&["verify", "--source", &source, "--target", &target]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(psql(&dst, "SELECT count(*) FROM t3"), "300000");
    seen.push_str(&format!(
        "{}{job}{logs}{out}{err}{}",
        printed(),
        server.output()
    ));
    assert_clean(&[&seen, &server.state_bytes()]);
}

#[test]
fn the_token_is_required_and_the_server_refuses_unsafe_settings() {
    let dir = tempdir();
    let server = JobServer::start(dir.path());
    for (method, path) in [("GET", "/jobs"), ("POST", "/jobs"), ("GET", "/jobs/x/logs")] {
        for token in [None, Some("wrong-token"), Some("t0ken-for-remote-testz")] {
            let (code, body) = http(server.port, method, path, token, Some(&Value::Null));
            assert_eq!(code, 401, "{method} {path} {token:?}: {body}");
            assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
        }
    }
    let (code, _) = http(server.port, "GET", "/jobs", Some("other-token"), None);
    assert_eq!(code, 200, "the file's other token works too");
    let (code, body) = server.call(
        "POST",
        "/jobs",
        Some(&serde_json::json!({"source": "./x.db", "target": "postgresql://u:s3cret@h/db", "mode": "xml"})),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("xml"), "{body}");
    assert!(!body.to_string().contains("s3cret"), "{body}");
    let (code, body) = server.call("GET", "/jobs/no-such-job", None);
    assert_eq!((code, body["error"].is_string()), (404, true));

    let url = server.url();
    let (code, out, err) = run_remote(&["jobs", "list", "--remote", &url], "wrong-token");
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("401"), "{err}");
    let (code, out, err) = run_remote(
        &[
            "init",
            "--remote",
            &url,
            "--source",
            "./x.db",
            "--target",
            "postgresql://h/db",
        ],
        "wrong-token",
    );
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("401"), "{err}");

    // Settings the server refuses to start with.
    let state = dir.path().join("other.sqlite");
    let key = dir.path().join("key");
    let (s, k) = (state.to_str().unwrap(), key.to_str().unwrap());
    for (args, words) in [
        (
            vec!["--listen", "127.0.0.1:0", "--state", s, "--key-file", k],
            "refusing to start",
        ),
        (
            vec![
                "--listen",
                "0.0.0.0:0",
                "--insecure-no-auth",
                "--state",
                s,
                "--key-file",
                k,
            ],
            "loopback",
        ),
        (
            vec![
                "--insecure-no-auth",
                "--listen",
                "127.0.0.1:0",
                "--state",
                s,
            ],
            "SEREN_JOB_KEY",
        ),
    ] {
        let mut a = vec!["serve"];
        a.extend(args);
        let (code, out, err) = output(cli().args(&a).env_remove("SEREN_JOB_KEY").output().unwrap());
        assert_eq!(code, 2, "{a:?}\n{out}\n{err}");
        assert!(err.contains(words), "{a:?}: {err}");
    }
}

/// `docs/openapi.json`.
fn openapi() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json"))
            .unwrap(),
    )
    .unwrap()
}

/// Assert a `GET /jobs/{id}` answer carries every field the document requires.
fn check_job(job: &Value, at: &str) {
    let doc = openapi();
    check_fields(&doc, &doc["components"]["schemas"]["Job"], job, at);
}

/// `$ref` → the schema it names.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => &doc["components"]["schemas"][r.rsplit('/').next().unwrap()],
        None => schema,
    }
}

/// Assert `value` carries every field `schema` requires, recursively through objects and
/// array items; `at` names the place for the message.
fn check_fields(doc: &Value, schema: &Value, value: &Value, at: &str) {
    let schema = resolve(doc, schema);
    if let Some(required) = schema["required"].as_array() {
        for f in required {
            let f = f.as_str().unwrap();
            assert!(
                value.get(f).is_some(),
                "{at}: documented field `{f}` missing in {value}"
            );
        }
    }
    if let (Some(props), Some(obj)) = (schema["properties"].as_object(), value.as_object()) {
        for (name, sub) in props {
            if let Some(v) = obj.get(name).filter(|v| !v.is_null()) {
                check_fields(doc, sub, v, &format!("{at}.{name}"));
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            check_fields(doc, items, v, &format!("{at}[{i}]"));
        }
    }
}

#[test]
fn openapi_document_matches_the_server() {
    let doc = openapi();
    let dir = tempdir();
    let server = JobServer::start(dir.path());
    let small = sqlite_source(dir.path(), 500);
    let (target, _) = fresh_db();
    let (code, done) = server.call(
        "POST",
        "/jobs",
        Some(&serde_json::json!({"source": small, "target": target, "mode": "native"})),
    );
    assert_eq!(code, 201, "{done}");
    let done_id = done["id"].as_str().unwrap().to_string();
    let finished = server.wait_finished(&done_id, Duration::from_secs(120));
    assert_eq!(finished["status"], "succeeded", "{finished}");

    // A bigger job, cancelled while it runs: the 202 answer, then `cancelled` with init's 130.
    let big_dir = tempdir();
    let big = sqlite_source(big_dir.path(), 150_000);
    let (big_target, _) = fresh_db();
    let body = serde_json::json!({"source": big, "target": big_target});
    let mut answered = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let method = method.to_uppercase();
            let concrete = path.replace("{id}", &done_id);
            let post_body = (method == "POST" && path == "/jobs").then_some(&body);
            let (code, value) = server.call(&method, &concrete, post_body);
            let documented = &op["responses"][code.to_string()];
            assert!(
                documented.is_object(),
                "{method} {path} answered {code}, not documented: {value}"
            );
            if let Some(schema) = documented["content"]["application/json"].get("schema") {
                check_fields(&doc, schema, &value, &format!("{method} {path} {code}"));
            }
            // Authenticated operations answer 401 without the token, as documented.
            let public = op["security"].as_array().is_some_and(|s| s.is_empty());
            if !public {
                assert!(op["responses"]["401"].is_object(), "{method} {path}");
                let (code, value) = http(server.port, &method, &concrete, None, None);
                assert_eq!(code, 401, "{method} {path}");
                check_fields(
                    &doc,
                    &op["responses"]["401"]["content"]["application/json"]["schema"],
                    &value,
                    "401",
                );
            }
            if path.contains("{id}") {
                let (code, value) = server.call(&method, &path.replace("{id}", "no-such"), None);
                assert_eq!(code, 404, "{method} {path}");
                assert!(op["responses"]["404"].is_object(), "{method} {path}");
                check_fields(
                    &doc,
                    &op["responses"]["404"]["content"]["application/json"]["schema"],
                    &value,
                    "404",
                );
            }
            answered.push((method, path.clone(), code, value));
        }
    }
    assert_eq!(answered.len(), 7, "{answered:?}");
    // The finished job's cancel answered 409; the running one's answers 202.
    assert!(answered
        .iter()
        .any(|(m, p, c, _)| m == "POST" && p.ends_with("/cancel") && *c == 409));
    let (_, _, _, submitted) = answered
        .iter()
        .find(|(m, p, _, _)| m == "POST" && p == "/jobs")
        .unwrap();
    let big_id = submitted["id"].as_str().unwrap().to_string();
    let (code, value) = server.call("POST", &format!("/jobs/{big_id}/cancel"), None);
    assert_eq!(code, 202, "{value}");
    check_fields(
        &doc,
        &doc["paths"]["/jobs/{id}/cancel"]["post"]["responses"]["202"]["content"]
            ["application/json"]["schema"],
        &value,
        "202",
    );
    let cancelled = server.wait_finished(&big_id, Duration::from_secs(60));
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["exit_code"], 130, "{cancelled}");
    check_job(&cancelled, "cancelled job");
    check_job(&finished, "finished job");
}

#[test]
fn postgresql_job_store_keeps_jobs_across_a_restart_without_passwords() {
    let dir = tempdir();
    let (state_url, state_db) = fresh_db();
    let port = free_port();
    let mut server = JobServer::start_with(dir.path(), port, &state_url);
    let source = sqlite_source(dir.path(), 1000);
    let (_, db) = fresh_db();
    let target = pw_url(&db, PASSWORD_URL);
    let (code, job) = server.call(
        "POST",
        "/jobs",
        Some(&serde_json::json!({"source": source, "target": target, "mode": "native"})),
    );
    assert_eq!(code, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let done = server.wait_finished(&id, Duration::from_secs(120));
    assert_eq!(done["status"], "succeeded", "{done}");
    let mut seen = server.kill();
    let server = JobServer::start_with(dir.path(), port, &state_url);
    let (code, again) = server.call("GET", &format!("/jobs/{id}"), None);
    assert_eq!(code, 200, "{again}");
    assert_eq!(again["status"], "succeeded");
    assert_eq!(again["progress"], done["progress"]);
    let (_, list) = server.call("GET", "/jobs", None);
    assert_eq!(list["jobs"].as_array().unwrap().len(), 1, "{list}");
    let (code, out, err) = run(&[
        "verify", "--mode", "native", "--source", &source, "--target", &target,
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let stored = psql(
        &state_db,
        "SELECT (SELECT string_agg(row_to_json(j)::text, ' ') FROM seren_jobs.jobs j) || \
                (SELECT string_agg(row_to_json(l)::text, ' ') FROM seren_jobs.job_logs l)",
    );
    assert!(stored.contains(&id), "{stored}");
    seen.push_str(&format!("{done}{again}{list}{}", server.output()));
    assert_clean(&[&seen, &stored]);
}

/// A second server started on the same PostgreSQL store while the first runs a job does not
/// run that job again: the job runs once, on the first.
#[test]
fn two_servers_on_one_postgresql_store_run_each_job_once() {
    let dir = tempdir();
    let (state_url, _) = fresh_db();
    let first = JobServer::start_with(dir.path(), free_port(), &state_url);
    let source = sqlite_source(dir.path(), 300_000);
    let (target, _) = fresh_db();
    let (code, job) = first.call(
        "POST",
        "/jobs",
        Some(&serde_json::json!({"source": source, "target": target})),
    );
    assert_eq!(code, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let started = Instant::now();
    loop {
        let (_, job) = first.call("GET", &format!("/jobs/{id}"), None);
        assert!(
            matches!(job["status"].as_str(), Some("queued" | "running")),
            "{job}"
        );
        if job["progress"]["rows"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{job}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let second = JobServer::start_with(dir.path(), free_port(), &state_url);
    let done = first.wait_finished(&id, Duration::from_secs(120));
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 1, "run once: {done}");
    let (_, logs) = second.call("GET", &format!("/jobs/{id}/logs"), None);
    assert_eq!(
        logs.to_string().matches("starting init").count(),
        1,
        "{logs}"
    );
}

#[test]
fn a_job_past_its_timeout_is_interrupted() {
    let dir = tempdir();
    let server = JobServer::start(dir.path());
    // 1.5 M rows: the copy takes well over the 2 s timeout.
    let source = sqlite_source(dir.path(), 500_000);
    let (target, _) = fresh_db();
    let (code, job) = server.call(
        "POST",
        "/jobs",
        Some(&serde_json::json!({"source": source, "target": target, "timeout_seconds": 2})),
    );
    assert_eq!(code, 201, "{job}");
    let id = job["id"].as_str().unwrap();
    let done = server.wait_finished(id, Duration::from_secs(60));
    assert_eq!(done["status"], "timed_out", "{done}");
    assert_eq!(
        done["exit_code"], 130,
        "SIGINT, then init's own exit: {done}"
    );
    assert_eq!(done["timeout_seconds"], 2);
    let (_, logs) = server.call("GET", &format!("/jobs/{id}/logs"), None);
    assert!(
        logs.to_string()
            .contains("the job timeout passed: sending SIGINT"),
        "{logs}"
    );
}
