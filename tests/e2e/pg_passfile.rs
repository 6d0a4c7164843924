//! The private password files handed to pg_dump/psql: a run killed with SIGKILL cannot remove
//! its own, so the next run removes those of processes that no longer exist — and only those.

use crate::pg_pair::{fresh_source_db, fresh_target_db, init_ok, script};

#[test]
fn leftovers_of_dead_processes_are_removed() {
    let tmp = std::env::temp_dir();
    // A process id above the kernel's maximum (2^22) never runs.
    let dead = tmp.join("seren-pgpass.4194305.test");
    let alive = tmp.join(format!("seren-pgpass.{}.test", std::process::id()));
    for d in [&dead, &alive] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("pgpass"), "*:*:*:*:secret\n").unwrap();
    }
    let (src, _) = fresh_source_db();
    script(&src, "CREATE TABLE t (id int PRIMARY KEY);");
    let (dst, _) = fresh_target_db();
    init_ok(&src, &dst, &[]);
    assert!(
        !dead.exists(),
        "the dead process's password file is still there"
    );
    assert!(alive.exists(), "a live process's password file was removed");
    std::fs::remove_dir_all(&alive).unwrap();
}
