//! Step 11 `fulfillments` (Decision #8, part 3): every document linked to a document set through
//! legacy `document_requirements` fulfills the DocRequirement (RequirementsGroup, the document's
//! DocumentType) of its group: one `docutrax_profiles_documentrequirementfulfillment` per
//! (document, DocRequirement), the DocRequirement found, or created when step 10 did not make it.
//!
//! A chunk reads the next `chunk_rows` `document_requirements` rows by id (keyset, cursor
//! `{"after_id": N}`) joined in MySQL with their document and the document's vendor, resolves
//! everything with one target query per id map / table, creates the missing DocRequirements
//! (status from `document_status` exactly as step 10 computes it, see
//! [`doc_requirements::aggregate`]) and writes the fulfillments with one bulk INSERT and one
//! bulk UPDATE, so a rerun on unchanged data leaves the tables byte-identical.
//!
//! Choice: the group of a (set, document) link is the group of the document's vendor, and only
//! when that vendor's document_set_id IS the linked set: the vendor's (customer_id,
//! requirements_id, document_set_id) combination is then a group whose profile is the set's
//! profile, and the document fulfills that group's requirement for its type. A document without
//! a vendor, of a vendor on another set, or of a vendor whose group was not migrated is flagged
//! and skipped (a document never fulfills the requirement of another vendor's group).
//! Choice: every skip is an issue of entity `document_requirements` keyed by the link's id (the
//! first reason found, in the order: no document_id, document not found (so a link to a
//! document that does not exist is always logged as such, whatever its set), document_set not
//! migrated, document not migrated, no library / library not mapped, vendor, group).
//! Choice: a DocRequirement created here is mapped (entity `doc_requirement`) under this step,
//! so undoing `fulfillments` removes it; one found (made by step 10, or by DTX 2.0) is used as
//! it is and its mapping is not touched.
//! Choice: the fulfillment's `created` is its document's `created` in the target (the
//! requirement was fulfilled when the document came in); a rerun follows the document's.
//! Choice: a fulfillment for (document, DocRequirement) that exists but was not made by the
//! loader is reused (mapped created=false, never updated), flagged; two links naming the same
//! document and DocRequirement make one fulfillment (counted `links_merged`).

use super::bulk::{self, legacy};
use super::doc_requirements::{self as reqs, Slot};
use super::document_risk_profiles::ENTITY_SET;
use super::document_types::ENTITY_LIBRARY;
use super::requirements_groups::{self as rg, GROUP_ENTITY};
use super::{ChunkOutcome, StepContext};
use crate::loader::book::{self, Issue};
use crate::loader::runner::LoadError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, Row};
use std::collections::{HashMap, HashSet};

pub const STEP: &str = "fulfillments";
/// id map entity; legacy key `<new document id>:<new doc_requirement id>`.
pub const ENTITY: &str = "document_requirement_fulfillment";
/// id map entity written by step 9 `documents` (legacy key = document id).
pub const DOCUMENT_ENTITY: &str = "document";
/// Issue entity of a skipped link (key = document_requirements id).
pub const ENTITY_LINK: &str = "document_requirements";
pub const TABLE: &str = "docutrax_profiles_documentrequirementfulfillment";

pub const REASON_NO_DOCUMENT_ID: &str = "no document_id";
pub const REASON_SET_NOT_MIGRATED: &str = "document_set not migrated";
pub const REASON_DOCUMENT_MISSING: &str = "document not found";
pub const REASON_DOCUMENT_NOT_MIGRATED: &str = "document not migrated";
pub const REASON_NO_LIBRARY: &str = "document has no document_library_id";
pub const REASON_LIBRARY_UNMAPPED: &str = "document_library not mapped";
pub const REASON_NO_VENDOR: &str = "document has no vendor";
pub const REASON_VENDOR_MISSING: &str = "vendor not found";
pub const REASON_OTHER_SET: &str = "document's vendor is not on this document set";
pub const REASON_GROUP_NOT_MIGRATED: &str = "requirements group not migrated";
pub const REASON_NO_REQUIREMENT: &str = "no DocRequirement";
pub const REASON_REUSED: &str = "existing fulfillment reused";

const COLUMNS: [(&str, &str); 4] = [("id", "bigint"), ("document_id", "bigint"), ("doc_requirement_id", "bigint"), ("created", "timestamptz")];

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct FulfillmentRow {
    id: i64,
    document_id: i64,
    doc_requirement_id: i64,
    created: Option<DateTime<Utc>>,
}

/// The id map key of a fulfillment.
pub fn fulfillment_key(document_id: i64, doc_requirement_id: i64) -> String {
    format!("{document_id}:{doc_requirement_id}")
}

/// One `document_requirements` row with what it points at.
struct Link {
    id: u64,
    set_id: Option<u64>,
    document_id: Option<u64>,
    document_found: bool,
    library_id: Option<u64>,
    vendor_id: Option<u64>,
    vendor_found: bool,
    /// The vendor's combination (0 read as NULL).
    combo: (Option<u64>, Option<u64>, Option<u64>),
}

/// A link that resolved: its document (new id, created) and its (group, type).
struct Resolved {
    link: u64,
    document: i64,
    document_created: DateTime<Utc>,
    group_key: String,
    group: i64,
    document_type: i64,
}

/// Runs the next chunk: the next `chunk_rows` document_requirements rows.
pub async fn chunk(ctx: &StepContext<'_>, tx: &mut PgConnection, cursor: Option<serde_json::Value>) -> Result<ChunkOutcome, LoadError> {
    let after = super::after_id(ctx.step, cursor.as_ref())?;
    let limit = ctx.chunk_rows.max(1);
    let rows = sqlx::query(
        "SELECT CAST(dr.id AS UNSIGNED) AS id, CAST(NULLIF(dr.document_set_id, 0) AS UNSIGNED) AS set_id,
                CAST(NULLIF(dr.document_id, 0) AS UNSIGNED) AS document_id, CAST(d.id AS UNSIGNED) AS document_found,
                CAST(NULLIF(d.document_library_id, 0) AS UNSIGNED) AS library_id, CAST(NULLIF(d.vendor_id, 0) AS UNSIGNED) AS vendor_id,
                CAST(v.id AS UNSIGNED) AS vendor_found, CAST(NULLIF(v.customer_id, 0) AS UNSIGNED) AS cid,
                CAST(NULLIF(v.requirements_id, 0) AS UNSIGNED) AS rid, CAST(NULLIF(v.document_set_id, 0) AS UNSIGNED) AS dsid
         FROM document_requirements dr LEFT JOIN document d ON d.id = dr.document_id LEFT JOIN vendor v ON v.id = d.vendor_id
         WHERE dr.id > ? ORDER BY dr.id LIMIT ?",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(ctx.legacy)
    .await
    .map_err(legacy)?;
    let mut out = ChunkOutcome::default();
    let mut links = Vec::with_capacity(rows.len());
    for row in &rows {
        let found: Option<u64> = row.try_get("document_found").map_err(legacy)?;
        let vendor_found: Option<u64> = row.try_get("vendor_found").map_err(legacy)?;
        links.push(Link {
            id: row.try_get("id").map_err(legacy)?,
            set_id: row.try_get("set_id").map_err(legacy)?,
            document_id: row.try_get("document_id").map_err(legacy)?,
            document_found: found.is_some(),
            library_id: row.try_get("library_id").map_err(legacy)?,
            vendor_id: row.try_get("vendor_id").map_err(legacy)?,
            vendor_found: vendor_found.is_some(),
            combo: (row.try_get("cid").map_err(legacy)?, row.try_get("rid").map_err(legacy)?, row.try_get("dsid").map_err(legacy)?),
        });
    }
    let Some(last) = links.last().map(|l| l.id) else {
        return Ok(out);
    };
    out.cursor = (links.len() == limit as usize).then(|| serde_json::json!({ "after_id": last }));
    out.add("links_read", links.len() as u64);

    // Everything the links point at in the target, one query each.
    let keys = |f: &dyn Fn(&Link) -> Option<String>| -> Vec<String> {
        links.iter().filter_map(f).collect::<HashSet<_>>().into_iter().collect()
    };
    let sets = bulk::mapped_ids(tx, ENTITY_SET, &keys(&|l| l.set_id.map(|s| s.to_string()))).await?;
    let document_keys = keys(&|l| l.document_id.map(|d| d.to_string()));
    let documents: HashMap<String, (i64, DateTime<Utc>)> = sqlx::query_as::<_, (String, i64, DateTime<Utc>)>(
        "SELECT m.legacy_key, d.id, d.created FROM dtx_migration.id_map m JOIN docutrax_profiles_document d ON d.id = m.new_id
         WHERE m.entity = $1 AND m.legacy_key = ANY($2)",
    )
    .bind(DOCUMENT_ENTITY)
    .bind(&document_keys)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|(k, id, created)| (k, (id, created)))
    .collect();
    let group_keys = keys(&|l| Some(rg::group_key(l.combo.0, l.combo.1, l.combo.2)));
    let groups: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT m.legacy_key, g.id FROM dtx_migration.id_map m JOIN docutrax_hierarchy_requirementsgroup g ON g.id = m.new_id
         WHERE m.entity = $1 AND m.legacy_key = ANY($2)",
    )
    .bind(GROUP_ENTITY)
    .bind(&group_keys)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let libraries = book::lookup(tx, ENTITY_LIBRARY).await?;
    let type_ids: Vec<i64> = links.iter().filter_map(|l| l.library_id).filter_map(|l| libraries.get(&l.to_string()).copied()).collect();
    let live_types = bulk::existing_ids(tx, "docutrax_profiles_documenttype", &type_ids).await?;

    let mut resolved: Vec<Resolved> = Vec::new();
    for l in &links {
        match resolve(l, &sets, &documents, &libraries, &live_types, &groups) {
            Ok(r) => resolved.push(r),
            Err((reason, detail)) => {
                out.issues.push(Issue::new(ENTITY_LINK, l.id, reason).with_detail(detail));
                out.add("links_skipped", 1);
            }
        }
    }

    let requirement = find_or_create(ctx, tx, &resolved, &libraries, &mut out).await?;

    // The fulfillments, one per (document, DocRequirement), in link order.
    let mut wanted: Vec<(String, FulfillmentRow)> = Vec::new();
    let mut seen = HashSet::new();
    for r in &resolved {
        let Some(&req) = requirement.get(&(r.group, r.document_type)) else {
            out.issues.push(
                Issue::new(ENTITY_LINK, r.link, REASON_NO_REQUIREMENT)
                    .with_detail(format!("group {} ({}), document type {}: see the doc_requirement issue", r.group, r.group_key, r.document_type)),
            );
            out.add("links_skipped", 1);
            continue;
        };
        let key = fulfillment_key(r.document, req);
        if !seen.insert(key.clone()) {
            out.add("links_merged", 1);
            continue;
        }
        wanted.push((key, FulfillmentRow { id: 0, document_id: r.document, doc_requirement_id: req, created: Some(r.document_created) }));
    }
    write_fulfillments(ctx, tx, wanted, &mut out).await?;
    out.issues = bulk::merge_issues(std::mem::take(&mut out.issues));
    Ok(out)
}

/// The link's document and (group, type), or why it has none.
fn resolve(
    l: &Link,
    sets: &HashMap<String, i64>,
    documents: &HashMap<String, (i64, DateTime<Utc>)>,
    libraries: &HashMap<String, i64>,
    live_types: &HashSet<i64>,
    groups: &HashMap<String, i64>,
) -> Result<Resolved, (&'static str, String)> {
    let Some(document_id) = l.document_id else {
        return Err((REASON_NO_DOCUMENT_ID, format!("document_set {}", l.set_id.map_or("NULL".into(), |s| s.to_string()))));
    };
    if !l.document_found {
        return Err((REASON_DOCUMENT_MISSING, format!("document {document_id}")));
    }
    let Some(set_id) = l.set_id.filter(|s| sets.contains_key(&s.to_string())) else {
        let set = l.set_id.map_or("NULL".into(), |s| s.to_string());
        return Err((REASON_SET_NOT_MIGRATED, format!("document_set {set}, document {document_id}")));
    };
    let Some(&(document, document_created)) = documents.get(&document_id.to_string()) else {
        return Err((REASON_DOCUMENT_NOT_MIGRATED, format!("document {document_id} (documents not run, or the document was skipped)")));
    };
    let Some(library) = l.library_id else {
        return Err((REASON_NO_LIBRARY, format!("document {document_id}")));
    };
    let document_type = match libraries.get(&library.to_string()) {
        Some(t) if live_types.contains(t) => *t,
        Some(t) => return Err((REASON_LIBRARY_UNMAPPED, format!("document {document_id}, library {library}: DocumentType {t} is not in the target"))),
        None => return Err((REASON_LIBRARY_UNMAPPED, format!("document {document_id}, library {library}"))),
    };
    let Some(vendor) = l.vendor_id else {
        return Err((REASON_NO_VENDOR, format!("document {document_id}")));
    };
    if !l.vendor_found {
        return Err((REASON_VENDOR_MISSING, format!("document {document_id}, vendor {vendor}")));
    }
    let (cid, rid, dsid) = l.combo;
    if dsid != Some(set_id) {
        let on = dsid.map_or("none".into(), |s| s.to_string());
        return Err((REASON_OTHER_SET, format!("document {document_id}, vendor {vendor} is on document_set {on}, the link names {set_id}")));
    }
    let group_key = rg::group_key(cid, rid, dsid);
    let Some(&group) = groups.get(&group_key) else {
        return Err((REASON_GROUP_NOT_MIGRATED, format!("document {document_id}, vendor {vendor}, combination {group_key}")));
    };
    Ok(Resolved { link: l.id, document, document_created, group_key, group, document_type })
}

/// The DocRequirement id of every (group, type) of `resolved`: found, else created here.
async fn find_or_create(
    ctx: &StepContext<'_>,
    tx: &mut PgConnection,
    resolved: &[Resolved],
    libraries: &HashMap<String, i64>,
    out: &mut ChunkOutcome,
) -> Result<HashMap<(i64, i64), i64>, LoadError> {
    let mut pairs: Vec<(String, i64, i64)> = Vec::new();
    let mut seen = HashSet::new();
    for r in resolved {
        if seen.insert((r.group, r.document_type)) {
            pairs.push((r.group_key.clone(), r.group, r.document_type));
        }
    }
    let stored = reqs::existing_requirements(tx, &pairs.iter().map(|p| (p.1, p.2)).collect::<Vec<_>>()).await?;
    let mut ids: HashMap<(i64, i64), i64> = HashMap::new();
    let mut missing: Vec<(String, i64, i64)> = Vec::new();
    for (key, group, doc_type) in pairs {
        match stored.get(&reqs::requirement_key(group, doc_type)) {
            Some(&(id, _)) => {
                ids.insert((group, doc_type), id);
            }
            None => missing.push((key, group, doc_type)),
        }
    }
    out.add("doc_requirements_found", ids.len() as u64);
    if missing.is_empty() {
        return Ok(ids);
    }
    let group_keys: Vec<String> = missing.iter().map(|m| m.0.clone()).collect::<HashSet<_>>().into_iter().collect();
    let read = reqs::read_statuses(ctx, &group_keys, libraries).await?;
    let planned = reqs::plan(&read, &missing, &mut out.issues);
    // Nothing stored for these pairs: `write` can only insert (or skip a taken id).
    let written = reqs::write(ctx, tx, &planned, &HashMap::new(), out).await?;
    for (p, id) in planned.iter().zip(written) {
        if let Some(id) = id {
            ids.insert((p.group_id, p.document_type_id), id);
        }
    }
    Ok(ids)
}

/// Inserts the new fulfillments, refreshes the loader's own, reuses the others.
async fn write_fulfillments(
    ctx: &StepContext<'_>,
    tx: &mut PgConnection,
    wanted: Vec<(String, FulfillmentRow)>,
    out: &mut ChunkOutcome,
) -> Result<(), LoadError> {
    if wanted.is_empty() {
        return Ok(());
    }
    let documents: Vec<i64> = wanted.iter().map(|w| w.1.document_id).collect();
    let requirements: Vec<i64> = wanted.iter().map(|w| w.1.doc_requirement_id).collect();
    let existing: HashMap<String, i64> = sqlx::query_as::<_, (i64, i64, i64)>(
        "SELECT DISTINCT t.document_id, t.doc_requirement_id, t.id FROM docutrax_profiles_documentrequirementfulfillment t
         JOIN UNNEST($1::bigint[], $2::bigint[]) AS u(d, r) ON t.document_id = u.d AND t.doc_requirement_id = u.r",
    )
    .bind(&documents)
    .bind(&requirements)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|(d, r, id)| (fulfillment_key(d, r), id))
    .collect();
    let keys: Vec<String> = wanted.iter().map(|w| w.0.clone()).collect();
    let slots = reqs::place(ctx, tx, TABLE, ENTITY, &keys, &existing).await?;
    let mut rows = Vec::new();
    let mut present = HashSet::new();
    for ((key, mut row), slot) in wanted.into_iter().zip(slots) {
        match slot {
            Slot::Insert(id) => {
                row.id = id;
                rows.push(row);
            }
            Slot::Update(id) => {
                row.id = id;
                present.insert(id);
                rows.push(row);
            }
            Slot::Kept { id, .. } => {
                out.issues.push(Issue::new(ENTITY, &key, REASON_REUSED).with_detail(format!("fulfillment {id} kept as it is")));
                out.add("fulfillments_reused", 1);
            }
            Slot::Taken(id) => {
                out.issues.push(
                    Issue::new(ENTITY, &key, reqs::REASON_ID_TAKEN)
                        .with_detail(format!("fulfillment {id} (mapped to this key) now links another document or DocRequirement")),
                );
                out.add("fulfillments_skipped", 1);
            }
        }
    }
    rows.sort_by_key(|r| r.id);
    bulk::write_rows(tx, TABLE, &COLUMNS, &rows, |r| r.id, &present, ctx.now, "fulfillments", out).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_column_list_names_every_field_of_the_row() {
        bulk::assert_columns_match::<FulfillmentRow>(&COLUMNS);
    }

    fn link() -> Link {
        Link {
            id: 1,
            set_id: Some(7),
            document_id: Some(100),
            document_found: true,
            library_id: Some(3),
            vendor_id: Some(10),
            vendor_found: true,
            combo: (Some(1), Some(5), Some(7)),
        }
    }

    #[test]
    fn a_link_resolves_to_its_vendors_group_or_says_why_not() {
        let t0 = chrono::DateTime::from_timestamp(1_600_000_000, 0).unwrap();
        let sets = HashMap::from([("7".to_string(), 501)]);
        let documents = HashMap::from([("100".to_string(), (900, t0))]);
        let libraries = HashMap::from([("3".to_string(), 30), ("4".to_string(), 40)]);
        let live = HashSet::from([30]);
        let groups = HashMap::from([("1:5:7".to_string(), 70)]);
        let go = |l: &Link| {
            resolve(l, &sets, &documents, &libraries, &live, &groups).map(|r| (r.document, r.group, r.document_type)).map_err(|e| e.0)
        };
        assert_eq!(go(&link()), Ok((900, 70, 30)));
        assert_eq!(go(&Link { document_id: None, ..link() }), Err(REASON_NO_DOCUMENT_ID));
        assert_eq!(go(&Link { set_id: Some(8), ..link() }), Err(REASON_SET_NOT_MIGRATED));
        assert_eq!(go(&Link { set_id: None, ..link() }), Err(REASON_SET_NOT_MIGRATED));
        assert_eq!(go(&Link { document_found: false, ..link() }), Err(REASON_DOCUMENT_MISSING));
        assert_eq!(go(&Link { document_found: false, set_id: Some(8), ..link() }), Err(REASON_DOCUMENT_MISSING));
        assert_eq!(go(&Link { document_id: Some(101), ..link() }), Err(REASON_DOCUMENT_NOT_MIGRATED));
        assert_eq!(go(&Link { library_id: None, ..link() }), Err(REASON_NO_LIBRARY));
        assert_eq!(go(&Link { library_id: Some(4), ..link() }), Err(REASON_LIBRARY_UNMAPPED));
        assert_eq!(go(&Link { library_id: Some(5), ..link() }), Err(REASON_LIBRARY_UNMAPPED));
        assert_eq!(go(&Link { vendor_id: None, ..link() }), Err(REASON_NO_VENDOR));
        assert_eq!(go(&Link { vendor_found: false, ..link() }), Err(REASON_VENDOR_MISSING));
        assert_eq!(go(&Link { combo: (Some(1), Some(5), Some(8)), ..link() }), Err(REASON_OTHER_SET));
        assert_eq!(go(&Link { combo: (Some(1), Some(5), None), ..link() }), Err(REASON_OTHER_SET));
        assert_eq!(go(&Link { combo: (Some(1), Some(6), Some(7)), ..link() }), Err(REASON_GROUP_NOT_MIGRATED));
    }
}
