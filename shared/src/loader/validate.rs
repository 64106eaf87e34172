//! The loader's `validate` step: the spec's dry-run report over the legacy database. It reads
//! only; every figure is a set-based aggregate, so it runs in seconds on the spec's upper
//! estimates (200K certificates, 800K status rows).

use super::mapping;
use crate::legacy::LegacyError;
use serde::Serialize;
use sqlx::mysql::MySqlPool;
use sqlx::Row;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The Area 1-3 mappings the report checks coverage against.
#[derive(Debug, Clone, Default)]
pub struct MappingCoverage {
    pub accounts: HashSet<u64>,
    pub vendors: HashSet<u64>,
    pub users: HashSet<u64>,
}

/// A value and how many rows hold it.
pub type Distribution = BTreeMap<String, u64>;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CertificateFigures {
    pub total: u64,
    pub status_distribution: Distribution,
    pub unknown_status_values: Distribution,
    pub with_attachment: u64,
    pub without_attachment: u64,
    pub with_replacement_id: u64,
    pub with_requirements_id: u64,
    pub with_document_set_id: u64,
    pub with_override_reason: u64,
    /// Decision #15: both names set and different (logged, combined with " / ").
    pub insured_name_conflicts: Vec<u64>,
    pub without_insured_name: u64,
    pub unmapped_customer: u64,
    pub unmapped_vendor: u64,
    pub unmapped_user: u64,
    pub zero_dates: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatusRowFigures {
    pub total: u64,
    pub unique_certificates: u64,
    pub field_names: Distribution,
    /// field_names that fall back to OtherCoverage (Decision #4), with row counts.
    pub unmapped_field_names: Distribution,
    pub status_codes: Distribution,
    pub compliant: u64,
    pub non_compliant: u64,
    /// Rows whose certificate does not exist (logged and skipped).
    pub orphan_rows: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DocumentFigures {
    pub total: u64,
    pub status_distribution: Distribution,
    pub unknown_status_values: Distribution,
    /// `document_status.document_status` (per-vendor requirement status).
    pub requirement_status_distribution: Distribution,
    pub unknown_requirement_status_values: Distribution,
    pub with_attachment: u64,
    pub with_parent_document_id: u64,
    /// Decision #12: listed for reference.
    pub docusign_templates: Vec<(u64, String)>,
    pub unmapped_customer: u64,
    pub unmapped_vendor: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LibraryFigures {
    pub total: u64,
    pub unique_names: u64,
    /// Names used by more than one library entry (merged by Decision #7, flagged for review).
    pub duplicate_names: Distribution,
    pub without_name: u64,
    /// Library entries no document references (created anyway, logged as potentially orphaned).
    pub unreferenced: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SetFigures {
    pub total: u64,
    pub requirements_min: u64,
    pub requirements_max: u64,
    pub requirements_avg: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AttachmentFigures {
    pub total: u64,
    pub with_certificate_id: u64,
    pub with_document_id: u64,
    /// By lower-cased extension of `attachment.name`.
    pub file_types: Distribution,
    /// From the file manifest when the move has run: bytes of stored files.
    pub total_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ValidateReport {
    pub certificates: CertificateFigures,
    pub status_rows: StatusRowFigures,
    pub documents: DocumentFigures,
    pub libraries: LibraryFigures,
    pub sets: SetFigures,
    pub attachments: AttachmentFigures,
    /// Unique (customer_id, requirements_id, document_set_id) from certificate AND vendor.
    pub requirements_group_combos: u64,
    /// Problems the run will log and work around, by kind.
    pub issues: Distribution,
    /// Records that would be skipped (missing customer or vendor mapping).
    pub certificates_to_skip: u64,
    pub documents_to_skip: u64,
}

/// `IS NOT NULL AND <> 0`: legacy rows use both NULL and 0 for "none".
fn set(col: &str) -> String {
    // SUM yields DECIMAL in MySQL; the cast keeps every count a BIGINT.
    format!("CAST(SUM({col} IS NOT NULL AND {col} <> 0) AS SIGNED)")
}

async fn count(pool: &MySqlPool, sql: &str) -> Result<u64, LegacyError> {
    let n: Option<i64> = sqlx::query_scalar(sql).fetch_one(pool).await?;
    Ok(n.unwrap_or(0).max(0) as u64)
}

/// `SELECT CAST(value AS CHAR), COUNT(*) ... GROUP BY 1`, NULL shown as `(null)`.
async fn distribution(pool: &MySqlPool, sql: &str) -> Result<Distribution, LegacyError> {
    let rows = sqlx::query(sql).fetch_all(pool).await?;
    let mut out = Distribution::new();
    for row in rows {
        let value: Option<Vec<u8>> = row.try_get(0)?;
        let n: i64 = row.try_get(1)?;
        let key = value.map(|v| String::from_utf8_lossy(&v).into_owned()).unwrap_or_else(|| "(null)".into());
        *out.entry(key).or_default() += n.max(0) as u64;
    }
    Ok(out)
}

/// Ids of a column grouped with counts, for mapping coverage: (id or None, rows).
async fn id_counts(pool: &MySqlPool, sql: &str) -> Result<Vec<(Option<u64>, u64)>, LegacyError> {
    let rows = sqlx::query(sql).fetch_all(pool).await?;
    rows.iter()
        .map(|r| Ok((r.try_get::<Option<u64>, _>(0)?, r.try_get::<i64, _>(1)?.max(0) as u64)))
        .collect()
}

fn unmapped(counts: &[(Option<u64>, u64)], mapped: &HashSet<u64>) -> u64 {
    counts.iter().filter(|(id, _)| !id.is_some_and(|id| mapped.contains(&id))).map(|(_, n)| n).sum()
}

fn unknown_values<T>(dist: &Distribution, map: impl Fn(Option<&str>) -> mapping::Mapped<T>) -> Distribution {
    dist.iter()
        .filter(|(value, _)| {
            let v = (value.as_str() != "(null)").then_some(value.as_str());
            !map(v).known
        })
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

/// Builds the report. `manifest_bytes` is the stored bytes from the file manifest, when known.
pub async fn build_report(pool: &MySqlPool, mappings: &MappingCoverage, manifest_bytes: Option<u64>) -> Result<ValidateReport, LegacyError> {
    let mut r = ValidateReport::default();

    // Certificates.
    let c = &mut r.certificates;
    c.total = count(pool, "SELECT COUNT(*) FROM certificate").await?;
    c.status_distribution = distribution(pool, "SELECT CAST(certificate_status AS BINARY), COUNT(*) FROM certificate GROUP BY 1").await?;
    c.unknown_status_values = unknown_values(&c.status_distribution, mapping::certificate_status);
    c.with_attachment = count(pool, &format!("SELECT {} FROM certificate", set("attachment_id"))).await?;
    c.without_attachment = c.total - c.with_attachment;
    c.with_replacement_id = count(pool, &format!("SELECT {} FROM certificate", set("replacement_id"))).await?;
    c.with_requirements_id = count(pool, &format!("SELECT {} FROM certificate", set("requirements_id"))).await?;
    c.with_document_set_id = count(pool, &format!("SELECT {} FROM certificate", set("document_set_id"))).await?;
    c.with_override_reason = count(pool, "SELECT CAST(SUM(override_reason IS NOT NULL AND TRIM(override_reason) <> '') AS SIGNED) FROM certificate").await?;
    let names = sqlx::query(
        "SELECT CAST(id AS UNSIGNED), CAST(InsName AS BINARY), CAST(InsName1 AS BINARY) FROM certificate
         WHERE NULLIF(TRIM(InsName), '') IS NULL OR NULLIF(TRIM(InsName1), '') IS NOT NULL ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    for row in names {
        let id: u64 = row.try_get(0)?;
        let text = |i: usize| -> Result<Option<String>, sqlx::Error> {
            Ok(row.try_get::<Option<Vec<u8>>, _>(i)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
        };
        match mapping::insured_name(text(1)?.as_deref(), text(2)?.as_deref()) {
            mapping::InsuredName::Combined(_) => c.insured_name_conflicts.push(id),
            mapping::InsuredName::Missing => c.without_insured_name += 1,
            mapping::InsuredName::Single(_) => {}
        }
    }
    let customers = id_counts(pool, "SELECT CAST(customer_id AS UNSIGNED), COUNT(*) FROM certificate GROUP BY 1").await?;
    c.unmapped_customer = unmapped(&customers, &mappings.accounts);
    let vendors = id_counts(pool, "SELECT CAST(vendor_id AS UNSIGNED), COUNT(*) FROM certificate GROUP BY 1").await?;
    c.unmapped_vendor = unmapped(&vendors, &mappings.vendors);
    let users = id_counts(pool, "SELECT CAST(user_id AS UNSIGNED), COUNT(*) FROM certificate WHERE user_id IS NOT NULL AND user_id <> 0 GROUP BY 1").await?;
    c.unmapped_user = unmapped(&users, &mappings.users);
    c.zero_dates = count(
        pool,
        "SELECT COUNT(*) FROM certificate WHERE CAST(create_time AS CHAR) LIKE '0000-00-00%'
            OR CAST(certificate_expiration AS CHAR) LIKE '0000-00-00%' OR CAST(AuthDate AS CHAR) LIKE '0000-00-00%'",
    )
    .await?;
    // A certificate is skipped when its customer or its vendor has no mapping.
    r.certificates_to_skip = count(pool, &skip_sql("certificate", mappings)).await?;

    // Compliance rows.
    let s = &mut r.status_rows;
    s.total = count(pool, "SELECT COUNT(*) FROM certificate_status").await?;
    s.unique_certificates = count(pool, "SELECT COUNT(DISTINCT certificate_id) FROM certificate_status").await?;
    s.field_names = distribution(pool, "SELECT CAST(field_name AS BINARY), COUNT(*) FROM certificate_status GROUP BY 1").await?;
    s.unmapped_field_names = s
        .field_names
        .iter()
        .filter(|(name, _)| !mapping::coverage_type(name).known)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    s.status_codes = distribution(pool, "SELECT CAST(status_code AS BINARY), COUNT(*) FROM certificate_status GROUP BY 1").await?;
    for (code, n) in &s.status_codes {
        let code = (code != "(null)").then_some(code.as_str());
        if mapping::is_compliant(code) {
            s.compliant += n;
        } else {
            s.non_compliant += n;
        }
    }
    s.orphan_rows = count(
        pool,
        "SELECT COUNT(*) FROM certificate_status cs LEFT JOIN certificate c ON c.id = cs.certificate_id WHERE c.id IS NULL",
    )
    .await?;

    // Documents.
    let d = &mut r.documents;
    d.total = count(pool, "SELECT COUNT(*) FROM document").await?;
    d.status_distribution = distribution(pool, "SELECT CAST(document_status AS BINARY), COUNT(*) FROM document GROUP BY 1").await?;
    d.unknown_status_values = unknown_values(&d.status_distribution, mapping::document_status);
    d.requirement_status_distribution =
        distribution(pool, "SELECT CAST(document_status AS BINARY), COUNT(*) FROM document_status GROUP BY 1").await?;
    d.unknown_requirement_status_values = unknown_values(&d.requirement_status_distribution, mapping::doc_requirement_status);
    d.with_attachment = count(pool, &format!("SELECT {} FROM document", set("attachment_id"))).await?;
    d.with_parent_document_id = count(pool, &format!("SELECT {} FROM document", set("parent_document_id"))).await?;
    for row in sqlx::query(
        "SELECT CAST(id AS UNSIGNED), CAST(docusign_template_id AS BINARY) FROM document
         WHERE NULLIF(TRIM(docusign_template_id), '') IS NOT NULL ORDER BY id",
    )
    .fetch_all(pool)
    .await?
    {
        let template: Vec<u8> = row.try_get(1)?;
        d.docusign_templates.push((row.try_get(0)?, String::from_utf8_lossy(&template).into_owned()));
    }
    let customers = id_counts(pool, "SELECT CAST(customer_id AS UNSIGNED), COUNT(*) FROM document GROUP BY 1").await?;
    d.unmapped_customer = unmapped(&customers, &mappings.accounts);
    let vendors = id_counts(pool, "SELECT CAST(vendor_id AS UNSIGNED), COUNT(*) FROM document GROUP BY 1").await?;
    d.unmapped_vendor = unmapped(&vendors, &mappings.vendors);
    r.documents_to_skip = count(pool, &skip_sql("document", mappings)).await?;

    // Document libraries (Decision #7: same name = same type).
    let l = &mut r.libraries;
    l.total = count(pool, "SELECT COUNT(*) FROM document_library").await?;
    // The same normalization the document-types step merges by.
    let names = distribution(pool, "SELECT CAST(name AS BINARY), COUNT(*) FROM document_library GROUP BY 1").await?;
    let mut by_key: BTreeMap<String, (String, u64)> = BTreeMap::new();
    for (name, n) in names {
        let key = super::steps::document_types::name_key(&name);
        if name == "(null)" || key.is_empty() {
            l.without_name += n;
            continue;
        }
        by_key.entry(key).or_insert_with(|| (name.trim().to_string(), 0)).1 += n;
    }
    l.unique_names = by_key.len() as u64;
    l.duplicate_names = by_key.into_values().filter(|(_, n)| *n > 1).collect();
    l.unreferenced = count(
        pool,
        "SELECT COUNT(*) FROM document_library dl WHERE NOT EXISTS (SELECT 1 FROM document d WHERE d.document_library_id = dl.id)
           AND NOT EXISTS (SELECT 1 FROM document_status ds WHERE ds.document_library_id = dl.id)",
    )
    .await?;

    // Document sets.
    let per_set = sqlx::query(
        "SELECT COUNT(dr.id) FROM document_set s LEFT JOIN document_requirements dr ON dr.document_set_id = s.id GROUP BY s.id",
    )
    .fetch_all(pool)
    .await?;
    let sizes: Vec<u64> = per_set.iter().map(|row| row.try_get::<i64, _>(0).map(|n| n.max(0) as u64)).collect::<Result<_, _>>()?;
    r.sets = SetFigures {
        total: sizes.len() as u64,
        requirements_min: sizes.iter().copied().min().unwrap_or(0),
        requirements_max: sizes.iter().copied().max().unwrap_or(0),
        requirements_avg: if sizes.is_empty() { 0.0 } else { sizes.iter().sum::<u64>() as f64 / sizes.len() as f64 },
    };

    // Attachments.
    let a = &mut r.attachments;
    a.total = count(pool, "SELECT COUNT(*) FROM attachment").await?;
    a.with_certificate_id = count(pool, &format!("SELECT {} FROM attachment", set("certificate_id"))).await?;
    a.with_document_id = count(pool, &format!("SELECT {} FROM attachment", set("document_id"))).await?;
    let names = distribution(pool, "SELECT CAST(name AS BINARY), COUNT(*) FROM attachment GROUP BY 1").await?;
    for (name, n) in names {
        let ext = crate::keys::extension(&name);
        let ext = if ext.is_empty() { "(none)".to_string() } else { ext };
        *a.file_types.entry(ext).or_default() += n;
    }
    a.total_bytes = manifest_bytes;

    r.requirements_group_combos = count(
        pool,
        // 0 and NULL both mean "none", as in the requirements-groups step.
        "SELECT COUNT(*) FROM (SELECT NULLIF(customer_id, 0), NULLIF(requirements_id, 0), NULLIF(document_set_id, 0) FROM certificate
                               UNION SELECT NULLIF(customer_id, 0), NULLIF(requirements_id, 0), NULLIF(document_set_id, 0) FROM vendor) combos",
    )
    .await?;

    let mut issues = Distribution::new();
    let mut flag = |kind: &str, n: u64| {
        if n > 0 {
            issues.insert(kind.to_string(), n);
        }
    };
    flag("certificate: unknown certificate_status (-> manual_review)", r.certificates.unknown_status_values.values().sum());
    flag("certificate: customer without account mapping (skipped)", r.certificates.unmapped_customer);
    flag("certificate: vendor without record mapping (skipped)", r.certificates.unmapped_vendor);
    flag("certificate: user without user mapping (created_by left empty)", r.certificates.unmapped_user);
    flag("certificate: no insured name (flag for review)", r.certificates.without_insured_name);
    flag("certificate: zero date", r.certificates.zero_dates);
    flag("certificate_status: row without certificate (skipped)", r.status_rows.orphan_rows);
    flag("certificate_status: field_name without coverage prefix (-> OtherCoverage)", r.status_rows.unmapped_field_names.values().sum());
    flag("document: unknown document_status (-> new)", r.documents.unknown_status_values.values().sum());
    flag("document_status: unknown status (-> in_review)", r.documents.unknown_requirement_status_values.values().sum());
    flag("document: customer without account mapping (skipped)", r.documents.unmapped_customer);
    flag("document: vendor without record mapping (skipped)", r.documents.unmapped_vendor);
    flag("document: parent document flattened into notes", r.documents.with_parent_document_id);
    flag("document_library: duplicate name (merged)", r.libraries.duplicate_names.values().sum());
    flag("document_library: no name", r.libraries.without_name);
    flag("document_library: referenced by no document (potentially orphaned)", r.libraries.unreferenced);
    r.issues = issues;
    Ok(r)
}

/// Rows of `table` whose customer or vendor has no mapping. The mapped id sets are inlined
/// as literal lists (ids are integers, so there is nothing to escape).
fn skip_sql(table: &str, mappings: &MappingCoverage) -> String {
    // `x NOT IN ()` is not SQL, and `x NOT IN (NULL)` is never true: an empty mapping maps nothing.
    let not_in = |col: &str, ids: &HashSet<u64>| {
        if ids.is_empty() {
            "TRUE".to_string()
        } else {
            format!("{col} NOT IN ({})", ids.iter().map(u64::to_string).collect::<Vec<_>>().join(","))
        }
    };
    format!(
        "SELECT COUNT(*) FROM {table} WHERE customer_id IS NULL OR {} OR vendor_id IS NULL OR {}",
        not_in("customer_id", &mappings.accounts),
        not_in("vendor_id", &mappings.vendors)
    )
}

impl MappingCoverage {
    pub fn from_maps(accounts: &HashMap<u64, String>, vendors: &HashMap<u64, crate::mappings::RecordMapping>, users: &HashMap<u64, i64>) -> Self {
        Self {
            accounts: accounts.keys().copied().collect(),
            vendors: vendors.keys().copied().collect(),
            users: users.keys().copied().collect(),
        }
    }
}

fn dist_line(d: &Distribution) -> String {
    if d.is_empty() {
        return "(none)".into();
    }
    d.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")
}

impl ValidateReport {
    /// The spec's "Dry Run Report" layout, followed by the distributions it says to log.
    pub fn render_text(&self) -> String {
        let c = &self.certificates;
        let s = &self.status_rows;
        let d = &self.documents;
        let l = &self.libraries;
        let a = &self.attachments;
        let mut o = String::new();
        let mut line = |text: String| {
            o.push_str(&text);
            o.push('\n');
        };
        line("=== DTX 1.0 Certificates & Documents Migration - Dry Run Report ===".into());
        line("Certificates:".into());
        line(format!("  Total records: {}", c.total));
        let finished = c.status_distribution.get("FINISHED").copied().unwrap_or(0);
        let pending = c.status_distribution.get("PENDING").copied().unwrap_or(0);
        line(format!("  Status distribution: FINISHED: {finished}, PENDING: {pending}, other: {}", c.total - finished - pending));
        line(format!("    all values: {}", dist_line(&c.status_distribution)));
        line(format!("  With attachment: {}", c.with_attachment));
        line(format!("  Without attachment: {}", c.without_attachment));
        line(format!("  With replacement_id: {}", c.with_replacement_id));
        line(format!("  With requirements_id: {}", c.with_requirements_id));
        line(format!("  With document_set_id: {}", c.with_document_set_id));
        line(format!("  With override_reason (-> ManualOverride): {}", c.with_override_reason));
        line(format!(
            "  InsName/InsName1 both set and different (combined with \" / \"): {} {}",
            c.insured_name_conflicts.len(),
            ids_preview(&c.insured_name_conflicts)
        ));
        line("Certificate Status (compliance checks):".into());
        line(format!("  Total rows: {}", s.total));
        line(format!("  Unique certificates: {}", s.unique_certificates));
        line(format!("  Unique field_names: [{}]", s.field_names.keys().cloned().collect::<Vec<_>>().join(", ")));
        line(format!("    with frequencies: {}", dist_line(&s.field_names)));
        line(format!("    without a coverage prefix (-> OtherCoverage): {}", dist_line(&s.unmapped_field_names)));
        line(format!("  COMPLIANT count: {}", s.compliant));
        line(format!("  Non-COMPLIANT count: {}", s.non_compliant));
        line(format!("    status_code values: {}", dist_line(&s.status_codes)));
        line(format!("  Rows without a certificate: {}", s.orphan_rows));
        line("Documents:".into());
        line(format!("  Total records: {}", d.total));
        line(format!("  Status distribution: {}", dist_line(&d.status_distribution)));
        line(format!("  document_status table values: {}", dist_line(&d.requirement_status_distribution)));
        line(format!("  With attachment: {}", d.with_attachment));
        line(format!("  With parent_document_id: {}", d.with_parent_document_id));
        line(format!("  With docusign_template_id: {}", d.docusign_templates.len()));
        for (id, template) in d.docusign_templates.iter().take(100) {
            line(format!("    document {id}: template {template}"));
        }
        line("Document Libraries:".into());
        line(format!("  Total entries: {}", l.total));
        line(format!("  Unique names: {}", l.unique_names));
        line(format!("  Duplicate names: {} {}", l.duplicate_names.len(), if l.duplicate_names.is_empty() { String::new() } else { format!("({})", dist_line(&l.duplicate_names)) }));
        line("Document Sets:".into());
        line(format!("  Total entries: {}", self.sets.total));
        line(format!(
            "  Requirements per set: min: {}, max: {}, avg: {:.1}",
            self.sets.requirements_min, self.sets.requirements_max, self.sets.requirements_avg
        ));
        line("Attachments:".into());
        line(format!("  Total files: {}", a.total));
        line(format!("  With certificate_id: {}", a.with_certificate_id));
        line(format!("  With document_id: {}", a.with_document_id));
        line(match a.total_bytes {
            Some(b) => format!("  Total file size: {:.2} GB", b as f64 / 1e9),
            None => "  Total file size: unknown until the file move has run (see file_manifest.csv)".into(),
        });
        line(format!("  File types: [{}]", dist_line(&a.file_types)));
        line("RequirementsGroups to create:".into());
        line(format!("  Unique (customer, requirements, doc_set) combos: {}", self.requirements_group_combos));
        line(format!("Issues flagged: {}", self.issues.values().sum::<u64>()));
        for (kind, n) in &self.issues {
            line(format!("  {kind}: {n}"));
        }
        line(format!(
            "Ready to migrate: {} of {} certificates, {} of {} documents ({} and {} skipped for missing mappings)",
            c.total - self.certificates_to_skip,
            c.total,
            d.total - self.documents_to_skip,
            d.total,
            self.certificates_to_skip,
            self.documents_to_skip
        ));
        o
    }
}

fn ids_preview(ids: &[u64]) -> String {
    if ids.is_empty() {
        return String::new();
    }
    let shown: Vec<String> = ids.iter().take(20).map(u64::to_string).collect();
    let more = if ids.len() > 20 { format!(", ... {} more", ids.len() - 20) } else { String::new() };
    format!("(certificate ids: {}{more})", shown.join(", "))
}
