//! The SQL schemas under infra/sql: the legacy DDL applies to MariaDB and declares the design's
//! columns; the DTX 2.0 target mirror and the loader's bookkeeping apply to PostgreSQL, twice.
//!
//! Each test's body returns a `Result` (checks are `ensure!`s) so its throwaway database is
//! dropped whether or not the checks pass.

use anyhow::{anyhow, ensure, Context};
use shared::legacy::{ddl_statements, expected_columns, validate_schema, LEGACY_DDL};
use shared::manifest::{ManifestRecord, CSV_HEADER};
use shared::message::LegacyIds;
use shared::model::{Area, FileStatus};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolCopyExt, PgPoolOptions};
use sqlx::{MySqlPool, Row};
use std::collections::BTreeSet;
use tests::{postgres_server_url, MysqlFixture, BOOKKEEPING_DDL, TARGET_DDL};

/// Every legacy table the record loader reads. certificate_queue and missing_documents are not
/// migrated (Decisions #13, #14) and so not declared.
const LEGACY_TABLES: [&str; 11] = [
    "attachment",
    "certificate",
    "certificate_status",
    "customer",
    "document",
    "document_library",
    "document_requirements",
    "document_set",
    "document_status",
    "repo_file",
    "vendor",
];

/// The DTX 1.0 certificate columns the design names (mapping tables and the "dropped" table),
/// with the design's exact spelling.
const SPEC_CERTIFICATE_COLUMNS: [&str; 77] = [
    "CertNo", "certificate_expiration", "OpsDesc", "AuthRepName", "AuthDate", "create_time", "update_time",
    "ProdName", "ProdTitle", "ProdContact", "ProdAddr1", "ProdAddr2", "ProdCity", "ProdState", "ProdZip",
    "ProdPhone", "ProdPhoneExtension", "ProdFax", "ProdEmail",
    "InsName", "InsName1", "InsAddr1", "InsAddr2", "InsCity", "InsState", "InsZip", "InsContact", "InsTitle",
    "InsPhone", "InsPhoneExtension", "InsFax", "InsMobilePhone", "InsEmail",
    "HolderName", "HolderAddr1", "HolderAddr2", "HolderCity", "HolderState", "HolderZip", "HolderContact",
    "HolderTitle", "HolderPhone", "HolderFax", "HolderEmail",
    "customer_id", "vendor_id", "requirements_id", "document_set_id", "replacement_id", "broker_id",
    "attachment_id", "reviewer_id", "user_id",
    "jws_Certificate_ID", "page_name", "starting_page", "ocr", "CertRevNo", "review_status", "review_time",
    "OpsDescReviewStatus", "OpsDescReason", "OpsDescCorrectedBy", "HolderReviewStatus", "HolderReason",
    "HolderCorrectedBy", "override_reason", "AMBestRatingOK", "WCExempt", "proper_ph_name", "proper_ch_name",
    "Customer1", "Customer2", "Customer3", "final_pol_expiration", "certificate_status", "AuthRepAffirm",
];

/// The design's 23 document fields.
const SPEC_DOCUMENT_COLUMNS: [&str; 23] = [
    "id", "name", "expiration_date", "comments", "create_time", "update_time", "attachment_id", "document_status",
    "vendor_id", "customer_id", "document_library_id", "reviewer_id", "user_id", "docusign_template_id",
    "parent_document_id", "source_coi", "source_broker", "source_insured", "send_sample", "next_review_level",
    "review_status", "review_status_date", "review_period",
];

#[tokio::test]
async fn legacy_ddl_applies_and_declares_the_spec_columns() {
    let db = MysqlFixture::new().await;
    let result = check_legacy_ddl(&db.pool).await;
    db.drop_database().await;
    result.unwrap();
}

async fn check_legacy_ddl(pool: &MySqlPool) -> anyhow::Result<()> {
    // Twice: every statement is CREATE TABLE IF NOT EXISTS.
    for round in 1..=2 {
        for statement in ddl_statements(LEGACY_DDL) {
            sqlx::raw_sql(&statement).execute(pool).await.with_context(|| format!("round {round}: {statement}"))?;
        }
    }
    let declared = expected_columns(LEGACY_DDL);
    let declared_tables: Vec<&str> = declared.keys().map(String::as_str).collect();
    ensure!(declared_tables == LEGACY_TABLES, "declared tables {declared_tables:?}");
    validate_schema(pool, LEGACY_DDL, &LEGACY_TABLES).await.context("the DDL's own schema validates")?;

    let certificate = &declared["certificate"];
    ensure!(certificate.len() >= 69, "certificate declares only {} columns", certificate.len());
    for column in ["InsName1", "HolderEmail", "override_reason"].iter().chain(&SPEC_CERTIFICATE_COLUMNS) {
        ensure!(certificate.iter().any(|c| c == column), "certificate.{column} is not declared");
    }
    ensure!(
        declared["document"].iter().map(String::as_str).collect::<BTreeSet<_>>() == SPEC_DOCUMENT_COLUMNS.into_iter().collect(),
        "document declares {:?}",
        declared["document"]
    );

    // The live tables have exactly the declared columns, in order and with the declared case.
    for table in LEGACY_TABLES {
        let live: Vec<String> = sqlx::query_scalar(
            "SELECT CAST(column_name AS CHAR) FROM information_schema.columns
             WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position",
        )
        .bind(table)
        .fetch_all(pool)
        .await?;
        ensure!(live == declared[table], "{table}: live {live:?} != declared {:?}", declared[table]);
    }

    // Legacy rows hold zero dates, which a strict sql_mode with NO_ZERO_DATE refuses; the DDL
    // itself must not forbid them. SET SESSION is per connection, so one connection does both.
    let mut conn = pool.acquire().await?;
    sqlx::raw_sql("SET SESSION sql_mode=''").execute(&mut *conn).await?;
    sqlx::raw_sql(
        "INSERT INTO certificate (id, customer_id, CertNo, certificate_expiration, AuthDate, final_pol_expiration, create_time, update_time, InsName1, HolderEmail, override_reason)
         VALUES (1, 7, 'C-1', '0000-00-00', '0000-00-00', '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', 'DBA Name', 'holder@example.com', 'approved by phone')",
    )
    .execute(&mut *conn)
    .await
    .context("a certificate row with zero dates")?;
    sqlx::raw_sql("INSERT INTO document (id, customer_id, name, expiration_date, review_status_date) VALUES (1, 7, 'W-9', '0000-00-00', '0000-00-00 00:00:00')")
        .execute(&mut *conn)
        .await
        .context("a document row with zero dates")?;
    let row = sqlx::query(
        "SELECT CAST(certificate_expiration AS CHAR) AS expiration, CAST(create_time AS CHAR) AS created FROM certificate WHERE id = 1",
    )
    .fetch_one(&mut *conn)
    .await?;
    let expiration: String = row.try_get("expiration")?;
    let created: String = row.try_get("created")?;
    ensure!(expiration == "0000-00-00" && created == "0000-00-00 00:00:00", "stored {expiration:?} / {created:?}");
    Ok(())
}

#[tokio::test]
async fn target_and_bookkeeping_ddl_apply_twice_on_postgres() {
    let server: PgConnectOptions = postgres_server_url().parse().expect("postgres url");
    let admin = PgPool::connect_with(server.clone()).await.expect("PostgreSQL is running (infra/local/services.sh)");
    let name = tests::unique("dtx_t_");
    sqlx::raw_sql(&format!("CREATE DATABASE {name}")).execute(&admin).await.expect("create database");
    let pool = PgPoolOptions::new().max_connections(2).connect_with(server.database(&name)).await.expect("connect test database");

    let result = check_target_and_bookkeeping(&pool).await;

    pool.close().await;
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&admin).await.expect("drop database");
    admin.close().await;
    result.unwrap();
}

/// Columns, constraints and indexes of both schemas, one line each.
async fn schema_fingerprint(pool: &PgPool) -> anyhow::Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT table_schema || '.' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '')
           FROM information_schema.columns WHERE table_schema IN ('public', 'dtx_migration')
         UNION ALL
         SELECT n.nspname || ' constraint ' || c.conname || ' ' || pg_get_constraintdef(c.oid)
           FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname IN ('public', 'dtx_migration')
         UNION ALL
         SELECT schemaname || ' index ' || indexdef FROM pg_indexes WHERE schemaname IN ('public', 'dtx_migration')
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await?)
}

async fn check_target_and_bookkeeping(pool: &PgPool) -> anyhow::Result<()> {
    let mut fingerprints = Vec::new();
    for round in 1..=2 {
        for (file, ddl) in [("target_postgres.sql", TARGET_DDL), ("migration_bookkeeping.sql", BOOKKEEPING_DDL)] {
            sqlx::raw_sql(ddl).execute(pool).await.with_context(|| format!("{file}, application {round}"))?;
        }
        fingerprints.push(schema_fingerprint(pool).await?);
    }
    ensure!(fingerprints[0] == fingerprints[1], "the second application changed the schema");

    let columns: BTreeSet<String> = sqlx::query_scalar(
        "SELECT table_schema || '.' || table_name || '.' || column_name || ' ' || is_nullable
         FROM information_schema.columns WHERE table_schema IN ('public', 'dtx_migration')",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();
    let tables: BTreeSet<&str> = columns.iter().filter_map(|c| c.rsplit_once('.').map(|(table, _)| table)).collect();
    for table in [
        "public.docutrax_accounts_account",
        "public.docutrax_records_record",
        "public.docutrax_records_assignment",
        "public.docutrax_users_user",
        "public.docutrax_profiles_coiriskprofile",
        "public.docutrax_profiles_documenttype",
        "public.docutrax_profiles_documentriskprofile",
        "public.docutrax_profiles_documentriskprofiledocumenttype",
        "public.docutrax_hierarchy_requirementsgroup",
        "public.docutrax_hierarchy_requirementsgroupmember",
        "public.docutrax_profiles_certificate",
        "public.docutrax_profiles_evaluation",
        "public.docutrax_profiles_evaluationcoverage",
        "public.docutrax_profiles_evaluationdetail",
        "public.docutrax_profiles_manualoverride",
        "public.docutrax_profiles_document",
        "public.docutrax_profiles_docrequirement",
        "public.docutrax_profiles_documentrequirementfulfillment",
        "public.docutrax_profiles_audithistory",
        "dtx_migration.id_map",
        "dtx_migration.step_run",
        "dtx_migration.issue",
        "dtx_migration.file_manifest",
    ] {
        ensure!(tables.contains(table), "table {table} is missing");
    }
    for column in [
        "public.docutrax_profiles_certificate.current_evaluation_id YES",
        "public.docutrax_profiles_certificate.requirements_group_id NO",
        "public.docutrax_profiles_certificate.carrier_a_name YES",
        "public.docutrax_profiles_certificate.carrier_f_naic YES",
        "public.docutrax_profiles_certificate.file YES",
        "public.docutrax_profiles_certificate.file_uid YES",
        "public.docutrax_profiles_certificate.status NO",
        "public.docutrax_profiles_certificate.created NO",
        "public.docutrax_profiles_certificate.created_by_id YES",
        "public.docutrax_profiles_evaluationdetail.field_key YES",
        "public.docutrax_profiles_evaluationdetail.required_value YES",
        "public.docutrax_profiles_document.expiry_date YES",
        "public.docutrax_profiles_document.supervisor_notes YES",
        "public.docutrax_profiles_documentriskprofiledocumenttype.order NO",
        "public.docutrax_hierarchy_requirementsgroup.coi_risk_profile_id YES",
        "public.docutrax_profiles_audithistory.snapshot NO",
        "dtx_migration.id_map.new_id NO",
        "dtx_migration.step_run.cursor YES",
        "dtx_migration.issue.legacy_key NO",
    ] {
        ensure!(columns.contains(column), "column {column} is missing (or has the wrong nullability)");
    }
    let carriers = columns.iter().filter(|c| c.starts_with("public.docutrax_profiles_certificate.carrier_")).count();
    ensure!(carriers == 12, "{carriers} carrier columns");

    // file_manifest has file_manifest.csv's columns in its order, and the CSV imports.
    let manifest_columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns
         WHERE table_schema = 'dtx_migration' AND table_name = 'file_manifest' ORDER BY ordinal_position",
    )
    .fetch_all(pool)
    .await?;
    ensure!(manifest_columns == CSV_HEADER, "file_manifest columns {manifest_columns:?}");
    check_manifest_import(pool).await?;

    check_certificate_constraints(pool).await?;
    check_issue_is_recorded_once(pool).await?;
    Ok(())
}

async fn check_manifest_import(pool: &PgPool) -> anyhow::Result<()> {
    let records = [
        ManifestRecord {
            source_key: "attachment:30001".into(),
            area: Some(Area::Certificates),
            account_id: Some("5101".into()),
            legacy_path: "/efsdata/attachments/certificate_management/10001/coi.pdf".into(),
            s3_key: Some("5101/certificates/coi.pdf".into()),
            content_hash: Some("ab".repeat(32)),
            file_uid: Some(format!("{}_20240101000000000000", "ab".repeat(32))),
            size: Some(1234),
            ids: LegacyIds { customer_id: Some(101), certificate_id: Some(10001), attachment_id: Some(30001), ..Default::default() },
            original_filename: "coi.pdf".into(),
            status: Some(FileStatus::Moved),
            ..Default::default()
        },
        ManifestRecord {
            source_key: "logo:106".into(),
            area: Some(Area::Logos),
            legacy_path: "/efsdata/logos/unmapped.png".into(),
            status: Some(FileStatus::Rejected),
            last_error: Some("unmapped account".into()),
            ..Default::default()
        },
    ];
    let mut csv = Vec::new();
    shared::manifest::write_csv(&records, &mut csv)?;
    let mut copy = pool.copy_in_raw("COPY dtx_migration.file_manifest FROM STDIN WITH (FORMAT csv, HEADER MATCH)").await?;
    copy.send(csv).await?;
    let imported = copy.finish().await?;
    ensure!(imported == 2, "{imported} rows imported");
    let row = sqlx::query("SELECT account_id, certificate_id, size, status FROM dtx_migration.file_manifest WHERE source_key = 'attachment:30001'")
        .fetch_one(pool)
        .await?;
    ensure!(row.try_get::<Option<i64>, _>("account_id")? == Some(5101));
    ensure!(row.try_get::<Option<i64>, _>("certificate_id")? == Some(10001));
    ensure!(row.try_get::<Option<i64>, _>("size")? == Some(1234));
    ensure!(row.try_get::<Option<String>, _>("status")?.as_deref() == Some("moved"));
    let unmapped: Option<i64> = sqlx::query_scalar("SELECT account_id FROM dtx_migration.file_manifest WHERE source_key = 'logo:106'").fetch_one(pool).await?;
    ensure!(unmapped.is_none(), "an empty CSV field imports as NULL");
    Ok(())
}

/// The status CHECK, and the circular certificate <-> evaluation foreign keys (both deferred).
async fn check_certificate_constraints(pool: &PgPool) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let account: i64 = sqlx::query_scalar("INSERT INTO docutrax_accounts_account (name) VALUES ('Acme') RETURNING id").fetch_one(&mut *tx).await?;
    let group: i64 = sqlx::query_scalar(
        "INSERT INTO docutrax_hierarchy_requirementsgroup (account_id, name, created, modified) VALUES ($1, 'Acme default', now(), now()) RETURNING id",
    )
    .bind(account)
    .fetch_one(&mut *tx)
    .await?;
    let certificate: i64 = sqlx::query_scalar(
        "INSERT INTO docutrax_profiles_certificate (status, requirements_group_id, created, modified) VALUES ('evaluated', $1, now(), now()) RETURNING id",
    )
    .bind(group)
    .fetch_one(&mut *tx)
    .await?;
    let evaluation: i64 = sqlx::query_scalar(
        "INSERT INTO docutrax_profiles_evaluation (certificate_id, requirements_group_id, status, created, modified) VALUES ($1, $2, 'pass', now(), now()) RETURNING id",
    )
    .bind(certificate)
    .bind(group)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("UPDATE docutrax_profiles_certificate SET current_evaluation_id = $1 WHERE id = $2").bind(evaluation).bind(certificate).execute(&mut *tx).await?;
    tx.commit().await.context("a certificate with its current evaluation")?;

    let err = sqlx::query("INSERT INTO docutrax_profiles_certificate (status, requirements_group_id, created, modified) VALUES ('bogus', $1, now(), now())")
        .bind(group)
        .execute(pool)
        .await
        .err()
        .ok_or_else(|| anyhow!("status 'bogus' was accepted"))?;
    let db_err = err.as_database_error().ok_or_else(|| anyhow!("not a database error: {err}"))?;
    ensure!(db_err.code().as_deref() == Some("23514"), "{err}");
    ensure!(db_err.constraint() == Some("dtx_certificate_status_check"), "{err}");

    // current_evaluation_id really references evaluations: checked at commit (deferred).
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE docutrax_profiles_certificate SET current_evaluation_id = $1 WHERE id = $2").bind(evaluation + 1000).bind(certificate).execute(&mut *tx).await?;
    let err = tx.commit().await.err().ok_or_else(|| anyhow!("a dangling current_evaluation_id was accepted"))?;
    let db_err = err.as_database_error().ok_or_else(|| anyhow!("not a database error: {err}"))?;
    ensure!(db_err.code().as_deref() == Some("23503"), "{err}");
    Ok(())
}

async fn check_issue_is_recorded_once(pool: &PgPool) -> anyhow::Result<()> {
    for _ in 0..2 {
        sqlx::query(
            "INSERT INTO dtx_migration.issue (step, entity, legacy_key, reason, detail)
             VALUES ('certificates', 'certificate', '10001', 'unmapped customer', 'customer 106')
             ON CONFLICT ON CONSTRAINT issue_once DO NOTHING",
        )
        .execute(pool)
        .await?;
    }
    let issues: i64 = sqlx::query_scalar("SELECT count(*) FROM dtx_migration.issue").fetch_one(pool).await?;
    ensure!(issues == 1, "{issues} issues after recording one twice");
    Ok(())
}
