//! Where the loader's reports go: `REPORT_DIR`, a local directory or an `s3://bucket/prefix`.

use crate::error::PortError;

#[derive(Clone, Debug)]
pub enum ReportSink {
    Dir(std::path::PathBuf),
    S3 { client: aws_sdk_s3::Client, bucket: String, prefix: String },
}

impl ReportSink {
    pub fn new(report_dir: &str, s3: &aws_sdk_s3::Client) -> Self {
        match report_dir.strip_prefix("s3://") {
            Some(rest) => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                ReportSink::S3 { client: s3.clone(), bucket: bucket.to_string(), prefix: prefix.trim_end_matches('/').to_string() }
            }
            None => ReportSink::Dir(report_dir.into()),
        }
    }

    /// Reads a file from the same place (e.g. `file_manifest.csv`, exported there by the file
    /// move); returns its bytes and where it was.
    pub async fn read(&self, name: &str) -> Result<(Vec<u8>, String), PortError> {
        match self {
            ReportSink::Dir(dir) => {
                let path = dir.join(name);
                let bytes = tokio::fs::read(&path).await.map_err(|e| PortError::permanent("read report", format!("{}: {e}", path.display())))?;
                Ok((bytes, path.display().to_string()))
            }
            ReportSink::S3 { client, bucket, prefix } => {
                let key = if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") };
                let out = client.get_object().bucket(bucket).key(&key).send().await.map_err(|e| crate::adapters::classify("read report from S3", e))?;
                let bytes = out.body.collect().await.map_err(|e| PortError::retryable("read report from S3", e))?.into_bytes();
                Ok((bytes.to_vec(), format!("s3://{bucket}/{key}")))
            }
        }
    }

    /// Writes one report file; returns where it went.
    pub async fn write(&self, name: &str, bytes: Vec<u8>) -> Result<String, PortError> {
        match self {
            ReportSink::Dir(dir) => {
                tokio::fs::create_dir_all(dir).await.map_err(|e| PortError::permanent("write report", format!("{}: {e}", dir.display())))?;
                let path = dir.join(name);
                tokio::fs::write(&path, bytes).await.map_err(|e| PortError::permanent("write report", format!("{}: {e}", path.display())))?;
                Ok(path.display().to_string())
            }
            ReportSink::S3 { client, bucket, prefix } => {
                let key = if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") };
                client
                    .put_object()
                    .bucket(bucket)
                    .key(&key)
                    .body(aws_sdk_s3::primitives::ByteStream::from(bytes))
                    .send()
                    .await
                    .map_err(|e| crate::adapters::classify("write report to S3", e))?;
                Ok(format!("s3://{bucket}/{key}"))
            }
        }
    }
}
