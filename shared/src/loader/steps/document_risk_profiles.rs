//! Step 3, `document-risk-profiles` (Decision #8, part 1): each `document_set` becomes a
//! `docutrax_profiles_documentriskprofile` of its customer's account, and the document types
//! its requirements reach (document_requirements → document → document_library_id → the
//! `document_library` id map of step 2) become its `docutrax_profiles_documentriskprofiledocumenttype`
//! rows. Chunked by set id (keyset, cursor `{"after_id": <last set id>}`).
//!
//! Choice: "order" is the 0-based position of the type by first appearance: the requirements of
//! a set are read in document_requirements.id order and each type takes the next position the
//! first time it is reached (later requirements of the same type are merged silently). The
//! positions are dense (0..n-1) over the types that resolved; the CHECK allows 0.
//! Choice: a set with no name (NULL/blank) is still migrated (certificates and vendors reference
//! it) under the placeholder name "Document set <id>", flagged.
//! Choice: created = modified = document_set.create_time (there is no update_time), read as
//! UTC; without a usable time `ctx.now` is used at insert only (flagged), a rerun keeps it.
//! Choice: ids 0 count as absent (legacy rows use both NULL and 0 for "none") for customer_id,
//! document_id and document_library_id.
//! Choice: a set whose mapped account is not in the target is skipped and flagged (a dangling
//! account_id would fail the chunk at commit).
//! Choice: a rerun updates the profile (account, name, description, times when known) only where
//! it differs, keeps the ids of junction rows still derived (their "order" refreshed), adds the
//! new ones, and REMOVES the junction rows this step created that legacy no longer derives (the
//! profile mirrors its set); junction rows it did not create (added in DTX 2.0) are never
//! touched, only adopted (mapped with created=false) when legacy derives the same type.
//! Choice: requirements whose set does not exist are flagged once, by the last chunk.

use super::bulk::{self, legacy};
use super::document_types::{self as types, clean_text, decode_text, fit_name};
use super::{ChunkOutcome, StepContext};
use crate::loader::book::{self, Issue};
use crate::loader::mapping::{self, LegacyDate};
use crate::loader::runner::LoadError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, Row};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Id map entity: set id → DocumentRiskProfile id.
pub const ENTITY_SET: &str = "document_set";
/// Id map entity: `<set_id>:<document_type_id>` → junction row id.
pub const ENTITY_PROFILE_TYPE: &str = "document_risk_profile_document_type";
/// Issue entity of a junction row.
pub const ENTITY_REQUIREMENT: &str = "document_requirements";
/// `docutrax_profiles_documentriskprofile.name` is VARCHAR(255).
pub const NAME_MAX: usize = 255;

pub const REASON_NO_CUSTOMER: &str = "customer not mapped (skipped)";
pub const REASON_ACCOUNT_NOT_NUMERIC: &str = "account id not numeric (skipped)";
pub const REASON_ACCOUNT_MISSING: &str = "account not in target (skipped)";
pub const REASON_NO_NAME: &str = "no name (placeholder used)";
pub const REASON_ZERO_TIME: &str = "zero create_time (import time used)";
pub const REASON_NULL_TIME: &str = "no create_time (import time used)";
pub const REASON_INVALID_TIME: &str = "invalid create_time (import time used)";
pub const REASON_EMPTY: &str = "no requirements (empty profile)";
pub const REASON_NONE_RESOLVED: &str = "no requirement resolved to a document type (empty profile)";
pub const REASON_NO_DOCUMENT_ID: &str = "no document_id";
pub const REASON_DOCUMENT_MISSING: &str = "document not found";
pub const REASON_NO_LIBRARY: &str = "document has no document_library_id";
pub const REASON_LIBRARY_UNMAPPED: &str = "document_library not mapped";
pub const REASON_SET_MISSING: &str = "document_set not found";

fn nonzero(id: Option<u64>) -> Option<u64> {
    id.filter(|&i| i != 0)
}

/// A set that will be written.
struct Profile {
    set_id: u64,
    account_id: i64,
    name: String,
    description: Option<String>,
    time: Option<DateTime<Utc>>,
    /// Document type ids in "order" order.
    types: Vec<i64>,
}

impl Profile {
    /// The profile row: created = modified = the set's time; without one the load time is
    /// used at insert and an update keeps the stored times (the bulk writes' NULL-time rule).
    fn row(&self, id: i64) -> ProfileRow {
        ProfileRow {
            id,
            account_id: self.account_id,
            name: self.name.clone(),
            description: self.description.clone(),
            created: self.time,
            modified: self.time,
        }
    }
}

const TABLE: &str = "docutrax_profiles_documentriskprofile";

const PROFILE_COLUMNS: [(&str, &str); 6] = [
    ("id", "bigint"),
    ("account_id", "bigint"),
    ("name", "text"),
    ("description", "text"),
    ("created", "timestamptz"),
    ("modified", "timestamptz"),
];

/// One `docutrax_profiles_documentriskprofile` row as written (field names = column names).
#[derive(Debug, Default, Serialize)]
struct ProfileRow {
    id: i64,
    account_id: i64,
    name: String,
    description: Option<String>,
    created: Option<DateTime<Utc>>,
    modified: Option<DateTime<Utc>>,
}

pub async fn chunk(ctx: &StepContext<'_>, tx: &mut PgConnection, cursor: Option<serde_json::Value>) -> Result<ChunkOutcome, LoadError> {
    let mut out = ChunkOutcome::default();
    let after = super::after_id(ctx.step, cursor.as_ref())?;
    let limit = ctx.chunk_rows.max(1);
    let rows = sqlx::query(
        "SELECT CAST(id AS UNSIGNED) AS id, CAST(customer_id AS UNSIGNED) AS customer_id, CAST(name AS BINARY) AS name,
                CAST(description AS BINARY) AS description, CAST(create_time AS CHAR) AS create_time
         FROM document_set WHERE id > ? ORDER BY id LIMIT ?",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(ctx.legacy)
    .await
    .map_err(legacy)?;
    let last = rows.len() < limit as usize;
    let Some(last_id) = rows.last().map(|r| r.try_get::<u64, _>("id")).transpose().map_err(legacy)? else {
        flag_sets_missing(ctx, &mut out).await?;
        return Ok(out);
    };
    out.add("sets_read", rows.len() as u64);

    // Sets → candidate profiles (skipping those with no account).
    let mut candidates: Vec<Profile> = Vec::new();
    for row in rows {
        let id: u64 = row.try_get("id").map_err(legacy)?;
        let customer: Option<u64> = nonzero(row.try_get("customer_id").map_err(legacy)?);
        let name = decode_text(row.try_get("name").map_err(legacy)?, ENTITY_SET, id, "name", &mut out.issues);
        let description = decode_text(row.try_get("description").map_err(legacy)?, ENTITY_SET, id, "description", &mut out.issues);
        let create_time: Option<String> = row.try_get("create_time").map_err(legacy)?;
        let Some(customer) = customer else {
            out.issues.push(Issue::new(ENTITY_SET, id, REASON_NO_CUSTOMER).with_detail("no customer_id"));
            out.add("sets_skipped", 1);
            continue;
        };
        let Some(account) = ctx.mappings.accounts.get(&customer) else {
            out.issues.push(Issue::new(ENTITY_SET, id, REASON_NO_CUSTOMER).with_detail(format!("customer {customer} has no account mapping")));
            out.add("sets_skipped", 1);
            continue;
        };
        let Ok(account_id) = account.trim().parse::<i64>() else {
            out.issues.push(
                Issue::new(ENTITY_SET, id, REASON_ACCOUNT_NOT_NUMERIC).with_detail(format!("customer {customer} maps to account {account:?}")),
            );
            out.add("sets_skipped", 1);
            continue;
        };
        let time = match mapping::legacy_date(create_time.as_deref()) {
            Ok(LegacyDate::Value(v)) => Some(v.and_utc()),
            Ok(LegacyDate::Null) => {
                out.issues.push(Issue::new(ENTITY_SET, id, REASON_NULL_TIME));
                None
            }
            Ok(LegacyDate::Zero) => {
                out.issues.push(Issue::new(ENTITY_SET, id, REASON_ZERO_TIME).with_detail(format!("{:?}", create_time.unwrap_or_default())));
                None
            }
            Err(e) => {
                out.issues.push(Issue::new(ENTITY_SET, id, REASON_INVALID_TIME).with_detail(e));
                None
            }
        };
        let name = match name.as_deref().and_then(|n| fit_name(n, NAME_MAX, ENTITY_SET, id, &mut out.issues)) {
            Some(n) => n,
            None => {
                let placeholder = format!("Document set {id}");
                out.issues.push(Issue::new(ENTITY_SET, id, REASON_NO_NAME).with_detail(format!("name {name:?}; stored as {placeholder:?}")));
                placeholder
            }
        };
        candidates.push(Profile { set_id: id, account_id, name, description: clean_text(description.as_deref()), time, types: Vec::new() });
    }

    // Accounts that are really there.
    let account_ids: Vec<i64> = candidates.iter().map(|p| p.account_id).collect();
    let present: HashSet<i64> = sqlx::query_scalar("SELECT id FROM docutrax_accounts_account WHERE id = ANY($1)")
        .bind(&account_ids)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
    let mut profiles: Vec<Profile> = Vec::new();
    for p in candidates {
        if present.contains(&p.account_id) {
            profiles.push(p);
        } else {
            out.issues.push(
                Issue::new(ENTITY_SET, p.set_id, REASON_ACCOUNT_MISSING)
                    .with_detail(format!("account {} (mapped from the set's customer) is not in docutrax_accounts_account", p.account_id)),
            );
            out.add("sets_skipped", 1);
        }
    }

    // Requirements of the chunk's sets → document types, in requirement id order.
    let reqs = sqlx::query(
        "SELECT CAST(dr.id AS UNSIGNED) AS id, CAST(dr.document_set_id AS UNSIGNED) AS set_id,
                CAST(dr.document_id AS UNSIGNED) AS document_id, CAST(d.id AS UNSIGNED) AS found,
                CAST(d.document_library_id AS UNSIGNED) AS library_id
         FROM document_requirements dr LEFT JOIN document d ON d.id = dr.document_id
         WHERE dr.document_set_id > ? AND dr.document_set_id <= ?
         ORDER BY dr.document_set_id, dr.id",
    )
    .bind(after)
    .bind(last_id)
    .fetch_all(ctx.legacy)
    .await
    .map_err(legacy)?;
    let library_map = book::lookup(tx, types::ENTITY_LIBRARY).await?;
    let mapped_type_ids: Vec<i64> = library_map.values().copied().collect::<HashSet<_>>().into_iter().collect();
    let live_types: HashSet<i64> = sqlx::query_scalar("SELECT id FROM docutrax_profiles_documenttype WHERE id = ANY($1)")
        .bind(&mapped_type_ids)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
    let index: HashMap<u64, usize> = profiles.iter().enumerate().map(|(i, p)| (p.set_id, i)).collect();
    let mut requirement_count: HashMap<u64, u64> = HashMap::new();
    for row in reqs {
        let id: u64 = row.try_get("id").map_err(legacy)?;
        let set_id: u64 = row.try_get("set_id").map_err(legacy)?;
        let Some(&p) = index.get(&set_id) else {
            // A skipped set (already flagged) or a gap in the set ids (flagged by the last chunk).
            continue;
        };
        out.add("requirements_read", 1);
        *requirement_count.entry(set_id).or_default() += 1;
        let document: Option<u64> = nonzero(row.try_get("document_id").map_err(legacy)?);
        let found: Option<u64> = row.try_get("found").map_err(legacy)?;
        let library: Option<u64> = nonzero(row.try_get("library_id").map_err(legacy)?);
        let problem = match (document, found, library) {
            (None, _, _) => Some((REASON_NO_DOCUMENT_ID, format!("set {set_id}"))),
            (Some(d), None, _) => Some((REASON_DOCUMENT_MISSING, format!("set {set_id}, document {d}"))),
            (Some(d), Some(_), None) => Some((REASON_NO_LIBRARY, format!("set {set_id}, document {d}"))),
            (Some(d), Some(_), Some(l)) => match library_map.get(&l.to_string()) {
                Some(t) if live_types.contains(t) => {
                    if !profiles[p].types.contains(t) {
                        profiles[p].types.push(*t);
                    }
                    None
                }
                Some(t) => Some((REASON_LIBRARY_UNMAPPED, format!("set {set_id}, document {d}, library {l}: mapped DocumentType {t} is not in the target"))),
                None => Some((
                    REASON_LIBRARY_UNMAPPED,
                    format!("set {set_id}, document {d}, library {l} (document-types not run, or the library was skipped)"),
                )),
            },
        };
        if let Some((reason, detail)) = problem {
            out.add("requirements_unresolved", 1);
            out.issues.push(Issue::new(ENTITY_REQUIREMENT, id, reason).with_detail(detail));
        }
    }
    for p in &profiles {
        let n = requirement_count.get(&p.set_id).copied().unwrap_or(0);
        if n == 0 {
            out.add("empty_profiles", 1);
            out.issues.push(Issue::new(ENTITY_SET, p.set_id, REASON_EMPTY).with_detail(format!("profile {:?} created without document types", p.name)));
        } else if p.types.is_empty() {
            out.add("empty_profiles", 1);
            out.issues.push(Issue::new(ENTITY_SET, p.set_id, REASON_NONE_RESOLVED).with_detail(format!("{n} requirements, none resolved")));
        }
    }

    let profile_ids = write_profiles(ctx, tx, &profiles, &mut out).await?;
    sync_types(ctx, tx, &profiles, &profile_ids, &mut out).await?;

    if last {
        flag_sets_missing(ctx, &mut out).await?;
    }
    Ok(ChunkOutcome { cursor: (!last).then(|| serde_json::json!({ "after_id": last_id })), ..out })
}

/// Upserts the profiles; returns the profile id of each (same order).
async fn write_profiles(ctx: &StepContext<'_>, tx: &mut PgConnection, profiles: &[Profile], out: &mut ChunkOutcome) -> Result<Vec<i64>, LoadError> {
    let keys: Vec<String> = profiles.iter().map(|p| p.set_id.to_string()).collect();
    let mapped: Vec<(String, i64)> = sqlx::query_as(
        "SELECT m.legacy_key, m.new_id FROM dtx_migration.id_map m
         JOIN docutrax_profiles_documentriskprofile p ON p.id = m.new_id
         WHERE m.entity = $1 AND m.legacy_key = ANY($2)",
    )
    .bind(ENTITY_SET)
    .bind(&keys)
    .fetch_all(&mut *tx)
    .await?;
    let mapped: HashMap<String, i64> = mapped.into_iter().collect();
    let mut ids: Vec<Option<i64>> = keys.iter().map(|k| mapped.get(k).copied()).collect();

    // Existing: update where different.
    let updates: Vec<ProfileRow> = profiles.iter().zip(&ids).filter_map(|(p, id)| id.map(|id| p.row(id))).collect();
    if !updates.is_empty() {
        let updated = bulk::update_rows(tx, TABLE, &PROFILE_COLUMNS, &updates).await?;
        out.add("profiles_updated", updated);
        out.add("profiles_unchanged", updates.len() as u64 - updated);
    }

    // New: ids first, then one insert.
    let new: Vec<usize> = (0..profiles.len()).filter(|&i| ids[i].is_none()).collect();
    let new_ids = bulk::allocate_ids(tx, TABLE, new.len()).await?;
    let inserts: Vec<ProfileRow> = new.iter().zip(&new_ids).map(|(&i, &id)| profiles[i].row(id)).collect();
    bulk::insert_rows(tx, TABLE, &PROFILE_COLUMNS, &inserts, ctx.now).await?;
    let mut pairs = Vec::new();
    for (&i, &id) in new.iter().zip(&new_ids) {
        ids[i] = Some(id);
        pairs.push((profiles[i].set_id.to_string(), id));
    }
    book::map_ids(tx, ENTITY_SET, ctx.step, true, &pairs).await?;
    out.add("profiles_created", new.len() as u64);
    Ok(ids.into_iter().map(|id| id.expect("every profile updated or inserted")).collect())
}

/// A junction row (id, profile, type, order) with this step's id map key and created flag, if mapped.
type JunctionRow = (i64, i64, i64, i32, Option<String>, Option<bool>);

/// Makes each profile's junction rows match its derived types (see the module's Choice).
async fn sync_types(ctx: &StepContext<'_>, tx: &mut PgConnection, profiles: &[Profile], profile_ids: &[i64], out: &mut ChunkOutcome) -> Result<(), LoadError> {
    if profiles.is_empty() {
        return Ok(());
    }
    // Existing junction rows of these profiles, with this step's mapping of each (if any).
    let rows: Vec<JunctionRow> = sqlx::query_as(
        "SELECT j.id, j.document_risk_profile_id, j.document_type_id, j.\"order\", m.legacy_key, m.created
         FROM docutrax_profiles_documentriskprofiledocumenttype j
         LEFT JOIN dtx_migration.id_map m ON m.entity = $2 AND m.new_id = j.id
         WHERE j.document_risk_profile_id = ANY($1)
         ORDER BY j.id",
    )
    .bind(profile_ids)
    .bind(ENTITY_PROFILE_TYPE)
    .fetch_all(&mut *tx)
    .await?;
    struct Existing {
        id: i64,
        order: i32,
        key: Option<String>,
        created: bool,
    }
    let mut existing: BTreeMap<(i64, i64), Existing> = BTreeMap::new();
    for (id, profile, doc_type, order, key, created) in rows {
        existing.entry((profile, doc_type)).or_insert(Existing { id, order, key, created: created.unwrap_or(false) });
    }

    let (mut upd_ids, mut upd_orders) = (Vec::new(), Vec::new());
    let (mut ins_profiles, mut ins_types, mut ins_orders, mut ins_keys) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut adopted: Vec<(String, i64)> = Vec::new();
    let mut reused_reordered: Vec<i64> = Vec::new();
    let mut derived: HashSet<(i64, i64)> = HashSet::new();
    for (p, &profile_id) in profiles.iter().zip(profile_ids) {
        for (order, &doc_type) in p.types.iter().enumerate() {
            let order = order as i32;
            let key = format!("{}:{doc_type}", p.set_id);
            derived.insert((profile_id, doc_type));
            match existing.get(&(profile_id, doc_type)) {
                Some(e) => {
                    if e.order != order {
                        if !e.created {
                            // Not this step's row: keep its original order for a rollback.
                            reused_reordered.push(e.id);
                        }
                        upd_ids.push(e.id);
                        upd_orders.push(order);
                    } else {
                        out.add("profile_types_unchanged", 1);
                    }
                    if e.key.as_deref() != Some(key.as_str()) {
                        // A row this step did not insert (or whose mapping was lost): adopt it.
                        adopted.push((key, e.id));
                    }
                }
                None => {
                    ins_profiles.push(profile_id);
                    ins_types.push(doc_type);
                    ins_orders.push(order);
                    ins_keys.push(key);
                }
            }
        }
    }
    book::remember_prior(tx, ctx.step, "docutrax_profiles_documentriskprofiledocumenttype", "order", &reused_reordered).await?;
    if !upd_ids.is_empty() {
        sqlx::query(
            "UPDATE docutrax_profiles_documentriskprofiledocumenttype j SET \"order\" = u.o
             FROM UNNEST($1::bigint[], $2::int[]) AS u(id, o) WHERE j.id = u.id",
        )
        .bind(&upd_ids)
        .bind(&upd_orders)
        .execute(&mut *tx)
        .await?;
    }
    out.add("profile_types_updated", upd_ids.len() as u64);
    book::map_ids(tx, ENTITY_PROFILE_TYPE, ctx.step, false, &adopted).await?;
    out.add("profile_types_adopted", adopted.len() as u64);

    let ids = bulk::allocate_ids(tx, "docutrax_profiles_documentriskprofiledocumenttype", ins_keys.len()).await?;
    if !ids.is_empty() {
        sqlx::query(
            "INSERT INTO docutrax_profiles_documentriskprofiledocumenttype (id, document_risk_profile_id, document_type_id, \"order\")
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::int[])",
        )
        .bind(&ids)
        .bind(&ins_profiles)
        .bind(&ins_types)
        .bind(&ins_orders)
        .execute(&mut *tx)
        .await?;
        let pairs: Vec<(String, i64)> = ins_keys.into_iter().zip(ids.iter().copied()).collect();
        book::map_ids(tx, ENTITY_PROFILE_TYPE, ctx.step, true, &pairs).await?;
    }
    out.add("profile_types_created", ids.len() as u64);

    // No longer derived: delete the rows this step created, forget the ones it only adopted.
    let (mut delete_rows, mut forget_keys) = (Vec::new(), Vec::new());
    for (pair, e) in &existing {
        if derived.contains(pair) {
            continue;
        }
        let Some(key) = &e.key else { continue };
        if e.created {
            delete_rows.push(e.id);
        }
        forget_keys.push(key.clone());
    }
    if !delete_rows.is_empty() {
        sqlx::query("DELETE FROM docutrax_profiles_documentriskprofiledocumenttype WHERE id = ANY($1)")
            .bind(&delete_rows)
            .execute(&mut *tx)
            .await?;
    }
    if !forget_keys.is_empty() {
        sqlx::query("DELETE FROM dtx_migration.id_map WHERE entity = $1 AND legacy_key = ANY($2)")
            .bind(ENTITY_PROFILE_TYPE)
            .bind(&forget_keys)
            .execute(&mut *tx)
            .await?;
    }
    out.add("profile_types_removed", delete_rows.len() as u64);
    Ok(())
}

/// Requirements naming a set that does not exist (or none): flagged once, by the last chunk.
async fn flag_sets_missing(ctx: &StepContext<'_>, out: &mut ChunkOutcome) -> Result<(), LoadError> {
    let rows = sqlx::query(
        "SELECT CAST(dr.id AS UNSIGNED) AS id, CAST(dr.document_set_id AS UNSIGNED) AS set_id
         FROM document_requirements dr LEFT JOIN document_set s ON s.id = dr.document_set_id
         WHERE s.id IS NULL ORDER BY dr.id",
    )
    .fetch_all(ctx.legacy)
    .await
    .map_err(legacy)?;
    for row in rows {
        let id: u64 = row.try_get("id").map_err(legacy)?;
        let set: Option<u64> = row.try_get("set_id").map_err(legacy)?;
        let detail = set.map_or_else(|| "no document_set_id".to_string(), |s| format!("document_set {s} does not exist"));
        out.issues.push(Issue::new(ENTITY_REQUIREMENT, id, REASON_SET_MISSING).with_detail(detail));
        out.add("requirements_without_set", 1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_column_list_names_every_field_of_the_row() {
        bulk::assert_columns_match::<ProfileRow>(&PROFILE_COLUMNS);
    }
}
