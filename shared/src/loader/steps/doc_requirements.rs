//! Step 10 `doc-requirements` (Decision #8, part 2): for every RequirementsGroup migrated by
//! step 4 that is linked to a DocumentRiskProfile, one `docutrax_profiles_docrequirement` per
//! DocumentType of that profile, its status taken from the legacy `document_status` rows of the
//! group's vendors (the DocRequirementStatus table of Decision #6, [`aggregate`]).
//!
//! A chunk takes the next `chunk_rows` migrated groups by new group id (cursor
//! `{"after_group_id": N}`), reads their profiles' document types from the target (one query),
//! every `document_status` row of their vendors from MySQL (one query per 500 groups), computes
//! the statuses in memory and writes the DocRequirements with one bulk INSERT and one bulk
//! UPDATE (bulk.rs), so a rerun on unchanged data leaves the table byte-identical.
//!
//! The status reader, the aggregation and the placement of rows by natural key are shared with
//! step 11 `fulfillments`, which creates the DocRequirements it needs and does not find.
//!
//! Choice: the chunks page over the migrated groups by their NEW id (keyset on
//! `docutrax_hierarchy_requirementsgroup.id` through the `requirements_group` id map): a group
//! is a legacy (customer, requirements, document_set) combination, not a legacy row with an id
//! of its own, and its new id orders the groups stably.
//! Choice: "each DocumentType in the profile" is the profile as it is in the target
//! (`docutrax_profiles_documentriskprofiledocumenttype`), including types added in DTX 2.0; a
//! group with no profile (no document set, or a set that was not migrated) gets none.
//! Choice: a group's vendors are the legacy vendors whose (customer_id, requirements_id,
//! document_set_id) combination (0 read as NULL) is the group's key, whether or not they became
//! members; `document_status.customer_id` is not used (the vendor's customer is part of the key).
//! Choice: a status row's document type is its `document_library_id`'s DocumentType (step 2's
//! `document_library` id map); when that id is NULL/0, the library of its `document_id`'s
//! document. A row whose type cannot be told, or whose library is not mapped, is flagged
//! (entity `document_status`) and ignored; a row of a type outside the group's profile is only
//! counted (`status_rows_outside_profile`).
//! Choice: created = the earliest and modified = the latest create_time of the (group, type)'s
//! status rows (read as UTC); with none, the load time at insert, and a rerun keeps it.
//! Choice: a DocRequirement for (group, type) that exists but was not made by the loader (no id
//! map entry pointing at it) is reused: mapped with created=false (undoing the step keeps it)
//! and NEVER updated: its status was set in DTX 2.0 and is newer than legacy. Flagged "existing
//! DocRequirement reused (status kept)" with the stored and the legacy status, on every run.
//! Choice: a DocRequirement this step made stays when its type leaves the profile (never
//! deleted by a rerun; removing rows is the undo's job).

use super::bulk::{self, legacy};
use super::document_types::ENTITY_LIBRARY;
use super::requirements_groups::{self as rg, GROUP_ENTITY};
use super::{ChunkOutcome, StepContext};
use crate::error::ConfigError;
use crate::loader::book::{self, Issue};
use crate::loader::mapping::{self, DocRequirementStatus, LegacyDate};
use crate::loader::runner::LoadError;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, Row};
use std::collections::{HashMap, HashSet};

pub const STEP: &str = "doc-requirements";
/// id map entity; legacy key [`requirement_key`] = `<new group id>:<new document type id>`.
pub const ENTITY: &str = "doc_requirement";
/// Issue entity of a legacy `document_status` row (key = its id).
pub const ENTITY_STATUS: &str = "document_status";
pub const TABLE: &str = "docutrax_profiles_docrequirement";

pub const REASON_UNKNOWN_STATUS: &str = "unknown document_status (in_review)";
pub const REASON_NO_TYPE: &str = "document_status row without document type";
pub const REASON_LIBRARY_UNMAPPED: &str = "document_library not mapped";
pub const REASON_REUSED: &str = "existing DocRequirement reused (status kept)";
pub const REASON_ID_TAKEN: &str = "mapped row now holds another key (skipped)";

/// Group keys per legacy query (4 placeholders each).
const KEYS_PER_QUERY: usize = 500;

const COLUMNS: [(&str, &str); 6] = [
    ("id", "bigint"),
    ("requirements_group_id", "bigint"),
    ("document_type_id", "bigint"),
    ("status", "text"),
    ("created", "timestamptz"),
    ("modified", "timestamptz"),
];

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct RequirementRow {
    id: i64,
    requirements_group_id: i64,
    document_type_id: i64,
    status: &'static str,
    created: Option<DateTime<Utc>>,
    modified: Option<DateTime<Utc>>,
}

/// The id map key of a DocRequirement.
pub fn requirement_key(group_id: i64, document_type_id: i64) -> String {
    format!("{group_id}:{document_type_id}")
}

/// The combination of a `requirements_group` id map key ([`rg::group_key`]):
/// `(customer_id, requirements_id, document_set_id)`; None when it is not one (or has no customer,
/// which no migrated group lacks).
pub fn parse_group_key(key: &str) -> Option<(u64, Option<u64>, Option<u64>)> {
    let parts: Vec<&str> = key.split(':').collect();
    let [c, r, d] = parts.as_slice() else { return None };
    let part = |p: &str| -> Option<Option<u64>> {
        if p.is_empty() {
            Some(None)
        } else {
            p.parse::<u64>().ok().map(|v| rg::none_if_zero(Some(v)))
        }
    };
    Some((part(c)??, part(r)?, part(d)?))
}

/// One legacy status row as it bears on a (group, type): whose it is, when, and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub row_id: u64,
    pub vendor_id: u64,
    /// create_time; None when NULL, zero or unparsable.
    pub time: Option<NaiveDateTime>,
    pub status: DocRequirementStatus,
}

/// Lower is less favourable: fail < in_review < override < pass.
pub fn favourability(status: DocRequirementStatus) -> u8 {
    match status {
        DocRequirementStatus::Fail => 0,
        DocRequirementStatus::InReview => 1,
        DocRequirementStatus::Override => 2,
        DocRequirementStatus::Pass => 3,
    }
}

/// The status of one (group, type) from its status rows.
///
/// Choice: two levels. Per vendor, its LATEST row counts (by create_time, a NULL/zero/invalid
/// time oldest; ties broken by the higher row id): older rows are history. Across the group's
/// vendors, the LEAST favourable status wins (fail < in_review < override < pass): the group's
/// requirement is met only as far as every vendor that has a row meets it; an override is
/// weaker than a real pass. Vendors without a row for the type do not count.
/// Choice: no row at all → in_review (the spec's "awaiting submission" / safe default); not
/// flagged, as it is the normal state of a requirement nobody has acted on.
pub fn aggregate(observations: &[Observation]) -> DocRequirementStatus {
    let mut latest: HashMap<u64, &Observation> = HashMap::new();
    for o in observations {
        match latest.get(&o.vendor_id) {
            Some(current) if (current.time, current.row_id) >= (o.time, o.row_id) => {}
            _ => {
                latest.insert(o.vendor_id, o);
            }
        }
    }
    latest.values().map(|o| o.status).min_by_key(|s| favourability(*s)).unwrap_or(DocRequirementStatus::InReview)
}

/// (created, modified) of a DocRequirement: the earliest and latest known row time.
pub fn times(observations: &[Observation]) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let known = || observations.iter().filter_map(|o| o.time);
    (known().min().map(|t| t.and_utc()), known().max().map(|t| t.and_utc()))
}

/// The `document_status` rows of some groups' vendors, resolved to document types.
#[derive(Debug, Default)]
pub(crate) struct StatusRead {
    /// Observations by (group key, document type id).
    pub by_pair: HashMap<(String, i64), Vec<Observation>>,
    /// Unknown-status issues by (group key, document type id): raised where the pair is used.
    pub unknown: HashMap<(String, i64), Vec<Issue>>,
    /// Rows whose document type cannot be told.
    pub unresolved: Vec<Issue>,
    pub rows: u64,
}

/// Reads every `document_status` row of the vendors of `group_keys` (bulk, [`KEYS_PER_QUERY`]
/// keys per query) and resolves each to (group key, document type) through `libraries` (the
/// `document_library` id map).
pub(crate) async fn read_statuses(ctx: &StepContext<'_>, group_keys: &[String], libraries: &HashMap<String, i64>) -> Result<StatusRead, LoadError> {
    let mut read = StatusRead::default();
    let wanted: HashSet<&str> = group_keys.iter().map(String::as_str).collect();
    let combos: Vec<(u64, Option<u64>, Option<u64>)> = {
        let mut seen = HashSet::new();
        group_keys.iter().filter_map(|k| parse_group_key(k)).filter(|c| seen.insert(*c)).collect()
    };
    for batch in combos.chunks(KEYS_PER_QUERY) {
        let customers: Vec<u64> = batch.iter().map(|c| c.0).collect::<HashSet<_>>().into_iter().collect();
        let sql = format!(
            "SELECT CAST(ds.id AS UNSIGNED) AS id, CAST(v.id AS UNSIGNED) AS vendor_id,
                    CAST(NULLIF(v.customer_id, 0) AS UNSIGNED) AS cid, CAST(NULLIF(v.requirements_id, 0) AS UNSIGNED) AS rid,
                    CAST(NULLIF(v.document_set_id, 0) AS UNSIGNED) AS dsid,
                    CAST(NULLIF(ds.document_library_id, 0) AS UNSIGNED) AS library_id,
                    CAST(NULLIF(ds.document_id, 0) AS UNSIGNED) AS document_id, CAST(d.id AS UNSIGNED) AS document_found,
                    CAST(NULLIF(d.document_library_id, 0) AS UNSIGNED) AS document_library_id,
                    CAST(ds.document_status AS BINARY) AS status, CAST(ds.create_time AS CHAR) AS create_time
             FROM vendor v JOIN document_status ds ON ds.vendor_id = v.id LEFT JOIN document d ON d.id = ds.document_id
             WHERE v.customer_id IN ({}) AND (v.customer_id, IFNULL(v.requirements_id, 0), IFNULL(v.document_set_id, 0)) IN ({})
             ORDER BY ds.id",
            vec!["?"; customers.len()].join(", "),
            vec!["(?, ?, ?)"; batch.len()].join(", ")
        );
        let mut query = sqlx::query(&sql);
        for c in &customers {
            query = query.bind(*c);
        }
        for (c, r, d) in batch {
            query = query.bind(*c).bind(r.unwrap_or(0)).bind(d.unwrap_or(0));
        }
        let rows = query.fetch_all(ctx.legacy).await.map_err(legacy)?;
        for row in rows {
            let id: u64 = row.try_get("id").map_err(legacy)?;
            let vendor_id: u64 = row.try_get("vendor_id").map_err(legacy)?;
            let key = rg::group_key(row.try_get("cid").map_err(legacy)?, row.try_get("rid").map_err(legacy)?, row.try_get("dsid").map_err(legacy)?);
            if !wanted.contains(key.as_str()) {
                continue;
            }
            read.rows += 1;
            let library: Option<u64> = row.try_get("library_id").map_err(legacy)?;
            let document: Option<u64> = row.try_get("document_id").map_err(legacy)?;
            let found: Option<u64> = row.try_get("document_found").map_err(legacy)?;
            let document_library: Option<u64> = row.try_get("document_library_id").map_err(legacy)?;
            let library = match (library, document, found, document_library) {
                (Some(l), ..) => l,
                (None, Some(_), Some(_), Some(l)) => l,
                (None, None, ..) => {
                    read.unresolved.push(Issue::new(ENTITY_STATUS, id, REASON_NO_TYPE).with_detail("no document_library_id and no document_id"));
                    continue;
                }
                (None, Some(d), None, _) => {
                    read.unresolved
                        .push(Issue::new(ENTITY_STATUS, id, REASON_NO_TYPE).with_detail(format!("no document_library_id; document {d} not found")));
                    continue;
                }
                (None, Some(d), Some(_), None) => {
                    read.unresolved.push(
                        Issue::new(ENTITY_STATUS, id, REASON_NO_TYPE).with_detail(format!("no document_library_id; document {d} has none either")),
                    );
                    continue;
                }
            };
            let Some(&doc_type) = libraries.get(&library.to_string()) else {
                read.unresolved.push(
                    Issue::new(ENTITY_STATUS, id, REASON_LIBRARY_UNMAPPED)
                        .with_detail(format!("document_library {library} (document-types not run, or the library was skipped)")),
                );
                continue;
            };
            let raw = bulk::legacy_text(row.try_get("status").map_err(legacy)?, |_| {});
            let mapped = mapping::doc_requirement_status(raw.as_deref());
            let create_time: Option<String> = row.try_get("create_time").map_err(legacy)?;
            // Only an ordering key: a zero or bad time sorts oldest, not worth an issue of its own.
            let time = match mapping::legacy_date(create_time.as_deref()) {
                Ok(LegacyDate::Value(v)) => Some(v),
                _ => None,
            };
            let pair = (key, doc_type);
            if !mapped.known {
                let shown = raw.as_deref().map_or_else(|| "NULL".to_string(), |r| format!("{:?}", book::pg_text(r)));
                read.unknown
                    .entry(pair.clone())
                    .or_default()
                    .push(Issue::new(ENTITY_STATUS, id, REASON_UNKNOWN_STATUS).with_detail(format!("vendor {vendor_id}: {shown}")));
            }
            read.by_pair.entry(pair).or_default().push(Observation { row_id: id, vendor_id, time, status: mapped.value });
        }
    }
    Ok(read)
}

/// A DocRequirement to write.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub key: String,
    pub group_id: i64,
    pub document_type_id: i64,
    pub status: DocRequirementStatus,
    pub created: Option<DateTime<Utc>>,
    pub modified: Option<DateTime<Utc>>,
}

/// The DocRequirements of `pairs` (group key, group id, type id) from `read`; the unknown-status
/// issues of those pairs go to `issues`.
pub(crate) fn plan(read: &StatusRead, pairs: &[(String, i64, i64)], issues: &mut Vec<Issue>) -> Vec<Planned> {
    let none = Vec::new();
    pairs
        .iter()
        .map(|(group_key, group_id, doc_type)| {
            let pair = (group_key.clone(), *doc_type);
            let observations = read.by_pair.get(&pair).unwrap_or(&none);
            issues.extend(read.unknown.get(&pair).into_iter().flatten().cloned());
            let (created, modified) = times(observations);
            Planned {
                key: requirement_key(*group_id, *doc_type),
                group_id: *group_id,
                document_type_id: *doc_type,
                status: aggregate(observations),
                created,
                modified,
            }
        })
        .collect()
}

/// The stored DocRequirements of `pairs` (group id, type id): key → (id, status).
pub(crate) async fn existing_requirements(tx: &mut PgConnection, pairs: &[(i64, i64)]) -> Result<HashMap<String, (i64, String)>, LoadError> {
    if pairs.is_empty() {
        return Ok(HashMap::new());
    }
    let groups: Vec<i64> = pairs.iter().map(|p| p.0).collect();
    let types: Vec<i64> = pairs.iter().map(|p| p.1).collect();
    let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "SELECT DISTINCT t.requirements_group_id, t.document_type_id, t.id, t.status FROM docutrax_profiles_docrequirement t
         JOIN UNNEST($1::bigint[], $2::bigint[]) AS u(g, d) ON t.requirements_group_id = u.g AND t.document_type_id = u.d",
    )
    .bind(&groups)
    .bind(&types)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows.into_iter().map(|(g, d, id, status)| (requirement_key(g, d), (id, status))).collect())
}

/// Where a wanted row (by natural key) goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// A new row under this id (fresh, or the id of a mapping whose row is gone).
    Insert(i64),
    /// A row the loader made: refreshed where it differs.
    Update(i64),
    /// A row the loader did not make (reused): referenced, never modified. `adopted` = mapped now.
    Kept { id: i64, adopted: bool },
    /// The key's mapped row exists but now holds another key: skipped.
    Taken(i64),
}

/// Places each key of `keys` (unique natural keys of `table`, rows of `entity`): `existing`
/// holds the stored row id of every key whose natural key is taken. Maps the adopted rows
/// (created=false) and the fresh ids (created=true) under `ctx.step`.
///
/// Choice: a key whose row exists is the loader's when its id map entry points at that row
/// with created=true; any other row holding the key is reused (an entry pointing elsewhere is
/// re-pointed; its old row, if any, is no longer this key's).
pub(crate) async fn place(
    ctx: &StepContext<'_>,
    tx: &mut PgConnection,
    table: &str,
    entity: &str,
    keys: &[String],
    existing: &HashMap<String, i64>,
) -> Result<Vec<Slot>, LoadError> {
    let mapped: HashMap<String, (i64, bool)> = if keys.is_empty() {
        HashMap::new()
    } else {
        sqlx::query_as::<_, (String, i64, bool)>(
            "SELECT legacy_key, new_id, created FROM dtx_migration.id_map WHERE entity = $1 AND legacy_key = ANY($2)",
        )
        .bind(entity)
        .bind(keys)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|(k, id, created)| (k, (id, created)))
        .collect()
    };
    let mut slots: Vec<Option<Slot>> = vec![None; keys.len()];
    let (mut adopted, mut stale, mut fresh) = (Vec::new(), Vec::new(), Vec::new());
    for (i, key) in keys.iter().enumerate() {
        let Some(&row) = existing.get(key) else {
            fresh.push(i);
            continue;
        };
        slots[i] = Some(match mapped.get(key) {
            Some(&(id, true)) if id == row => Slot::Update(row),
            Some(&(id, false)) if id == row => Slot::Kept { id: row, adopted: false },
            other => {
                if other.is_some() {
                    stale.push(key.clone());
                }
                adopted.push((key.clone(), row));
                Slot::Kept { id: row, adopted: true }
            }
        });
    }
    if !stale.is_empty() {
        // map_ids keeps created=true once set; a re-pointed entry must start over.
        sqlx::query("DELETE FROM dtx_migration.id_map WHERE entity = $1 AND legacy_key = ANY($2)")
            .bind(entity)
            .bind(&stale)
            .execute(&mut *tx)
            .await?;
    }
    book::map_ids(tx, entity, ctx.step, false, &adopted).await?;
    let fresh_keys: Vec<String> = fresh.iter().map(|&i| keys[i].clone()).collect();
    let ids = bulk::resolve_ids(tx, table, entity, &fresh_keys).await?;
    for (&i, key) in fresh.iter().zip(&fresh_keys) {
        let id = ids.id(key)?;
        slots[i] = Some(if ids.present.contains(&id) { Slot::Taken(id) } else { Slot::Insert(id) });
    }
    book::map_fresh_ids(tx, entity, ctx.step, &ids.new_pairs).await?;
    slots.into_iter().map(|s| s.ok_or_else(|| bulk::internal("placing rows", "a key was not placed"))).collect()
}

/// Writes `planned` DocRequirements as placed by [`place`]; `stored` = the stored status of
/// existing rows (for the reuse issue). Returns the row id of each (None when skipped).
pub(crate) async fn write(
    ctx: &StepContext<'_>,
    tx: &mut PgConnection,
    planned: &[Planned],
    stored: &HashMap<String, (i64, String)>,
    out: &mut ChunkOutcome,
) -> Result<Vec<Option<i64>>, LoadError> {
    let keys: Vec<String> = planned.iter().map(|p| p.key.clone()).collect();
    let existing: HashMap<String, i64> = stored.iter().map(|(k, (id, _))| (k.clone(), *id)).collect();
    let slots = place(ctx, tx, TABLE, ENTITY, &keys, &existing).await?;
    let mut rows = Vec::new();
    let mut present = HashSet::new();
    let mut ids = Vec::with_capacity(planned.len());
    for (p, slot) in planned.iter().zip(slots) {
        let row = |id| RequirementRow {
            id,
            requirements_group_id: p.group_id,
            document_type_id: p.document_type_id,
            status: p.status.as_str(),
            created: p.created,
            modified: p.modified,
        };
        match slot {
            Slot::Insert(id) => {
                rows.push(row(id));
                ids.push(Some(id));
            }
            Slot::Update(id) => {
                rows.push(row(id));
                present.insert(id);
                ids.push(Some(id));
            }
            Slot::Kept { id, .. } => {
                let kept = stored.get(&p.key).map_or("?", |(_, s)| s.as_str());
                out.issues.push(
                    Issue::new(ENTITY, &p.key, REASON_REUSED)
                        .with_detail(format!("DocRequirement {id} keeps status {kept}; legacy says {}", p.status.as_str())),
                );
                out.add("doc_requirements_reused", 1);
                ids.push(Some(id));
            }
            Slot::Taken(id) => {
                out.issues.push(
                    Issue::new(ENTITY, &p.key, REASON_ID_TAKEN)
                        .with_detail(format!("DocRequirement {id} (mapped to this key) now has another group or document type")),
                );
                out.add("doc_requirements_skipped", 1);
                ids.push(None);
            }
        }
    }
    rows.sort_by_key(|r| r.id);
    bulk::write_rows(tx, TABLE, &COLUMNS, &rows, |r| r.id, &present, ctx.now, "doc_requirements", out).await?;
    Ok(ids)
}

/// Runs the next chunk: the DocRequirements of the next `chunk_rows` migrated groups.
pub async fn chunk(ctx: &StepContext<'_>, tx: &mut PgConnection, cursor: Option<serde_json::Value>) -> Result<ChunkOutcome, LoadError> {
    let after = match &cursor {
        None => 0,
        Some(c) => c
            .get("after_group_id")
            .and_then(serde_json::Value::as_i64)
            .ok_or_else(|| LoadError::Config(ConfigError(format!("{}: bad cursor {c}, expected {{\"after_group_id\": N}}", ctx.step))))?,
    };
    let limit = i64::from(ctx.chunk_rows.max(1));
    let mut out = ChunkOutcome::default();
    let groups: Vec<(i64, String, Option<i64>)> = sqlx::query_as(
        "SELECT g.id, m.legacy_key, g.document_risk_profile_id FROM dtx_migration.id_map m
         JOIN docutrax_hierarchy_requirementsgroup g ON g.id = m.new_id
         WHERE m.entity = $1 AND g.id > $2 ORDER BY g.id, m.legacy_key LIMIT $3",
    )
    .bind(GROUP_ENTITY)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    let Some(last) = groups.last().map(|g| g.0) else {
        return Ok(out);
    };
    out.cursor = (groups.len() as i64 == limit).then(|| serde_json::json!({ "after_group_id": last }));
    out.add("groups_read", groups.len() as u64);

    let profiles: Vec<i64> = groups.iter().filter_map(|g| g.2).collect::<HashSet<_>>().into_iter().collect();
    let junction: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT j.document_risk_profile_id, j.document_type_id FROM docutrax_profiles_documentriskprofiledocumenttype j
         JOIN docutrax_profiles_documenttype t ON t.id = j.document_type_id
         WHERE j.document_risk_profile_id = ANY($1) ORDER BY j.document_risk_profile_id, j.\"order\", j.id",
    )
    .bind(&profiles)
    .fetch_all(&mut *tx)
    .await?;
    let mut types_of: HashMap<i64, Vec<i64>> = HashMap::new();
    for (profile, doc_type) in junction {
        let types = types_of.entry(profile).or_default();
        if !types.contains(&doc_type) {
            types.push(doc_type);
        }
    }

    // (group key, group id, type id) of every required pair, in group id then profile order.
    let mut pairs: Vec<(String, i64, i64)> = Vec::new();
    let mut seen_groups = HashSet::new();
    for (group_id, key, profile) in &groups {
        if !seen_groups.insert(*group_id) {
            continue;
        }
        let Some(profile) = profile else {
            out.add("groups_without_profile", 1);
            continue;
        };
        match types_of.get(profile) {
            Some(types) => pairs.extend(types.iter().map(|t| (key.clone(), *group_id, *t))),
            None => out.add("groups_with_empty_profile", 1),
        }
    }
    if pairs.is_empty() {
        return Ok(out);
    }

    let keys: Vec<String> = pairs.iter().map(|p| p.0.clone()).collect::<HashSet<_>>().into_iter().collect();
    let libraries = book::lookup(tx, ENTITY_LIBRARY).await?;
    let read = read_statuses(ctx, &keys, &libraries).await?;
    out.add("status_rows_read", read.rows);
    out.issues.extend(read.unresolved.iter().cloned());
    let required: HashSet<(String, i64)> = pairs.iter().map(|(k, _, t)| (k.clone(), *t)).collect();
    let outside: usize = read.by_pair.iter().filter(|(pair, _)| !required.contains(*pair)).map(|(_, o)| o.len()).sum();
    out.add("status_rows_outside_profile", outside as u64);

    let planned = plan(&read, &pairs, &mut out.issues);
    for p in &planned {
        out.add(&format!("status_{}", p.status.as_str()), 1);
    }
    let stored = existing_requirements(tx, &planned.iter().map(|p| (p.group_id, p.document_type_id)).collect::<Vec<_>>()).await?;
    write(ctx, tx, &planned, &stored, &mut out).await?;
    out.issues = bulk::merge_issues(std::mem::take(&mut out.issues));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use DocRequirementStatus::*;

    fn at(day: u32) -> Option<NaiveDateTime> {
        chrono::NaiveDate::from_ymd_opt(2020, 1, day).and_then(|d| d.and_hms_opt(0, 0, 0))
    }

    fn obs(row_id: u64, vendor_id: u64, time: Option<NaiveDateTime>, legacy: &str) -> Observation {
        Observation { row_id, vendor_id, time, status: mapping::doc_requirement_status(Some(legacy)).value }
    }

    #[test]
    fn one_row_maps_by_the_spec_table() {
        for (legacy, status) in
            [("NOT_PROVIDED", InReview), ("PROVIDED", Pass), ("APPROVED", Pass), ("REJECTED", Fail), ("OVERRIDE", Override), ("EXPIRED", InReview)]
        {
            assert_eq!(aggregate(&[obs(1, 10, at(1), legacy)]), status, "{legacy}");
        }
    }

    #[test]
    fn no_rows_are_in_review() {
        assert_eq!(aggregate(&[]), InReview);
        assert_eq!(times(&[]), (None, None));
    }

    #[test]
    fn the_latest_row_of_each_vendor_counts() {
        // Vendor 10 was rejected, then approved: pass. Ties on time: the higher row id is later.
        assert_eq!(aggregate(&[obs(2, 10, at(5), "APPROVED"), obs(1, 10, at(1), "REJECTED")]), Pass);
        assert_eq!(aggregate(&[obs(7, 10, at(3), "REJECTED"), obs(6, 10, at(3), "APPROVED")]), Fail);
        assert_eq!(aggregate(&[obs(6, 10, at(3), "REJECTED"), obs(7, 10, at(3), "APPROVED")]), Pass);
        // A row without a usable time is older than any dated row, whatever its id.
        assert_eq!(aggregate(&[obs(9, 10, None, "REJECTED"), obs(1, 10, at(1), "OVERRIDE")]), Override);
    }

    #[test]
    fn across_vendors_the_least_favourable_wins() {
        assert_eq!(aggregate(&[obs(1, 10, at(1), "APPROVED"), obs(2, 11, at(1), "OVERRIDE")]), Override);
        assert_eq!(aggregate(&[obs(1, 10, at(1), "OVERRIDE"), obs(2, 11, at(1), "NOT_PROVIDED")]), InReview);
        assert_eq!(aggregate(&[obs(1, 10, at(1), "NOT_PROVIDED"), obs(2, 11, at(2), "REJECTED"), obs(3, 12, at(3), "APPROVED")]), Fail);
        assert_eq!(aggregate(&[obs(1, 10, at(1), "APPROVED"), obs(2, 11, at(1), "PROVIDED")]), Pass);
        // An unknown value counts as in_review.
        assert_eq!(aggregate(&[obs(1, 10, at(1), "APPROVED"), obs(2, 11, at(1), "EXPIRED")]), InReview);
        assert!(favourability(Fail) < favourability(InReview));
        assert!(favourability(InReview) < favourability(Override));
        assert!(favourability(Override) < favourability(Pass));
    }

    #[test]
    fn times_span_the_known_row_times() {
        let rows = [obs(1, 10, at(9), "APPROVED"), obs(2, 11, None, "REJECTED"), obs(3, 10, at(2), "REJECTED")];
        assert_eq!(times(&rows), (at(2).map(|t| t.and_utc()), at(9).map(|t| t.and_utc())));
    }

    #[test]
    fn group_keys_parse_back_to_their_combination() {
        assert_eq!(parse_group_key("12:7:"), Some((12, Some(7), None)));
        assert_eq!(parse_group_key("1:5:7"), Some((1, Some(5), Some(7))));
        assert_eq!(parse_group_key("3::8"), Some((3, None, Some(8))));
        assert_eq!(parse_group_key(&rg::group_key(Some(4), None, None)), Some((4, None, None)));
        for bad in ["", "::", ":5:7", "1:5", "1:5:7:8", "a:5:7", "1:x:"] {
            assert_eq!(parse_group_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_column_list_names_every_field_of_the_row() {
        bulk::assert_columns_match::<RequirementRow>(&COLUMNS);
    }
}
