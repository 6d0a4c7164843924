//! The schema phases of a PostgreSQL → PostgreSQL copy, done by PostgreSQL's own tools:
//! `pg_dump --schema-only` of the source into a private archive, its pre-data section as one
//! SQL script, its post-data section (indexes, constraints, triggers, …) split entry by entry
//! so each can run when its table is loaded, `psql` to run scripts, and `pg_dumpall` for roles.
//!
//! pg_dump is the reference implementation of "the DDL of a database": reimplementing it from
//! the catalog would be thousands of lines and always a version behind.

mod lex;
mod post_data;
mod roles;

pub use roles::copy_roles;

use crate::child::ChildConn;
use crate::conn::PgTarget;
use crate::tools::ClientTools;
use pipeline::{Error, ErrorKind, Result, Side};
use post_data::TocLine;
use std::collections::HashMap;
use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use tokio::io::AsyncWriteExt;

/// What to dump.
#[derive(Debug, Clone, Default)]
pub struct DumpOptions {
    /// Exported snapshot name (pg_export_snapshot / replication slot) so the schema matches the
    /// data copy: pg_dump --snapshot. The exporting transaction must stay open during `dump`.
    pub snapshot: Option<String>,
    /// Only these tables (schema, table); empty = all. Passed as -t with each name double-quoted
    /// so pattern characters are literal, and with --strict-names: a missing table is an error.
    pub include_tables: Vec<(String, String)>,
    /// Exclude these tables entirely (-T).
    pub exclude_tables: Vec<(String, String)>,
    /// Exclude these schemas (-N), e.g. our own state schema "seren_replicator".
    pub exclude_schemas: Vec<String>,
    /// Do not restore ownership (--no-owner at restore time).
    pub no_owner: bool,
    /// Do not restore privileges (--no-privileges / --no-acl at restore time).
    pub no_privileges: bool,
}

/// A schema-only dump of one source database (pg_dump -Fc --schema-only into a private temp
/// dir; this is the schema only, never data). The archive is removed on drop.
pub struct SchemaDump {
    _dir: tempfile::TempDir,
    archive: PathBuf,
    tools: ClientTools,
    no_owner: bool,
    no_privileges: bool,
    /// The post-data TOC (`pg_restore -l --section=post-data`), in archive order.
    toc: Vec<TocLine>,
    /// dump id → the (schema, table) its object belongs to, from the source catalog.
    tables: HashMap<u32, (String, String)>,
}

impl std::fmt::Debug for SchemaDump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaDump")
            .field("archive", &self.archive)
            .field("post_data_entries", &self.toc.len())
            .finish()
    }
}

/// Post-data SQL, entry by entry.
#[derive(Debug, Clone)]
pub struct PostData {
    /// Session settings pg_restore emits before the first entry (SET search_path = '', etc.):
    /// run before any entry's SQL. Plain SQL (no psql meta-commands).
    pub preamble: String,
    /// The entries in pg_restore's restore order.
    pub entries: Vec<PostDataEntry>,
}

/// One post-data TOC entry and its SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostDataEntry {
    /// pg_restore's dump id.
    pub dump_id: u32,
    /// TOC type: "INDEX", "CONSTRAINT", "FK CONSTRAINT", "TRIGGER", "RULE", "INDEX ATTACH",
    /// "COMMENT", "POLICY", ...
    pub kind: String,
    /// Schema of the object ("" when none).
    pub schema: String,
    /// TOC tag: for INDEX the index name; for CONSTRAINT/FK CONSTRAINT/TRIGGER/RULE/POLICY
    /// "table name" (space separated, as pg_dump writes it; line breaks in names become
    /// spaces).
    pub tag: String,
    /// The (schema, table) the object belongs to, from the source catalog by the object's OID
    /// (never parsed from names): INDEX → its table (or materialized view); CONSTRAINT, FK
    /// CONSTRAINT, CHECK CONSTRAINT → the constrained table (None for domain constraints);
    /// TRIGGER, RULE, POLICY, ROW SECURITY → their table; INDEX ATTACH → the partition whose
    /// index is attached. None for everything else (COMMENT, PUBLICATION, …).
    pub table: Option<(String, String)>,
    /// The entry's SQL, ready to execute after `preamble`: plain SQL, starting with any session
    /// setting (e.g. `SET default_tablespace`) pg_restore had made for it.
    pub sql: String,
}

impl SchemaDump {
    /// Dump the schema of `source` (its own database) with `opts`, then read the post-data
    /// table of contents and look up, in the source catalog (under `opts.snapshot` when given),
    /// which table each post-data object belongs to.
    pub async fn dump(
        tools: &ClientTools,
        source: &PgTarget,
        opts: &DumpOptions,
    ) -> Result<SchemaDump> {
        let side = source.side();
        let dir = tempfile::Builder::new()
            .prefix("seren-schema.")
            .permissions(Permissions::from_mode(0o700))
            .tempdir()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    Side::Local,
                    format!("creating a private temporary directory for the schema dump: {e}"),
                )
                .with_cause(e)
            })?;
        let archive = dir.path().join("schema.dump");
        let conn = source.child_conn(None)?;
        let mut cmd = tools.command("pg_dump");
        cmd.args([
            "--format=custom",
            "--schema-only",
            "--no-sync",
            "--encoding=UTF8",
        ])
        .arg("--file")
        .arg(&archive);
        if let Some(snapshot) = &opts.snapshot {
            cmd.arg(format!("--snapshot={snapshot}"));
        }
        if !opts.include_tables.is_empty() {
            cmd.arg("--strict-names");
        }
        for (schema, table) in &opts.include_tables {
            cmd.arg("--table").arg(table_pattern(schema, table));
        }
        for (schema, table) in &opts.exclude_tables {
            cmd.arg("--exclude-table").arg(table_pattern(schema, table));
        }
        for schema in &opts.exclude_schemas {
            cmd.arg("--exclude-schema").arg(quote_pattern(schema));
        }
        cmd.arg("--dbname").arg(conn.conninfo());
        cmd.stdout(Stdio::null());
        run_tool(
            cmd,
            &conn,
            None,
            side,
            &format!("pg_dump of {}", source.display()),
        )
        .await?;
        drop(conn);

        let mut dump = SchemaDump {
            _dir: dir,
            archive,
            tools: tools.clone(),
            no_owner: opts.no_owner,
            no_privileges: opts.no_privileges,
            toc: Vec::new(),
            tables: HashMap::new(),
        };
        let list = dump.restore(&["--list", "--section=post-data"]).await?;
        dump.toc = post_data::parse_toc(&list).map_err(|e| dump.format_error(e))?;
        dump.tables = post_data::lookup_tables(source, opts.snapshot.as_deref(), &dump.toc).await?;
        tracing::debug!(
            post_data_entries = dump.toc.len(),
            "schema dumped from {}",
            source.display()
        );
        Ok(dump)
    }

    /// SQL of the pre-data section (pg_restore --section=pre-data -f -), honouring
    /// no_owner/no_privileges. Plain SQL: psql's `\restrict` lines are taken out (any other
    /// psql meta-command is an error), so it runs through psql or a driver alike.
    pub async fn pre_data_sql(&self) -> Result<String> {
        let sql = self.restore(&["--section=pre-data", "--file=-"]).await?;
        lex::strip_restrict(&sql).map_err(|e| self.format_error(e))
    }

    /// The post-data section split into its TOC entries, in restore order, each with its own
    /// SQL. One pg_restore run; every entry of the TOC is matched by dump id, OID and name to
    /// exactly one block of the script, or this is an error.
    pub async fn post_data(&self) -> Result<PostData> {
        let script = self
            .restore(&["--section=post-data", "--verbose", "--file=-"])
            .await?;
        post_data::split(&script, &self.toc, &self.tables).map_err(|e| self.format_error(e))
    }

    /// Run pg_restore on the archive with `args` plus the owner/privilege options; its stdout.
    async fn restore(&self, args: &[&str]) -> Result<String> {
        let mut cmd = self.tools.command("pg_restore");
        cmd.args(args);
        if self.no_owner {
            cmd.arg("--no-owner");
        }
        if self.no_privileges {
            cmd.arg("--no-privileges");
        }
        cmd.arg(&self.archive);
        cmd.stdout(Stdio::piped());
        let out = spawn(cmd, None)
            .await
            .map_err(|e| spawn_error("pg_restore", e))?;
        if !out.status.success() {
            return Err(Error::new(
                ErrorKind::Schema,
                Side::Local,
                format!(
                    "pg_restore {} failed: {}",
                    args.join(" "),
                    stderr_tail(&out.stderr)
                ),
            ));
        }
        String::from_utf8(out.stdout)
            .map_err(|_| self.format_error("pg_restore wrote text that is not UTF-8".to_string()))
    }

    fn format_error(&self, msg: String) -> Error {
        Error::new(
            ErrorKind::Schema,
            Side::Local,
            format!(
                "cannot read the schema dump made by pg_dump {}: {msg}",
                self.tools.major
            ),
        )
    }
}

/// Run SQL through psql on `target` (psql -X -q -v ON_ERROR_STOP=1, --single-transaction when
/// asked), SQL fed on stdin. `sql` must be plain SQL: `\restrict` lines are dropped and any
/// other psql meta-command is refused. On failure: an error with psql's stderr (never any
/// password), naming the server (target.display()).
pub async fn run_sql(
    tools: &ClientTools,
    target: &PgTarget,
    sql: &str,
    single_transaction: bool,
) -> Result<()> {
    let sql = lex::strip_restrict(sql).map_err(|e| {
        Error::new(
            ErrorKind::Schema,
            target.side(),
            format!("refusing to run SQL on {}: {e}", target.display()),
        )
    })?;
    let conn = target.child_conn(None)?;
    let mut cmd = tools.command("psql");
    cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1"]);
    if single_transaction {
        cmd.arg("--single-transaction");
    }
    cmd.arg("--dbname").arg(conn.conninfo());
    cmd.stdout(Stdio::null());
    run_tool(
        cmd,
        &conn,
        Some(sql.as_bytes()),
        target.side(),
        &format!("running SQL on {}", target.display()),
    )
    .await?;
    Ok(())
}

/// `"schema"."table"` as a pg_dump pattern that matches exactly that table.
fn table_pattern(schema: &str, table: &str) -> String {
    format!("{}.{}", quote_pattern(schema), quote_pattern(table))
}

/// A name in double quotes (inner `"` doubled): `*`, `?`, `.` and capitals are literal.
fn quote_pattern(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Run a client program connecting with `conn` (stdout as the caller set it up), feeding
/// `stdin`; a failure becomes an error saying `what` failed, with the program's messages.
async fn run_tool(
    mut cmd: tokio::process::Command,
    conn: &ChildConn,
    stdin: Option<&[u8]>,
    side: Side,
    what: &str,
) -> Result<Output> {
    conn.apply(&mut cmd);
    let program = cmd
        .as_std()
        .get_program()
        .to_string_lossy()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let out = spawn(cmd, stdin)
        .await
        .map_err(|e| spawn_error(&program, e))?;
    if out.status.success() {
        return Ok(out);
    }
    let stderr = stderr_tail(&out.stderr);
    let lower = stderr.to_lowercase();
    let (kind, hint) = if lower.contains("password authentication failed")
        || lower.contains("no password supplied")
        || lower.contains("permission denied")
        || lower.contains("must be superuser")
        || lower.contains("must be owner")
    {
        (ErrorKind::Auth, "")
    } else if lower.contains("server version mismatch") || lower.contains("aborting because of") {
        (
            ErrorKind::Config,
            "; install the PostgreSQL client tools of the server's major version or newer",
        )
    } else if lower.contains("connection to server")
        || lower.contains("could not connect")
        || lower.contains("could not translate host name")
    {
        (ErrorKind::Connect, "")
    } else {
        (ErrorKind::Query, "")
    };
    Err(Error::new(
        kind,
        side,
        format!("{what} failed: {stderr}{hint}"),
    ))
}

/// Spawn `cmd` with stderr captured (and stdin piped when there is input), write the input
/// while collecting the output so neither side can block the other.
async fn spawn(mut cmd: tokio::process::Command, stdin: Option<&[u8]>) -> std::io::Result<Output> {
    cmd.stderr(Stdio::piped());
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn()?;
    let input = child.stdin.take();
    let write = async move {
        if let (Some(mut pipe), Some(data)) = (input, stdin) {
            // A child that stops early (ON_ERROR_STOP) closes its stdin: its stderr says why.
            let _ = pipe.write_all(data).await;
            let _ = pipe.shutdown().await;
        }
    };
    let ((), out) = tokio::join!(write, child.wait_with_output());
    out
}

fn spawn_error(program: &str, e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Io,
        Side::Local,
        format!("cannot run {program}: {e}"),
    )
    .with_cause(e)
}

/// The last lines of a program's stderr, enough to show the error without flooding.
fn stderr_tail(stderr: &[u8]) -> String {
    const MAX_LINES: usize = 20;
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("pg_restore: creating "))
        .collect();
    let tail = &lines[lines.len().saturating_sub(MAX_LINES)..];
    if tail.is_empty() {
        "(no message)".to_string()
    } else {
        tail.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_patterns_are_literal() {
        assert_eq!(
            table_pattern("my schema", "My*\"Table\".x"),
            "\"my schema\".\"My*\"\"Table\"\".x\""
        );
    }

    #[test]
    fn stderr_tail_keeps_the_end() {
        let err: String = (0..30).map(|i| format!("line {i}\n")).collect();
        let t = stderr_tail(err.as_bytes());
        assert!(t.starts_with("line 10\n") && t.ends_with("line 29"));
        assert_eq!(stderr_tail(b""), "(no message)");
    }
}
