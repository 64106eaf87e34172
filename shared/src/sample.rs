//! Deterministic sample data for the legacy DTX 1.0 system.
//!
//! [`generate`] builds a small but complete copy of production's shape: every legacy MySQL
//! table (created from the same DDL the binaries validate against), an EFS tree holding the
//! referenced files, and the Area 1-3 mapping CSVs (accounts, records, users). Alongside it
//! returns a [`SampleSummary`] stating, for every source file the migration will discover, what
//! the migration must end up doing with it, and ([`SampleSummary::records`]) what the record
//! loader must make of the certificate/document side. Tests and the CLI compare real migration
//! results against that summary.
//!
//! The record side (vendors, the full ACORD certificate row, certificate_status, documents with
//! their libraries, sets and statuses) is planned after the files, from an RNG of its own, so
//! it never changes a file, a path or an attachment. [`seed_target`] fills the DTX 2.0 stand-ins
//! of Areas 1-3 and 6 that the loader's foreign keys need, and [`write_coi_profile_mapping`]
//! writes Area 6's mapping when a test wants the phased COI-profile link to happen.
//!
//! Everything is derived from [`SampleSpec::seed`], so the same spec always yields byte-identical
//! files, identical rows and an identical summary.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use futures::stream::{self, StreamExt, TryStreamExt};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::query_builder::Separated;
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};

/// The legacy DDL; the generator creates its tables from exactly what the tool validates against.
use crate::legacy::LEGACY_DDL;

/// Rows per multi-row INSERT: large enough that 10k+ rows take a handful of round trips, small
/// enough to stay far below MySQL's 65 535 placeholder limit for the widest table (9 columns).
const INSERT_BATCH_ROWS: usize = 500;

/// File bytes are produced and written in chunks of this size so a large file is never held in
/// memory whole.
const WRITE_CHUNK_BYTES: usize = 1024 * 1024;

/// Name of the mapping file the migration reads from its mappings directory.
pub const ACCOUNT_MAPPING_FILE: &str = "id_mapping_accounts.csv";

/// Legacy customer `id` becomes new account `ACCOUNT_ID_OFFSET + id`.
const ACCOUNT_ID_OFFSET: u64 = 5000;

// Id ranges start far apart so that a migration bug that confuses one kind of id with another
// (a repo_file id used as an attachment id, say) resolves to nothing instead of to a wrong row.
// The first id allocated is `BASE + 1`, so `BASE` itself never names a row.
const CUSTOMER_ID_BASE: u32 = 100;
const CERTIFICATE_ID_BASE: u32 = 10_000;
const DOCUMENT_ID_BASE: u32 = 20_000;
const ATTACHMENT_ID_BASE: u32 = 30_000;
const REPO_FILE_ID_BASE: u32 = 40_000;

/// 2012-01-01T00:00:00Z and 2024-01-01T00:00:00Z: the legacy app's lifetime.
const CREATE_TIME_FROM: i64 = 1_325_376_000;
const CREATE_TIME_UNTIL: i64 = 1_704_067_200;

/// Scenario labels used in [`ExpectedFile::case`].
pub mod case {
    pub const GEN1: &str = "gen1";
    pub const GEN2: &str = "gen2";
    pub const GEN3: &str = "gen3";
    pub const CONSTRUCTED: &str = "constructed";
    pub const FILEREPO: &str = "filerepo";
    pub const LOGO: &str = "logo";
    pub const MISSING: &str = "missing";
    pub const ZERO_BYTE: &str = "zero-byte";
    pub const DUP_SAME_TENANT: &str = "dup-same-tenant";
    pub const DUP_CROSS_TENANT: &str = "dup-cross-tenant";
    pub const SPACE_NAME: &str = "space-name";
    pub const UNICODE_NAME: &str = "unicode-name";
    pub const PERCENT_NAME: &str = "percent-name";
    pub const PERCENT_ENCODED: &str = "percent-encoded";
    pub const LARGE: &str = "large";
    pub const SYMLINK_ESCAPE: &str = "symlink-escape";
    pub const UNMAPPED_ACCOUNT: &str = "unmapped-account";
    pub const FALLBACK_CONSTRUCTED: &str = "fallback-constructed";
    pub const MULTI_REPO_PRIMARY: &str = "multi-repo-primary";
    pub const MULTI_REPO_SECONDARY: &str = "multi-repo-secondary";
    pub const NULL_FILEPATH: &str = "null-filepath";
    pub const DANGLING_ATTACHMENT_REF: &str = "dangling-attachment-ref";
}

/// `why` of [`ExpectedOutcome::Rejected`] for a file whose customer has no mapping row.
pub const WHY_UNMAPPED_ACCOUNT: &str = "unmapped account";
/// `why` of [`ExpectedOutcome::Rejected`] for a file that resolves outside the EFS root.
pub const WHY_ESCAPES_ROOT: &str = "escapes root";

/// How much sample data to generate.
#[derive(Debug, Clone, Serialize)]
pub struct SampleSpec {
    pub seed: u64,
    /// Customers (tenants); the last one is deliberately left out of the account mapping.
    pub customers: u32,
    /// `certificate` rows, including a few with no attachment.
    pub certificates: u32,
    /// `document` rows.
    pub documents: u32,
    /// `repo_file` rows with no attachment, stored under `filerepo/`.
    pub filerepo_files: u32,
    /// Size of the one large certificate attachment; 0 leaves it out.
    pub large_file_bytes: u64,
    /// Small files get random sizes from 1 KiB up to this, skewed towards small.
    pub max_small_file_bytes: u64,
    /// `vendor` rows per customer (at least 3: one with certificates, one whose certificates
    /// go to the unmapped vendor in the first customer, one with requirements but no
    /// certificates).
    pub vendors_per_customer: u32,
}

impl Default for SampleSpec {
    fn default() -> Self {
        Self {
            seed: 1,
            customers: 6,
            certificates: 120,
            documents: 60,
            filerepo_files: 40,
            // Just above the 64 MiB multipart threshold, so the multipart upload path runs.
            large_file_bytes: 70 * 1024 * 1024,
            max_small_file_bytes: 256 * 1024,
            vendors_per_customer: 4,
        }
    }
}

/// What was generated and what the migration is expected to do with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SampleSummary {
    /// Every source file the migration should discover, by source key
    /// (`attachment:<id>`, `repo_file:<id>`, `logo:<customer_id>`).
    pub expected: BTreeMap<String, ExpectedFile>,
    /// Files on disk (relative to the EFS root) that no row references.
    pub orphan_files: Vec<String>,
    pub legacy_rows: LegacyRowCounts,
    /// Customers deliberately missing from the account mapping CSV.
    pub unmapped_customer_ids: Vec<u64>,
    /// The record side: the Area 1-3/6 stand-ins and what the record loader must make of the
    /// certificate/document tables.
    #[serde(default)]
    pub records: RecordsSummary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LegacyRowCounts {
    pub customers: u64,
    pub certificates: u64,
    pub documents: u64,
    pub attachments: u64,
    pub repo_files: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpectedFile {
    pub source_key: String,
    /// "certificates" | "documents" | "filerepo" | "logos"
    pub area: &'static str,
    pub outcome: ExpectedOutcome,
    /// The new account id; `None` when the customer is unmapped.
    pub account_id: Option<String>,
    /// Where the file's directory entry is, relative to the EFS root: the bytes for a present
    /// file (also when it is rejected for an unmapped account), the symlink itself for a file
    /// that escapes the root. `None` when nothing is on disk.
    pub relative_path: Option<String>,
    /// The scenario that produced this file, one of the [`case`] constants.
    pub case: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExpectedOutcome {
    /// Migrated, with exactly these bytes.
    Present { sha256_hex: String, size: u64 },
    /// Referenced, but no file exists at any path the migration probes.
    Missing,
    /// Found but refused; `why` is [`WHY_UNMAPPED_ACCOUNT`] or [`WHY_ESCAPES_ROOT`].
    Rejected { why: &'static str },
}

#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("legacy database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("{path}: {source}")]
    IoAt {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("account mapping csv: {0}")]
    Csv(#[from] csv::Error),
    #[error("file writer task: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("invalid sample spec: {0}")]
    InvalidSpec(String),
    #[error("invalid output location: {0}")]
    InvalidLocation(String),
    #[error("sample generator inconsistency: {0}")]
    Inconsistent(String),
    #[error("target database: {0}")]
    Target(#[source] sqlx::Error),
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> SampleError + '_ {
    move |source| SampleError::IoAt {
        path: path.to_path_buf(),
        source,
    }
}

/// Wipes and regenerates the legacy tables in `legacy`, the tree under `efs_root` and
/// `mappings_dir/id_mapping_accounts.csv`, and returns what the migration should make of it.
///
/// Only entries inside `efs_root` are removed. One file is written next to `efs_root` (in its
/// parent directory) as the target of the root-escaping symlink.
pub async fn generate(
    legacy: &MySqlPool,
    efs_root: &Path,
    mappings_dir: &Path,
    spec: &SampleSpec,
) -> Result<SampleSummary, SampleError> {
    let plan = Planner::new(spec)?.plan()?;

    let (root, mappings_dir) = prepare_locations(efs_root, mappings_dir).await?;
    let written = write_tree(&root, &plan).await?;
    write_legacy_tables(legacy, &plan).await?;
    write_account_mapping(&mappings_dir, &plan.customers).await?;

    let summary = plan.summarize(&written)?;
    tracing::info!(
        seed = spec.seed,
        sources = summary.expected.len(),
        orphans = summary.orphan_files.len(),
        attachments = summary.legacy_rows.attachments,
        repo_files = summary.legacy_rows.repo_files,
        "sample data generated"
    );
    Ok(summary)
}

// ---------------------------------------------------------------------------------------------
// Plan: every row, file and expectation, decided up front from the seed alone.
// ---------------------------------------------------------------------------------------------

/// Legacy path generations found in `repo_file.repo_filepath`; all map onto the EFS root.
#[derive(Debug, Clone, Copy)]
enum Generation {
    One,
    Two,
    Three,
}

impl Generation {
    fn prefix(self) -> &'static str {
        match self {
            Self::One => "/home/wwwriskt/public_html/",
            Self::Two => "/home/wwwriskt/public_html/www1/",
            Self::Three => "/efsdata/",
        }
    }

    fn case(self) -> &'static str {
        match self {
            Self::One => case::GEN1,
            Self::Two => case::GEN2,
            Self::Three => case::GEN3,
        }
    }

    fn path(self, relative: &str) -> String {
        format!("{}{relative}", self.prefix())
    }
}

/// How an attachment is referenced from `repo_file`.
#[derive(Debug, Clone, Copy)]
enum Refs {
    /// No repo_file: the migration constructs the path.
    Constructed,
    /// One repo_file with this generation's path.
    Path(Generation),
    /// One repo_file whose repo_filepath is NULL.
    NullPath,
    /// One repo_file whose repo_filepath names a file that does not exist.
    StalePath,
    /// A primary repo_file plus two more: one with the identical path string and one with the
    /// same file under another generation's prefix.
    Multi {
        primary: Generation,
        other: Generation,
    },
}

#[derive(Debug, Clone, Copy)]
enum Parent {
    Certificate,
    Document,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContentKind {
    Pdf,
    Png,
    /// docx / xlsx are zip containers.
    Zip,
    Text,
}

impl ContentKind {
    fn for_name(name: &str) -> Self {
        let lower = name.to_lowercase();
        if lower.ends_with(".pdf") {
            Self::Pdf
        } else if lower.ends_with(".png") {
            Self::Png
        } else if lower.ends_with(".docx") || lower.ends_with(".xlsx") {
            Self::Zip
        } else {
            Self::Text
        }
    }

    /// Magic bytes so the files look like what their names say to anything that sniffs them.
    fn header(self) -> &'static [u8] {
        match self {
            Self::Pdf => b"%PDF-1.4\n",
            Self::Png => b"\x89PNG\r\n\x1a\n",
            Self::Zip => b"PK\x03\x04",
            Self::Text => b"",
        }
    }
}

/// File bytes: `kind`'s header followed by bytes from an RNG seeded with `seed`, `size` in all.
/// Two files with equal `Content` have identical bytes, which is how duplicates are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Content {
    seed: u64,
    size: u64,
    kind: ContentKind,
}

/// What is on disk where a source file's bytes should be.
#[derive(Debug, Clone, Copy)]
enum Disk {
    File(Content),
    Absent,
    /// A symlink to a file outside the EFS root.
    EscapeSymlink,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DiskState {
    File,
    Absent,
    EscapeSymlink,
}

impl Disk {
    fn state(self) -> DiskState {
        match self {
            Self::File(_) => DiskState::File,
            Self::Absent => DiskState::Absent,
            Self::EscapeSymlink => DiskState::EscapeSymlink,
        }
    }
}

struct AttachmentPlan {
    parent: Parent,
    customer: usize,
    /// `attachment.name`.
    db_name: String,
    /// Name on disk when it differs from `db_name` (the percent-encoded case).
    disk_name: Option<String>,
    refs: Refs,
    disk: Disk,
    case: &'static str,
}

/// An expectation before the file digests are known.
struct Draft {
    key: String,
    area: &'static str,
    customer: usize,
    relative_path: String,
    state: DiskState,
    case: &'static str,
}

#[derive(Debug, Clone)]
struct CustomerRow {
    id: u32,
    name: String,
    logo: Option<String>,
    mapped: bool,
}

#[derive(Debug, Clone)]
struct CertificateRow {
    id: u32,
    customer_id: Option<u32>,
    vendor_id: Option<u32>,
    attachment_id: Option<u32>,
    create_time: NaiveDateTime,
}

#[derive(Debug, Clone)]
struct DocumentRow {
    id: u32,
    customer_id: Option<u32>,
    vendor_id: Option<u32>,
    attachment_id: Option<u32>,
    name: Option<String>,
    create_time: NaiveDateTime,
}

#[derive(Debug, Clone)]
struct AttachmentRow {
    id: u32,
    name: Option<String>,
    certificate_id: Option<u32>,
    document_id: Option<u32>,
    create_time: NaiveDateTime,
}

#[derive(Debug, Clone)]
struct RepoFileRow {
    id: u32,
    repo_filepath: Option<String>,
    treatment: Option<&'static str>,
    status: Option<&'static str>,
    upload_src: Option<&'static str>,
    certificate_id: Option<u32>,
    document_id: Option<u32>,
    attachment_id: Option<u32>,
    customer_id: Option<u32>,
}

/// Links a repo_file row to the rest of the legacy data.
#[derive(Debug, Clone, Copy)]
struct RepoLink {
    certificate_id: Option<u32>,
    document_id: Option<u32>,
    attachment_id: Option<u32>,
    customer_id: u32,
    treatment: &'static str,
}

struct Plan {
    customers: Vec<CustomerRow>,
    certificates: Vec<CertificateRow>,
    documents: Vec<DocumentRow>,
    attachments: Vec<AttachmentRow>,
    repo_files: Vec<RepoFileRow>,
    /// Regular files to write, by path relative to the root.
    files: BTreeMap<String, Content>,
    /// Symlinks (relative to the root) to create pointing outside the root.
    escape_symlinks: Vec<String>,
    orphans: Vec<String>,
    drafts: Vec<Draft>,
}

struct Planner<'a> {
    spec: &'a SampleSpec,
    rng: StdRng,
    plan: Plan,
    next_certificate_id: u32,
    next_document_id: u32,
    next_attachment_id: u32,
    next_repo_file_id: u32,
}

const CUSTOMER_NAMES: &[&str] = &[
    "Northwind Logistics",
    "Hartmann & Söhne GmbH",
    "Blue Ridge Property Mgmt",
    "Contoso Builders",
    "Pacific Crest Realty",
    "Summit Facilities Group",
    "Lakeside Medical Partners",
    "Ironwood Construction",
];

const VENDOR_NAMES: &[&str] = &[
    "Apex Plumbing",
    "Delta Electric",
    "Greenway Landscaping",
    "Metro HVAC",
    "Sterling Roofing",
    "Keystone Janitorial",
    "Harbor Security",
    "Redline Paving",
];

const REPO_STATUSES: &[&str] = &[
    "SUBMITTED",
    "SUBMITTED",
    "SUBMITTED",
    "IN_REVIEW",
    "MANUAL_ENTRY",
    "DELETED",
];
const UPLOAD_SOURCES: &[&str] = &["DnD", "DnD", "Broker", "Email"];

fn pick<'s, T: ?Sized>(rng: &mut StdRng, items: &[&'s T]) -> &'s T {
    items[rng.random_range(0..items.len())]
}

impl<'a> Planner<'a> {
    fn new(spec: &'a SampleSpec) -> Result<Self, SampleError> {
        // Mapped customers 0 and 1 host the single-tenant and cross-tenant scenarios, and the
        // logo pattern needs a present, a NULL and a missing logo among the mapped ones; the
        // last customer is the unmapped one.
        if spec.customers < 4 {
            return Err(SampleError::InvalidSpec(format!(
                "customers must be at least 4, got {}",
                spec.customers
            )));
        }
        Ok(Self {
            spec,
            rng: StdRng::seed_from_u64(spec.seed),
            plan: Plan {
                customers: Vec::new(),
                certificates: Vec::new(),
                documents: Vec::new(),
                attachments: Vec::new(),
                repo_files: Vec::new(),
                files: BTreeMap::new(),
                escape_symlinks: Vec::new(),
                orphans: Vec::new(),
                drafts: Vec::new(),
            },
            next_certificate_id: CERTIFICATE_ID_BASE,
            next_document_id: DOCUMENT_ID_BASE,
            next_attachment_id: ATTACHMENT_ID_BASE,
            next_repo_file_id: REPO_FILE_ID_BASE,
        })
    }

    fn plan(mut self) -> Result<Plan, SampleError> {
        self.plan_customers();
        let certificate_dir = self.plan_certificates()?;
        self.plan_documents()?;
        self.plan_filerepo()?;
        self.plan_orphans(&certificate_dir);
        Ok(self.plan)
    }

    // -- customers and logos -------------------------------------------------------------

    fn plan_customers(&mut self) {
        let count = self.spec.customers as usize;
        for index in 0..count {
            let id = CUSTOMER_ID_BASE + 1 + index as u32;
            let base = CUSTOMER_NAMES[index % CUSTOMER_NAMES.len()];
            let name = if index < CUSTOMER_NAMES.len() {
                base.to_owned()
            } else {
                format!("{base} {}", index / CUSTOMER_NAMES.len() + 1)
            };
            let mapped = index + 1 < count;
            let first_word = name.split_whitespace().next().unwrap_or("customer");
            let logo_name = if index % 2 == 0 {
                format!("logo_{id}_{}.png", first_word.to_lowercase())
            } else {
                format!("{first_word} Logo {id}.png")
            };
            // Mapped customers cycle through: logo on disk, NULL, logo missing from disk, ''.
            // The unmapped customer always has one, so its rejection is observable.
            let (logo, disk) = match (mapped, index % 4) {
                (false, _) | (true, 0) => (Some(logo_name), Some(true)),
                (true, 1) => (None, None),
                (true, 2) => (Some(logo_name), Some(false)),
                _ => (Some(String::new()), None),
            };
            if let (Some(logo), Some(on_disk)) = (&logo, disk) {
                let relative_path = format!("logos/{logo}");
                let (state, case) = if on_disk {
                    let content = self.small_content(ContentKind::Png);
                    self.plan.files.insert(relative_path.clone(), content);
                    (DiskState::File, case::LOGO)
                } else {
                    (DiskState::Absent, case::MISSING)
                };
                self.plan.drafts.push(Draft {
                    key: format!("logo:{id}"),
                    area: "logos",
                    customer: index,
                    relative_path,
                    state,
                    case,
                });
            }
            self.plan.customers.push(CustomerRow {
                id,
                name,
                logo,
                mapped,
            });
        }
    }

    // -- certificates --------------------------------------------------------------------

    /// Returns the directory of one certificate with a present file, for an orphan sibling.
    fn plan_certificates(&mut self) -> Result<String, SampleError> {
        use Generation::{One, Three, Two};
        let (m0, m1) = (0, 1);
        let start = self.plan.certificates.len();
        let missing = (self.spec.certificates / 30).max(2);

        if self.spec.large_file_bytes > 0 {
            let content = Content {
                seed: self.rng.random(),
                size: self.spec.large_file_bytes,
                kind: ContentKind::Pdf,
            };
            self.special_certificate(
                m0,
                "Full Policy Scan 2021.pdf",
                Refs::Path(Three),
                Disk::File(content),
                case::LARGE,
            );
        }
        self.special_certificate(
            m0,
            "coi_link.pdf",
            Refs::Constructed,
            Disk::EscapeSymlink,
            case::SYMLINK_ESCAPE,
        );
        let disk = self.small_disk("x.pdf");
        self.add_attachment(AttachmentPlan {
            parent: Parent::Certificate,
            customer: m1,
            db_name: "Policy%20Renewal.pdf".to_owned(),
            disk_name: Some("Policy Renewal.pdf".to_owned()),
            refs: Refs::Constructed,
            disk,
            case: case::PERCENT_ENCODED,
        });
        let disk = self.small_disk("x.pdf");
        self.special_certificate(
            m0,
            "100% complete.pdf",
            Refs::Path(Two),
            disk,
            case::PERCENT_NAME,
        );
        let disk = self.small_disk("x.pdf");
        self.special_certificate(
            m1,
            "Zertifikat Müller – 2019.pdf",
            Refs::Path(One),
            disk,
            case::UNICODE_NAME,
        );
        let disk = self.small_disk("x.pdf");
        self.special_certificate(
            m0,
            "Certificate of Insurance 2020 - Final Copy.pdf",
            Refs::Path(Three),
            disk,
            case::SPACE_NAME,
        );
        let disk = self.small_disk("x.pdf");
        self.special_certificate(
            m0,
            "COI_renewal_2017.pdf",
            Refs::StalePath,
            disk,
            case::FALLBACK_CONSTRUCTED,
        );
        let disk = self.small_disk("x.pdf");
        self.special_certificate(
            m1,
            "ACORD25_2016.pdf",
            Refs::NullPath,
            disk,
            case::NULL_FILEPATH,
        );
        let disk = self.small_disk("x.pdf");
        self.special_certificate(
            m0,
            "Apex Plumbing COI 2015.pdf",
            Refs::Multi {
                primary: One,
                other: Three,
            },
            disk,
            case::MULTI_REPO_PRIMARY,
        );
        let empty = Disk::File(Content {
            seed: 0,
            size: 0,
            kind: ContentKind::Pdf,
        });
        self.special_certificate(
            m1,
            "blank_upload.pdf",
            Refs::Path(Two),
            empty,
            case::ZERO_BYTE,
        );

        // The same bytes twice in tenant m0 (certificate here, document and filerepo below) and
        // once in tenant m1: dedup must stay within a tenant.
        let shared = self.shared_content();
        let (_, dup_dir) = self.special_certificate(
            m0,
            "COI 2022.pdf",
            Refs::Path(One),
            Disk::File(shared),
            case::DUP_SAME_TENANT,
        );
        self.special_certificate(
            m1,
            "certificate.pdf",
            Refs::Path(Three),
            Disk::File(shared),
            case::DUP_CROSS_TENANT,
        );

        for i in 0..missing {
            let refs = if i % 2 == 0 {
                Refs::Constructed
            } else {
                Refs::Path(One)
            };
            let name = self.certificate_file_name();
            let customer = self.mapped_customer(i as usize);
            self.special_certificate(customer, &name, refs, Disk::Absent, case::MISSING);
        }

        // Certificates entered manually have no attachment and are not source files. One of
        // them still has a repo_file whose attachment_id names no attachment row; that
        // repo_file is then a source of its own.
        self.certificate_without_attachment(m0);
        let orphaned = self.certificate_without_attachment(m1);
        let name = "COI scan (reuploaded).pdf";
        let relative_path = format!("attachments/certificate_management/{orphaned}/{name}");
        let content = self.small_content(ContentKind::Pdf);
        self.plan.files.insert(relative_path.clone(), content);
        let repo_file_id = self.push_repo_file(
            Some(Generation::Three.path(&relative_path)),
            RepoLink {
                certificate_id: Some(orphaned),
                document_id: None,
                attachment_id: Some(ATTACHMENT_ID_BASE),
                customer_id: self.plan.customers[m1].id,
                treatment: "COI_MANUAL",
            },
        );
        self.plan.drafts.push(Draft {
            key: format!("repo_file:{repo_file_id}"),
            area: "certificates",
            customer: m1,
            relative_path,
            state: DiskState::File,
            case: case::DANGLING_ATTACHMENT_REF,
        });

        self.baseline_attachments(Parent::Certificate);

        let used = (self.plan.certificates.len() - start) as u32;
        let regular = self.spec.certificates.checked_sub(used).ok_or_else(|| {
            SampleError::InvalidSpec(format!(
                "certificates must be at least {used} to hold every scenario, got {}",
                self.spec.certificates
            ))
        })?;
        for _ in 0..regular {
            self.regular_attachment(Parent::Certificate);
        }
        Ok(dup_dir)
    }

    fn special_certificate(
        &mut self,
        customer: usize,
        name: &str,
        refs: Refs,
        disk: Disk,
        case: &'static str,
    ) -> (u32, String) {
        self.add_attachment(AttachmentPlan {
            parent: Parent::Certificate,
            customer,
            db_name: name.to_owned(),
            disk_name: None,
            refs,
            disk,
            case,
        })
    }

    fn certificate_without_attachment(&mut self, customer: usize) -> u32 {
        self.next_certificate_id += 1;
        let id = self.next_certificate_id;
        let row = CertificateRow {
            id,
            customer_id: Some(self.plan.customers[customer].id),
            vendor_id: self.vendor_id(),
            attachment_id: None,
            create_time: self.create_time(),
        };
        self.plan.certificates.push(row);
        id
    }

    // -- documents -----------------------------------------------------------------------

    fn plan_documents(&mut self) -> Result<(), SampleError> {
        use Generation::{One, Three, Two};
        let (m0, m1) = (0, 1);
        let start = self.plan.documents.len();
        let missing = (self.spec.documents / 30).max(2);

        let disk = self.small_disk("x.pdf");
        self.special_document(
            m0,
            "保险证书.pdf",
            Refs::Path(Three),
            disk,
            case::UNICODE_NAME,
        );
        let disk = self.small_disk("x.pdf");
        self.special_document(
            m1,
            "W-9 2018.pdf",
            Refs::StalePath,
            disk,
            case::FALLBACK_CONSTRUCTED,
        );
        let disk = self.small_disk("x.pdf");
        self.special_document(
            m1,
            "Master Service Agreement.pdf",
            Refs::Multi {
                primary: Two,
                other: One,
            },
            disk,
            case::MULTI_REPO_PRIMARY,
        );
        let empty = Disk::File(Content {
            seed: 0,
            size: 0,
            kind: ContentKind::Pdf,
        });
        self.special_document(m0, "empty.pdf", Refs::Constructed, empty, case::ZERO_BYTE);
        let shared = self.shared_content();
        self.special_document(
            m0,
            "Insurance Certificate (copy).pdf",
            Refs::Path(Two),
            Disk::File(shared),
            case::DUP_SAME_TENANT,
        );
        for i in 0..missing {
            let refs = if i % 2 == 0 {
                Refs::Path(Two)
            } else {
                Refs::Constructed
            };
            let name = self.document_file_name();
            let customer = self.mapped_customer(i as usize + 1);
            self.special_document(customer, &name, refs, Disk::Absent, case::MISSING);
        }

        self.baseline_attachments(Parent::Document);

        let used = (self.plan.documents.len() - start) as u32;
        let regular = self.spec.documents.checked_sub(used).ok_or_else(|| {
            SampleError::InvalidSpec(format!(
                "documents must be at least {used} to hold every scenario, got {}",
                self.spec.documents
            ))
        })?;
        for _ in 0..regular {
            self.regular_attachment(Parent::Document);
        }
        Ok(())
    }

    fn special_document(
        &mut self,
        customer: usize,
        name: &str,
        refs: Refs,
        disk: Disk,
        case: &'static str,
    ) {
        self.add_attachment(AttachmentPlan {
            parent: Parent::Document,
            customer,
            db_name: name.to_owned(),
            disk_name: None,
            refs,
            disk,
            case,
        });
    }

    // -- file repository -----------------------------------------------------------------

    fn plan_filerepo(&mut self) -> Result<(), SampleError> {
        let (m0, m1) = (0, 1);
        let missing = (self.spec.filerepo_files / 20).max(2);
        let mut used = 0u32;

        let shared = self.shared_content();
        self.add_filerepo_file(
            m0,
            "COI backup.pdf",
            Disk::File(shared),
            case::DUP_SAME_TENANT,
        );
        let empty = Disk::File(Content {
            seed: 0,
            size: 0,
            kind: ContentKind::Text,
        });
        self.add_filerepo_file(m1, "notes.txt", empty, case::ZERO_BYTE);
        used += 2;
        for i in 0..missing {
            let name = self.filerepo_file_name();
            let customer = self.mapped_customer(i as usize);
            self.add_filerepo_file(customer, &name, Disk::Absent, case::MISSING);
            used += 1;
        }

        let regular = self.spec.filerepo_files.checked_sub(used).ok_or_else(|| {
            SampleError::InvalidSpec(format!(
                "filerepo_files must be at least {used} to hold every scenario, got {}",
                self.spec.filerepo_files
            ))
        })?;
        let unmapped = self.plan.customers.len() - 1;
        for i in 0..regular {
            // The first two land in a mapped and the unmapped tenant, so both kinds of outcome
            // occur whatever the random draws.
            let customer = match i {
                0 => m0,
                1 => unmapped,
                _ => self.rng.random_range(0..self.plan.customers.len()),
            };
            let name = self.filerepo_file_name();
            let disk = self.small_disk(&name);
            self.add_filerepo_file(customer, &name, disk, case::FILEREPO);
        }
        Ok(())
    }

    fn add_filerepo_file(&mut self, customer: usize, name: &str, disk: Disk, case: &'static str) {
        let customer_id = self.plan.customers[customer].id;
        // The directory is named after the repo_file id, which is only known once allocated.
        let id = self.next_repo_file_id + 1;
        let relative_path = format!("filerepo/{customer_id}/{id}/{name}");
        let allocated = self.push_repo_file(
            Some(Generation::Three.path(&relative_path)),
            RepoLink {
                certificate_id: None,
                document_id: None,
                attachment_id: None,
                customer_id,
                treatment: "DOC",
            },
        );
        debug_assert_eq!(allocated, id);
        if let Disk::File(content) = disk {
            self.plan.files.insert(relative_path.clone(), content);
        }
        self.plan.drafts.push(Draft {
            key: format!("repo_file:{id}"),
            area: "filerepo",
            customer,
            relative_path,
            state: disk.state(),
            case,
        });
    }

    // -- orphans -------------------------------------------------------------------------

    fn plan_orphans(&mut self, certificate_dir: &str) {
        let m0 = self.plan.customers[0].id;
        let m1 = self.plan.customers[1].id;
        // The BASE ids are never allocated, so these directories belong to no row.
        let orphans = [
            format!("{certificate_dir}/old_scan_0001.pdf"),
            format!("attachments/certificate_management/{CERTIFICATE_ID_BASE}/orphaned COI.pdf"),
            format!("attachments/document_management/{m0}/{DOCUMENT_ID_BASE}/draft agreement.pdf"),
            format!("filerepo/{m1}/{REPO_FILE_ID_BASE}/Vendor List (old).xlsx"),
            "logos/old_logo_2015.png".to_owned(),
        ];
        for relative_path in orphans {
            let content = self.small_content(ContentKind::for_name(&relative_path));
            self.plan.files.insert(relative_path.clone(), content);
            self.plan.orphans.push(relative_path);
        }
    }

    // -- shared building blocks ----------------------------------------------------------

    /// One present file per reference style in mapped tenants, and one in the unmapped tenant,
    /// so every style and the unmapped rejection occur however few rows are random.
    fn baseline_attachments(&mut self, parent: Parent) {
        let styles = [
            Refs::Path(Generation::One),
            Refs::Path(Generation::Two),
            Refs::Path(Generation::Three),
            Refs::Constructed,
        ];
        for (i, refs) in styles.into_iter().enumerate() {
            let customer = self.mapped_customer(i);
            self.attachment_with(parent, customer, refs);
        }
        let unmapped = self.plan.customers.len() - 1;
        let refs = self.random_refs();
        self.attachment_with(parent, unmapped, refs);
    }

    fn regular_attachment(&mut self, parent: Parent) {
        let customer = self.rng.random_range(0..self.plan.customers.len());
        let refs = self.random_refs();
        self.attachment_with(parent, customer, refs);
    }

    fn random_refs(&mut self) -> Refs {
        match self.rng.random_range(0..100) {
            0..30 => Refs::Path(Generation::One),
            30..55 => Refs::Path(Generation::Two),
            55..80 => Refs::Path(Generation::Three),
            _ => Refs::Constructed,
        }
    }

    fn attachment_with(&mut self, parent: Parent, customer: usize, refs: Refs) {
        let name = match parent {
            Parent::Certificate => self.certificate_file_name(),
            Parent::Document => self.document_file_name(),
        };
        let case = match refs {
            Refs::Path(generation) => generation.case(),
            _ => case::CONSTRUCTED,
        };
        let disk = self.small_disk(&name);
        self.add_attachment(AttachmentPlan {
            parent,
            customer,
            db_name: name,
            disk_name: None,
            refs,
            disk,
            case,
        });
    }

    /// Adds the certificate or document, its attachment, its repo_file rows, its file and the
    /// expectations. Returns the attachment id and the directory (relative to the root).
    fn add_attachment(&mut self, plan: AttachmentPlan) -> (u32, String) {
        let customer_id = self.plan.customers[plan.customer].id;
        self.next_attachment_id += 1;
        let attachment_id = self.next_attachment_id;
        let create_time = self.create_time();
        let vendor_id = self.vendor_id();

        let (dir, area, certificate_id, document_id, treatment) = match plan.parent {
            Parent::Certificate => {
                self.next_certificate_id += 1;
                let id = self.next_certificate_id;
                self.plan.certificates.push(CertificateRow {
                    id,
                    customer_id: Some(customer_id),
                    vendor_id,
                    attachment_id: Some(attachment_id),
                    create_time,
                });
                let treatment = if self.rng.random_bool(0.5) {
                    "COI_OCR"
                } else {
                    "COI_MANUAL"
                };
                (
                    format!("attachments/certificate_management/{id}"),
                    "certificates",
                    Some(id),
                    None,
                    treatment,
                )
            }
            Parent::Document => {
                self.next_document_id += 1;
                let id = self.next_document_id;
                let title = plan
                    .db_name
                    .rsplit_once('.')
                    .map_or(plan.db_name.as_str(), |(stem, _)| stem)
                    .to_owned();
                self.plan.documents.push(DocumentRow {
                    id,
                    customer_id: Some(customer_id),
                    vendor_id,
                    attachment_id: Some(attachment_id),
                    name: Some(title),
                    create_time,
                });
                (
                    format!("attachments/document_management/{customer_id}/{id}"),
                    "documents",
                    None,
                    Some(id),
                    "DOC",
                )
            }
        };
        // Uploads land a few seconds to an hour after the record is created.
        let uploaded = create_time + TimeDelta::seconds(self.rng.random_range(1..3600));
        self.plan.attachments.push(AttachmentRow {
            id: attachment_id,
            name: Some(plan.db_name.clone()),
            certificate_id,
            document_id,
            create_time: uploaded,
        });

        let db_relative = format!("{dir}/{}", plan.db_name);
        let disk_relative = format!(
            "{dir}/{}",
            plan.disk_name.as_deref().unwrap_or(&plan.db_name)
        );
        match plan.disk {
            Disk::File(content) => {
                self.plan.files.insert(disk_relative.clone(), content);
            }
            Disk::EscapeSymlink => self.plan.escape_symlinks.push(disk_relative.clone()),
            Disk::Absent => {}
        }

        let link = RepoLink {
            certificate_id,
            document_id,
            attachment_id: Some(attachment_id),
            customer_id,
            treatment,
        };
        let mut secondaries = Vec::new();
        match plan.refs {
            Refs::Constructed => {}
            Refs::Path(generation) => {
                self.push_repo_file(Some(generation.path(&db_relative)), link);
            }
            Refs::NullPath => {
                self.push_repo_file(None, link);
            }
            Refs::StalePath => {
                // An older upload's name that was never on this EFS: the migration must fall
                // back to the constructed path, where the file is.
                let stale = format!("{dir}/superseded-{}", plan.db_name);
                self.push_repo_file(Some(Generation::One.path(&stale)), link);
            }
            Refs::Multi { primary, other } => {
                // Allocated first, so the primary has the lowest id.
                self.push_repo_file(Some(primary.path(&db_relative)), link);
                secondaries.push(self.push_repo_file(Some(primary.path(&db_relative)), link));
                secondaries.push(self.push_repo_file(Some(other.path(&db_relative)), link));
            }
        }

        let state = plan.disk.state();
        for repo_file_id in secondaries {
            self.plan.drafts.push(Draft {
                key: format!("repo_file:{repo_file_id}"),
                area,
                customer: plan.customer,
                relative_path: disk_relative.clone(),
                state,
                case: case::MULTI_REPO_SECONDARY,
            });
        }
        self.plan.drafts.push(Draft {
            key: format!("attachment:{attachment_id}"),
            area,
            customer: plan.customer,
            relative_path: disk_relative,
            state,
            case: plan.case,
        });
        (attachment_id, dir)
    }

    fn push_repo_file(&mut self, repo_filepath: Option<String>, link: RepoLink) -> u32 {
        self.next_repo_file_id += 1;
        let id = self.next_repo_file_id;
        let row = RepoFileRow {
            id,
            repo_filepath,
            treatment: Some(link.treatment),
            status: Some(pick(&mut self.rng, REPO_STATUSES)),
            upload_src: Some(pick(&mut self.rng, UPLOAD_SOURCES)),
            certificate_id: link.certificate_id,
            document_id: link.document_id,
            attachment_id: link.attachment_id,
            customer_id: Some(link.customer_id),
        };
        self.plan.repo_files.push(row);
        id
    }

    /// Spreads scenario rows over the mapped customers (all but the last).
    fn mapped_customer(&self, i: usize) -> usize {
        i % (self.plan.customers.len() - 1)
    }

    fn small_disk(&mut self, name: &str) -> Disk {
        Disk::File(self.small_content(ContentKind::for_name(name)))
    }

    fn small_content(&mut self, kind: ContentKind) -> Content {
        let max = self.spec.max_small_file_bytes;
        let min = max.min(1024);
        // Cubing a uniform draw skews sizes towards the small end, as real uploads are.
        let u: f64 = self.rng.random();
        let size = min + ((max - min) as f64 * u * u * u) as u64;
        Content {
            seed: self.rng.random(),
            size,
            kind,
        }
    }

    /// Content of the duplicate group: the same value every time it is asked for.
    fn shared_content(&mut self) -> Content {
        let max = self.spec.max_small_file_bytes;
        Content {
            seed: self.spec.seed ^ 0x0d0b_1e5e_ed00_0001,
            size: max.min(48 * 1024),
            kind: ContentKind::Pdf,
        }
    }

    fn create_time(&mut self) -> NaiveDateTime {
        let at = self.rng.random_range(CREATE_TIME_FROM..CREATE_TIME_UNTIL);
        DateTime::<Utc>::UNIX_EPOCH.naive_utc() + TimeDelta::seconds(at)
    }

    fn vendor_id(&mut self) -> Option<u32> {
        // Some legacy records were never tied to a vendor.
        if self.rng.random_bool(0.1) {
            None
        } else {
            Some(self.rng.random_range(1..=900))
        }
    }

    fn certificate_file_name(&mut self) -> String {
        let year = self.rng.random_range(2012..=2023);
        let month = self.rng.random_range(1..=12);
        let n = self.rng.random_range(1..10_000);
        let vendor = pick(&mut self.rng, VENDOR_NAMES);
        match self.rng.random_range(0..6) {
            0 => format!("COI_{year}_{}.pdf", vendor.replace(' ', "_")),
            1 => format!("Certificate of Insurance {year}.pdf"),
            2 => format!("ACORD25_{}_{n}.pdf", vendor.replace(' ', "")),
            3 => format!("scan{n:04}.pdf"),
            4 => format!("{vendor} COI {year}-{month:02}.pdf"),
            _ => format!("GL WC Umbrella {year}.PDF"),
        }
    }

    fn document_file_name(&mut self) -> String {
        let year = self.rng.random_range(2012..=2023);
        let n = self.rng.random_range(1..1000);
        let vendor = pick(&mut self.rng, VENDOR_NAMES);
        match self.rng.random_range(0..5) {
            0 => format!("W-9 {vendor}.pdf"),
            1 => format!("Master Service Agreement {year}.pdf"),
            2 => format!("Endorsement_{n}.pdf"),
            3 => format!("License {vendor}.docx"),
            _ => format!("Safety Manual rev{n}.pdf"),
        }
    }

    fn filerepo_file_name(&mut self) -> String {
        let year = self.rng.random_range(2012..=2023);
        let month = self.rng.random_range(1..=12);
        let n = self.rng.random_range(1..1000);
        match self.rng.random_range(0..5) {
            0 => format!("Vendor List {year}.xlsx"),
            1 => "Insurance Requirements.docx".to_owned(),
            2 => format!("Renewal Tracker {year}.xlsx"),
            3 => format!("Board Minutes {month:02}-{year}.pdf"),
            _ => format!("contract_{n}.pdf"),
        }
    }
}

impl Plan {
    fn summarize(
        &self,
        written: &BTreeMap<String, (String, u64)>,
    ) -> Result<SampleSummary, SampleError> {
        let mut expected = BTreeMap::new();
        for draft in &self.drafts {
            let customer = &self.customers[draft.customer];
            let on_disk = draft.state != DiskState::Absent;
            let relative_path = on_disk.then(|| draft.relative_path.clone());
            let (outcome, case) = if !customer.mapped {
                // The account check comes first: an unmapped tenant's files are refused
                // whatever their state on disk.
                (
                    ExpectedOutcome::Rejected {
                        why: WHY_UNMAPPED_ACCOUNT,
                    },
                    case::UNMAPPED_ACCOUNT,
                )
            } else {
                let outcome = match draft.state {
                    DiskState::File => {
                        let (sha256_hex, size) =
                            written.get(&draft.relative_path).ok_or_else(|| {
                                SampleError::Inconsistent(format!(
                                    "{} was planned but not written",
                                    draft.relative_path
                                ))
                            })?;
                        ExpectedOutcome::Present {
                            sha256_hex: sha256_hex.clone(),
                            size: *size,
                        }
                    }
                    DiskState::Absent => ExpectedOutcome::Missing,
                    DiskState::EscapeSymlink => ExpectedOutcome::Rejected {
                        why: WHY_ESCAPES_ROOT,
                    },
                };
                (outcome, draft.case)
            };
            let file = ExpectedFile {
                source_key: draft.key.clone(),
                area: draft.area,
                outcome,
                account_id: customer.mapped.then(|| account_id(customer.id)),
                relative_path,
                case,
            };
            if expected.insert(draft.key.clone(), file).is_some() {
                return Err(SampleError::Inconsistent(format!(
                    "source key {} planned twice",
                    draft.key
                )));
            }
        }
        Ok(SampleSummary {
            expected,
            orphan_files: self.orphans.clone(),
            legacy_rows: LegacyRowCounts {
                customers: self.customers.len() as u64,
                certificates: self.certificates.len() as u64,
                documents: self.documents.len() as u64,
                attachments: self.attachments.len() as u64,
                repo_files: self.repo_files.len() as u64,
            },
            unmapped_customer_ids: self
                .customers
                .iter()
                .filter(|c| !c.mapped)
                .map(|c| u64::from(c.id))
                .collect(),
        })
    }
}

fn account_id(customer_id: u32) -> String {
    (ACCOUNT_ID_OFFSET + u64::from(customer_id)).to_string()
}

// ---------------------------------------------------------------------------------------------
// Filesystem
// ---------------------------------------------------------------------------------------------

/// Creates both directories, empties the EFS root and returns both in canonical form.
async fn prepare_locations(
    efs_root: &Path,
    mappings_dir: &Path,
) -> Result<(PathBuf, PathBuf), SampleError> {
    tokio::fs::create_dir_all(efs_root)
        .await
        .map_err(io_at(efs_root))?;
    let root = tokio::fs::canonicalize(efs_root)
        .await
        .map_err(io_at(efs_root))?;
    if root.parent().is_none() {
        return Err(SampleError::InvalidLocation(format!(
            "refusing to use {} as the EFS root",
            root.display()
        )));
    }
    tokio::fs::create_dir_all(mappings_dir)
        .await
        .map_err(io_at(mappings_dir))?;
    let mappings = tokio::fs::canonicalize(mappings_dir)
        .await
        .map_err(io_at(mappings_dir))?;
    // Wiping the root would delete the mapping file, and it would show up as an orphan.
    if mappings.starts_with(&root) {
        return Err(SampleError::InvalidLocation(format!(
            "mappings dir {} must not be inside the EFS root {}",
            mappings.display(),
            root.display()
        )));
    }

    let mut entries = tokio::fs::read_dir(&root).await.map_err(io_at(&root))?;
    while let Some(entry) = entries.next_entry().await.map_err(io_at(&root))? {
        let path = entry.path();
        // file_type() does not follow symlinks: a link to a directory outside the root is
        // unlinked, never descended into.
        let file_type = entry.file_type().await.map_err(io_at(&path))?;
        if file_type.is_dir() {
            tokio::fs::remove_dir_all(&path)
                .await
                .map_err(io_at(&path))?;
        } else {
            tokio::fs::remove_file(&path).await.map_err(io_at(&path))?;
        }
    }
    Ok((root, mappings))
}

/// Writes every planned file and symlink; returns (sha256 hex, size) by relative path.
async fn write_tree(
    root: &Path,
    plan: &Plan,
) -> Result<BTreeMap<String, (String, u64)>, SampleError> {
    // Generating, hashing and writing bytes is CPU and blocking I/O work: each file is one
    // blocking task, a few at a time, so large specs use every core without flooding the pool.
    let concurrency = std::thread::available_parallelism().map_or(4, |n| n.get() * 2);
    let jobs = plan.files.iter().map(|(relative_path, content)| {
        let path = root.join(relative_path);
        let content = *content;
        async move {
            let digest =
                tokio::task::spawn_blocking(move || write_content(&path, &content)).await??;
            Ok::<_, SampleError>((relative_path.clone(), digest))
        }
    });
    let written: BTreeMap<String, (String, u64)> = stream::iter(jobs)
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;

    if !plan.escape_symlinks.is_empty() {
        let outside = escape_target(root)?;
        tokio::fs::write(&outside, b"outside the EFS root: must never be migrated\n")
            .await
            .map_err(io_at(&outside))?;
        for relative_path in &plan.escape_symlinks {
            let link = root.join(relative_path);
            if let Some(parent) = link.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(io_at(parent))?;
            }
            tokio::fs::symlink(&outside, &link)
                .await
                .map_err(io_at(&link))?;
        }
    }
    Ok(written)
}

/// A file beside the root, named after it so concurrent sample trees in one directory do not
/// share (and overwrite) each other's target.
fn escape_target(root: &Path) -> Result<PathBuf, SampleError> {
    let (Some(parent), Some(name)) = (root.parent(), root.file_name()) else {
        return Err(SampleError::InvalidLocation(format!(
            "EFS root {} has no parent directory for the escape target",
            root.display()
        )));
    };
    Ok(parent.join(format!("{}-outside-secret.txt", name.to_string_lossy())))
}

/// Blocking: creates `path` (and its directory) with `content`'s bytes, streamed in chunks.
fn write_content(path: &Path, content: &Content) -> Result<(String, u64), SampleError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_at(parent))?;
    }
    let mut file = std::fs::File::create(path).map_err(io_at(path))?;
    let mut rng = StdRng::seed_from_u64(content.seed);
    let mut hasher = Sha256::new();
    let header = content.kind.header();
    let chunk_capacity =
        usize::try_from(content.size).map_or(WRITE_CHUNK_BYTES, |size| size.min(WRITE_CHUNK_BYTES));
    let mut buffer = vec![0u8; chunk_capacity];
    let mut remaining = content.size;
    let mut first = true;
    while remaining > 0 {
        let len = usize::try_from(remaining).map_or(chunk_capacity, |r| r.min(chunk_capacity));
        let chunk = &mut buffer[..len];
        rng.fill_bytes(chunk);
        if first {
            let header_len = header.len().min(len);
            chunk[..header_len].copy_from_slice(&header[..header_len]);
            first = false;
        }
        hasher.update(&*chunk);
        file.write_all(chunk).map_err(io_at(path))?;
        remaining -= len as u64;
    }
    Ok((hex::encode(hasher.finalize()), content.size))
}

async fn write_account_mapping(
    mappings_dir: &Path,
    customers: &[CustomerRow],
) -> Result<(), SampleError> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(["old_customer_id", "new_account_id"])?;
    for customer in customers.iter().filter(|c| c.mapped) {
        csv.write_record([customer.id.to_string(), account_id(customer.id)])?;
    }
    let bytes = csv
        .into_inner()
        .map_err(|e| SampleError::Io(e.into_error()))?;
    let path = mappings_dir.join(ACCOUNT_MAPPING_FILE);
    tokio::fs::write(&path, bytes).await.map_err(io_at(&path))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Legacy database
// ---------------------------------------------------------------------------------------------

async fn write_legacy_tables(pool: &MySqlPool, plan: &Plan) -> Result<(), SampleError> {
    // raw_sql: DDL takes no parameters, and the text protocol accepts every statement kind.
    // Every declared table, so a reused database never keeps rows from an earlier sample.
    let tables: Vec<String> = crate::legacy::expected_columns(LEGACY_DDL).into_keys().collect();
    // Foreign keys a DBA may have added by hand must not stop the drop (one connection: the
    // session setting applies to the statement after it).
    let drop = format!("SET FOREIGN_KEY_CHECKS = 0; DROP TABLE IF EXISTS {}; SET FOREIGN_KEY_CHECKS = 1", tables.join(", "));
    sqlx::raw_sql(&drop).execute(pool).await?;
    for statement in crate::legacy::ddl_statements(LEGACY_DDL) {
        sqlx::raw_sql(&statement).execute(pool).await?;
    }

    insert_batched(
        pool,
        "INSERT INTO customer (id, name, logo) ",
        &plan.customers,
        |row, c| {
            row.push_bind(c.id)
                .push_bind(c.name.clone())
                .push_bind(c.logo.clone());
        },
    )
    .await?;
    insert_batched(
        pool,
        "INSERT INTO certificate (id, customer_id, vendor_id, attachment_id, create_time) ",
        &plan.certificates,
        |row, c| {
            row.push_bind(c.id)
                .push_bind(c.customer_id)
                .push_bind(c.vendor_id)
                .push_bind(c.attachment_id)
                .push_bind(c.create_time);
        },
    )
    .await?;
    insert_batched(
        pool,
        "INSERT INTO document (id, customer_id, vendor_id, attachment_id, name, create_time) ",
        &plan.documents,
        |row, d| {
            row.push_bind(d.id)
                .push_bind(d.customer_id)
                .push_bind(d.vendor_id)
                .push_bind(d.attachment_id)
                .push_bind(d.name.clone())
                .push_bind(d.create_time);
        },
    )
    .await?;
    insert_batched(
        pool,
        "INSERT INTO attachment (id, name, certificate_id, document_id, create_time) ",
        &plan.attachments,
        |row, a| {
            row.push_bind(a.id)
                .push_bind(a.name.clone())
                .push_bind(a.certificate_id)
                .push_bind(a.document_id)
                .push_bind(a.create_time);
        },
    )
    .await?;
    insert_batched(
        pool,
        "INSERT INTO repo_file (id, repo_filepath, treatment, status, upload_src, certificate_id, document_id, attachment_id, customer_id) ",
        &plan.repo_files,
        |row, r| {
            row.push_bind(r.id)
                .push_bind(r.repo_filepath.clone())
                .push_bind(r.treatment)
                .push_bind(r.status)
                .push_bind(r.upload_src)
                .push_bind(r.certificate_id)
                .push_bind(r.document_id)
                .push_bind(r.attachment_id)
                .push_bind(r.customer_id);
        },
    )
    .await?;
    Ok(())
}

async fn insert_batched<T, F>(
    pool: &MySqlPool,
    head: &'static str,
    rows: &[T],
    mut bind: F,
) -> Result<(), sqlx::Error>
where
    F: FnMut(&mut Separated<'_, 'static, MySql, &'static str>, &T),
{
    for chunk in rows.chunks(INSERT_BATCH_ROWS) {
        let mut query = QueryBuilder::<MySql>::new(head);
        query.push_values(chunk, |mut row, item| bind(&mut row, item));
        query.build().execute(pool).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_splits_into_one_create_statement_per_table() {
        let statements = crate::legacy::ddl_statements(LEGACY_DDL);
        assert_eq!(statements.len(), crate::legacy::expected_columns(LEGACY_DDL).len(), "{statements:#?}");
        assert!(statements.iter().all(|s| s.starts_with("CREATE TABLE")));
    }

    #[test]
    fn default_plan_is_deterministic_and_self_consistent() {
        let spec = SampleSpec::default();
        let a = Planner::new(&spec).and_then(Planner::plan).expect("plan");
        let b = Planner::new(&spec).and_then(Planner::plan).expect("plan");
        assert_eq!(a.files, b.files);
        assert_eq!(a.certificates.len(), spec.certificates as usize);
        assert_eq!(a.documents.len(), spec.documents as usize);
        let keys: std::collections::BTreeSet<_> = a.drafts.iter().map(|d| &d.key).collect();
        assert_eq!(keys.len(), a.drafts.len(), "duplicate source keys");
    }

    #[test]
    fn too_small_spec_is_rejected() {
        let spec = SampleSpec {
            certificates: 3,
            ..SampleSpec::default()
        };
        assert!(matches!(
            Planner::new(&spec).and_then(Planner::plan),
            Err(SampleError::InvalidSpec(_))
        ));
    }
}
