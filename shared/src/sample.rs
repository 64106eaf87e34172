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
use rand::seq::IndexedRandom;
use rand::{Rng, RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::query_builder::Separated;
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};

/// The legacy DDL; the generator creates its tables from exactly what the tool validates against.
use crate::legacy::LEGACY_DDL;

/// Rows per multi-row INSERT: large enough that 10k+ rows take a handful of round trips, small
/// enough to stay far below MySQL's 65 535 placeholder limit (wide tables such as certificate
/// get fewer rows per statement, see `MAX_PLACEHOLDERS`).
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

/// Wipes and regenerates the legacy tables in `legacy`, the tree under `efs_root` and the
/// mapping CSVs in `mappings_dir` (`id_mapping_accounts.csv`, `id_mapping_records.csv`,
/// `id_mapping_users.csv`), and returns what the migration should make of it.
///
/// Area 6's `id_mapping_coi_profiles.csv` is not written (phased linking: it arrives later);
/// one left in `mappings_dir` by an earlier run is removed. [`write_coi_profile_mapping`]
/// writes it on request.
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
    let records = RecordPlanner::new(spec, &plan)?.plan()?;

    let (root, mappings_dir) = prepare_locations(efs_root, mappings_dir).await?;
    let written = write_tree(&root, &plan).await?;
    write_legacy_tables(legacy, &plan, &records).await?;
    write_account_mapping(&mappings_dir, &plan.customers).await?;
    write_record_mappings(&mappings_dir, &records).await?;

    let mut summary = plan.summarize(&written)?;
    summary.records = records.summarize(&plan)?;
    tracing::info!(
        seed = spec.seed,
        sources = summary.expected.len(),
        orphans = summary.orphan_files.len(),
        attachments = summary.legacy_rows.attachments,
        repo_files = summary.legacy_rows.repo_files,
        vendors = summary.records.vendors.len(),
        certificate_status_rows = summary.records.status_rows.total,
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
    attachment_id: Option<u32>,
    create_time: NaiveDateTime,
}

#[derive(Debug, Clone)]
struct DocumentRow {
    id: u32,
    customer_id: Option<u32>,
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
        let customer_id = Some(self.plan.customers[customer].id);
        self.legacy_vendor_draw();
        let row = CertificateRow {
            id,
            customer_id,
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
        self.legacy_vendor_draw();

        let (dir, area, certificate_id, document_id, treatment) = match plan.parent {
            Parent::Certificate => {
                self.next_certificate_id += 1;
                let id = self.next_certificate_id;
                self.plan.certificates.push(CertificateRow {
                    id,
                    customer_id: Some(customer_id),
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

    /// Earlier versions drew a random vendor id for every certificate and document here. The
    /// draw is kept, so every later draw (and with it every file's bytes and size) stays what
    /// it was; vendors are assigned by the [`RecordPlanner`], from an RNG of its own.
    fn legacy_vendor_draw(&mut self) {
        if !self.rng.random_bool(0.1) {
            let _discarded: u32 = self.rng.random_range(1..=900);
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
            // Filled by `generate` from the record plan.
            records: RecordsSummary::default(),
        })
    }
}

fn account_id(customer_id: u32) -> String {
    (ACCOUNT_ID_OFFSET + u64::from(customer_id)).to_string()
}

// ---------------------------------------------------------------------------------------------
// Record side: what the record loader reads (vendors, the full certificate row, compliance rows,
// documents, libraries, sets, statuses) and the Area 1-3/6 mappings and stand-ins it needs.
// ---------------------------------------------------------------------------------------------

// Legacy ids of the record side, far from each other and from the file side's ranges (the
// first id allocated is BASE + 1).
const VENDOR_ID_BASE: u32 = 1_000;
const USER_ID_BASE: u32 = 2_000;
const REQUIREMENTS_ID_BASE: u32 = 3_000;
const DOCUMENT_SET_ID_BASE: u32 = 4_000;
const DOCUMENT_LIBRARY_ID_BASE: u32 = 6_000;
const CERTIFICATE_STATUS_ID_BASE: u32 = 100_000;
const DOCUMENT_STATUS_ID_BASE: u32 = 200_000;
const DOCUMENT_REQUIREMENTS_ID_BASE: u32 = 300_000;

// New DTX 2.0 ids of the stand-ins: legacy id + offset (accounts use `ACCOUNT_ID_OFFSET`).
const RECORD_ID_OFFSET: i64 = 70_000;
const ASSIGNMENT_ID_OFFSET: i64 = 80_000;
const USER_ID_OFFSET: i64 = 90_000;
const COI_PROFILE_ID_OFFSET: i64 = 60_000;

/// Users per customer; the last user of the first customer is left out of the users mapping.
const USERS_PER_CUSTOMER: usize = 3;

/// The record side's RNG is seeded from the spec's seed and this, so it never shares a draw
/// with the file side.
const RECORD_SEED_SALT: u64 = 0x5245_434f_5244_5331;

/// `(customer_id, requirements_id, document_set_id)`, NULL as `None`.
pub type Combo = (Option<u64>, Option<u64>, Option<u64>);

/// The record side of [`SampleSummary`]: the stand-ins [`seed_target`] inserts, and the
/// outcomes the record loader must reach on the generated data, computed from the rows as
/// inserted with the design's rules restated here (not imported from the loader), so a loader
/// test compares two independent readings of the spec.
///
/// "Migrated" means: the customer has an account mapping and the vendor (not NULL) a records
/// mapping (the error table's skip rules); every other certificate or document is skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordsSummary {
    /// The Area 2 accounts of the mapped customers.
    pub accounts: Vec<AccountStandIn>,
    /// Every `vendor` row, by id.
    pub vendors: Vec<VendorSummary>,
    /// The legacy users (three per customer) that `user_id` / `reviewer_id` name, by id.
    pub users: Vec<UserSummary>,
    /// Every requirements_id in use (vendor or certificate), by id.
    pub requirements: Vec<RequirementsSummary>,
    /// Vendors missing from `id_mapping_records.csv`: every vendor of the unmapped customer and
    /// [`Self::deliberately_unmapped_vendor_id`].
    pub unmapped_vendor_ids: Vec<u64>,
    /// The vendor of a mapped customer left out of the records mapping on purpose; its
    /// certificates and documents must be skipped.
    pub deliberately_unmapped_vendor_id: u64,
    /// Users missing from `id_mapping_users.csv` (created_by left empty, not skipped).
    pub unmapped_user_ids: Vec<u64>,
    /// Vendors without a certificate: the last vendor of every customer (it has requirements
    /// and a combination no certificate has; Decision #1), and any other the draw left without.
    pub vendors_without_certificates: Vec<u64>,
    pub certificates: CertificateExpectations,
    pub status_rows: StatusRowExpectations,
    pub documents: DocumentExpectations,
    pub libraries: LibraryExpectations,
    pub document_sets: DocumentSetExpectations,
    pub requirements_groups: RequirementsGroupExpectations,
}

impl RecordsSummary {
    /// The vendors `id_mapping_records.csv` maps.
    pub fn mapped_vendors(&self) -> impl Iterator<Item = &VendorSummary> {
        self.vendors.iter().filter(|v| v.record_id.is_some())
    }

    /// Every requirements_id in use.
    pub fn requirements_ids(&self) -> Vec<u64> {
        self.requirements.iter().map(|r| r.id).collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountStandIn {
    pub customer_id: u64,
    pub account_id: i64,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VendorSummary {
    pub id: u64,
    pub customer_id: u64,
    pub name: String,
    pub requirements_id: Option<u64>,
    pub document_set_id: Option<u64>,
    /// From `id_mapping_records.csv`; `None` for an unmapped vendor.
    pub record_id: Option<i64>,
    pub assignment_id: Option<i64>,
    /// The account of the vendor's customer; `None` when the customer is unmapped.
    pub account_id: Option<i64>,
    /// `certificate` / `document` rows naming this vendor.
    pub certificates: u64,
    pub documents: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserSummary {
    pub id: u64,
    pub customer_id: u64,
    pub email: String,
    /// From `id_mapping_users.csv`; `None` for the unmapped user.
    pub new_user_id: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RequirementsSummary {
    pub id: u64,
    pub customer_id: u64,
    pub name: String,
    /// The Area 6 COIRiskProfile ([`seed_target`], [`write_coi_profile_mapping`]); `None` for
    /// the unmapped customer's requirements, which have no account to belong to.
    pub coi_risk_profile_id: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CertificateExpectations {
    pub total: u64,
    pub migrated: u64,
    pub skipped: u64,
    /// Skipped because the customer has no account mapping (whatever the vendor).
    pub skipped_unmapped_customer: u64,
    /// Skipped because, with the customer mapped, the vendor is NULL or has no records mapping.
    pub skipped_unmapped_vendor: u64,
    pub skipped_ids: Vec<u64>,
    pub with_attachment: u64,
    pub without_attachment: u64,
    /// Raw `certificate_status` values with row counts, NULL as "(null)" (the validate
    /// report's keys).
    pub status_distribution: BTreeMap<String, u64>,
    /// The values Decision #2 does not name (NULL included): manual_review, logged.
    pub unknown_status_values: BTreeMap<String, u64>,
    /// DTX 2.0 `Certificate.status` of the migrated certificates.
    pub migrated_status: BTreeMap<String, u64>,
    pub with_requirements_id: u64,
    pub with_document_set_id: u64,
    pub with_replacement_id: u64,
    /// Non-blank `override_reason` (validate's figure, all certificates).
    pub with_override_reason: u64,
    /// Migrated certificates with a non-blank override_reason: one ManualOverride each.
    pub manual_overrides_expected: u64,
    /// Decision #15: both InsName and InsName1 present (trimmed) and different.
    pub insured_name_conflicts: Vec<u64>,
    /// Neither InsName nor InsName1 present.
    pub without_insured_name: Vec<u64>,
    /// Validate-style counts over all certificates: customer / vendor (NULL included) /
    /// user (set and non-zero) without a mapping.
    pub unmapped_customer: u64,
    pub unmapped_vendor: u64,
    pub unmapped_user: u64,
    /// A zero date in create_time, certificate_expiration or AuthDate.
    pub zero_date_ids: Vec<u64>,
    /// Text whose bytes are not UTF-8 (InsName, in a latin1 live column).
    pub invalid_utf8_ids: Vec<u64>,
    /// HolderName longer than DTX 2.0's 255 characters (and an OpsDesc of thousands).
    pub overlong_ids: Vec<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusRowExpectations {
    pub total: u64,
    /// Distinct certificate_id over all rows (orphans included, as the validate report).
    pub unique_certificates: u64,
    pub field_names: BTreeMap<String, u64>,
    /// field_names without a Decision #4 prefix (-> OtherCoverage).
    pub unmapped_field_names: BTreeMap<String, u64>,
    pub status_codes: BTreeMap<String, u64>,
    pub compliant: u64,
    pub non_compliant: u64,
    /// Rows whose certificate does not exist (logged, skipped).
    pub orphan_rows: u64,
    pub orphan_certificate_ids: Vec<u64>,
    /// Rows of migrated certificates: one EvaluationDetail each.
    pub for_migrated_certificates: u64,
    /// Migrated certificates with at least one row: one Evaluation each.
    pub evaluations_expected: u64,
    pub evaluations_pass: u64,
    pub evaluations_fail: u64,
    /// Distinct (certificate, coverage_type) over the migrated certificates' rows.
    pub coverages_expected: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DocumentExpectations {
    pub total: u64,
    pub migrated: u64,
    pub skipped: u64,
    pub skipped_ids: Vec<u64>,
    pub with_attachment: u64,
    /// Raw `document.document_status` values, NULL as "(null)".
    pub status_distribution: BTreeMap<String, u64>,
    pub unknown_status_values: BTreeMap<String, u64>,
    /// Raw `document_status.document_status` values (the per-vendor requirement status).
    pub requirement_status_distribution: BTreeMap<String, u64>,
    pub unknown_requirement_status_values: BTreeMap<String, u64>,
    pub document_status_rows: u64,
    pub with_parent_document_id: Vec<u64>,
    /// (document id, template), Decision #12.
    pub docusign_templates: Vec<(u64, String)>,
    pub unmapped_customer: u64,
    pub unmapped_vendor: u64,
    pub unmapped_user: u64,
    /// A zero date in create_time or expiration_date.
    pub zero_date_ids: Vec<u64>,
    /// DTX 2.0 `Document.status` of the migrated documents (Decision #6).
    pub migrated_status: BTreeMap<String, u64>,
    /// parent_document_id set to an id no document has (Decision #9: the note says "(not found)").
    pub parent_missing_ids: Vec<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LibraryExpectations {
    pub total: u64,
    pub libraries: Vec<LibrarySummary>,
    /// Distinct names after Decision #7's dedup (trimmed, inner whitespace collapsed, case
    /// ignored): the DocumentTypes the document-types step creates on an empty target.
    pub document_types_expected: u64,
    /// Normalized name -> library rows sharing it, for names used more than once.
    pub duplicate_names: BTreeMap<String, u64>,
    pub without_name_ids: Vec<u64>,
    /// Referenced by no document and no document_status row.
    pub unreferenced_ids: Vec<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LibrarySummary {
    pub id: u64,
    pub customer_id: u64,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DocumentSetExpectations {
    pub total: u64,
    /// `document_requirements` rows.
    pub requirements: u64,
    pub requirements_min: u64,
    pub requirements_max: u64,
    /// Sets of mapped customers: one DocumentRiskProfile each.
    pub profiles_expected: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RequirementsGroupExpectations {
    /// Unique (customer, requirements, document set) over certificate UNION vendor.
    pub combos: u64,
    pub from_certificates: u64,
    pub from_vendors: u64,
    pub certificate_only: Vec<Combo>,
    pub vendor_only: Vec<Combo>,
    /// Combinations whose customer is mapped: one RequirementsGroup each.
    pub groups_expected: u64,
    /// Mapped vendors: one RequirementsGroupMember each.
    pub members_expected: u64,
}

fn record_ids(vendor_id: u32) -> (i64, i64) {
    (
        RECORD_ID_OFFSET + i64::from(vendor_id),
        ASSIGNMENT_ID_OFFSET + i64::from(vendor_id),
    )
}

fn new_user_id(user_id: u32) -> i64 {
    USER_ID_OFFSET + i64::from(user_id)
}

fn coi_profile_id(requirements_id: u32) -> i64 {
    COI_PROFILE_ID_OFFSET + i64::from(requirements_id)
}

fn account_number(customer_id: u32) -> i64 {
    // ACCOUNT_ID_OFFSET is a small constant; the sum fits an i64 for every u32 id.
    (ACCOUNT_ID_OFFSET + u64::from(customer_id)) as i64
}

// -- legacy values ----------------------------------------------------------------------------

/// A legacy column value as inserted.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Val {
    Null,
    Int(i64),
    Text(String),
    /// Raw bytes, for text that is not UTF-8.
    Bytes(Vec<u8>),
}

/// One legacy row: column -> value; declared columns it does not name are inserted as NULL.
type LegacyRow = BTreeMap<&'static str, Val>;

const ZERO_DATE: &str = "0000-00-00";
const ZERO_DATETIME: &str = "0000-00-00 00:00:00";

fn int(v: impl Into<i64>) -> Val {
    Val::Int(v.into())
}

fn opt_int<T: Into<i64>>(v: Option<T>) -> Val {
    v.map_or(Val::Null, |v| Val::Int(v.into()))
}

fn text(v: impl Into<String>) -> Val {
    Val::Text(v.into())
}

fn opt_text<S: Into<String>>(v: Option<S>) -> Val {
    v.map_or(Val::Null, |v| Val::Text(v.into()))
}

fn datetime(t: NaiveDateTime) -> Val {
    Val::Text(t.format("%Y-%m-%d %H:%M:%S").to_string())
}

fn date(d: NaiveDate) -> Val {
    Val::Text(d.format("%Y-%m-%d").to_string())
}

fn row_int(row: &LegacyRow, column: &str) -> Option<u64> {
    match row.get(column) {
        Some(Val::Int(v)) => u64::try_from(*v).ok(),
        _ => None,
    }
}

/// Set and not 0 (legacy rows use both NULL and 0 for "none").
fn row_id(row: &LegacyRow, column: &str) -> Option<u64> {
    row_int(row, column).filter(|&v| v != 0)
}

/// Text as the loader decodes it (invalid UTF-8 replaced).
fn row_text(row: &LegacyRow, column: &str) -> Option<String> {
    match row.get(column) {
        Some(Val::Text(v)) => Some(v.clone()),
        Some(Val::Bytes(v)) => Some(String::from_utf8_lossy(v).into_owned()),
        Some(Val::Int(v)) => Some(v.to_string()),
        _ => None,
    }
}

fn row_is_zero_date(row: &LegacyRow, column: &str) -> bool {
    matches!(row.get(column), Some(Val::Text(v)) if v.starts_with(ZERO_DATE))
}

fn row_has_invalid_utf8(row: &LegacyRow) -> bool {
    row.values()
        .any(|v| matches!(v, Val::Bytes(b) if std::str::from_utf8(b).is_err()))
}

// -- the design's rules, restated (see RecordsSummary) -------------------------------------

/// Trimmed and non-empty.
fn present(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

fn value_key(value: Option<&str>) -> String {
    value.map_or_else(|| "(null)".to_owned(), str::to_owned)
}

/// Decision #2: FINISHED -> evaluated, PENDING -> manual_review, PROCESSING -> ready (trimmed,
/// any case); anything else -> manual_review, unknown.
fn dtx_certificate_status(legacy: Option<&str>) -> (&'static str, bool) {
    let v = present(legacy).unwrap_or_default();
    if v.eq_ignore_ascii_case("FINISHED") {
        ("evaluated", true)
    } else if v.eq_ignore_ascii_case("PENDING") {
        ("manual_review", true)
    } else if v.eq_ignore_ascii_case("PROCESSING") {
        ("ready", true)
    } else {
        ("manual_review", false)
    }
}

/// Decision #4's prefix table (case-sensitive, as it spells them); `None`: OtherCoverage.
fn coverage_of(field_name: &str) -> Option<&'static str> {
    const PREFIXES: [(&str, &str); 6] = [
        ("GL", "GeneralLiability"),
        ("Auto", "AutoLiability"),
        ("WC", "WorkersCompensation"),
        ("UMB", "UmbrellaLiability"),
        ("LL", "LiquorLiability"),
        ("Prop", "PropertyCoverage"),
    ];
    let name = field_name.trim();
    PREFIXES
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|(_, coverage)| *coverage)
}

fn is_compliant(code: Option<&str>) -> bool {
    present(code).is_some_and(|c| c.eq_ignore_ascii_case("COMPLIANT"))
}

/// Decision #6, document.document_status: "0", new, NOT_PROVIDED, reviewed, approved, rejected.
fn document_status_known(legacy: Option<&str>) -> bool {
    dtx_document_status(legacy).1
}

/// The document.document_status spellings the sample always has on a migrated document (every
/// value [`dtx_document_status`] knows, as the legacy app would write them).
const DOCUMENT_STATUS_SPELLINGS: &[&str] = &[
    "0",
    "new",
    "NOT_PROVIDED",
    "REVIEWED",
    "APPROVED",
    "REJECTED",
];

/// Decision #6: "0" / new / NOT_PROVIDED -> new, reviewed / approved -> submitted, rejected ->
/// ocr_reject (trimmed, any case); anything else (NULL included) -> new, unknown.
fn dtx_document_status(legacy: Option<&str>) -> (&'static str, bool) {
    let v = present(legacy).unwrap_or_default();
    let is = |word: &str| v.eq_ignore_ascii_case(word);
    if v == "0" || is("new") || is("NOT_PROVIDED") {
        ("new", true)
    } else if is("reviewed") || is("approved") {
        ("submitted", true)
    } else if is("rejected") {
        ("ocr_reject", true)
    } else {
        ("new", false)
    }
}

/// Decision #6, document_status table: NOT_PROVIDED, PROVIDED, APPROVED, REJECTED, OVERRIDE.
fn requirement_status_known(legacy: Option<&str>) -> bool {
    present(legacy).is_some_and(|v| {
        [
            "NOT_PROVIDED",
            "PROVIDED",
            "APPROVED",
            "REJECTED",
            "OVERRIDE",
        ]
        .iter()
        .any(|known| v.eq_ignore_ascii_case(known))
    })
}

/// Decision #7's dedup key: trimmed, inner whitespace collapsed, lower case; "" for no name.
fn library_key(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

// -- word lists -------------------------------------------------------------------------------

const VENDOR_SUFFIXES: &[&str] = &["LLC", "Inc.", "Co.", "Corp."];
const FIRST_NAMES: &[&str] = &[
    "James", "Maria", "Robert", "Linda", "Michael", "Patricia", "David", "Jennifer", "Carlos",
    "Aisha", "Wei", "Sean", "Priya", "Thomas", "Erin", "Kevin",
];
const LAST_NAMES: &[&str] = &[
    "Smith", "Garcia", "Johnson", "O'Brien", "Nguyen", "Miller", "Patel", "Kowalski", "Davis",
    "Martinez", "Chen", "Anderson", "Fischer", "Thompson", "Lee", "Walker",
];
/// Producers (agencies) and their mail domains.
const AGENCIES: &[(&str, &str)] = &[
    ("Marsh & McLennan Agency LLC", "marshmma.example"),
    ("Brown & Brown of Illinois", "bbinsurance.example"),
    ("Hub International Midwest Ltd", "hubinternational.example"),
    ("Lockton Companies LLC", "lockton.example"),
    ("USI Insurance Services LLC", "usi.example"),
    (
        "Arthur J. Gallagher Risk Management Services",
        "ajg.example",
    ),
    ("Alliant Insurance Services Inc.", "alliant.example"),
    ("NFP Property & Casualty Services", "nfp.example"),
];
/// City, state, ZIP (some with a leading zero), phone area code.
const CITIES: &[(&str, &str, &str, &str)] = &[
    ("Chicago", "IL", "60606", "312"),
    ("Dallas", "TX", "75201", "214"),
    ("Atlanta", "GA", "30303", "404"),
    ("Denver", "CO", "80202", "303"),
    ("Phoenix", "AZ", "85004", "602"),
    ("Columbus", "OH", "43215", "614"),
    ("Portland", "OR", "97204", "503"),
    ("Boston", "MA", "02110", "617"),
    ("Newark", "NJ", "07102", "973"),
];
const STREETS: &[&str] = &[
    "Main St",
    "Oak Avenue",
    "W Wacker Drive",
    "Peachtree St NE",
    "Commerce Street",
    "Market Street",
    "Industrial Pkwy",
    "Lakeshore Blvd",
];
const SUITES: &[&str] = &[
    "Suite 200",
    "Suite 1200",
    "Floor 3",
    "Unit B",
    "PO Box 4471",
];
const PRODUCER_TITLES: &[&str] = &[
    "Account Manager",
    "Client Service Associate",
    "Commercial Lines CSR",
    "Producer",
    "Account Executive",
];
const INSURED_TITLES: &[&str] = &[
    "Owner",
    "Office Manager",
    "Controller",
    "President",
    "Operations Manager",
];
const HOLDER_TITLES: &[&str] = &[
    "Risk Manager",
    "Vendor Compliance",
    "Facilities Director",
    "Contracts Administrator",
];
const OPS_DESCRIPTIONS: &[&str] = &[
    "Certificate holder is included as additional insured with respect to general liability when required by written contract.",
    "Re: services at all client locations. Waiver of subrogation applies in favor of the certificate holder where required by written contract.",
    "Project: Riverside Tower renovation. The certificate holder, its officers, directors and employees are additional insureds on a primary and non-contributory basis.",
    "Evidence of insurance only.",
    "Umbrella follows form over general liability, automobile liability and employers liability.",
    "30 days notice of cancellation, 10 days for non-payment of premium.",
];
const OVERRIDE_REASONS: &[&str] = &[
    "Approved by risk manager: umbrella limit covers the GL shortfall",
    "Vendor exempt from auto coverage per contract addendum 2019-04",
    "Temporary approval pending the renewal certificate (ticket 4471)",
];
const REVIEW_STATUSES: &[&str] = &["REVIEWED", "APPROVED", "NEEDS_REVIEW", "REJECTED"];
const CUSTOMER_FIELDS: &[&str] = &[
    "Project: Riverside Tower",
    "PO 88231",
    "Region East",
    "Job #4410-B",
];
const REQUIREMENT_NAMES: [&str; 2] = [
    "Standard Vendor Requirements",
    "High-Risk Contractor Requirements",
];
const SET_NAMES: [&str; 2] = [
    "Standard - Policy and Endorsement (w/ UMB) - Construction",
    "Basic Vendor Documents",
];
const DOCUMENT_COMMENTS: &[&str] = &[
    "Received via email from the vendor",
    "Expired copy replaced",
    "Signed by the vendor's owner",
    "Original requested; scan is partly illegible",
];

/// Main compliance fields (most certificates check most of them), then occasional ones.
const MAIN_STATUS_FIELDS: [&str; 4] = [
    "GLPolExpDate",
    "AutoPolExpDate",
    "WCPolExpDate",
    "UMBPolExpDate",
];
const LIMIT_STATUS_FIELDS: &[&str] = &[
    "GLEachOccurrence",
    "GLGenAggregate",
    "AutoCombinedSingleLimit",
    "UMBEachOccurrence",
    "WCELEachAccident",
];
const RARE_STATUS_FIELDS: &[&str] = &["LLPolExpDate", "PropPolExpDate", "PropBuildingLimit"];
/// No Decision #4 prefix ("ProfLiab" is not "Prop"): OtherCoverage.
const UNKNOWN_STATUS_FIELDS: &[&str] = &["BondAmount", "ProfLiabPolExpDate", "CyberLimit"];

/// Document library kinds: name and description. The first two are in every customer's library.
const LIBRARY_KINDS: &[(&str, Option<&str>)] = &[
    (
        "W-9",
        Some("IRS Form W-9, Request for Taxpayer Identification Number and Certification"),
    ),
    (
        "Certificate of Good Standing",
        Some("Issued by the Secretary of State"),
    ),
    ("Master Service Agreement", Some("Signed MSA on file")),
    (
        "Additional Insured Endorsement",
        Some("CG 20 10 / CG 20 37 or equivalent"),
    ),
    ("Business License", None),
    (
        "Safety Program",
        Some("Written safety program and OSHA 300 log"),
    ),
    (
        "Freistellungsbescheinigung §48b",
        Some("Bauabzugsteuer-Freistellung"),
    ),
    (
        "Vendor Questionnaire",
        Some("Onboarding questionnaire (no longer requested)"),
    ),
];
const KIND_W9: usize = 0;
const KIND_GOOD_STANDING: usize = 1;
const KIND_MSA: usize = 2;
const KIND_ENDORSEMENT: usize = 3;
const KIND_LICENSE: usize = 4;
const KIND_SAFETY: usize = 5;
const KIND_FREISTELLUNG: usize = 6;
const KIND_QUESTIONNAIRE: usize = 7;

/// `document_status` table values with weights; one row gets an unknown value on top.
const REQUIREMENT_STATUSES: &[(&str, u32)] = &[
    ("NOT_PROVIDED", 35),
    ("PROVIDED", 20),
    ("APPROVED", 25),
    ("REJECTED", 8),
    ("OVERRIDE", 7),
];

// -- record plan ------------------------------------------------------------------------------

struct VendorInfo {
    id: u32,
    customer: usize,
    name: String,
    requirements_id: Option<u32>,
    document_set_id: Option<u32>,
    mapped: bool,
    /// False for the vendor with requirements but no certificates.
    takes_certificates: bool,
}

struct UserInfo {
    id: u32,
    customer: usize,
    email: String,
    mapped: bool,
}

struct RequirementsInfo {
    id: u32,
    customer: usize,
    name: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LibraryRole {
    Regular,
    /// NULL name (skipped by the document-types step); one document uses it.
    Nameless,
    /// No document and no document_status row uses it.
    Unreferenced,
}

struct LibraryInfo {
    id: u32,
    kind: Option<usize>,
    role: LibraryRole,
}

/// Per customer: the address printed as certificate holder, its profiles and people.
struct CustomerSide {
    city: (&'static str, &'static str, &'static str, &'static str),
    street: String,
    domain: String,
    requirements: [u32; 2],
    sets: [u32; 2],
    vendors: Vec<usize>,
    users: Vec<usize>,
    libraries: Vec<usize>,
}

#[derive(Default)]
struct RecordPlan {
    customers: Vec<CustomerSide>,
    vendors: Vec<VendorInfo>,
    users: Vec<UserInfo>,
    requirements: Vec<RequirementsInfo>,
    libraries: Vec<LibraryInfo>,
    vendor_rows: Vec<LegacyRow>,
    certificate_rows: Vec<LegacyRow>,
    certificate_status_rows: Vec<LegacyRow>,
    document_rows: Vec<LegacyRow>,
    document_status_rows: Vec<LegacyRow>,
    library_rows: Vec<LegacyRow>,
    set_rows: Vec<LegacyRow>,
    set_requirement_rows: Vec<LegacyRow>,
}

impl RecordPlan {
    /// The record-side tables in insert order (certificate and document carry the file side's
    /// rows too).
    fn tables(&self) -> [(&'static str, &[LegacyRow]); 8] {
        [
            ("vendor", &self.vendor_rows),
            ("certificate", &self.certificate_rows),
            ("certificate_status", &self.certificate_status_rows),
            ("document", &self.document_rows),
            ("document_status", &self.document_status_rows),
            ("document_library", &self.library_rows),
            ("document_set", &self.set_rows),
            ("document_requirements", &self.set_requirement_rows),
        ]
    }
}

/// How a certificate's InsName/InsName1 are filled (the Decision #15 cases).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Insured {
    /// InsName only.
    Primary,
    /// Both, equal.
    Same,
    /// Both, different (a DBA line).
    Dba,
    /// Both, differing only in case (still "different" to the spec's `!=`).
    CaseOnly,
    /// InsName1 only.
    OnlySecond,
    /// InsName blank, InsName1 set.
    BlankFirst,
    /// Both NULL.
    Neither,
    /// Both blank.
    BlankBoth,
    /// InsName's bytes are latin1, not UTF-8.
    InvalidUtf8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ZeroDate {
    Expiration,
    AuthDate,
    CreateTime,
}

struct CertDraft {
    customer: usize,
    vendor: Option<usize>,
    requirements_id: Option<u32>,
    document_set_id: Option<u32>,
    status: Option<&'static str>,
    insured: Insured,
    user: Option<usize>,
    replaces: Option<u32>,
    override_reason: Option<&'static str>,
    zero: Option<ZeroDate>,
    overlong: bool,
}

struct DocDraft {
    customer: usize,
    vendor: Option<usize>,
    library: Option<usize>,
}

struct RecordPlanner<'a> {
    spec: &'a SampleSpec,
    plan: &'a Plan,
    rng: StdRng,
    out: RecordPlan,
}

fn vendor_name(n: usize) -> String {
    let base = VENDOR_NAMES[n % VENDOR_NAMES.len()];
    let round = n / VENDOR_NAMES.len();
    let suffix = VENDOR_SUFFIXES[round % VENDOR_SUFFIXES.len()];
    if round < VENDOR_SUFFIXES.len() {
        format!("{base} {suffix}")
    } else {
        format!("{base} {suffix} {}", round / VENDOR_SUFFIXES.len() + 1)
    }
}

/// A mail domain from a customer name: ASCII letters and digits, dashes between words.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() {
        "customer".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// `first.last` from a person's name, ASCII letters only ("Sean O'Brien" -> "sean.obrien").
fn email_local(person: &str) -> String {
    person
        .split_whitespace()
        .map(|w| {
            w.chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
                .to_lowercase()
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// A holder name far longer than DTX 2.0's 255 characters (the live column is 400 wide).
fn overlong_holder_name(customer: &str) -> String {
    let mut name = format!(
        "{customer}, its parent, subsidiaries and affiliated companies, and each of their respective officers, directors, employees, agents and volunteers"
    );
    while name.chars().count() <= 300 {
        name.push_str(", and any other person or organization required by written contract");
    }
    name
}

fn overlong_ops_desc() -> String {
    let mut text = String::new();
    while text.len() < 4_000 {
        for clause in OPS_DESCRIPTIONS {
            text.push_str(clause);
            text.push(' ');
        }
    }
    text.trim_end().to_owned()
}

impl<'a> RecordPlanner<'a> {
    fn new(spec: &'a SampleSpec, plan: &'a Plan) -> Result<Self, SampleError> {
        if spec.vendors_per_customer < 3 {
            return Err(SampleError::InvalidSpec(format!(
                "vendors_per_customer must be at least 3, got {}",
                spec.vendors_per_customer
            )));
        }
        Ok(Self {
            spec,
            plan,
            rng: StdRng::seed_from_u64(spec.seed ^ RECORD_SEED_SALT),
            out: RecordPlan::default(),
        })
    }

    fn plan(mut self) -> Result<RecordPlan, SampleError> {
        self.plan_customers();
        let certificates = self.plan_certificates()?;
        self.certificate_rows(&certificates)?;
        self.plan_certificate_status(&certificates)?;
        let documents = self.plan_documents()?;
        self.document_rows(&documents)?;
        self.plan_document_status(&documents);
        self.plan_set_requirements(&documents);
        Ok(self.out)
    }

    // -- helpers --------------------------------------------------------------------------

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn one_of<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.random_range(0..items.len())]
    }

    /// `n` distinct entries of `pool`.
    fn choose(&mut self, pool: &[usize], n: usize, what: &str) -> Result<Vec<usize>, SampleError> {
        if pool.len() < n {
            return Err(SampleError::InvalidSpec(format!(
                "too few rows for {what}: need {n}, have {} (raise certificates/documents)",
                pool.len()
            )));
        }
        Ok(pool.choose_multiple(&mut self.rng, n).copied().collect())
    }

    fn customer_index(&self, customer_id: Option<u32>) -> Result<usize, SampleError> {
        customer_id
            .and_then(|id| self.plan.customers.iter().position(|c| c.id == id))
            .ok_or_else(|| {
                SampleError::Inconsistent(format!("row names unknown customer {customer_id:?}"))
            })
    }

    fn person(&mut self) -> String {
        format!("{} {}", self.one_of(FIRST_NAMES), self.one_of(LAST_NAMES))
    }

    fn phone(&mut self, area: &str) -> String {
        let exchange = self.rng.random_range(200..1000);
        let line = self.rng.random_range(0..10_000);
        match self.rng.random_range(0..4) {
            0 => format!("({area}) {exchange}-{line:04}"),
            1 => format!("{area}-{exchange}-{line:04}"),
            2 => format!("{area}.{exchange}.{line:04}"),
            _ => format!("+1 {area} {exchange} {line:04}"),
        }
    }

    fn maybe_phone(&mut self, p: f64, area: &str) -> Option<String> {
        self.chance(p).then(|| self.phone(area))
    }

    fn extension(&mut self, p: f64) -> Option<String> {
        self.chance(p)
            .then(|| self.one_of(&["12", "204", "1107", "3", "45"]).to_owned())
    }

    fn some_time(&mut self) -> NaiveDateTime {
        let at = self.rng.random_range(CREATE_TIME_FROM..CREATE_TIME_UNTIL);
        DateTime::<Utc>::UNIX_EPOCH.naive_utc() + TimeDelta::seconds(at)
    }

    fn later(&mut self, t: NaiveDateTime, max_seconds: i64) -> NaiveDateTime {
        t + TimeDelta::seconds(self.rng.random_range(60..max_seconds))
    }

    fn is_migratable_vendor(&self, vendor: Option<usize>) -> bool {
        vendor.is_some_and(|v| self.out.vendors[v].mapped)
    }

    // -- customers: profiles, people, vendors, libraries ---------------------------------

    fn plan_customers(&mut self) {
        let plan = self.plan;
        let per_customer = self.spec.vendors_per_customer as usize;
        for (ci, customer) in plan.customers.iter().enumerate() {
            let city = self.one_of(CITIES);
            let street = format!(
                "{} {}",
                self.rng.random_range(10..9999),
                self.one_of(STREETS)
            );
            let domain = format!("{}.example", slug(&customer.name));
            let base = 2 * ci as u32;
            let requirements = [
                REQUIREMENTS_ID_BASE + base + 1,
                REQUIREMENTS_ID_BASE + base + 2,
            ];
            let sets = [
                DOCUMENT_SET_ID_BASE + base + 1,
                DOCUMENT_SET_ID_BASE + base + 2,
            ];
            for (k, id) in requirements.into_iter().enumerate() {
                self.out.requirements.push(RequirementsInfo {
                    id,
                    customer: ci,
                    name: REQUIREMENT_NAMES[k],
                });
            }
            for (k, id) in sets.into_iter().enumerate() {
                let created = self.some_time();
                let description = (k == 0).then_some(
                    "Construction and facilities vendors: GL, auto, WC and umbrella, with endorsements",
                );
                self.out.set_rows.push(LegacyRow::from([
                    ("id", int(id)),
                    ("customer_id", int(customer.id)),
                    ("name", text(SET_NAMES[k])),
                    ("description", opt_text(description)),
                    ("create_time", datetime(created)),
                ]));
            }

            let mut users = Vec::new();
            for k in 0..USERS_PER_CUSTOMER {
                let id = USER_ID_BASE + 1 + (ci * USERS_PER_CUSTOMER + k) as u32;
                let name = self.person();
                let email = format!("{}.{id}@{domain}", email_local(&name));
                users.push(self.out.users.len());
                self.out.users.push(UserInfo {
                    id,
                    customer: ci,
                    email,
                    // The last user of the first customer has no Area 1 mapping.
                    mapped: !(ci == 0 && k + 1 == USERS_PER_CUSTOMER),
                });
            }

            let mut vendors = Vec::new();
            for j in 0..per_customer {
                let n = ci * per_customer + j;
                let id = VENDOR_ID_BASE + 1 + n as u32;
                // The last vendor has requirements but never a certificate, under a combination
                // no certificate uses; the first two share one group.
                let takes_certificates = j + 1 < per_customer;
                let (requirements_id, document_set_id) = if !takes_certificates {
                    (Some(requirements[1]), Some(sets[1]))
                } else if j < 2 {
                    (Some(requirements[0]), Some(sets[0]))
                } else if j % 2 == 0 {
                    (Some(requirements[1]), Some(sets[0]))
                } else {
                    (Some(requirements[0]), None)
                };
                let name = vendor_name(n);
                self.out.vendor_rows.push(LegacyRow::from([
                    ("id", int(id)),
                    ("customer_id", int(customer.id)),
                    ("requirements_id", opt_int(requirements_id)),
                    ("document_set_id", opt_int(document_set_id)),
                    ("name", text(name.clone())),
                ]));
                vendors.push(self.out.vendors.len());
                self.out.vendors.push(VendorInfo {
                    id,
                    customer: ci,
                    name,
                    requirements_id,
                    document_set_id,
                    // Area 3 migrated no vendor of an unmapped customer, and left the second
                    // vendor of the first customer out.
                    mapped: customer.mapped && !(ci == 0 && j == 1),
                    takes_certificates,
                });
            }

            let libraries = self.plan_libraries(ci, customer.id);
            self.out.customers.push(CustomerSide {
                city,
                street,
                domain,
                requirements,
                sets,
                vendors,
                users,
                libraries,
            });
        }
    }

    /// W-9 and Certificate of Good Standing in every customer's library (shared names), some of
    /// the other kinds, and: the second customer spells W-9 " w-9 " and has a name of its own
    /// (non-ASCII); the third has an entry without a name; the first has one nothing uses.
    fn plan_libraries(&mut self, ci: usize, customer_id: u32) -> Vec<usize> {
        let mut entries = vec![
            (Some(KIND_W9), LibraryRole::Regular),
            (Some(KIND_GOOD_STANDING), LibraryRole::Regular),
        ];
        for kind in [KIND_MSA, KIND_ENDORSEMENT, KIND_LICENSE, KIND_SAFETY] {
            if self.chance(0.6) {
                entries.push((Some(kind), LibraryRole::Regular));
            }
        }
        match ci {
            0 => entries.push((Some(KIND_QUESTIONNAIRE), LibraryRole::Unreferenced)),
            1 => entries.push((Some(KIND_FREISTELLUNG), LibraryRole::Regular)),
            2 => entries.push((None, LibraryRole::Nameless)),
            _ => {}
        }
        let mut indices = Vec::new();
        for (kind, role) in entries {
            let id = DOCUMENT_LIBRARY_ID_BASE + 1 + self.out.libraries.len() as u32;
            let name = match kind {
                None => None,
                Some(KIND_W9) if ci == 1 => Some(" w-9 ".to_owned()),
                Some(k) => Some(LIBRARY_KINDS[k].0.to_owned()),
            };
            let description = kind.and_then(|k| LIBRARY_KINDS[k].1);
            let created = self.some_time();
            self.out.library_rows.push(LegacyRow::from([
                ("id", int(id)),
                ("customer_id", int(customer_id)),
                ("name", opt_text(name)),
                ("description", opt_text(description)),
                ("create_time", datetime(created)),
            ]));
            indices.push(self.out.libraries.len());
            self.out.libraries.push(LibraryInfo { id, kind, role });
        }
        indices
    }

    fn regular_libraries(&self, customer: usize) -> Vec<usize> {
        self.out.customers[customer]
            .libraries
            .iter()
            .copied()
            .filter(|&l| self.out.libraries[l].role == LibraryRole::Regular)
            .collect()
    }

    // -- certificates ---------------------------------------------------------------------

    fn plan_certificates(&mut self) -> Result<Vec<CertDraft>, SampleError> {
        let plan = self.plan;
        let unmapped_vendor = self.out.customers[0].vendors[1];
        let mut drafts = Vec::with_capacity(plan.certificates.len());
        for cert in &plan.certificates {
            let customer = self.customer_index(cert.customer_id)?;
            let side = &self.out.customers[customer];
            let candidates: Vec<usize> = side
                .vendors
                .iter()
                .copied()
                .filter(|&v| self.out.vendors[v].takes_certificates && v != unmapped_vendor)
                .collect();
            let users: Vec<usize> = side
                .users
                .iter()
                .copied()
                .filter(|&u| self.out.users[u].mapped)
                .collect();
            let vendor = self.one_of(&candidates);
            let insured = match self.rng.random_range(0..100) {
                0..62 => Insured::Primary,
                62..80 => Insured::Same,
                80..92 => Insured::Dba,
                _ => Insured::CaseOnly,
            };
            let status = match self.rng.random_range(0..100) {
                0..82 => "FINISHED",
                82..91 => "PENDING",
                _ => "PROCESSING",
            };
            let user = if self.chance(0.78) {
                Some(self.one_of(&users))
            } else {
                None
            };
            drafts.push(CertDraft {
                customer,
                vendor: Some(vendor),
                requirements_id: None,
                document_set_id: None,
                status: Some(status),
                insured,
                user,
                replaces: None,
                override_reason: None,
                zero: None,
                overlong: false,
            });
        }

        // The unmapped vendor of the first customer has the customer's last two certificates
        // (skipped by the loader; regular ones, as the file side allocates its special cases
        // first), and the second customer's last certificate was never tied to a vendor
        // (skipped too).
        let first_customer: Vec<usize> = (0..drafts.len())
            .filter(|&i| drafts[i].customer == 0)
            .collect();
        let [.., a, b] = first_customer[..] else {
            return Err(SampleError::InvalidSpec(
                "the first customer has fewer than two certificates".to_owned(),
            ));
        };
        drafts[a].vendor = Some(unmapped_vendor);
        drafts[b].vendor = Some(unmapped_vendor);
        let last_of_second = drafts
            .iter()
            .rposition(|d| d.customer == 1)
            .ok_or_else(|| {
                SampleError::InvalidSpec("the second customer has no certificate".to_owned())
            })?;
        drafts[last_of_second].vendor = None;

        // Combinations: mostly the vendor's, sometimes one of the customer's own (so groups come
        // from both tables).
        for d in &mut drafts {
            let [r1, r2] = self.out.customers[d.customer].requirements;
            let [s1, s2] = self.out.customers[d.customer].sets;
            let (requirements, set) = match d.vendor {
                Some(v) => (
                    self.out.vendors[v].requirements_id,
                    self.out.vendors[v].document_set_id,
                ),
                None => (Some(r1), Some(s1)),
            };
            let (requirements, set) = if self.chance(0.15) {
                self.one_of(&[(Some(r2), None), (None, Some(s1)), (Some(r1), Some(s2))])
            } else {
                (requirements, set)
            };
            d.requirements_id = requirements;
            d.document_set_id = set;
        }

        let pool: Vec<usize> = (0..drafts.len())
            .filter(|&i| self.is_migratable_vendor(drafts[i].vendor))
            .collect();
        let pool_of =
            |drafts: &[CertDraft], customer: usize, except: &BTreeSet<usize>| -> Vec<usize> {
                pool.iter()
                    .copied()
                    .filter(|&i| drafts[i].customer == customer && !except.contains(&i))
                    .collect()
            };

        // A certificate with neither requirements nor a document set: a combination no
        // vendor has.
        let bare = self.choose(
            &pool_of(&drafts, 0, &BTreeSet::new()),
            1,
            "the bare combination",
        )?[0];
        drafts[bare].requirements_id = None;
        drafts[bare].document_set_id = None;

        // Replacement chains (Decision #10): the newer certificate names the one it replaces;
        // all of a chain share vendor and combination.
        let mut chained = BTreeSet::from([bare]);
        for (customer, length) in [(0, 3), (1, 2)] {
            let candidates = pool_of(&drafts, customer, &chained);
            let mut members = self.choose(&candidates, length, "a replacement chain")?;
            members.sort_by_key(|&i| (plan.certificates[i].create_time, plan.certificates[i].id));
            let head = members[0];
            let (vendor, requirements, set) = (
                drafts[head].vendor,
                drafts[head].requirements_id,
                drafts[head].document_set_id,
            );
            for pair in members.windows(2) {
                let newer = &mut drafts[pair[1]];
                newer.replaces = Some(plan.certificates[pair[0]].id);
                newer.vendor = vendor;
                newer.requirements_id = requirements;
                newer.document_set_id = set;
            }
            chained.extend(members);
        }
        chained.remove(&bare);

        // Status values beyond the usual three: two unknown, a NULL, a lower-case spelling.
        let picks = self.choose(&pool, 4, "certificate status values")?;
        for (i, status) in picks.into_iter().zip([
            Some("OCR_FAILED"),
            Some("DUPLICATE"),
            None,
            Some("finished"),
        ]) {
            drafts[i].status = status;
        }
        // InsName/InsName1 cases the random draw does not make.
        let picks = self.choose(&pool, 5, "insured name cases")?;
        let cases = [
            Insured::InvalidUtf8,
            Insured::OnlySecond,
            Insured::BlankFirst,
            Insured::Neither,
            Insured::BlankBoth,
        ];
        for (i, insured) in picks.into_iter().zip(cases) {
            drafts[i].insured = insured;
        }
        // The unmapped user created two certificates of the first customer.
        let unmapped_user = self.out.customers[0].users[USERS_PER_CUSTOMER - 1];
        for i in self.choose(
            &pool_of(&drafts, 0, &BTreeSet::new()),
            2,
            "the unmapped user",
        )? {
            drafts[i].user = Some(unmapped_user);
        }
        // Overrides (Decision #11), and one blank override_reason that is no override.
        let picks = self.choose(&pool, OVERRIDE_REASONS.len() + 1, "overrides")?;
        for (n, i) in picks.into_iter().enumerate() {
            drafts[i].override_reason = Some(OVERRIDE_REASONS.get(n).copied().unwrap_or("   "));
        }
        // Zero dates (never in a chain, whose order is by create_time).
        let candidates: Vec<usize> = pool
            .iter()
            .copied()
            .filter(|i| !chained.contains(i))
            .collect();
        let picks = self.choose(&candidates, 3, "zero dates")?;
        for (i, zero) in picks.into_iter().zip([
            ZeroDate::Expiration,
            ZeroDate::AuthDate,
            ZeroDate::CreateTime,
        ]) {
            drafts[i].zero = Some(zero);
        }
        let overlong = self.choose(&pool, 1, "the overlong certificate")?[0];
        drafts[overlong].overlong = true;
        Ok(drafts)
    }

    fn certificate_rows(&mut self, drafts: &[CertDraft]) -> Result<(), SampleError> {
        let plan = self.plan;
        for (cert, d) in plan.certificates.iter().zip(drafts) {
            let customer = &plan.customers[d.customer];
            let (street, city) = {
                let side = &self.out.customers[d.customer];
                (side.street.clone(), side.city)
            };
            let domain = self.out.customers[d.customer].domain.clone();
            let created = cert.create_time;
            let zero = d.zero;
            let mut r = LegacyRow::new();
            r.insert("id", int(cert.id));
            r.insert("customer_id", opt_int(cert.customer_id));
            r.insert(
                "vendor_id",
                opt_int(d.vendor.map(|v| self.out.vendors[v].id)),
            );
            r.insert("attachment_id", opt_int(cert.attachment_id));
            r.insert(
                "create_time",
                if zero == Some(ZeroDate::CreateTime) {
                    text(ZERO_DATETIME)
                } else {
                    datetime(created)
                },
            );
            // A certificate without a usable create_time always has an update_time.
            let updated = (zero == Some(ZeroDate::CreateTime) || self.chance(0.8))
                .then(|| self.later(created, 120 * 86_400));
            r.insert("update_time", updated.map_or(Val::Null, datetime));

            // Core fields.
            let cert_no = self
                .chance(0.75)
                .then(|| match self.rng.random_range(0..3) {
                    0 => format!(
                        "{}-{:05}",
                        created.format("%Y"),
                        self.rng.random_range(1..100_000)
                    ),
                    1 => format!("COI-{}", self.rng.random_range(100_000..1_000_000)),
                    _ => format!("{:08}", self.rng.random_range(0..100_000_000)),
                });
            r.insert("CertNo", opt_text(cert_no));
            let expiration = created.date() + TimeDelta::days(self.rng.random_range(345..=405));
            r.insert(
                "certificate_expiration",
                if zero == Some(ZeroDate::Expiration) {
                    text(ZERO_DATE)
                } else {
                    date(expiration)
                },
            );
            let ops = if d.overlong {
                Some(overlong_ops_desc())
            } else {
                self.chance(0.85)
                    .then(|| self.one_of(OPS_DESCRIPTIONS).to_owned())
            };
            r.insert("OpsDesc", opt_text(ops));
            let rep = self.person();
            r.insert("AuthRepName", text(rep));
            let auth_date = created.date() - TimeDelta::days(self.rng.random_range(0..5));
            r.insert(
                "AuthDate",
                if zero == Some(ZeroDate::AuthDate) {
                    text(ZERO_DATE)
                } else {
                    date(auth_date)
                },
            );
            r.insert(
                "AuthRepAffirm",
                if self.chance(0.6) {
                    text(self.one_of(&["Y", "N", "Yes"]))
                } else {
                    Val::Null
                },
            );

            // Producer (agent): phones with and without extensions, an extension without a
            // phone now and then (dropped by Decision #3's code).
            let (agency, agency_domain) = self.one_of(AGENCIES);
            let (p_city, p_state, p_zip, p_area) = self.one_of(CITIES);
            let contact = self.person();
            r.insert("ProdName", text(agency));
            let title = self.chance(0.7).then(|| self.one_of(PRODUCER_TITLES));
            r.insert("ProdTitle", opt_text(title));
            let prod_email = self
                .chance(0.8)
                .then(|| format!("{}@{agency_domain}", email_local(&contact)));
            r.insert("ProdContact", opt_text(self.chance(0.9).then_some(contact)));
            let addr1 = format!("{} {}", self.rng.random_range(1..999), self.one_of(STREETS));
            r.insert("ProdAddr1", text(addr1));
            let addr2 = self.chance(0.3).then(|| self.one_of(SUITES));
            r.insert("ProdAddr2", opt_text(addr2));
            r.insert("ProdCity", text(p_city));
            r.insert("ProdState", text(p_state));
            r.insert("ProdZip", text(p_zip));
            let phone = self.maybe_phone(0.9, p_area);
            let ext = self.extension(if phone.is_some() { 0.3 } else { 0.5 });
            r.insert("ProdPhone", opt_text(phone));
            r.insert("ProdPhoneExtension", opt_text(ext));
            let fax = self.maybe_phone(0.5, p_area);
            r.insert("ProdFax", opt_text(fax));
            r.insert("ProdEmail", opt_text(prod_email));

            // Insured: the vendor (ASCII names: InsName's live column is latin1).
            let insured_name = match d.vendor {
                Some(v) => self.out.vendors[v].name.clone(),
                None => vendor_name(self.rng.random_range(0..VENDOR_NAMES.len())),
            };
            if !insured_name.is_ascii() {
                return Err(SampleError::Inconsistent(format!(
                    "insured name {insured_name:?} is not ASCII (InsName is latin1)"
                )));
            }
            let (ins_name, ins_name1) = match d.insured {
                Insured::Primary => (text(insured_name.clone()), Val::Null),
                Insured::Same => (text(insured_name.clone()), text(insured_name.clone())),
                Insured::Dba => {
                    let trade = insured_name.split_whitespace().next().unwrap_or("Vendor");
                    (
                        text(insured_name.clone()),
                        text(format!("DBA {trade} Services Group")),
                    )
                }
                Insured::CaseOnly => (
                    text(insured_name.clone()),
                    text(insured_name.to_uppercase()),
                ),
                Insured::OnlySecond => (Val::Null, text(insured_name.clone())),
                Insured::BlankFirst => (text("  "), text(insured_name.clone())),
                Insured::Neither => (Val::Null, Val::Null),
                Insured::BlankBoth => (text(""), text("   ")),
                // latin1 'ü' (0xFC): valid in the latin1 column, not UTF-8 when read as bytes.
                Insured::InvalidUtf8 => (
                    Val::Bytes(b"M\xFCller Haustechnik GmbH".to_vec()),
                    Val::Null,
                ),
            };
            r.insert("InsName", ins_name);
            r.insert("InsName1", ins_name1);
            let (i_city, i_state, i_zip, i_area) = self.one_of(CITIES);
            let ins_addr1 = format!(
                "{} {}",
                self.rng.random_range(1..9999),
                self.one_of(STREETS)
            );
            r.insert("InsAddr1", text(ins_addr1));
            let ins_addr2 = self.chance(0.2).then(|| self.one_of(SUITES));
            r.insert("InsAddr2", opt_text(ins_addr2));
            r.insert("InsCity", text(i_city));
            r.insert("InsState", text(i_state));
            r.insert("InsZip", text(i_zip));
            let ins_contact = self.person();
            let ins_email = self.chance(0.6).then(|| {
                format!(
                    "{}@{}.example",
                    email_local(&ins_contact),
                    slug(&insured_name)
                )
            });
            r.insert(
                "InsContact",
                opt_text(self.chance(0.6).then_some(ins_contact)),
            );
            let ins_title = self.chance(0.5).then(|| self.one_of(INSURED_TITLES));
            r.insert("InsTitle", opt_text(ins_title));
            let ins_phone = self.maybe_phone(0.8, i_area);
            let ins_ext = self.extension(0.2);
            r.insert("InsPhone", opt_text(ins_phone));
            r.insert("InsPhoneExtension", opt_text(ins_ext));
            let ins_fax = self.maybe_phone(0.3, i_area);
            r.insert("InsFax", opt_text(ins_fax));
            let ins_mobile = self.maybe_phone(0.3, i_area);
            r.insert("InsMobilePhone", opt_text(ins_mobile));
            r.insert("InsEmail", opt_text(ins_email));

            // Certificate holder: the customer, at its address.
            let holder = if d.overlong {
                overlong_holder_name(&customer.name)
            } else {
                customer.name.clone()
            };
            r.insert("HolderName", text(holder));
            r.insert("HolderAddr1", text(street));
            let holder_addr2 = self.chance(0.25).then(|| {
                self.one_of(&[
                    "Attn: Vendor Compliance",
                    "Suite 1200",
                    "c/o Risk Management",
                ])
            });
            r.insert("HolderAddr2", opt_text(holder_addr2));
            r.insert("HolderCity", text(city.0));
            r.insert("HolderState", text(city.1));
            r.insert("HolderZip", text(city.2));
            let holder_contact = self.chance(0.5).then(|| self.person());
            r.insert("HolderContact", opt_text(holder_contact));
            let holder_title = self.chance(0.4).then(|| self.one_of(HOLDER_TITLES));
            r.insert("HolderTitle", opt_text(holder_title));
            let holder_phone = self.maybe_phone(0.5, city.3);
            r.insert("HolderPhone", opt_text(holder_phone));
            let holder_fax = self.maybe_phone(0.2, city.3);
            r.insert("HolderFax", opt_text(holder_fax));
            let holder_email = self.chance(0.4).then(|| format!("compliance@{domain}"));
            r.insert("HolderEmail", opt_text(holder_email));

            // References.
            r.insert("requirements_id", opt_int(d.requirements_id));
            r.insert("document_set_id", opt_int(d.document_set_id));
            r.insert("replacement_id", opt_int(d.replaces));
            let broker = self.chance(0.4).then(|| self.rng.random_range(1..=60u32));
            r.insert("broker_id", opt_int(broker));
            let reviewer = if self.chance(0.5) {
                let users = self.out.customers[d.customer].users.clone();
                let u = self.one_of(&users);
                Some(self.out.users[u].id)
            } else {
                None
            };
            r.insert("reviewer_id", opt_int(reviewer));
            r.insert("user_id", opt_int(d.user.map(|u| self.out.users[u].id)));

            // Dropped by the design, filled as production has them.
            let jws = self.chance(0.6).then(|| {
                format!(
                    "{:016x}{:016x}",
                    self.rng.random::<u64>(),
                    self.rng.random::<u64>()
                )
            });
            r.insert("jws_Certificate_ID", opt_text(jws));
            let ocr = self.chance(0.5);
            r.insert("ocr", int(i64::from(ocr)));
            r.insert(
                "page_name",
                opt_text(ocr.then(|| format!("coi_{}_p1.png", cert.id))),
            );
            let starting_page = ocr.then(|| self.rng.random_range(1..=3u32));
            r.insert("starting_page", opt_int(starting_page));
            let rev = self
                .chance(0.5)
                .then(|| self.rng.random_range(0..4u32).to_string());
            r.insert("CertRevNo", opt_text(rev));
            let review_status = self.chance(0.7).then(|| self.one_of(REVIEW_STATUSES));
            r.insert("review_status", opt_text(review_status));
            let review_time = (review_status.is_some() || d.override_reason.is_some())
                .then(|| self.later(created, 14 * 86_400));
            r.insert("review_time", review_time.map_or(Val::Null, datetime));
            let reviewer_name = self.person();
            if self.chance(0.4) {
                let corrected = self.chance(0.3);
                r.insert(
                    "OpsDescReviewStatus",
                    text(if corrected { "CORRECTED" } else { "OK" }),
                );
                if corrected {
                    r.insert(
                        "OpsDescReason",
                        text("Additional insured wording missing from the description"),
                    );
                    r.insert("OpsDescCorrectedBy", text(reviewer_name.clone()));
                }
            }
            if self.chance(0.4) {
                let corrected = self.chance(0.3);
                r.insert(
                    "HolderReviewStatus",
                    text(if corrected { "CORRECTED" } else { "OK" }),
                );
                if corrected {
                    r.insert(
                        "HolderReason",
                        text("Holder name did not match the customer's legal name"),
                    );
                    r.insert("HolderCorrectedBy", text(reviewer_name));
                }
            }
            r.insert("override_reason", opt_text(d.override_reason));
            let am_best = self.chance(0.8).then(|| i64::from(self.chance(0.9)));
            r.insert("AMBestRatingOK", opt_int(am_best));
            r.insert("WCExempt", int(i64::from(self.chance(0.05))));
            let proper_ph = self.chance(0.4).then(|| insured_name.clone());
            r.insert("proper_ph_name", opt_text(proper_ph));
            let proper_ch = self.chance(0.4).then(|| customer.name.clone());
            r.insert("proper_ch_name", opt_text(proper_ch));
            for column in ["Customer1", "Customer2", "Customer3"] {
                let value = self.chance(0.1).then(|| self.one_of(CUSTOMER_FIELDS));
                r.insert(column, opt_text(value));
            }
            let final_expiration = self
                .chance(0.7)
                .then(|| expiration + TimeDelta::days(self.rng.random_range(0..60)));
            r.insert(
                "final_pol_expiration",
                final_expiration.map_or(Val::Null, date),
            );
            r.insert("certificate_status", opt_text(d.status));
            self.out.certificate_rows.push(r);
        }
        Ok(())
    }

    /// About four compliance rows per certificate (the four policy expiration dates most of
    /// the time, limits and rarer coverages now and then, an unmapped field_name rarely and
    /// once for sure), none for some pending ones, plus rows whose certificate does not exist.
    fn plan_certificate_status(&mut self, drafts: &[CertDraft]) -> Result<(), SampleError> {
        let plan = self.plan;
        let pool: Vec<usize> = (0..drafts.len())
            .filter(|&i| self.is_migratable_vendor(drafts[i].vendor))
            .collect();
        let bond = self.choose(&pool, 1, "the unmapped field_name")?[0];
        let mut next_id = CERTIFICATE_STATUS_ID_BASE;
        for (i, (cert, d)) in plan.certificates.iter().zip(drafts).enumerate() {
            let pending = matches!(d.status, Some("PENDING" | "PROCESSING"));
            let has_rows = i == bond || self.chance(if pending { 0.5 } else { 0.92 });
            if !has_rows {
                continue;
            }
            let n = self.rng.random_range(3..=4);
            let mut fields: Vec<&'static str> = MAIN_STATUS_FIELDS
                .choose_multiple(&mut self.rng, n)
                .copied()
                .collect();
            if self.chance(0.4) {
                fields.push(self.one_of(LIMIT_STATUS_FIELDS));
            }
            if self.chance(0.08) {
                fields.push(self.one_of(RARE_STATUS_FIELDS));
            }
            if self.chance(0.03) {
                fields.push(self.one_of(UNKNOWN_STATUS_FIELDS));
            }
            if i == bond && !fields.contains(&"BondAmount") {
                fields.push("BondAmount");
            }
            for field in fields {
                // The bond is below its minimum: its certificate's evaluation fails.
                let compliant = !(i == bond && field == "BondAmount") && self.chance(0.94);
                next_id += 1;
                let row = self.status_row(next_id, cert.id, field, cert.create_time, compliant);
                self.out.certificate_status_rows.push(row);
            }
        }
        // Orphans: the never-allocated base id and two past the last certificate.
        let last = CERTIFICATE_ID_BASE + plan.certificates.len() as u32;
        for certificate_id in [CERTIFICATE_ID_BASE, last + 1_000, last + 1_001] {
            next_id += 1;
            let checked = self.some_time();
            let row = self.status_row(next_id, certificate_id, "GLPolExpDate", checked, true);
            self.out.certificate_status_rows.push(row);
        }
        Ok(())
    }

    fn status_row(
        &mut self,
        id: u32,
        certificate_id: u32,
        field: &'static str,
        checked: NaiveDateTime,
        compliant: bool,
    ) -> LegacyRow {
        let (minimum, actual) = if field.ends_with("Date") {
            let minimum = checked.date();
            let actual = if compliant {
                minimum + TimeDelta::days(self.rng.random_range(30..400))
            } else {
                minimum - TimeDelta::days(self.rng.random_range(1..90))
            };
            (minimum.to_string(), actual.to_string())
        } else {
            let minimum: u64 = self.one_of(&[500_000, 1_000_000, 2_000_000]);
            let actual = if compliant {
                minimum * self.one_of(&[1, 2, 5])
            } else {
                minimum / 2
            };
            (minimum.to_string(), actual.to_string())
        };
        let created = self.later(checked, 86_400);
        LegacyRow::from([
            ("id", int(id)),
            ("certificate_id", int(certificate_id)),
            (
                "status_code",
                text(if compliant {
                    "COMPLIANT"
                } else {
                    "NON_COMPLIANT"
                }),
            ),
            ("field_name", text(field)),
            ("minimum", text(minimum)),
            ("actual", text(actual)),
            ("create_time", datetime(created)),
        ])
    }

    // -- documents ------------------------------------------------------------------------

    /// The library a document's name suggests, if the customer has it, else any of its own.
    fn library_for(&mut self, customer: usize, name: &str) -> Option<usize> {
        let wanted = if name.starts_with("W-9") {
            Some(KIND_W9)
        } else if name.contains("Master Service Agreement") {
            Some(KIND_MSA)
        } else if name.starts_with("Endorsement") {
            Some(KIND_ENDORSEMENT)
        } else if name.starts_with("License") {
            Some(KIND_LICENSE)
        } else if name.starts_with("Safety") {
            Some(KIND_SAFETY)
        } else {
            None
        };
        let regular = self.regular_libraries(customer);
        let matching = wanted.and_then(|kind| {
            regular
                .iter()
                .copied()
                .find(|&l| self.out.libraries[l].kind == Some(kind))
        });
        matching.or_else(|| Some(self.one_of(&regular)))
    }

    fn plan_documents(&mut self) -> Result<Vec<DocDraft>, SampleError> {
        let plan = self.plan;
        let unmapped_vendor = self.out.customers[0].vendors[1];
        let mut drafts = Vec::with_capacity(plan.documents.len());
        for doc in &plan.documents {
            let customer = self.customer_index(doc.customer_id)?;
            let vendors: Vec<usize> = self.out.customers[customer]
                .vendors
                .iter()
                .copied()
                .filter(|&v| v != unmapped_vendor)
                .collect();
            let vendor = self.one_of(&vendors);
            let library = self.library_for(customer, doc.name.as_deref().unwrap_or_default());
            drafts.push(DocDraft {
                customer,
                vendor: Some(vendor),
                library,
            });
        }
        // As for certificates: the first customer's last document is the unmapped vendor's,
        // the second customer's last has no vendor.
        let last_of_first = drafts
            .iter()
            .rposition(|d| d.customer == 0)
            .ok_or_else(|| {
                SampleError::InvalidSpec("the first customer has no document".to_owned())
            })?;
        drafts[last_of_first].vendor = Some(unmapped_vendor);
        let last_of_second = drafts
            .iter()
            .rposition(|d| d.customer == 1)
            .ok_or_else(|| {
                SampleError::InvalidSpec("the second customer has no document".to_owned())
            })?;
        drafts[last_of_second].vendor = None;
        // One document uses the library without a name, one has no library at all.
        let nameless = self.out.customers[2]
            .libraries
            .iter()
            .copied()
            .find(|&l| self.out.libraries[l].role == LibraryRole::Nameless);
        let first_of_third = drafts.iter().position(|d| d.customer == 2).ok_or_else(|| {
            SampleError::InvalidSpec("the third customer has no document".to_owned())
        })?;
        drafts[first_of_third].library = nameless;
        let pool: Vec<usize> = (0..drafts.len())
            .filter(|&i| i != first_of_third && self.is_migratable_vendor(drafts[i].vendor))
            .collect();
        let without = self.choose(&pool, 1, "a document without library")?[0];
        drafts[without].library = None;
        Ok(drafts)
    }

    fn document_rows(&mut self, drafts: &[DocDraft]) -> Result<(), SampleError> {
        let plan = self.plan;
        let pool: Vec<usize> = (0..drafts.len())
            .filter(|&i| self.is_migratable_vendor(drafts[i].vendor))
            .collect();
        let statuses = self.choose(&pool, 2, "document status values")?;
        let with_parent: Vec<usize> = pool
            .iter()
            .copied()
            .filter(|&i| (0..i).any(|j| drafts[j].customer == drafts[i].customer))
            .collect();
        let child = self.choose(&with_parent, 1, "a child document")?[0];
        let docusign = self.choose(&pool, 1, "a DocuSign template")?[0];
        let zero = self.choose(&pool, 1, "a zero expiration date")?[0];
        let first_customer: Vec<usize> = pool
            .iter()
            .copied()
            .filter(|&i| drafts[i].customer == 0)
            .collect();
        let unmapped_user_doc = self.choose(&first_customer, 1, "the unmapped user's document")?[0];
        let unmapped_user = self.out.customers[0].users[USERS_PER_CUSTOMER - 1];
        let first_row = self.out.document_rows.len();

        for (i, (doc, d)) in plan.documents.iter().zip(drafts).enumerate() {
            let created = doc.create_time;
            let mut r = LegacyRow::new();
            r.insert("id", int(doc.id));
            r.insert("customer_id", opt_int(doc.customer_id));
            r.insert(
                "vendor_id",
                opt_int(d.vendor.map(|v| self.out.vendors[v].id)),
            );
            r.insert("attachment_id", opt_int(doc.attachment_id));
            r.insert("name", opt_text(doc.name.clone()));
            r.insert("create_time", datetime(created));
            let expiration = if i == zero {
                text(ZERO_DATE)
            } else if self.chance(0.6) {
                date(created.date() + TimeDelta::days(self.rng.random_range(180..=730)))
            } else {
                Val::Null
            };
            r.insert("expiration_date", expiration);
            let comments = self.chance(0.3).then(|| self.one_of(DOCUMENT_COMMENTS));
            r.insert("comments", opt_text(comments));
            let updated = self.chance(0.7).then(|| self.later(created, 60 * 86_400));
            r.insert("update_time", updated.map_or(Val::Null, datetime));
            let status = if i == statuses[0] {
                "REJECTED"
            } else if i == statuses[1] {
                // A numeric code the design does not name.
                "3"
            } else {
                match self.rng.random_range(0..100) {
                    0..70 => "0",
                    70..80 => "NOT_PROVIDED",
                    80..92 => "APPROVED",
                    _ => "REVIEWED",
                }
            };
            r.insert("document_status", text(status));
            r.insert(
                "document_library_id",
                opt_int(d.library.map(|l| self.out.libraries[l].id)),
            );
            let users = self.out.customers[d.customer].users.clone();
            let reviewer = if self.chance(0.4) {
                let u = self.one_of(&users);
                Some(self.out.users[u].id)
            } else {
                None
            };
            r.insert("reviewer_id", opt_int(reviewer));
            let mapped_users: Vec<usize> = users
                .iter()
                .copied()
                .filter(|&u| self.out.users[u].mapped)
                .collect();
            let user = if i == unmapped_user_doc {
                Some(unmapped_user)
            } else {
                self.chance(0.7).then(|| self.one_of(&mapped_users))
            };
            r.insert("user_id", opt_int(user.map(|u| self.out.users[u].id)));
            let template = (i == docusign).then(|| {
                let a: u64 = self.rng.random();
                let b: u64 = self.rng.random();
                format!(
                    "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                    a >> 32,
                    (a >> 16) & 0xffff,
                    a & 0xffff,
                    b >> 48,
                    b & 0xffff_ffff_ffff
                )
            });
            r.insert("docusign_template_id", opt_text(template));
            let parent = (i == child).then(|| {
                (0..i)
                    .rev()
                    .find(|&j| drafts[j].customer == d.customer)
                    .map(|j| plan.documents[j].id)
            });
            r.insert("parent_document_id", opt_int(parent.flatten()));
            let source = self.rng.random_range(0..3);
            r.insert("source_coi", int(i64::from(source == 0)));
            r.insert("source_broker", int(i64::from(source == 1)));
            r.insert("source_insured", int(i64::from(source == 2)));
            r.insert("send_sample", int(i64::from(self.chance(0.1))));
            let level = self.chance(0.3).then(|| self.one_of(&["L1", "L2"]));
            r.insert("next_review_level", opt_text(level));
            let review = self
                .chance(0.6)
                .then(|| self.one_of(&["APPROVED", "PENDING", "REJECTED"]));
            r.insert("review_status", opt_text(review));
            let reviewed = review.map(|_| self.later(created, 30 * 86_400));
            r.insert("review_status_date", reviewed.map_or(Val::Null, datetime));
            let period = self.chance(0.5).then(|| self.one_of(&[30u32, 90, 365]));
            r.insert("review_period", opt_int(period));
            self.out.document_rows.push(r);
        }

        // Document cases the draw above may leave out, set without drawing (so no other row
        // changes): every Decision #6 spelling on a migrated document, each missing one taken by
        // a migrated document whose value another one also has (the last such, the REJECTED and
        // unknown rows excepted; a spec too small to spare one goes without), and a parent id
        // that names no document (Decision #9's "(not found)").
        let rows = &mut self.out.document_rows[first_row..];
        let status_of = |row: &LegacyRow| match row.get("document_status") {
            Some(Val::Text(v)) => v.clone(),
            _ => String::new(),
        };
        let mut in_use: BTreeMap<String, usize> = BTreeMap::new();
        for &i in &pool {
            *in_use.entry(status_of(&rows[i])).or_default() += 1;
        }
        for &value in DOCUMENT_STATUS_SPELLINGS {
            if in_use.contains_key(value) {
                continue;
            }
            let donor = pool.iter().rev().copied().find(|&i| {
                !statuses.contains(&i) && in_use.get(&status_of(&rows[i])).is_some_and(|&n| n > 1)
            });
            if let Some(i) = donor {
                if let Some(n) = in_use.get_mut(&status_of(&rows[i])) {
                    *n -= 1;
                }
                in_use.insert(value.to_owned(), 1);
                rows[i].insert("document_status", text(value));
            }
        }
        let orphan = pool
            .iter()
            .copied()
            .find(|&i| rows[i].get("parent_document_id") == Some(&Val::Null))
            .ok_or_else(|| {
                SampleError::InvalidSpec("no document left for a missing parent".to_owned())
            })?;
        rows[orphan].insert("parent_document_id", int(DOCUMENT_ID_BASE));
        Ok(())
    }

    /// One `document_status` row per vendor x library of its customer (the referenced, named
    /// ones), pointing at the vendor's document of that library when it provided one, and one
    /// row with a value the design does not name.
    fn plan_document_status(&mut self, docs: &[DocDraft]) {
        let plan = self.plan;
        let total_weight: u32 = REQUIREMENT_STATUSES.iter().map(|(_, w)| w).sum();
        let mut next_id = DOCUMENT_STATUS_ID_BASE;
        let mut of_mapped_vendors = Vec::new();
        for v in 0..self.out.vendors.len() {
            let customer = self.out.vendors[v].customer;
            for l in self.regular_libraries(customer) {
                let mut draw = self.rng.random_range(0..total_weight);
                let mut status = REQUIREMENT_STATUSES[0].0;
                for &(value, weight) in REQUIREMENT_STATUSES {
                    if draw < weight {
                        status = value;
                        break;
                    }
                    draw -= weight;
                }
                let document = (status != "NOT_PROVIDED")
                    .then(|| {
                        docs.iter()
                            .position(|d| d.vendor == Some(v) && d.library == Some(l))
                            .map(|i| plan.documents[i].id)
                    })
                    .flatten();
                next_id += 1;
                let created = self.some_time();
                if self.out.vendors[v].mapped {
                    of_mapped_vendors.push(self.out.document_status_rows.len());
                }
                self.out.document_status_rows.push(LegacyRow::from([
                    ("id", int(next_id)),
                    ("vendor_id", int(self.out.vendors[v].id)),
                    ("customer_id", int(plan.customers[customer].id)),
                    ("document_id", opt_int(document)),
                    ("document_library_id", int(self.out.libraries[l].id)),
                    ("document_status", text(status)),
                    ("create_time", datetime(created)),
                ]));
            }
        }
        if let Some(&row) = of_mapped_vendors.choose(&mut self.rng) {
            self.out.document_status_rows[row].insert("document_status", text("EXPIRED"));
        }
    }

    /// The first set of a customer requires most of its documents, the second a few; neither
    /// is empty when the customer has documents.
    fn plan_set_requirements(&mut self, docs: &[DocDraft]) {
        let plan = self.plan;
        let mut next_id = DOCUMENT_REQUIREMENTS_ID_BASE;
        for customer in 0..self.out.customers.len() {
            let ids: Vec<u32> = docs
                .iter()
                .zip(&plan.documents)
                .filter(|(d, _)| d.customer == customer)
                .map(|(_, doc)| doc.id)
                .collect();
            let sets = self.out.customers[customer].sets;
            for (k, set) in sets.into_iter().enumerate() {
                let p = if k == 0 { 0.6 } else { 0.3 };
                let mut members: Vec<u32> = Vec::new();
                for &id in &ids {
                    if self.chance(p) {
                        members.push(id);
                    }
                }
                if members.is_empty() {
                    let fallback = if k == 0 { ids.first() } else { ids.last() };
                    members.extend(fallback);
                }
                for document_id in members {
                    next_id += 1;
                    self.out.set_requirement_rows.push(LegacyRow::from([
                        ("id", int(next_id)),
                        ("document_set_id", int(set)),
                        ("document_id", int(document_id)),
                    ]));
                }
            }
        }
    }
}

// -- the record side's summary ----------------------------------------------------------------

fn count_by(rows: &[LegacyRow], column: &str) -> BTreeMap<u64, u64> {
    let mut counts = BTreeMap::new();
    for row in rows {
        if let Some(id) = row_id(row, column) {
            *counts.entry(id).or_default() += 1;
        }
    }
    counts
}

fn distribution<'r>(values: impl Iterator<Item = Option<String>> + 'r) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for value in values {
        *out.entry(value_key(value.as_deref())).or_default() += 1;
    }
    out
}

fn unknown_of(
    dist: &BTreeMap<String, u64>,
    known: impl Fn(Option<&str>) -> bool,
) -> BTreeMap<String, u64> {
    dist.iter()
        .filter(|(value, _)| !known((value.as_str() != "(null)").then_some(value.as_str())))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

impl RecordPlan {
    fn summarize(&self, plan: &Plan) -> Result<RecordsSummary, SampleError> {
        let accounts: BTreeMap<u64, i64> = plan
            .customers
            .iter()
            .filter(|c| c.mapped)
            .map(|c| (u64::from(c.id), account_number(c.id)))
            .collect();
        let mapped_vendors: BTreeSet<u64> = self
            .vendors
            .iter()
            .filter(|v| v.mapped)
            .map(|v| u64::from(v.id))
            .collect();
        let mapped_users: BTreeSet<u64> = self
            .users
            .iter()
            .filter(|u| u.mapped)
            .map(|u| u64::from(u.id))
            .collect();
        let migrates = |row: &LegacyRow| {
            row_id(row, "customer_id").is_some_and(|c| accounts.contains_key(&c))
                && row_id(row, "vendor_id").is_some_and(|v| mapped_vendors.contains(&v))
        };

        let mut s = RecordsSummary {
            accounts: plan
                .customers
                .iter()
                .filter(|c| c.mapped)
                .map(|c| AccountStandIn {
                    customer_id: u64::from(c.id),
                    account_id: account_number(c.id),
                    name: c.name.clone(),
                })
                .collect(),
            ..RecordsSummary::default()
        };

        // Vendors, users, requirements.
        let certificates_per_vendor = count_by(&self.certificate_rows, "vendor_id");
        let documents_per_vendor = count_by(&self.document_rows, "vendor_id");
        for v in &self.vendors {
            let customer = &plan.customers[v.customer];
            let id = u64::from(v.id);
            let (record, assignment) = record_ids(v.id);
            s.vendors.push(VendorSummary {
                id,
                customer_id: u64::from(customer.id),
                name: v.name.clone(),
                requirements_id: v.requirements_id.map(u64::from),
                document_set_id: v.document_set_id.map(u64::from),
                record_id: v.mapped.then_some(record),
                assignment_id: v.mapped.then_some(assignment),
                account_id: customer.mapped.then(|| account_number(customer.id)),
                certificates: certificates_per_vendor.get(&id).copied().unwrap_or(0),
                documents: documents_per_vendor.get(&id).copied().unwrap_or(0),
            });
            if !v.mapped {
                s.unmapped_vendor_ids.push(id);
                if customer.mapped {
                    s.deliberately_unmapped_vendor_id = id;
                }
            }
            if !certificates_per_vendor.contains_key(&id) {
                s.vendors_without_certificates.push(id);
            }
        }
        for u in &self.users {
            s.users.push(UserSummary {
                id: u64::from(u.id),
                customer_id: u64::from(plan.customers[u.customer].id),
                email: u.email.clone(),
                new_user_id: u.mapped.then(|| new_user_id(u.id)),
            });
            if !u.mapped {
                s.unmapped_user_ids.push(u64::from(u.id));
            }
        }
        let used_requirements: BTreeSet<u64> = self
            .vendor_rows
            .iter()
            .chain(&self.certificate_rows)
            .filter_map(|r| row_id(r, "requirements_id"))
            .collect();
        for r in &self.requirements {
            let customer = &plan.customers[r.customer];
            if used_requirements.contains(&u64::from(r.id)) {
                s.requirements.push(RequirementsSummary {
                    id: u64::from(r.id),
                    customer_id: u64::from(customer.id),
                    name: r.name.to_owned(),
                    coi_risk_profile_id: customer.mapped.then(|| coi_profile_id(r.id)),
                });
            }
        }

        // Certificates.
        let c = &mut s.certificates;
        let mut migrated_certificates = BTreeSet::new();
        for row in &self.certificate_rows {
            let id = row_int(row, "id").unwrap_or_default();
            let customer_mapped =
                row_id(row, "customer_id").is_some_and(|c| accounts.contains_key(&c));
            let vendor_mapped =
                row_id(row, "vendor_id").is_some_and(|v| mapped_vendors.contains(&v));
            c.total += 1;
            if migrates(row) {
                c.migrated += 1;
                migrated_certificates.insert(id);
                let status = row_text(row, "certificate_status");
                *c.migrated_status
                    .entry(dtx_certificate_status(status.as_deref()).0.to_owned())
                    .or_default() += 1;
                if present(row_text(row, "override_reason").as_deref()).is_some() {
                    c.manual_overrides_expected += 1;
                }
            } else {
                c.skipped += 1;
                c.skipped_ids.push(id);
                if customer_mapped {
                    c.skipped_unmapped_vendor += 1;
                } else {
                    c.skipped_unmapped_customer += 1;
                }
            }
            c.unmapped_customer += u64::from(!customer_mapped);
            c.unmapped_vendor += u64::from(!vendor_mapped);
            if row_id(row, "user_id").is_some_and(|u| !mapped_users.contains(&u)) {
                c.unmapped_user += 1;
            }
            if row_id(row, "attachment_id").is_some() {
                c.with_attachment += 1;
            } else {
                c.without_attachment += 1;
            }
            c.with_requirements_id += u64::from(row_id(row, "requirements_id").is_some());
            c.with_document_set_id += u64::from(row_id(row, "document_set_id").is_some());
            c.with_replacement_id += u64::from(row_id(row, "replacement_id").is_some());
            if present(row_text(row, "override_reason").as_deref()).is_some() {
                c.with_override_reason += 1;
            }
            let first = row_text(row, "InsName");
            let second = row_text(row, "InsName1");
            match (present(first.as_deref()), present(second.as_deref())) {
                (Some(a), Some(b)) if a != b => c.insured_name_conflicts.push(id),
                (None, None) => c.without_insured_name.push(id),
                _ => {}
            }
            if ["create_time", "certificate_expiration", "AuthDate"]
                .iter()
                .any(|col| row_is_zero_date(row, col))
            {
                c.zero_date_ids.push(id);
            }
            if row_has_invalid_utf8(row) {
                c.invalid_utf8_ids.push(id);
            }
            if row_text(row, "HolderName").is_some_and(|h| h.chars().count() > 255) {
                c.overlong_ids.push(id);
            }
        }
        c.status_distribution = distribution(
            self.certificate_rows
                .iter()
                .map(|r| row_text(r, "certificate_status")),
        );
        c.unknown_status_values =
            unknown_of(&c.status_distribution, |v| dtx_certificate_status(v).1);

        // Compliance rows.
        let existing: BTreeSet<u64> = self
            .certificate_rows
            .iter()
            .filter_map(|r| row_int(r, "id"))
            .collect();
        let st = &mut s.status_rows;
        let mut per_certificate: BTreeMap<u64, (bool, BTreeSet<&'static str>)> = BTreeMap::new();
        let mut certificates = BTreeSet::new();
        for row in &self.certificate_status_rows {
            st.total += 1;
            let certificate = row_int(row, "certificate_id").unwrap_or_default();
            certificates.insert(certificate);
            let code = row_text(row, "status_code");
            let compliant = is_compliant(code.as_deref());
            if compliant {
                st.compliant += 1;
            } else {
                st.non_compliant += 1;
            }
            if !existing.contains(&certificate) {
                st.orphan_rows += 1;
                st.orphan_certificate_ids.push(certificate);
                continue;
            }
            if migrated_certificates.contains(&certificate) {
                st.for_migrated_certificates += 1;
                let field = row_text(row, "field_name").unwrap_or_default();
                let entry = per_certificate
                    .entry(certificate)
                    .or_insert((true, BTreeSet::new()));
                entry.0 &= compliant;
                entry
                    .1
                    .insert(coverage_of(&field).unwrap_or("OtherCoverage"));
            }
        }
        st.orphan_certificate_ids.sort_unstable();
        st.orphan_certificate_ids.dedup();
        st.unique_certificates = certificates.len() as u64;
        st.field_names = distribution(
            self.certificate_status_rows
                .iter()
                .map(|r| row_text(r, "field_name")),
        );
        st.unmapped_field_names = st
            .field_names
            .iter()
            .filter(|(name, _)| coverage_of(name).is_none())
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        st.status_codes = distribution(
            self.certificate_status_rows
                .iter()
                .map(|r| row_text(r, "status_code")),
        );
        st.evaluations_expected = per_certificate.len() as u64;
        st.evaluations_pass = per_certificate.values().filter(|(pass, _)| *pass).count() as u64;
        st.evaluations_fail = st.evaluations_expected - st.evaluations_pass;
        st.coverages_expected = per_certificate
            .values()
            .map(|(_, types)| types.len() as u64)
            .sum();

        // Documents.
        let d = &mut s.documents;
        let document_ids: BTreeSet<u64> = self
            .document_rows
            .iter()
            .filter_map(|r| row_int(r, "id"))
            .collect();
        for row in &self.document_rows {
            let id = row_int(row, "id").unwrap_or_default();
            d.total += 1;
            if row_id(row, "parent_document_id").is_some_and(|p| !document_ids.contains(&p)) {
                d.parent_missing_ids.push(id);
            }
            if migrates(row) {
                d.migrated += 1;
                let (status, _) = dtx_document_status(row_text(row, "document_status").as_deref());
                *d.migrated_status.entry(status.to_owned()).or_default() += 1;
            } else {
                d.skipped += 1;
                d.skipped_ids.push(id);
            }
            d.unmapped_customer +=
                u64::from(!row_id(row, "customer_id").is_some_and(|c| accounts.contains_key(&c)));
            d.unmapped_vendor +=
                u64::from(!row_id(row, "vendor_id").is_some_and(|v| mapped_vendors.contains(&v)));
            if row_id(row, "user_id").is_some_and(|u| !mapped_users.contains(&u)) {
                d.unmapped_user += 1;
            }
            d.with_attachment += u64::from(row_id(row, "attachment_id").is_some());
            if row_id(row, "parent_document_id").is_some() {
                d.with_parent_document_id.push(id);
            }
            if let Some(template) = present(row_text(row, "docusign_template_id").as_deref()) {
                d.docusign_templates.push((id, template.to_owned()));
            }
            if ["create_time", "expiration_date"]
                .iter()
                .any(|col| row_is_zero_date(row, col))
            {
                d.zero_date_ids.push(id);
            }
        }
        d.status_distribution = distribution(
            self.document_rows
                .iter()
                .map(|r| row_text(r, "document_status")),
        );
        d.unknown_status_values = unknown_of(&d.status_distribution, document_status_known);
        d.requirement_status_distribution = distribution(
            self.document_status_rows
                .iter()
                .map(|r| row_text(r, "document_status")),
        );
        d.unknown_requirement_status_values =
            unknown_of(&d.requirement_status_distribution, requirement_status_known);
        d.document_status_rows = self.document_status_rows.len() as u64;

        // Libraries (Decision #7).
        let referenced: BTreeSet<u64> = self
            .document_rows
            .iter()
            .chain(&self.document_status_rows)
            .filter_map(|r| row_id(r, "document_library_id"))
            .collect();
        let l = &mut s.libraries;
        let mut by_key: BTreeMap<String, u64> = BTreeMap::new();
        for row in &self.library_rows {
            let id = row_int(row, "id").unwrap_or_default();
            let name = row_text(row, "name");
            l.total += 1;
            l.libraries.push(LibrarySummary {
                id,
                customer_id: row_int(row, "customer_id").unwrap_or_default(),
                name: name.clone(),
            });
            let key = library_key(name.as_deref().unwrap_or_default());
            if key.is_empty() {
                l.without_name_ids.push(id);
            } else {
                *by_key.entry(key).or_default() += 1;
            }
            if !referenced.contains(&id) {
                l.unreferenced_ids.push(id);
            }
        }
        l.document_types_expected = by_key.len() as u64;
        l.duplicate_names = by_key.into_iter().filter(|(_, n)| *n > 1).collect();

        // Document sets (Decision #8).
        let per_set = count_by(&self.set_requirement_rows, "document_set_id");
        let sizes: Vec<u64> = self
            .set_rows
            .iter()
            .map(|r| {
                per_set
                    .get(&row_int(r, "id").unwrap_or_default())
                    .copied()
                    .unwrap_or(0)
            })
            .collect();
        s.document_sets = DocumentSetExpectations {
            total: self.set_rows.len() as u64,
            requirements: self.set_requirement_rows.len() as u64,
            requirements_min: sizes.iter().copied().min().unwrap_or(0),
            requirements_max: sizes.iter().copied().max().unwrap_or(0),
            profiles_expected: self
                .set_rows
                .iter()
                .filter(|r| row_id(r, "customer_id").is_some_and(|c| accounts.contains_key(&c)))
                .count() as u64,
        };

        // Requirements groups (Decision #1).
        let combo = |r: &LegacyRow| -> Combo {
            (
                row_int(r, "customer_id"),
                row_int(r, "requirements_id"),
                row_int(r, "document_set_id"),
            )
        };
        let from_certificates: BTreeSet<Combo> = self.certificate_rows.iter().map(combo).collect();
        let from_vendors: BTreeSet<Combo> = self.vendor_rows.iter().map(combo).collect();
        let all: BTreeSet<Combo> = from_certificates.union(&from_vendors).copied().collect();
        s.requirements_groups = RequirementsGroupExpectations {
            combos: all.len() as u64,
            from_certificates: from_certificates.len() as u64,
            from_vendors: from_vendors.len() as u64,
            certificate_only: from_certificates
                .difference(&from_vendors)
                .copied()
                .collect(),
            vendor_only: from_vendors
                .difference(&from_certificates)
                .copied()
                .collect(),
            groups_expected: all
                .iter()
                .filter(|(c, _, _)| c.is_some_and(|c| accounts.contains_key(&c)))
                .count() as u64,
            members_expected: mapped_vendors.len() as u64,
        };
        if s.deliberately_unmapped_vendor_id == 0 {
            return Err(SampleError::Inconsistent(
                "no vendor of a mapped customer is left unmapped".to_owned(),
            ));
        }
        Ok(s)
    }
}

// -- mapping CSVs -----------------------------------------------------------------------------

fn csv_bytes<const N: usize>(
    header: [&str; N],
    rows: Vec<[String; N]>,
) -> Result<Vec<u8>, SampleError> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(header)?;
    for row in rows {
        csv.write_record(&row)?;
    }
    csv.into_inner()
        .map_err(|e| SampleError::Io(e.into_error()))
}

/// `id_mapping_records.csv` and `id_mapping_users.csv` (Areas 3 and 1) without the unmapped
/// vendors and user; removes an `id_mapping_coi_profiles.csv` an earlier run or test left.
async fn write_record_mappings(
    mappings_dir: &Path,
    records: &RecordPlan,
) -> Result<(), SampleError> {
    let vendors = records
        .vendors
        .iter()
        .filter(|v| v.mapped)
        .map(|v| {
            let (record, assignment) = record_ids(v.id);
            [v.id.to_string(), record.to_string(), assignment.to_string()]
        })
        .collect();
    let bytes = csv_bytes(
        ["old_vendor_id", "new_record_id", "new_assignment_id"],
        vendors,
    )?;
    let path = mappings_dir.join(crate::mappings::RECORDS_FILE);
    tokio::fs::write(&path, bytes).await.map_err(io_at(&path))?;

    let users = records
        .users
        .iter()
        .filter(|u| u.mapped)
        .map(|u| [u.id.to_string(), new_user_id(u.id).to_string()])
        .collect();
    let bytes = csv_bytes(["old_user_id", "new_user_id"], users)?;
    let path = mappings_dir.join(crate::mappings::USERS_FILE);
    tokio::fs::write(&path, bytes).await.map_err(io_at(&path))?;

    // Phased linking: Area 6's mapping is not there until a test writes it.
    let path = mappings_dir.join(crate::mappings::COI_PROFILES_FILE);
    match tokio::fs::remove_file(&path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_at(&path)(e)),
    }
}

/// Writes Area 6's `id_mapping_coi_profiles.csv` (`old_requirements_id,new_coi_risk_profile_id`)
/// into `mappings_dir`: every requirements_id in use by a mapped customer, to the
/// COIRiskProfile [`seed_target`] inserts for it. [`generate`] does not write it (phased
/// linking); a test calls this when Area 6 "has run".
pub fn write_coi_profile_mapping(
    mappings_dir: &Path,
    summary: &SampleSummary,
) -> Result<(), SampleError> {
    let rows = summary
        .records
        .requirements
        .iter()
        .filter_map(|r| {
            r.coi_risk_profile_id
                .map(|p| [r.id.to_string(), p.to_string()])
        })
        .collect();
    let bytes = csv_bytes(["old_requirements_id", "new_coi_risk_profile_id"], rows)?;
    let path = mappings_dir.join(crate::mappings::COI_PROFILES_FILE);
    std::fs::write(&path, bytes).map_err(io_at(&path))
}

// -- DTX 2.0 stand-ins ------------------------------------------------------------------------

/// Inserts into the DTX 2.0 target the rows of other areas the record loader's foreign keys
/// need, as `summary.records` states them: the accounts of the mapped customers (Area 2), the
/// mapped users (Area 1), a record and an assignment per mapped vendor (Area 3, account = its
/// customer's), and a COIRiskProfile per requirements_id of a mapped customer (Area 6).
///
/// Idempotent: every insert is `ON CONFLICT (id) DO NOTHING`, all in one transaction. The
/// identity sequences of these tables are then moved past the explicit ids, so a later insert
/// without an id cannot collide with them.
pub async fn seed_target(
    target: &sqlx::PgPool,
    summary: &SampleSummary,
) -> Result<(), SampleError> {
    let r = &summary.records;
    let mut tx = target.begin().await.map_err(SampleError::Target)?;

    let (ids, names): (Vec<i64>, Vec<String>) = r
        .accounts
        .iter()
        .map(|a| (a.account_id, a.name.clone()))
        .unzip();
    sqlx::query(
        "INSERT INTO docutrax_accounts_account (id, name)
         SELECT * FROM UNNEST($1::bigint[], $2::text[]) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&names)
    .execute(&mut *tx)
    .await
    .map_err(SampleError::Target)?;

    let (ids, emails): (Vec<i64>, Vec<String>) = r
        .users
        .iter()
        .filter_map(|u| u.new_user_id.map(|id| (id, u.email.clone())))
        .unzip();
    sqlx::query(
        "INSERT INTO docutrax_users_user (id, email)
         SELECT * FROM UNNEST($1::bigint[], $2::text[]) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&emails)
    .execute(&mut *tx)
    .await
    .map_err(SampleError::Target)?;

    let mut records = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for v in r.mapped_vendors() {
        let (Some(record), Some(assignment), Some(account)) =
            (v.record_id, v.assignment_id, v.account_id)
        else {
            return Err(SampleError::Inconsistent(format!(
                "vendor {} is mapped but its customer {} has no account",
                v.id, v.customer_id
            )));
        };
        records.0.push(record);
        records.1.push(assignment);
        records.2.push(account);
        records.3.push(v.name.clone());
    }
    sqlx::query(
        "INSERT INTO docutrax_records_record (id, account_id, name)
         SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[]) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&records.0)
    .bind(&records.2)
    .bind(&records.3)
    .execute(&mut *tx)
    .await
    .map_err(SampleError::Target)?;
    sqlx::query(
        "INSERT INTO docutrax_records_assignment (id, record_id, account_id)
         SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[]) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&records.1)
    .bind(&records.0)
    .bind(&records.2)
    .execute(&mut *tx)
    .await
    .map_err(SampleError::Target)?;

    let accounts: BTreeMap<u64, i64> = r
        .accounts
        .iter()
        .map(|a| (a.customer_id, a.account_id))
        .collect();
    let mut profiles = (Vec::new(), Vec::new(), Vec::new());
    for q in &r.requirements {
        let Some(profile) = q.coi_risk_profile_id else {
            continue;
        };
        let account = accounts.get(&q.customer_id).ok_or_else(|| {
            SampleError::Inconsistent(format!(
                "requirements {} has a COI profile but customer {} no account",
                q.id, q.customer_id
            ))
        })?;
        profiles.0.push(profile);
        profiles.1.push(*account);
        profiles.2.push(format!("{} #{}", q.name, q.id));
    }
    sqlx::query(
        "INSERT INTO docutrax_profiles_coiriskprofile (id, account_id, name)
         SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[]) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&profiles.0)
    .bind(&profiles.1)
    .bind(&profiles.2)
    .execute(&mut *tx)
    .await
    .map_err(SampleError::Target)?;

    for table in [
        "docutrax_accounts_account",
        "docutrax_users_user",
        "docutrax_records_record",
        "docutrax_records_assignment",
        "docutrax_profiles_coiriskprofile",
    ] {
        // Never moves a sequence backwards: the larger of its last value and the table's max.
        sqlx::query(&format!(
            "SELECT setval(s.seq::regclass, GREATEST(COALESCE(pg_sequence_last_value(s.seq::regclass), 1), (SELECT COALESCE(MAX(id), 1) FROM {table})))
             FROM (SELECT pg_get_serial_sequence('{table}', 'id') AS seq) s"
        ))
        .execute(&mut *tx)
        .await
        .map_err(SampleError::Target)?;
    }
    tx.commit().await.map_err(SampleError::Target)?;
    Ok(())
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

/// Live legacy columns that differ from the DDL (which declares what the tool reads, not every
/// live definition), applied right after it: a latin1 `InsName`, whose bytes read as binary
/// need not be UTF-8 (the invalid-UTF-8 certificate), and a `HolderName` wider than DTX 2.0's
/// `certificate_holder_name` VARCHAR(255) (the overlong certificate). Every other `InsName`
/// value is ASCII, so it reads back as the same UTF-8 bytes.
const LIVE_COLUMN_DRIFT: [&str; 2] = [
    "ALTER TABLE certificate MODIFY InsName VARCHAR(255) CHARACTER SET latin1 NULL",
    "ALTER TABLE certificate MODIFY HolderName VARCHAR(400) NULL",
];

async fn write_legacy_tables(
    pool: &MySqlPool,
    plan: &Plan,
    records: &RecordPlan,
) -> Result<(), SampleError> {
    // One connection for everything: the session allows zero dates (sql_mode ''), as legacy
    // servers did. Such a session must never serve anyone else, so the connection is closed
    // instead of going back to the pool. A lax session also truncates and coerces silently;
    // every INSERT is therefore followed by a warnings check that turns any into an error.
    let mut conn = pool.acquire().await?;
    conn.close_on_drop();
    let conn = &mut *conn;

    // raw_sql: DDL takes no parameters, and the text protocol accepts every statement kind.
    // Every declared table, so a reused database never keeps rows from an earlier sample.
    let declared = crate::legacy::expected_columns(LEGACY_DDL);
    let tables: Vec<&str> = declared.keys().map(String::as_str).collect();
    // Foreign keys a DBA may have added by hand must not stop the drop (one connection: the
    // session setting applies to the statement after it).
    let drop = format!(
        "SET FOREIGN_KEY_CHECKS = 0; DROP TABLE IF EXISTS {}; SET FOREIGN_KEY_CHECKS = 1",
        tables.join(", ")
    );
    sqlx::raw_sql(&drop).execute(&mut *conn).await?;
    for statement in crate::legacy::ddl_statements(LEGACY_DDL) {
        sqlx::raw_sql(&statement).execute(&mut *conn).await?;
    }
    for alter in LIVE_COLUMN_DRIFT {
        sqlx::raw_sql(alter).execute(&mut *conn).await?;
    }
    sqlx::raw_sql("SET SESSION sql_mode = ''")
        .execute(&mut *conn)
        .await?;

    insert_batched(
        conn,
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
        conn,
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
        conn,
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
    // The certificate and document rows carry the file side's ids, customers, attachments and
    // times unchanged (see RecordPlanner), plus every other declared column.
    for (table, rows) in records.tables() {
        let columns = declared.get(table).ok_or_else(|| {
            SampleError::Inconsistent(format!("table {table} is not declared in the legacy DDL"))
        })?;
        insert_rows(conn, table, columns, rows).await?;
    }
    Ok(())
}

/// Rows per multi-row INSERT of a wide table: MySQL allows 65 535 placeholders per statement.
const MAX_PLACEHOLDERS: usize = 60_000;

/// Inserts `rows` into every declared column of `table` (a column a row does not name is NULL).
/// A row naming an undeclared column is a generator bug, refused before anything is sent.
async fn insert_rows(
    conn: &mut MySqlConnection,
    table: &str,
    columns: &[String],
    rows: &[LegacyRow],
) -> Result<(), SampleError> {
    let declared: BTreeSet<&str> = columns.iter().map(String::as_str).collect();
    for row in rows {
        if let Some(unknown) = row.keys().find(|c| !declared.contains(**c)) {
            return Err(SampleError::Inconsistent(format!(
                "{table} row names undeclared column {unknown}"
            )));
        }
    }
    let quoted: Vec<String> = columns.iter().map(|c| format!("`{c}`")).collect();
    let head = format!("INSERT INTO {table} ({}) ", quoted.join(", "));
    let per_statement = (MAX_PLACEHOLDERS / columns.len().max(1)).clamp(1, INSERT_BATCH_ROWS);
    for chunk in rows.chunks(per_statement) {
        let mut query = QueryBuilder::<MySql>::new(head.clone());
        query.push_values(chunk, |mut values, row| {
            for column in columns {
                match row.get(column.as_str()) {
                    None | Some(Val::Null) => values.push_bind(None::<i64>),
                    Some(Val::Int(v)) => values.push_bind(*v),
                    Some(Val::Text(v)) => values.push_bind(v.clone()),
                    Some(Val::Bytes(v)) => values.push_bind(v.clone()),
                };
            }
        });
        query.build().execute(&mut *conn).await?;
        check_warnings(conn, table).await?;
    }
    Ok(())
}

async fn insert_batched<T, F>(
    conn: &mut MySqlConnection,
    head: &'static str,
    rows: &[T],
    mut bind: F,
) -> Result<(), SampleError>
where
    F: FnMut(&mut Separated<'_, 'static, MySql, &'static str>, &T),
{
    for chunk in rows.chunks(INSERT_BATCH_ROWS) {
        let mut query = QueryBuilder::<MySql>::new(head);
        query.push_values(chunk, |mut row, item| bind(&mut row, item));
        query.build().execute(&mut *conn).await?;
        check_warnings(conn, head).await?;
    }
    Ok(())
}

/// The session runs with sql_mode '' (zero dates), so MySQL truncates or coerces a bad value
/// with a warning instead of an error; any warning after an INSERT is made an error here.
async fn check_warnings(conn: &mut MySqlConnection, what: &str) -> Result<(), SampleError> {
    // Text protocol: SHOW WARNINGS reads the diagnostics of the statement before it.
    let rows = sqlx::raw_sql("SHOW WARNINGS").fetch_all(&mut *conn).await?;
    if let Some(first) = rows.first() {
        let message: String = sqlx::Row::try_get(first, "Message")?;
        return Err(SampleError::Inconsistent(format!(
            "{what}: MySQL changed {} value(s) on insert, first: {message}",
            rows.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_splits_into_one_create_statement_per_table() {
        let statements = crate::legacy::ddl_statements(LEGACY_DDL);
        assert_eq!(
            statements.len(),
            crate::legacy::expected_columns(LEGACY_DDL).len(),
            "{statements:#?}"
        );
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

    fn records_of(spec: &SampleSpec) -> (Plan, RecordPlan) {
        let plan = Planner::new(spec).and_then(Planner::plan).expect("plan");
        let records = RecordPlanner::new(spec, &plan)
            .and_then(RecordPlanner::plan)
            .expect("record plan");
        (plan, records)
    }

    #[test]
    fn record_plan_is_deterministic_and_keeps_the_file_side() {
        let spec = SampleSpec::default();
        let (plan, a) = records_of(&spec);
        let (_, b) = records_of(&spec);
        assert_eq!(a.tables(), b.tables());
        assert_eq!(a.certificate_rows.len(), plan.certificates.len());
        for (row, cert) in a.certificate_rows.iter().zip(&plan.certificates) {
            assert_eq!(row.get("id"), Some(&int(cert.id)));
            assert_eq!(row.get("customer_id"), Some(&opt_int(cert.customer_id)));
            assert_eq!(row.get("attachment_id"), Some(&opt_int(cert.attachment_id)));
        }
        for (row, doc) in a.document_rows.iter().zip(&plan.documents) {
            assert_eq!(row.get("id"), Some(&int(doc.id)));
            assert_eq!(row.get("customer_id"), Some(&opt_int(doc.customer_id)));
            assert_eq!(row.get("attachment_id"), Some(&opt_int(doc.attachment_id)));
            assert_eq!(row.get("name"), Some(&opt_text(doc.name.clone())));
        }
        let other = SampleSpec {
            seed: 2,
            ..SampleSpec::default()
        };
        let (_, c) = records_of(&other);
        assert_ne!(a.tables(), c.tables());
    }

    #[test]
    fn record_plan_covers_every_scenario() {
        for spec in [
            SampleSpec::default(),
            // The smallest spec the file side accepts, with the fewest vendors.
            SampleSpec {
                customers: 4,
                certificates: 30,
                documents: 15,
                filerepo_files: 8,
                vendors_per_customer: 3,
                ..SampleSpec::default()
            },
        ] {
            let (plan, records) = records_of(&spec);
            let s = records.summarize(&plan).expect("summary");
            let c = &s.certificates;
            assert_eq!(c.total, u64::from(spec.certificates));
            assert_eq!(c.migrated + c.skipped, c.total);
            assert!(
                c.skipped_unmapped_customer > 0 && c.skipped_unmapped_vendor > 0,
                "{c:?}"
            );
            for value in [
                "FINISHED",
                "PENDING",
                "PROCESSING",
                "finished",
                "OCR_FAILED",
                "DUPLICATE",
                "(null)",
            ] {
                assert!(c.status_distribution.contains_key(value), "{value}: {c:?}");
            }
            assert_eq!(
                c.unknown_status_values.keys().collect::<Vec<_>>(),
                ["(null)", "DUPLICATE", "OCR_FAILED"]
            );
            assert!(!c.insured_name_conflicts.is_empty());
            assert_eq!(c.without_insured_name.len(), 2);
            assert_eq!(
                (
                    c.zero_date_ids.len(),
                    c.invalid_utf8_ids.len(),
                    c.overlong_ids.len()
                ),
                (3, 1, 1)
            );
            assert_eq!(
                (
                    c.with_replacement_id,
                    c.with_override_reason,
                    c.manual_overrides_expected
                ),
                (3, 3, 3)
            );
            assert!(c.unmapped_user >= 2);
            let st = &s.status_rows;
            assert_eq!(st.orphan_rows, 3);
            assert!(st.unmapped_field_names.contains_key("BondAmount"));
            assert!(st.evaluations_pass > 0 && st.evaluations_fail > 0);
            let g = &s.requirements_groups;
            assert!(
                !g.certificate_only.is_empty() && !g.vendor_only.is_empty(),
                "{g:?}"
            );
            // The last vendor of every customer, and any other that happened to get none.
            assert!(s.vendors_without_certificates.len() >= spec.customers as usize);
            let l = &s.libraries;
            assert_eq!(
                l.duplicate_names.get("w-9"),
                Some(&u64::from(spec.customers))
            );
            assert_eq!((l.without_name_ids.len(), l.unreferenced_ids.len()), (1, 1));
            let d = &s.documents;
            assert!(d.unknown_status_values.contains_key("3"));
            assert!(d.unknown_requirement_status_values.contains_key("EXPIRED"));
            // A child of an existing document and one whose parent does not exist.
            assert_eq!(
                (
                    d.with_parent_document_id.len(),
                    d.parent_missing_ids.len(),
                    d.docusign_templates.len(),
                    d.zero_date_ids.len()
                ),
                (2, 1, 1, 1)
            );
            assert!(d.with_parent_document_id.contains(&d.parent_missing_ids[0]));
            // Every Decision #6 spelling, on a migrated document.
            let rows = records.document_rows.iter();
            let migrated: Vec<&LegacyRow> = rows
                .filter(|r| {
                    !d.skipped_ids
                        .contains(&row_int(r, "id").unwrap_or_default())
                })
                .collect();
            for value in DOCUMENT_STATUS_SPELLINGS {
                assert!(
                    migrated
                        .iter()
                        .any(|r| r.get("document_status") == Some(&text(*value))),
                    "{value}: {:?}",
                    d.status_distribution
                );
            }
            assert_eq!(d.migrated_status.values().sum::<u64>(), d.migrated);
            assert_eq!(
                d.migrated_status.keys().collect::<Vec<_>>(),
                ["new", "ocr_reject", "submitted"]
            );
            assert!(d.skipped > 0 && d.unmapped_user == 1);
            assert_eq!(s.unmapped_user_ids.len(), 1);
            let unmapped = s
                .vendors
                .iter()
                .find(|v| v.id == s.deliberately_unmapped_vendor_id)
                .expect("unmapped vendor");
            assert!(unmapped.account_id.is_some() && unmapped.record_id.is_none());
            assert!(
                unmapped.certificates > 0 && unmapped.documents > 0,
                "{unmapped:?}"
            );
            assert!(s
                .requirements
                .iter()
                .all(|r| r.coi_risk_profile_id.is_some()
                    == s.accounts.iter().any(|a| a.customer_id == r.customer_id)));
        }
    }

    #[test]
    fn too_few_vendors_are_rejected() {
        let spec = SampleSpec {
            vendors_per_customer: 2,
            ..SampleSpec::default()
        };
        let plan = Planner::new(&spec).and_then(Planner::plan).expect("plan");
        assert!(matches!(
            RecordPlanner::new(&spec, &plan),
            Err(SampleError::InvalidSpec(_))
        ));
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
