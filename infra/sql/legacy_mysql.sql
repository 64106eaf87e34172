-- DTX 1.0 legacy schema as dtx-migrate assumes it (MySQL / MariaDB 10.11).
--
-- This file is the single statement of which legacy tables and columns the tool reads.
-- The binaries embed it: at the start of every run the live database is compared against it
-- (each caller names the tables it reads: the file move checks customer, certificate, document,
-- attachment and repo_file; the record loader checks every table below) and a missing table or
-- column is reported by name before anything is read or written.
-- The sample-data generator creates its database from this same file and inserts rows naming
-- only the columns it knows, so every column not in its INSERTs is NULLable.
--
-- Only the columns the migration reads (or reports on as dropped, per the design's mapping and
-- "dropped" tables) are declared; the live tables may have more. Types are the legacy ones as
-- far as they are known; readers cast what they read (ids AS UNSIGNED, text AS BINARY), so a
-- live column of a neighbouring type (INT for a VARCHAR code, say) still reads.
--
-- Legacy rows may hold zero dates ('0000-00-00', '0000-00-00 00:00:00'): nothing here forbids
-- them (no zero-date DEFAULT, no CHECK), and a session that writes them must allow them
-- (SET SESSION sql_mode=''). Readers must treat a zero date as absent.
--
-- Not declared, because they are not migrated: certificate_queue (Decision #14, a transient
-- processing queue) and missing_documents (Decision #13, a cache DTX 2.0 recalculates).
--
-- Format, relied on by shared/src/legacy.rs: one statement per table (CREATE TABLE only), one
-- column per line with the column name first, indexes as KEY lines, the table closed by a line
-- starting with ')'. Comments only on lines of their own.

CREATE TABLE IF NOT EXISTS customer (
  id            INT UNSIGNED NOT NULL PRIMARY KEY,
  name          VARCHAR(255) NULL,
  logo          VARCHAR(512) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- The full denormalized ACORD certificate row (the design's "69+ fields").
CREATE TABLE IF NOT EXISTS certificate (
  id                     INT UNSIGNED NOT NULL PRIMARY KEY,
  customer_id            INT UNSIGNED NULL,
  vendor_id              INT UNSIGNED NULL,
  attachment_id          INT UNSIGNED NULL,
  create_time            DATETIME NULL,
  -- Core fields
  CertNo                 VARCHAR(100) NULL,
  certificate_expiration DATE NULL,
  OpsDesc                TEXT NULL,
  AuthRepName            VARCHAR(255) NULL,
  AuthDate               DATE NULL,
  update_time            DATETIME NULL,
  -- Producer (agent)
  ProdName               VARCHAR(255) NULL,
  ProdTitle              VARCHAR(100) NULL,
  ProdContact            VARCHAR(255) NULL,
  ProdAddr1              VARCHAR(255) NULL,
  ProdAddr2              VARCHAR(255) NULL,
  ProdCity               VARCHAR(100) NULL,
  ProdState              VARCHAR(50) NULL,
  ProdZip                VARCHAR(20) NULL,
  ProdPhone              VARCHAR(30) NULL,
  ProdPhoneExtension     VARCHAR(10) NULL,
  ProdFax                VARCHAR(30) NULL,
  ProdEmail              VARCHAR(255) NULL,
  -- Insured
  InsName                VARCHAR(255) NULL,
  InsName1               VARCHAR(255) NULL,
  InsAddr1               VARCHAR(255) NULL,
  InsAddr2               VARCHAR(255) NULL,
  InsCity                VARCHAR(100) NULL,
  InsState               VARCHAR(50) NULL,
  InsZip                 VARCHAR(20) NULL,
  InsContact             VARCHAR(255) NULL,
  InsTitle               VARCHAR(100) NULL,
  InsPhone               VARCHAR(30) NULL,
  InsPhoneExtension      VARCHAR(10) NULL,
  InsFax                 VARCHAR(30) NULL,
  InsMobilePhone         VARCHAR(30) NULL,
  InsEmail               VARCHAR(255) NULL,
  -- Certificate holder
  HolderName             VARCHAR(255) NULL,
  HolderAddr1            VARCHAR(255) NULL,
  HolderAddr2            VARCHAR(255) NULL,
  HolderCity             VARCHAR(100) NULL,
  HolderState            VARCHAR(50) NULL,
  HolderZip              VARCHAR(20) NULL,
  HolderContact          VARCHAR(255) NULL,
  HolderTitle            VARCHAR(100) NULL,
  HolderPhone            VARCHAR(30) NULL,
  HolderFax              VARCHAR(30) NULL,
  HolderEmail            VARCHAR(255) NULL,
  -- References (customer_id, vendor_id and attachment_id are above)
  requirements_id        INT UNSIGNED NULL,
  document_set_id        INT UNSIGNED NULL,
  replacement_id         INT UNSIGNED NULL,
  broker_id              INT UNSIGNED NULL,
  reviewer_id            INT UNSIGNED NULL,
  user_id                INT UNSIGNED NULL,
  -- Dropped by the design (read only to report on them)
  jws_Certificate_ID     VARCHAR(64) NULL,
  page_name              VARCHAR(255) NULL,
  starting_page          INT NULL,
  ocr                    TINYINT(1) NULL,
  CertRevNo              VARCHAR(20) NULL,
  review_status          VARCHAR(32) NULL,
  review_time            DATETIME NULL,
  OpsDescReviewStatus    VARCHAR(32) NULL,
  OpsDescReason          VARCHAR(512) NULL,
  OpsDescCorrectedBy     VARCHAR(100) NULL,
  HolderReviewStatus     VARCHAR(32) NULL,
  HolderReason           VARCHAR(512) NULL,
  HolderCorrectedBy      VARCHAR(100) NULL,
  override_reason        TEXT NULL,
  AMBestRatingOK         TINYINT(1) NULL,
  WCExempt               TINYINT(1) NULL,
  proper_ph_name         VARCHAR(255) NULL,
  proper_ch_name         VARCHAR(255) NULL,
  Customer1              VARCHAR(255) NULL,
  Customer2              VARCHAR(255) NULL,
  Customer3              VARCHAR(255) NULL,
  final_pol_expiration   DATE NULL,
  certificate_status     VARCHAR(32) NULL,
  AuthRepAffirm          VARCHAR(10) NULL,
  KEY idx_certificate_customer (customer_id),
  KEY idx_certificate_vendor (vendor_id),
  KEY idx_certificate_attachment (attachment_id),
  KEY idx_certificate_requirements (requirements_id),
  KEY idx_certificate_document_set (document_set_id),
  KEY idx_certificate_replacement (replacement_id),
  KEY idx_certificate_user (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Per-field compliance checks of a certificate (e.g. COMPLIANT / GLPolExpDate / 2018-04-01 / 2019-02-06).
CREATE TABLE IF NOT EXISTS certificate_status (
  id             INT UNSIGNED NOT NULL PRIMARY KEY,
  certificate_id INT UNSIGNED NULL,
  status_code    VARCHAR(32) NULL,
  field_name     VARCHAR(64) NULL,
  minimum        VARCHAR(255) NULL,
  actual         VARCHAR(255) NULL,
  create_time    DATETIME NULL,
  KEY idx_certificate_status_certificate (certificate_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Read for its (customer_id, requirements_id, document_set_id) combinations: vendors may have
-- requirements without certificates (Decision #1).
CREATE TABLE IF NOT EXISTS vendor (
  id              INT UNSIGNED NOT NULL PRIMARY KEY,
  customer_id     INT UNSIGNED NULL,
  requirements_id INT UNSIGNED NULL,
  document_set_id INT UNSIGNED NULL,
  name            VARCHAR(255) NULL,
  KEY idx_vendor_customer (customer_id),
  KEY idx_vendor_requirements (requirements_id),
  KEY idx_vendor_document_set (document_set_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Non-COI documents (the design's 23 fields).
CREATE TABLE IF NOT EXISTS document (
  id                   INT UNSIGNED NOT NULL PRIMARY KEY,
  customer_id          INT UNSIGNED NULL,
  vendor_id            INT UNSIGNED NULL,
  attachment_id        INT UNSIGNED NULL,
  name                 VARCHAR(255) NULL,
  create_time          DATETIME NULL,
  expiration_date      DATE NULL,
  comments             TEXT NULL,
  update_time          DATETIME NULL,
  -- Numeric codes in the sample (0); read as text.
  document_status      VARCHAR(32) NULL,
  document_library_id  INT UNSIGNED NULL,
  reviewer_id          INT UNSIGNED NULL,
  user_id              INT UNSIGNED NULL,
  -- Dropped by the design (read only to report on them)
  docusign_template_id VARCHAR(64) NULL,
  parent_document_id   INT UNSIGNED NULL,
  source_coi           TINYINT(1) NULL,
  source_broker        TINYINT(1) NULL,
  source_insured       TINYINT(1) NULL,
  send_sample          TINYINT(1) NULL,
  next_review_level    VARCHAR(32) NULL,
  review_status        VARCHAR(32) NULL,
  review_status_date   DATETIME NULL,
  review_period        INT NULL,
  KEY idx_document_customer (customer_id),
  KEY idx_document_vendor (vendor_id),
  KEY idx_document_attachment (attachment_id),
  KEY idx_document_library (document_library_id),
  KEY idx_document_parent (parent_document_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Vendor x document status tracking (NOT_PROVIDED, PROVIDED, APPROVED, REJECTED, OVERRIDE, ...).
CREATE TABLE IF NOT EXISTS document_status (
  id                  INT UNSIGNED NOT NULL PRIMARY KEY,
  vendor_id           INT UNSIGNED NULL,
  customer_id         INT UNSIGNED NULL,
  document_id         INT UNSIGNED NULL,
  document_library_id INT UNSIGNED NULL,
  document_status     VARCHAR(32) NULL,
  create_time         DATETIME NULL,
  KEY idx_document_status_vendor (vendor_id),
  KEY idx_document_status_customer (customer_id),
  KEY idx_document_status_document (document_id),
  KEY idx_document_status_library (document_library_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Document template definitions per customer (become global DocumentTypes, Decision #7).
CREATE TABLE IF NOT EXISTS document_library (
  id          INT UNSIGNED NOT NULL PRIMARY KEY,
  customer_id INT UNSIGNED NULL,
  name        VARCHAR(255) NULL,
  description TEXT NULL,
  create_time DATETIME NULL,
  KEY idx_document_library_customer (customer_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Named document requirement sets per customer (become DocumentRiskProfiles, Decision #8).
CREATE TABLE IF NOT EXISTS document_set (
  id          INT UNSIGNED NOT NULL PRIMARY KEY,
  customer_id INT UNSIGNED NULL,
  name        VARCHAR(255) NULL,
  description TEXT NULL,
  create_time DATETIME NULL,
  KEY idx_document_set_customer (customer_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Junction: document_set x document.
CREATE TABLE IF NOT EXISTS document_requirements (
  id              INT UNSIGNED NOT NULL PRIMARY KEY,
  document_set_id INT UNSIGNED NULL,
  document_id     INT UNSIGNED NULL,
  KEY idx_document_requirements_set (document_set_id),
  KEY idx_document_requirements_document (document_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS attachment (
  id             INT UNSIGNED NOT NULL PRIMARY KEY,
  name           VARCHAR(512) NULL,
  certificate_id INT UNSIGNED NULL,
  document_id    INT UNSIGNED NULL,
  create_time    DATETIME NULL,
  KEY idx_attachment_certificate (certificate_id),
  KEY idx_attachment_document (document_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS repo_file (
  id             INT UNSIGNED NOT NULL PRIMARY KEY,
  repo_filepath  VARCHAR(1024) NULL,
  treatment      VARCHAR(32) NULL,
  status         VARCHAR(32) NULL,
  upload_src     VARCHAR(32) NULL,
  certificate_id INT UNSIGNED NULL,
  document_id    INT UNSIGNED NULL,
  attachment_id  INT UNSIGNED NULL,
  customer_id    INT UNSIGNED NULL,
  KEY idx_repo_file_attachment (attachment_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
