//! The destination bucket over the S3 API, with checksums S3 verifies and conditional writes
//! that never overwrite a stored object.
//!
//! Bodies are sent with an unsigned payload (`x-amz-content-sha256: UNSIGNED-PAYLOAD`): SigV4
//! would otherwise hash every body a second time, only to sign it. Integrity does not rest on
//! that signature: each PUT and part carries `x-amz-checksum-sha256`, a signed header whose
//! value S3 checks against the bytes it received (refusing the request with BadDigest), and
//! the connection is TLS (the bucket policy denies anything else).

use super::{classify, service_code};
use crate::error::PortError;
use crate::ports::{ObjectStore, PutOutcome, RemoteObject, StoredObject, UploadedPart};
use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart, MetadataDirective};
use aws_sdk_s3::Client;

#[derive(Clone)]
pub struct S3Objects {
    client: Client,
    bucket: String,
}

impl S3Objects {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self { client, bucket: bucket.into() }
    }
}

/// 412: `If-None-Match: *` found an object already at the key.
fn already_exists<E, R>(err: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
    R: super::HttpStatus,
{
    service_code(err).is_some_and(|(code, status)| status == 412 || code == "PreconditionFailed")
}

/// What a CopySource header escapes in a key: everything but unreserved characters and `/`.
const COPY_SOURCE: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'_').remove(b'.').remove(b'~');

fn metadata_map(metadata: &[(String, String)]) -> std::collections::HashMap<String, String> {
    metadata.iter().cloned().collect()
}

impl S3Objects {
    /// `CopyObject` of `bucket/key` (that version, with `if_match`) to `to` in our bucket with
    /// `metadata`, asking S3 for the new object's full SHA-256; returns it (base64) when S3 does.
    async fn copy_with_sha256(
        &self,
        bucket: &str,
        key: &str,
        if_match: Option<&str>,
        to: &str,
        metadata: &[(String, String)],
        operation: &'static str,
    ) -> Result<Option<String>, PortError> {
        let source = format!("{bucket}/{}", percent_encoding::utf8_percent_encode(key, COPY_SOURCE));
        let out = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(to)
            .copy_source(source)
            .set_copy_source_if_match(if_match.map(str::to_string))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .metadata_directive(MetadataDirective::Replace)
            .set_metadata(Some(metadata_map(metadata)))
            .send()
            .await
            .map_err(|e| match service_code(&e) {
                Some((_, 412)) if if_match.is_some() => PortError::retryable(operation, format!("{key} changed since it was located")),
                _ => classify(operation, e),
            })?;
        Ok(out.copy_object_result.and_then(|r| r.checksum_sha256))
    }
}

#[async_trait]
impl ObjectStore for S3Objects {
    async fn put_object(&self, key: &str, body: Vec<u8>, sha256_b64: &str, metadata: &[(String, String)]) -> Result<PutOutcome, PortError> {
        let len = body.len() as i64;
        let result = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(len)
            .body(ByteStream::from(body))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(sha256_b64)
            .if_none_match("*")
            .set_metadata(Some(metadata_map(metadata)))
            .customize()
            .disable_payload_signing()
            .send()
            .await;
        match result {
            Ok(_) => Ok(PutOutcome::Created),
            Err(e) if already_exists(&e) => Ok(PutOutcome::AlreadyExists),
            Err(e) => Err(classify("s3 put_object", e)),
        }
    }

    async fn head_object(&self, key: &str) -> Result<Option<StoredObject>, PortError> {
        let result = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(StoredObject {
                size: out.content_length.unwrap_or(0).max(0) as u64,
                checksum_sha256: out.checksum_sha256.clone(),
                metadata_sha256: out.metadata.as_ref().and_then(|m| m.get("sha256").cloned()),
                metadata_source_key: out.metadata.as_ref().and_then(|m| m.get("source-key").cloned()),
            })),
            Err(e) if service_code(&e).is_some_and(|(code, status)| status == 404 || code == "NotFound") => Ok(None),
            Err(e) => Err(classify("s3 head_object", e)),
        }
    }

    async fn create_multipart(&self, key: &str, metadata: &[(String, String)]) -> Result<String, PortError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .set_metadata(Some(metadata_map(metadata)))
            .send()
            .await
            .map_err(|e| classify("s3 create_multipart_upload", e))?;
        out.upload_id.ok_or_else(|| PortError::retryable("s3 create_multipart_upload", "no upload id returned"))
    }

    async fn upload_part(&self, key: &str, upload_id: &str, part_number: i32, body: Vec<u8>, sha256_b64: &str) -> Result<UploadedPart, PortError> {
        let len = body.len() as i64;
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part_number)
            .content_length(len)
            .body(ByteStream::from(body))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(sha256_b64)
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| classify("s3 upload_part", e))?;
        Ok(UploadedPart {
            part_number,
            etag: out.e_tag.unwrap_or_default(),
            checksum_sha256: out.checksum_sha256.unwrap_or_else(|| sha256_b64.to_string()),
        })
    }

    async fn complete_multipart(&self, key: &str, upload_id: &str, parts: &[UploadedPart], only_if_absent: bool) -> Result<PutOutcome, PortError> {
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|p| {
                        CompletedPart::builder()
                            .part_number(p.part_number)
                            .e_tag(&p.etag)
                            .checksum_sha256(&p.checksum_sha256)
                            .build()
                    })
                    .collect(),
            ))
            .build();
        let result = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(completed)
            .set_if_none_match(only_if_absent.then(|| "*".to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(PutOutcome::Created),
            Err(e) if already_exists(&e) => Ok(PutOutcome::AlreadyExists),
            Err(e) => Err(classify("s3 complete_multipart_upload", e)),
        }
    }

    async fn copy_object(&self, from: &str, to: &str, metadata: &[(String, String)]) -> Result<Option<String>, PortError> {
        // Keys we copy from are built from safe characters (the staging prefix and a source
        // key); encoding the separators anyway keeps the header valid whatever the bucket.
        self.copy_with_sha256(&self.bucket, from, None, to, metadata, "s3 copy_object").await
    }

    async fn copy_in(&self, from: &RemoteObject, to: &str, metadata: &[(String, String)]) -> Result<Option<String>, PortError> {
        // Staging keys come from legacy file names (spaces, `#`, `+`, non-ASCII): encoded.
        self.copy_with_sha256(&from.bucket, &from.key, Some(&from.etag), to, metadata, "s3 copy_object (from staging source)").await
    }

    async fn read_sha256(&self, key: &str) -> Result<(crate::hashing::Sha256Digest, u64), PortError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify("s3 get_object", e))?;
        let mut body = out.body;
        let mut hasher = crate::hashing::Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = body.try_next().await.map_err(|e| PortError::retryable("s3 get_object", e))? {
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok((hasher.finish(), size))
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), PortError> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .map_err(|e| classify("s3 abort_multipart_upload", e))?;
        Ok(())
    }

    async fn delete_object(&self, key: &str) -> Result<(), PortError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify("s3 delete_object", e))?;
        Ok(())
    }
}
