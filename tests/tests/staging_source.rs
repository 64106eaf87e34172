//! Issue 8: the legacy files read from a staging bucket instead of the mounted EFS. The
//! generated tree is moved from its directory, then uploaded (as `aws s3 sync
//! --no-follow-symlinks` would) to a staging bucket on the local S3 endpoint and moved again,
//! into a second stack: both runs produce the same objects and the same manifest, and the dry
//! runs find the same files and orphans.

use shared::adapters::staging::{StagingLocation, StagingSource};
use shared::inventory::{DryRunReport, InventoryRequest};
use shared::local::{self, LocalEventSource};
use shared::manifest::ManifestRecord;
use shared::ports::ManifestStore;
use shared::model::FileStatus;
use shared::sample::{case, SampleSpec};
use shared::source::{LegacySource, MountedSource};
use shared::worker::WorkerSettings;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tests::{AwsFixture, MysqlFixture};

fn settings() -> WorkerSettings {
    // A 7 MiB file goes through the staging key, so S3 copies it in from the staging bucket.
    WorkerSettings { multipart_threshold: 6 * 1024 * 1024, part_size: 5 * 1024 * 1024, lease_wait: Duration::from_millis(300), ..Default::default() }
}

/// Dry run, then the move; returns the dry run's report, the manifest and the objects (key →
/// bytes).
async fn run(aws: &AwsFixture, db: &MysqlFixture, mappings: &Path, source: LegacySource) -> (DryRunReport, BTreeMap<String, ManifestRecord>, BTreeMap<String, Vec<u8>>) {
    let inv = aws.inventory(db, mappings, source.clone(), 20).await;
    let dry = inv.run(&InventoryRequest { dry_run: true, ..Default::default() }, None).await.expect("dry run");
    let report = dry.report.expect("a dry run reports");
    let worker = Arc::new(shared::wiring::worker(&aws.clients, &aws.resources, settings(), Arc::new(source)));
    let esm = LocalEventSource {
        sqs: aws.clients.sqs.clone(),
        queue_url: aws.resources.queue_url.clone(),
        queue_arn: local::queue_arn(&aws.clients, &aws.resources.queue_url).await.unwrap(),
        batch_size: 10,
        pollers: 3,
        worker,
    };
    local::run_move(&inv, &InventoryRequest::default(), esm).await.expect("move");
    let rows = shared::wiring::manifest(&aws.clients, &aws.resources).scan_all().await.unwrap();
    let mut objects = BTreeMap::new();
    for key in aws.object_keys().await {
        objects.insert(key.clone(), aws.object_bytes(&key).await);
    }
    (report, rows.into_iter().map(|r| (r.source_key.clone(), r)).collect(), objects)
}

/// What a manifest row says about the file, without the run's own timing (file-UID
/// timestamps, attempts) and without which of two equal files was stored first.
#[derive(Debug, PartialEq)]
struct Outcome {
    stored: Option<bool>,
    s3_key: Option<String>,
    content_hash: Option<String>,
    size: Option<u64>,
    resolved_path: Option<String>,
    resolved_via: Option<String>,
    generation: Option<String>,
}

fn outcome(r: &ManifestRecord) -> Outcome {
    Outcome {
        stored: r.status.map(FileStatus::is_stored),
        s3_key: r.s3_key.clone(),
        content_hash: r.content_hash.clone(),
        size: r.size,
        resolved_path: r.resolved_path.clone(),
        resolved_via: r.resolved_via.clone(),
        generation: r.generation.clone(),
    }
}

/// The DLQ's letters (copies left out) as (source key, reason), sorted.
async fn dead_letters(aws: &AwsFixture) -> Vec<(String, String)> {
    let mut letters: Vec<(String, String)> =
        aws.dead_letters().await.into_iter().filter(|l| l.duplicate_of.is_none()).map(|l| (l.source_key.unwrap_or_default(), l.reason)).collect();
    letters.sort();
    letters
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tree_moved_from_a_staging_bucket_gives_the_same_objects_and_manifest_as_from_efs() {
    let db = MysqlFixture::new().await;
    let dir = tempfile::tempdir().unwrap();
    let (root, mappings) = (dir.path().join("efsdata"), dir.path().join("mappings"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&mappings).unwrap();
    let spec = SampleSpec { customers: 4, certificates: 30, documents: 15, filerepo_files: 8, large_file_bytes: 7 * 1024 * 1024, ..Default::default() };
    let summary = shared::sample::generate(&db.pool, &root, &mappings, &spec).await.expect("generate sample");

    let from_efs = AwsFixture::new(3, 30).await;
    let (efs_report, efs_rows, efs_objects) = run(&from_efs, &db, &mappings, LegacySource::Mounted(MountedSource::new(&root).unwrap())).await;

    let from_staging = AwsFixture::new(3, 30).await;
    let staging_bucket = tests::unique("staging-");
    from_staging.clients.s3.create_bucket().bucket(&staging_bucket).send().await.expect("create the staging bucket");
    let synced = tests::sync_tree(&from_staging.clients.s3, &root, &staging_bucket, "efsdata/").await;
    assert!(synced > 50, "{synced} files synced");
    // Beside the prefix: never read, never listed as an orphan.
    from_staging.clients.s3.put_object().bucket(&staging_bucket).key("other/attachments/x.pdf").body(b"not ours".to_vec().into()).send().await.unwrap();
    let location = StagingLocation::parse(&format!("s3://{staging_bucket}/efsdata")).unwrap();
    let source = LegacySource::Staging(StagingSource::new(from_staging.clients.s3.clone(), location));
    let (staging_report, staging_rows, staging_objects) = run(&from_staging, &db, &mappings, source).await;

    // The one difference is the data's: a symlink out of the EFS root is refused there, and a
    // sync that does not follow links leaves nothing in the bucket for it, so it is missing.
    let escaping: Vec<&str> = summary.expected.values().filter(|e| e.case == case::SYMLINK_ESCAPE).map(|e| e.source_key.as_str()).collect();
    assert!(!escaping.is_empty(), "the sample has a root-escaping symlink");
    for key in &escaping {
        assert_eq!(efs_rows[*key].status, Some(FileStatus::Rejected), "{key}");
        assert_eq!(staging_rows[*key].status, Some(FileStatus::Missing), "{key}");
    }
    assert_eq!(efs_rows.keys().collect::<Vec<_>>(), staging_rows.keys().collect::<Vec<_>>());
    for (key, efs_row) in efs_rows.iter().filter(|(k, _)| !escaping.contains(&k.as_str())) {
        let staging_row = &staging_rows[key];
        assert_eq!(outcome(staging_row), outcome(efs_row), "{key}");
        assert_eq!(staging_row.status == Some(FileStatus::Missing), efs_row.status == Some(FileStatus::Missing), "{key}");
        if efs_row.status == Some(FileStatus::Missing) {
            // The same candidates were tried, as keys under the prefix instead of paths.
            assert_eq!(staging_row.last_error, efs_row.last_error, "{key}");
        }
    }
    assert_eq!(staging_objects, efs_objects, "the same objects with the same bytes");
    // The large file was copied in by S3, which returned its SHA-256 (so the worker read none of
    // it): the copy over the real protocol.
    use shared::ports::ObjectStore;
    let (large_key, large) = summary
        .expected
        .values()
        .find(|e| e.case == case::LARGE)
        .map(|e| (format!("efsdata/{}", e.relative_path.as_deref().unwrap()), e))
        .expect("the sample has a large file");
    let head = from_staging.clients.s3.head_object().bucket(&staging_bucket).key(&large_key).send().await.unwrap();
    let objects = shared::adapters::s3::S3Objects::new(from_staging.clients.s3.clone(), &from_staging.resources.bucket);
    let remote = shared::ports::RemoteObject { bucket: staging_bucket.clone(), key: large_key, etag: head.e_tag.unwrap() };
    let copied = objects.copy_in(&remote, "_migration-staging/probe", &[]).await.unwrap();
    let shared::sample::ExpectedOutcome::Present { sha256_hex, .. } = &large.outcome else { panic!("the large file is present") };
    assert_eq!(copied.and_then(|c| shared::hashing::from_b64(&c)).map(|d| shared::hashing::to_hex(&d)).as_deref(), Some(sha256_hex.as_str()));
    // (moto ignores x-amz-copy-source-if-match, so the 412 a replaced source gets on AWS is not
    // exercised here.)
    objects.delete_object("_migration-staging/probe").await.unwrap();
    assert!(efs_rows.values().any(|r| r.size.is_some_and(|s| s > 6 * 1024 * 1024) && r.status == Some(FileStatus::Moved)), "a large file was moved");
    // Missing objects are dead-lettered as missing files are.
    let efs_dead = dead_letters(&from_efs).await;
    let staging_dead = dead_letters(&from_staging).await;
    let mut expected_staging_dead: Vec<(String, String)> = efs_dead
        .iter()
        .map(|(k, reason)| (k.clone(), if escaping.contains(&k.as_str()) { "missing".to_string() } else { reason.clone() }))
        .collect();
    expected_staging_dead.sort();
    assert_eq!(staging_dead, expected_staging_dead);

    // The dry runs agree: the same files found, missing and orphaned (the orphan scan lists the
    // prefix instead of walking the tree), the escaping link aside.
    assert_eq!(staging_report.orphans, efs_report.orphans);
    assert!(!efs_report.orphans.is_empty(), "the sample has orphans");
    assert_eq!(staging_report.orphan_bytes, efs_report.orphan_bytes);
    assert_eq!(staging_report.found_via, efs_report.found_via);
    assert_eq!(staging_report.size_histogram_bytes, efs_report.size_histogram_bytes);
    assert_eq!(staging_report.missing.len(), efs_report.missing.len() + escaping.len());
    assert_eq!(staging_report.rejected.len() + escaping.len(), efs_report.rejected.len());
    db.drop_database().await;
}
