//! The PostgreSQL client programs (`pg_dump`, `pg_restore`, `psql`, `pg_dumpall`): finding a
//! set new enough for the server, and running them without leaking anything from our process.
//!
//! `pg_dump` refuses to dump a server of a newer major version, so the tools are chosen by the
//! source server's major version. Debian's `/usr/bin/pg_dump` is a wrapper script that picks a
//! version by its own rules; we skip it and use the real binaries, so the version checked is
//! the version run.

use pipeline::{Error, ErrorKind, Result, Side};
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// Programs every set must have: the schema phases and `--roles` use all four.
const REQUIRED: [&str; 4] = ["pg_dump", "pg_restore", "psql", "pg_dumpall"];

/// Where Debian and Ubuntu install each major version's client programs.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

/// The PostgreSQL client programs (pg_dump, pg_restore, psql, pg_dumpall) of one major version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTools {
    /// The directory holding the programs.
    pub bin_dir: PathBuf,
    /// Their major version (`pg_dump --version`), e.g. 15; 9 for the 9.x series.
    pub major: u32,
}

impl ClientTools {
    /// Find client tools whose major version is >= `server_major`.
    ///
    /// Candidates, in order: each directory of `PATH` holding a real `pg_dump` (not Debian's
    /// `pg_wrapper`), so a directory put first in `PATH` wins; then `/usr/lib/postgresql/*/bin`,
    /// highest version first. The first candidate that is new enough and has all four programs
    /// is taken; its version is checked with `pg_dump --version`. When none is new enough: an
    /// [`ErrorKind::Config`] error naming the server version and the fix.
    pub fn find(server_major: u32) -> Result<ClientTools> {
        let mut seen: Vec<PathBuf> = Vec::new();
        let mut found: Vec<ClientTools> = Vec::new();
        for dir in candidates() {
            let Ok(real) = dir.canonicalize() else {
                continue;
            };
            if seen.contains(&real) {
                continue;
            }
            seen.push(real);
            if !REQUIRED.iter().all(|t| is_real_tool(&dir, t)) {
                continue;
            }
            let Some(major) = version_of(&dir.join("pg_dump")) else {
                continue;
            };
            let tools = ClientTools {
                bin_dir: dir,
                major,
            };
            if major >= server_major {
                tracing::debug!(bin_dir = %tools.bin_dir.display(), major, "PostgreSQL client tools");
                return Ok(tools);
            }
            found.push(tools);
        }
        let have = if found.is_empty() {
            "no pg_dump was found".to_string()
        } else {
            let list: Vec<String> = found
                .iter()
                .map(|t| format!("{} in {}", t.major, t.bin_dir.display()))
                .collect();
            format!("the client tools found are too old ({})", list.join(", "))
        };
        Err(Error::new(
            ErrorKind::Config,
            Side::Local,
            format!(
                "the PostgreSQL server is version {server_major} and its schema can only be \
                 dumped by pg_dump {server_major} or newer, but {have}; install \
                 postgresql-client-{server_major}: apt-get install \
                 postgresql-client-{server_major}, or put its bin directory first in PATH"
            ),
        ))
    }

    /// A tokio Command for `tool` (e.g. "pg_dump") from `bin_dir`, with stdin null and
    /// `kill_on_drop`, so a cancelled run never leaves the child behind.
    pub fn command(&self, tool: &str) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(self.bin_dir.join(tool));
        cmd.stdin(Stdio::null()).kill_on_drop(true);
        cmd
    }
}

/// `PATH` directories, then Debian's per-version directories, highest version first.
fn candidates() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir(DEBIAN_ROOT)
        .map(|rd| {
            rd.filter_map(|e| {
                let e = e.ok()?;
                let v = e.file_name().to_str()?.split('.').next()?.parse().ok()?;
                Some((v, e.path().join("bin")))
            })
            .collect()
        })
        .unwrap_or_default();
    debian.sort_by_key(|d| std::cmp::Reverse(d.0));
    dirs.extend(debian.into_iter().map(|(_, p)| p));
    dirs
}

/// `dir/tool` exists and is the program itself, not a wrapper that chooses a version.
fn is_real_tool(dir: &Path, tool: &str) -> bool {
    match dir.join(tool).canonicalize() {
        Ok(real) => real.is_file() && real.file_name().is_some_and(|n| n == tool),
        Err(_) => false,
    }
}

/// The major version printed by `pg_dump --version`.
fn version_of(pg_dump: &Path) -> Option<u32> {
    let out = std::process::Command::new(pg_dump)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    parse_version(&String::from_utf8_lossy(&out.stdout))
}

/// `pg_dump (PostgreSQL) 15.13 (Debian 15.13-0+deb12u1)` → 15; `… 9.6.24` → 9; `… 17beta1` → 17.
fn parse_version(text: &str) -> Option<u32> {
    let rest = &text[text.find("(PostgreSQL) ")? + "(PostgreSQL) ".len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(
            parse_version("pg_dump (PostgreSQL) 15.13 (Debian 15.13-0+deb12u1)\n"),
            Some(15)
        );
        assert_eq!(parse_version("pg_dump (PostgreSQL) 9.6.24"), Some(9));
        assert_eq!(parse_version("pg_dump (PostgreSQL) 17beta1"), Some(17));
        assert_eq!(parse_version("something else"), None);
    }

    #[test]
    fn too_new_a_server_gives_the_fix() {
        let e = ClientTools::find(99).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("version 99"), "{}", e.message());
        assert!(e.message().contains(
            "apt-get install postgresql-client-99, or put its bin directory first in PATH"
        ));
    }
}
