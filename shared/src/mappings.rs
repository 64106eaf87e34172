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
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| ConfigError(format!("{origin}: {e}")))?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| ConfigError(format!("{origin}: missing column {name:?} (header is {:?})", headers.iter().collect::<Vec<_>>())))
    };
    let (old_col, new_col) = (col("old_customer_id")?, col("new_account_id")?);
    let mut map = HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| ConfigError(format!("{origin} line {line}: {e}")))?;
        let old = record.get(old_col).unwrap_or_default();
        let new = record.get(new_col).unwrap_or_default();
        let old: u64 = old.parse().map_err(|_| ConfigError(format!("{origin} line {line}: old_customer_id {old:?} is not a number")))?;
        if new.is_empty() {
            return Err(ConfigError(format!("{origin} line {line}: empty new_account_id for customer {old}")));
        }
        if let Some(previous) = map.insert(old, new.to_string()) {
            if previous != new {
                return Err(ConfigError(format!("{origin} line {line}: customer {old} mapped twice ({previous} and {new})")));
            }
        }
    }
    Ok(map)
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
