//! The record loader (DTX 2.0 PostgreSQL).

pub mod book;
pub mod connect;
pub mod mapping;
pub mod output;
pub mod runner;
pub mod steps;
pub mod validate;
