//! The inventory Lambda: legacy rows -> work messages. It stops before its deadline with the
//! cursor persisted and, when `SELF_INVOKE` is set, invokes itself asynchronously to go on.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use shared::config::{path_rules_from_env, AwsClients, Resources};
use shared::inventory::{Inventory, InventoryRequest, InventoryResponse};
use shared::source::LegacySource;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct Deps {
    inventory: Inventory,
    lambda: aws_sdk_lambda::Client,
    self_invoke: bool,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let deps = build().await?;
    run(service_fn(|event: LambdaEvent<InventoryRequest>| handle(&deps, event))).await
}

async fn build() -> anyhow::Result<Deps> {
    let resources = Resources::from_env()?;
    let clients = AwsClients::from_env().await;
    let legacy = match std::env::var("LEGACY_DATABASE_SECRET_ARN") {
        Ok(arn) if !arn.is_empty() => {
            let shared_config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let secrets = aws_sdk_secretsmanager::Client::new(&shared_config);
            shared::legacy::connect_with_secret(&secrets, &arn, 4).await?
        }
        // Local runs only: the URL comes from the developer's shell, never from the template.
        _ => shared::legacy::connect(&std::env::var("LEGACY_DATABASE_URL")?, 4).await?,
    };
    shared::legacy::validate_schema(&legacy, shared::legacy::LEGACY_DDL, &shared::legacy::FILE_MOVE_TABLES).await?;
    let mappings_dir = std::env::var("MAPPINGS_DIR").map_err(|_| anyhow::anyhow!("MAPPINGS_DIR is not set"))?;
    let accounts = shared::mappings::load_accounts(&clients.s3, &mappings_dir).await?;
    // Only the dry run reads the source; without one it says what is missing.
    let efs_root = std::env::var_os("EFS_ROOT").map(std::path::PathBuf::from);
    let source = LegacySource::configure(efs_root.as_deref(), std::env::var("SOURCE_URI").ok().as_deref(), &clients.s3)?;
    let page_size = std::env::var("PAGE_SIZE").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let options = shared::wiring::InventoryOptions { page_size, ..Default::default() };
    let inventory = shared::wiring::inventory(&clients, &resources, legacy, accounts, path_rules_from_env()?, source, options);
    Ok(Deps { inventory, lambda: clients.lambda, self_invoke: std::env::var("SELF_INVOKE").is_ok_and(|v| v == "true") })
}

async fn handle(deps: &Deps, event: LambdaEvent<InventoryRequest>) -> Result<InventoryResponse, Error> {
    let deadline_ms = event.context.deadline;
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
    let deadline = Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    let request = event.payload;
    let response = deps.inventory.run(&request, Some(deadline)).await?;
    let metrics = shared::metrics::Recorder::default();
    metrics.add("MessagesSent", shared::metrics::Unit::Count, response.counts.sent as f64);
    shared::metrics::flush(&metrics, "inventory");
    if !response.done && deps.self_invoke && !request.caller_continues {
        // The cursor is persisted; the continuation only needs the same flags, minus restart.
        let next = InventoryRequest { restart: false, ..request };
        let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME")?;
        deps.lambda
            .invoke()
            .function_name(function)
            .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
            .payload(aws_sdk_lambda::primitives::Blob::new(serde_json::to_vec(&next)?))
            .send()
            .await?;
        tracing::info!(cursor = ?response.cursor, "continuing in a new invocation");
    }
    Ok(response)
}
