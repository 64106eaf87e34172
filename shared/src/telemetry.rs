//! Logging: JSON lines in Lambda (CloudWatch parses them), readable text in a terminal.
//!
//! Whatever level operators ask for, the crates that log wire-level detail (request and
//! response bodies and headers, TLS and HTTP frames) stay at `info`: at `debug`/`trace` they
//! would write a Secrets Manager answer (the database password) or signed request headers
//! into CloudWatch. `tests/log_secrets.rs` runs the product at `trace` and checks the logs.

use tracing_subscriber::filter::Directive;
use tracing_subscriber::EnvFilter;

/// Targets capped at `info`.
pub const WIRE_TARGETS: [&str; 10] = [
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http",
    "aws_smithy_http_client",
    "aws_sigv4",
    "aws_config",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
];

/// The filter for `spec` (an `EnvFilter` directive string such as `info` or `trace`) with the
/// wire-level targets capped.
pub fn filter_for(spec: &str) -> EnvFilter {
    cap_wire_targets(EnvFilter::new(spec))
}

fn cap_wire_targets(mut filter: EnvFilter) -> EnvFilter {
    for target in WIRE_TARGETS {
        let directive: Directive = format!("{target}=info").parse().expect("static directive");
        filter = filter.add_directive(directive);
    }
    filter
}

/// The process's filter: `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else `info`.
pub fn env_filter() -> EnvFilter {
    let filter = EnvFilter::try_from_env("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    cap_wire_targets(filter)
}

pub fn init() {
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let json = in_lambda || std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(env_filter()).with_writer(std::io::stderr);
    let result = if json {
        builder.json().with_current_span(true).without_time().try_init()
    } else {
        builder.with_target(false).compact().try_init()
    };
    if let Err(e) = result {
        // Only happens when a subscriber is already installed (tests); keep that one.
        eprintln!("logging already initialised: {e}");
    }
}
