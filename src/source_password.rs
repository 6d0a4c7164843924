//! The source's password when it is not in the source URL: from `--source-password-file`, or
//! for MySQL/MariaDB sources from `MYSQL_PWD` as the `mysql` client reads it. The password is
//! put into the source location (URL userinfo, or PostgreSQL conninfo) before any connector
//! sees it, so it takes the path of a password typed in the URL: connectors redact it from
//! every message, and PostgreSQL client tools get it through a private password file, never
//! their argument list. (PostgreSQL sources already read `PGPASSWORD` and `~/.pgpass`.)

use crate::cli::Command;
use crate::session;
use anyhow::Result;
use pipeline::Error;
use std::path::Path;

/// Put the source password into the source location of `command`, for every command that
/// takes a source; commands without one are left as they are.
pub fn resolve(command: &mut Command) -> Result<()> {
    let (source, file) = match command {
        Command::Init(a) => endpoints(&mut a.tables.endpoints),
        Command::Validate(a) => endpoints(&mut a.check.endpoints),
        Command::Verify(a) => endpoints(&mut a.check.endpoints),
        Command::Sync(a) => endpoints(&mut a.endpoints),
        Command::Status(a) => (&mut a.source, a.source_password_file.take()),
        Command::Export(a) => (&mut a.source, a.source_password_file.take()),
        Command::Demo(_)
        | Command::Connectors
        | Command::Serve(_)
        | Command::Jobs(_)
        | Command::Worker(_) => return Ok(()),
    };
    let env = std::env::var("MYSQL_PWD").ok();
    *source = with_source_password(source, file.as_deref(), env.as_deref())?;
    Ok(())
}

fn endpoints(e: &mut crate::cli::Endpoints) -> (&mut String, Option<std::path::PathBuf>) {
    (&mut e.source, e.source_password_file.take())
}

/// `source` with the password from `file` (its first line) or, for a MySQL/MariaDB URL that
/// holds none, from `mysql_pwd` (the value of `MYSQL_PWD`, ignored when empty).
fn with_source_password(
    source: &str,
    file: Option<&Path>,
    mysql_pwd: Option<&str>,
) -> Result<String> {
    let Some(file) = file else {
        return Ok(match mysql_pwd.filter(|p| !p.is_empty()) {
            Some(pw) if is_mysql(source) && !url_has_password(source) => {
                with_url_password(source, pw).unwrap_or_else(|| source.to_string())
            }
            _ => source.to_string(),
        });
    };
    let pw = session::read_password_file(file, "source password file", "--source-password-file")?;
    if session::is_postgres(source) {
        return Ok(session::with_password(source, &pw));
    }
    let shown = seren_postgres::redact_conninfo(source);
    if !(is_mysql(source) || is_mongodb(source)) {
        return Err(Error::config(format!(
            "--source-password-file: source `{shown}` takes no password (only PostgreSQL, \
             MySQL/MariaDB and MongoDB sources do)"
        ))
        .into());
    }
    with_url_password(source, &pw).ok_or_else(|| {
        Error::config(format!(
            "--source-password-file: source `{shown}` names no user to give the password to; \
             add one, e.g. mysql://USER@HOST/DB or mongodb://USER@HOST/DB"
        ))
        .into()
    })
}

fn is_mysql(source: &str) -> bool {
    source.starts_with("mysql://") || source.starts_with("mariadb://")
}

fn is_mongodb(source: &str) -> bool {
    source.starts_with("mongodb://") || source.starts_with("mongodb+srv://")
}

/// The `user[:password]` part of a `scheme://user[:password]@hosts/…` URL, and where it ends.
fn userinfo(url: &str) -> Option<(usize, &str)> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let at = authority.rfind('@')?;
    Some((start, &authority[..at]))
}

fn url_has_password(url: &str) -> bool {
    userinfo(url).is_some_and(|(_, info)| info.contains(':'))
}

/// `url` with its userinfo password set to `password` (percent-encoded); `None` when the URL
/// names no user.
fn with_url_password(url: &str, password: &str) -> Option<String> {
    let (start, info) = userinfo(url)?;
    let user = info.split_once(':').map_or(info, |(u, _)| u);
    if user.is_empty() {
        return None;
    }
    let encoded = session::url_component(password);
    Some(format!(
        "{}{user}:{encoded}{}",
        &url[..start],
        &url[start + info.len()..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn the_file_password_goes_into_each_kind_of_source() {
        let f = file_with("p@ss:w/rd\nsecond line ignored\n");
        let with = |s: &str| with_source_password(s, Some(f.path()), None).unwrap();
        assert_eq!(
            with("mysql://app@h:3306/shop"),
            "mysql://app:p%40ss%3Aw%2Frd@h:3306/shop"
        );
        assert_eq!(
            with("mariadb://app:old@h/shop"),
            "mariadb://app:p%40ss%3Aw%2Frd@h/shop"
        );
        assert_eq!(
            with("mongodb://app@h1,h2/db?authSource=admin"),
            "mongodb://app:p%40ss%3Aw%2Frd@h1,h2/db?authSource=admin"
        );
        assert_eq!(
            with("postgresql://app@h/db"),
            "postgresql://app@h/db?password=p%40ss%3Aw%2Frd"
        );
        let no_user = with_source_password("mysql://h/db", Some(f.path()), None);
        assert!(no_user.unwrap_err().to_string().contains("names no user"));
        let sqlite = with_source_password("./app.db", Some(f.path()), None);
        assert!(sqlite
            .unwrap_err()
            .to_string()
            .contains("takes no password"));
    }

    #[test]
    fn mysql_pwd_fills_only_a_missing_mysql_password() {
        let env = |s: &str, pw| with_source_password(s, None, pw).unwrap();
        assert_eq!(
            env("mysql://app@h/db", Some("x y")),
            "mysql://app:x%20y@h/db"
        );
        assert_eq!(
            env("mysql://app:url@h/db", Some("x")),
            "mysql://app:url@h/db"
        );
        assert_eq!(env("mysql://app@h/db", Some("")), "mysql://app@h/db");
        assert_eq!(env("mongodb://app@h/db", Some("x")), "mongodb://app@h/db");
        assert_eq!(
            env("postgresql://app@h/db", Some("x")),
            "postgresql://app@h/db"
        );
    }

    #[test]
    fn an_unreadable_file_is_named() {
        let e = with_source_password("mysql://a@h/db", Some(Path::new("/nonexistent/pw")), None);
        let msg = e.unwrap_err().to_string();
        assert!(
            msg.contains("cannot read the source password file /nonexistent/pw"),
            "{msg}"
        );
        assert!(msg.contains("--source-password-file"), "{msg}");
    }
}
