//! PostgreSQL → PostgreSQL `init`: source on the shared cluster, target on a second one
//! (`pg_pair`), so user types have different OIDs on each side. Every test makes its own
//! databases with random names.

mod accounts;
mod concurrent;
mod conflicts;
mod crash;
mod databases;
mod dry_run;
mod every_type;
mod filters;
mod many;
mod resume_changed;
