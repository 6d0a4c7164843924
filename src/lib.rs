//! The `seren-replicator` command line: argument parsing, the built-in connector registry and
//! one module per command. The data path itself lives in the `pipeline` crate and connectors.

pub mod cli;
pub mod commands;
pub mod connectors;
pub mod rules;
pub mod sample;
pub mod session;
pub mod throwaway;
pub mod view;
