//! Logging: JSON lines in Lambda (CloudWatch parses them), readable text in a terminal.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_env("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let json = in_lambda || std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
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
