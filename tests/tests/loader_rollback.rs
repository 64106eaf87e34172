//! `load --rollback`: a rehearsal on the generated sample rolled back leaves the target exactly
//! as before (table dumps compared, bookkeeping included) and reruns to the same rows; single
//! steps roll back alone in reverse order; a step still depended on is refused; reused DTX 2.0
//! rows and prior values survive; rows outside the migration and unknown entities refuse.
//!
//! Needs MariaDB and PostgreSQL (infra/local/services.sh).

use chrono::{DateTime, Utc};
use shared::loader::book;
use shared::loader::rollback::{self, RollbackError, RollbackReport, COLUMN_RESETS, REGISTRY, SOFT_REFERENCES};
use shared::loader::runner::{LoadRequest, Loader, LoaderMappings, Step};
use shared::sample::{ExpectedOutcome, SampleSpec};
use std::collections::{BTreeMap, BTreeSet};
use tests::{MysqlFixture, PgFixture};

/// The steps that write to the target, in order (validate, export-mappings and verify write
/// reports only).
fn writing_steps() -> Vec<Step> {
    Step::ALL.into_iter().filter(|s| (2..=12).contains(&s.number())).collect()
}

/// The generated sample in MariaDB, its DTX 2.0 stand-ins in PostgreSQL, plus DTX 2.0 rows of
/// its own: a DocumentType whose name a legacy library has (reused, created = false) and an
/// account logo (overwritten by the files step, so a prior value).
struct Rehearsal {
    legacy: MysqlFixture,
    target: PgFixture,
    loader: Loader,
    _dir: tempfile::TempDir,
    /// The pre-existing DocumentType.
    reused_type: i64,
    /// The account whose existing logo the files step overwrites.
    logo_account: i64,
}

impl Rehearsal {
    async fn new() -> Self {
        let legacy = MysqlFixture::new().await;
        let target = PgFixture::new().await;
        let dir = tempfile::tempdir().unwrap();
        let (root, mappings, reports) = (dir.path().join("efsdata"), dir.path().join("mappings"), dir.path().join("reports"));
        for d in [&root, &mappings, &reports] {
            std::fs::create_dir_all(d).unwrap();
        }
        let spec = SampleSpec { large_file_bytes: 0, max_small_file_bytes: 4 * 1024, ..Default::default() };
        let summary = shared::sample::generate(&legacy.pool, &root, &mappings, &spec).await.unwrap();
        shared::sample::seed_target(&target.pool, &summary).await.unwrap();
        std::fs::write(reports.join("file_manifest.csv"), tests::sample_manifest_csv(&summary)).unwrap();
        let s3 = shared::config::AwsClients::for_endpoint("http://127.0.0.1:1").await.s3;
        let loader = tests::loader(&legacy, &target, LoaderMappings::load(&s3, mappings.to_str().unwrap()).await.unwrap(), &reports, 25);

        // A DTX 2.0 DocumentType named like a referenced legacy library (case differs: still the same type).
        let library = summary
            .records
            .libraries
            .libraries
            .iter()
            .find(|l| !summary.records.libraries.unreferenced_ids.contains(&l.id) && l.name.as_deref().is_some_and(|n| !n.trim().is_empty()))
            .expect("a named, referenced library");
        let name = shared::loader::steps::document_types::display_name(library.name.as_deref().unwrap()).unwrap().to_uppercase();
        let reused_type: i64 = sqlx::query_scalar(
            "INSERT INTO docutrax_profiles_documenttype (name, description, created, modified)
             VALUES ($1, 'made in DTX 2.0', '2024-01-02T03:04:05Z', '2024-01-02T03:04:05Z') RETURNING id",
        )
        .bind(&name)
        .fetch_one(&target.pool)
        .await
        .unwrap();
        // Every mapped customer with a stored logo: give the first one's account a logo of its own.
        let logo_customer = summary
            .expected
            .values()
            .find(|e| e.area == "logos" && e.account_id.is_some() && matches!(e.outcome, ExpectedOutcome::Present { .. }))
            .expect("a stored logo");
        let logo_account: i64 = logo_customer.account_id.as_deref().unwrap().parse().unwrap();
        sqlx::query("UPDATE docutrax_accounts_account SET logo = 'dtx2/own-logo.png' WHERE id = $1")
            .bind(logo_account)
            .execute(&target.pool)
            .await
            .unwrap();
        Self { legacy, target, loader, _dir: dir, reused_type, logo_account }
    }

    async fn run(&self, step: Step) {
        let r = self.loader.run(&LoadRequest { step: step.name().into(), ..Default::default() }).await.unwrap_or_else(|e| panic!("{}: {e}", step.name()));
        assert!(r.done, "{} not done", step.name());
    }

    async fn dump(&self) -> BTreeMap<String, Vec<String>> {
        self.target.dump(&[]).await
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.target.pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    async fn drop(self) {
        self.legacy.drop_database().await;
        self.target.drop_database().await;
    }
}

/// The state of every identity sequence: (qualified name, last_value, start_value).
async fn sequences(t: &PgFixture) -> Vec<(String, Option<i64>, i64)> {
    sqlx::query_as("SELECT format('%I.%I', schemaname, sequencename), last_value, start_value FROM pg_sequences ORDER BY 1")
        .fetch_all(&t.pool)
        .await
        .unwrap()
}

async fn reset_sequences(t: &PgFixture, state: &[(String, Option<i64>, i64)]) {
    for (name, last, start) in state {
        sqlx::query("SELECT setval($1::regclass, COALESCE($2, $3), $2 IS NOT NULL)").bind(name).bind(last).bind(start).execute(&t.pool).await.unwrap();
    }
}

/// Every row as JSON with each timestamp from `since` on (stamped by the run itself: import
/// times, bookkeeping times) replaced by a marker, sorted per table.
async fn rows_without_run_times(t: &PgFixture, since: DateTime<Utc>) -> BTreeMap<String, Vec<String>> {
    fn strip(v: &mut serde_json::Value, since: DateTime<Utc>) {
        match v {
            serde_json::Value::String(s) if DateTime::parse_from_rfc3339(s).is_ok_and(|t| t >= since) => *s = "<run time>".into(),
            serde_json::Value::Array(items) => items.iter_mut().for_each(|i| strip(i, since)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|i| strip(i, since)),
            _ => {}
        }
    }
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT format('%I.%I', table_schema, table_name) FROM information_schema.tables
         WHERE table_schema IN ('public', 'dtx_migration') AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&t.pool)
    .await
    .unwrap();
    let mut out = BTreeMap::new();
    for table in tables {
        let rows: Vec<serde_json::Value> = sqlx::query_scalar(&format!("SELECT to_jsonb(t) FROM {table} t")).fetch_all(&t.pool).await.unwrap();
        let mut rows: Vec<String> = rows
            .into_iter()
            .map(|mut r| {
                strip(&mut r, since);
                r.to_string()
            })
            .collect();
        rows.sort();
        out.insert(table, rows);
    }
    out
}

/// Asserts two dumps are equal, naming the tables that differ and only their differing rows.
#[track_caller]
fn assert_same(actual: &BTreeMap<String, Vec<String>>, expected: &BTreeMap<String, Vec<String>>, what: &str) {
    let mut diffs = Vec::new();
    for table in actual.keys().chain(expected.keys()).collect::<BTreeSet<_>>() {
        let (a, e) = (actual.get(table).cloned().unwrap_or_default(), expected.get(table).cloned().unwrap_or_default());
        if a != e {
            let extra: Vec<&String> = a.iter().filter(|r| !e.contains(r)).take(5).collect();
            let missing: Vec<&String> = e.iter().filter(|r| !a.contains(r)).take(5).collect();
            diffs.push(format!("{table}: {} rows, expected {}; unexpected {extra:?}; missing {missing:?}", a.len(), e.len()));
        }
    }
    assert!(diffs.is_empty(), "{what}:\n{}", diffs.join("\n"));
}

fn blocker_steps(err: &RollbackError) -> BTreeSet<Option<String>> {
    match err {
        RollbackError::Referenced { blockers, .. } => blockers.iter().map(|b| b.step.clone()).collect(),
        other => panic!("expected a refusal, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rehearsal_rolled_back_with_all_leaves_the_target_exactly_as_before_and_reruns_to_the_same_rows() {
    let r = Rehearsal::new().await;
    let pool = r.target.pool.clone();
    let before = r.dump().await;
    let sequences_before = sequences(&r.target).await;
    let started = Utc::now();
    for step in writing_steps() {
        r.run(step).await;
    }

    // The rehearsal is not trivial: created rows everywhere, reused rows, prior values, pointers.
    let entities: Vec<String> = sqlx::query_scalar("SELECT DISTINCT entity FROM dtx_migration.id_map ORDER BY 1").fetch_all(&pool).await.unwrap();
    for entity in &entities {
        assert!(rollback::table_of(entity).is_some(), "id map entity {entity:?} is not in the rollback registry");
    }
    let registered: BTreeSet<&str> = REGISTRY.iter().map(|e| e.entity).collect();
    let mapped: BTreeSet<&str> = entities.iter().map(String::as_str).collect();
    assert_eq!(mapped, registered, "every registered entity is written by some step of the sample");
    let reused: Vec<(String, bool)> = sqlx::query_as("SELECT entity, created FROM dtx_migration.id_map WHERE new_id = $1 AND entity IN ('document_type', 'document_library')")
        .bind(r.reused_type)
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(!reused.is_empty() && reused.iter().all(|(_, created)| !created), "the DTX 2.0 type is reused: {reused:?}");
    let logo_prior: serde_json::Value =
        sqlx::query_scalar("SELECT value FROM dtx_migration.prior_value WHERE table_name = 'docutrax_accounts_account' AND column_name = 'logo' AND row_id = $1")
            .bind(r.logo_account)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(logo_prior, serde_json::json!("dtx2/own-logo.png"));
    let logos_linked = r.count("SELECT COUNT(*) FROM docutrax_accounts_account WHERE logo LIKE 'org_%'").await;
    assert!(logos_linked > 1, "{logos_linked}");
    let pointers = r.count("SELECT COUNT(*) FROM docutrax_profiles_certificate WHERE current_evaluation_id IS NOT NULL").await;
    assert!(pointers > 0);
    let certificates = r.count("SELECT COUNT(*) FROM docutrax_profiles_certificate").await as u64;
    let first_run = rows_without_run_times(&r.target, started).await;
    let loaded = r.dump().await;

    // A dry run answers what it would do and changes nothing.
    let dry = rollback::rollback(&pool, &Step::ALL, true).await.unwrap();
    assert_same(&r.dump().await, &loaded, "a dry run rollback changed the target");
    assert!(dry.dry_run);
    assert_eq!(dry.deleted["docutrax_profiles_certificate"], certificates);
    assert_eq!(dry.restored["docutrax_accounts_account.logo"], logos_linked as u64);
    assert_eq!(dry.restored["docutrax_profiles_certificate.current_evaluation_id"], pointers as u64);
    assert!(dry.kept_reused["document_type"] >= 1 && dry.kept_reused["document_library"] >= 1, "{dry:?}");
    assert_eq!(dry.deleted.len(), REGISTRY.iter().map(|e| e.table).collect::<BTreeSet<_>>().len(), "rows deleted from every registered table: {dry:?}");
    assert!(dry.issues > 0 && dry.manifest_rows > 0 && dry.step_runs == writing_steps().len() as u64, "{dry:?}");

    let report = rollback::rollback(&pool, &Step::ALL, false).await.unwrap();
    assert_eq!(report, RollbackReport { dry_run: false, ..dry });
    assert_same(&r.dump().await, &before, "rolling back `all` left the target different from before the run");
    let kept: (String, String) = sqlx::query_as("SELECT name, description FROM docutrax_profiles_documenttype WHERE id = $1").bind(r.reused_type).fetch_one(&pool).await.unwrap();
    assert_eq!(kept.1, "made in DTX 2.0");
    let logo: Option<String> = sqlx::query_scalar("SELECT logo FROM docutrax_accounts_account WHERE id = $1").bind(r.logo_account).fetch_one(&pool).await.unwrap();
    assert_eq!(logo.as_deref(), Some("dtx2/own-logo.png"));

    // Nothing left to undo: a second rollback is a no-op.
    let again = rollback::rollback(&pool, &Step::ALL, false).await.unwrap();
    assert!(again.deleted.is_empty() && again.restored.is_empty() && again.map_entries.is_empty() && again.issues == 0, "{again:?}");
    assert_same(&r.dump().await, &before, "a second rollback changed the target");

    // The rehearsal runs again to the same rows (with the ids the first run had: the sequences
    // are moved back, which only a test may do).
    reset_sequences(&r.target, &sequences_before).await;
    let rerun_started = Utc::now();
    for step in writing_steps() {
        r.run(step).await;
    }
    let second_run = rows_without_run_times(&r.target, rerun_started).await;
    assert_same(&second_run, &first_run, "the rerun after the rollback differs from the first run");
    r.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_step_rolls_back_alone_in_reverse_order_and_a_step_still_depended_on_is_refused() {
    let r = Rehearsal::new().await;
    let pool = r.target.pool.clone();
    let steps = writing_steps();
    let mut before_step = Vec::new();
    for step in &steps {
        before_step.push(r.dump().await);
        r.run(*step).await;
    }
    let loaded = r.dump().await;

    // Refused, naming the later steps that still reference the rows; nothing changes.
    let refusals: [(Step, &[&str]); 4] = [
        (Step::Evaluations, &["current-evaluations", "audit-history"]),
        (Step::Certificates, &["evaluations", "audit-history"]),
        (Step::RequirementsGroups, &["certificates", "doc-requirements", "evaluations"]),
        (Step::DocumentTypes, &["document-risk-profiles", "doc-requirements"]),
    ];
    for (step, later) in refusals {
        for dry_run in [true, false] {
            let err = rollback::rollback(&pool, &[step], dry_run).await.unwrap_err();
            let expected: BTreeSet<Option<String>> = later.iter().map(|s| Some(s.to_string())).collect();
            assert_eq!(blocker_steps(&err), expected, "{}: {err}", step.name());
            let text = err.to_string();
            assert!(text.starts_with(&format!("rollback of {} refused, nothing changed", step.name())), "{text}");
            assert!(text.contains("Include the later step(s)") && text.contains(later[0]), "{text}");
        }
        assert_same(&r.dump().await, &loaded, &format!("a refused rollback of {} changed the target", step.name()));
    }

    // Reverse order: undoing each step gives back the target as it was before that step.
    for (i, step) in steps.iter().enumerate().rev() {
        let pointers = r.count("SELECT COUNT(*) FROM docutrax_profiles_certificate WHERE current_evaluation_id IS NOT NULL").await;
        let report = rollback::rollback(&pool, &[*step], false).await.unwrap_or_else(|e| panic!("{}: {e}", step.name()));
        assert_eq!(report.steps, vec![step.name().to_string()]);
        assert_same(&r.dump().await, &before_step[i], &format!("rolling back {} alone did not restore the target as before it", step.name()));
        if *step == Step::CurrentEvaluations {
            // The pointers on certificates step 6 made go back to NULL; nothing is deleted.
            assert!(pointers > 0);
            assert_eq!(report.restored, BTreeMap::from([("docutrax_profiles_certificate.current_evaluation_id".to_string(), pointers as u64)]));
            assert!(report.deleted.is_empty() && report.map_entries.is_empty(), "{report:?}");
        }
        if *step == Step::Evaluations {
            assert_eq!(
                report.deleted.keys().map(String::as_str).collect::<Vec<_>>(),
                ["docutrax_profiles_evaluation", "docutrax_profiles_evaluationcoverage", "docutrax_profiles_evaluationdetail"]
            );
        }
    }
    r.drop().await;
}

async fn map(pool: &sqlx::PgPool, entity: &str, step: &str, created: bool, key: &str, id: i64) {
    let mut conn = pool.acquire().await.unwrap();
    book::map_ids(&mut conn, entity, step, created, &[(key.to_string(), id)]).await.unwrap();
}

async fn insert(pool: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[tokio::test]
async fn prior_values_are_restored_reused_rows_kept_and_a_dry_run_changes_nothing() {
    let t = PgFixture::new().await;
    let pool = t.pool.clone();
    let with_logo = insert(&pool, "INSERT INTO docutrax_accounts_account (name, logo) VALUES ('A', 'old/logo.png') RETURNING id").await;
    let without = insert(&pool, "INSERT INTO docutrax_accounts_account (name) VALUES ('B') RETURNING id").await;
    let existing = insert(
        &pool,
        "INSERT INTO docutrax_profiles_documenttype (name, created, modified) VALUES ('W-9', '2020-01-01T00:00:00Z', '2020-06-01T12:30:00.123456Z') RETURNING id",
    )
    .await;
    let before = t.dump(&[]).await;

    // What the files and document-types steps do: overwrite two logos and a reused type's
    // modified (remembering each first), insert one type and reuse the existing one.
    let mut tx = pool.begin().await.unwrap();
    book::remember_prior(&mut tx, "files", "docutrax_accounts_account", "logo", &[with_logo, without]).await.unwrap();
    sqlx::query("UPDATE docutrax_accounts_account SET logo = 'org_' || id || '/logo.png'").execute(&mut *tx).await.unwrap();
    book::remember_prior(&mut tx, "document-types", "docutrax_profiles_documenttype", "modified", &[existing]).await.unwrap();
    // A second write does not replace the remembered original.
    sqlx::query("UPDATE docutrax_profiles_documenttype SET modified = now()").execute(&mut *tx).await.unwrap();
    book::remember_prior(&mut tx, "document-types", "docutrax_profiles_documenttype", "modified", &[existing]).await.unwrap();
    book::record_issues(&mut tx, "files", &[book::Issue::new("logo", 1, "logo not stored")]).await.unwrap();
    book::step_started(&mut tx, "document-types", false).await.unwrap();
    tx.commit().await.unwrap();
    let created =
        insert(&pool, "INSERT INTO docutrax_profiles_documenttype (name, created, modified) VALUES ('Insurance', now(), now()) RETURNING id").await;
    map(&pool, "document_type", "document-types", true, "insurance", created).await;
    map(&pool, "document_type", "document-types", false, "w-9", existing).await;
    map(&pool, "document_library", "document-types", false, "7", existing).await;
    sqlx::query("INSERT INTO dtx_migration.file_manifest (source_key, status) VALUES ('logo:1', 'moved')").execute(&pool).await.unwrap();
    let loaded = t.dump(&[]).await;

    let steps = [Step::Files, Step::DocumentTypes];
    let dry = rollback::rollback(&pool, &steps, true).await.unwrap();
    assert_same(&t.dump(&[]).await, &loaded, "a dry run changed the target");
    let expected = RollbackReport {
        steps: vec!["document-types".into(), "files".into()],
        dry_run: true,
        deleted: BTreeMap::from([("docutrax_profiles_documenttype".into(), 1)]),
        restored: BTreeMap::from([("docutrax_accounts_account.logo".into(), 2), ("docutrax_profiles_documenttype.modified".into(), 1)]),
        map_entries: BTreeMap::from([("document_library".into(), 1), ("document_type".into(), 2)]),
        kept_reused: BTreeMap::from([("document_library".into(), 1), ("document_type".into(), 1)]),
        issues: 1,
        prior_values: 3,
        step_runs: 1,
        manifest_rows: 1,
    };
    assert_eq!(dry, expected);
    let report = rollback::rollback(&pool, &steps, false).await.unwrap();
    assert_eq!(report, RollbackReport { dry_run: false, ..expected });
    assert_same(&t.dump(&[]).await, &before, "the logos (one NULL), the reused type and its timestamp are not as before");
    let counts = report.counts();
    assert_eq!(counts["deleted.docutrax_profiles_documenttype"], 1);
    assert_eq!(counts["restored.docutrax_accounts_account.logo"], 2);
    assert_eq!(counts["kept_reused.document_type"], 1);
    t.drop_database().await;
}

#[tokio::test]
async fn rows_outside_the_migration_unknown_entities_and_unknown_steps_refuse_the_rollback() {
    let t = PgFixture::new().await;
    let pool = t.pool.clone();
    let account = insert(&pool, "INSERT INTO docutrax_accounts_account (name) VALUES ('A') RETURNING id").await;
    let group = insert(
        &pool,
        &format!("INSERT INTO docutrax_hierarchy_requirementsgroup (account_id, name, created, modified) VALUES ({account}, 'G', now(), now()) RETURNING id"),
    )
    .await;
    let certificate = insert(
        &pool,
        &format!("INSERT INTO docutrax_profiles_certificate (status, requirements_group_id, created, modified) VALUES ('ready', {group}, now(), now()) RETURNING id"),
    )
    .await;
    map(&pool, "requirements_group", "requirements-groups", true, "1:2:", group).await;
    map(&pool, "certificate", "certificates", true, "10", certificate).await;
    // Another DTX 2.0 app's table with a foreign key to certificates, and DTX 2.0's own snapshot.
    sqlx::raw_sql(
        "CREATE TABLE docutrax_notes_note (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
             certificate_id BIGINT NOT NULL REFERENCES docutrax_profiles_certificate (id) DEFERRABLE INITIALLY DEFERRED)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let note = insert(&pool, &format!("INSERT INTO docutrax_notes_note (certificate_id) VALUES ({certificate}) RETURNING id")).await;
    let snapshot = insert(
        &pool,
        &format!("INSERT INTO docutrax_profiles_audithistory (content_type, object_id, snapshot, created) VALUES ('certificate', {certificate}, '{{}}', now()) RETURNING id"),
    )
    .await;
    let loaded = t.dump(&[]).await;

    for steps in [vec![Step::Certificates], Step::ALL.to_vec()] {
        let err = rollback::rollback(&pool, &steps, false).await.unwrap_err();
        let RollbackError::Referenced { blockers, .. } = &err else { panic!("{err}") };
        let found: Vec<(Option<String>, String, u64, Option<i64>)> = blockers.iter().map(|b| (b.step.clone(), b.from.clone(), b.rows, b.example_id)).collect();
        assert_eq!(
            found,
            [
                (None, "docutrax_notes_note.certificate_id".to_string(), 1, Some(note)),
                (None, "docutrax_profiles_audithistory.object_id".to_string(), 1, Some(snapshot)),
            ]
        );
        let text = err.to_string();
        assert!(text.contains("Table(s) docutrax_notes_note, docutrax_profiles_audithistory outside this migration"), "{text}");
        assert!(!text.contains("Include the later step"), "{text}");
    }
    // The group is still the certificate's (a step not rolled back).
    let err = rollback::rollback(&pool, &[Step::RequirementsGroups], true).await.unwrap_err();
    assert_eq!(blocker_steps(&err), BTreeSet::from([Some("certificates".to_string())]));
    assert!(err.to_string().contains("docutrax_profiles_certificate.requirements_group_id written by step certificates"), "{err}");
    assert_same(&t.dump(&[]).await, &loaded, "a refused rollback changed the target");
    // A later step reusing a row (created = false) holds it too, though no column points at it.
    map(&pool, "requirements_group", "doc-requirements", false, "reused", group).await;
    let err = rollback::rollback(&pool, &[Step::RequirementsGroups], false).await.unwrap_err();
    assert_eq!(blocker_steps(&err), BTreeSet::from([Some("certificates".to_string()), Some("doc-requirements".to_string())]));
    assert!(
        err.to_string().contains(&format!(
            "1 id map entr(ies) of requirements_group written by step doc-requirements reuse rows of docutrax_hierarchy_requirementsgroup it would delete, e.g. docutrax_hierarchy_requirementsgroup id {group}"
        )),
        "{err}"
    );
    sqlx::query("DELETE FROM dtx_migration.id_map WHERE legacy_key = 'reused'").execute(&pool).await.unwrap();
    assert_same(&t.dump(&[]).await, &loaded, "a refused rollback changed the target");

    // An id map entity the registry does not know, and (for `all`) a step this version does not know.
    map(&pool, "mystery_entity", "documents", true, "1", 99).await;
    let err = rollback::rollback(&pool, &[Step::Documents], false).await.unwrap_err();
    assert!(matches!(&err, RollbackError::UnregisteredEntities(e) if e == &[("mystery_entity".to_string(), "documents".to_string(), 1)]), "{err}");
    assert!(err.to_string().contains("\"mystery_entity\" (step documents, 1 entries)"), "{err}");
    sqlx::query("DELETE FROM dtx_migration.id_map WHERE entity = 'mystery_entity'").execute(&pool).await.unwrap();
    map(&pool, "certificate", "old-step", true, "11", certificate).await;
    let err = rollback::rollback(&pool, &Step::ALL, false).await.unwrap_err();
    assert!(matches!(&err, RollbackError::UnknownSteps(s) if s == &["old-step".to_string()]), "{err}");
    sqlx::query("DELETE FROM dtx_migration.id_map WHERE step = 'old-step'").execute(&pool).await.unwrap();
    assert_same(&t.dump(&[]).await, &loaded, "a refused rollback changed the target");

    // Once the outside rows are gone, the rollback goes through.
    sqlx::query("DELETE FROM docutrax_notes_note").execute(&pool).await.unwrap();
    sqlx::query("DELETE FROM docutrax_profiles_audithistory").execute(&pool).await.unwrap();
    let report = rollback::rollback(&pool, &Step::ALL, false).await.unwrap();
    assert_eq!(
        report.deleted,
        BTreeMap::from([("docutrax_hierarchy_requirementsgroup".to_string(), 1), ("docutrax_profiles_certificate".to_string(), 1)])
    );
    assert_eq!(r_count(&pool, "SELECT COUNT(*) FROM dtx_migration.id_map").await, 0);
    assert_eq!(r_count(&pool, "SELECT COUNT(*) FROM docutrax_accounts_account").await, 1, "the account was not the migration's");
    t.drop_database().await;
}

async fn r_count(pool: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[tokio::test]
async fn the_registry_lists_every_table_after_the_tables_it_references() {
    let t = PgFixture::new().await;
    let position = |table: &str| REGISTRY.iter().position(|e| e.table == table);
    for entry in REGISTRY {
        let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text").bind(entry.table).fetch_one(&t.pool).await.unwrap();
        assert!(exists.is_some(), "{} is not in the target DDL", entry.table);
    }
    let keys: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.conrelid::regclass::text, a.attname::text, c.confrelid::regclass::text
         FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] WHERE c.contype = 'f'",
    )
    .fetch_all(&t.pool)
    .await
    .unwrap();
    let mut checked = 0;
    for (from, column, to) in keys {
        let (Some(f), Some(p)) = (position(&from), position(&to)) else { continue };
        if COLUMN_RESETS.iter().any(|c| c.table == from && c.column == column) {
            continue;
        }
        assert!(f > p, "{from}.{column} references {to}, which the registry lists later");
        checked += 1;
    }
    assert!(checked >= 12, "{checked}");
    for soft in SOFT_REFERENCES {
        for (_, _, to) in soft.targets {
            assert!(position(soft.table) > position(to), "{} names {to}, which the registry lists later", soft.table);
        }
    }
    t.drop_database().await;
}
