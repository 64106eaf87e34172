//! Step 4 `requirements-groups` (Decision #1): one `RequirementsGroup` per unique legacy
//! (customer_id, requirements_id, document_set_id) combination found in the certificate AND
//! the vendor table, then one `RequirementsGroupMember` per vendor linking its Assignment
//! (Area 3) to the group of the vendor's combination (the spec's cross-area linkage).
//!
//! Phased linking: `coi_risk_profile_id` stays NULL until Area 6's `id_mapping_coi_profiles.csv`
//! exists; rerunning the step then fills it on the existing groups (and on the ManualOverride
//! rows of those groups that have none) and changes nothing else: no new ids, no other column.
//!
//! Two phases, told apart by the cursor:
//! * `None`: the groups, all combinations in one chunk; returns `{"members_after": 0}`.
//! * `{"members_after": <vendor id>}`: the members of the next `chunk_rows` vendors by id.
//!
//! Choice: the groups are built in ONE chunk. The combinations come from one set-based
//! `SELECT ... UNION SELECT ...` in MySQL (the spec's upper estimate is 50K combinations: a few
//! MB in memory, one bulk UPDATE and one bulk INSERT); keyset-paging a UNION would recompute it
//! (a scan of every certificate and vendor) for every page, which costs far more than it saves.
//! The members, one per vendor (unbounded in the spec), are chunked by vendor id.
//!
//! Choice: issues about a combination use entity `requirements_group` and the id map key;
//! issues about a vendor's member use entity `requirements_group_member` and the vendor id
//! (the same entity/key as the id map, so an issue leads straight to its row).
//! Choice: a row made by an earlier run whose combination/vendor is skipped now (a mapping
//! removed) is left in place and only flagged; removing rows is the undo's job.

use super::{bulk, ChunkOutcome, StepContext};
use crate::error::ConfigError;
use crate::loader::book::{self, Issue};
use crate::loader::mapping;
use crate::loader::runner::LoadError;
use serde::Serialize;
use sqlx::{PgConnection, Row};
use std::collections::{HashMap, HashSet};

/// The step's name (runner, id map, issues).
pub const STEP: &str = "requirements-groups";
/// id map entity of the groups; legacy key [`group_key`].
pub const GROUP_ENTITY: &str = "requirements_group";
/// id map entity of the members; legacy key = the vendor id.
pub const MEMBER_ENTITY: &str = "requirements_group_member";
/// id map entity written by the document-risk-profiles step (legacy key = document_set id).
pub const DOCUMENT_SET_ENTITY: &str = "document_set";

/// `docutrax_hierarchy_requirementsgroup.name` is VARCHAR(255).
const NAME_MAX_CHARS: usize = 255;

/// Legacy "none" for an id column: NULL or 0.
///
/// Choice: 0 is treated as NULL in every part of the combination (legacy rows use both for
/// "none"; the validate report counts them alike), so (1, 5, 0) and (1, 5, NULL) are the same
/// combination and the same group. Applied in SQL (`NULLIF(x, 0)`) and again here.
pub fn none_if_zero(id: Option<u64>) -> Option<u64> {
    id.filter(|&v| v != 0)
}

/// The id map key of a combination: `<customer_id>:<requirements_id>:<document_set_id>`, an
/// empty part for NULL/0 (e.g. `12:7:`). Later steps (certificates) look groups up with it.
pub fn group_key(customer_id: Option<u64>, requirements_id: Option<u64>, document_set_id: Option<u64>) -> String {
    let part = |v: Option<u64>| none_if_zero(v).map(|v| v.to_string()).unwrap_or_default();
    format!("{}:{}:{}", part(customer_id), part(requirements_id), part(document_set_id))
}

/// The readable group name: `<customer> / <requirements> / <document set>`.
///
/// Choice: `<customer>` is the legacy customer name (trimmed), or `Customer #<id>` when it has
/// none; `<requirements>` is `Requirements #<id>` (the requirements table is Area 6's, not read
/// here) or `No requirements`; `<document set>` is the legacy document_set name, or
/// `Document set #<id>` when it has none, or `No document set`. Names need not be unique; the
/// id map keeps the exact combination. Fitted to 255 characters by the caller.
pub fn group_name(
    customer_id: u64,
    customer_name: Option<&str>,
    requirements_id: Option<u64>,
    document_set_id: Option<u64>,
    set_name: Option<&str>,
) -> String {
    let named = |s: Option<&str>| s.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    let customer = named(customer_name).unwrap_or_else(|| format!("Customer #{customer_id}"));
    let requirements = match none_if_zero(requirements_id) {
        Some(id) => format!("Requirements #{id}"),
        None => "No requirements".to_string(),
    };
    let documents = match (none_if_zero(document_set_id), named(set_name)) {
        (None, _) => "No document set".to_string(),
        (Some(_), Some(name)) => name,
        (Some(id), None) => format!("Document set #{id}"),
    };
    format!("{customer} / {requirements} / {documents}")
}

/// Runs the next chunk of the step (see the module doc for the two phases).
pub async fn chunk(ctx: &StepContext<'_>, tx: &mut PgConnection, cursor: Option<serde_json::Value>) -> Result<ChunkOutcome, LoadError> {
    match cursor {
        None => groups(ctx, tx).await,
        Some(c) => match c.get("members_after").and_then(serde_json::Value::as_u64) {
            Some(after) => members(ctx, tx, after).await,
            None => Err(LoadError::Config(ConfigError(format!("{}: unknown cursor {c}", ctx.step)))),
        },
    }
}

/// Legacy text as UTF-8.
///
/// Choice: invalid bytes in a name part are replaced (U+FFFD) rather than dropping the group,
/// and flagged "invalid UTF-8 in name".
fn utf8(bytes: Option<Vec<u8>>, issues: &mut Vec<Issue>, entity: &str, key: &str, what: &str) -> Option<String> {
    bulk::legacy_text(bytes, |_| {
        issues.push(Issue::new(entity, key, "invalid UTF-8 in name").with_detail(format!("{what}: invalid bytes replaced")))
    })
}

/// A group to write: its key and the computed columns.
struct Group {
    key: String,
    account_id: i64,
    /// None: no (valid) mapping now; an existing value is then kept (see `groups`).
    coi: Option<i64>,
    document_profile: Option<i64>,
    name: String,
}

impl Group {
    /// The group's row; created/modified are NULL: the load time at insert, never changed after.
    fn row(&self, id: i64) -> GroupRow {
        GroupRow {
            id,
            account_id: self.account_id,
            coi_risk_profile_id: self.coi,
            document_risk_profile_id: self.document_profile,
            name: self.name.clone(),
            created: None,
            modified: None,
        }
    }
}

/// A profile column of a group, checked against the target by [`ProfileRef::check`].
struct ProfileRef {
    column: &'static str,
    /// Reason and detail suffix when the profile is not in the target.
    missing: (&'static str, &'static str),
    /// Reason when the profile belongs to another account than the group's.
    other_account: &'static str,
}

const COI_PROFILE: ProfileRef = ProfileRef {
    column: "coi_risk_profile_id",
    missing: ("coi risk profile not found in target", ""),
    other_account: "coi risk profile of another account",
};
const DOCUMENT_PROFILE: ProfileRef = ProfileRef {
    column: "document_risk_profile_id",
    missing: ("document_set not migrated", " not found in target"),
    other_account: "document risk profile of another account",
};

impl ProfileRef {
    /// `id` when its profile is in the target (`accounts`: profile id → account id); a missing
    /// one is dropped (NULL) and flagged.
    /// Choice: a profile (COI or document) of another account than the group's is linked
    /// anyway (the legacy data says so) and flagged for review.
    fn check(&self, id: Option<i64>, accounts: &HashMap<i64, i64>, group: &Group, issues: &mut Vec<Issue>) -> Option<i64> {
        let id = id?;
        let issue = |reason: &str| Issue::new(GROUP_ENTITY, &group.key, reason);
        let Some(&account) = accounts.get(&id) else {
            issues.push(issue(self.missing.0).with_detail(format!("{} {id}{}", self.column, self.missing.1)));
            return None;
        };
        if account != group.account_id {
            issues.push(
                issue(self.other_account)
                    .with_detail(format!("{} {id} has account {account}, the group has {}", self.column, group.account_id)),
            );
        }
        Some(id)
    }
}

const GROUP_TABLE: &str = "docutrax_hierarchy_requirementsgroup";

const GROUP_COLUMNS: [(&str, &str); 7] = [
    ("id", "bigint"),
    ("account_id", "bigint"),
    ("coi_risk_profile_id", "bigint"),
    ("document_risk_profile_id", "bigint"),
    ("name", "text"),
    ("created", "timestamptz"),
    ("modified", "timestamptz"),
];

/// One `docutrax_hierarchy_requirementsgroup` row as written (field names = column names).
#[derive(Debug, Default, Serialize)]
struct GroupRow {
    id: i64,
    account_id: i64,
    coi_risk_profile_id: Option<i64>,
    document_risk_profile_id: Option<i64>,
    name: String,
    created: Option<chrono::DateTime<chrono::Utc>>,
    modified: Option<chrono::DateTime<chrono::Utc>>,
}

/// The account of each of `ids` that exists in `table`.
async fn accounts_of(tx: &mut PgConnection, table: &str, ids: &[i64]) -> Result<HashMap<i64, i64>, sqlx::Error> {
    let rows: Vec<(i64, i64)> =
        sqlx::query_as(&format!("SELECT id, account_id FROM {table} WHERE id = ANY($1)")).bind(ids).fetch_all(&mut *tx).await?;
    Ok(rows.into_iter().collect())
}

/// Phase 1: every combination becomes (or updates) its group.
async fn groups(ctx: &StepContext<'_>, tx: &mut PgConnection) -> Result<ChunkOutcome, LoadError> {
    let mut out = ChunkOutcome::default();
    // Choice: the combination is normalized in SQL (0 -> NULL) before the UNION, so NULL and 0
    // make one combination; the UNION itself treats NULLs as equal. The ORDER BY makes new ids
    // follow the combinations' order (NULLs first), so a fresh run is reproducible.
    let rows = sqlx::query(
        "SELECT CAST(c.cid AS UNSIGNED) AS cid, CAST(c.rid AS UNSIGNED) AS rid, CAST(c.dsid AS UNSIGNED) AS dsid,
                CAST(cu.name AS BINARY) AS customer_name, CAST(ds.name AS BINARY) AS set_name
         FROM (SELECT NULLIF(customer_id, 0) AS cid, NULLIF(requirements_id, 0) AS rid, NULLIF(document_set_id, 0) AS dsid
               FROM certificate
               UNION
               SELECT NULLIF(customer_id, 0), NULLIF(requirements_id, 0), NULLIF(document_set_id, 0) FROM vendor) c
         LEFT JOIN customer cu ON cu.id = c.cid
         LEFT JOIN document_set ds ON ds.id = c.dsid
         ORDER BY c.cid, c.rid, c.dsid",
    )
    .fetch_all(ctx.legacy)
    .await
    .map_err(bulk::legacy)?;
    out.add("combos", rows.len() as u64);

    let document_sets = book::lookup(tx, DOCUMENT_SET_ENTITY).await?;
    let mut planned: Vec<Group> = Vec::with_capacity(rows.len());
    for row in &rows {
        let cid: Option<u64> = row.try_get("cid").map_err(bulk::legacy)?;
        let rid: Option<u64> = row.try_get("rid").map_err(bulk::legacy)?;
        let dsid: Option<u64> = row.try_get("dsid").map_err(bulk::legacy)?;
        let (cid, rid, dsid) = (none_if_zero(cid), none_if_zero(rid), none_if_zero(dsid));
        let key = group_key(cid, rid, dsid);
        let issue = |reason: &str| Issue::new(GROUP_ENTITY, &key, reason);

        // Account (required): a combination without one is skipped.
        let Some(customer) = cid else {
            out.issues.push(issue("customer without account mapping").with_detail("no customer_id (NULL or 0)"));
            out.add("groups_skipped", 1);
            continue;
        };
        let Some(account) = ctx.mappings.accounts.get(&customer) else {
            out.issues.push(issue("customer without account mapping").with_detail(format!("customer_id {customer}")));
            out.add("groups_skipped", 1);
            continue;
        };
        let Ok(account_id) = account.trim().parse::<i64>() else {
            out.issues.push(issue("account id not numeric").with_detail(format!("customer_id {customer} -> {account:?}")));
            out.add("groups_skipped", 1);
            continue;
        };

        // COI risk profile (phased): only once Area 6's mapping exists.
        let coi = match (&ctx.mappings.coi_profiles, rid) {
            (Some(profiles), Some(rid)) => match profiles.get(&rid) {
                Some(id) => Some(*id),
                None => {
                    out.issues.push(issue("requirements not in coi profile mapping").with_detail(format!("requirements_id {rid}")));
                    None
                }
            },
            _ => None,
        };

        // Document risk profile (steps 3's id map).
        let document_profile = match dsid {
            Some(ds) => match document_sets.get(&ds.to_string()) {
                Some(id) => Some(*id),
                None => {
                    out.issues.push(issue("document_set not migrated").with_detail(format!("document_set_id {ds}")));
                    None
                }
            },
            None => None,
        };

        let customer_name = utf8(row.try_get("customer_name").map_err(bulk::legacy)?, &mut out.issues, GROUP_ENTITY, &key, "customer.name");
        let set_name = utf8(row.try_get("set_name").map_err(bulk::legacy)?, &mut out.issues, GROUP_ENTITY, &key, "document_set.name");
        let full = book::pg_text(&group_name(customer, customer_name.as_deref(), rid, dsid, set_name.as_deref()));
        let fitted = mapping::fit_text(Some(&full), NAME_MAX_CHARS);
        if let Some(chars) = fitted.truncated_from {
            out.issues.push(issue("name truncated").with_detail(format!("{chars} characters cut to {NAME_MAX_CHARS}: {full}")));
        }
        // Never blank: the name always has its " / " separators.
        // Choice: an overlong name is cut to 255 characters and flagged "name truncated".
        let name = fitted.value.unwrap_or(full);
        planned.push(Group { key, account_id, coi, document_profile, name });
    }

    // Choice: the referenced rows must exist in the target (the foreign keys are deferred: a
    // dangling id would only fail at commit, losing the whole chunk). One query per table; a
    // missing account skips the group, a missing profile is left NULL; both are flagged.
    let ids = |f: fn(&Group) -> Option<i64>| -> Vec<i64> {
        let set: HashSet<i64> = planned.iter().filter_map(f).collect();
        set.into_iter().collect()
    };
    let accounts = bulk::existing_ids(tx, "docutrax_accounts_account", &ids(|g| Some(g.account_id))).await?;
    let coi_accounts = accounts_of(tx, "docutrax_profiles_coiriskprofile", &ids(|g| g.coi)).await?;
    let profile_accounts = accounts_of(tx, "docutrax_profiles_documentriskprofile", &ids(|g| g.document_profile)).await?;

    // Existing groups of earlier runs. Choice: an id map entry whose row is gone (deleted by
    // hand) counts as absent: the group is inserted again and the entry re-pointed.
    let existing: HashMap<String, (i64, Option<i64>)> = sqlx::query_as::<_, (String, i64, Option<i64>)>(
        "SELECT m.legacy_key, g.id, g.coi_risk_profile_id FROM dtx_migration.id_map m
         JOIN docutrax_hierarchy_requirementsgroup g ON g.id = m.new_id WHERE m.entity = $1",
    )
    .bind(GROUP_ENTITY)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|(k, id, coi)| (k, (id, coi)))
    .collect();

    let mut updates: Vec<(i64, Group)> = Vec::new();
    let mut inserts: Vec<Group> = Vec::new();
    for mut g in planned {
        let issue = |reason: &str| Issue::new(GROUP_ENTITY, &g.key, reason);
        if !accounts.contains(&g.account_id) {
            out.issues.push(issue("account not found in target").with_detail(format!("account_id {}", g.account_id)));
            out.add("groups_skipped", 1);
            continue;
        }
        g.coi = COI_PROFILE.check(g.coi, &coi_accounts, &g, &mut out.issues);
        g.document_profile = DOCUMENT_PROFILE.check(g.document_profile, &profile_accounts, &g, &mut out.issues);
        match existing.get(&g.key) {
            Some(&(id, old_coi)) => {
                // Choice: a missing or unmapped COI profile never clears one set earlier (by
                // an earlier run with the mapping, or by Area 6 itself); a mapped one overwrites.
                let coi = g.coi.or(old_coi);
                if coi != old_coi {
                    out.add("groups_coi_profile_linked", 1);
                }
                out.add(if coi.is_some() { "groups_with_coi_profile" } else { "groups_without_coi_profile" }, 1);
                updates.push((id, g));
            }
            None => {
                out.add(if g.coi.is_some() { "groups_with_coi_profile" } else { "groups_without_coi_profile" }, 1);
                inserts.push(g);
            }
        }
    }

    // Rerun: refresh the computed columns of existing groups, only where they differ.
    // Choice: created/modified are ctx.now at insert (there is no legacy time) and never
    // touched again, not even when phased linking fills the COI profile: a rerun is
    // byte-identical apart from the column it is meant to fill.
    // A NULL coi_risk_profile_id keeps the stored one (the COI Choice above).
    if !updates.is_empty() {
        let rows: Vec<GroupRow> = updates.iter().map(|(id, g)| g.row(*id)).collect();
        let changed = bulk::update_rows_keeping(tx, GROUP_TABLE, &GROUP_COLUMNS, &["coi_risk_profile_id"], &rows).await?;
        out.add("groups_existing", updates.len() as u64);
        out.add("groups_updated", changed);
    }

    if !inserts.is_empty() {
        let ids = bulk::allocate_ids(tx, GROUP_TABLE, inserts.len()).await?;
        let rows: Vec<GroupRow> = inserts.iter().zip(&ids).map(|(g, id)| g.row(*id)).collect();
        bulk::insert_rows(tx, GROUP_TABLE, &GROUP_COLUMNS, &rows, ctx.now).await?;
        let pairs: Vec<(String, i64)> = inserts.iter().map(|g| g.key.clone()).zip(ids).collect();
        book::map_ids(tx, GROUP_ENTITY, ctx.step, true, &pairs).await?;
        out.add("groups_created", inserts.len() as u64);
    }
    let groups = out.counts.get("groups_created").copied().unwrap_or(0) + out.counts.get("groups_existing").copied().unwrap_or(0);
    out.add("groups", groups);

    // Phased linking, second half. Choice: limited to this step's groups (id map) and to
    // overrides whose profile is NULL (a profile set otherwise is never replaced). ManualOverride rows (made by a later step from
    // certificate.override_reason) of this step's groups that have no COI profile yet take
    // their group's. Usually no rows (first run); the UPDATE is run anyway.
    let overrides = sqlx::query(
        "UPDATE docutrax_profiles_manualoverride mo SET coi_risk_profile_id = g.coi_risk_profile_id
         FROM docutrax_hierarchy_requirementsgroup g
         WHERE mo.requirements_group_id = g.id AND mo.coi_risk_profile_id IS NULL AND g.coi_risk_profile_id IS NOT NULL
           AND g.id IN (SELECT new_id FROM dtx_migration.id_map WHERE entity = $1)",
    )
    .bind(GROUP_ENTITY)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    out.add("manual_overrides_coi_linked", overrides);

    out.cursor = Some(serde_json::json!({ "members_after": 0 }));
    Ok(out)
}

/// Who holds a (group, assignment) pair (the table's UNIQUE): a stored row or a new one.
#[derive(Clone, Copy)]
enum Holder {
    Row(i64),
    New(usize),
}

/// Phase 2: the members of the next `chunk_rows` vendors after `after`.
async fn members(ctx: &StepContext<'_>, tx: &mut PgConnection, after: u64) -> Result<ChunkOutcome, LoadError> {
    let mut out = ChunkOutcome::default();
    let limit = ctx.chunk_rows.max(1);
    let rows = sqlx::query(
        "SELECT CAST(id AS UNSIGNED) AS id, CAST(NULLIF(customer_id, 0) AS UNSIGNED) AS cid,
                CAST(NULLIF(requirements_id, 0) AS UNSIGNED) AS rid, CAST(NULLIF(document_set_id, 0) AS UNSIGNED) AS dsid
         FROM vendor WHERE id > ? ORDER BY id LIMIT ?",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(ctx.legacy)
    .await
    .map_err(bulk::legacy)?;
    out.add("vendors", rows.len() as u64);

    // (vendor id, group key, assignment id) of the vendors with a record mapping.
    let mut wanted: Vec<(u64, String, i64)> = Vec::with_capacity(rows.len());
    let mut last = after;
    for row in &rows {
        let vendor: u64 = row.try_get("id").map_err(bulk::legacy)?;
        last = vendor;
        let key = group_key(
            row.try_get("cid").map_err(bulk::legacy)?,
            row.try_get("rid").map_err(bulk::legacy)?,
            row.try_get("dsid").map_err(bulk::legacy)?,
        );
        match ctx.mappings.records.get(&vendor) {
            Some(r) => wanted.push((vendor, key, r.assignment_id)),
            None => {
                out.issues.push(
                    Issue::new(MEMBER_ENTITY, vendor, "vendor without record mapping")
                        .with_detail(format!("vendor_id {vendor}")),
                );
                out.add("members_skipped", 1);
            }
        }
    }

    let keys: Vec<String> = wanted.iter().map(|(_, k, _)| k.clone()).collect::<HashSet<_>>().into_iter().collect();
    let groups: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT m.legacy_key, m.new_id FROM dtx_migration.id_map m
         JOIN docutrax_hierarchy_requirementsgroup g ON g.id = m.new_id
         WHERE m.entity = $1 AND m.legacy_key = ANY($2)",
    )
    .bind(GROUP_ENTITY)
    .bind(&keys)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let assignment_ids: Vec<i64> = wanted.iter().map(|w| w.2).collect::<HashSet<_>>().into_iter().collect();
    let assignments = bulk::existing_ids(tx, "docutrax_records_assignment", &assignment_ids).await?;

    // (vendor, group, assignment) that can be linked.
    let mut linkable: Vec<(u64, i64, i64)> = Vec::with_capacity(wanted.len());
    for (vendor, key, assignment) in wanted {
        let issue = |reason: &str| Issue::new(MEMBER_ENTITY, vendor, reason);
        let Some(&group) = groups.get(&key) else {
            out.issues.push(issue("requirements group not migrated").with_detail(format!("vendor_id {vendor}, combination {key}")));
            out.add("members_skipped", 1);
            continue;
        };
        if !assignments.contains(&assignment) {
            out.issues.push(issue("assignment not found in target").with_detail(format!("vendor_id {vendor}, assignment_id {assignment}")));
            out.add("members_skipped", 1);
            continue;
        }
        linkable.push((vendor, group, assignment));
    }

    // Members of earlier runs, and the stored rows holding the wanted (group, assignment) pairs.
    let vendor_keys: Vec<String> = linkable.iter().map(|l| l.0.to_string()).collect();
    // `created = false`: a vendor sharing another vendor's member (see below).
    let existing: HashMap<String, (i64, i64, i64, bool)> = sqlx::query_as::<_, (String, i64, i64, i64, bool)>(
        "SELECT m.legacy_key, t.id, t.requirements_group_id, t.assignment_id, m.created FROM dtx_migration.id_map m
         JOIN docutrax_hierarchy_requirementsgroupmember t ON t.id = m.new_id
         WHERE m.entity = $1 AND m.legacy_key = ANY($2)",
    )
    .bind(MEMBER_ENTITY)
    .bind(&vendor_keys)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|(k, id, g, a, created)| (k, (id, g, a, created)))
    .collect();
    let pair_groups: Vec<i64> = linkable.iter().map(|l| l.1).collect();
    let pair_assignments: Vec<i64> = linkable.iter().map(|l| l.2).collect();
    let mut holders: HashMap<(i64, i64), Holder> = sqlx::query_as::<_, (i64, i64, i64)>(
        "SELECT DISTINCT t.requirements_group_id, t.assignment_id, t.id FROM docutrax_hierarchy_requirementsgroupmember t
         JOIN UNNEST($1::bigint[], $2::bigint[]) AS u(g, a) ON t.requirements_group_id = u.g AND t.assignment_id = u.a",
    )
    .bind(&pair_groups)
    .bind(&pair_assignments)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|(g, a, id)| ((g, a), Holder::Row(id)))
    .collect();

    let mut updates: Vec<(i64, i64, i64)> = Vec::new();
    let mut inserts: Vec<(u64, i64, i64)> = Vec::new();
    // Vendors whose pair another vendor's member already holds: mapped to that member.
    let mut shared: Vec<(u64, Holder)> = Vec::new();
    for (vendor, group, assignment) in linkable {
        let pair = (group, assignment);
        let shared_issue = |holder: String| {
            Issue::new(MEMBER_ENTITY, vendor, "assignment already in group via another vendor")
                .with_detail(format!("vendor_id {vendor}: requirements_group {group}, assignment {assignment} already linked by {holder}"))
        };
        match existing.get(&vendor.to_string()) {
            // A rerun re-flags a shared member, so every run reports the same issues.
            Some(&(id, g, a, false)) if (g, a) == pair => {
                out.issues.push(shared_issue(format!("member {id}")));
                out.add("members_shared", 1);
            }
            Some(&(_, g, a, true)) if (g, a) == pair => out.add("members_existing", 1),
            Some(&(id, g, a, _)) => match holders.get(&pair) {
                // Choice: a changed link that would collide with another vendor's member is
                // left as it was and flagged (the UNIQUE (group, assignment) forbids both).
                Some(Holder::Row(other)) if *other != id => {
                    out.issues.push(shared_issue(format!("member {other}; member {id} left unchanged")));
                    out.add("members_skipped", 1);
                }
                Some(Holder::New(_)) => {
                    out.issues.push(shared_issue(format!("a new member; member {id} left unchanged")));
                    out.add("members_skipped", 1);
                }
                _ => {
                    holders.remove(&(g, a));
                    holders.insert(pair, Holder::Row(id));
                    updates.push((id, group, assignment));
                    out.add("members_existing", 1);
                }
            },
            None => match holders.get(&pair) {
                // Choice: two vendors whose Assignments were merged by Area 3 (same assignment,
                // same group) share one member: the second is mapped to it (created = false, so
                // undoing it keeps the row the first vendor owns) and flagged.
                Some(&holder) => {
                    let by = match holder {
                        Holder::Row(other) => format!("member {other}"),
                        Holder::New(i) => format!("vendor {}", inserts[i].0),
                    };
                    out.issues.push(shared_issue(by));
                    shared.push((vendor, holder));
                    out.add("members_shared", 1);
                }
                None => {
                    holders.insert(pair, Holder::New(inserts.len()));
                    inserts.push((vendor, group, assignment));
                }
            },
        }
    }

    if !updates.is_empty() {
        let id: Vec<i64> = updates.iter().map(|u| u.0).collect();
        let group: Vec<i64> = updates.iter().map(|u| u.1).collect();
        let assignment: Vec<i64> = updates.iter().map(|u| u.2).collect();
        let changed = sqlx::query(
            "UPDATE docutrax_hierarchy_requirementsgroupmember t SET requirements_group_id = u.g, assignment_id = u.a
             FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[]) AS u(id, g, a) WHERE t.id = u.id",
        )
        .bind(&id)
        .bind(&group)
        .bind(&assignment)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        out.add("members_updated", changed);
    }

    let new_ids = bulk::allocate_ids(tx, "docutrax_hierarchy_requirementsgroupmember", inserts.len()).await?;
    if !inserts.is_empty() {
        let group: Vec<i64> = inserts.iter().map(|i| i.1).collect();
        let assignment: Vec<i64> = inserts.iter().map(|i| i.2).collect();
        sqlx::query(
            "INSERT INTO docutrax_hierarchy_requirementsgroupmember (id, requirements_group_id, assignment_id, created, modified)
             SELECT id, g, a, $4, $4 FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[]) AS u(id, g, a)",
        )
        .bind(&new_ids)
        .bind(&group)
        .bind(&assignment)
        .bind(ctx.now)
        .execute(&mut *tx)
        .await?;
        let pairs: Vec<(String, i64)> = inserts.iter().map(|i| i.0.to_string()).zip(new_ids.iter().copied()).collect();
        book::map_ids(tx, MEMBER_ENTITY, ctx.step, true, &pairs).await?;
        out.add("members_created", inserts.len() as u64);
    }
    if !shared.is_empty() {
        let pairs: Vec<(String, i64)> = shared
            .iter()
            .map(|(vendor, holder)| {
                let id = match *holder {
                    Holder::Row(id) => id,
                    Holder::New(i) => new_ids[i],
                };
                (vendor.to_string(), id)
            })
            .collect();
        book::map_ids(tx, MEMBER_ENTITY, ctx.step, false, &pairs).await?;
    }
    let linked = ["members_created", "members_existing", "members_shared"].iter().map(|c| out.counts.get(*c).copied().unwrap_or(0)).sum();
    out.add("members", linked);

    out.cursor = if rows.len() < limit as usize { None } else { Some(serde_json::json!({ "members_after": last })) };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_column_list_names_every_field_of_the_row() {
        bulk::assert_columns_match::<GroupRow>(&GROUP_COLUMNS);
    }

    #[test]
    fn keys_have_empty_parts_for_null_and_zero() {
        assert_eq!(group_key(Some(12), Some(7), None), "12:7:");
        assert_eq!(group_key(Some(12), Some(7), Some(0)), "12:7:");
        assert_eq!(group_key(None, Some(0), Some(3)), "::3");
        assert_eq!(group_key(Some(1), Some(5), Some(7)), "1:5:7");
        assert_eq!(group_key(None, None, None), "::");
    }

    #[test]
    fn names_are_readable_with_fallbacks() {
        assert_eq!(group_name(1, Some(" Acme Corp "), Some(5), Some(7), Some("Standard")), "Acme Corp / Requirements #5 / Standard");
        assert_eq!(group_name(2, None, None, None, None), "Customer #2 / No requirements / No document set");
        assert_eq!(group_name(2, Some("  "), Some(0), Some(9), Some("")), "Customer #2 / No requirements / Document set #9");
        assert_eq!(group_name(3, Some("Gamma"), Some(4), Some(0), Some("ignored")), "Gamma / Requirements #4 / No document set");
    }
}
