//! The record loader (DTX 2.0 PostgreSQL).

pub mod book;
pub mod connect;
pub mod drive;
pub mod export;
pub mod mapping;
pub mod output;
pub mod remote;
pub mod rollback;
pub mod runner;
pub mod steps;
pub mod validate;
pub mod verify;
