//! One migration shared by three `worker` processes through a PostgreSQL job store: the first
//! (whose snapshot the others joined) is killed with -9 in the middle of a partition, the other
//! two finish the copy; `verify` is exact, no row is duplicated, the job is marked succeeded,
//! and no password shows anywhere.

use super::server::{run_remote, JobServer, PASSWORD_URL};
use crate::bad_input_suite::{assert_clean, pw_url};
use crate::harness::{cli, free_port, fresh_db, output, psql, run};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A `worker` process whose PostgreSQL sessions are named `name` (PGAPPNAME).
struct Worker {
    name: String,
    child: Child,
    log: tempfile::NamedTempFile,
}

impl Worker {
    fn start(job: &str, state: &str, key: &str, name: &str) -> Worker {
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = cli()
            .env("PGAPPNAME", name)
            .args([
                "worker",
                "--job",
                job,
                "--state",
                state,
                "--key-file",
                key,
                "--name",
                name,
                "-j",
                "1",
            ])
            .stdout(Stdio::from(log.reopen().unwrap()))
            .stderr(Stdio::from(log.reopen().unwrap()))
            .spawn()
            .unwrap();
        Worker {
            name: name.into(),
            child,
            log,
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Wait for its exit; returns its output after asserting it succeeded.
    fn finish(self, limit: Duration) -> String {
        let name = self.name.clone();
        let (code, out) = self.exit(limit);
        assert_eq!(code, 0, "{name} failed:\n{out}");
        out
    }

    /// Wait for its exit; returns its exit code and output.
    fn exit(mut self, limit: Duration) -> (i32, String) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code().unwrap_or(-1), self.output());
            }
            assert!(
                started.elapsed() < limit,
                "{} still running:\n{}",
                self.name,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Whether worker `name` is writing a partition into database `db` now.
fn writing(db: &str, name: &str) -> bool {
    psql(
        db,
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = '{name}' \
             AND state = 'active' AND query LIKE 'COPY%FROM STDIN%'"
        ),
    ) == "1"
}

fn wait_for(what: &str, limit: Duration, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < limit,
            "{what} did not happen in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A job server with a PostgreSQL job store, and its credential key.
struct Store {
    server: JobServer,
    state: String,
    state_db: String,
    key: String,
    _dir: tempfile::TempDir,
}

impl Store {
    fn start() -> Store {
        let dir = crate::harness::tempdir();
        let (state, state_db) = fresh_db();
        let server = JobServer::start_with(dir.path(), free_port(), &state);
        let key = dir.path().join("key").to_str().unwrap().to_string();
        Store {
            server,
            state,
            state_db,
            key,
            _dir: dir,
        }
    }

    /// Submit a copy of database `src` into `dst` for workers; returns the job id.
    fn submit(&self, src: &str, dst: &str) -> String {
        let (code, job) = self.server.call(
            "POST",
            "/jobs",
            Some(&serde_json::json!({"source": pw_url(src, PASSWORD_URL),
                "target": pw_url(dst, PASSWORD_URL), "no_sync": true, "workers": true,
                "split_tables_larger_than": "4MB"})),
        );
        assert_eq!(code, 201, "{job}");
        job["id"].as_str().unwrap().to_string()
    }

    fn worker(&self, job: &str, name: &str) -> Worker {
        Worker::start(job, &self.state, &self.key, name)
    }
}

#[test]
fn three_workers_share_a_migration_and_one_is_killed_mid_partition() {
    let store = Store::start();
    let (server, state_db) = (&store.server, &store.state_db);
    let src = super::pg_source(1, 1_200_000);
    psql(
        &src,
        "CREATE TABLE small (id bigserial PRIMARY KEY, t0_id bigint REFERENCES t0);
         INSERT INTO small (t0_id) SELECT i FROM generate_series(1, 1000) i;",
    );
    let source = pw_url(&src, PASSWORD_URL);
    let (_, dst) = fresh_db();
    let target = pw_url(&dst, PASSWORD_URL);
    let id = store.submit(&src, &dst);
    std::thread::sleep(Duration::from_secs(1));
    let (_, queued) = server.call("GET", &format!("/jobs/{id}"), None);
    assert_eq!(
        queued["status"], "queued",
        "the server leaves it to workers: {queued}"
    );

    let registered = || {
        psql(
            state_db,
            &format!("SELECT count(*) FROM seren_jobs.worker_snapshots WHERE job_id = '{id}'"),
        )
    };
    // Started together, as a Kubernetes Job's pods would be: they join one at a time.
    let mut first = store.worker(&id, "w0");
    let others = [store.worker(&id, "w1"), store.worker(&id, "w2")];
    wait_for("three workers", Duration::from_secs(60), || {
        registered() == "3"
    });
    let (_, running) = server.call("GET", &format!("/jobs/{id}"), None);
    assert_eq!(running["status"], "running", "{running}");
    super::check_job(&running, "job shared by workers");
    let (code, shown, err) = run_remote(
        &["jobs", "--remote", &server.url(), "status", &id],
        super::server::TOKEN,
    );
    assert_eq!(code, 0, "{err}");
    assert!(shown.contains("Worker w1: joined "), "{shown}");
    let names: Vec<&str> = running["workers"]
        .as_array()
        .unwrap_or_else(|| panic!("{running}"))
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "{running}");
    for w in ["w0", "w1", "w2"] {
        assert!(names.contains(&w), "{running}");
    }

    // Kill the first worker while one of its partitions is being written.
    wait_for("w0 writing a partition", Duration::from_secs(60), || {
        writing(&dst, "w0")
    });
    let done_before = psql(
        &dst,
        "SELECT count(*) FROM seren_replicator.partition_done WHERE table_name = 'public.t0'",
    );
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let planned = psql(
        &dst,
        "SELECT count(*) FROM seren_replicator.partition_claim WHERE table_name = 'public.t0'",
    );
    assert!(
        planned.parse::<u32>().unwrap() >= 10,
        "t0 is split into partitions: {planned}"
    );
    assert!(
        done_before.parse::<u32>().unwrap() < planned.parse::<u32>().unwrap(),
        "killed before the end: {done_before} of {planned} partitions done"
    );

    let mut seen = first.output();
    for w in others {
        seen.push_str(&w.finish(Duration::from_secs(300)));
    }
    let job = server.wait_finished(&id, Duration::from_secs(10));
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["exit_code"], 0, "{job}");

    let (code, out, err) = run(&["verify", "--source", &source, "--target", &target]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        psql(&dst, "SELECT count(*) || ' ' || count(DISTINCT id) FROM t0"),
        "1200000 1200000"
    );
    assert_eq!(
        psql(
            &dst,
            "SELECT string_agg(contype::text, '' ORDER BY contype) FROM pg_constraint \
             WHERE conrelid IN ('t0'::regclass, 'small'::regclass)"
        ),
        "fpp",
        "primary keys and the foreign key built"
    );
    assert_eq!(
        psql(&dst, "SELECT nextval('small_id_seq')"),
        "1001",
        "sequences set"
    );
    assert_eq!(
        psql(
            &dst,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'seren_replicator'"
        ),
        "0",
        "the resume state is dropped"
    );
    let (_, logs) = server.call("GET", &format!("/jobs/{id}/logs"), None);
    let logs = logs.to_string();
    for w in ["w0", "w1", "w2"] {
        assert!(logs.contains(&format!("worker {w}")), "{logs}");
    }
    assert!(logs.contains("finished the copy"), "{logs}");

    // A worker started after the end has nothing to do; a wrong job id is an error.
    let late = store.worker(&id, "w3").finish(Duration::from_secs(60));
    assert!(late.contains("is complete"), "{late}");
    let (code, _, err) = output(
        cli()
            .args([
                "worker",
                "--job",
                "no-such-job",
                "--state",
                &store.state,
                "--key-file",
                &store.key,
            ])
            .output()
            .unwrap(),
    );
    assert_ne!(code, 0);
    assert!(err.contains("no job no-such-job"), "{err}");

    let stored = psql(
        state_db,
        "SELECT (SELECT string_agg(row_to_json(j)::text, ' ') FROM seren_jobs.jobs j) || \
                (SELECT string_agg(row_to_json(l)::text, ' ') FROM seren_jobs.job_logs l)",
    );
    seen.push_str(&format!(
        "{job}{logs}{late}{err}{out}{shown}{running}{}",
        server.output()
    ));
    assert_clean(&[&seen, &stored]);
}

#[test]
fn cancelling_a_shared_job_stops_its_workers() {
    let store = Store::start();
    let server = &store.server;
    let (_, src) = fresh_db();
    psql(
        &src,
        "CREATE TABLE t0 (id bigint PRIMARY KEY, s text);
         INSERT INTO t0 SELECT i, repeat(md5(i::text), 4) FROM generate_series(1, 2000000) i;",
    );
    let (_, dst) = fresh_db();
    let id = store.submit(&src, &dst);
    let worker = store.worker(&id, "c0");
    wait_for("c0 writing a partition", Duration::from_secs(60), || {
        writing(&dst, "c0")
    });
    let (code, out, err) = run_remote(
        &["jobs", "--remote", &server.url(), "cancel", &id],
        super::server::TOKEN,
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out) = worker.exit(Duration::from_secs(60));
    assert_eq!(code, 130, "stopped as by Ctrl-C:\n{out}");
    assert!(out.contains("was cancelled"), "{out}");
    let (_, job) = server.call("GET", &format!("/jobs/{id}"), None);
    assert_eq!(job["status"], "cancelled", "{job}");
    let (code, late) = store.worker(&id, "c1").exit(Duration::from_secs(60));
    assert_ne!(code, 0);
    assert!(late.contains("is cancelled"), "{late}");
    assert_clean(&[&out, &late, &job.to_string(), &server.output()]);
}
