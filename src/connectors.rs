//! The connectors this binary knows. A custom binary builds its own registry the same way.

use pipeline::Registry;

/// Every built-in source connector, after those a custom binary added ([`add_connectors`]).
pub fn registry() -> Registry {
    let mut r = Registry::new();
    if let Some(add) = EXTRA.get() {
        add(&mut r);
    }
    r.register(seren_sqlite::SqliteFactory);
    r.register(seren_mysql::MySqlFactory);
    r.register(seren_postgres::source::PgSourceFactory);
    r.register(seren_parquet::ParquetFactory);
    r.register(seren_mongodb::MongoFactory);
    r
}

/// Connectors a custom binary adds (see [`crate::run_with`]), consulted before the built-in
/// ones so that its author decides which connector takes a location both accept.
type AddConnectors = Box<dyn Fn(&mut Registry) + Send + Sync>;
static EXTRA: std::sync::OnceLock<AddConnectors> = std::sync::OnceLock::new();

/// Make [`registry`] also hold the connectors `add` registers, ahead of the built-in ones.
/// Takes effect once per process; later calls are ignored.
pub fn add_connectors(add: impl Fn(&mut Registry) + Send + Sync + 'static) {
    let _ = EXTRA.set(Box::new(add));
}
