//! The logo link of step 5 `files` (spec Phase 3, "For logos: set Account.logo = S3 key (from
//! Area 2 mapping)"; Area 2 maps the field, the file move uploaded the bytes): each customer's
//! stored logo (file manifest rows of area `logos`) becomes `docutrax_accounts_account.logo` of
//! the customer's account, in the same transaction as the manifest import.
//!
//! Choice: the account is the one `ctx.mappings.accounts` names for the customer (the mapping
//! every loader step uses). The manifest's own `account_id` (the account the move stored the
//! file for, and whose `org_<account>` prefix the key carries) must agree: when it names another
//! account, the logo is not linked and flagged (re-run the move for that customer), since the
//! object sits under the other organisation's prefix.
//! Choice: a customer's logo is its `logo:<customer_id>` manifest row (`customer.logo`); other
//! manifest rows of area `logos` with the customer's id (repo files stored under
//! /efsdata/logos/) come after it, then by source_key (byte order). The first stored one is
//! linked; every other stored one is flagged "several logos for customer".
//! Choice: when several customers map to one account, the lowest customer id's logo is linked
//! and the others are flagged.
//! Choice: a logo that is not stored (missing, rejected, failed, no S3 key), a customer not in
//! the accounts mapping, an account id that is not numeric and an account not in the target are
//! issues (entity `logo`, legacy key = customer id); the account keeps its value. Legacy
//! customers with a `logo` but no manifest row are flagged too.
//! Choice: only accounts whose value changes are written; their value before the first change
//! is recorded in `dtx_migration.prior_value` (step `files`), so undoing the step restores it,
//! and a rerun on the same manifest writes nothing.

use super::{bulk, ChunkOutcome, StepContext};
use crate::legacy::LegacyError;
use crate::loader::book::{self, Issue};
use crate::loader::runner::LoadError;
use serde::Serialize;
use sqlx::PgConnection;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The step the link belongs to (prior values, issues).
pub const STEP: &str = "files";
/// Issue entity; legacy key = the customer id.
pub const ENTITY: &str = "logo";
pub const ACCOUNT_TABLE: &str = "docutrax_accounts_account";

pub const REASON_NOT_STORED: &str = "logo not stored";
pub const REASON_NOT_IN_MANIFEST: &str = "logo not in file manifest";
pub const REASON_NO_CUSTOMER: &str = "logo without customer";
pub const REASON_CUSTOMER_NOT_MAPPED: &str = "customer not mapped (logo not linked)";
pub const REASON_ACCOUNT_NOT_NUMERIC: &str = "account id not numeric (logo not linked)";
pub const REASON_OTHER_ACCOUNT: &str = "logo stored for another account (not linked)";
pub const REASON_ACCOUNT_MISSING: &str = "account not in target (logo not linked)";
pub const REASON_SEVERAL_FOR_CUSTOMER: &str = "several logos for customer (one linked)";
pub const REASON_SEVERAL_FOR_ACCOUNT: &str = "several customers' logos for one account (one linked)";

const LOGO_COLUMNS: [(&str, &str); 2] = [("id", "bigint"), ("logo", "text")];

#[derive(Debug, Clone, Serialize)]
struct LogoRow {
    id: i64,
    logo: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct ManifestLogo {
    source_key: String,
    customer_id: Option<i64>,
    account_id: Option<i64>,
    status: Option<String>,
    s3_key: Option<String>,
    last_error: Option<String>,
}

impl ManifestLogo {
    fn stored(&self) -> bool {
        matches!(self.status.as_deref(), Some("moved" | "deduplicated")) && self.s3_key.as_deref().is_some_and(|k| !k.trim().is_empty())
    }

    fn describe(&self) -> String {
        let status = self.status.as_deref().unwrap_or("(no status)");
        match self.last_error.as_deref().filter(|e| !e.is_empty()) {
            Some(error) => format!("{} {status}: {error}", self.source_key),
            None => format!("{} {status}", self.source_key),
        }
    }
}

/// The customer id of a manifest row: its `customer_id`, else the id in `logo:<id>`.
fn customer_of(row: &ManifestLogo) -> Option<u64> {
    row.customer_id
        .and_then(|c| u64::try_from(c).ok())
        .or_else(|| row.source_key.strip_prefix("logo:").and_then(|id| id.parse().ok()))
}

/// A chosen logo on its way to an account.
struct Candidate {
    customer: u64,
    s3_key: String,
}

/// Sets `Account.logo` from the imported manifest (see the module doc); counts and issues go
/// into `out`.
pub(crate) async fn link(ctx: &StepContext<'_>, tx: &mut PgConnection, out: &mut ChunkOutcome) -> Result<(), LoadError> {
    let mut issues: Vec<Issue> = Vec::new();
    let rows: Vec<ManifestLogo> = sqlx::query_as(
        "SELECT source_key, customer_id, account_id, status, s3_key, last_error FROM dtx_migration.file_manifest
         WHERE area = 'logos' ORDER BY source_key COLLATE \"C\"",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut by_customer: BTreeMap<u64, Vec<ManifestLogo>> = BTreeMap::new();
    for row in rows {
        match customer_of(&row) {
            Some(c) => by_customer.entry(c).or_default().push(row),
            None => issues.push(Issue::new(ENTITY, &row.source_key, REASON_NO_CUSTOMER).with_detail(row.describe())),
        }
    }

    // Legacy customers whose logo the move never recorded.
    let with_logo: Vec<u64> = sqlx::query_scalar("SELECT CAST(id AS UNSIGNED) FROM customer WHERE logo IS NOT NULL AND logo <> '' ORDER BY id")
        .fetch_all(ctx.legacy)
        .await
        .map_err(LegacyError::from)?;
    let recorded: HashSet<String> = by_customer.values().flatten().map(|r| r.source_key.clone()).collect();
    for customer in with_logo {
        if !recorded.contains(&format!("logo:{customer}")) {
            issues.push(Issue::new(ENTITY, customer, REASON_NOT_IN_MANIFEST).with_detail(format!("no logo:{customer} row in file_manifest.csv")));
        }
    }

    // One logo per customer, then one customer per account.
    let mut by_account: BTreeMap<i64, Vec<Candidate>> = BTreeMap::new();
    let mut not_linked = 0u64;
    for (customer, mut rows) in by_customer {
        let own = format!("logo:{customer}");
        rows.sort_by(|a, b| (a.source_key != own, a.source_key.as_bytes()).cmp(&(b.source_key != own, b.source_key.as_bytes())));
        let mut stored = rows.iter().filter(|r| r.stored());
        let Some(chosen) = stored.next() else {
            not_linked += 1;
            let statuses: Vec<String> = rows.iter().map(ManifestLogo::describe).collect();
            issues.push(Issue::new(ENTITY, customer, REASON_NOT_STORED).with_detail(statuses.join(", ")));
            continue;
        };
        let s3_key = chosen.s3_key.clone().unwrap_or_default();
        let others: Vec<&str> = stored.map(|r| r.source_key.as_str()).collect();
        if !others.is_empty() {
            issues.push(
                Issue::new(ENTITY, customer, REASON_SEVERAL_FOR_CUSTOMER)
                    .with_detail(format!("linked {}; not linked: {}", chosen.source_key, others.join(", "))),
            );
        }
        let Some(mapped) = ctx.mappings.accounts.get(&customer) else {
            not_linked += 1;
            let stored_for = chosen.account_id.map(|a| format!(" for account {a}")).unwrap_or_default();
            issues.push(
                Issue::new(ENTITY, customer, REASON_CUSTOMER_NOT_MAPPED)
                    .with_detail(format!("customer {customer} has no account mapping; logo stored as {s3_key}{stored_for}")),
            );
            continue;
        };
        let Ok(account) = mapped.trim().parse::<i64>() else {
            not_linked += 1;
            issues.push(Issue::new(ENTITY, customer, REASON_ACCOUNT_NOT_NUMERIC).with_detail(format!("customer {customer} maps to account {mapped:?}")));
            continue;
        };
        if let Some(stored_for) = chosen.account_id.filter(|a| *a != account) {
            not_linked += 1;
            issues.push(Issue::new(ENTITY, customer, REASON_OTHER_ACCOUNT).with_detail(format!(
                "customer {customer} maps to account {account}, but {} was stored for account {stored_for} as {s3_key}",
                chosen.source_key
            )));
            continue;
        }
        by_account.entry(account).or_default().push(Candidate { customer, s3_key });
    }

    let accounts: Vec<i64> = by_account.keys().copied().collect();
    let current: Vec<(i64, Option<String>)> = sqlx::query_as(&format!("SELECT id, logo FROM {ACCOUNT_TABLE} WHERE id = ANY($1)"))
        .bind(&accounts)
        .fetch_all(&mut *tx)
        .await?;
    let current: HashMap<i64, Option<String>> = current.into_iter().collect();
    let mut changes: Vec<LogoRow> = Vec::new();
    let mut unchanged = 0u64;
    for (account, candidates) in by_account {
        // Customers arrive in ascending id order: the first is the lowest.
        let winner = &candidates[0];
        for other in &candidates[1..] {
            not_linked += 1;
            issues.push(Issue::new(ENTITY, other.customer, REASON_SEVERAL_FOR_ACCOUNT).with_detail(format!(
                "account {account} gets customer {}'s logo {}; customer {}'s logo {} is not linked",
                winner.customer, winner.s3_key, other.customer, other.s3_key
            )));
        }
        match current.get(&account) {
            None => {
                not_linked += 1;
                issues.push(
                    Issue::new(ENTITY, winner.customer, REASON_ACCOUNT_MISSING)
                        .with_detail(format!("account {account} of customer {} does not exist; logo {}", winner.customer, winner.s3_key)),
                );
            }
            Some(value) if value.as_deref() == Some(winner.s3_key.as_str()) => unchanged += 1,
            Some(_) => changes.push(LogoRow { id: account, logo: winner.s3_key.clone() }),
        }
    }

    let ids: Vec<i64> = changes.iter().map(|c| c.id).collect();
    book::remember_prior(tx, STEP, ACCOUNT_TABLE, "logo", &ids).await?;
    let linked = bulk::update_rows(tx, ACCOUNT_TABLE, &LOGO_COLUMNS, &changes).await?;
    out.add("logos_linked", linked);
    out.add("logos_unchanged", unchanged);
    out.add("logos_not_linked", not_linked);
    out.issues.extend(bulk::merge_issues(issues));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_column_list_names_every_field_of_the_row() {
        let row = serde_json::to_value(LogoRow { id: 1, logo: "k".into() }).unwrap();
        let mut keys: Vec<&str> = row.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, LOGO_COLUMNS.iter().map(|(c, _)| *c).collect::<Vec<_>>());
    }

    #[test]
    fn the_customer_comes_from_the_column_or_the_source_key() {
        let row = |key: &str, customer: Option<i64>| ManifestLogo {
            source_key: key.into(),
            customer_id: customer,
            account_id: None,
            status: Some("moved".into()),
            s3_key: Some(" ".into()),
            last_error: None,
        };
        assert_eq!(customer_of(&row("logo:7", None)), Some(7));
        assert_eq!(customer_of(&row("repo_file:3", Some(9))), Some(9));
        assert_eq!(customer_of(&row("repo_file:3", None)), None);
        assert!(!row("logo:7", None).stored(), "a blank S3 key is not stored");
    }
}
