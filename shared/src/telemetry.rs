//! Structured logging with `tracing`: JSON lines inside Lambda (CloudWatch Logs Insights can query them), compact
//! text elsewhere. `RUST_LOG` sets the filter (default `info`).

use tracing_subscriber::EnvFilter;

/// Install the global tracing subscriber. Call once, first thing in `main`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        builder.json().flatten_event(true).without_time().init();
    } else {
        builder.compact().init();
    }
}
