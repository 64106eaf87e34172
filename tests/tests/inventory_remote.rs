//! `dtx-migrate inventory --stack`: the operator's machine drives the deployed inventory
//! function through Lambda's Invoke API until its run is done. The Invoke endpoint here runs
//! the real inventory handler (over moto and MariaDB), one page per invocation as if each
//! stopped at its deadline.

use shared::config::AwsClients;
use shared::inventory::{InventoryRequest, InventoryResponse};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tests::{AwsFixture, MysqlFixture};

const FUNCTION: &str = "dtx-test-inventory";
const FAILING_FUNCTION: &str = "dtx-test-inventory-broken";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_driver_follows_the_inventory_function_to_the_end_and_reports_its_failure() {
    let aws = AwsFixture::new(3, 30).await;
    let db = MysqlFixture::new().await;
    let dir = tempfile::tempdir().unwrap();
    let (root, mappings) = (dir.path().join("efsdata"), dir.path().join("mappings"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&mappings).unwrap();
    let spec = shared::sample::SampleSpec { customers: 4, certificates: 20, documents: 12, filerepo_files: 6, large_file_bytes: 0, ..Default::default() };
    let summary = shared::sample::generate(&db.pool, &root, &mappings, &spec).await.unwrap();

    let invocations = Arc::new(AtomicUsize::new(0));
    let self_continuing = Arc::new(AtomicBool::new(false));
    let (resources, legacy_url, mappings_dir) = (aws.resources.clone(), db.url.clone(), mappings.display().to_string());
    let (counter, flag) = (invocations.clone(), self_continuing.clone());
    let endpoint = tests::serve_lambda(move || {
        let inventory = Arc::new(tokio::sync::OnceCell::new());
        move |function: String, body: Vec<u8>| {
            let (inventory, counter, flag) = (inventory.clone(), counter.clone(), flag.clone());
            let (resources, legacy_url, mappings_dir) = (resources.clone(), legacy_url.clone(), mappings_dir.clone());
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                if function == FAILING_FUNCTION {
                    return (Some("Unhandled"), br#"{"errorType":"Runtime.ExitError","errorMessage":"signal: killed"}"#.to_vec());
                }
                assert_eq!(function, FUNCTION);
                // Built once, on this "Lambda's" own runtime, like the function's cold start.
                let inventory = inventory
                    .get_or_init(|| async {
                        let clients = AwsClients::for_endpoint(&tests::aws_endpoint()).await;
                        let legacy = shared::legacy::connect(&legacy_url, 2).await.unwrap();
                        let accounts = shared::mappings::load_accounts(&clients.s3, &mappings_dir).await.unwrap();
                        let options = shared::wiring::InventoryOptions { page_size: 10, send_concurrency: 2, max_queue_depth: None };
                        shared::wiring::inventory(&clients, &resources, legacy, accounts, Default::default(), None, options)
                    })
                    .await;
                let request: InventoryRequest = serde_json::from_slice(&body).unwrap();
                if !request.caller_continues {
                    flag.store(true, Ordering::SeqCst);
                }
                match inventory.run(&InventoryRequest { max_pages: Some(1), ..request }, None).await {
                    Ok(response) => (None, serde_json::to_vec(&response).unwrap()),
                    Err(e) => (Some("Unhandled"), serde_json::to_vec(&serde_json::json!({ "errorMessage": e.to_string() })).unwrap()),
                }
            }
        }
    });
    let clients = AwsClients::for_endpoint(&endpoint).await;

    let mut answers: Vec<InventoryResponse> = Vec::new();
    let done = shared::inventory::drive_remote(&clients.lambda, FUNCTION, &InventoryRequest::default(), |r| answers.push(r.clone())).await.unwrap();
    assert!(done.done);
    assert!(answers.len() > 3, "one invocation per page: {} answers", answers.len());
    assert_eq!(invocations.load(Ordering::SeqCst), answers.len());
    assert!(!self_continuing.load(Ordering::SeqCst), "every request told the function that the caller continues");
    // Every file sent exactly once over all the invocations.
    assert_eq!(done.totals.sent as usize, summary.expected.len());
    assert_eq!(aws.queue_depth(&aws.resources.queue_url).await, (summary.expected.len() as u64, 0));

    let err = shared::inventory::drive_remote(&clients.lambda, FAILING_FUNCTION, &InventoryRequest::default(), |_| {}).await.unwrap_err().to_string();
    assert!(err.contains(FAILING_FUNCTION) && err.contains("signal: killed") && err.contains("run again"), "{err}");
    db.drop_database().await;
}
