//! `--roles`: role definitions copied with `pg_dumpall --roles-only`.

use super::{lex, run_tool};
use crate::conn::{query_error, PgTarget};
use crate::tools::ClientTools;
use pipeline::{Error, ErrorKind, Result};
use std::collections::HashSet;
use std::process::Stdio;

/// `--roles`: copy role definitions (pg_dumpall --roles-only --no-role-passwords from source,
/// then applied on the target one statement at a time, tolerating failures such as
/// managed-service restrictions). Returns one warning per statement that failed.
///
/// Roles that already exist on the target (the connecting user included) are left exactly as
/// they are: their CREATE, ALTER, COMMENT and SECURITY LABEL statements are skipped, with one
/// warning per such role. Passwords are never copied: set them on the target afterwards.
pub async fn copy_roles(
    tools: &ClientTools,
    source: &PgTarget,
    target: &PgTarget,
) -> Result<Vec<String>> {
    let conn = source.child_conn(None)?;
    let mut cmd = tools.command("pg_dumpall");
    cmd.args(["--roles-only", "--no-role-passwords"])
        .arg("--database")
        .arg(source.dbname())
        .arg("--dbname")
        .arg(conn.conninfo())
        .stdout(Stdio::piped());
    let what = format!("pg_dumpall --roles-only of {}", source.display());
    let out = run_tool(cmd, &conn, None, source.side(), &what).await?;
    drop(conn);
    let sql = String::from_utf8(out.stdout)
        .map_err(|_| format!("{what} wrote text that is not UTF-8"))
        .and_then(|s| lex::strip_restrict(&s).map_err(|e| format!("{what}: {e}")))
        .map_err(|e| Error::new(ErrorKind::Schema, source.side(), e))?;

    let side = target.side();
    let client = target.connect().await?;
    let existing: HashSet<String> = client
        .query("SELECT rolname::text FROM pg_roles", &[])
        .await
        .map_err(|e| query_error(side, &format!("listing roles on {}", target.display()), e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut warnings = Vec::new();
    let mut skipped: HashSet<String> = HashSet::new();
    for stmt in lex::statements(&sql) {
        let stmt = lex::strip_leading_comments(stmt).trim();
        if stmt.is_empty() {
            continue;
        }
        if let Some(role) = role_of(stmt).filter(|r| existing.contains(r)) {
            if skipped.insert(role.clone()) {
                warnings.push(format!(
                    "role \"{role}\" already exists on {}; left unchanged",
                    target.display()
                ));
            }
            continue;
        }
        if let Err(e) = client.batch_execute(stmt).await {
            if e.is_closed() {
                return Err(query_error(
                    side,
                    &format!("copying roles to {}", target.display()),
                    e,
                ));
            }
            warnings.push(
                query_error(side, &abbreviate(stmt), e)
                    .message()
                    .to_string(),
            );
        }
    }
    tracing::info!(
        warnings = warnings.len(),
        "roles copied to {}",
        target.display()
    );
    Ok(warnings)
}

/// The role a `CREATE ROLE`, `ALTER ROLE`, `COMMENT ON ROLE` or `SECURITY LABEL … ON ROLE`
/// statement (as pg_dumpall writes them) defines.
fn role_of(stmt: &str) -> Option<String> {
    let rest = ["CREATE ROLE ", "ALTER ROLE ", "COMMENT ON ROLE "]
        .iter()
        .find_map(|p| stmt.strip_prefix(p))
        .or_else(|| {
            stmt.strip_prefix("SECURITY LABEL ")
                .and_then(|s| s.split_once(" ON ROLE ").map(|x| x.1))
        })?;
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = quoted.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                } else {
                    return Some(name);
                }
            }
            name.push(c);
        }
        None
    } else {
        let name: String = rest
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != ';')
            .collect();
        (!name.is_empty()).then_some(name)
    }
}

/// The first line of a statement, cut to a readable length.
fn abbreviate(stmt: &str) -> String {
    let line = stmt.lines().next().unwrap_or_default();
    if line.chars().count() > 100 || stmt.contains('\n') {
        format!("{}…", line.chars().take(100).collect::<String>())
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_role_of_a_statement() {
        assert_eq!(role_of("CREATE ROLE alice;").as_deref(), Some("alice"));
        assert_eq!(
            role_of("ALTER ROLE \"Big \"\"B\"\"\" WITH LOGIN;").as_deref(),
            Some("Big \"B\"")
        );
        assert_eq!(
            role_of("COMMENT ON ROLE bob IS 'x';").as_deref(),
            Some("bob")
        );
        assert_eq!(
            role_of("SECURITY LABEL FOR selinux ON ROLE carol IS 'y';").as_deref(),
            Some("carol")
        );
        assert_eq!(role_of("GRANT a TO b GRANTED BY postgres;"), None);
    }
}
