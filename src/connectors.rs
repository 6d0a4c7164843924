//! The connectors this binary knows. A custom binary builds its own registry the same way.

use pipeline::Registry;

/// Every built-in source connector.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    r.register(seren_sqlite::SqliteFactory);
    r.register(seren_postgres::source::PgSourceFactory);
    r
}
