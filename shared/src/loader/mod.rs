//! The record loader (DTX 2.0 PostgreSQL).

pub mod mapping;
pub mod output;
pub mod runner;
pub mod validate;
