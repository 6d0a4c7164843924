//! Binlog change capture: the preflight that says exactly what to change on the server, and the
//! stream of committed transactions from a recorded position (see `stream`).

mod decode;
mod stream;

use crate::conn::MySqlLocation;
use crate::error::{mysql, source_error};
use crate::source::MySqlSource;
use mysql_async::prelude::Queryable;
use mysql_async::Value;
use pipeline::{ChangeStream, ErrorKind, Result, TableInfo};

/// A global variable as upper-case text, `None` when the server has no such variable.
async fn var(conn: &mut mysql_async::Conn, name: &str) -> Option<String> {
    let value = conn
        .query_first::<Value, _>(format!("SELECT @@GLOBAL.{name}"))
        .await
        .ok()
        .flatten()?;
    Some(match value {
        Value::Bytes(b) => String::from_utf8_lossy(&b).to_uppercase(),
        Value::Int(i) => i.to_string(),
        Value::UInt(i) => i.to_string(),
        other => format!("{other:?}"),
    })
}

/// Check the server writes a binlog the stream can decode, and the user may read it.
pub(crate) async fn check(location: &MySqlLocation, _tables: &[TableInfo]) -> Result<()> {
    let mut conn = location.connect().await?;
    let mut problems = Vec::new();
    if var(&mut conn, "log_bin").await.as_deref() != Some("1") {
        problems.push(
            "the binary log is off: start the server with log_bin (e.g. log_bin = mysql-bin \
             and server_id = 1 under [mysqld] in my.cnf) and restart it"
                .to_string(),
        );
    }
    for (name, wanted) in [
        ("binlog_format", "ROW"),
        ("binlog_row_image", "FULL"),
        ("binlog_row_metadata", "FULL"),
        ("log_bin_compress", "0"),
    ] {
        // Variables the server does not have (older versions) are not checked.
        if let Some(value) = var(&mut conn, name).await {
            if value != wanted {
                let shown = if wanted == "0" { "OFF" } else { wanted };
                problems.push(format!(
                    "{name} is {value}, binlog sync needs {shown}: run SET GLOBAL {name} = \
                     '{shown}' and add {name} = {shown} under [mysqld] in my.cnf"
                ));
            }
        }
    }
    let grants: Vec<String> = conn
        .query("SHOW GRANTS")
        .await
        .map_err(|e| mysql(e, "reading the user's privileges"))?;
    let can_replicate = grants.iter().any(|g| {
        let g = g.to_uppercase();
        g.contains("ALL PRIVILEGES ON *.*")
            || g.contains("REPLICATION SLAVE")
            || g.contains("REPLICATION REPLICA")
    });
    if !can_replicate {
        problems.push(format!(
            "user `{}` lacks the REPLICATION SLAVE privilege: GRANT REPLICATION SLAVE, \
             REPLICATION CLIENT ON *.* TO '{}'@'%'",
            location.user(),
            location.user()
        ));
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(source_error(
        ErrorKind::Config,
        format!(
            "MySQL source {} is not set up for binlog sync: {}",
            location.shown(),
            problems.join("; ")
        ),
    ))
}

/// Where a binlog stream stands: file and offset of the next event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Position {
    pub file: String,
    pub pos: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid: Option<String>,
}

impl Position {
    fn parse(value: &serde_json::Value) -> Result<Position> {
        serde_json::from_value(value.clone()).map_err(|_| {
            source_error(
                ErrorKind::Config,
                format!(
                    "the stored binlog position {value} is not one this connector wrote (the \
                     server had no binlog at snapshot time?); run init again"
                ),
            )
        })
    }
}

impl MySqlSource {
    /// Open the change stream (see [`stream::open`]).
    pub(crate) async fn binlog(
        &self,
        position: serde_json::Value,
        tables: &[TableInfo],
    ) -> Result<Box<dyn ChangeStream>> {
        stream::open(self, Position::parse(&position)?, tables).await
    }
}
