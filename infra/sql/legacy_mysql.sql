-- DTX 1.0 legacy schema as dtx-migrate assumes it (MySQL / MariaDB).
--
-- This file is the single statement of which legacy tables and columns the tool reads.
-- The binaries embed it: at the start of every run the live database is compared against it
-- and a missing table or column is reported by name before anything is read or written.
-- The sample-data generator creates its database from this same file.
--
-- Only the columns the migration reads are declared; the live tables may have more.

CREATE TABLE IF NOT EXISTS customer (
  id            INT UNSIGNED NOT NULL PRIMARY KEY,
  name          VARCHAR(255) NULL,
  logo          VARCHAR(512) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS certificate (
  id            INT UNSIGNED NOT NULL PRIMARY KEY,
  customer_id   INT UNSIGNED NULL,
  vendor_id     INT UNSIGNED NULL,
  attachment_id INT UNSIGNED NULL,
  create_time   DATETIME NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS document (
  id            INT UNSIGNED NOT NULL PRIMARY KEY,
  customer_id   INT UNSIGNED NULL,
  vendor_id     INT UNSIGNED NULL,
  attachment_id INT UNSIGNED NULL,
  name          VARCHAR(255) NULL,
  create_time   DATETIME NULL
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
