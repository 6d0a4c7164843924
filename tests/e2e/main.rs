//! End-to-end tests of the `seren-replicator` binary against real, throwaway servers.

mod bad_input_suite;
mod connectors_cmd;
mod copy_encoder;
mod harness;
mod mariadb;
mod mongo;
mod mongo_server;
mod mysql;
mod parquet;
mod pg_clone;
mod pg_pair;
mod pg_passfile;
mod pg_retry;
mod pg_schema;
mod pg_status;
mod pg_sync;
mod pg_verify;
mod secrets;
mod sqlite_errors;
mod sqlite_jsonb;
mod sqlite_native;
mod sqlite_runs;
mod sync_apply;
mod sync_refresh;
mod tls;
mod validate;
