//! The set-based writing every step shares: ids resolved through the id map (fresh ones from
//! the table's identity sequence), one bulk INSERT and one bulk UPDATE per table per chunk, and
//! issue merging; and the defensive decoding of legacy values into issues ([`RowIssues`]).
//!
//! Choice: the bulk statements read their rows from one JSON array parameter through
//! `jsonb_to_recordset` (a struct per row, serialized with serde, whose field names are the
//! target column names): one bind instead of one UNNEST array per column, and each step's
//! column list is written once next to its row struct (a unit test per step checks the two
//! agree). One round trip per table per chunk.
//! Choice: new rows get their ids up front from the table's identity sequence (`nextval`), so
//! the legacy key → new id pairing never depends on the order of `RETURNING` rows.
//! Choice: an UPDATE only touches rows whose values differ (`IS DISTINCT FROM`): a rerun on
//! unchanged legacy data writes nothing and leaves the tables byte-identical.

use super::{ChunkOutcome, StepContext};
use crate::error::PortError;
use crate::legacy::LegacyError;
use crate::loader::book::{self, Issue};
use crate::loader::mapping::{self, LegacyDate};
use crate::loader::runner::LoadError;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use sqlx::mysql::MySqlRow;
use sqlx::{PgConnection, Row};
use std::collections::{HashMap, HashSet};

/// A legacy read failed.
pub(crate) fn legacy(e: sqlx::Error) -> LoadError {
    LoadError::Legacy(LegacyError::from(e))
}

/// Reasons of the issues [`RowIssues`] raises (steps re-export them for their tests).
pub const REASON_UTF8: &str = "invalid UTF-8";
pub const REASON_OVERLONG: &str = "overlong text";
pub const REASON_ZERO_DATE: &str = "zero date";
pub const REASON_INVALID_DATE: &str = "invalid date";
pub const REASON_NUL: &str = "NUL character removed";
pub const REASON_NO_CREATE_TIME: &str = "no create_time";

/// The issues of one legacy row (`entity`, `key`), with the decoding helpers that raise them.
#[derive(Debug)]
pub(crate) struct RowIssues {
    pub entity: &'static str,
    pub key: String,
    /// The VARCHAR widths of the target's text columns (`None` = TEXT), for [`RowIssues::fit`].
    pub widths: &'static [(&'static str, Option<usize>)],
    /// Whether a NUL removed by [`RowIssues::text`] is an issue of its own ([`RowIssues::flagging_nul`]).
    pub flag_nul: bool,
    pub issues: Vec<Issue>,
}

impl RowIssues {
    pub fn new(entity: &'static str, key: impl ToString, widths: &'static [(&'static str, Option<usize>)]) -> Self {
        Self { entity, key: key.to_string(), widths, flag_nul: false, issues: Vec::new() }
    }

    /// These issues also flag each text value [`RowIssues::text`] removed NUL characters from
    /// ("NUL character removed", column and cleaned value).
    pub fn flagging_nul(self) -> Self {
        Self { flag_nul: true, ..self }
    }

    pub fn add(&mut self, reason: &str, detail: impl Into<String>) {
        self.issues.push(Issue::new(self.entity, &self.key, reason).with_detail(detail));
    }

    /// Legacy text as UTF-8 without NUL.
    /// Choice: a text value with invalid UTF-8 is kept, cleaned with U+FFFD replacement
    /// characters (`from_utf8_lossy`), rather than dropped: the rest of the value is usually
    /// right, and the "invalid UTF-8" issue (column and cleaned value) tells a reviewer where to look.
    pub fn text(&mut self, column: &str, bytes: Option<Vec<u8>>) -> Option<String> {
        let value = legacy_text(bytes, |bad| self.add(REASON_UTF8, format!("{column}: {:?}", book::pg_text(bad))))?;
        let cleaned = book::pg_text(&value);
        if self.flag_nul && cleaned.len() != value.len() {
            self.add(REASON_NUL, format!("{column}: {cleaned:?}"));
        }
        Some(cleaned)
    }

    /// `fit_text` to the column's width in `widths`; a cut is an "overlong text" issue.
    /// Choice: TEXT columns go through `fit_text` too (no width): trimmed, blank → NULL, like
    /// every other copied value.
    pub fn fit(&mut self, column: &str, value: Option<&str>) -> Option<String> {
        let width = self.widths.iter().find(|(c, _)| *c == column).and_then(|(_, w)| *w);
        let fitted = mapping::fit_text(value, width.unwrap_or(usize::MAX));
        if let (Some(from), Some(w)) = (fitted.truncated_from, width) {
            self.add(REASON_OVERLONG, format!("{column}: {from} characters, cut to {w}"));
        }
        fitted.value
    }

    /// A legacy DATE/DATETIME: zero → None + "zero date"; unparsable → None + "invalid date".
    pub fn date(&mut self, column: &str, raw: Option<&str>) -> Option<NaiveDateTime> {
        match mapping::legacy_date(raw) {
            Ok(LegacyDate::Value(v)) => Some(v),
            Ok(LegacyDate::Null) => None,
            Ok(LegacyDate::Zero) => {
                self.add(REASON_ZERO_DATE, column);
                None
            }
            Err(e) => {
                self.add(REASON_INVALID_DATE, format!("{column}: {e}"));
                None
            }
        }
    }

    /// `created`/`modified` of a row from its legacy create and update times (read as UTC).
    /// Choice: a missing create_time falls back to update_time when there is one (a real legacy
    /// time, and created <= modified holds), else to the load time at insert (None here); a
    /// missing update_time falls back to created. An unusable create_time is one "no
    /// create_time" issue saying which fallback was taken; a bad update_time is a date issue.
    pub fn created_modified(&mut self, create_time: Option<&str>, update_time: Option<&str>) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let create = match mapping::legacy_date(create_time) {
            Ok(LegacyDate::Value(v)) => Ok(v.and_utc()),
            Ok(LegacyDate::Null) => Err("NULL".to_string()),
            Ok(LegacyDate::Zero) => Err(format!("zero date {:?}", create_time.unwrap_or_default())),
            Err(e) => Err(e),
        };
        let update = self.date("update_time", update_time).map(|v| v.and_utc());
        let created = match create {
            Ok(c) => Some(c),
            Err(why) => {
                let fallback = if update.is_some() { "created set to update_time" } else { "created set to the load time" };
                self.add(REASON_NO_CREATE_TIME, format!("create_time {why}: {fallback}"));
                update
            }
        };
        (created, update.or(created))
    }
}

/// Reads one keyset chunk of legacy rows and decodes each: `sql` binds the id to continue after
/// and the chunk size (`ctx.chunk_rows`, at least 1); every row gets its own issues from
/// `new_issues`, which `decode` keys by the row. The rows' `id` column is the next chunk's
/// key, read ahead ([`legacy_chunk`]).
pub(crate) async fn read_decoded<T>(
    ctx: &StepContext<'_>,
    sql: &str,
    after_id: u64,
    new_issues: impl Fn() -> RowIssues,
    decode: impl Fn(&MySqlRow, &mut RowIssues) -> Result<T, sqlx::Error>,
) -> Result<Vec<(T, RowIssues)>, LoadError> {
    let rows = legacy_chunk(ctx, sql, after_id, |last| last.try_get::<u64, _>("id")).await?;
    let mut decoded = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut issues = new_issues();
        let value = decode(row, &mut issues).map_err(legacy)?;
        decoded.push((value, issues));
    }
    Ok(decoded)
}

/// One keyset chunk of legacy rows: `sql` binds `key` (where the chunk starts) and the chunk
/// size. Then the next chunk (`next_key` of this chunk's last row) is read ahead on another
/// connection while the step writes this one, and the next call with that key takes it.
///
/// Choice: reading ahead overlaps MariaDB's work (and the rows' transfer) with PostgreSQL's,
/// which otherwise waited on each other chunk after chunk. A keyset read depends only on its
/// key, so the rows read ahead are the rows the next call would read; the legacy database is
/// not written during a migration, and a chunk that is not asked for (the step stopped, or
/// it asked for another key) is dropped unread.
pub(crate) async fn legacy_chunk(
    ctx: &StepContext<'_>,
    sql: &str,
    key: u64,
    next_key: impl Fn(&MySqlRow) -> Result<u64, sqlx::Error>,
) -> Result<Vec<MySqlRow>, LoadError> {
    let limit = ctx.chunk_rows.max(1);
    let ahead = ctx.read_ahead.take(sql, key);
    let rows = match ahead {
        Some(task) => task.await.map_err(|e| internal("reading ahead", e))?.map_err(legacy)?,
        None => sqlx::query(sql).bind(key).bind(limit).fetch_all(ctx.legacy).await.map_err(legacy)?,
    };
    if let Some(last) = rows.last() {
        let next = next_key(last).map_err(legacy)?;
        let (pool, query) = (ctx.legacy.clone(), sql.to_string());
        let task = tokio::spawn(async move { sqlx::query(&query).bind(next).bind(limit).fetch_all(&pool).await });
        ctx.read_ahead.put(sql, next, task);
    }
    Ok(rows)
}

/// The next legacy chunk, being read ([`legacy_chunk`]); one per step invocation.
#[derive(Default)]
pub struct ReadAhead(std::sync::Mutex<Option<Pending>>);

struct Pending {
    sql: String,
    key: u64,
    task: tokio::task::JoinHandle<Result<Vec<MySqlRow>, sqlx::Error>>,
}

impl ReadAhead {
    fn take(&self, sql: &str, key: u64) -> Option<tokio::task::JoinHandle<Result<Vec<MySqlRow>, sqlx::Error>>> {
        let pending = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()?;
        if pending.sql == sql && pending.key == key {
            Some(pending.task)
        } else {
            pending.task.abort();
            None
        }
    }

    fn put(&self, sql: &str, key: u64, task: tokio::task::JoinHandle<Result<Vec<MySqlRow>, sqlx::Error>>) {
        let previous = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).replace(Pending { sql: sql.to_string(), key, task });
        if let Some(p) = previous {
            p.task.abort();
        }
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        if let Some(p) = self.0.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            p.task.abort();
        }
    }
}

impl std::fmt::Debug for ReadAhead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadAhead")
    }
}

/// Legacy text read as `CAST(x AS BINARY)`, as UTF-8. Invalid bytes are replaced (U+FFFD,
/// `from_utf8_lossy`) and `on_invalid` gets the replaced value, for the step's own issue.
pub(crate) fn legacy_text(bytes: Option<Vec<u8>>, on_invalid: impl FnOnce(&str)) -> Option<String> {
    Some(String::from_utf8(bytes?).unwrap_or_else(|e| {
        let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
        on_invalid(&lossy);
        lossy
    }))
}

/// A loader bug or an impossible database answer: permanent, named by `what`.
pub(crate) fn internal(what: &'static str, detail: impl std::fmt::Display) -> LoadError {
    LoadError::Port(PortError::permanent(what, detail.to_string()))
}

/// `n` fresh ids of `table` from its identity sequence, ascending.
pub(crate) async fn allocate_ids(tx: &mut PgConnection, table: &str, n: usize) -> Result<Vec<i64>, LoadError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    // The sequence is looked up once, not per row (a per-row lookup doubled the statement's time).
    let mut ids: Vec<i64> = sqlx::query_scalar(
        "SELECT nextval(s.seq) FROM (SELECT pg_get_serial_sequence($1, 'id')::regclass AS seq OFFSET 0) s, generate_series(1, $2)",
    )
        .bind(table)
        .bind(n as i64)
        .fetch_all(&mut *tx)
        .await?;
    if ids.len() != n {
        return Err(internal("allocating ids", format!("{table}: the identity sequence returned too few ids")));
    }
    ids.sort_unstable();
    Ok(ids)
}

/// The mapped ids of `keys` for `entity` (only those keys, not the whole entity).
pub(crate) async fn mapped_ids(tx: &mut PgConnection, entity: &str, keys: &[String]) -> Result<HashMap<String, i64>, sqlx::Error> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT legacy_key, new_id FROM dtx_migration.id_map WHERE entity = $1 AND legacy_key = ANY($2)")
            .bind(entity)
            .bind(keys)
            .fetch_all(&mut *tx)
            .await?;
    Ok(rows.into_iter().collect())
}

/// Which of `ids` exist in `table`.
pub(crate) async fn existing_ids(tx: &mut PgConnection, table: &str, ids: &[i64]) -> Result<HashSet<i64>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let rows: Vec<i64> = sqlx::query_scalar(&format!("SELECT id FROM {table} WHERE id = ANY($1)")).bind(ids).fetch_all(&mut *tx).await?;
    Ok(rows.into_iter().collect())
}

/// The ids of a chunk's keys for one table: mapped ones (and whether their row still exists),
/// fresh ones from the identity sequence for the rest (ascending, in key order).
#[derive(Debug, Default)]
pub(crate) struct Ids {
    pub id: HashMap<String, i64>,
    /// Mapped ids whose row exists (to update); every other id is inserted.
    pub present: HashSet<i64>,
    /// The keys that got a fresh id, for the id map.
    pub new_pairs: Vec<(String, i64)>,
}

impl Ids {
    pub fn id(&self, key: &str) -> Result<i64, LoadError> {
        self.id.get(key).copied().ok_or_else(|| internal("ids", format!("no id for key {key}")))
    }
}

/// Resolves `keys` of `entity` (rows of `table`). Choice: an id map entry whose row is gone is
/// re-inserted under that same id.
pub(crate) async fn resolve_ids(tx: &mut PgConnection, table: &str, entity: &str, keys: &[String]) -> Result<Ids, LoadError> {
    if keys.is_empty() {
        return Ok(Ids::default());
    }
    let mapped: Vec<(String, i64, bool)> = sqlx::query_as(&format!(
        "SELECT m.legacy_key, m.new_id, t.id IS NOT NULL FROM dtx_migration.id_map m LEFT JOIN {table} t ON t.id = m.new_id
         WHERE m.entity = $1 AND m.legacy_key = ANY($2)"
    ))
    .bind(entity)
    .bind(keys)
    .fetch_all(&mut *tx)
    .await?;
    let present: HashSet<i64> = mapped.iter().filter(|(_, _, p)| *p).map(|(_, id, _)| *id).collect();
    let mut id: HashMap<String, i64> = mapped.into_iter().map(|(k, i, _)| (k, i)).collect();
    let mut seen = HashSet::new();
    let unmapped: Vec<&String> = keys.iter().filter(|k| !id.contains_key(*k) && seen.insert(k.as_str())).collect();
    let fresh = allocate_ids(tx, table, unmapped.len()).await?;
    let mut new_pairs = Vec::with_capacity(unmapped.len());
    for (k, i) in unmapped.into_iter().zip(fresh) {
        id.insert(k.clone(), i);
        new_pairs.push((k.clone(), i));
    }
    Ok(Ids { id, present, new_pairs })
}

fn to_json<T: Serialize>(table: &str, rows: &[T]) -> Result<String, LoadError> {
    serde_json::to_string(rows).map_err(|e| internal("rows to JSON", format!("{table}: {e}")))
}

fn record_def(columns: &[(&str, &str)]) -> String {
    columns.iter().map(|(c, t)| format!("{c} {t}")).collect::<Vec<_>>().join(", ")
}

/// Timestamps a step may leave NULL in a row: `now` on insert, the stored value on update.
const TIMESTAMPS: [&str; 2] = ["created", "modified"];

/// Inserts `rows` (ids already chosen), in id order. A NULL `created`/`modified` becomes `now`.
///
/// Choice: new rows go in with `COPY ... FROM STDIN` (text format, rendered here from each
/// row's serialized fields) rather than the JSON array the updates use: PostgreSQL parses COPY
/// text far more cheaply than a jsonb parameter (the jsonb parse alone was about half of the
/// certificates' insert time, 43 µs a row). Each value is parsed by the target column's own
/// input function, as the INSERT's assignment cast did, so a value the column cannot hold
/// fails the chunk the same way.
pub(crate) async fn insert_rows<T: Serialize>(
    tx: &mut PgConnection,
    table: &str,
    columns: &[(&str, &str)],
    rows: &[T],
    now: DateTime<Utc>,
) -> Result<u64, LoadError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let names: Vec<&str> = columns.iter().map(|(c, _)| *c).collect();
    let body = copy_text(table, &names, rows, now)?;
    let mut copy = tx.copy_in_raw(&format!("COPY {table} ({}) FROM STDIN", names.join(", "))).await?;
    if let Err(e) = copy.send(body.into_bytes()).await {
        // The server already failed the COPY; ending it says why in the error we return.
        return Err(match copy.abort(format!("sending rows of {table} failed")).await {
            Ok(()) => e.into(),
            Err(abort) => abort.into(),
        });
    }
    Ok(copy.finish().await?)
}

/// `rows` as COPY text-format lines (one per row, `names` in order, sorted by `id` when there
/// is one); a NULL `created`/`modified` is rendered as `now`.
fn copy_text<T: Serialize>(table: &str, names: &[&str], rows: &[T], now: DateTime<Utc>) -> Result<String, LoadError> {
    let now = serde_json::Value::String(now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    let mut lines: Vec<(i64, String)> = Vec::with_capacity(rows.len());
    for row in rows {
        let value = serde_json::to_value(row).map_err(|e| internal("rows to COPY", format!("{table}: {e}")))?;
        let serde_json::Value::Object(fields) = value else {
            return Err(internal("rows to COPY", format!("{table}: a row is not a struct")));
        };
        let mut line = String::with_capacity(128);
        for (i, name) in names.iter().enumerate() {
            if i > 0 {
                line.push('\t');
            }
            let field = match fields.get(*name) {
                Some(serde_json::Value::Null) | None if TIMESTAMPS.contains(name) => &now,
                Some(v) => v,
                None => return Err(internal("rows to COPY", format!("{table}: the row has no field {name}"))),
            };
            push_copy_field(&mut line, field);
        }
        line.push('\n');
        let id = fields.get("id").and_then(serde_json::Value::as_i64).unwrap_or_default();
        lines.push((id, line));
    }
    lines.sort_by_key(|(id, _)| *id);
    Ok(lines.into_iter().map(|(_, line)| line).collect())
}

/// One value in COPY's text format: `\N` for NULL; backslash, tab, newline and carriage
/// return escaped; arrays and objects as JSON text (for json/jsonb columns).
fn push_copy_field(line: &mut String, value: &serde_json::Value) {
    match value {
        serde_json::Value::Null => line.push_str("\\N"),
        serde_json::Value::Bool(b) => line.push(if *b { 't' } else { 'f' }),
        serde_json::Value::Number(n) => line.push_str(&n.to_string()),
        serde_json::Value::String(text) => book::push_copy_text(line, text),
        other => book::push_copy_text(line, &other.to_string()),
    }
}

/// Updates the rows of `rows` (by id) whose stored values differ; returns how many changed.
/// A NULL `created`/`modified` keeps the stored value.
pub(crate) async fn update_rows<T: Serialize>(tx: &mut PgConnection, table: &str, columns: &[(&str, &str)], rows: &[T]) -> Result<u64, LoadError> {
    update_rows_keeping(tx, table, columns, &[], rows).await
}

/// [`update_rows`], where a NULL in one of the `keep` columns keeps the stored value too.
pub(crate) async fn update_rows_keeping<T: Serialize>(
    tx: &mut PgConnection,
    table: &str,
    columns: &[(&str, &str)],
    keep: &[&str],
    rows: &[T],
) -> Result<u64, LoadError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let names: Vec<&str> = columns.iter().map(|(c, _)| *c).filter(|c| *c != "id").collect();
    let value = |c: &str| if TIMESTAMPS.contains(&c) || keep.contains(&c) { format!("COALESCE(t.{c}, c.{c})") } else { format!("t.{c}") };
    let set: Vec<String> = names.iter().map(|c| format!("{c} = {}", value(c))).collect();
    let old: Vec<String> = names.iter().map(|c| format!("c.{c}")).collect();
    let new: Vec<String> = names.iter().map(|c| value(c)).collect();
    let sql = format!(
        "UPDATE {table} AS c SET {} FROM jsonb_to_recordset($1::jsonb) AS t({})
         WHERE c.id = t.id AND ({}) IS DISTINCT FROM ({})",
        set.join(", "),
        record_def(columns),
        old.join(", "),
        new.join(", ")
    );
    let done = sqlx::query(&sql).bind(to_json(table, rows)?).execute(&mut *tx).await?;
    Ok(done.rows_affected())
}

/// Inserts the rows whose id is not in `present` and updates the others where a value differs;
/// counts `<what>_created`, `<what>_updated`, `<what>_unchanged` in `out`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn write_rows<T: Serialize>(
    tx: &mut PgConnection,
    table: &str,
    columns: &[(&str, &str)],
    rows: &[T],
    id_of: impl Fn(&T) -> i64,
    present: &HashSet<i64>,
    now: DateTime<Utc>,
    what: &str,
    out: &mut ChunkOutcome,
) -> Result<(), LoadError> {
    let (updates, inserts): (Vec<&T>, Vec<&T>) = rows.iter().partition(|r| present.contains(&id_of(r)));
    let created = insert_rows(tx, table, columns, &inserts, now).await?;
    let updated = update_rows(tx, table, columns, &updates).await?;
    out.add(&format!("{what}_created"), created);
    out.add(&format!("{what}_updated"), updated);
    out.add(&format!("{what}_unchanged"), (updates.len() as u64).saturating_sub(updated));
    Ok(())
}

/// Choice: issues sharing (entity, key, reason) are merged into one, details joined with "; ":
/// the issue table keeps one row per (step, entity, key, reason), and one statement cannot
/// upsert the same key twice.
pub(crate) fn merge_issues(issues: Vec<Issue>) -> Vec<Issue> {
    let mut merged: Vec<Issue> = Vec::with_capacity(issues.len());
    let mut at: HashMap<(String, String, String), usize> = HashMap::new();
    for issue in issues {
        let key = (issue.entity.clone(), issue.legacy_key.clone(), issue.reason.clone());
        match at.get(&key) {
            Some(&i) => {
                let detail = match (merged[i].detail.take(), issue.detail) {
                    (Some(a), Some(b)) if a != b && !a.split("; ").any(|d| d == b) => Some(format!("{a}; {b}")),
                    (a, b) => a.or(b),
                };
                merged[i].detail = detail;
            }
            None => {
                at.insert(key, merged.len());
                merged.push(issue);
            }
        }
    }
    merged
}

/// Test helper: the fields a row struct serializes are exactly the names of its column list.
#[cfg(test)]
pub(crate) fn assert_columns_match<T: Serialize + Default>(columns: &[(&str, &str)]) {
    let row = serde_json::to_value(T::default()).expect("row to JSON");
    let mut fields: Vec<String> = row.as_object().expect("a row is an object").keys().cloned().collect();
    fields.sort();
    let mut names: Vec<String> = columns.iter().map(|(c, _)| c.to_string()).collect();
    names.sort();
    assert_eq!(fields, names, "{}", std::any::type_name::<T>());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct CopyRow {
        id: i64,
        name: Option<String>,
        flag: bool,
        created: Option<DateTime<Utc>>,
        extra: serde_json::Value,
    }

    #[test]
    fn copy_text_escapes_values_orders_by_id_and_stamps_missing_times() {
        let now = NaiveDateTime::parse_from_str("2026-12-02 10:11:12", "%Y-%m-%d %H:%M:%S").unwrap().and_utc();
        let then = NaiveDateTime::parse_from_str("2019-01-02 03:04:05", "%Y-%m-%d %H:%M:%S").unwrap().and_utc();
        let rows = [
            CopyRow { id: 9, name: Some("tab\there\nline\r\\end".into()), flag: true, created: Some(then), extra: serde_json::json!({"a": [1]}) },
            CopyRow { id: 2, name: None, flag: false, created: None, extra: serde_json::Value::Null },
        ];
        let text = copy_text("t", &["id", "name", "flag", "created", "extra"], &rows, now).unwrap();
        assert_eq!(
            text,
            "2\t\\N\tf\t2026-12-02T10:11:12.000000Z\t\\N\n\
             9\ttab\\there\\nline\\r\\\\end\tt\t2019-01-02T03:04:05Z\t{\"a\":[1]}\n"
        );
        let missing = copy_text("t", &["id", "nope"], &rows, now).unwrap_err();
        assert!(missing.to_string().contains("t: the row has no field nope"), "{missing}");
    }

    #[test]
    fn merged_issues_keep_one_row_per_key_and_every_distinct_detail_once() {
        let issues = vec![
            Issue::new("certificate", 1u64, "invalid UTF-8").with_detail("a"),
            Issue::new("certificate", 1u64, "invalid UTF-8").with_detail("b"),
            Issue::new("certificate", 2u64, "invalid UTF-8").with_detail("b"),
            Issue::new("certificate", 1u64, "invalid UTF-8").with_detail("a"),
            Issue::new("certificate", 1u64, "overlong text"),
        ];
        let merged = merge_issues(issues);
        assert_eq!(merged.len(), 3);
        assert_eq!(merged[0].detail.as_deref(), Some("a; b"));
        assert_eq!(merged[1].legacy_key, "2");
        assert_eq!(merged[2].reason, "overlong text");
    }

    #[test]
    fn nul_characters_are_removed_and_flagged_only_when_asked() {
        let reasons = |i: &RowIssues| i.issues.iter().map(|i| (i.reason.clone(), i.detail.clone().unwrap_or_default())).collect::<Vec<_>>();
        let mut quiet = RowIssues::new("document", 9, &[]);
        assert_eq!(quiet.text("name", Some(b"A\0B".to_vec())).as_deref(), Some("AB"));
        assert!(quiet.issues.is_empty());
        let mut flagging = RowIssues::new("document", 9, &[]).flagging_nul();
        assert_eq!(flagging.text("name", Some(b"A\0B".to_vec())).as_deref(), Some("AB"));
        assert_eq!(flagging.text("notes", Some(b"AB".to_vec())).as_deref(), Some("AB"));
        assert_eq!(flagging.text("city", Some(b"Caf\xe9\0".to_vec())).as_deref(), Some("Caf\u{FFFD}"));
        assert_eq!(flagging.text("none", None), None);
        let expected = [(REASON_NUL, "name: \"AB\""), (REASON_UTF8, "city: \"Caf\u{FFFD}\""), (REASON_NUL, "city: \"Caf\u{FFFD}\"")];
        assert_eq!(reasons(&flagging), expected.map(|(r, d)| (r.to_string(), d.to_string())));
    }

    #[test]
    fn created_falls_back_to_update_time_then_the_load_time() {
        let t = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap().and_utc();
        let mut issues = RowIssues::new("document", 1, &[]);
        assert_eq!(
            issues.created_modified(Some("2019-01-02 03:04:05"), Some("2019-02-03 04:05:06")),
            (Some(t("2019-01-02 03:04:05")), Some(t("2019-02-03 04:05:06")))
        );
        assert_eq!(issues.created_modified(Some("2019-01-02 03:04:05"), None), (Some(t("2019-01-02 03:04:05")), Some(t("2019-01-02 03:04:05"))));
        assert!(issues.issues.is_empty());
        let zero = issues.created_modified(Some("0000-00-00 00:00:00"), Some("2021-06-01 10:00:00"));
        assert_eq!(zero, (Some(t("2021-06-01 10:00:00")), Some(t("2021-06-01 10:00:00"))));
        assert_eq!(issues.created_modified(None, Some("0000-00-00")), (None, None));
        let details: Vec<(&str, &str)> = issues.issues.iter().map(|i| (i.reason.as_str(), i.detail.as_deref().unwrap_or_default())).collect();
        assert_eq!(
            details,
            [
                (REASON_NO_CREATE_TIME, "create_time zero date \"0000-00-00 00:00:00\": created set to update_time"),
                (REASON_ZERO_DATE, "update_time"),
                (REASON_NO_CREATE_TIME, "create_time NULL: created set to the load time"),
            ]
        );
    }
}
