//! A forecast of the production file move: wall time, Lambda GB-seconds, AWS requests and
//! the bill, from what the inventory found (or a synthetic workload), the deployment's
//! parameters, the worker's measured throughput and AWS's documented limits and prices.
//!
//! Pure arithmetic: no AWS call, no IO. The model, in order:
//!
//! 1. **One file.** Each size class of the workload is modelled at its mean size, on the path
//!    the worker takes for it (`worker.rs`): a single PUT; above `MultipartThresholdBytes`, a
//!    multipart upload to a staging key that S3 then copies; beyond S3's 5 GiB copy limit, a
//!    hashing pass and a multipart upload; a duplicate (its content is stored already: hashed,
//!    then only referenced); or a dead letter (missing or rejected). A path gives the file's
//!    requests by service, its CPU seconds, the bytes it reads from EFS (and what EFS meters)
//!    and its latency: every request's round trip plus the transfers at the execution
//!    environment's bandwidth plus the hashing at one thread's share of a vCPU.
//! 2. **One invocation.** A batch of `BatchSize` records, `RecordConcurrency` at once, ends
//!    with its slowest record. Its duration is the largest of: the expected slowest latency of
//!    the batch (drawn from the workload), the records' latencies spread over the concurrent
//!    slots, the batch's CPU over the vCPUs (`WorkerMemorySize / 1,769 MB`), and its bytes in
//!    and out over the environment's bandwidth. That duration is what Lambda bills; one worker
//!    moves `BatchSize / (duration + the event source's hand-off)` files per second.
//! 3. **The run.** The aggregate rate is the smallest of: the workers' rate at the effective
//!    concurrency, S3's request rates per prefix, EFS Elastic's read throughput, and the write
//!    throughput of the two new on-demand DynamoDB tables. The event source starts at 5
//!    concurrent batches and adds 300 a minute, so the run ramps up until the workers reach
//!    that rate. The wall time is that, or the largest file at one worker's rate if longer.
//!    While messages wait, the event source goes on adding workers up to the concurrency;
//!    those the binding limit cannot feed wait on it, and Lambda bills their time too.
//! 4. **The bill** prices every request, GB-second and metered EFS byte, and compares it with
//!    the floor: an ideal mover that reads each byte once, hashes it at OpenSSL's speed, makes
//!    one PUT per distinct content and one DynamoDB write per file.
//!
//! The measured figures live in [`MEASURED`], the AWS facts in [`ServiceLimits::DOCUMENTED`]
//! and [`Prices::US_EAST_1`]; everything else is an assumption named where it is defined and
//! listed in the forecast's output.

use crate::inventory::{DryRunReport, SIZE_BUCKETS};
use serde::{Deserialize, Serialize};

const KIB: f64 = 1024.0;
const MIB: f64 = 1024.0 * KIB;
const GIB: f64 = 1024.0 * MIB;

/// Why no forecast can be made from the given inputs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ForecastError(pub String);

fn invalid(message: impl Into<String>) -> ForecastError {
    ForecastError(message.into())
}

// ---------------------------------------------------------------------------------------
// Workload
// ---------------------------------------------------------------------------------------

/// Share of the found files whose content another file already stored. Nobody knows it before
/// the move has hashed the bytes, so it is a flag (`--duplicate-fraction`) with this default.
pub const DEFAULT_DUPLICATE_FRACTION: f64 = 0.2;

/// File sizes of a certificate/document store, as (size in bytes, share of the files): mostly
/// PDFs of 50 KB-5 MB, scans and photos of tens of MB, and a thin tail of archives and videos
/// up to a few hundred MB. Not measured anywhere: a stand-in until `inventory --dry-run` has
/// counted the real files. Its mean is ~2.04 MB; [`Workload::synthetic`] scales every size so
/// the mean matches the given total. In a store whose typical file is a sub-MB PDF, a mean of
/// a few MB means the tail carries most of the bytes: here files above 64 MiB (after scaling
/// to 2.2 MB a file) are 0.3% of the files and ~22% of the bytes.
pub const DOCUMENT_STORE_SIZES: [(u64, f64); 10] = [
    (5_000, 0.01),
    (30_000, 0.04),
    (100_000, 0.20),
    (300_000, 0.30),
    (1_000_000, 0.25),
    (3_000_000, 0.14),
    (10_000_000, 0.045),
    (30_000_000, 0.012),
    (100_000_000, 0.0025),
    (400_000_000, 0.0005),
];

/// Files of (about) one size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeClass {
    /// The dry run's size bucket (`< 1 MiB`) or, for a synthetic class, its size (`~1.08 MB`).
    pub label: String,
    /// No file of the class is larger than this.
    pub max_bytes: u64,
    pub files: u64,
    pub bytes: u64,
}

impl SizeClass {
    fn mean_bytes(&self) -> f64 {
        if self.files == 0 {
            0.0
        } else {
            self.bytes as f64 / self.files as f64
        }
    }
}

/// What the move will meet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    pub files_found: u64,
    pub bytes_found: u64,
    /// The found files by size. Every class's files are modelled at the class's mean size.
    pub histogram: Vec<SizeClass>,
    /// An upper bound on the largest file (exact for a synthetic workload).
    pub largest_file_bytes: u64,
    /// Files the worker will dead-letter (missing on EFS, or rejected): no bytes, but each
    /// still costs a message, a share of an invocation and a few requests.
    pub missing_or_rejected: u64,
    /// Share (0 to < 1) of the found files whose content is stored by another file first.
    pub duplicate_fraction: f64,
    /// Distinct account prefixes (`org_<id>/`): S3's request rates apply per prefix.
    pub accounts: u64,
    /// Where the figures come from, and what was estimated.
    pub basis: String,
}

impl Workload {
    /// `files` files of `bytes` in all, sized like [`DOCUMENT_STORE_SIZES`] scaled to that mean.
    pub fn synthetic(files: u64, bytes: u64) -> Result<Self, ForecastError> {
        if files == 0 {
            return Err(invalid("a workload needs at least one file"));
        }
        let base_mean: f64 = DOCUMENT_STORE_SIZES.iter().map(|(size, share)| *size as f64 * share).sum();
        let scale = bytes as f64 / files as f64 / base_mean;

        // Files per class by largest remainder, so the counts add up to exactly `files`.
        let exact: Vec<f64> = DOCUMENT_STORE_SIZES.iter().map(|(_, share)| share * files as f64).collect();
        let mut counts: Vec<u64> = exact.iter().map(|x| x.floor() as u64).collect();
        let mut by_remainder: Vec<usize> = (0..exact.len()).collect();
        by_remainder.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
        let short = files - counts.iter().sum::<u64>();
        for &i in by_remainder.iter().take(short as usize) {
            counts[i] += 1;
        }

        // Bytes per class in proportion to count x scaled size; the last class with files takes
        // the rounding remainder, so the total is exactly `bytes`.
        let weights: Vec<f64> =
            DOCUMENT_STORE_SIZES.iter().zip(&counts).map(|((size, _), n)| *n as f64 * *size as f64 * scale).collect();
        let weight_total: f64 = weights.iter().sum();
        let last_with_files = counts.iter().rposition(|n| *n > 0).expect("files >= 1, so some class has files");
        let mut histogram = Vec::new();
        let mut assigned = 0u64;
        for (i, ((size, _), files_in_class)) in DOCUMENT_STORE_SIZES.iter().zip(&counts).enumerate() {
            if *files_in_class == 0 {
                continue;
            }
            let class_bytes = if i == last_with_files {
                bytes - assigned
            } else if weight_total > 0.0 {
                (bytes as f64 * weights[i] / weight_total).floor() as u64
            } else {
                0
            };
            assigned += class_bytes;
            histogram.push(SizeClass {
                label: format!("~{}", decimal_bytes(*size as f64 * scale)),
                max_bytes: class_bytes.div_ceil(*files_in_class),
                files: *files_in_class,
                bytes: class_bytes,
            });
        }
        let largest_file_bytes = histogram.iter().map(|c| c.max_bytes).max().unwrap_or(0);
        Ok(Self {
            files_found: files,
            bytes_found: bytes,
            histogram,
            largest_file_bytes,
            missing_or_rejected: 0,
            duplicate_fraction: DEFAULT_DUPLICATE_FRACTION,
            accounts: 1,
            basis: "synthetic document-store sizes (forecast::DOCUMENT_STORE_SIZES)".into(),
        })
    }

    /// What `inventory --dry-run` found. A report written before `size_histogram_bytes`
    /// existed gets its bytes per bucket estimated (each bucket's geometric middle, scaled to
    /// the report's total), and says so in `basis`.
    pub fn from_dry_run(report: &DryRunReport) -> Result<Self, ForecastError> {
        let total = &report.total;
        if total.found == 0 && total.missing + total.rejected == 0 {
            return Err(invalid("the dry-run report found no file to move"));
        }
        if total.found == 0 && total.bytes > 0 {
            return Err(invalid(format!("the dry-run report found {} bytes but no file", total.bytes)));
        }
        for label in report.size_histogram.keys().chain(report.size_histogram_bytes.keys()) {
            if !SIZE_BUCKETS.iter().any(|(_, known)| known == label) {
                return Err(invalid(format!("the dry-run report has an unknown size bucket {label:?}")));
            }
        }
        let estimated = report.size_histogram_bytes.is_empty() && total.bytes > 0;
        let mut histogram = Vec::new();
        // Each class's smallest possible file size (for the largest-file bound) and estimated
        // bytes (for a report without bytes per bucket).
        let mut lower_bounds = Vec::new();
        let mut estimates = Vec::new();
        for (i, (limit, label)) in SIZE_BUCKETS.iter().enumerate() {
            let files = report.size_histogram.get(*label).copied().unwrap_or(0);
            if files == 0 {
                continue;
            }
            // Bucket 0 holds the empty files; bucket i > 0 holds [previous limit, limit).
            let lower = match i {
                0 => 0,
                1 => 1,
                _ => SIZE_BUCKETS[i - 1].0,
            };
            let max_bytes = match i {
                0 => 0,
                _ if *limit == u64::MAX => u64::MAX,
                _ => limit - 1,
            };
            let typical = match i {
                0 => 0.0,
                _ if *limit == u64::MAX => 2.0 * lower as f64,
                _ => (lower as f64 * *limit as f64).sqrt(),
            };
            estimates.push(typical * files as f64);
            lower_bounds.push(lower);
            histogram.push(SizeClass {
                label: (*label).to_string(),
                max_bytes,
                files,
                bytes: report.size_histogram_bytes.get(*label).copied().unwrap_or(0),
            });
        }
        let counted: u64 = histogram.iter().map(|c| c.files).sum();
        if counted != total.found {
            return Err(invalid(format!(
                "the dry-run report's size histogram counts {counted} files but the report found {}",
                total.found
            )));
        }
        if estimated {
            let estimate_total: f64 = estimates.iter().sum();
            let mut assigned = 0u64;
            let last = histogram.len() - 1;
            for (i, class) in histogram.iter_mut().enumerate() {
                class.bytes = if i == last {
                    total.bytes - assigned
                } else {
                    (total.bytes as f64 * estimates[i] / estimate_total).floor() as u64
                };
                assigned += class.bytes;
            }
        } else {
            let summed: u64 = histogram.iter().map(|c| c.bytes).sum();
            if summed != total.bytes {
                return Err(invalid(format!(
                    "the dry-run report's bytes per size bucket add up to {summed} but it found {} bytes",
                    total.bytes
                )));
            }
        }
        // The largest file is at most the top bucket's limit, and at most what is left of the
        // bucket's bytes when every other file in it is as small as the bucket allows.
        let largest_file_bytes = histogram
            .iter()
            .zip(&lower_bounds)
            .next_back()
            .map(|(top, lower)| {
                let rest_at_least = (top.files - 1).saturating_mul(*lower);
                top.max_bytes.min(top.bytes.saturating_sub(rest_at_least)).max(top.bytes.div_ceil(top.files))
            })
            .unwrap_or(0);
        let mut basis = "inventory dry-run report".to_string();
        if estimated {
            basis.push_str(" (bytes per size bucket estimated: the report predates size_histogram_bytes)");
        }
        Ok(Self {
            files_found: total.found,
            bytes_found: total.bytes,
            histogram,
            largest_file_bytes,
            missing_or_rejected: total.missing + total.rejected,
            duplicate_fraction: DEFAULT_DUPLICATE_FRACTION,
            accounts: 1,
            basis,
        })
    }

    fn messages(&self) -> u64 {
        self.files_found + self.missing_or_rejected
    }
}

// ---------------------------------------------------------------------------------------
// Deployment, worker profile, AWS facts
// ---------------------------------------------------------------------------------------

/// The template parameters that shape the move (`template.yaml`); `Default` is the
/// template's defaults (a test checks them against the template).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// `MaximumConcurrency`: worker invocations the event source runs at once.
    pub concurrency: u32,
    /// `WorkerMemorySize` in MB (CPU is proportional: one vCPU at 1,769 MB).
    pub memory_mb: u32,
    /// `BatchSize`: messages per invocation.
    pub batch_size: u32,
    /// `RecordConcurrency`: records of a batch processed at once.
    pub record_concurrency: u32,
    /// `MultipartThresholdBytes`: larger files go multipart.
    pub multipart_threshold: u64,
    /// `PartSizeBytes` (grown per file to stay within 10,000 parts).
    pub part_size: u64,
    /// `PartConcurrency`: parts of one file in flight.
    pub part_concurrency: u32,
    /// `WorkerTimeout` in seconds: no batch may take longer.
    pub timeout_s: u32,
    /// `LeaseSeconds`: a multipart upload renews its claim every third of it.
    pub lease_s: u32,
}

impl Default for Deployment {
    fn default() -> Self {
        Self {
            concurrency: 50,
            memory_mb: 1024,
            batch_size: 10,
            record_concurrency: 10,
            multipart_threshold: 64 * 1024 * 1024,
            part_size: 16 * 1024 * 1024,
            part_concurrency: 4,
            timeout_s: 300,
            lease_s: 120,
        }
    }
}

const S3_MIN_PART: u64 = 5 * 1024 * 1024;
const S3_MAX_PARTS: u64 = 10_000;

impl Deployment {
    /// The part size the worker uses for a file (`WorkerSettings::part_size_for`; a test
    /// keeps the two equal).
    pub fn part_size_for(&self, size: u64) -> u64 {
        self.part_size.max(size.div_ceil(S3_MAX_PARTS)).max(S3_MIN_PART)
    }
}

/// Requests of one file's path through the worker, by service and rate class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PathRequests {
    /// PUT-class requests under the account prefixes (PutObject, CopyObject, a two-pass
    /// multipart upload): S3's 3,500/s per prefix.
    pub s3_put_class: f64,
    /// HEAD (read-backs of what S3 did not check on the write): 5,500/s per prefix.
    pub s3_get_class: f64,
    /// PUT-class requests under the one staging prefix (CreateMultipartUpload, UploadPart,
    /// CompleteMultipartUpload of a staged file).
    pub s3_staging_put_class: f64,
    /// DeleteObject of staging copies: free, but in the staging prefix's PUT-class rate.
    pub s3_deletes: f64,
    /// Writes to the manifest table (begin, record).
    pub manifest_writes: f64,
    /// Writes to the dedup table (claim, complete, lease renewals).
    pub dedup_writes: f64,
    /// DynamoDB reads (the inventory's BatchGetItem of manifest statuses).
    pub dynamodb_reads: f64,
    /// SQS requests (the DLQ forward; the forecast adds the per-message queue traffic).
    pub sqs: f64,
}

impl PathRequests {
    pub fn s3(&self) -> f64 {
        self.s3_put_class + self.s3_get_class + self.s3_staging_put_class + self.s3_deletes
    }

    pub fn dynamodb(&self) -> f64 {
        self.manifest_writes + self.dedup_writes + self.dynamodb_reads
    }

    pub fn total(&self) -> f64 {
        self.s3() + self.dynamodb() + self.sqs
    }

    fn plus(self, o: PathRequests) -> PathRequests {
        PathRequests {
            s3_put_class: self.s3_put_class + o.s3_put_class,
            s3_get_class: self.s3_get_class + o.s3_get_class,
            s3_staging_put_class: self.s3_staging_put_class + o.s3_staging_put_class,
            s3_deletes: self.s3_deletes + o.s3_deletes,
            manifest_writes: self.manifest_writes + o.manifest_writes,
            dedup_writes: self.dedup_writes + o.dedup_writes,
            dynamodb_reads: self.dynamodb_reads + o.dynamodb_reads,
            sqs: self.sqs + o.sqs,
        }
    }

    fn times(self, n: f64) -> PathRequests {
        PathRequests {
            s3_put_class: self.s3_put_class * n,
            s3_get_class: self.s3_get_class * n,
            s3_staging_put_class: self.s3_staging_put_class * n,
            s3_deletes: self.s3_deletes * n,
            manifest_writes: self.manifest_writes * n,
            dedup_writes: self.dedup_writes * n,
            dynamodb_reads: self.dynamodb_reads * n,
            sqs: self.sqs * n,
        }
    }
}

/// The worker's requests per path (`worker.rs`: `process_message`, `move_file`). Multipart
/// parts and lease renewals depend on the file's size; the forecast adds them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProtocolRequests {
    /// Up to the multipart threshold: manifest begin, dedup claim, PutObject with our SHA-256
    /// (S3 checks it, so a created object is not read back), dedup complete, manifest record.
    pub single_put: PathRequests,
    /// Above the threshold, up to S3's copy limit: manifest begin, a multipart upload to the
    /// staging key (create, parts, complete) while hashing, dedup claim, CopyObject (S3
    /// returns the copy's SHA-256: not read back), dedup complete, DeleteObject of the staging
    /// copy, manifest record.
    pub staged_before_parts: PathRequests,
    /// Beyond the copy limit: manifest begin, a hashing pass, dedup claim, a multipart upload
    /// (create, parts, complete; lease renewals), HEAD verify, dedup complete, manifest record.
    pub two_pass_before_parts: PathRequests,
    /// Equal content stored already (a file held in memory, or hashed in a pass): manifest
    /// begin, dedup claim (refused; a failed conditional write still consumes a write unit),
    /// HEAD verify of the stored object, manifest record.
    pub duplicate: PathRequests,
    /// Equal content stored already, a file of staged size: it is uploaded to the staging key
    /// before the claim can tell, so: begin, staging upload, claim (refused), HEAD verify,
    /// DeleteObject of the staging copy, record.
    pub duplicate_staged_before_parts: PathRequests,
    /// Missing or rejected: manifest begin, SendMessage to the DLQ, manifest record.
    pub dead_letter: PathRequests,
}

/// Round trips the worker waits for (assumptions: typical in-region figures, not measured).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latencies {
    /// A DynamoDB UpdateItem.
    pub dynamodb_ms: f64,
    /// An S3 PUT-class request or DELETE, before and after its body (transfers are added).
    pub s3_request_ms: f64,
    /// An S3 HEAD.
    pub s3_head_ms: f64,
    /// An SQS SendMessage.
    pub sqs_ms: f64,
    /// One NFS metadata operation on EFS (lookup, getattr, open).
    pub efs_metadata_ms: f64,
    /// Between two batches of one worker: the event source's receive and invoke (not billed).
    pub invoke_gap_ms: f64,
}

/// What the benchmark measured and how the worker behaves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WorkerProfile {
    /// Client CPU seconds per GiB read and hashed (each byte is read once on every path but
    /// the two-pass one, so this is per GiB moved; it includes the read, SHA-256, TLS and the
    /// SDK).
    pub cpu_s_per_gib: f64,
    /// Client CPU milliseconds per file, whatever its size (requests signed, sent, parsed).
    pub cpu_ms_per_file: f64,
    /// Times a single-PUT file's bytes are read from EFS (read once, kept for the upload).
    pub efs_reads_per_byte_single_put: f64,
    /// Times a multipart file's bytes are read from EFS: 1.0 since the worker uploads to a
    /// staging key while hashing and lets S3 copy (2.0 before: a hashing pass, then the
    /// upload). Every pass is hashed, so CPU per byte scales with it.
    pub efs_reads_per_byte_multipart: f64,
    /// Beyond S3's single-request copy limit the worker hashes in one pass, uploads in a second.
    pub efs_reads_per_byte_beyond_copy_limit: f64,
    /// `WorkerSettings::server_side_copy_limit`: up to this size a large file is staged and copied.
    pub copy_limit_bytes: u64,
    /// S3's server-side copy rate for one CopyObject (an assumption; S3 documents none).
    pub s3_copy_bytes_per_s: f64,
    /// NFS metadata operations to find and open a file (lookup, getattr, open, fstat):
    /// an assumption; EFS meters each as at least 4 KiB read.
    pub efs_metadata_ops_per_file: f64,
    /// Write units of one manifest write (items are ~0.8 KB: one unit up to 1 KB).
    pub manifest_write_units_per_write: f64,
    pub requests: ProtocolRequests,
    pub latency: Latencies,
    /// Network throughput of one execution environment, each way (EFS reads in, S3 uploads
    /// out). An assumption: Lambda documents no figure.
    pub environment_bandwidth_bytes_per_s: f64,
}

const NO_REQUESTS: PathRequests = PathRequests {
    s3_put_class: 0.0,
    s3_get_class: 0.0,
    s3_staging_put_class: 0.0,
    s3_deletes: 0.0,
    manifest_writes: 0.0,
    dedup_writes: 0.0,
    dynamodb_reads: 0.0,
    sqs: 0.0,
};

/// The worker as measured by `bench/move.sh` (`dtx-bench move`: the worker handler driven
/// with SQS batches over a generated tree of 2,000 files / 0.76 GiB, 20% duplicates, storing
/// into s3s-fs; release build, 2026-12-02, a quiet machine), and as `worker.rs` behaves. Two
/// runs split the client CPU: with dedup and manifest in memory it spent 1.45 s (1.91 s/GiB,
/// all of it counted per byte here, which overstates small files); with them on DynamoDB (moto
/// served with keep-alive) 3.78 s, the 2.33 s more over 2,000 files counted per file (1.17 ms:
/// signing, sending and parsing about four DynamoDB requests). The latencies, the bandwidth
/// and the copy rate are assumptions.
pub const MEASURED: WorkerProfile = WorkerProfile {
    cpu_s_per_gib: 1.91,
    cpu_ms_per_file: 1.17,
    efs_reads_per_byte_single_put: 1.0,
    efs_reads_per_byte_multipart: 1.0,
    efs_reads_per_byte_beyond_copy_limit: 2.0,
    copy_limit_bytes: 5 * 1024 * 1024 * 1024,
    s3_copy_bytes_per_s: 100e6,
    efs_metadata_ops_per_file: 4.0,
    manifest_write_units_per_write: 1.0,
    requests: ProtocolRequests {
        single_put: PathRequests { s3_put_class: 1.0, manifest_writes: 2.0, dedup_writes: 2.0, ..NO_REQUESTS },
        staged_before_parts: PathRequests {
            s3_put_class: 1.0,
            s3_staging_put_class: 2.0,
            s3_deletes: 1.0,
            manifest_writes: 2.0,
            dedup_writes: 2.0,
            ..NO_REQUESTS
        },
        two_pass_before_parts: PathRequests {
            s3_put_class: 2.0,
            s3_get_class: 1.0,
            manifest_writes: 2.0,
            dedup_writes: 2.0,
            ..NO_REQUESTS
        },
        duplicate: PathRequests { s3_get_class: 1.0, manifest_writes: 2.0, dedup_writes: 1.0, ..NO_REQUESTS },
        duplicate_staged_before_parts: PathRequests {
            s3_get_class: 1.0,
            s3_staging_put_class: 2.0,
            s3_deletes: 1.0,
            manifest_writes: 2.0,
            dedup_writes: 1.0,
            ..NO_REQUESTS
        },
        dead_letter: PathRequests { manifest_writes: 2.0, sqs: 1.0, ..NO_REQUESTS },
    },
    latency: Latencies {
        dynamodb_ms: 10.0,
        s3_request_ms: 30.0,
        s3_head_ms: 15.0,
        sqs_ms: 20.0,
        efs_metadata_ms: 2.0,
        invoke_gap_ms: 20.0,
    },
    environment_bandwidth_bytes_per_s: 100e6,
};

/// AWS list prices in USD. Overridable in code (construct your own).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prices {
    /// Where and when the figures were taken.
    pub source: &'static str,
    pub lambda_per_gb_s: f64,
    pub lambda_per_million_invocations: f64,
    /// Each 64 KB chunk of a request is one request (our batches stay far below 64 KB).
    pub sqs_per_million_requests: f64,
    pub dynamodb_per_million_write_units: f64,
    pub dynamodb_per_million_read_units: f64,
    /// PUT, COPY, POST, LIST (DELETE is free).
    pub s3_per_thousand_put_class: f64,
    /// GET, HEAD.
    pub s3_per_thousand_get_class: f64,
    /// Elastic Throughput reads, per GiB (AWS bills "GB" of 2^30 bytes).
    pub efs_read_per_gib: f64,
    /// EFS meters a data read as at least 32 KiB, a metadata operation as at least 4 KiB
    /// (AWS re:Post, "How do I estimate Elastic Throughput mode costs").
    pub efs_min_metered_read_bytes: f64,
    pub efs_metered_metadata_op_bytes: f64,
}

impl Prices {
    /// us-east-1 list prices: Lambda x86, SQS standard, DynamoDB on-demand (after the
    /// November 2024 cut), S3 Standard requests, EFS Elastic reads; as issue 7 lists them
    /// (November 2026). Not fetched live: check aws.amazon.com/pricing before relying on them.
    pub const US_EAST_1: Prices = Prices {
        source: "us-east-1 list prices as of November 2026 (forecast::Prices::US_EAST_1; not fetched live)",
        lambda_per_gb_s: 0.000_016_666_7,
        lambda_per_million_invocations: 0.20,
        sqs_per_million_requests: 0.40,
        dynamodb_per_million_write_units: 0.625,
        dynamodb_per_million_read_units: 0.125,
        s3_per_thousand_put_class: 0.005,
        s3_per_thousand_get_class: 0.0004,
        efs_read_per_gib: 0.03,
        efs_min_metered_read_bytes: 32.0 * KIB,
        efs_metered_metadata_op_bytes: 4.0 * KIB,
    };
}

/// AWS's documented limits (Lambda's SQS event source scaling, S3's request rates per
/// prefix, EFS and DynamoDB quotas), as the team's AWS notes record them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ServiceLimits {
    /// The SQS event source starts at 5 concurrent batches...
    pub esm_initial_concurrency: f64,
    /// ...adds up to 300 a minute...
    pub esm_scale_up_per_minute: f64,
    /// ...up to 1,000 (also MaximumConcurrency's ceiling).
    pub esm_max_concurrency: u32,
    /// Lambda's default account concurrency (shared with every other function).
    pub account_concurrency: u32,
    pub s3_put_class_per_s_per_prefix: f64,
    pub s3_get_class_per_s_per_prefix: f64,
    /// EFS Elastic Throughput reads per file system: 20 GiB/s in most regions (60 GiB/s in
    /// some since 2024-2025; this is the conservative figure).
    pub efs_read_bytes_per_s: f64,
    /// A new on-demand table serves up to 4,000 write units a second, and doubles its peak
    /// at most every 30 minutes, unless pre-warmed (the template's `TableWarmWriteUnits`).
    pub dynamodb_table_write_units_per_s: f64,
    /// Lambda memory per vCPU, and the most vCPUs a function gets (at 10,240 MB).
    pub lambda_mb_per_vcpu: f64,
    pub lambda_max_vcpus: f64,
}

/// The template's `TableWarmWriteUnits` values above none (a test checks them).
pub const TABLE_WARM_WRITE_UNITS: [u32; 5] = [8000, 12000, 20000, 40000, 80000];

impl ServiceLimits {
    pub const DOCUMENTED: ServiceLimits = ServiceLimits {
        esm_initial_concurrency: 5.0,
        esm_scale_up_per_minute: 300.0,
        esm_max_concurrency: 1000,
        account_concurrency: 1000,
        s3_put_class_per_s_per_prefix: 3500.0,
        s3_get_class_per_s_per_prefix: 5500.0,
        efs_read_bytes_per_s: 20.0 * GIB,
        dynamodb_table_write_units_per_s: 4000.0,
        lambda_mb_per_vcpu: 1769.0,
        lambda_max_vcpus: 6.0,
    };
}

/// The cheapest conceivable mover, the yardstick of the "bill within 10% of the floor" target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FloorModel {
    /// One PUT per distinct content...
    pub s3_puts_per_distinct_file: f64,
    /// ...one DynamoDB write per file (its manifest row)...
    pub dynamodb_writes_per_file: f64,
    /// ...send, receive and delete in batches of ten...
    pub sqs_requests_per_file: f64,
    pub files_per_invocation: f64,
    /// ...each byte read from EFS once...
    pub efs_reads_per_byte: f64,
    /// ...and Lambda CPU only for SHA-256 at OpenSSL's speed (the figure issue 7 gives;
    /// aws-facts.md's 1.80 GB/s on this machine would be 0.60 s/GiB).
    pub hash_cpu_s_per_gib: f64,
}

pub const FLOOR: FloorModel = FloorModel {
    s3_puts_per_distinct_file: 1.0,
    dynamodb_writes_per_file: 1.0,
    sqs_requests_per_file: 0.3,
    files_per_invocation: 10.0,
    efs_reads_per_byte: 1.0,
    hash_cpu_s_per_gib: 0.84,
};

/// Issue 7's targets (set for 1,000 concurrent workers).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Targets {
    pub max_wall_s: f64,
    pub max_efs_read_per_byte_moved: f64,
    pub max_requests_per_file: f64,
    pub max_bill_over_floor: f64,
}

pub const TARGETS: Targets =
    Targets { max_wall_s: 30.0 * 60.0, max_efs_read_per_byte_moved: 1.1, max_requests_per_file: 6.0, max_bill_over_floor: 1.10 };

// ---------------------------------------------------------------------------------------
// The forecast
// ---------------------------------------------------------------------------------------

/// What limits a rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Constraint {
    /// The workers at the configured concurrency.
    Workers,
    /// The event source's scaling: the run ends before the workers reach their full rate.
    EventSourceRamp,
    S3PutRequests,
    S3GetRequests,
    /// PUT-class requests (staging uploads, deletes) at the one staging prefix.
    S3StagingPrefix,
    EfsReadThroughput,
    ManifestTableWrites,
    DedupTableWrites,
    /// One file takes longer at one worker's rate than the rest of the run.
    LargestFile,
}

impl std::fmt::Display for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Constraint::Workers => "the workers (concurrency x per-worker rate)",
            Constraint::EventSourceRamp => "the event source's scaling ramp (+300 workers a minute)",
            Constraint::S3PutRequests => "S3 PUT requests per account prefix",
            Constraint::S3GetRequests => "S3 GET/HEAD requests per prefix",
            Constraint::S3StagingPrefix => "S3 requests at the staging prefix",
            Constraint::EfsReadThroughput => "EFS Elastic read throughput",
            Constraint::ManifestTableWrites => "DynamoDB manifest table writes (new on-demand table)",
            Constraint::DedupTableWrites => "DynamoDB dedup table writes (new on-demand table)",
            Constraint::LargestFile => "the largest file at one worker's rate",
        })
    }
}

/// What bounds one invocation's duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchBound {
    /// The batch waits for its slowest record.
    SlowestRecord,
    /// More records than concurrent slots: they queue.
    RecordSlots,
    Cpu,
    NetworkIn,
    NetworkOut,
}

impl std::fmt::Display for BatchBound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BatchBound::SlowestRecord => "its slowest record",
            BatchBound::RecordSlots => "records queueing for RecordConcurrency slots",
            BatchBound::Cpu => "CPU",
            BatchBound::NetworkIn => "network in (EFS reads)",
            BatchBound::NetworkOut => "network out (S3 uploads)",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerRate {
    pub vcpus: f64,
    /// Records in a batch (BatchSize, or fewer when there are fewer files).
    pub batch_files: u32,
    /// Billed duration of one invocation.
    pub batch_duration_s: f64,
    pub batch_bound: BatchBound,
    pub mean_file_latency_s: f64,
    pub files_per_s: f64,
    /// EFS bytes read per second by one worker.
    pub read_bytes_per_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateLimit {
    pub constraint: Constraint,
    pub files_per_s: f64,
    /// How the figure comes about.
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WallTime {
    pub seconds: f64,
    pub binding: Constraint,
    /// Concurrency the event source may reach (MaximumConcurrency within AWS's ceilings).
    pub effective_concurrency: u32,
    /// Workers needed to reach the run's rate (fewer than the concurrency when another limit binds).
    pub workers_at_full_rate: f64,
    pub ramp_s: f64,
    /// The run's rate once ramped up.
    pub files_per_s: f64,
    pub rate_limits: Vec<RateLimit>,
    /// Execution-environment seconds the event source keeps busy until the queue is drained.
    /// It scales up to the full concurrency while messages wait, whether or not the run can
    /// use them: when a shared limit binds, the surplus workers wait on it (and are billed).
    pub worker_seconds: f64,
    /// A batch's duration at the run's rate with every worker busy: longer than one
    /// worker's own figure when a shared limit binds.
    pub batch_duration_at_run_rate_s: f64,
    pub largest_file_bytes: u64,
    pub largest_file_latency_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LambdaUse {
    pub invocations: f64,
    pub gb_seconds: f64,
}

/// Requests per file on one path (the per-message queue and inventory requests included).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathRow {
    pub path: String,
    pub files: f64,
    pub per_file: PathRequests,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestForecast {
    /// Totals of the whole run.
    pub totals: PathRequests,
    pub dynamodb_write_units: f64,
    pub dynamodb_read_units: f64,
    pub total: f64,
    /// Requests per file the run handles (found, missing and rejected).
    pub per_file: f64,
    pub by_path: Vec<PathRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EfsForecast {
    /// File bytes read.
    pub data_bytes: f64,
    /// What EFS meters and bills (minimum sizes per operation, metadata operations).
    pub metered_bytes: f64,
    /// Bytes of the files the run stores (moved or deduplicated).
    pub bytes_moved: f64,
    pub read_per_byte_moved: f64,
    pub metered_per_byte_moved: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Bill {
    pub lambda: f64,
    pub sqs: f64,
    pub dynamodb: f64,
    pub s3_requests: f64,
    pub efs_reads: f64,
    pub total: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetCheck {
    pub target: String,
    pub value: String,
    pub pass: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecast {
    pub workload: Workload,
    pub deployment: Deployment,
    pub profile: WorkerProfile,
    pub limits: ServiceLimits,
    pub worker: WorkerRate,
    pub wall: WallTime,
    pub lambda: LambdaUse,
    pub requests: RequestForecast,
    pub efs: EfsForecast,
    pub bill: Bill,
    pub floor: Bill,
    pub bill_over_floor: f64,
    pub targets: Vec<TargetCheck>,
    pub warnings: Vec<String>,
    pub assumptions: Vec<String>,
}

/// One file's (or, scaled, a class's) costs.
#[derive(Debug, Clone, Copy, Default)]
struct FileCost {
    latency_s: f64,
    cpu_s: f64,
    efs_bytes: f64,
    efs_metered_bytes: f64,
    upload_bytes: f64,
    requests: PathRequests,
}

impl FileCost {
    fn times(self, n: f64) -> FileCost {
        FileCost {
            latency_s: self.latency_s * n,
            cpu_s: self.cpu_s * n,
            efs_bytes: self.efs_bytes * n,
            efs_metered_bytes: self.efs_metered_bytes * n,
            upload_bytes: self.upload_bytes * n,
            requests: self.requests.times(n),
        }
    }

    fn plus(self, o: FileCost) -> FileCost {
        FileCost {
            latency_s: self.latency_s + o.latency_s,
            cpu_s: self.cpu_s + o.cpu_s,
            efs_bytes: self.efs_bytes + o.efs_bytes,
            efs_metered_bytes: self.efs_metered_bytes + o.efs_metered_bytes,
            upload_bytes: self.upload_bytes + o.upload_bytes,
            requests: self.requests.plus(o.requests),
        }
    }
}

/// Which way the worker stores a file's bytes (`worker.rs`, `move_file`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Up to the multipart threshold: held in memory, one PUT.
    SinglePut,
    /// Up to S3's copy limit: uploaded to a staging key while hashed, then copied by S3.
    Staged,
    /// Beyond it: hashed in one pass, uploaded in a second.
    TwoPass,
}

/// The per-file model: one file's path through the worker in one execution environment.
struct FileModel<'a> {
    deployment: &'a Deployment,
    profile: &'a WorkerProfile,
    prices: &'a Prices,
    /// One hashing thread's share of a vCPU (below 1,769 MB a function gets a fraction).
    single_thread_cpus: f64,
}

/// A streamed multipart upload: its duration and its parts.
struct Streamed {
    /// Passes before the upload that only read and hash (a part, then the next).
    hashing_passes_s: f64,
    /// The upload pass: it reads, hashes and uploads with PartConcurrency parts in flight,
    /// so its slowest stage sets its pace.
    upload_pass_s: f64,
    parts: f64,
}

impl FileModel<'_> {
    fn route(&self, size: f64) -> Route {
        if size <= self.deployment.multipart_threshold as f64 {
            Route::SinglePut
        } else if size <= self.profile.copy_limit_bytes as f64 {
            Route::Staged
        } else {
            Route::TwoPass
        }
    }

    fn hash_cpu_s(&self, bytes: f64) -> f64 {
        bytes / GIB * self.profile.cpu_s_per_gib
    }

    fn cpu_s(&self, bytes_hashed: f64) -> f64 {
        self.profile.cpu_ms_per_file / 1000.0 + self.hash_cpu_s(bytes_hashed)
    }

    fn transfer_s(&self, bytes: f64) -> f64 {
        bytes / self.profile.environment_bandwidth_bytes_per_s
    }

    fn metadata_metered_bytes(&self) -> f64 {
        self.profile.efs_metadata_ops_per_file * self.prices.efs_metered_metadata_op_bytes
    }

    /// EFS's metering of `passes` reads of a file, each at least the minimum metered read.
    fn metered_read_bytes(&self, size: f64, passes: f64) -> f64 {
        let data = if size > 0.0 { passes * size.max(self.prices.efs_min_metered_read_bytes) } else { 0.0 };
        data + self.metadata_metered_bytes()
    }

    fn lookup_s(&self) -> f64 {
        self.profile.efs_metadata_ops_per_file * self.profile.latency.efs_metadata_ms / 1000.0
    }

    /// The round trips of a path's requests, one after another (the worker awaits each).
    fn round_trips_s(&self, r: &PathRequests) -> f64 {
        let l = &self.profile.latency;
        ((r.manifest_writes + r.dedup_writes) * l.dynamodb_ms
            + (r.s3_put_class + r.s3_staging_put_class + r.s3_deletes) * l.s3_request_ms
            + r.s3_get_class * l.s3_head_ms
            + r.sqs * l.sqs_ms)
            / 1000.0
    }

    /// Reading, hashing and uploading `size` bytes in parts, `reads` passes over the file.
    fn streamed(&self, size: f64, reads: f64) -> Streamed {
        let d = self.deployment;
        let parts = (size / d.part_size_for(size as u64) as f64).ceil();
        let read_s = self.transfer_s(size);
        let hash_s = self.hash_cpu_s(size) / self.single_thread_cpus;
        let part_round_trips_s = parts * self.profile.latency.s3_request_ms / 1000.0 / d.part_concurrency as f64;
        Streamed {
            hashing_passes_s: (reads - 1.0).max(0.0) * (read_s + hash_s),
            upload_pass_s: read_s.max(hash_s).max(self.transfer_s(size)).max(part_round_trips_s),
            parts,
        }
    }

    /// The file stored by this delivery (no equal content stored before).
    fn stored_first(&self, size: f64) -> FileCost {
        match self.route(size) {
            Route::SinglePut => self.single_put(size),
            Route::Staged => self.staged(size),
            Route::TwoPass => self.two_pass(size),
        }
    }

    /// Read whole, hash, PUT with the checksum, complete, record.
    fn single_put(&self, size: f64) -> FileCost {
        let p = self.profile;
        let reads = p.efs_reads_per_byte_single_put;
        let requests = p.requests.single_put;
        let latency_s = self.lookup_s()
            + self.round_trips_s(&requests)
            + self.transfer_s(reads * size)
            + self.hash_cpu_s(reads * size) / self.single_thread_cpus
            + self.transfer_s(size);
        FileCost {
            latency_s,
            cpu_s: self.cpu_s(reads * size),
            efs_bytes: reads * size,
            efs_metered_bytes: self.metered_read_bytes(size, reads),
            upload_bytes: size,
            requests,
        }
    }

    /// Streamed to the staging key while hashed, claimed, copied by S3, the staging copy
    /// deleted, recorded.
    fn staged(&self, size: f64) -> FileCost {
        let p = self.profile;
        let reads = p.efs_reads_per_byte_multipart;
        let upload = self.streamed(size, reads);
        let before_parts = p.requests.staged_before_parts;
        let requests = before_parts.plus(PathRequests { s3_staging_put_class: upload.parts, ..PathRequests::default() });
        FileCost {
            latency_s: self.lookup_s()
                + self.round_trips_s(&before_parts)
                + upload.hashing_passes_s
                + upload.upload_pass_s
                + size / p.s3_copy_bytes_per_s,
            cpu_s: self.cpu_s(reads * size),
            efs_bytes: reads * size,
            efs_metered_bytes: self.metered_read_bytes(size, reads),
            upload_bytes: size,
            requests,
        }
    }

    /// A hashing pass, the claim, then a multipart upload that renews the claim every third
    /// of the lease, read back, recorded.
    fn two_pass(&self, size: f64) -> FileCost {
        let p = self.profile;
        let reads = p.efs_reads_per_byte_beyond_copy_limit;
        let upload = self.streamed(size, reads);
        let renewals = (upload.upload_pass_s / (self.deployment.lease_s as f64 / 3.0)).floor();
        let before_parts = p.requests.two_pass_before_parts;
        let requests =
            before_parts.plus(PathRequests { s3_put_class: upload.parts, dedup_writes: renewals, ..PathRequests::default() });
        FileCost {
            latency_s: self.lookup_s()
                + self.round_trips_s(&before_parts)
                + renewals * p.latency.dynamodb_ms / 1000.0
                + upload.hashing_passes_s
                + upload.upload_pass_s,
            cpu_s: self.cpu_s(reads * size),
            efs_bytes: reads * size,
            efs_metered_bytes: self.metered_read_bytes(size, reads),
            upload_bytes: size,
            requests,
        }
    }

    /// Equal content is stored already. The worker learns it only after hashing: a file of
    /// staged size has been uploaded to the staging key by then (and that copy is deleted);
    /// any other file was read and hashed once. The stored object is verified, the row
    /// recorded.
    fn duplicate(&self, size: f64) -> FileCost {
        let p = self.profile;
        if self.route(size) == Route::Staged {
            let reads = p.efs_reads_per_byte_multipart;
            let upload = self.streamed(size, reads);
            let before_parts = p.requests.duplicate_staged_before_parts;
            let requests = before_parts.plus(PathRequests { s3_staging_put_class: upload.parts, ..PathRequests::default() });
            return FileCost {
                latency_s: self.lookup_s() + self.round_trips_s(&before_parts) + upload.hashing_passes_s + upload.upload_pass_s,
                cpu_s: self.cpu_s(reads * size),
                efs_bytes: reads * size,
                efs_metered_bytes: self.metered_read_bytes(size, reads),
                upload_bytes: size,
                requests,
            };
        }
        let requests = p.requests.duplicate;
        FileCost {
            latency_s: self.lookup_s()
                + self.round_trips_s(&requests)
                + self.transfer_s(size)
                + self.hash_cpu_s(size) / self.single_thread_cpus,
            cpu_s: self.cpu_s(size),
            efs_bytes: size,
            efs_metered_bytes: self.metered_read_bytes(size, 1.0),
            upload_bytes: 0.0,
            requests,
        }
    }

    /// Missing or rejected: looked up, forwarded to the DLQ, recorded.
    fn dead_letter(&self) -> FileCost {
        let requests = self.profile.requests.dead_letter;
        FileCost {
            latency_s: self.lookup_s() + self.round_trips_s(&requests),
            cpu_s: self.cpu_s(0.0),
            efs_bytes: 0.0,
            efs_metered_bytes: self.metadata_metered_bytes(),
            upload_bytes: 0.0,
            requests,
        }
    }
}

/// The expected largest of `k` latencies drawn from `(latency, weight)` entries:
/// E[max] = sum over latencies in increasing order of latency x (F(latency)^k - F(previous)^k).
fn expected_max_latency(mut entries: Vec<(f64, f64)>, k: u32) -> f64 {
    entries.retain(|(_, weight)| *weight > 0.0);
    entries.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = entries.iter().map(|(_, w)| w).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let (mut cumulative, mut previous, mut expected) = (0.0, 0.0, 0.0);
    for (latency, weight) in entries {
        cumulative += weight;
        let at_most = (cumulative / total).min(1.0).powi(k as i32);
        expected += latency * (at_most - previous);
        previous = at_most;
    }
    expected
}

fn validate(w: &Workload, d: &Deployment, p: &WorkerProfile, limits: &ServiceLimits) -> Result<(), ForecastError> {
    if w.messages() == 0 {
        return Err(invalid("the workload has no file"));
    }
    if !(0.0..1.0).contains(&w.duplicate_fraction) {
        return Err(invalid(format!("the duplicate fraction must be at least 0 and below 1, not {}", w.duplicate_fraction)));
    }
    if w.accounts == 0 {
        return Err(invalid("the workload needs at least one account prefix"));
    }
    if w.histogram.iter().map(|c| c.files).sum::<u64>() != w.files_found {
        return Err(invalid("the workload's size classes do not add up to its files"));
    }
    let checks: [(bool, &str); 8] = [
        (d.concurrency >= 1, "the concurrency must be at least 1"),
        ((128..=10_240).contains(&d.memory_mb), "the worker memory must be 128-10,240 MB"),
        (d.batch_size >= 1, "the batch size must be at least 1"),
        (d.record_concurrency >= 1, "the record concurrency must be at least 1"),
        (d.part_size >= S3_MIN_PART, "the part size must be at least 5 MiB"),
        (d.part_concurrency >= 1, "the part concurrency must be at least 1"),
        (d.timeout_s >= 1 && d.lease_s >= 1, "the timeout and the lease must be at least 1 s"),
        (
            p.environment_bandwidth_bytes_per_s > 0.0 && p.cpu_s_per_gib >= 0.0 && p.cpu_ms_per_file >= 0.0,
            "the worker profile needs a positive bandwidth and non-negative CPU figures",
        ),
    ];
    let limits_above_zero = [
        limits.esm_initial_concurrency,
        limits.esm_scale_up_per_minute,
        limits.esm_max_concurrency as f64,
        limits.account_concurrency as f64,
        limits.s3_put_class_per_s_per_prefix,
        limits.s3_get_class_per_s_per_prefix,
        limits.efs_read_bytes_per_s,
        limits.dynamodb_table_write_units_per_s,
        limits.lambda_mb_per_vcpu,
        limits.lambda_max_vcpus,
    ];
    if limits_above_zero.iter().any(|x| x.is_nan() || *x <= 0.0) {
        return Err(invalid("every service limit must be above zero"));
    }
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, why)) => Err(invalid(*why)),
        None => Ok(()),
    }
}

/// The forecast against AWS's documented limits.
pub fn forecast(w: &Workload, d: &Deployment, p: &WorkerProfile, prices: &Prices) -> Result<Forecast, ForecastError> {
    forecast_with_limits(w, d, p, prices, &ServiceLimits::DOCUMENTED)
}

pub fn forecast_with_limits(
    w: &Workload,
    d: &Deployment,
    p: &WorkerProfile,
    prices: &Prices,
    limits: &ServiceLimits,
) -> Result<Forecast, ForecastError> {
    validate(w, d, p, limits)?;
    let vcpus = (d.memory_mb as f64 / limits.lambda_mb_per_vcpu).min(limits.lambda_max_vcpus);
    let model = FileModel { deployment: d, profile: p, prices, single_thread_cpus: vcpus.min(1.0) };
    let messages = w.messages() as f64;
    let paths = Paths::of(&model, w);
    let worker_totals = paths.all();

    // Per message, whatever its path: the inventory sends batches of ten, the event source
    // receives and deletes a batch at a time, and the inventory reads 100 manifest statuses
    // per BatchGetItem (eventually consistent: half a read unit per item up to 4 KB).
    let invocations = (messages / d.batch_size as f64).ceil();
    let queue_per_message = PathRequests {
        sqs: 1.0 / 10.0 + 2.0 * invocations / messages,
        dynamodb_reads: 1.0 / 100.0,
        ..PathRequests::default()
    };
    let totals = worker_totals.requests.plus(queue_per_message.times(messages));
    let requests = RequestForecast {
        totals,
        dynamodb_write_units: totals.manifest_writes * p.manifest_write_units_per_write + totals.dedup_writes,
        dynamodb_read_units: messages * 0.5,
        total: totals.total(),
        per_file: totals.total() / messages,
        by_path: paths.rows(queue_per_message),
    };

    let worker = one_invocation(d, p, vcpus, messages, &worker_totals, paths.latencies);
    let wall = wall_time(&model, w, limits, &worker, &requests, &worker_totals);

    // Lambda bills every invocation's duration: each batch's own, or, when a shared limit
    // keeps the workers waiting, the time the event source keeps them busy (less the
    // hand-offs between batches, which are not billed).
    let billed_share = worker.batch_duration_s / (worker.batch_duration_s + p.latency.invoke_gap_ms / 1000.0);
    let billed_s = (invocations * worker.batch_duration_s).max(wall.worker_seconds * billed_share);
    let gb_seconds = billed_s * d.memory_mb as f64 / 1024.0;
    let bytes_moved = w.bytes_found as f64;
    let per_byte_moved = |bytes: f64| if bytes_moved > 0.0 { bytes / bytes_moved } else { 0.0 };
    let efs = EfsForecast {
        data_bytes: worker_totals.efs_bytes,
        metered_bytes: worker_totals.efs_metered_bytes,
        bytes_moved,
        read_per_byte_moved: per_byte_moved(worker_totals.efs_bytes),
        metered_per_byte_moved: per_byte_moved(worker_totals.efs_metered_bytes),
    };
    let bill = priced(
        prices,
        gb_seconds,
        invocations,
        &totals,
        requests.dynamodb_write_units,
        requests.dynamodb_read_units,
        worker_totals.efs_metered_bytes,
    );
    let floor = floor_bill(w, prices, limits);
    let bill_over_floor = bill.total / floor.total;
    let targets = target_checks(wall.seconds, &efs, requests.per_file, bill_over_floor);
    let warnings = warnings(w, d, &wall, limits);
    let assumptions = assumptions(w, p, prices, limits);

    Ok(Forecast {
        workload: w.clone(),
        deployment: d.clone(),
        profile: *p,
        limits: *limits,
        worker,
        wall,
        lambda: LambdaUse { invocations, gb_seconds },
        requests,
        efs,
        bill,
        floor,
        bill_over_floor,
        targets,
        warnings,
        assumptions,
    })
}

/// The workload's files on each path through the worker: (files, their summed costs).
struct Paths {
    single_put: (f64, FileCost),
    staged: (f64, FileCost),
    two_pass: (f64, FileCost),
    duplicate: (f64, FileCost),
    dead_letter: (f64, FileCost),
    /// (one file's latency, files with it), for the slowest record of a batch.
    latencies: Vec<(f64, f64)>,
}

impl Paths {
    fn of(model: &FileModel<'_>, w: &Workload) -> Paths {
        let empty = (0.0, FileCost::default());
        let mut paths = Paths {
            single_put: empty,
            staged: empty,
            two_pass: empty,
            duplicate: empty,
            dead_letter: empty,
            latencies: Vec::new(),
        };
        let add = |path: &mut (f64, FileCost), files: f64, cost: FileCost| {
            path.0 += files;
            path.1 = path.1.plus(cost.times(files));
        };
        for class in &w.histogram {
            let size = class.mean_bytes();
            let stored_first = class.files as f64 * (1.0 - w.duplicate_fraction);
            let duplicates = class.files as f64 * w.duplicate_fraction;
            let first = model.stored_first(size);
            let path = match model.route(size) {
                Route::SinglePut => &mut paths.single_put,
                Route::Staged => &mut paths.staged,
                Route::TwoPass => &mut paths.two_pass,
            };
            add(path, stored_first, first);
            let again = model.duplicate(size);
            add(&mut paths.duplicate, duplicates, again);
            paths.latencies.push((first.latency_s, stored_first));
            paths.latencies.push((again.latency_s, duplicates));
        }
        let dead = model.dead_letter();
        add(&mut paths.dead_letter, w.missing_or_rejected as f64, dead);
        paths.latencies.push((dead.latency_s, w.missing_or_rejected as f64));
        paths
    }

    fn all(&self) -> FileCost {
        [self.staged, self.two_pass, self.duplicate, self.dead_letter].iter().fold(self.single_put.1, |all, (_, cost)| all.plus(*cost))
    }

    fn rows(&self, queue_per_message: PathRequests) -> Vec<PathRow> {
        let row = |path: &str, (files, cost): (f64, FileCost)| PathRow {
            path: path.to_string(),
            files,
            per_file: if files > 0.0 { cost.requests.times(1.0 / files).plus(queue_per_message) } else { PathRequests::default() },
        };
        vec![
            row("single PUT", self.single_put),
            row("staged+copy", self.staged),
            row("two-pass", self.two_pass),
            row("duplicate", self.duplicate),
            row("dead letter", self.dead_letter),
        ]
    }
}

/// One invocation: its billed duration (the largest of its bounds) and the worker's rate.
fn one_invocation(
    d: &Deployment,
    p: &WorkerProfile,
    vcpus: f64,
    messages: f64,
    worker_totals: &FileCost,
    latencies: Vec<(f64, f64)>,
) -> WorkerRate {
    let batch_files = (d.batch_size as f64).min(messages) as u32;
    let k = batch_files as f64;
    let slots = (d.record_concurrency as f64).min(k);
    let mean = worker_totals.times(1.0 / messages);
    let bandwidth = p.environment_bandwidth_bytes_per_s;
    let bounds = [
        (BatchBound::SlowestRecord, expected_max_latency(latencies, batch_files)),
        (BatchBound::RecordSlots, k * mean.latency_s / slots),
        (BatchBound::Cpu, k * mean.cpu_s / vcpus.min(slots)),
        (BatchBound::NetworkIn, k * mean.efs_bytes / bandwidth),
        (BatchBound::NetworkOut, k * mean.upload_bytes / bandwidth),
    ];
    let (batch_bound, batch_duration_s) = bounds.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1)).expect("five bounds");
    let files_per_s = k / (batch_duration_s + p.latency.invoke_gap_ms / 1000.0);
    WorkerRate {
        vcpus,
        batch_files,
        batch_duration_s,
        batch_bound,
        mean_file_latency_s: mean.latency_s,
        files_per_s,
        read_bytes_per_s: files_per_s * mean.efs_bytes,
    }
}

/// Every rate the run cannot exceed, in files per second.
fn rate_limits(
    w: &Workload,
    p: &WorkerProfile,
    limits: &ServiceLimits,
    effective_concurrency: u32,
    worker: &WorkerRate,
    requests: &RequestForecast,
    worker_totals: &FileCost,
) -> Vec<RateLimit> {
    let messages = w.messages() as f64;
    let t = &requests.totals;
    let mut out = vec![RateLimit {
        constraint: Constraint::Workers,
        files_per_s: effective_concurrency as f64 * worker.files_per_s,
        detail: format!("{} workers x {:.1} files/s", grouped(effective_concurrency as f64), worker.files_per_s),
    }];
    let prefixes = w.accounts as f64;
    let manifest_units = t.manifest_writes * p.manifest_write_units_per_write;
    let per_file = [
        (Constraint::S3PutRequests, t.s3_put_class, limits.s3_put_class_per_s_per_prefix * prefixes, "/s per prefix"),
        (Constraint::S3GetRequests, t.s3_get_class, limits.s3_get_class_per_s_per_prefix * prefixes, "/s per prefix"),
        // Every staged file goes through the one staging prefix, whatever its account.
        (
            Constraint::S3StagingPrefix,
            t.s3_staging_put_class + t.s3_deletes,
            limits.s3_put_class_per_s_per_prefix,
            "/s at _migration-staging/",
        ),
        (Constraint::EfsReadThroughput, worker_totals.efs_metered_bytes, limits.efs_read_bytes_per_s, ""),
        (Constraint::ManifestTableWrites, manifest_units, limits.dynamodb_table_write_units_per_s, " WRU/s"),
        (Constraint::DedupTableWrites, t.dedup_writes, limits.dynamodb_table_write_units_per_s, " WRU/s"),
    ];
    for (constraint, total, capacity, unit) in per_file {
        let each = total / messages;
        if each <= 0.0 {
            continue;
        }
        let detail = match constraint {
            Constraint::EfsReadThroughput => format!("{}/s / {} per file", binary_bytes(capacity), decimal_bytes(each)),
            Constraint::S3PutRequests | Constraint::S3GetRequests => {
                format!("{}{unit} x {} / {each:.2} per file", grouped(capacity / prefixes), w.accounts)
            }
            _ => format!("{}{unit} / {each:.2} per file", grouped(capacity)),
        };
        out.push(RateLimit { constraint, files_per_s: capacity / each, detail });
    }
    out
}

/// The run's wall time: the event source ramps the workers up to the lowest rate limit, the
/// rest goes at that rate; unless the largest file alone takes longer.
fn wall_time(
    model: &FileModel<'_>,
    w: &Workload,
    limits: &ServiceLimits,
    worker: &WorkerRate,
    requests: &RequestForecast,
    worker_totals: &FileCost,
) -> WallTime {
    let d = model.deployment;
    let messages = w.messages() as f64;
    let effective_concurrency = d.concurrency.min(limits.esm_max_concurrency).min(limits.account_concurrency);
    let rate_limits = rate_limits(w, model.profile, limits, effective_concurrency, worker, requests, worker_totals);
    let lowest = rate_limits.iter().min_by(|a, b| a.files_per_s.total_cmp(&b.files_per_s)).expect("the workers' limit is always there");
    let (run_rate, mut binding) = (lowest.files_per_s, lowest.constraint);

    // The event source adds workers linearly, c(t) = c0 + slope t, until they reach the run's
    // rate; the files done meanwhile are the area under that line.
    let r = worker.files_per_s;
    let workers_at_full_rate = run_rate / r;
    let c0 = limits.esm_initial_concurrency.min(effective_concurrency as f64);
    let slope = limits.esm_scale_up_per_minute / 60.0;
    let full_ramp_s = ((workers_at_full_rate - c0) / slope).max(0.0);
    let ramp_files = r * (c0 * full_ramp_s + slope * full_ramp_s * full_ramp_s / 2.0);
    let (throughput_s, ramp_s) = if messages <= ramp_files {
        // Done before the ramp ends: solve slope/2 t^2 + c0 t = messages / r.
        binding = Constraint::EventSourceRamp;
        let t = (-c0 + (c0 * c0 + 2.0 * slope * messages / r).sqrt()) / slope;
        (t, t)
    } else {
        (full_ramp_s + (messages - ramp_files) / run_rate, full_ramp_s)
    };
    // Meanwhile the event source goes on adding workers up to the full concurrency.
    let concurrency = effective_concurrency as f64;
    let to_full_s = ((concurrency - c0) / slope).max(0.0);
    let area = |t: f64| c0 * t + slope * t * t / 2.0;
    let worker_seconds = if throughput_s <= to_full_s {
        area(throughput_s)
    } else {
        area(to_full_s) + concurrency * (throughput_s - to_full_s)
    };
    let gap_s = model.profile.latency.invoke_gap_ms / 1000.0;
    let batch_duration_at_run_rate_s =
        worker.batch_duration_s.max(worker.batch_files as f64 * concurrency / run_rate - gap_s);

    let largest_file_latency_s =
        if w.files_found > 0 { model.stored_first(w.largest_file_bytes as f64).latency_s } else { 0.0 };
    let seconds = if largest_file_latency_s > throughput_s {
        binding = Constraint::LargestFile;
        largest_file_latency_s
    } else {
        throughput_s
    };
    WallTime {
        seconds,
        binding,
        effective_concurrency,
        workers_at_full_rate,
        ramp_s,
        files_per_s: run_rate,
        rate_limits,
        worker_seconds,
        batch_duration_at_run_rate_s,
        largest_file_bytes: w.largest_file_bytes,
        largest_file_latency_s,
    }
}

/// What the ideal mover of [`FLOOR`] would pay for the same workload.
fn floor_bill(w: &Workload, prices: &Prices, limits: &ServiceLimits) -> Bill {
    let messages = w.messages() as f64;
    let bytes = w.bytes_found as f64;
    // A CPU-second is a second of the memory that buys one vCPU.
    let gb_seconds = bytes / GIB * FLOOR.hash_cpu_s_per_gib * limits.lambda_mb_per_vcpu / 1024.0;
    let requests = PathRequests {
        s3_put_class: w.files_found as f64 * (1.0 - w.duplicate_fraction) * FLOOR.s3_puts_per_distinct_file,
        manifest_writes: messages * FLOOR.dynamodb_writes_per_file,
        sqs: messages * FLOOR.sqs_requests_per_file,
        ..PathRequests::default()
    };
    priced(
        prices,
        gb_seconds,
        (messages / FLOOR.files_per_invocation).ceil(),
        &requests,
        requests.manifest_writes,
        0.0,
        bytes * FLOOR.efs_reads_per_byte,
    )
}

fn target_checks(wall_s: f64, efs: &EfsForecast, requests_per_file: f64, bill_over_floor: f64) -> Vec<TargetCheck> {
    vec![
        TargetCheck {
            target: format!("wall time under {:.0} min", TARGETS.max_wall_s / 60.0),
            value: duration(wall_s),
            pass: wall_s < TARGETS.max_wall_s,
        },
        TargetCheck {
            target: format!("EFS bytes read (metered) per byte moved <= {:.2}", TARGETS.max_efs_read_per_byte_moved),
            value: format!("{:.3}", efs.metered_per_byte_moved),
            pass: efs.metered_per_byte_moved <= TARGETS.max_efs_read_per_byte_moved,
        },
        TargetCheck {
            target: format!("AWS requests per file <= {:.0}", TARGETS.max_requests_per_file),
            value: format!("{requests_per_file:.2}"),
            pass: requests_per_file <= TARGETS.max_requests_per_file,
        },
        TargetCheck {
            target: format!("bill within {:.0}% of the floor", (TARGETS.max_bill_over_floor - 1.0) * 100.0),
            value: format!("{bill_over_floor:.3}x"),
            pass: bill_over_floor <= TARGETS.max_bill_over_floor,
        },
    ]
}

fn warnings(w: &Workload, d: &Deployment, wall: &WallTime, limits: &ServiceLimits) -> Vec<String> {
    let mut out = Vec::new();
    if wall.largest_file_latency_s > d.timeout_s as f64 {
        out.push(format!(
            "the largest file (up to {}) needs ~{} at one worker's rate, more than WorkerTimeout ({} s): \
             it cannot finish; raise WorkerTimeout (at most 900 s) or WorkerMemorySize",
            decimal_bytes(w.largest_file_bytes as f64),
            duration(wall.largest_file_latency_s),
            d.timeout_s
        ));
    }
    if wall.batch_duration_at_run_rate_s > d.timeout_s as f64 {
        out.push(format!(
            "an average batch takes {} at the run's rate, more than WorkerTimeout ({} s)",
            duration(wall.batch_duration_at_run_rate_s),
            d.timeout_s
        ));
    }
    let shared_limit = !matches!(wall.binding, Constraint::Workers | Constraint::EventSourceRamp | Constraint::LargestFile);
    let needed = wall.workers_at_full_rate.ceil().max(2.0);
    if shared_limit && wall.effective_concurrency as f64 > needed * 1.2 {
        out.push(format!(
            "{} allows only {} files/s, which {} workers reach: the other {} wait on it (slowed or throttled and retried, \
             in billed Lambda time); MaximumConcurrency {} gives the same wall time",
            wall.binding,
            grouped(wall.files_per_s),
            needed,
            grouped(wall.effective_concurrency as f64 - needed),
            needed
        ));
        if matches!(wall.binding, Constraint::ManifestTableWrites | Constraint::DedupTableWrites) {
            let units = (wall.effective_concurrency as f64 / needed * limits.dynamodb_table_write_units_per_s).ceil();
            match TABLE_WARM_WRITE_UNITS.iter().find(|&&allowed| allowed as f64 >= units) {
                Some(allowed) => out.push(format!(
                    "or pre-warm both tables for all the workers ({} WRU/s each): TableWarmWriteUnits {allowed} in the \
                     template (billed once by DynamoDB, not in this bill), and plan --table-write-units {allowed}",
                    grouped(units)
                )),
                None => out.push(format!(
                    "feeding all the workers would take {} WRU/s per table, more than the template's largest \
                     TableWarmWriteUnits ({})",
                    grouped(units),
                    TABLE_WARM_WRITE_UNITS[TABLE_WARM_WRITE_UNITS.len() - 1]
                )),
            }
        }
    }
    if d.concurrency > wall.effective_concurrency {
        out.push(format!(
            "concurrency {} is above what the event source and the account allow: forecast at {}",
            d.concurrency, wall.effective_concurrency
        ));
    }
    if d.record_concurrency > d.batch_size {
        out.push("RecordConcurrency above BatchSize has no effect".into());
    }
    if w.basis.contains("estimated") {
        out.push("bytes per size bucket are estimated (old report): rerun the dry run for exact figures".into());
    }
    out
}

fn assumptions(w: &Workload, p: &WorkerProfile, prices: &Prices, limits: &ServiceLimits) -> Vec<String> {
    let l = &p.latency;
    vec![
        format!("prices: {}; S3 and DynamoDB reached through VPC gateway endpoints (through a NAT gateway, add ~$0.045/GB moved)", prices.source),
        format!(
            "worker: CPU {} s/GiB and {} ms/file from forecast::MEASURED (bench/move.sh); \
             round trips assumed: DynamoDB {} ms, S3 PUT {} ms + transfer, HEAD {} ms",
            p.cpu_s_per_gib, p.cpu_ms_per_file, l.dynamodb_ms, l.s3_request_ms, l.s3_head_ms
        ),
        format!("network per execution environment: {} each way (assumed; Lambda documents none)", decimal_rate(p.environment_bandwidth_bytes_per_s)),
        format!(
            "limits: event source {} batches + {}/min up to {}; S3 per prefix, files spread evenly over {} account prefix(es); \
             EFS reads {}/s (Elastic: 20 GiB/s); DynamoDB {} WRU/s per table (a new on-demand table: 4,000)",
            limits.esm_initial_concurrency,
            limits.esm_scale_up_per_minute,
            grouped(limits.esm_max_concurrency as f64),
            w.accounts,
            binary_bytes(limits.efs_read_bytes_per_s),
            grouped(limits.dynamodb_table_write_units_per_s)
        ),
        format!("{:.0}% of the found files are duplicates (a flag); each size class at its mean size", w.duplicate_fraction * 100.0),
        "not counted: S3 storage, CloudWatch Logs, the inventory and loader functions, retries, cold starts, the memory budget's queueing".into(),
    ]
}

fn priced(
    prices: &Prices,
    gb_seconds: f64,
    invocations: f64,
    requests: &PathRequests,
    write_units: f64,
    read_units: f64,
    efs_metered_bytes: f64,
) -> Bill {
    let lambda = gb_seconds * prices.lambda_per_gb_s + invocations / 1e6 * prices.lambda_per_million_invocations;
    let sqs = requests.sqs / 1e6 * prices.sqs_per_million_requests;
    let dynamodb = write_units / 1e6 * prices.dynamodb_per_million_write_units + read_units / 1e6 * prices.dynamodb_per_million_read_units;
    // DELETE requests are free.
    let s3_requests = (requests.s3_put_class + requests.s3_staging_put_class) / 1e3 * prices.s3_per_thousand_put_class
        + requests.s3_get_class / 1e3 * prices.s3_per_thousand_get_class;
    let efs_reads = efs_metered_bytes / GIB * prices.efs_read_per_gib;
    Bill { lambda, sqs, dynamodb, s3_requests, efs_reads, total: lambda + sqs + dynamodb + s3_requests + efs_reads }
}

// ---------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------

impl Forecast {
    pub fn render_text(&self) -> String {
        let (w, d, wall) = (&self.workload, &self.deployment, &self.wall);
        let mut o = String::new();
        let line = |o: &mut String, text: String| {
            o.push_str(&text);
            o.push('\n');
        };
        line(&mut o, "=== Forecast of the file move ===".into());
        line(
            &mut o,
            format!(
                "Workload    {} files, {}, {} missing or rejected; {}",
                grouped(w.files_found as f64),
                decimal_bytes(w.bytes_found as f64),
                grouped(w.missing_or_rejected as f64),
                w.basis
            ),
        );
        line(
            &mut o,
            format!(
                "            {:.0}% duplicates assumed, {} account prefix(es), largest file <= {}",
                w.duplicate_fraction * 100.0,
                w.accounts,
                decimal_bytes(w.largest_file_bytes as f64)
            ),
        );
        line(
            &mut o,
            format!(
                "Deployment  {} workers x {} MB ({:.2} vCPU), batches of {}, {} records at once, timeout {} s",
                grouped(d.concurrency as f64),
                grouped(d.memory_mb as f64),
                self.worker.vcpus,
                d.batch_size,
                d.record_concurrency,
                d.timeout_s
            ),
        );
        line(
            &mut o,
            format!(
                "            multipart above {} in {} parts, {} at once",
                binary_bytes(d.multipart_threshold as f64),
                binary_bytes(d.part_size as f64),
                d.part_concurrency
            ),
        );
        line(
            &mut o,
            format!(
                "Per worker  a batch of {} takes {} (bound by {}): {:.1} files/s, {} read",
                self.worker.batch_files,
                duration(self.worker.batch_duration_s),
                self.worker.batch_bound,
                self.worker.files_per_s,
                decimal_rate(self.worker.read_bytes_per_s)
            ),
        );
        o.push('\n');
        line(&mut o, format!("Wall time   {}   bound by {}", duration(wall.seconds), wall.binding));
        line(&mut o, "  rate limits (files/s):".into());
        for limit in &wall.rate_limits {
            let name = match limit.constraint {
                Constraint::Workers => "workers",
                Constraint::S3PutRequests => "S3 PUT class",
                Constraint::S3GetRequests => "S3 GET/HEAD class",
                Constraint::S3StagingPrefix => "S3 staging prefix",
                Constraint::EfsReadThroughput => "EFS reads",
                Constraint::ManifestTableWrites => "manifest table writes",
                Constraint::DedupTableWrites => "dedup table writes",
                Constraint::EventSourceRamp | Constraint::LargestFile => "",
            };
            let mark = if limit.files_per_s == wall.files_per_s { "  <- lowest" } else { "" };
            line(
                &mut o,
                format!("    {:<22} {:>10}   {}{mark}", name, grouped(limit.files_per_s), limit.detail),
            );
        }
        line(
            &mut o,
            format!(
                "  ramp-up {} to {:.0} workers; the run then moves {} files/s, {} from EFS",
                duration(wall.ramp_s),
                wall.workers_at_full_rate.min(wall.effective_concurrency as f64).ceil(),
                grouped(wall.files_per_s),
                decimal_rate(wall.files_per_s * self.efs.data_bytes / (w.files_found + w.missing_or_rejected) as f64)
            ),
        );
        if wall.batch_duration_at_run_rate_s > self.worker.batch_duration_s * 1.01 {
            line(
                &mut o,
                format!(
                    "  with all {} workers busy a batch stretches to {} (the event source scales to the concurrency while messages wait)",
                    grouped(wall.effective_concurrency as f64),
                    duration(wall.batch_duration_at_run_rate_s)
                ),
            );
        }
        line(
            &mut o,
            format!(
                "  largest file (<= {}) alone: {}",
                decimal_bytes(wall.largest_file_bytes as f64),
                duration(wall.largest_file_latency_s)
            ),
        );
        let batches_gb_s = self.lambda.invocations * self.worker.batch_duration_s * d.memory_mb as f64 / 1024.0;
        let waiting = if self.lambda.gb_seconds > batches_gb_s * 1.01 {
            format!(", {} of them in workers waiting on the binding limit", grouped(self.lambda.gb_seconds - batches_gb_s))
        } else {
            String::new()
        };
        line(
            &mut o,
            format!(
                "Lambda      {} invocations, {} GB-s{waiting}",
                grouped(self.lambda.invocations),
                grouped(self.lambda.gb_seconds)
            ),
        );
        line(
            &mut o,
            format!(
                "EFS         {} read, {} metered: {:.3} bytes read per byte moved ({:.3} metered)",
                decimal_bytes(self.efs.data_bytes),
                decimal_bytes(self.efs.metered_bytes),
                self.efs.read_per_byte_moved,
                self.efs.metered_per_byte_moved
            ),
        );
        o.push('\n');
        line(&mut o, "AWS requests per file, by path (queue and inventory requests included):".into());
        line(
            &mut o,
            format!(
                "  {:<12} {:>11} {:>7} {:>6} {:>7} {:>9} {:>6} {:>7}",
                "path", "files", "S3 PUT", "HEAD", "DELETE", "DynamoDB", "SQS", "total"
            ),
        );
        for r in &self.requests.by_path {
            let q = &r.per_file;
            line(
                &mut o,
                format!(
                    "  {:<12} {:>11} {:>7.2} {:>6.2} {:>7.2} {:>9.2} {:>6.2} {:>7.2}",
                    r.path,
                    grouped(r.files),
                    q.s3_put_class + q.s3_staging_put_class,
                    q.s3_get_class,
                    q.s3_deletes,
                    q.dynamodb(),
                    q.sqs,
                    q.total()
                ),
            );
        }
        let t = &self.requests.totals;
        line(
            &mut o,
            format!(
                "  {:<12} {:>11} {:>47.2}  ({} requests)",
                "all",
                grouped(w.files_found as f64 + w.missing_or_rejected as f64),
                self.requests.per_file,
                grouped(t.total())
            ),
        );
        line(
            &mut o,
            format!(
                "  in all: S3 {} PUT class ({} at the staging prefix), {} HEAD, {} DELETE; DynamoDB {} WRU, {} RRU; SQS {}",
                grouped(t.s3_put_class + t.s3_staging_put_class),
                grouped(t.s3_staging_put_class),
                grouped(t.s3_get_class),
                grouped(t.s3_deletes),
                grouped(self.requests.dynamodb_write_units),
                grouped(self.requests.dynamodb_read_units),
                grouped(t.sqs)
            ),
        );
        o.push('\n');
        line(&mut o, format!("{:<14}{:>12} {:>12}", "Bill (USD)", "forecast", "floor"));
        for (name, ours, floor) in [
            ("Lambda", self.bill.lambda, self.floor.lambda),
            ("SQS", self.bill.sqs, self.floor.sqs),
            ("DynamoDB", self.bill.dynamodb, self.floor.dynamodb),
            ("S3 requests", self.bill.s3_requests, self.floor.s3_requests),
            ("EFS reads", self.bill.efs_reads, self.floor.efs_reads),
        ] {
            line(&mut o, format!("  {name:<12}{:>12} {:>12}", usd_cents(ours), usd_cents(floor)));
        }
        line(
            &mut o,
            format!(
                "  {:<12}{:>12} {:>12}   ({:.3}x the floor)",
                "total",
                usd_cents(self.bill.total),
                usd_cents(self.floor.total),
                self.bill_over_floor
            ),
        );
        o.push('\n');
        line(&mut o, "Targets (issue 7, set for 1,000 workers):".into());
        for t in &self.targets {
            line(&mut o, format!("  {:<50} {:>12}  {}", t.target, t.value, if t.pass { "PASS" } else { "MISS" }));
        }
        if !self.warnings.is_empty() {
            line(&mut o, "Warnings:".into());
            for warning in &self.warnings {
                line(&mut o, format!("  ! {warning}"));
            }
        }
        line(&mut o, "Assumptions:".into());
        for a in &self.assumptions {
            line(&mut o, format!("  - {a}"));
        }
        o
    }

    /// A few lines for the dry-run report.
    pub fn render_summary(&self) -> String {
        let missed: Vec<&str> = self.targets.iter().filter(|t| !t.pass).map(|t| t.target.as_str()).collect();
        let verdict = if missed.is_empty() { "all met".to_string() } else { format!("missed: {}", missed.join("; ")) };
        let mut o = String::new();
        o.push_str(&format!(
            "  wall time {} (bound by {}), {} Lambda GB-s, {:.2} AWS requests per file, {:.3} EFS bytes read per byte moved\n",
            duration(self.wall.seconds),
            self.wall.binding,
            grouped(self.lambda.gb_seconds),
            self.requests.per_file,
            self.efs.metered_per_byte_moved
        ));
        o.push_str(&format!(
            "  bill {} (floor {}, {:.2}x); issue 7's targets: {verdict}\n",
            usd(self.bill.total),
            usd(self.floor.total),
            self.bill_over_floor
        ));
        for warning in &self.warnings {
            o.push_str(&format!("  ! {warning}\n"));
        }
        o
    }
}

/// The dry-run report's forecast section: the template defaults, 20% duplicates, one prefix.
pub fn dry_run_section(report: &DryRunReport) -> String {
    let deployment = Deployment::default();
    let header = format!(
        "Forecast at the template defaults ({} workers x {} MB, {:.0}% duplicates assumed; \
         `dtx-migrate plan --dry-run-report` for other settings):\n",
        deployment.concurrency,
        deployment.memory_mb,
        DEFAULT_DUPLICATE_FRACTION * 100.0
    );
    match Workload::from_dry_run(report).and_then(|w| forecast(&w, &deployment, &MEASURED, &Prices::US_EAST_1)) {
        Ok(f) => header + &f.render_summary(),
        Err(e) => format!("{header}  not available: {e}\n"),
    }
}

/// Parses a size: bytes (`1048576`), or a number with a decimal (`2.2TB`, `500 MB`) or binary
/// (`500GiB`) unit; case-insensitive.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("{text:?} is not a size (e.g. 2.2TB, 500GiB, 1048576)"))?;
    let multiplier = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => KIB,
        "mib" => MIB,
        "gib" => GIB,
        "tib" => GIB * 1024.0,
        other => return Err(format!("{text:?}: unknown unit {other:?} (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)")),
    };
    let bytes = (value * multiplier).round();
    if !bytes.is_finite() || bytes > u64::MAX as f64 {
        return Err(format!("{text:?} is too large"));
    }
    Ok(bytes as u64)
}

/// `1,234,567` (rounded to a whole number).
pub fn grouped(x: f64) -> String {
    let digits = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x < -0.5 {
        out.insert(0, '-');
    }
    out
}

/// `2.20 TB` (powers of 1,000, as issue 7 states sizes).
pub fn decimal_bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

fn decimal_rate(bytes_per_s: f64) -> String {
    format!("{}/s", decimal_bytes(bytes_per_s))
}

/// `64 MiB` (the template's parameters are binary sizes).
fn binary_bytes(bytes: f64) -> String {
    if bytes >= GIB {
        format!("{:.1} GiB", bytes / GIB)
    } else if bytes >= MIB {
        format!("{:.0} MiB", bytes / MIB)
    } else {
        format!("{:.0} KiB", bytes / KIB)
    }
}

/// `8 min 40 s`, `1 h 05 min`, `12.3 s`, `0.43 s`.
pub fn duration(seconds: f64) -> String {
    if seconds < 10.0 {
        format!("{seconds:.2} s")
    } else if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else if seconds < 3600.0 {
        let whole = seconds.round() as u64;
        format!("{} min {:02} s", whole / 60, whole % 60)
    } else {
        let minutes = (seconds / 60.0).round() as u64;
        format!("{} h {:02} min", minutes / 60, minutes % 60)
    }
}

/// `$1,234.57`; below a dollar to a hundredth of a cent (a small dry run costs that little).
fn usd(x: f64) -> String {
    if x < 1.0 {
        format!("${x:.4}")
    } else {
        usd_cents(x)
    }
}

/// `$1,234.57`, `$0.07`.
fn usd_cents(x: f64) -> String {
    let cents = (x * 100.0).round();
    format!("${}.{:02}", grouped((cents / 100.0).trunc()), (cents % 100.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Tally;

    const TB: u64 = 1_000_000_000_000;

    /// Issue 7's scenario: 1M files, 2.2 TB, 1,000 workers, the measured profile.
    fn issue_scenario() -> Forecast {
        let workload = Workload::synthetic(1_000_000, 22 * TB / 10).unwrap();
        let deployment = Deployment { concurrency: 1000, ..Deployment::default() };
        forecast(&workload, &deployment, &MEASURED, &Prices::US_EAST_1).unwrap()
    }

    fn small_files(files: u64, size: u64) -> Workload {
        Workload {
            files_found: files,
            bytes_found: files * size,
            histogram: vec![SizeClass { label: "small".into(), max_bytes: size, files, bytes: files * size }],
            largest_file_bytes: size,
            missing_or_rejected: 0,
            duplicate_fraction: 0.0,
            accounts: 1,
            basis: "test".into(),
        }
    }

    /// No ramp: the event source starts at full concurrency.
    const NO_RAMP: ServiceLimits = ServiceLimits { esm_initial_concurrency: 1000.0, ..ServiceLimits::DOCUMENTED };

    #[test]
    fn the_synthetic_workload_has_exactly_the_given_files_and_bytes_and_a_long_tail() {
        let w = Workload::synthetic(1_000_000, 22 * TB / 10).unwrap();
        assert_eq!(w.histogram.iter().map(|c| c.files).sum::<u64>(), 1_000_000);
        assert_eq!(w.histogram.iter().map(|c| c.bytes).sum::<u64>(), 22 * TB / 10);
        // Mostly 50 KB-5 MB, a tail to hundreds of MB.
        let between = |lo: f64, hi: f64| w.histogram.iter().filter(|c| (lo..hi).contains(&c.mean_bytes())).map(|c| c.files).sum::<u64>();
        assert!(between(50e3, 5e6) > 650_000, "{:?}", w.histogram);
        assert!(w.largest_file_bytes > 300_000_000 && w.largest_file_bytes < 1_000_000_000, "{}", w.largest_file_bytes);
        // A handful of files still adds up.
        let tiny = Workload::synthetic(3, 3_000_000).unwrap();
        assert_eq!((tiny.histogram.iter().map(|c| c.files).sum::<u64>(), tiny.histogram.iter().map(|c| c.bytes).sum::<u64>()), (3, 3_000_000));
        assert!(Workload::synthetic(0, 1).is_err());
    }

    #[test]
    fn the_issue_scenario_takes_the_hand_computed_wall_time() {
        let f = issue_scenario();
        // Every path writes the manifest twice (begin, record) at one write unit each, so the
        // new manifest table's 4,000 WRU/s allow 2,000 files/s; nothing else is that low.
        assert_eq!(f.wall.binding, Constraint::ManifestTableWrites, "{:#?}", f.wall.rate_limits);
        assert!((f.wall.files_per_s - 2000.0).abs() < 1e-6, "{}", f.wall.files_per_s);
        // Ramp: 5 workers + 5 a second until workers x per-worker rate = 2,000 files/s.
        let r = f.worker.files_per_s;
        let ramp = (2000.0 / r - 5.0) / 5.0;
        assert!((f.wall.ramp_s - ramp).abs() < 1e-9);
        // Files moved during the ramp: the area under r x (5 + 5t); the rest at 2,000 files/s.
        let during_ramp = r * (5.0 * ramp + 2.5 * ramp * ramp);
        let expected = ramp + (1_000_000.0 - during_ramp) / 2000.0;
        assert!((f.wall.seconds - expected).abs() < 1e-6, "{} vs {expected}", f.wall.seconds);
        // Which is 500 s plus about half the ramp.
        assert!(f.wall.seconds > 500.0 && f.wall.seconds < 500.0 + ramp, "{}", f.wall.seconds);
        assert!(f.targets[0].pass, "under 30 minutes");
        // Invocations: one per batch of ten.
        assert_eq!(f.lambda.invocations, 100_000.0);
        // The event source keeps adding workers up to 1,000 (in 199 s) while messages wait;
        // those the table cannot feed wait on it, billed: GB-s = their seconds x the billed
        // share of each cycle (not the 20 ms hand-off) x 1 GB.
        let worker_seconds = 5.0 * 199.0 + 2.5 * 199.0 * 199.0 + 1000.0 * (f.wall.seconds - 199.0);
        let billed_share = f.worker.batch_duration_s / (f.worker.batch_duration_s + 0.020);
        assert!((f.lambda.gb_seconds - worker_seconds * billed_share).abs() < 1e-9 * f.lambda.gb_seconds);
        assert!(f.lambda.gb_seconds > 5.0 * 100_000.0 * f.worker.batch_duration_s);
        assert!(f.warnings.iter().any(|w| w.contains(&format!("MaximumConcurrency {} gives the same wall time", (2000.0 / r).ceil()))), "{:?}", f.warnings);
        // The other way out: tables pre-warmed for all 1,000 workers.
        let units = (1000.0 / (2000.0 / r).ceil() * 4000.0).ceil();
        let allowed = TABLE_WARM_WRITE_UNITS.iter().find(|&&a| a as f64 >= units).expect("a template value suffices here");
        assert!(
            f.warnings.iter().any(|w| w.contains(&format!("({} WRU/s each): TableWarmWriteUnits {allowed} in the", grouped(units)))),
            "{:?}",
            f.warnings
        );
    }

    #[test]
    fn small_files_are_read_once_and_metered_with_the_minimum_read() {
        let d = Deployment::default();
        let f = forecast(&small_files(1000, 1_000_000), &d, &MEASURED, &Prices::US_EAST_1).unwrap();
        assert_eq!(f.efs.read_per_byte_moved, 1.0);
        // 4 metadata operations of 4 KiB on top of each 1 MB read.
        let expected = (1_000_000.0 + 4.0 * 4096.0) / 1_000_000.0;
        assert!((f.efs.metered_per_byte_moved - expected).abs() < 1e-12, "{}", f.efs.metered_per_byte_moved);
        // A 10 KB file is metered as a 32 KiB read.
        let tiny = forecast(&small_files(1000, 10_000), &d, &MEASURED, &Prices::US_EAST_1).unwrap();
        assert_eq!(tiny.efs.read_per_byte_moved, 1.0);
        assert!((tiny.efs.metered_per_byte_moved - (32768.0 + 16384.0) / 10_000.0).abs() < 1e-12);
    }

    #[test]
    fn large_files_are_staged_and_read_once_and_beyond_the_copy_limit_twice() {
        let w = small_files(100, 200_000_000);
        let d = Deployment::default();
        let staged = forecast(&w, &d, &MEASURED, &Prices::US_EAST_1).unwrap();
        assert_eq!(staged.efs.read_per_byte_moved, 1.0);
        let row = &staged.requests.by_path[1];
        assert_eq!((row.path.as_str(), row.files), ("staged+copy", 100.0));
        // 200 MB in 16 MiB parts: 12 parts plus create and complete at the staging prefix;
        // the copy to the account prefix; the staging copy deleted; nothing read back.
        assert_eq!(row.per_file.s3_staging_put_class, 14.0);
        assert_eq!((row.per_file.s3_put_class, row.per_file.s3_deletes, row.per_file.s3_get_class), (1.0, 1.0, 0.0));

        // The worker before staging read a large file twice: that costs twice the EFS reads.
        let two_reads = WorkerProfile { efs_reads_per_byte_multipart: 2.0, ..MEASURED };
        let before = forecast(&w, &d, &two_reads, &Prices::US_EAST_1).unwrap();
        assert_eq!(before.efs.read_per_byte_moved, 2.0);
        assert!(staged.bill.efs_reads < before.bill.efs_reads * 0.51);
        assert!(staged.wall.largest_file_latency_s < before.wall.largest_file_latency_s);

        // Beyond S3's 5 GiB copy limit: a hashing pass, then the upload, then a read-back.
        let huge = forecast(&small_files(2, 6_000_000_000), &Deployment { timeout_s: 900, ..d }, &MEASURED, &Prices::US_EAST_1).unwrap();
        assert_eq!(huge.efs.read_per_byte_moved, 2.0);
        let row = &huge.requests.by_path[2];
        assert_eq!((row.path.as_str(), row.files, row.per_file.s3_get_class), ("two-pass", 2.0, 1.0));
    }

    #[test]
    fn duplicates_lower_s3_puts_and_the_bill() {
        let mut w = Workload::synthetic(100_000, 220_000_000_000).unwrap();
        let d = Deployment::default();
        w.duplicate_fraction = 0.0;
        let none = forecast(&w, &d, &MEASURED, &Prices::US_EAST_1).unwrap();
        w.duplicate_fraction = 0.5;
        let half = forecast(&w, &d, &MEASURED, &Prices::US_EAST_1).unwrap();
        assert!(half.requests.totals.s3_put_class < none.requests.totals.s3_put_class * 0.51);
        assert!(half.bill.s3_requests < none.bill.s3_requests);
        assert!(half.bill.total < none.bill.total);
        // Duplicates are still read (to be hashed), once, like every file; a duplicate of
        // staged size is even uploaded to the staging key before the claim can tell.
        assert!((half.efs.data_bytes - none.efs.data_bytes).abs() < 1e-6 * none.efs.data_bytes);
        assert_eq!(half.efs.data_bytes.round(), w.bytes_found as f64);
        assert!(half.requests.totals.s3_staging_put_class == none.requests.totals.s3_staging_put_class);
    }

    #[test]
    fn doubling_concurrency_halves_wall_time_until_a_limit_binds() {
        let w = Workload::synthetic(1_000_000, 22 * TB / 10).unwrap();
        let at = |concurrency| {
            let d = Deployment { concurrency, ..Deployment::default() };
            forecast_with_limits(&w, &d, &MEASURED, &Prices::US_EAST_1, &NO_RAMP).unwrap()
        };
        let (ten, twenty) = (at(10), at(20));
        assert_eq!((ten.wall.binding, twenty.wall.binding), (Constraint::Workers, Constraint::Workers));
        assert!((ten.wall.seconds / twenty.wall.seconds - 2.0).abs() < 1e-9);
        // At 500 and 1,000 workers the manifest table's writes bind: no gain from doubling.
        let (five_hundred, thousand) = (at(500), at(1000));
        assert_eq!(thousand.wall.binding, Constraint::ManifestTableWrites);
        assert_eq!(five_hundred.wall.seconds, thousand.wall.seconds);
        // With warm tables, S3's PUTs into one account prefix bind; spread over 50 accounts,
        // EFS's read throughput.
        let warm = ServiceLimits { dynamodb_table_write_units_per_s: 40_000.0, ..NO_RAMP };
        let d = Deployment { concurrency: 1000, ..Deployment::default() };
        let warmed = forecast_with_limits(&w, &d, &MEASURED, &Prices::US_EAST_1, &warm).unwrap();
        assert_eq!(warmed.wall.binding, Constraint::S3PutRequests, "{:#?}", warmed.wall.rate_limits);
        assert!(warmed.wall.seconds < thousand.wall.seconds);
        let spread = Workload { accounts: 50, ..w.clone() };
        let spread = forecast_with_limits(&spread, &d, &MEASURED, &Prices::US_EAST_1, &warm).unwrap();
        assert_eq!(spread.wall.binding, Constraint::EfsReadThroughput, "{:#?}", spread.wall.rate_limits);
        let efs_rate = 20.0 * GIB / (spread.efs.metered_bytes / 1e6);
        assert!((spread.wall.seconds - 1e6 / efs_rate).abs() < 1e-6);
    }

    #[test]
    fn requests_per_file_are_the_paths_weighted_sum() {
        let mut w = Workload::synthetic(200_000, 440_000_000_000).unwrap();
        w.missing_or_rejected = 5_000;
        let f = forecast(&w, &Deployment::default(), &MEASURED, &Prices::US_EAST_1).unwrap();
        let files: f64 = f.requests.by_path.iter().map(|r| r.files).sum();
        assert!((files - 205_000.0).abs() < 1e-6);
        let weighted: f64 = f.requests.by_path.iter().map(|r| r.files * r.per_file.total()).sum::<f64>() / files;
        assert!((f.requests.per_file - weighted).abs() < 1e-9, "{} vs {weighted}", f.requests.per_file);
        // A single PUT: the worker's five requests (no read-back: S3 checked the SHA-256),
        // plus the queue's 0.1 send + 0.2 receive and delete at batches of ten, plus 0.01
        // BatchGetItem.
        let single = &f.requests.by_path[0].per_file;
        assert!((single.total() - 5.31).abs() < 1e-9, "{single:?}");
        let dead = &f.requests.by_path[4];
        assert_eq!(dead.files, 5_000.0);
        assert!((dead.per_file.total() - 3.31).abs() < 1e-9);
    }

    #[test]
    fn the_floor_is_below_the_bill_and_the_targets_are_checked() {
        let f = issue_scenario();
        assert!(f.floor.total > 0.0 && f.floor.total < f.bill.total);
        assert_eq!(f.targets.len(), 4);
        // The floor reads each byte once: 2.2 TB at $0.03 per GiB.
        assert!((f.floor.efs_reads - 2.2e12 / GIB * 0.03).abs() < 1e-9);
        // Each byte is read once; only EFS's metering of metadata adds to it.
        assert!(f.efs.read_per_byte_moved == 1.0 && f.efs.metered_per_byte_moved < 1.01 && f.targets[1].pass);
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["wall"]["binding"], "manifest_table_writes");
    }

    #[test]
    fn a_file_too_large_for_the_timeout_is_warned_about() {
        let mut w = small_files(10, 1_000_000);
        w.histogram.push(SizeClass { label: "huge".into(), max_bytes: 50_000_000_000, files: 1, bytes: 50_000_000_000 });
        w.files_found += 1;
        w.bytes_found += 50_000_000_000;
        w.largest_file_bytes = 50_000_000_000;
        let f = forecast(&w, &Deployment::default(), &MEASURED, &Prices::US_EAST_1).unwrap();
        assert_eq!(f.wall.binding, Constraint::LargestFile);
        assert!(f.warnings.iter().any(|w| w.contains("WorkerTimeout")), "{:?}", f.warnings);
    }

    #[test]
    fn a_dry_run_report_becomes_a_workload() {
        let mut report = DryRunReport {
            total: Tally { expected: 110, found: 100, missing: 7, rejected: 3, bytes: 90 * 500_000 + 10 * 15_000_000 },
            ..Default::default()
        };
        report.size_histogram.insert("< 1 MiB".into(), 90);
        report.size_histogram.insert("< 100 MiB".into(), 10);
        report.size_histogram_bytes.insert("< 1 MiB".into(), 90 * 500_000);
        report.size_histogram_bytes.insert("< 100 MiB".into(), 10 * 15_000_000);
        let w = Workload::from_dry_run(&report).unwrap();
        assert_eq!((w.files_found, w.missing_or_rejected, w.histogram.len()), (100, 10, 2));
        assert_eq!(w.histogram[1].mean_bytes(), 15_000_000.0);
        // Nine files of at least 10 MiB leave at most 150 MB - 9 x 10 MiB for the largest...
        assert_eq!(w.largest_file_bytes, 150_000_000 - 9 * 10 * 1024 * 1024);
        // ...and it is below 100 MiB in any case.
        let mut wide = report.clone();
        wide.total.bytes += 10 * 65_000_000;
        *wide.size_histogram_bytes.get_mut("< 100 MiB").unwrap() += 10 * 65_000_000;
        assert_eq!(Workload::from_dry_run(&wide).unwrap().largest_file_bytes, 100 * 1024 * 1024 - 1);

        // An older report without bytes per bucket: estimated, and said so.
        let mut old = report.clone();
        old.size_histogram_bytes.clear();
        let estimated = Workload::from_dry_run(&old).unwrap();
        assert_eq!(estimated.histogram.iter().map(|c| c.bytes).sum::<u64>(), report.total.bytes);
        assert!(estimated.basis.contains("estimated"));

        // Inconsistent figures are refused, not guessed around.
        let mut wrong = report.clone();
        wrong.total.found = 101;
        assert!(Workload::from_dry_run(&wrong).unwrap_err().0.contains("counts 100 files"));
        let mut unknown = report;
        unknown.size_histogram.insert("< 7 MiB".into(), 1);
        assert!(Workload::from_dry_run(&unknown).is_err());
        assert!(Workload::from_dry_run(&DryRunReport::default()).is_err());
    }

    #[test]
    fn the_dry_run_report_ends_with_a_short_forecast() {
        let mut report = DryRunReport {
            total: Tally { expected: 10, found: 10, missing: 0, rejected: 0, bytes: 10 * 300_000 },
            ..Default::default()
        };
        report.size_histogram.insert("< 1 MiB".into(), 10);
        report.size_histogram_bytes.insert("< 1 MiB".into(), 10 * 300_000);
        let text = report.render_text();
        let section = &text[text.find("Forecast at the template defaults (50 workers").expect("a forecast section")..];
        assert!(section.contains("wall time") && section.contains("bill $"), "{section}");
        // Nothing to forecast: said so, not hidden.
        assert!(DryRunReport::default().render_text().contains("not available: the dry-run report found no file to move"));
    }

    #[test]
    fn the_expected_slowest_of_a_batch() {
        // Half the records take 1 s, half 3 s: the slowest of two is 3 s unless both are fast.
        assert!((expected_max_latency(vec![(1.0, 1.0), (3.0, 1.0)], 2) - (0.25 * 1.0 + 0.75 * 3.0)).abs() < 1e-12);
        assert_eq!(expected_max_latency(vec![(2.0, 5.0)], 10), 2.0);
    }

    #[test]
    fn invalid_inputs_are_refused() {
        let w = small_files(10, 1000);
        let d = Deployment::default();
        let mut dup = w.clone();
        dup.duplicate_fraction = 1.0;
        assert!(forecast(&dup, &d, &MEASURED, &Prices::US_EAST_1).is_err());
        let zero = Deployment { batch_size: 0, ..d.clone() };
        assert!(forecast(&w, &zero, &MEASURED, &Prices::US_EAST_1).is_err());
        let tiny_memory = Deployment { memory_mb: 64, ..d };
        assert!(forecast(&w, &tiny_memory, &MEASURED, &Prices::US_EAST_1).is_err());
    }

    #[test]
    fn sizes_parse_in_decimal_and_binary_units() {
        assert_eq!(parse_size("2.2TB"), Ok(2_200_000_000_000));
        assert_eq!(parse_size("500GiB"), Ok(500 * 1024 * 1024 * 1024));
        assert_eq!(parse_size("1048576"), Ok(1_048_576));
        assert_eq!(parse_size("64 mib"), Ok(64 * 1024 * 1024));
        assert!(parse_size("2.2 XB").is_err());
        assert!(parse_size("-5GB").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn the_part_size_matches_the_worker() {
        let d = Deployment::default();
        let settings = crate::worker::WorkerSettings::default();
        for size in [0, 70 << 20, 5 << 30, 200 << 30] {
            assert_eq!(d.part_size_for(size), settings.part_size_for(size), "{size}");
        }
        assert_eq!((d.multipart_threshold, d.part_size), (settings.multipart_threshold, settings.part_size));
        assert_eq!(MEASURED.copy_limit_bytes, settings.server_side_copy_limit);
    }

    /// `Deployment::default()` is the template's defaults.
    #[test]
    fn the_defaults_are_the_templates() {
        let template = include_str!("../../template.yaml");
        let default_of = |parameter: &str| -> u64 {
            let start = template.find(&format!("\n  {parameter}:\n")).unwrap_or_else(|| panic!("{parameter} not in template.yaml")) + 1;
            // The parameter's block: the more-indented lines after its name.
            template[start..]
                .lines()
                .skip(1)
                .take_while(|l| l.starts_with("    "))
                .find_map(|l| l.trim_start().strip_prefix("Default:"))
                .unwrap_or_else(|| panic!("{parameter} has no default"))
                .trim()
                .parse()
                .unwrap()
        };
        let d = Deployment::default();
        assert_eq!(d.concurrency as u64, default_of("MaximumConcurrency"));
        assert_eq!(d.memory_mb as u64, default_of("WorkerMemorySize"));
        assert_eq!(d.batch_size as u64, default_of("BatchSize"));
        assert_eq!(d.record_concurrency as u64, default_of("RecordConcurrency"));
        assert_eq!(d.multipart_threshold, default_of("MultipartThresholdBytes"));
        assert_eq!(d.part_size, default_of("PartSizeBytes"));
        assert_eq!(d.part_concurrency as u64, default_of("PartConcurrency"));
        assert_eq!(d.timeout_s as u64, default_of("WorkerTimeout"));
        assert_eq!(d.lease_s as u64, default_of("LeaseSeconds"));
        assert_eq!(default_of("TableWarmWriteUnits"), 0, "the tables are not pre-warmed by default");
        let allowed = template[template.find("\n  TableWarmWriteUnits:\n").unwrap()..]
            .lines()
            .find_map(|l| l.trim_start().strip_prefix("AllowedValues: "))
            .expect("TableWarmWriteUnits lists its allowed values");
        let expected: Vec<String> = std::iter::once(0).chain(TABLE_WARM_WRITE_UNITS).map(|v| v.to_string()).collect();
        assert_eq!(allowed, format!("[{}]", expected.join(", ")));
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(grouped(1_234_567.4), "1,234,567");
        assert_eq!(grouped(999.0), "999");
        assert_eq!(decimal_bytes(2.2e12), "2.20 TB");
        assert_eq!(duration(521.6), "8 min 42 s");
        assert_eq!(duration(0.4321), "0.43 s");
        assert_eq!(duration(3_900.0), "1 h 05 min");
        assert_eq!(usd(1234.567), "$1,234.57");
        assert_eq!(usd(0.049), "$0.0490");
        assert_eq!(usd_cents(0.049), "$0.05");
    }
}
