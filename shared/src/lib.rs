//! dtx-migrate's library: the domain (path resolution, messages, the worker's move
//! protocol, the inventory's planning), the ports it needs, and the adapters that
//! implement them over S3, SQS, DynamoDB, MySQL and the local filesystem.
//!
//! The domain modules never name an AWS type; `adapters` is the only place that does.

pub mod adapters;
pub mod config;
pub mod crash;
pub mod error;
pub mod forecast;
pub mod hashing;
pub mod inventory;
pub mod keys;
pub mod legacy;
pub mod loader;
pub mod local;
pub mod manifest;
pub mod mappings;
pub mod message;
pub mod metrics;
pub mod model;
pub mod paths;
pub mod ports;
pub mod report;
pub mod sample;
pub mod secrets;
pub mod source;
pub mod status;
pub mod telemetry;
pub mod verify;
pub mod wiring;
pub mod worker;
