//! Step 2, `document-types` (Decision #7): the per-customer `document_library` rows become the
//! global `docutrax_profiles_documenttype` rows (unique name), deduplicated by name.
//!
//! The whole table is small (50-2K rows), so the step does everything in one chunk:
//! 1. read every library (with whether any document or document_status row references it);
//! 2. normalize each name ([`display_name`], [`name_key`]) and group the libraries by key;
//! 3. per group, find its DocumentType: the one this step created before (id map entity
//!    `document_type`), else an existing DTX 2.0 type with the same normalized name (reused,
//!    never modified), else a new row;
//! 4. map every library (`document_library`, key = library id) and every group
//!    (`document_type`, key = normalized name) to the type id.
//!
//! Choice: the normalized name trims, collapses every run of Unicode whitespace to one space and
//! is then cut to the column's 255 characters (`mapping::fit_text`); two libraries are the same
//! type when these names are equal ignoring case (Unicode lower case). "W-9", " w-9 " and
//! "W-9\t" are one type; the merge is flagged for review on every merged library.
//! Choice: the display name (DocumentType.name) is the normalized spelling of the group's lowest
//! library id, so it is stable across reruns and does not depend on row order.
//! Choice: the description of a new type is the first non-blank library description in library
//! id order (trimmed; blank → NULL).
//! Choice: created = the earliest create_time of the group's libraries, modified = the latest
//! (document_library has no update_time); legacy times are read as UTC. A group with no usable
//! time gets `ctx.now` at insert only (flagged), and a rerun keeps the stored times.
//! Choice: an existing DTX 2.0 type matching the normalized name (lowest id when several do) is
//! reused: mapped with created=false, never updated, and flagged on every library mapped to it.
//! Choice: on a rerun, types this step created are refreshed from legacy (name, description,
//! times when known) only where they differ, so an unchanged legacy database leaves every row
//! byte-identical; a rename that would collide with another type's name is not done (flagged).
//! Choice: "potentially orphaned" is flagged only for migrated libraries (a skipped library
//! already has its own issue); referenced = used by a document or a document_status row.
//! Choice: a `document_library` id map entry carries the created flag of its type (true when this
//! step inserted the type, false when it reused a DTX 2.0 one), like the `document_type` entry.
//! Choice: invalid UTF-8 in legacy text is replaced (U+FFFD) and flagged, not skipped: the
//! row stays migrated and the reviewer sees the damaged value.

use super::bulk::{self, legacy};
use super::{ChunkOutcome, StepContext};
use crate::loader::book::{self, pg_text, Issue};
use crate::loader::mapping::{self, LegacyDate};
use crate::loader::runner::LoadError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, Row};
use std::collections::{BTreeSet, HashMap};

/// Id map entity: library id → DocumentType id.
pub const ENTITY_LIBRARY: &str = "document_library";
/// Id map entity: normalized name ([`name_key`]) → DocumentType id.
pub const ENTITY_TYPE: &str = "document_type";
/// `docutrax_profiles_documenttype.name` is VARCHAR(255).
pub const NAME_MAX: usize = 255;

pub const REASON_NO_NAME: &str = "no name (skipped)";
pub const REASON_DUPLICATE: &str = "duplicate name (merged)";
pub const REASON_ORPHANED: &str = "referenced by no document (potentially orphaned)";
pub const REASON_OVERLONG: &str = "overlong name (truncated)";
pub const REASON_REUSED: &str = "existing DocumentType reused";
pub const REASON_ZERO_TIME: &str = "zero create_time";
pub const REASON_INVALID_TIME: &str = "invalid create_time";
pub const REASON_NO_TIME: &str = "no create_time (import time used)";
pub const REASON_RENAME_BLOCKED: &str = "name taken by another DocumentType (not renamed)";

/// The name with surrounding whitespace trimmed and every inner run of whitespace collapsed to
/// one space; `None` when nothing is left.
pub fn display_name(raw: &str) -> Option<String> {
    let collapsed = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    (!collapsed.is_empty()).then_some(collapsed)
}

/// The deduplication key of a (display) name: whitespace-normalized and lower-cased.
pub fn name_key(name: &str) -> String {
    display_name(name).unwrap_or_default().to_lowercase()
}

/// Legacy text read `CAST(... AS BINARY)`: invalid UTF-8 is replaced (U+FFFD) and flagged with
/// the reason "invalid UTF-8 in <column> (replaced)".
pub(crate) fn decode_text(bytes: Option<Vec<u8>>, entity: &str, key: u64, column: &str, issues: &mut Vec<Issue>) -> Option<String> {
    bulk::legacy_text(bytes, |lossy| {
        issues.push(Issue::new(entity, key, format!("invalid UTF-8 in {column} (replaced)")).with_detail(format!("{lossy:?}")))
    })
}

/// Trimmed text for a TEXT column, blank → None, NUL stripped.
pub(crate) fn clean_text(value: Option<&str>) -> Option<String> {
    value.map(|v| pg_text(v).trim().to_string()).filter(|v| !v.is_empty())
}

/// Cuts a name to `max` characters, flagging the cut (entity/key name the row).
pub(crate) fn fit_name(name: &str, max: usize, entity: &str, key: u64, issues: &mut Vec<Issue>) -> Option<String> {
    let fitted = mapping::fit_text(Some(&pg_text(name)), max);
    if let Some(len) = fitted.truncated_from {
        issues.push(Issue::new(entity, key, REASON_OVERLONG).with_detail(format!("{len} characters, cut to {max}")));
    }
    fitted.value
}

struct Library {
    id: u64,
    customer_id: Option<u64>,
    /// The original (decoded) name, for issue details.
    raw_name: String,
    description: Option<String>,
    time: Option<DateTime<Utc>>,
    referenced: bool,
}

/// Libraries sharing one normalized name, in library id order.
struct Group {
    display: String,
    libraries: Vec<Library>,
}

impl Group {
    fn description(&self) -> Option<String> {
        self.libraries.iter().find_map(|l| clean_text(l.description.as_deref()))
    }
    fn created(&self) -> Option<DateTime<Utc>> {
        self.libraries.iter().filter_map(|l| l.time).min()
    }
    fn modified(&self) -> Option<DateTime<Utc>> {
        self.libraries.iter().filter_map(|l| l.time).max()
    }
    /// The group's type row. Without a legacy time the load time is used at insert and an
    /// update keeps the stored times (the bulk writes' NULL-time rule).
    fn row(&self, id: i64, name: String) -> TypeRow {
        TypeRow { id, name, description: self.description(), created: self.created(), modified: self.modified() }
    }
}

const TABLE: &str = "docutrax_profiles_documenttype";

const TYPE_COLUMNS: [(&str, &str); 5] =
    [("id", "bigint"), ("name", "text"), ("description", "text"), ("created", "timestamptz"), ("modified", "timestamptz")];

/// One `docutrax_profiles_documenttype` row as written (field names = column names).
#[derive(Debug, Default, Serialize)]
struct TypeRow {
    id: i64,
    name: String,
    description: Option<String>,
    created: Option<DateTime<Utc>>,
    modified: Option<DateTime<Utc>>,
}

/// How a group's type was found.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Inserted by this step (now or by an earlier run).
    Ours,
    /// A DTX 2.0 row that existed before: referenced, never modified.
    Reused,
}

pub async fn chunk(ctx: &StepContext<'_>, tx: &mut PgConnection, _cursor: Option<serde_json::Value>) -> Result<ChunkOutcome, LoadError> {
    let mut out = ChunkOutcome::default();
    let rows = sqlx::query(
        "SELECT CAST(dl.id AS UNSIGNED) AS id, CAST(dl.customer_id AS UNSIGNED) AS customer_id,
                CAST(dl.name AS BINARY) AS name, CAST(dl.description AS BINARY) AS description,
                CAST(dl.create_time AS CHAR) AS create_time,
                CAST(EXISTS (SELECT 1 FROM document d WHERE d.document_library_id = dl.id)
                     OR EXISTS (SELECT 1 FROM document_status ds WHERE ds.document_library_id = dl.id) AS SIGNED) AS referenced
         FROM document_library dl ORDER BY dl.id",
    )
    .fetch_all(ctx.legacy)
    .await
    .map_err(legacy)?;
    out.add("libraries_read", rows.len() as u64);

    // Group by normalized name, in library id order (the first library of a group is its lowest).
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of_key: HashMap<String, usize> = HashMap::new();
    for row in rows {
        let id: u64 = row.try_get("id").map_err(legacy)?;
        let customer_id: Option<u64> = row.try_get("customer_id").map_err(legacy)?;
        let name = decode_text(row.try_get("name").map_err(legacy)?, ENTITY_LIBRARY, id, "name", &mut out.issues);
        let description = decode_text(row.try_get("description").map_err(legacy)?, ENTITY_LIBRARY, id, "description", &mut out.issues);
        let create_time: Option<String> = row.try_get("create_time").map_err(legacy)?;
        let referenced: i64 = row.try_get("referenced").map_err(legacy)?;
        let time = match mapping::legacy_date(create_time.as_deref()) {
            Ok(LegacyDate::Value(v)) => Some(v.and_utc()),
            Ok(LegacyDate::Null) => None,
            Ok(LegacyDate::Zero) => {
                out.issues.push(Issue::new(ENTITY_LIBRARY, id, REASON_ZERO_TIME).with_detail(format!("{:?}", create_time.unwrap_or_default())));
                None
            }
            Err(e) => {
                out.issues.push(Issue::new(ENTITY_LIBRARY, id, REASON_INVALID_TIME).with_detail(e));
                None
            }
        };
        let raw_name = name.unwrap_or_default();
        let Some(display) = display_name(&raw_name).and_then(|n| fit_name(&n, NAME_MAX, ENTITY_LIBRARY, id, &mut out.issues)) else {
            out.issues.push(Issue::new(ENTITY_LIBRARY, id, REASON_NO_NAME).with_detail(format!("name {raw_name:?}")));
            out.add("libraries_skipped", 1);
            continue;
        };
        let library = Library { id, customer_id, raw_name, description, time, referenced: referenced != 0 };
        let key = name_key(&display);
        match group_of_key.get(&key) {
            Some(&g) => groups[g].libraries.push(library),
            None => {
                group_of_key.insert(key, groups.len());
                groups.push(Group { display, libraries: vec![library] });
            }
        }
    }

    // The target as it is: every type (small table) and this step's earlier types.
    let existing: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, name FROM docutrax_profiles_documenttype ORDER BY id").fetch_all(&mut *tx).await?;
    let name_of: HashMap<i64, String> = existing.iter().cloned().collect();
    let mut existing_by_key: HashMap<String, i64> = HashMap::new();
    for (id, name) in &existing {
        existing_by_key.entry(name_key(name)).or_insert(*id);
    }
    let mapped: Vec<(String, i64, bool)> =
        sqlx::query_as("SELECT legacy_key, new_id, created FROM dtx_migration.id_map WHERE entity = $1")
            .bind(ENTITY_TYPE)
            .fetch_all(&mut *tx)
            .await?;
    let mapped: HashMap<String, (i64, bool)> = mapped.into_iter().map(|(k, id, c)| (k, (id, c))).collect();

    // Resolve each group: (type id or None = to insert, origin).
    let mut resolved: Vec<(Option<i64>, Origin)> = Vec::with_capacity(groups.len());
    for g in &groups {
        let key = name_key(&g.display);
        let r = match mapped.get(&key) {
            // Choice: an id map entry whose row has been deleted from the target is ignored.
            Some(&(id, created)) if name_of.contains_key(&id) => (Some(id), if created { Origin::Ours } else { Origin::Reused }),
            _ => match existing_by_key.get(&key) {
                Some(&id) => (Some(id), Origin::Reused),
                None => (None, Origin::Ours),
            },
        };
        resolved.push(r);
    }

    // Insert the new types, with ids taken from the sequence first.
    let new: Vec<usize> = (0..groups.len()).filter(|&i| resolved[i].0.is_none()).collect();
    let ids = bulk::allocate_ids(tx, TABLE, new.len()).await?;
    let mut rows: Vec<TypeRow> = Vec::with_capacity(new.len());
    for (&i, &id) in new.iter().zip(&ids) {
        resolved[i].0 = Some(id);
        rows.push(groups[i].row(id, groups[i].display.clone()));
    }
    out.add("types_created", bulk::insert_rows(tx, TABLE, &TYPE_COLUMNS, &rows, ctx.now).await?);

    // Refresh the types an earlier run created, where legacy now says otherwise.
    let new_set: BTreeSet<usize> = new.iter().copied().collect();
    let taken: HashMap<&str, i64> = existing.iter().map(|(id, n)| (n.as_str(), *id)).collect();
    let mut rows: Vec<TypeRow> = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        let (Some(id), Origin::Ours) = resolved[i] else { continue };
        if new_set.contains(&i) {
            continue;
        }
        let mut name = g.display.clone();
        if taken.get(name.as_str()).is_some_and(|&other| other != id) {
            out.issues.push(Issue::new(ENTITY_LIBRARY, g.libraries[0].id, REASON_RENAME_BLOCKED).with_detail(format!(
                "DocumentType {id} keeps {:?}: {name:?} belongs to DocumentType {}",
                name_of[&id], taken[name.as_str()]
            )));
            name = name_of[&id].clone();
        }
        rows.push(g.row(id, name));
    }
    let updated = bulk::update_rows(tx, TABLE, &TYPE_COLUMNS, &rows).await?;
    out.add("types_updated", updated);
    out.add("types_unchanged", rows.len() as u64 - updated);

    // Map, flag, count.
    let mut type_pairs: [Vec<(String, i64)>; 2] = [vec![], vec![]];
    let mut library_pairs: [Vec<(String, i64)>; 2] = [vec![], vec![]];
    for (g, &(id, origin)) in groups.iter().zip(&resolved) {
        let id = id.expect("every group resolved or inserted");
        let created = usize::from(origin == Origin::Ours);
        type_pairs[created].push((name_key(&g.display), id));
        if origin == Origin::Reused {
            out.add("types_reused", 1);
        } else if g.created().is_none() {
            out.issues.push(
                Issue::new(ENTITY_LIBRARY, g.libraries[0].id, REASON_NO_TIME)
                    .with_detail(format!("DocumentType {id} {:?}: no library of the group has a create_time", g.display)),
            );
        }
        let customers: BTreeSet<String> =
            g.libraries.iter().map(|l| l.customer_id.map_or_else(|| "NULL".to_string(), |c| c.to_string())).collect();
        let customers = customers.into_iter().collect::<Vec<_>>().join(", ");
        let library_ids = g.libraries.iter().map(|l| l.id.to_string()).collect::<Vec<_>>().join(", ");
        for l in &g.libraries {
            library_pairs[created].push((l.id.to_string(), id));
            out.add("libraries_mapped", 1);
            if g.libraries.len() > 1 {
                out.add("libraries_merged", 1);
                out.issues.push(Issue::new(ENTITY_LIBRARY, l.id, REASON_DUPLICATE).with_detail(format!(
                    "DocumentType {id} {:?} merges libraries {library_ids} of customers {customers}; this library's name: {:?}",
                    g.display, l.raw_name
                )));
            }
            if origin == Origin::Reused {
                out.issues.push(Issue::new(ENTITY_LIBRARY, l.id, REASON_REUSED).with_detail(format!(
                    "name {:?} matches DocumentType {id} {:?}, which existed in DTX 2.0",
                    l.raw_name, name_of[&id]
                )));
            }
            if !l.referenced {
                out.add("libraries_orphaned", 1);
                out.issues.push(Issue::new(ENTITY_LIBRARY, l.id, REASON_ORPHANED).with_detail(format!(
                    "no document or document_status row uses it (customer {}); DocumentType {id} {:?}",
                    l.customer_id.map_or_else(|| "NULL".to_string(), |c| c.to_string()),
                    g.display
                )));
            }
        }
    }
    for created in [false, true] {
        let c = usize::from(created);
        book::map_ids(tx, ENTITY_TYPE, ctx.step, created, &type_pairs[c]).await?;
        book::map_ids(tx, ENTITY_LIBRARY, ctx.step, created, &library_pairs[c]).await?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_collapsed_and_compared_without_case() {
        assert_eq!(display_name("  W-9 \t Form\n"), Some("W-9 Form".to_string()));
        assert_eq!(display_name(" \t "), None);
        assert_eq!(name_key(" w-9   FORM"), name_key("W-9 Form"));
        assert_ne!(name_key("W-9"), name_key("W 9"));
        assert_eq!(name_key("Ünterlage"), "ünterlage");
    }

    #[test]
    fn clean_text_trims_and_blanks_are_null() {
        assert_eq!(clean_text(Some("  a\0b ")), Some("ab".to_string()));
        assert_eq!(clean_text(Some("  ")), None);
        assert_eq!(clean_text(None), None);
    }

    #[test]
    fn the_column_list_names_every_field_of_the_row() {
        bulk::assert_columns_match::<TypeRow>(&TYPE_COLUMNS);
    }
}
