//! The sample-data generator against a real MariaDB: the rows, the EFS tree and the summary it
//! returns must agree with each other, as the migration's source-file rules see them.
//!
//! Needs MariaDB on 127.0.0.1:3306 (user root, no password), or `DTX_TEST_MYSQL_URL`.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use futures::FutureExt;
use sha2::{Digest, Sha256};
use shared::sample::{self, case, ExpectedOutcome, SampleSpec, SampleSummary};
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::Row;

const DEFAULT_SERVER_URL: &str = "mysql://root@127.0.0.1:3306";
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const LEGACY_PREFIXES: &[&str] = &[
    // Longest first: gen2 is an extension of gen1.
    "/home/wwwriskt/public_html/www1/",
    "/home/wwwriskt/public_html/",
    "/efsdata/",
];

fn small_spec(seed: u64) -> SampleSpec {
    SampleSpec {
        seed,
        customers: 4,
        certificates: 30,
        documents: 15,
        filerepo_files: 8,
        large_file_bytes: 6 * 1024 * 1024,
        max_small_file_bytes: 32 * 1024,
        ..SampleSpec::default()
    }
}

/// A throwaway database, dropped by [`TestDb::drop`].
struct TestDb {
    server: MySqlPool,
    name: String,
    pool: MySqlPool,
}

impl TestDb {
    async fn create() -> Result<Self> {
        let server_url =
            std::env::var("DTX_TEST_MYSQL_URL").unwrap_or_else(|_| DEFAULT_SERVER_URL.to_owned());
        let server = MySqlPoolOptions::new()
            .max_connections(1)
            .connect(&server_url)
            .await
            .with_context(|| format!("connecting to {server_url}"))?;
        let name = format!("dtx_sample_{}", uuid::Uuid::new_v4().simple());
        sqlx::raw_sql(&format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
            .execute(&server)
            .await?;
        let pool = MySqlPoolOptions::new()
            .max_connections(2)
            .connect(&format!("{server_url}/{name}"))
            .await?;
        Ok(Self { server, name, pool })
    }

    async fn drop(self) -> Result<()> {
        self.pool.close().await;
        sqlx::raw_sql(&format!("DROP DATABASE `{}`", self.name))
            .execute(&self.server)
            .await?;
        self.server.close().await;
        Ok(())
    }
}

#[tokio::test]
async fn sample_data_matches_its_summary() -> Result<()> {
    let db = TestDb::create().await?;
    // Catch a failed assertion so the database is dropped either way, then re-raise it.
    let outcome = AssertUnwindSafe(run(&db.pool)).catch_unwind().await;
    db.drop().await?;
    match outcome {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

async fn run(pool: &MySqlPool) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("efs");
    let mappings = dir.path().join("mappings");
    let spec = small_spec(7);

    let summary = sample::generate(pool, &root, &mappings, &spec).await?;
    let root = root.canonicalize()?;

    check_row_counts(pool, &summary).await?;
    let accounts = check_account_mapping(pool, &mappings, &summary).await?;
    let candidates = source_candidates(pool).await?;

    let expected_keys: BTreeSet<&String> = summary.expected.keys().collect();
    let db_keys: BTreeSet<&String> = candidates.keys().collect();
    assert_eq!(
        expected_keys, db_keys,
        "summary keys differ from the database's source files"
    );

    for (key, file) in &summary.expected {
        assert_eq!(&file.source_key, key);
        check_expectation(&root, &accounts, &candidates[key], file)?;
    }
    check_orphans(&root, &candidates, &summary)?;
    check_scenarios(&summary, &spec);
    check_percent_encoded(pool, &summary).await?;
    check_tree_is_exactly_the_summary(&root, &summary)?;

    // Regenerating wipes whatever is in the root and reproduces the same data.
    std::fs::write(root.join("stray.txt"), b"left over from a previous run")?;
    let again = sample::generate(pool, &root, &mappings, &spec).await?;
    assert_eq!(summary, again, "same seed must give the same summary");
    assert!(
        !root.join("stray.txt").exists(),
        "stray file survived regeneration"
    );
    check_tree_is_exactly_the_summary(&root, &again)?;
    check_row_counts(pool, &again).await?;

    let other = sample::generate(pool, &root, &mappings, &small_spec(8)).await?;
    assert_ne!(summary, other, "a different seed must give different data");
    Ok(())
}

async fn count(pool: &MySqlPool, table: &str) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(pool)
        .await?;
    Ok(u64::try_from(n)?)
}

async fn check_row_counts(pool: &MySqlPool, summary: &SampleSummary) -> Result<()> {
    let rows = &summary.legacy_rows;
    assert_eq!(count(pool, "customer").await?, rows.customers);
    assert_eq!(count(pool, "certificate").await?, rows.certificates);
    assert_eq!(count(pool, "document").await?, rows.documents);
    assert_eq!(count(pool, "attachment").await?, rows.attachments);
    assert_eq!(count(pool, "repo_file").await?, rows.repo_files);
    assert_eq!(rows.customers, 4);
    assert_eq!(rows.certificates, 30);
    assert_eq!(rows.documents, 15);
    Ok(())
}

/// Checks the CSV and returns its new account ids.
async fn check_account_mapping(
    pool: &MySqlPool,
    mappings: &Path,
    summary: &SampleSummary,
) -> Result<BTreeSet<String>> {
    let text = std::fs::read_to_string(mappings.join("id_mapping_accounts.csv"))?;
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("old_customer_id,new_account_id"));
    let mut mapped = BTreeMap::new();
    for line in lines {
        let (old, new) = line
            .split_once(',')
            .context("mapping line without a comma")?;
        mapped.insert(old.parse::<u64>()?, new.to_owned());
    }

    let customer_ids: Vec<u32> = sqlx::query_scalar("SELECT id FROM customer ORDER BY id")
        .fetch_all(pool)
        .await?;
    assert!(!summary.unmapped_customer_ids.is_empty());
    for id in customer_ids.into_iter().map(u64::from) {
        if summary.unmapped_customer_ids.contains(&id) {
            assert!(
                !mapped.contains_key(&id),
                "unmapped customer {id} is in the CSV"
            );
        } else {
            assert_eq!(
                mapped.get(&id),
                Some(&(5000 + id).to_string()),
                "customer {id}"
            );
        }
    }
    Ok(mapped.into_values().collect())
}

/// For every source file in the database (by the migration's rules), the paths relative to the
/// root where its bytes may be: the primary/own repo_filepath, then for attachments the
/// constructed path and its percent-decoded form.
async fn source_candidates(pool: &MySqlPool) -> Result<BTreeMap<String, Vec<Option<String>>>> {
    let mut sources = BTreeMap::new();

    let repo_files =
        sqlx::query("SELECT id, repo_filepath, attachment_id FROM repo_file ORDER BY id")
            .fetch_all(pool)
            .await?;
    let attachments = sqlx::query(
        "SELECT a.id, a.name, a.certificate_id, a.document_id, d.customer_id AS document_customer_id \
         FROM attachment a LEFT JOIN document d ON d.id = a.document_id",
    )
    .fetch_all(pool)
    .await?;
    let attachment_ids: BTreeSet<u32> = attachments
        .iter()
        .map(|row| row.get::<u32, _>("id"))
        .collect();

    // Rows are in id order, so the first repo_file seen for an attachment is its primary.
    let mut primary: BTreeMap<u32, Option<String>> = BTreeMap::new();
    for row in &repo_files {
        let id: u32 = row.get("id");
        let path: Option<String> = row.get("repo_filepath");
        let attachment_id: Option<u32> = row.get("attachment_id");
        match attachment_id.filter(|a| attachment_ids.contains(a)) {
            Some(a) if !primary.contains_key(&a) => {
                primary.insert(a, path);
            }
            _ => {
                let path = path.context("a non-primary repo_file without a path")?;
                sources.insert(format!("repo_file:{id}"), vec![strip_legacy_prefix(&path)]);
            }
        }
    }

    for row in &attachments {
        let id: u32 = row.get("id");
        let name: String = row.get("name");
        let dir = match (
            row.get::<Option<u32>, _>("certificate_id"),
            row.get::<Option<u32>, _>("document_id"),
        ) {
            (Some(certificate), None) => {
                format!("attachments/certificate_management/{certificate}")
            }
            (None, Some(document)) => {
                let customer: u32 = row.get("document_customer_id");
                format!("attachments/document_management/{customer}/{document}")
            }
            other => anyhow::bail!("attachment {id} has certificate/document {other:?}"),
        };
        let mut paths = Vec::new();
        if let Some(Some(path)) = primary.get(&id) {
            paths.push(strip_legacy_prefix(path));
        }
        paths.push(Some(format!("{dir}/{name}")));
        paths.push(Some(format!("{dir}/{}", percent_decode(&name))));
        sources.insert(format!("attachment:{id}"), paths);
    }

    let customers = sqlx::query("SELECT id, logo FROM customer")
        .fetch_all(pool)
        .await?;
    for row in &customers {
        let id: u32 = row.get("id");
        if let Some(logo) = row
            .get::<Option<String>, _>("logo")
            .filter(|l| !l.is_empty())
        {
            sources.insert(format!("logo:{id}"), vec![Some(format!("logos/{logo}"))]);
        }
    }
    Ok(sources)
}

fn strip_legacy_prefix(path: &str) -> Option<String> {
    LEGACY_PREFIXES
        .iter()
        .find_map(|prefix| path.strip_prefix(prefix))
        .map(str::to_owned)
}

fn percent_decode(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn exists_no_follow(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

fn sha256_file(path: &Path) -> Result<String> {
    Ok(hex::encode(Sha256::digest(std::fs::read(path)?)))
}

fn check_expectation(
    root: &Path,
    accounts: &BTreeSet<String>,
    candidates: &[Option<String>],
    file: &sample::ExpectedFile,
) -> Result<()> {
    let key = &file.source_key;
    let candidate_paths: Vec<&String> = candidates.iter().flatten().collect();
    if let Some(relative) = &file.relative_path {
        assert!(
            candidate_paths.contains(&relative),
            "{key}: {relative} is not a path the database points at ({candidate_paths:?})"
        );
    }
    match (&file.outcome, &file.account_id) {
        (ExpectedOutcome::Present { sha256_hex, size }, Some(account)) => {
            assert!(
                accounts.contains(account),
                "{key}: account {account} not in the mapping"
            );
            let relative = file
                .relative_path
                .as_ref()
                .context("present without a path")?;
            let path = root.join(relative);
            let meta = path
                .symlink_metadata()
                .with_context(|| format!("{key}: {relative}"))?;
            assert!(meta.is_file(), "{key}: {relative} is not a regular file");
            assert_eq!(meta.len(), *size, "{key}: size of {relative}");
            assert_eq!(
                &sha256_file(&path)?,
                sha256_hex,
                "{key}: sha256 of {relative}"
            );
            // What the migration tries first must be the file it will find, or absent.
            let first = candidates
                .iter()
                .flatten()
                .find(|c| exists_no_follow(&root.join(c)));
            assert_eq!(first, Some(relative), "{key}: first existing candidate");
        }
        (ExpectedOutcome::Missing, Some(_)) => {
            assert_eq!(file.relative_path, None, "{key}");
            for candidate in &candidate_paths {
                assert!(
                    !exists_no_follow(&root.join(candidate)),
                    "{key}: {candidate} exists"
                );
            }
        }
        (
            ExpectedOutcome::Rejected {
                why: "escapes root",
            },
            Some(_),
        ) => {
            assert_eq!(file.case, case::SYMLINK_ESCAPE, "{key}");
            let relative = file
                .relative_path
                .as_ref()
                .context("escape without a path")?;
            let link = root.join(relative);
            assert!(
                link.symlink_metadata()?.file_type().is_symlink(),
                "{key}: not a symlink"
            );
            let target = link
                .canonicalize()
                .with_context(|| format!("{key}: dangling symlink"))?;
            assert!(
                !target.starts_with(root),
                "{key}: {} is inside the root",
                target.display()
            );
        }
        (
            ExpectedOutcome::Rejected {
                why: "unmapped account",
            },
            None,
        ) => {
            assert_eq!(file.case, case::UNMAPPED_ACCOUNT, "{key}");
            if let Some(relative) = &file.relative_path {
                assert!(
                    root.join(relative).is_file(),
                    "{key}: {relative} should exist"
                );
            }
        }
        (outcome, account) => {
            panic!("{key}: unexpected outcome {outcome:?} with account {account:?}")
        }
    }
    Ok(())
}

fn check_orphans(
    root: &Path,
    candidates: &BTreeMap<String, Vec<Option<String>>>,
    summary: &SampleSummary,
) -> Result<()> {
    ensure!(summary.orphan_files.len() >= 3, "too few orphans");
    let referenced: BTreeSet<&String> = candidates.values().flatten().flatten().collect();
    for area in ["attachments/", "filerepo/", "logos/"] {
        assert!(
            summary.orphan_files.iter().any(|o| o.starts_with(area)),
            "no orphan under {area}"
        );
    }
    for orphan in &summary.orphan_files {
        assert!(
            root.join(orphan).symlink_metadata()?.is_file(),
            "orphan {orphan} is not a file"
        );
        assert!(
            !referenced.contains(orphan),
            "orphan {orphan} is referenced by a row"
        );
    }
    Ok(())
}

fn present(summary: &SampleSummary, case: &str) -> Vec<(String, String, u64)> {
    summary
        .expected
        .values()
        .filter(|f| f.case == case)
        .filter_map(|f| match (&f.outcome, &f.account_id) {
            (ExpectedOutcome::Present { sha256_hex, size }, Some(account)) => {
                Some((account.clone(), sha256_hex.clone(), *size))
            }
            _ => None,
        })
        .collect()
}

fn check_scenarios(summary: &SampleSummary, spec: &SampleSpec) {
    let cases: BTreeSet<&str> = summary.expected.values().map(|f| f.case).collect();
    for wanted in [
        case::GEN1,
        case::GEN2,
        case::GEN3,
        case::CONSTRUCTED,
        case::FILEREPO,
        case::LOGO,
        case::MISSING,
        case::ZERO_BYTE,
        case::DUP_SAME_TENANT,
        case::DUP_CROSS_TENANT,
        case::SPACE_NAME,
        case::UNICODE_NAME,
        case::PERCENT_NAME,
        case::PERCENT_ENCODED,
        case::LARGE,
        case::SYMLINK_ESCAPE,
        case::UNMAPPED_ACCOUNT,
        case::FALLBACK_CONSTRUCTED,
        case::MULTI_REPO_PRIMARY,
        case::MULTI_REPO_SECONDARY,
        case::NULL_FILEPATH,
        case::DANGLING_ATTACHMENT_REF,
    ] {
        assert!(cases.contains(wanted), "no {wanted} case in {cases:?}");
    }

    // Generations are exercised in both attachment areas.
    for generation in [case::GEN1, case::GEN2, case::GEN3] {
        for area in ["certificates", "documents"] {
            let found = summary
                .expected
                .values()
                .any(|f| f.case == generation && f.area == area);
            assert!(found, "no {generation} file in {area}");
        }
    }

    let missing_areas: BTreeSet<&str> = summary
        .expected
        .values()
        .filter(|f| f.outcome == ExpectedOutcome::Missing)
        .map(|f| f.area)
        .collect();
    assert_eq!(
        missing_areas,
        BTreeSet::from(["certificates", "documents", "filerepo", "logos"])
    );

    let large = present(summary, case::LARGE);
    assert_eq!(large.len(), 1);
    assert_eq!(large[0].2, spec.large_file_bytes);

    let zero = present(summary, case::ZERO_BYTE);
    assert!(zero.len() >= 2);
    assert!(zero
        .iter()
        .all(|(_, sha, size)| sha == EMPTY_SHA256 && *size == 0));

    // One tenant holds the same bytes several times; another tenant holds them too.
    let same = present(summary, case::DUP_SAME_TENANT);
    assert!(same.len() >= 2);
    assert!(same
        .iter()
        .all(|(account, sha, _)| (account, sha) == (&same[0].0, &same[0].1)));
    let cross = present(summary, case::DUP_CROSS_TENANT);
    assert!(cross
        .iter()
        .any(|(account, sha, _)| sha == &same[0].1 && account != &same[0].0));

    // A secondary repo_file is the same file as its attachment's primary.
    for secondary in summary
        .expected
        .values()
        .filter(|f| f.case == case::MULTI_REPO_SECONDARY)
    {
        let twin = summary.expected.values().find(|f| {
            f.case == case::MULTI_REPO_PRIMARY
                && f.relative_path == secondary.relative_path
                && f.outcome == secondary.outcome
        });
        assert!(
            twin.is_some(),
            "{} has no matching primary",
            secondary.source_key
        );
    }

    let names: Vec<&str> = summary
        .expected
        .values()
        .filter_map(|f| f.relative_path.as_deref())
        .collect();
    for fragment in [
        "Zertifikat Müller – 2019.pdf",
        "保险证书.pdf",
        "100% complete.pdf",
        " ",
    ] {
        assert!(
            names
                .iter()
                .any(|n| n.ends_with(fragment) || n.contains(fragment)),
            "no file named like {fragment:?}"
        );
    }
}

async fn check_percent_encoded(pool: &MySqlPool, summary: &SampleSummary) -> Result<()> {
    let encoded: Vec<(u32, String)> =
        sqlx::query_as("SELECT id, name FROM attachment WHERE name LIKE '%\\%20%'")
            .fetch_all(pool)
            .await?;
    ensure!(!encoded.is_empty(), "no percent-encoded attachment name");
    for (id, name) in encoded {
        let file = &summary.expected[&format!("attachment:{id}")];
        let relative = file
            .relative_path
            .as_deref()
            .context("percent-encoded without a path")?;
        assert!(
            relative.ends_with(&percent_decode(&name)),
            "{relative} vs {name}"
        );
    }

    // Fallback and NULL-path cases: the repo_filepath must be unusable for the test to mean much.
    for file in summary.expected.values() {
        let Some(id) = file.source_key.strip_prefix("attachment:") else {
            continue;
        };
        let id: u32 = id.parse()?;
        let path: Option<Option<String>> = sqlx::query_scalar(
            "SELECT repo_filepath FROM repo_file WHERE attachment_id = ? ORDER BY id LIMIT 1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?;
        match file.case {
            case::NULL_FILEPATH => assert_eq!(path, Some(None), "{}", file.source_key),
            case::FALLBACK_CONSTRUCTED => {
                let stale = path
                    .flatten()
                    .context("fallback case without a repo_filepath")?;
                assert_ne!(
                    strip_legacy_prefix(&stale),
                    file.relative_path,
                    "{}",
                    file.source_key
                );
            }
            case::PERCENT_ENCODED => assert_eq!(path, None, "{}", file.source_key),
            _ => {}
        }
    }
    Ok(())
}

/// Every entry under the root is an expected file or an orphan, and vice versa.
fn check_tree_is_exactly_the_summary(root: &Path, summary: &SampleSummary) -> Result<()> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeSet<String>) -> Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path: PathBuf = entry.path();
            if entry.file_type()?.is_dir() {
                walk(&path, root, out)?;
            } else {
                let relative = path
                    .strip_prefix(root)?
                    .to_str()
                    .context("non-UTF-8 name")?;
                out.insert(relative.to_owned());
            }
        }
        Ok(())
    }
    let mut on_disk = BTreeSet::new();
    walk(root, root, &mut on_disk)?;
    let mut wanted: BTreeSet<String> = summary
        .expected
        .values()
        .filter_map(|f| f.relative_path.clone())
        .collect();
    wanted.extend(summary.orphan_files.iter().cloned());
    assert_eq!(on_disk, wanted);
    Ok(())
}
