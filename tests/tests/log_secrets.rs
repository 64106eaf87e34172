//! Logs never contain credentials: the product runs at `trace` (the most an operator can ask
//! for) while it fetches database secrets from Secrets Manager, connects with them and with
//! password-bearing URLs, fails to connect, and moves a file with AWS credentials of its own;
//! everything it logs is captured and searched for each secret.

use shared::config::AwsClients;
use shared::message::{FileMessage, LegacyIds, SourceRef};
use shared::model::{Area, FileStatus};
use shared::source::MountedSource;
use shared::worker::{Delivery, RecordResult, WorkerSettings};
use std::io::Write;
use std::sync::{Arc, Mutex};

const TARGET_PASSWORD: &str = "Tgt-pw-must-not-leak-7f3a";
const LEGACY_PASSWORD: &str = "Legacy-pw-must-not-leak-91c2";
const AWS_SECRET_KEY: &str = "aws-secret-key-must-not-leak-5d8e";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

async fn rds_secret(sm: &aws_sdk_secretsmanager::Client, username: &str, password: &str, port: u16) -> String {
    let value = serde_json::json!({
        "engine": "postgres", "username": username, "password": password,
        "host": "127.0.0.1", "port": port, "dbname": "no_such_database_for_log_test",
    });
    sm.create_secret()
        .name(tests::unique("log-test-"))
        .secret_string(value.to_string())
        .send()
        .await
        .expect("create secret on moto")
        .arn
        .expect("secret arn")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_at_trace_level_never_contain_passwords_or_aws_secret_keys() {
    let captured = Captured::default();
    tracing_subscriber::fmt()
        .with_env_filter(shared::telemetry::filter_for("trace"))
        .json()
        .with_writer(captured.clone())
        .init();

    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(tests::aws_endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new("AKIDLOGTEST", AWS_SECRET_KEY, None, None, "log-test"))
        .load()
        .await;
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let mut errors = Vec::new();

    // The loader and inventory Lambdas: credentials from Secrets Manager, and the connection
    // fails (no such database / wrong password), which they report.
    let target_arn = rds_secret(&secrets, "migrator", TARGET_PASSWORD, 5432).await;
    let err = shared::loader::connect::target_from_secret(&secrets, &target_arn, 1).await.expect_err("no such database");
    tracing::error!(error = %err, "target connection failed");
    errors.push(err.to_string());
    let legacy_arn = rds_secret(&secrets, "root", LEGACY_PASSWORD, 3306).await;
    let err = shared::legacy::connect_with_secret(&secrets, &legacy_arn, 1).await.expect_err("wrong password");
    tracing::error!(error = %err, "legacy connection failed");
    errors.push(err.to_string());

    // Local runs: password-bearing URLs.
    let url = format!("postgres://migrator:{TARGET_PASSWORD}@127.0.0.1:5432/no_such_database_for_log_test");
    let err = shared::loader::connect::target_from_url(&url, 1).await.expect_err("no such database");
    tracing::error!(error = %err, "target connection failed");
    errors.push(err.to_string());
    let url = format!("mysql://root:{LEGACY_PASSWORD}@127.0.0.1:3306/no_such_database_for_log_test");
    let err = shared::legacy::connect(&url, 1).await.expect_err("wrong password");
    tracing::error!(error = %err, "legacy connection failed");
    errors.push(err.to_string());

    // The worker: a file moved through S3, DynamoDB and SQS with the distinctive credentials.
    let clients = AwsClients::from_shared(&config);
    let resources = shared::local::provision(&clients, &tests::unique("t-"), 3, 5).await.expect("provision");
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("attachments/certificate_management/1")).unwrap();
    std::fs::write(root.path().join("attachments/certificate_management/1/coi.pdf"), b"%PDF-1.4 log test").unwrap();
    let worker = shared::wiring::worker(&clients, &resources, WorkerSettings::default(), Arc::new(MountedSource::new(root.path()).unwrap()));
    let message = FileMessage {
        v: 1,
        source: SourceRef::Attachment(1),
        area: Area::Certificates,
        legacy_path: "/efsdata/attachments/certificate_management/1/coi.pdf".into(),
        fallback_paths: vec![],
        account_id: Some("7".into()),
        original_filename: "coi.pdf".into(),
        ids: LegacyIds { attachment_id: Some(1), ..Default::default() },
        legacy_status: None,
        problem: None,
        force: false,
    };
    let result = worker.process(Delivery { message_id: "m-1".into(), body: message.to_json(), receive_count: 1 }).await;
    assert_eq!(result, RecordResult::Done(FileStatus::Moved));

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines = logs.lines().count();
    assert!(logs.contains("target connection failed") && logs.contains("file processed"), "the capture works: {lines} lines");
    for secret in [TARGET_PASSWORD, LEGACY_PASSWORD, AWS_SECRET_KEY] {
        let leaks: Vec<&str> = logs.lines().filter(|l| l.contains(secret)).take(3).collect();
        assert!(leaks.is_empty(), "{secret} is in the logs:\n{}", leaks.join("\n"));
        for e in &errors {
            assert!(!e.contains(secret), "{secret} is in an error message: {e}");
        }
    }
    println!("{lines} log lines at trace level, {} errors reported: no password or secret key in any", errors.len());
}
