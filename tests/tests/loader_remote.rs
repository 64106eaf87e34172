//! `load --function`: the operator's machine drives the deployed loader through Lambda's Invoke
//! API. Lambda itself cannot run here (the emulator would need Docker), so a minimal Invoke
//! endpoint in this test answers the real aws-sdk-lambda requests by running the real loader
//! handler, as the Lambda runtime would, and stopping after one chunk as if at the deadline.

use shared::config::AwsClients;
use shared::loader::drive::{self, Handler};
use shared::loader::remote::RemoteLoader;
use shared::loader::runner::{LoadError, LoadRequest, LoadResponse, Loader, LoaderMappings};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tests::{MysqlFixture, PgFixture};

const FUNCTION: &str = "dtx-test-loader";
const FAILING_FUNCTION: &str = "dtx-test-broken";
/// Answers "not done" without ever moving past its first cursor.
const STUCK_FUNCTION: &str = "dtx-test-stuck";

/// Serves Invoke for FUNCTION (the loader, one chunk per invocation), FAILING_FUNCTION (a
/// function error, as when the runtime dies) and STUCK_FUNCTION; counts invocations.
fn serve_invoke(make_loader: impl FnOnce() -> Loader + Send + 'static, invocations: Arc<AtomicUsize>) -> String {
    tests::serve_lambda(move || {
        let loader = Arc::new(make_loader());
        move |function: String, body: Vec<u8>| {
            let (loader, invocations) = (loader.clone(), invocations.clone());
            async move {
                invocations.fetch_add(1, Ordering::SeqCst);
                match function.as_str() {
                    FUNCTION => {
                        let request: LoadRequest = serde_json::from_slice(&body).unwrap();
                        match loader.run(&LoadRequest { max_chunks: Some(1), ..request }).await {
                            Ok(response) => (None, serde_json::to_vec(&response).unwrap()),
                            Err(e) => (Some("Unhandled"), serde_json::to_vec(&serde_json::json!({"errorType": "LoadError", "errorMessage": e.to_string()})).unwrap()),
                        }
                    }
                    FAILING_FUNCTION => {
                        (Some("Unhandled"), br#"{"errorType":"Runtime.ExitError","errorMessage":"RequestId: 1 Error: Runtime exited with error: signal: killed"}"#.to_vec())
                    }
                    STUCK_FUNCTION => (None, br#"{"step":"certificates","done":false,"cursor":{"after_id":1},"counts":{"certificates_read":0}}"#.to_vec()),
                    other => panic!("unexpected function {other}"),
                }
            }
        }
    })
}

async fn legacy() -> MysqlFixture {
    let db = MysqlFixture::with_legacy_schema().await;
    sqlx::query(
        "INSERT INTO document_set (id, customer_id, name, create_time) VALUES
            (20, 1, 'Standard', '2020-01-01'), (21, 1, 'Light', '2020-01-02'), (22, 1, 'Subs', '2020-01-03'), (23, 9, 'Unmapped', '2020-01-04')",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    db
}

#[tokio::test]
async fn the_cli_driver_follows_the_deployed_functions_cursor_until_done_and_reports_its_failures() {
    let legacy = legacy().await;
    let target = PgFixture::new().await;
    sqlx::query("INSERT INTO docutrax_accounts_account (id, name) VALUES (501, 'One')").execute(&target.pool).await.unwrap();
    let reports = tempfile::tempdir().unwrap();
    let mut mappings = LoaderMappings::default();
    mappings.accounts.insert(1, "501".into());
    let invocations = Arc::new(AtomicUsize::new(0));
    let (legacy_url, target_url, reports_dir) = (legacy.url.clone(), target.url.clone(), reports.path().display().to_string());
    let endpoint = serve_invoke(
        move || {
            let s3 = aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::Config::builder().behavior_version_latest().region(aws_sdk_s3::config::Region::new("us-east-1")).build(),
            );
            Loader {
                legacy: sqlx::mysql::MySqlPoolOptions::new().max_connections(2).connect_lazy(&legacy_url).unwrap(),
                target: sqlx::postgres::PgPoolOptions::new().max_connections(2).connect_lazy(&target_url).unwrap(),
                mappings,
                reports: shared::loader::output::ReportSink::new(&reports_dir, &s3),
                chunk_rows: 1,
                objects: None,
            }
        },
        invocations.clone(),
    );
    let clients = AwsClients::for_endpoint(&endpoint).await;

    // Four sets, one per chunk: the driver invokes again with each cursor until done.
    let handler = Handler::Remote(RemoteLoader::new(clients.lambda.clone(), FUNCTION));
    let mut answers: Vec<LoadResponse> = Vec::new();
    let request = LoadRequest { step: "document-risk-profiles".into(), ..Default::default() };
    let done = drive::run_step(&handler, request, |r| answers.push(r.clone())).await.unwrap();
    assert!(done.done);
    assert!(answers.len() >= 4, "one invocation per chunk: {answers:?}");
    assert!(answers[..answers.len() - 1].iter().all(|a| !a.done && a.cursor.is_some()));
    assert_eq!(invocations.load(Ordering::SeqCst), answers.len());
    assert_eq!(done.counts["sets_read"], 4, "counts are summed over the invocations: {:?}", done.counts);
    assert_eq!(done.counts["profiles_created"], 3);
    let names: Vec<String> =
        sqlx::query_scalar("SELECT name FROM docutrax_profiles_documentriskprofile ORDER BY name").fetch_all(&target.pool).await.unwrap();
    assert_eq!(names, ["Light", "Standard", "Subs"]);

    // The handler's own error comes back as a function error with its message.
    let bad = LoadRequest { step: "no-such-step".into(), ..Default::default() };
    match drive::run_step(&handler, bad, |_| {}).await {
        Err(LoadError::Remote { function, kind, message }) => {
            assert_eq!((function.as_str(), kind.as_str()), (FUNCTION, "Unhandled"));
            assert!(message.contains("unknown step \"no-such-step\""), "{message}");
        }
        other => panic!("expected a function error, got {other:?}"),
    }
    // A crashed runtime: the error names the function and the runtime's message.
    let crashed = Handler::Remote(RemoteLoader::new(clients.lambda.clone(), FAILING_FUNCTION));
    let err = drive::run_step(&crashed, LoadRequest { step: "certificates".into(), ..Default::default() }, |_| {}).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains(FAILING_FUNCTION) && text.contains("Runtime.ExitError") && text.contains("signal: killed"), "{text}");

    // A function that never gets past one chunk: an error, not an endless loop.
    let stuck = Handler::Remote(RemoteLoader::new(clients.lambda.clone(), STUCK_FUNCTION));
    let before = invocations.load(Ordering::SeqCst);
    match drive::run_step(&stuck, LoadRequest { step: "certificates".into(), ..Default::default() }, |_| {}).await {
        Err(e @ LoadError::Stalled { .. }) => assert!(e.to_string().contains("CHUNK_ROWS"), "{e}"),
        other => panic!("expected a stall, got {other:?}"),
    }
    assert_eq!(invocations.load(Ordering::SeqCst) - before, 2);

    legacy.drop_database().await;
    target.drop_database().await;
}

#[tokio::test]
async fn all_runs_the_optional_audit_history_only_when_asked() {
    let names = |steps: Vec<shared::loader::runner::Step>| steps.into_iter().map(|s| s.name()).collect::<Vec<_>>();
    let default = names(drive::all_steps(false));
    assert_eq!(default.first(), Some(&"validate"));
    assert_eq!(default.last(), Some(&"verify"));
    assert!(!default.contains(&"audit-history"));
    assert_eq!(default.len(), 13);
    let with = names(drive::all_steps(true));
    assert_eq!(with.len(), 14);
    assert_eq!(with[11], "audit-history");
}
