//! Step 13 `export-mappings`: the spec's output files, written through `REPORT_DIR` (a directory
//! or an s3:// prefix) from the target database alone (the id map, the bookkeeping and the
//! DTX 2.0 rows; it writes nothing to either database):
//!
//! | file | columns |
//! |---|---|
//! | id_mapping_certificates.csv | old_certificate_id, new_certificate_id, requirements_group_id, evaluation_id |
//! | id_mapping_documents.csv | old_document_id, new_document_id, doc_requirement_id |
//! | id_mapping_doc_types.csv | old_document_library_id, new_document_type_id |
//! | id_mapping_doc_profiles.csv | old_document_set_id, new_document_risk_profile_id |
//! | id_mapping_req_groups.csv | customer_id, requirements_id, document_set_id, new_requirements_group_id |
//! | id_mapping_repo_files.csv | repo_file_id, s3_key, content_hash, file_uid (for Area 11) |
//! | migration_issues.csv | entity, legacy_id, step, reason, detail |
//! | migration_report.txt | summary statistics and the last verification |
//!
//! Choice: every file is read in one REPEATABLE READ, READ ONLY transaction, so the files agree
//! with each other even while a step runs.
//! Choice: CSV quoting is RFC 4180's (a field with a comma, a double quote or a line break is
//! quoted, quotes doubled); records end with LF, like `migration_issues.csv` and
//! `file_manifest.csv`; NULL is an empty field; every file has its header row, also when empty.
//! Choice: rows are ordered by the old id as a number (a non-numeric legacy key, not expected,
//! after every numeric one, by its bytes); the requirements groups by customer_id, then
//! requirements_id, then document_set_id, an empty (NULL) part before any number; repo files by
//! repo_file_id.
//! Choice: an id map entry whose DTX 2.0 row no longer exists is left out of the mapping files (a
//! dangling id would break the areas that consume them); the report counts them per entity.
//! Choice: `requirements_group_id` is the certificate row's own group (the target's current
//! value); `evaluation_id` is the Evaluation the evaluations step made for the certificate (id
//! map `evaluation` under the same legacy id, whose row belongs to the certificate), else empty.
//! Choice: `doc_requirement_id` is the DocRequirement the document fulfils
//! (`documentrequirementfulfillment`); when it fulfils several, the fulfilment the migration
//! recorded (id map `document_requirement_fulfillment`) wins, then the lowest DocRequirement id;
//! the report counts such documents. Empty when it fulfils none.
//! Choice: a requirements group's legacy key `customer:requirements:document_set` is split into
//! its three columns (an empty part stays empty = NULL); a key that is not three numbers-or-empty
//! parts is left out and counted in the report.
//! Choice: every repo_file_id of the imported file manifest gets one row; s3_key, content_hash
//! and file_uid are filled only when the file is stored (moved or deduplicated, with an S3 key),
//! so Area 11 can tell a file that was not moved (empty) from one never inventoried (no row).
//! When several manifest rows carry the same repo_file_id, a stored one wins, then the lowest
//! source_key (byte order).
//! Choice: the report's raw document_status distribution (Decision #6) is the documents step's
//! `status_raw_<value>` counts (dtx_migration.step_run), else the validate step's
//! `migration_report.json` in the same REPORT_DIR (the export never reads the legacy database);
//! the last verify result is the verify step's `verification_report.txt` in REPORT_DIR, copied
//! in (indented). Each is reported as not available when absent. This report replaces the
//! validate step's `migration_report.txt` (its figures stay in `migration_report.json`).
//! Choice: the DocuSign template ids dropped (Decision #12) are the issues whose reason mentions
//! DocuSign (recorded by the documents step), listed with their detail.

use super::book;
use super::runner::{LoadError, LoadResponse, Loader, Step};
use sqlx::PgConnection;
use std::collections::BTreeMap;

pub const CERTIFICATES_FILE: &str = "id_mapping_certificates.csv";
pub const DOCUMENTS_FILE: &str = "id_mapping_documents.csv";
pub const DOC_TYPES_FILE: &str = "id_mapping_doc_types.csv";
pub const DOC_PROFILES_FILE: &str = "id_mapping_doc_profiles.csv";
pub const REQ_GROUPS_FILE: &str = "id_mapping_req_groups.csv";
pub const REPO_FILES_FILE: &str = "id_mapping_repo_files.csv";
pub const ISSUES_FILE: &str = "migration_issues.csv";
pub const REPORT_FILE: &str = "migration_report.txt";
/// Written by the validate step; read for the raw document status distribution.
pub const VALIDATE_JSON: &str = "migration_report.json";
/// The documents step's counter prefix of the raw document_status values (`status_raw_<value>`).
pub const RAW_STATUS_COUNTER: &str = "status_raw_";

pub const CERTIFICATES_HEADER: [&str; 4] = ["old_certificate_id", "new_certificate_id", "requirements_group_id", "evaluation_id"];
pub const DOCUMENTS_HEADER: [&str; 3] = ["old_document_id", "new_document_id", "doc_requirement_id"];
pub const DOC_TYPES_HEADER: [&str; 2] = ["old_document_library_id", "new_document_type_id"];
pub const DOC_PROFILES_HEADER: [&str; 2] = ["old_document_set_id", "new_document_risk_profile_id"];
pub const REQ_GROUPS_HEADER: [&str; 4] = ["customer_id", "requirements_id", "document_set_id", "new_requirements_group_id"];
pub const REPO_FILES_HEADER: [&str; 4] = ["repo_file_id", "s3_key", "content_hash", "file_uid"];

/// The DTX 2.0 table of each id map entity, for the report's "not in target" counts.
pub const ENTITY_TABLES: [(&str, &str); 15] = [
    ("document_type", "docutrax_profiles_documenttype"),
    ("document_library", "docutrax_profiles_documenttype"),
    ("document_set", "docutrax_profiles_documentriskprofile"),
    ("document_risk_profile_document_type", "docutrax_profiles_documentriskprofiledocumenttype"),
    ("requirements_group", "docutrax_hierarchy_requirementsgroup"),
    ("requirements_group_member", "docutrax_hierarchy_requirementsgroupmember"),
    ("certificate", "docutrax_profiles_certificate"),
    ("manual_override", "docutrax_profiles_manualoverride"),
    ("evaluation", "docutrax_profiles_evaluation"),
    ("evaluation_coverage", "docutrax_profiles_evaluationcoverage"),
    ("evaluation_detail", "docutrax_profiles_evaluationdetail"),
    ("document", "docutrax_profiles_document"),
    ("doc_requirement", "docutrax_profiles_docrequirement"),
    ("document_requirement_fulfillment", "docutrax_profiles_documentrequirementfulfillment"),
    ("audit_history", "docutrax_profiles_audithistory"),
];

/// Sort key of a legacy key: numeric keys by value, then any other key by its bytes.
pub fn key_order(key: &str) -> (bool, u128, &[u8]) {
    let trimmed = key.trim();
    match trimmed.parse::<u128>() {
        Ok(n) if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) => (false, n, key.as_bytes()),
        _ => (true, 0, key.as_bytes()),
    }
}

/// The three parts of a requirements group key `customer:requirements:document_set` (an empty
/// part is None); None when the key has another shape.
pub fn split_group_key(key: &str) -> Option<[Option<u64>; 3]> {
    let parts: Vec<&str> = key.split(':').collect();
    if parts.len() != 3 {
        return None;
    }
    let mut out = [None; 3];
    for (slot, part) in out.iter_mut().zip(parts) {
        if !part.is_empty() {
            *slot = Some(part.parse::<u64>().ok()?);
        }
    }
    Some(out)
}

/// RFC 4180 CSV (LF line ends) with `header`, in memory.
pub fn render_csv<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing to a Vec cannot fail; a csv error here would be a bug in the writer itself.
    w.write_record(header).expect("write to memory");
    for row in rows {
        w.write_record(row).expect("write to memory");
    }
    w.into_inner().expect("flush to memory")
}

fn opt(v: Option<i64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// One mapping file, ready to write.
struct MappingFile {
    name: &'static str,
    bytes: Vec<u8>,
    rows: u64,
    /// Rows left out and why (for the report).
    left_out: Vec<String>,
}

async fn certificates(conn: &mut PgConnection) -> Result<MappingFile, LoadError> {
    let mut rows: Vec<(String, i64, i64, Option<i64>)> = sqlx::query_as(
        "SELECT m.legacy_key, c.id, c.requirements_group_id, e.id
         FROM dtx_migration.id_map m
         JOIN docutrax_profiles_certificate c ON c.id = m.new_id
         LEFT JOIN dtx_migration.id_map me ON me.entity = 'evaluation' AND me.legacy_key = m.legacy_key
         LEFT JOIN docutrax_profiles_evaluation e ON e.id = me.new_id AND e.certificate_id = c.id
         WHERE m.entity = 'certificate'",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.sort_by(|a, b| key_order(&a.0).cmp(&key_order(&b.0)));
    let rows: Vec<[String; 4]> = rows.into_iter().map(|(k, c, g, e)| [k, c.to_string(), g.to_string(), opt(e)]).collect();
    Ok(MappingFile { name: CERTIFICATES_FILE, bytes: render_csv(CERTIFICATES_HEADER, &rows), rows: rows.len() as u64, left_out: Vec::new() })
}

async fn documents(conn: &mut PgConnection) -> Result<MappingFile, LoadError> {
    let mut rows: Vec<(String, i64, Option<i64>, i64)> = sqlx::query_as(
        "SELECT m.legacy_key, d.id, f.doc_requirement_id, COALESCE(f.n, 0)
         FROM dtx_migration.id_map m
         JOIN docutrax_profiles_document d ON d.id = m.new_id
         LEFT JOIN LATERAL (
             SELECT f.doc_requirement_id, COUNT(*) OVER () AS n
             FROM docutrax_profiles_documentrequirementfulfillment f
             LEFT JOIN dtx_migration.id_map mf ON mf.entity = 'document_requirement_fulfillment' AND mf.new_id = f.id
             WHERE f.document_id = d.id
             ORDER BY (mf.new_id IS NULL), f.doc_requirement_id LIMIT 1) f ON true
         WHERE m.entity = 'document'",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.sort_by(|a, b| key_order(&a.0).cmp(&key_order(&b.0)));
    let several = rows.iter().filter(|r| r.3 > 1).count();
    let left_out = if several > 0 {
        vec![format!("{several} document(s) fulfil several DocRequirements: the migration's fulfilment, then the lowest id, is exported")]
    } else {
        Vec::new()
    };
    let rows: Vec<[String; 3]> = rows.into_iter().map(|(k, d, r, _)| [k, d.to_string(), opt(r)]).collect();
    Ok(MappingFile { name: DOCUMENTS_FILE, bytes: render_csv(DOCUMENTS_HEADER, &rows), rows: rows.len() as u64, left_out })
}

/// A two-column file: legacy key → new id of `entity`'s rows that exist in `table`.
async fn pairs(conn: &mut PgConnection, name: &'static str, header: [&str; 2], entity: &str, table: &str) -> Result<MappingFile, LoadError> {
    let mut rows: Vec<(String, i64)> = sqlx::query_as(&format!(
        "SELECT m.legacy_key, t.id FROM dtx_migration.id_map m JOIN {table} t ON t.id = m.new_id WHERE m.entity = $1"
    ))
    .bind(entity)
    .fetch_all(&mut *conn)
    .await?;
    rows.sort_by(|a, b| key_order(&a.0).cmp(&key_order(&b.0)));
    let rows: Vec<[String; 2]> = rows.into_iter().map(|(k, id)| [k, id.to_string()]).collect();
    Ok(MappingFile { name, bytes: render_csv(header, &rows), rows: rows.len() as u64, left_out: Vec::new() })
}

async fn requirements_groups(conn: &mut PgConnection) -> Result<MappingFile, LoadError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT m.legacy_key, g.id FROM dtx_migration.id_map m JOIN docutrax_hierarchy_requirementsgroup g ON g.id = m.new_id
         WHERE m.entity = 'requirements_group'",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut split: Vec<([Option<u64>; 3], i64)> = Vec::with_capacity(rows.len());
    let mut malformed: Vec<String> = Vec::new();
    for (key, id) in rows {
        match split_group_key(&key) {
            Some(parts) => split.push((parts, id)),
            None => malformed.push(format!("{key:?}")),
        }
    }
    split.sort();
    malformed.sort();
    let left_out = if malformed.is_empty() {
        Vec::new()
    } else {
        vec![format!("{} key(s) not of the form customer:requirements:document_set left out: {}", malformed.len(), malformed.join(", "))]
    };
    let part = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    let rows: Vec<[String; 4]> = split.into_iter().map(|([c, r, d], id)| [part(c), part(r), part(d), id.to_string()]).collect();
    Ok(MappingFile { name: REQ_GROUPS_FILE, bytes: render_csv(REQ_GROUPS_HEADER, &rows), rows: rows.len() as u64, left_out })
}

/// repo_file_id, s3_key, content_hash, file_uid.
type RepoFileRow = (i64, Option<String>, Option<String>, Option<String>);

async fn repo_files(conn: &mut PgConnection) -> Result<MappingFile, LoadError> {
    let rows: Vec<RepoFileRow> = sqlx::query_as(
        "SELECT repo_file_id, CASE WHEN stored THEN s3_key END, CASE WHEN stored THEN content_hash END, CASE WHEN stored THEN file_uid END
         FROM (SELECT DISTINCT ON (repo_file_id) repo_file_id, s3_key, content_hash, file_uid,
                      status IN ('moved', 'deduplicated') AND COALESCE(btrim(s3_key), '') <> '' AS stored
               FROM dtx_migration.file_manifest WHERE repo_file_id IS NOT NULL
               ORDER BY repo_file_id, (status IN ('moved', 'deduplicated') AND COALESCE(btrim(s3_key), '') <> '') DESC NULLS LAST,
                        source_key COLLATE \"C\") r
         ORDER BY repo_file_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    let stored = rows.iter().filter(|r| r.1.is_some()).count();
    let left_out = vec![format!("{stored} of {} repo file(s) stored", rows.len())];
    let rows: Vec<[String; 4]> =
        rows.into_iter().map(|(id, k, h, u)| [id.to_string(), k.unwrap_or_default(), h.unwrap_or_default(), u.unwrap_or_default()]).collect();
    Ok(MappingFile { name: REPO_FILES_FILE, bytes: render_csv(REPO_FILES_HEADER, &rows), rows: rows.len() as u64, left_out })
}

/// The order steps are listed in: the spec's, then any other name.
fn step_rank(name: &str) -> (u8, String) {
    (Step::parse(name).map(Step::number).unwrap_or(u8::MAX), name.to_string())
}

/// `{"a": 1, "b": 2}` as `a=1, b=2` (keys sorted).
fn render_counts(counts: &serde_json::Value) -> String {
    match counts.as_object() {
        Some(map) if !map.is_empty() => {
            let sorted: BTreeMap<&String, &serde_json::Value> = map.iter().collect();
            sorted.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
        }
        _ => "(none)".into(),
    }
}

type StepRun = (String, String, bool, serde_json::Value, Option<chrono::DateTime<chrono::Utc>>);

/// `migration_report.txt`.
async fn report(
    conn: &mut PgConnection,
    files: &[MappingFile],
    validate_json: Result<Vec<u8>, String>,
    verification: Result<String, String>,
) -> Result<String, LoadError> {
    let mut r = String::new();
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC");
    let mut line = |s: String| {
        r.push_str(&s);
        r.push('\n');
    };
    line("=== DTX 1.0 Certificates & Documents Migration - Migration Report ===".into());
    line(format!("Generated: {now}"));
    line(String::new());

    // Steps.
    let mut runs: Vec<StepRun> =
        sqlx::query_as("SELECT step, status, dry_run, counts, finished_at FROM dtx_migration.step_run").fetch_all(&mut *conn).await?;
    runs.sort_by_key(|(step, ..)| step_rank(step));
    line("Steps (dtx_migration.step_run):".into());
    for step in Step::ALL {
        if !runs.iter().any(|(s, ..)| s == step.name()) && !matches!(step, Step::Validate | Step::ExportMappings | Step::Verify) {
            line(format!("  {:>2}. {}: not run", step.number(), step.name()));
        }
        for (name, status, dry_run, counts, finished) in runs.iter().filter(|(s, ..)| s == step.name()) {
            let when = finished.map(|f| format!(", finished {}", f.format("%Y-%m-%d %H:%M:%S UTC"))).unwrap_or_default();
            let dry = if *dry_run { " (dry run)" } else { "" };
            line(format!("  {:>2}. {name}: {status}{dry}{when}; {}", step.number(), render_counts(counts)));
        }
    }
    for (name, status, _, counts, _) in runs.iter().filter(|(s, ..)| Step::parse(s).is_err()) {
        line(format!("      {name}: {status}; {}", render_counts(counts)));
    }
    line(String::new());

    // Migrated records per entity.
    let entities: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT entity, COUNT(*), COUNT(*) FILTER (WHERE created) FROM dtx_migration.id_map GROUP BY entity ORDER BY entity",
    )
    .fetch_all(&mut *conn)
    .await?;
    line("Migrated records (dtx_migration.id_map): entity: mapped (created by the migration / existing reused), not in target".into());
    let mut dangling_total = 0;
    for (entity, mapped, created) in &entities {
        let missing = match ENTITY_TABLES.iter().find(|(e, _)| e == entity) {
            Some((_, table)) => {
                let n: i64 = sqlx::query_scalar(&format!(
                    "SELECT COUNT(*) FROM dtx_migration.id_map m WHERE m.entity = $1 AND NOT EXISTS (SELECT 1 FROM {table} t WHERE t.id = m.new_id)"
                ))
                .bind(entity)
                .fetch_one(&mut *conn)
                .await?;
                dangling_total += n;
                n.to_string()
            }
            None => "(unknown table)".into(),
        };
        line(format!("  {entity}: {mapped} ({created} / {}), not in target: {missing}", mapped - created));
    }
    if entities.is_empty() {
        line("  (none)".into());
    }
    line(String::new());

    line("ID mapping files:".into());
    for f in files {
        line(format!("  {}: {} row(s)", f.name, f.rows));
        for note in &f.left_out {
            line(format!("    {note}"));
        }
    }
    if dangling_total > 0 {
        line(format!("  id map entries whose DTX 2.0 row is gone (in no mapping file): {dangling_total}"));
    }
    line(String::new());

    // Issues.
    let mut by_reason: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT step, reason, COUNT(*) FROM dtx_migration.issue GROUP BY step, reason").fetch_all(&mut *conn).await?;
    by_reason.sort_by(|a, b| (step_rank(&a.0), &a.1).cmp(&(step_rank(&b.0), &b.1)));
    let total: i64 = by_reason.iter().map(|r| r.2).sum();
    line(format!("Issues flagged: {total} (details in {ISSUES_FILE})"));
    for (step, reason, n) in &by_reason {
        line(format!("  {step}: {reason}: {n}"));
    }
    line(String::new());

    // Decision #12.
    let mut docusign: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT legacy_key, detail FROM dtx_migration.issue WHERE reason ILIKE '%docusign%'").fetch_all(&mut *conn).await?;
    docusign.sort_by(|a, b| key_order(&a.0).cmp(&key_order(&b.0)).then_with(|| a.1.cmp(&b.1)));
    docusign.dedup();
    line(format!("DocuSign templates dropped (Decision #12): {} document(s)", docusign.len()));
    for (key, detail) in &docusign {
        line(format!("  document {key}: {}", detail.as_deref().unwrap_or("")));
    }
    line(String::new());

    // Decision #6: the documents step's counts of the raw values it read, else the validate
    // step's distribution.
    let from_step: BTreeMap<String, u64> = runs
        .iter()
        .filter(|(s, ..)| s == Step::Documents.name())
        .filter_map(|(_, _, _, counts, _)| counts.as_object())
        .flat_map(|m| m.iter().filter_map(|(k, v)| Some((k.strip_prefix(RAW_STATUS_COUNTER)?.to_string(), v.as_u64()?))))
        .collect();
    if !from_step.is_empty() {
        line("Legacy document_status distribution (Decision #6; raw values as the documents step read them):".into());
        for (value, n) in &from_step {
            line(format!("  {value}: {n}"));
        }
    } else {
        line("Legacy document_status distribution (Decision #6; raw values from the validate step):".into());
        let parsed =
            validate_json.and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|e| format!("{VALIDATE_JSON}: {e}")));
        match parsed {
            Ok(json) => {
                let documents = &json["documents"];
                match documents["status_distribution"].as_object() {
                    Some(dist) => {
                        for (value, n) in dist {
                            line(format!("  {value}: {n}"));
                        }
                        if let Some(unknown) = documents["unknown_status_values"].as_object().filter(|u| !u.is_empty()) {
                            let values: Vec<String> = unknown.iter().map(|(v, n)| format!("{v} ({n})")).collect();
                            line(format!("  unknown values, migrated as new: {}", values.join(", ")));
                        }
                    }
                    None => line(format!("  not available: {VALIDATE_JSON} has no documents.status_distribution")),
                }
            }
            Err(e) => line(format!("  not available ({e}); run the documents step, or step 1 validate with the same REPORT_DIR")),
        }
    }
    line(String::new());

    // The last verification: its report in REPORT_DIR.
    line(format!("Verification (step 14, {}):", super::verify::REPORT_FILE));
    match verification {
        Ok(text) => {
            for l in text.lines() {
                line(if l.is_empty() { String::new() } else { format!("  {l}") });
            }
        }
        Err(e) => line(format!("  not run yet ({e}); step 14 verify rewrites this report with its result")),
    }
    Ok(r)
}

/// Everything the export writes, read in one snapshot.
struct Export {
    files: Vec<MappingFile>,
    report: String,
    issue_rows: u64,
    issues: Vec<u8>,
}

async fn build(loader: &Loader) -> Result<Export, LoadError> {
    book::ensure_schema(&loader.target).await?;
    let mut tx = loader.target.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
    let files = vec![
        certificates(&mut tx).await?,
        documents(&mut tx).await?,
        pairs(&mut tx, DOC_TYPES_FILE, DOC_TYPES_HEADER, "document_library", "docutrax_profiles_documenttype").await?,
        pairs(&mut tx, DOC_PROFILES_FILE, DOC_PROFILES_HEADER, "document_set", "docutrax_profiles_documentriskprofile").await?,
        requirements_groups(&mut tx).await?,
        repo_files(&mut tx).await?,
    ];
    let validate_json = loader.reports.read(VALIDATE_JSON).await.map(|(bytes, _)| bytes).map_err(|e| e.to_string());
    let verification = loader
        .reports
        .read(super::verify::REPORT_FILE)
        .await
        .map(|(bytes, _)| String::from_utf8_lossy(&bytes).into_owned())
        .map_err(|e| e.to_string());
    let report = report(&mut tx, &files, validate_json, verification).await?;
    let issue_rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dtx_migration.issue").fetch_one(&mut *tx).await?;
    let issues = book::render_issues_csv(&issue_list(&mut tx).await?);
    tx.commit().await?;
    Ok(Export { files, report, issue_rows: issue_rows.max(0) as u64, issues })
}

/// Writes every output file; counts are rows per file (without the header). A dry run counts
/// the rows and writes nothing (the files of the last real export stay as they were).
pub async fn run(loader: &Loader, dry_run: bool) -> Result<LoadResponse, LoadError> {
    let Export { files, report, issue_rows, issues } = build(loader).await?;
    let mut counts = BTreeMap::new();
    let mut outputs = Vec::new();
    for f in &files {
        counts.insert(f.name.trim_end_matches(".csv").to_string(), f.rows);
    }
    counts.insert(ISSUES_FILE.trim_end_matches(".csv").to_string(), issue_rows);
    if !dry_run {
        for f in files {
            outputs.push(loader.reports.write(f.name, f.bytes).await?);
        }
        outputs.push(loader.reports.write(ISSUES_FILE, issues).await?);
        outputs.push(loader.reports.write(REPORT_FILE, report.into_bytes()).await?);
    }
    Ok(LoadResponse { step: Step::ExportMappings.name().into(), done: true, cursor: None, counts, outputs })
}

/// Rewrites only `migration_report.txt`, so that it carries the verification that just ran
/// (step 14 comes after the export); the mapping files and the issues CSV are left as the
/// export wrote them.
pub async fn rewrite_report(loader: &Loader) -> Result<String, LoadError> {
    let Export { report, .. } = build(loader).await?;
    Ok(loader.reports.write(REPORT_FILE, report.into_bytes()).await?)
}

/// Every recorded issue, as `book::render_issues_csv` takes them (read in the export's snapshot).
async fn issue_list(conn: &mut PgConnection) -> Result<Vec<(String, book::Issue)>, LoadError> {
    let rows: Vec<(String, String, String, String, Option<String>)> =
        sqlx::query_as("SELECT entity, legacy_key, step, reason, detail FROM dtx_migration.issue").fetch_all(&mut *conn).await?;
    Ok(rows.into_iter().map(|(entity, legacy_key, step, reason, detail)| (step, book::Issue { entity, legacy_key, reason, detail })).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_keys_order_by_number_then_bytes() {
        let mut keys = vec!["10", "9", "x", "100", "2", "A"];
        keys.sort_by(|a, b| key_order(a).cmp(&key_order(b)));
        assert_eq!(keys, ["2", "9", "10", "100", "A", "x"]);
    }

    #[test]
    fn group_keys_split_into_three_parts() {
        assert_eq!(split_group_key("12:7:"), Some([Some(12), Some(7), None]));
        assert_eq!(split_group_key("1::3"), Some([Some(1), None, Some(3)]));
        assert_eq!(split_group_key("1:2"), None);
        assert_eq!(split_group_key("1:a:2"), None);
    }

    #[test]
    fn csv_fields_are_quoted_as_rfc_4180_says() {
        let bytes = render_csv(["a", "b"], &[["x,y".into(), "say \"hi\"".into()], ["".into(), "2".into()]]);
        assert_eq!(String::from_utf8(bytes).unwrap(), "a,b\n\"x,y\",\"say \"\"hi\"\"\"\n,2\n");
    }
}
