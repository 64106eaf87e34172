//! The Area 2 account mapping `id_mapping_accounts.csv` (`old_customer_id,new_account_id`),
//! read from a directory or an `s3://bucket/prefix`.

use crate::error::ConfigError;
use std::collections::HashMap;

pub const ACCOUNTS_FILE: &str = "id_mapping_accounts.csv";

/// Reads a mapping file from `dir` (a local directory or `s3://bucket/prefix`).
pub async fn read_mapping_file(s3: &aws_sdk_s3::Client, dir: &str, file: &str) -> Result<String, ConfigError> {
    if let Some(rest) = dir.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let key = if prefix.is_empty() { file.to_string() } else { format!("{}/{file}", prefix.trim_end_matches('/')) };
        let out = s3
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| ConfigError(format!("reading s3://{bucket}/{key}: {}", aws_smithy_types::error::display::DisplayErrorContext(&e))))?;
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| ConfigError(format!("reading s3://{bucket}/{key}: {e}")))?
            .into_bytes();
        String::from_utf8(bytes.to_vec()).map_err(|_| ConfigError(format!("s3://{bucket}/{key} is not UTF-8")))
    } else {
        let path = std::path::Path::new(dir).join(file);
        tokio::fs::read_to_string(&path).await.map_err(|e| ConfigError(format!("reading {}: {e}", path.display())))
    }
}

/// Parses `old_customer_id,new_account_id`. Strict: a mapping that is wrong would put a
/// tenant's files under another tenant, so any bad line stops the run and is named.
pub fn parse_accounts(text: &str, origin: &str) -> Result<HashMap<u64, String>, ConfigError> {
    parse_keyed(text, origin, "old_customer_id", |r, col| {
        let new = r.get(col("new_account_id").map_err(|e| e.0)?).unwrap_or_default();
        if new.is_empty() {
            return Err("empty new_account_id".to_string());
        }
        Ok(new.to_string())
    })
}

pub async fn load_accounts(s3: &aws_sdk_s3::Client, dir: &str) -> Result<HashMap<u64, String>, ConfigError> {
    let text = read_mapping_file(s3, dir, ACCOUNTS_FILE).await?;
    parse_accounts(&text, &format!("{dir}/{ACCOUNTS_FILE}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_bad_lines() {
        let m = parse_accounts("old_customer_id,new_account_id\n1,5001\n2, 5002 \n", "t").unwrap();
        assert_eq!(m[&2], "5002");
        let e = parse_accounts("old_customer_id,new_account_id\nx,1\n", "t").unwrap_err();
        assert!(e.0.contains("line 2") && e.0.contains("\"x\""), "{e}");
        let e = parse_accounts("old_customer_id,new_account_id\n1,a\n1,b\n", "t").unwrap_err();
        assert!(e.0.contains("mapped twice"), "{e}");
        assert!(parse_accounts("customer,account\n", "t").unwrap_err().0.contains("missing column"));
    }
}

pub const RECORDS_FILE: &str = "id_mapping_records.csv";
pub const USERS_FILE: &str = "id_mapping_users.csv";
pub const COI_PROFILES_FILE: &str = "id_mapping_coi_profiles.csv";

/// A vendor's DTX 2.0 record and assignment (Area 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMapping {
    pub record_id: i64,
    pub assignment_id: i64,
}

/// Parses a mapping CSV whose key column is a legacy integer id, applying `value` to each row.
/// Strict like the accounts mapping: a bad or conflicting line is an error naming it.
fn parse_keyed<T: PartialEq + std::fmt::Debug>(
    text: &str,
    origin: &str,
    key_column: &str,
    value: impl Fn(&csv::StringRecord, &dyn Fn(&str) -> Result<usize, ConfigError>) -> Result<T, String>,
) -> Result<HashMap<u64, T>, ConfigError> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| ConfigError(format!("{origin}: {e}")))?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| ConfigError(format!("{origin}: missing column {name:?} (header is {:?})", headers.iter().collect::<Vec<_>>())))
    };
    let key_col = col(key_column)?;
    let mut map = HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| ConfigError(format!("{origin} line {line}: {e}")))?;
        let key = record.get(key_col).unwrap_or_default();
        let key: u64 = key.parse().map_err(|_| ConfigError(format!("{origin} line {line}: {key_column} {key:?} is not a number")))?;
        let v = value(&record, &col).map_err(|e| ConfigError(format!("{origin} line {line}: {e}")))?;
        if let Some(previous) = map.get(&key) {
            if *previous != v {
                return Err(ConfigError(format!("{origin} line {line}: {key_column} {key} mapped twice ({previous:?} and {v:?})")));
            }
        }
        map.insert(key, v);
    }
    Ok(map)
}

fn id_at(record: &csv::StringRecord, index: usize, name: &str) -> Result<i64, String> {
    let raw = record.get(index).unwrap_or_default();
    raw.parse().map_err(|_| format!("{name} {raw:?} is not a number"))
}

/// `id_mapping_records.csv`: `old_vendor_id,new_record_id,new_assignment_id`.
pub fn parse_records(text: &str, origin: &str) -> Result<HashMap<u64, RecordMapping>, ConfigError> {
    parse_keyed(text, origin, "old_vendor_id", |r, col| {
        let rc = col("new_record_id").map_err(|e| e.0)?;
        let ac = col("new_assignment_id").map_err(|e| e.0)?;
        Ok(RecordMapping { record_id: id_at(r, rc, "new_record_id")?, assignment_id: id_at(r, ac, "new_assignment_id")? })
    })
}

/// `id_mapping_users.csv`: `old_user_id,new_user_id`.
pub fn parse_users(text: &str, origin: &str) -> Result<HashMap<u64, i64>, ConfigError> {
    parse_keyed(text, origin, "old_user_id", |r, col| id_at(r, col("new_user_id").map_err(|e| e.0)?, "new_user_id"))
}

/// `id_mapping_coi_profiles.csv` (Area 6): `old_requirements_id,new_coi_risk_profile_id`.
pub fn parse_coi_profiles(text: &str, origin: &str) -> Result<HashMap<u64, i64>, ConfigError> {
    parse_keyed(text, origin, "old_requirements_id", |r, col| {
        id_at(r, col("new_coi_risk_profile_id").map_err(|e| e.0)?, "new_coi_risk_profile_id")
    })
}

/// Whether a mapping file exists (the COI profile mapping arrives only after Area 6 ran).
pub async fn mapping_exists(s3: &aws_sdk_s3::Client, dir: &str, file: &str) -> Result<bool, ConfigError> {
    if let Some(rest) = dir.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let key = if prefix.is_empty() { file.to_string() } else { format!("{}/{file}", prefix.trim_end_matches('/')) };
        match s3.head_object().bucket(bucket).key(&key).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_not_found()) => Ok(false),
            Err(e) => Err(ConfigError(format!("checking s3://{bucket}/{key}: {}", aws_smithy_types::error::display::DisplayErrorContext(&e)))),
        }
    } else {
        Ok(std::path::Path::new(dir).join(file).is_file())
    }
}

#[cfg(test)]
mod area_mapping_tests {
    use super::*;

    #[test]
    fn records_users_and_profiles_parse_strictly() {
        let r = parse_records("old_vendor_id,new_record_id,new_assignment_id\n7,70,700\n", "r").unwrap();
        assert_eq!(r[&7], RecordMapping { record_id: 70, assignment_id: 700 });
        let e = parse_records("old_vendor_id,new_record_id,new_assignment_id\n7,70,x\n", "r").unwrap_err();
        assert!(e.0.contains("line 2") && e.0.contains("new_assignment_id"), "{e}");
        let e = parse_records("old_vendor_id,new_record_id\n7,70\n", "r").unwrap_err();
        assert!(e.0.contains("new_assignment_id"), "{e}");
        assert_eq!(parse_users("old_user_id,new_user_id\n1,11\n1,11\n", "u").unwrap()[&1], 11);
        assert!(parse_users("old_user_id,new_user_id\n1,11\n1,12\n", "u").unwrap_err().0.contains("mapped twice"));
        assert_eq!(parse_coi_profiles("old_requirements_id,new_coi_risk_profile_id\n3,33\n", "c").unwrap()[&3], 33);
    }
}
