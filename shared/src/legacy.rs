//! The legacy DTX 1.0 database (MySQL/MariaDB): schema validation against the embedded DDL,
//! and keyset-paged reads of the rows that name files.

use crate::message::{FileMessage, LegacyIds, SourceRef, MESSAGE_VERSION};
use crate::model::Area;
use crate::paths::{self, PathRules};
use sqlx::mysql::{MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The assumed legacy schema (`infra/sql/legacy_mysql.sql`), the one place that names legacy columns.
pub const LEGACY_DDL: &str = include_str!("../../infra/sql/legacy_mysql.sql");

#[derive(Debug, thiserror::Error)]
pub enum LegacyError {
    #[error("legacy database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("legacy schema does not match infra/sql/legacy_mysql.sql: {0}")]
    Schema(String),
    #[error("legacy database credentials: {0}")]
    Credentials(String),
}

/// The DDL's statements: `--` comment lines removed (comments may contain `;`), split on `;`.
pub fn ddl_statements(ddl: &str) -> Vec<String> {
    let without_comments = ddl
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// Tables and their columns as the DDL declares them.
pub fn expected_columns(ddl: &str) -> BTreeMap<String, Vec<String>> {
    let mut tables = BTreeMap::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in ddl.lines().map(str::trim) {
        if line.starts_with("--") || line.is_empty() {
            continue;
        }
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("CREATE TABLE") {
            let name = line
                .split_whitespace()
                .find(|w| !matches!(w.to_ascii_uppercase().as_str(), "CREATE" | "TABLE" | "IF" | "NOT" | "EXISTS" | "("))
                .unwrap_or_default()
                .trim_matches(|c| c == '`' || c == '(')
                .to_string();
            current = Some((name, Vec::new()));
        } else if line.starts_with(')') {
            if let Some((name, cols)) = current.take() {
                tables.insert(name, cols);
            }
        } else if let Some((_, cols)) = current.as_mut() {
            let first = line.split_whitespace().next().unwrap_or_default();
            if !matches!(first.to_ascii_uppercase().as_str(), "KEY" | "PRIMARY" | "UNIQUE" | "INDEX" | "CONSTRAINT" | "FOREIGN") {
                cols.push(first.trim_matches('`').to_string());
            }
        }
    }
    tables
}

/// The legacy tables the file move reads.
pub const FILE_MOVE_TABLES: [&str; 5] = ["customer", "certificate", "document", "attachment", "repo_file"];

/// The legacy tables the record loader reads.
pub const LOADER_TABLES: [&str; 11] = [
    "customer",
    "certificate",
    "certificate_status",
    "vendor",
    "document",
    "document_status",
    "document_library",
    "document_set",
    "document_requirements",
    "attachment",
    "repo_file",
];

/// Compares the live schema with the DDL for `tables`; every missing table or column is named.
pub async fn validate_schema(pool: &MySqlPool, ddl: &str, tables: &[&str]) -> Result<(), LegacyError> {
    let rows = sqlx::query(
        "SELECT CAST(table_name AS CHAR) AS t, CAST(column_name AS CHAR) AS c FROM information_schema.columns WHERE table_schema = DATABASE()",
    )
    .fetch_all(pool)
    .await?;
    let mut live: HashMap<String, BTreeSet<String>> = HashMap::new();
    for row in rows {
        let t: String = row.try_get("t")?;
        let c: String = row.try_get("c")?;
        live.entry(t.to_ascii_lowercase()).or_default().insert(c.to_ascii_lowercase());
    }
    let mut problems = Vec::new();
    let expected = expected_columns(ddl);
    for table in tables {
        if !expected.contains_key(*table) {
            problems.push(format!("table `{table}` is not declared in infra/sql/legacy_mysql.sql"));
        }
    }
    for (table, cols) in expected.into_iter().filter(|(t, _)| tables.contains(&t.as_str())) {
        match live.get(&table.to_ascii_lowercase()) {
            None => problems.push(format!("table `{table}` is missing")),
            Some(have) => {
                for c in cols {
                    if !have.contains(&c.to_ascii_lowercase()) {
                        problems.push(format!("column `{table}.{c}` is missing"));
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(LegacyError::Schema(problems.join("; ")))
    }
}

pub async fn connect(url: &str, max_connections: u32) -> Result<MySqlPool, LegacyError> {
    Ok(MySqlPoolOptions::new().max_connections(max_connections).connect(url).await?)
}

/// The inventory walks three phases, each keyset-paged by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Attachments,
    RepoFiles,
    Logos,
}

impl Phase {
    pub const ORDER: [Phase; 3] = [Phase::Attachments, Phase::RepoFiles, Phase::Logos];
    pub fn next(self) -> Option<Phase> {
        match self {
            Phase::Attachments => Some(Phase::RepoFiles),
            Phase::RepoFiles => Some(Phase::Logos),
            Phase::Logos => None,
        }
    }
}

/// One page of planned files and the last id it covered.
pub struct Page {
    pub messages: Vec<FileMessage>,
    pub last_id: Option<u64>,
    pub rows: usize,
}

fn opt_u64(row: &MySqlRow, col: &str) -> Result<Option<u64>, sqlx::Error> {
    row.try_get::<Option<u64>, _>(col)
}

/// Text columns are read as bytes: legacy data may hold bytes that are not UTF-8, and such a
/// row must become a named problem, not a failed page.
fn opt_text(row: &MySqlRow, col: &str) -> Result<Option<Result<String, String>>, sqlx::Error> {
    let bytes: Option<Vec<u8>> = row.try_get(col)?;
    Ok(bytes.map(|b| String::from_utf8(b).map_err(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())))
}

const ATTACHMENTS_SQL: &str = "
SELECT CAST(a.id AS UNSIGNED) AS id, CAST(a.name AS BINARY) AS name,
       CAST(a.certificate_id AS UNSIGNED) AS certificate_id, CAST(a.document_id AS UNSIGNED) AS document_id,
       CAST(c.customer_id AS UNSIGNED) AS cert_customer, CAST(d.customer_id AS UNSIGNED) AS doc_customer,
       CAST(rf.id AS UNSIGNED) AS rf_id, CAST(rf.repo_filepath AS BINARY) AS repo_filepath,
       CAST(rf.status AS BINARY) AS rf_status, CAST(rf.customer_id AS UNSIGNED) AS rf_customer
FROM attachment a
LEFT JOIN certificate c ON c.id = a.certificate_id
LEFT JOIN document d ON d.id = a.document_id
LEFT JOIN repo_file rf ON rf.id = (SELECT MIN(r2.id) FROM repo_file r2 WHERE r2.attachment_id = a.id)
WHERE a.id > ? ORDER BY a.id LIMIT ?";

const REPO_FILES_SQL: &str = "
SELECT CAST(rf.id AS UNSIGNED) AS id, CAST(rf.repo_filepath AS BINARY) AS repo_filepath,
       CAST(rf.status AS BINARY) AS rf_status, CAST(rf.customer_id AS UNSIGNED) AS customer_id,
       CAST(rf.certificate_id AS UNSIGNED) AS certificate_id, CAST(rf.document_id AS UNSIGNED) AS document_id,
       CAST(rf.attachment_id AS UNSIGNED) AS attachment_id
FROM repo_file rf
WHERE rf.id > ?
  AND NOT (rf.attachment_id IS NOT NULL
           AND EXISTS (SELECT 1 FROM attachment a WHERE a.id = rf.attachment_id)
           AND rf.id = (SELECT MIN(r2.id) FROM repo_file r2 WHERE r2.attachment_id = rf.attachment_id))
ORDER BY rf.id LIMIT ?";

const LOGOS_SQL: &str = "
SELECT CAST(id AS UNSIGNED) AS id, CAST(logo AS BINARY) AS logo
FROM customer WHERE id > ? AND logo IS NOT NULL AND logo <> '' ORDER BY id LIMIT ?";

/// Reads one page of a phase and plans a message per file.
pub async fn read_page(
    pool: &MySqlPool,
    phase: Phase,
    after_id: u64,
    limit: u32,
    accounts: &HashMap<u64, String>,
    rules: &PathRules,
) -> Result<Page, LegacyError> {
    let sql = match phase {
        Phase::Attachments => ATTACHMENTS_SQL,
        Phase::RepoFiles => REPO_FILES_SQL,
        Phase::Logos => LOGOS_SQL,
    };
    let rows = sqlx::query(sql).bind(after_id).bind(limit).fetch_all(pool).await?;
    let mut messages = Vec::with_capacity(rows.len());
    let mut last_id = None;
    for row in &rows {
        let id: u64 = row.try_get("id")?;
        last_id = Some(id);
        let message = match phase {
            Phase::Attachments => plan_attachment(row, id, accounts, rules)?,
            Phase::RepoFiles => plan_repo_file(row, id, accounts, rules)?,
            Phase::Logos => plan_logo(row, id, accounts)?,
        };
        messages.push(message);
    }
    Ok(Page { messages, last_id, rows: rows.len() })
}

fn base_message(source: SourceRef, area: Area, customer_id: Option<u64>, accounts: &HashMap<u64, String>) -> FileMessage {
    FileMessage {
        v: MESSAGE_VERSION,
        source,
        area,
        legacy_path: String::new(),
        fallback_paths: Vec::new(),
        account_id: customer_id.and_then(|c| accounts.get(&c).cloned()),
        original_filename: String::new(),
        ids: LegacyIds { customer_id, ..Default::default() },
        legacy_status: None,
        problem: None,
        force: false,
    }
}

fn file_name_of(path: &str) -> String {
    path.rsplit('/').next().unwrap_or_default().to_string()
}

fn plan_attachment(row: &MySqlRow, id: u64, accounts: &HashMap<u64, String>, rules: &PathRules) -> Result<FileMessage, sqlx::Error> {
    let certificate_id = opt_u64(row, "certificate_id")?;
    let document_id = opt_u64(row, "document_id")?;
    let customer_id = opt_u64(row, "cert_customer")?.or(opt_u64(row, "doc_customer")?).or(opt_u64(row, "rf_customer")?);
    let area = if certificate_id.is_some() { Area::Certificates } else if document_id.is_some() { Area::Documents } else { Area::Filerepo };
    let mut m = base_message(SourceRef::Attachment(id), area, customer_id, accounts);
    m.ids.certificate_id = certificate_id;
    m.ids.document_id = document_id;
    m.ids.attachment_id = Some(id);
    m.ids.repo_file_id = opt_u64(row, "rf_id")?;
    m.legacy_status = opt_text(row, "rf_status")?.and_then(Result::ok);
    let mut problems = Vec::new();

    let name = match opt_text(row, "name")? {
        Some(Ok(n)) if !n.is_empty() => Some(n),
        Some(Err(lossy)) => {
            problems.push(format!("attachment.name is not valid UTF-8 ({lossy:?})"));
            None
        }
        _ => None,
    };
    let constructed = match (&name, certificate_id, document_id, customer_id) {
        (Some(n), Some(c), _, _) => Some(paths::constructed_certificate_path(c, n)),
        (Some(n), None, Some(d), Some(cust)) => Some(paths::constructed_document_path(cust, d, n)),
        (Some(_), None, Some(d), None) => {
            problems.push(format!("document {d} has no customer_id, so no path can be constructed"));
            None
        }
        (Some(_), None, None, _) => {
            problems.push("attachment has neither certificate_id nor document_id".to_string());
            None
        }
        (None, ..) => None,
    };
    let repo_path = match opt_text(row, "repo_filepath")? {
        Some(Ok(p)) if !p.is_empty() => Some(p),
        Some(Err(lossy)) => {
            problems.push(format!("repo_file.repo_filepath is not valid UTF-8 ({lossy:?})"));
            None
        }
        _ => None,
    };
    let constructed = match constructed {
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            problems.push(format!("attachment.name unusable: {e}"));
            None
        }
        None => None,
    };
    match (repo_path, constructed) {
        (Some(p), c) => {
            m.legacy_path = p;
            m.fallback_paths.extend(c.filter(|c| *c != m.legacy_path));
        }
        (None, Some(c)) => m.legacy_path = c,
        (None, None) => {
            if name.is_none() && problems.is_empty() {
                problems.push("attachment has no name and no repo_file path".to_string());
            }
        }
    }
    m.original_filename = name.unwrap_or_else(|| file_name_of(&m.legacy_path));
    if let Some(area) = rules.resolve(&m.legacy_path).ok().and_then(|r| rules.area_of(&r.candidates[0].relative)) {
        // A repo_file path under a specific area wins over the id-based guess.
        if m.ids.certificate_id.is_none() && m.ids.document_id.is_none() {
            m.area = area;
        }
    }
    if m.legacy_path.is_empty() || !problems.is_empty() {
        m.problem = Some(if problems.is_empty() { "no usable path".into() } else { problems.join("; ") });
    }
    Ok(m)
}

fn plan_repo_file(row: &MySqlRow, id: u64, accounts: &HashMap<u64, String>, rules: &PathRules) -> Result<FileMessage, sqlx::Error> {
    let customer_id = opt_u64(row, "customer_id")?;
    let mut m = base_message(SourceRef::RepoFile(id), Area::Filerepo, customer_id, accounts);
    m.ids.repo_file_id = Some(id);
    m.ids.certificate_id = opt_u64(row, "certificate_id")?;
    m.ids.document_id = opt_u64(row, "document_id")?;
    m.ids.attachment_id = opt_u64(row, "attachment_id")?;
    m.legacy_status = opt_text(row, "rf_status")?.and_then(Result::ok);
    match opt_text(row, "repo_filepath")? {
        Some(Ok(p)) if !p.is_empty() => {
            m.original_filename = file_name_of(&p);
            m.area = rules
                .resolve(&p)
                .ok()
                .and_then(|r| rules.area_of(&r.candidates[0].relative))
                .unwrap_or(if m.ids.certificate_id.is_some() {
                    Area::Certificates
                } else if m.ids.document_id.is_some() {
                    Area::Documents
                } else {
                    Area::Filerepo
                });
            m.legacy_path = p;
        }
        Some(Err(lossy)) => m.problem = Some(format!("repo_file.repo_filepath is not valid UTF-8 ({lossy:?})")),
        _ => m.problem = Some("repo_file has no repo_filepath and no attachment to construct one from".into()),
    }
    Ok(m)
}

fn plan_logo(row: &MySqlRow, id: u64, accounts: &HashMap<u64, String>) -> Result<FileMessage, sqlx::Error> {
    let mut m = base_message(SourceRef::Logo(id), Area::Logos, Some(id), accounts);
    match opt_text(row, "logo")? {
        Some(Ok(logo)) => match paths::logo_path(&logo) {
            Ok(p) => {
                m.original_filename = file_name_of(&p);
                m.legacy_path = p;
            }
            Err(e) => m.problem = Some(format!("customer.logo unusable: {e}")),
        },
        Some(Err(lossy)) => m.problem = Some(format!("customer.logo is not valid UTF-8 ({lossy:?})")),
        None => m.problem = Some("customer.logo is empty".into()),
    }
    Ok(m)
}

/// Connects using a Secrets Manager secret in the RDS format (`username`, `password`,
/// `host`, `port`, `dbname`): credentials never pass through environment variables or logs.
pub async fn connect_with_secret(
    secrets: &aws_sdk_secretsmanager::Client,
    secret_arn: &str,
    max_connections: u32,
) -> Result<MySqlPool, LegacyError> {
    let secret = crate::secrets::RdsSecret::fetch(secrets, secret_arn).await.map_err(|e| LegacyError::Credentials(e.0))?;
    let port = secret.port_or(3306);
    let options = sqlx::mysql::MySqlConnectOptions::new()
        .host(&secret.host)
        .port(port)
        .username(&secret.username)
        .password(&secret.password)
        .database(&secret.dbname)
        .ssl_mode(sqlx::mysql::MySqlSslMode::Required);
    Ok(MySqlPoolOptions::new().max_connections(max_connections).connect_with(options).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_a_caller_validates_is_declared() {
        let declared = expected_columns(LEGACY_DDL);
        for table in FILE_MOVE_TABLES.iter().chain(LOADER_TABLES.iter()) {
            assert!(declared.contains_key(*table), "{table} is not in legacy_mysql.sql");
        }
        assert_eq!(declared.len(), LOADER_TABLES.len(), "the loader reads every declared table");
    }

    #[test]
    fn ddl_columns_are_extracted() {
        let cols = expected_columns(LEGACY_DDL);
        assert_eq!(cols["repo_file"], ["id", "repo_filepath", "treatment", "status", "upload_src", "certificate_id", "document_id", "attachment_id", "customer_id"]);
        assert!(cols["attachment"].contains(&"create_time".to_string()));
        assert!(cols.contains_key("customer"));
    }
}
