//! Pure field-mapping rules for the certificate/document loader (DTX 1.0 MySQL → DTX 2.0
//! PostgreSQL), as fixed by the Area 4 design spec: the agent/insured/holder field tables,
//! Decision #2 (certificate status), #3 (contact consolidation), #4 (certificate_status →
//! Evaluation), #6 (document and doc-requirement status), #15 (InsName/InsName1) and the
//! error-handling table.
//!
//! Nothing here does I/O. Where a rule falls back to a default the spec says must be logged,
//! the result says so (`Mapped::known == false`, `InsuredName::Combined`/`Missing`,
//! `Fitted::truncated_from`, `LegacyDate::Zero`, `Err`) and the loader turns it into an
//! issue row; this module never decides what to do with the record.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

/// A mapped value and whether the legacy input was one the spec names.
///
/// `known == false` means the spec's safe default was used for an unrecognised (or NULL)
/// input; the spec requires those to be logged, so the loader writes an issue row for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapped<T> {
    pub value: T,
    pub known: bool,
}

impl<T> Mapped<T> {
    fn known(value: T) -> Self {
        Mapped { value, known: true }
    }

    fn defaulted(value: T) -> Self {
        Mapped { value, known: false }
    }
}

/// Trimmed, non-empty text, or `None`. This is Python's truthiness test in the spec's code
/// (`if ProdPhone:`), extended so that whitespace-only legacy values also count as absent:
/// a blank pad in a legacy VARCHAR is not data.
fn present(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// `"Phone: {phone}"` or `"Phone: {phone} x{ext}"`; the extension is only used with a phone,
/// as in the spec's code (an extension alone is meaningless and dropped).
fn phone_part(phone: Option<&str>, ext: Option<&str>) -> Option<String> {
    let phone = present(phone)?;
    Some(match present(ext) {
        Some(ext) => format!("Phone: {phone} x{ext}"),
        None => format!("Phone: {phone}"),
    })
}

/// Joins the labelled parts that are present with `" | "`, or `None` when none are.
fn join_parts(parts: impl IntoIterator<Item = Option<String>>) -> Option<String> {
    let parts: Vec<String> = parts.into_iter().flatten().collect();
    if parts.is_empty() {
        None
    } else {
        Some(parts.join(" | "))
    }
}

fn labelled(label: &str, value: Option<&str>) -> Option<String> {
    present(value).map(|v| format!("{label}: {v}"))
}

/// `Certificate.agent_address` from ProdAddr1/ProdAddr2/ProdCity/ProdState/ProdZip (Decision #3):
/// `f"{ProdAddr1}\n{ProdAddr2}\n{ProdCity}, {ProdState} {ProdZip}".strip()`.
///
/// Choice: NULL is formatted as "" (Python would print "None" into the address).
/// Choice: each field is trimmed before formatting (consistent with the contact fields; only
/// changes output for values with surrounding blanks), and the whole result is trimmed like
/// Python's `.strip()`.
/// Choice: all five fields NULL/blank → `None` (Python would give ","), so an empty address
/// stays NULL in DTX 2.0 rather than a lone comma.
/// Choice: otherwise the spec's layout is kept verbatim, for fidelity to its reference code:
/// a missing ProdAddr2 leaves an empty line ("1 Main St\n\nBoston, MA 02101"), a missing city
/// keeps the comma (", MA 02101"), a missing state leaves two spaces ("Boston,  02101"), and
/// an address with no city/state/zip ends in "\n\n,". Such values are ugly but faithful and
/// reversible; cleaning them is a spec change, not a loader decision.
pub fn agent_address(
    addr1: Option<&str>,
    addr2: Option<&str>,
    city: Option<&str>,
    state: Option<&str>,
    zip: Option<&str>,
) -> Option<String> {
    let fields = [addr1, addr2, city, state, zip];
    if fields.iter().all(|f| present(*f).is_none()) {
        return None;
    }
    let [a1, a2, c, s, z] = fields.map(|f| present(f).unwrap_or(""));
    Some(format!("{a1}\n{a2}\n{c}, {s} {z}").trim().to_string())
}

/// `Certificate.agent_contact` from ProdContact/ProdPhone/ProdPhoneExtension/ProdFax/ProdEmail
/// (Decision #3): "Contact: …", "Phone: {phone} x{ext}", "Fax: …", "Email: …" joined by " | ".
///
/// Choice: values are trimmed and whitespace-only counts as absent (Python truthiness plus
/// trimming). An extension without a phone is dropped, as in the spec's code.
/// Choice: no parts → `None` (the spec's `" | ".join([])` would store ""); NULL is the honest
/// value for "no contact data".
/// Choice: the extension is copied as is (no stripping of a leading "x"/"ext"), for fidelity.
pub fn agent_contact(
    contact: Option<&str>,
    phone: Option<&str>,
    phone_ext: Option<&str>,
    fax: Option<&str>,
    email: Option<&str>,
) -> Option<String> {
    join_parts([
        labelled("Contact", contact),
        phone_part(phone, phone_ext),
        labelled("Fax", fax),
        labelled("Email", email),
    ])
}

/// `Certificate.insured_contact` from InsContact/InsPhone/InsPhoneExtension/InsFax/
/// InsMobilePhone/InsEmail (Decision #3), in the spec's order: Contact, Phone, Fax, Mobile,
/// Email, joined by " | ".
///
/// Choice: same as [`agent_contact`]: trimmed values, whitespace-only is absent, an extension
/// without a phone is dropped, no parts → `None`.
pub fn insured_contact(
    contact: Option<&str>,
    phone: Option<&str>,
    phone_ext: Option<&str>,
    fax: Option<&str>,
    mobile: Option<&str>,
    email: Option<&str>,
) -> Option<String> {
    join_parts([
        labelled("Contact", contact),
        phone_part(phone, phone_ext),
        labelled("Fax", fax),
        labelled("Mobile", mobile),
        labelled("Email", email),
    ])
}

/// The prefix of the holder extras stored in `Certificate.notes` (Decision #3).
pub const HOLDER_NOTES_PREFIX: &str = "[Migrated Holder Contact]";

/// `Certificate.notes` from HolderContact/HolderTitle/HolderPhone/HolderFax/HolderEmail
/// (Decision #3): `[Migrated Holder Contact] Contact: … | Title: … | Phone: … | Fax: … | Email: …`.
///
/// Choice: trimmed values, whitespace-only is absent; no extras → `None` (the spec sets notes
/// only `if holder_extras`). The spec's holder block has no phone extension, so none is taken.
pub fn holder_notes(
    contact: Option<&str>,
    title: Option<&str>,
    phone: Option<&str>,
    fax: Option<&str>,
    email: Option<&str>,
) -> Option<String> {
    join_parts([
        labelled("Contact", contact),
        labelled("Title", title),
        labelled("Phone", phone),
        labelled("Fax", fax),
        labelled("Email", email),
    ])
    .map(|extras| format!("{HOLDER_NOTES_PREFIX} {extras}"))
}

/// `Certificate.insured_name` per Decision #15.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsuredName {
    /// Both InsName and InsName1 present and different: "InsName / InsName1". The spec says to
    /// log every such record.
    Combined(String),
    /// Exactly one present, or both present and equal.
    Single(String),
    /// Neither present: `insured_name = None`, flagged for review.
    Missing,
}

impl InsuredName {
    /// The value to store in `Certificate.insured_name`.
    pub fn value(&self) -> Option<&str> {
        match self {
            InsuredName::Combined(v) | InsuredName::Single(v) => Some(v),
            InsuredName::Missing => None,
        }
    }
}

/// InsName/InsName1 → `insured_name` (Decision #15).
///
/// Choice: both values are trimmed and whitespace-only counts as absent; equality is tested on
/// the trimmed values, so "Acme " and "Acme" give `Single("Acme")`.
/// Choice: the comparison is case-sensitive, as the spec's `InsName != InsName1`: "ACME INC"
/// and "Acme Inc" give `Combined("ACME INC / Acme Inc")`. Collapsing them would have to pick one
/// spelling silently; combining keeps both and the record is logged, so a reviewer sees it.
pub fn insured_name(ins_name: Option<&str>, ins_name1: Option<&str>) -> InsuredName {
    match (present(ins_name), present(ins_name1)) {
        (Some(a), Some(b)) if a != b => InsuredName::Combined(format!("{a} / {b}")),
        (Some(a), _) => InsuredName::Single(a.to_string()),
        (None, Some(b)) => InsuredName::Single(b.to_string()),
        (None, None) => InsuredName::Missing,
    }
}

/// DTX 2.0 `CertificateStatus` (Decision #2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateStatus {
    Ready,
    ManualReview,
    Evaluated,
}

impl CertificateStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            CertificateStatus::Ready => "ready",
            CertificateStatus::ManualReview => "manual_review",
            CertificateStatus::Evaluated => "evaluated",
        }
    }
}

/// DTX 1.0 `certificate.certificate_status` → `Certificate.status` (Decision #2):
/// FINISHED → evaluated, PENDING → manual_review, PROCESSING → ready; anything else, NULL
/// included → manual_review with `known == false` ("Default to manual_review, log").
///
/// Choice: the legacy value is trimmed and compared ASCII case-insensitively ("finished",
/// " Finished " → evaluated): the spec names the values, not their spelling, and the
/// distribution report will show the raw spellings anyway.
pub fn certificate_status(legacy: Option<&str>) -> Mapped<CertificateStatus> {
    let Some(v) = present(legacy) else {
        return Mapped::defaulted(CertificateStatus::ManualReview);
    };
    if v.eq_ignore_ascii_case("FINISHED") {
        Mapped::known(CertificateStatus::Evaluated)
    } else if v.eq_ignore_ascii_case("PENDING") {
        Mapped::known(CertificateStatus::ManualReview)
    } else if v.eq_ignore_ascii_case("PROCESSING") {
        Mapped::known(CertificateStatus::Ready)
    } else {
        Mapped::defaulted(CertificateStatus::ManualReview)
    }
}

/// The Decision #4 prefix table, field_name prefix → `EvaluationCoverage.coverage_type`.
/// No prefix is a prefix of another, so the order of checks cannot change a result.
const COVERAGE_PREFIXES: [(&str, &str); 6] = [
    ("GL", "GeneralLiability"),
    ("Auto", "AutoLiability"),
    ("WC", "WorkersCompensation"),
    ("UMB", "UmbrellaLiability"),
    ("LL", "LiquorLiability"),
    ("Prop", "PropertyCoverage"),
];

/// The fallback coverage type for an unmapped field_name.
pub const OTHER_COVERAGE: &str = "OtherCoverage";

/// `certificate_status.field_name` → `EvaluationCoverage.coverage_type` (Decision #4):
/// GL* → GeneralLiability, Auto* → AutoLiability, WC* → WorkersCompensation,
/// UMB* → UmbrellaLiability, LL* → LiquorLiability, Prop* → PropertyCoverage; anything else
/// → OtherCoverage with `known == false` ("Create as OtherCoverage, log").
///
/// Choice: prefixes match case-sensitively, exactly as the table spells them (the legacy
/// names are CamelCase: GLPolExpDate, AutoPolExpDate, …). A case-insensitive match would make
/// the two-letter acronyms claim ordinary words ("Glass…", "Llama…", "Wcb…") silently as
/// known, whereas a miss is only a logged OtherCoverage; so the narrow match errs on the
/// visible side. "GLASS…" in capitals would still match GL (the table's own rule).
/// Choice: the field_name is trimmed first; a bare prefix ("GL") matches, as the glob "GL*"
/// does. The six prefixes do not overlap (none is a prefix of another), so the check order
/// is irrelevant and "LL" cannot swallow another entry.
pub fn coverage_type(field_name: &str) -> Mapped<&'static str> {
    let name = field_name.trim();
    COVERAGE_PREFIXES
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map_or(Mapped::defaulted(OTHER_COVERAGE), |(_, coverage)| Mapped::known(*coverage))
}

/// Whether a `certificate_status.status_code` is COMPLIANT (Decision #4).
///
/// Choice: trimmed, ASCII case-insensitive, whole-value comparison ("NON_COMPLIANT" and
/// "COMPLIANTX" are not compliant); NULL is not compliant.
pub fn is_compliant(status_code: Option<&str>) -> bool {
    present(status_code).is_some_and(|c| c.eq_ignore_ascii_case("COMPLIANT"))
}

/// Evaluation / EvaluationCoverage / EvaluationDetail status as migrated (Decision #4 only
/// produces pass or fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalStatus {
    Pass,
    Fail,
}

impl EvalStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            EvalStatus::Pass => "pass",
            EvalStatus::Fail => "fail",
        }
    }
}

/// `'pass' if ALL rows are COMPLIANT, else 'fail'` (Decision #4), for an Evaluation, an
/// EvaluationCoverage, or (with one code) an EvaluationDetail.
///
/// Choice: an empty set of codes is `Fail`, unlike Python's `all([]) == True`: a pass with no
/// compliance evidence would be a false claim. It should not occur (evaluations are only built
/// from at least one row).
pub fn evaluation_status<'a>(codes: impl IntoIterator<Item = Option<&'a str>>) -> EvalStatus {
    let mut any = false;
    for code in codes {
        if !is_compliant(code) {
            return EvalStatus::Fail;
        }
        any = true;
    }
    if any {
        EvalStatus::Pass
    } else {
        EvalStatus::Fail
    }
}

/// The DTX 2.0 `DocumentStatus` values the migration produces (Decision #6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentStatus {
    New,
    Submitted,
    OcrReject,
}

impl DocumentStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            DocumentStatus::New => "new",
            DocumentStatus::Submitted => "submitted",
            DocumentStatus::OcrReject => "ocr_reject",
        }
    }
}

/// DTX 1.0 `document.document_status` → `Document.status` (Decision #6): "0"/"new" → new,
/// NOT_PROVIDED → new, reviewed/approved → submitted, rejected → ocr_reject; anything else,
/// NULL included → new with `known == false` ("Default to new, log").
///
/// Choice: trimmed and ASCII case-insensitive; the spec's "Reviewed/approved" and "Rejected"
/// are read as the words REVIEWED, APPROVED, REJECTED. Only "0" is a known numeric code: the
/// spec names no other, so "1", "00", … are unknown and logged.
pub fn document_status(legacy: Option<&str>) -> Mapped<DocumentStatus> {
    let Some(v) = present(legacy) else {
        return Mapped::defaulted(DocumentStatus::New);
    };
    let is = |word: &str| v.eq_ignore_ascii_case(word);
    if v == "0" || is("new") || is("NOT_PROVIDED") {
        Mapped::known(DocumentStatus::New)
    } else if is("reviewed") || is("approved") {
        Mapped::known(DocumentStatus::Submitted)
    } else if is("rejected") {
        Mapped::known(DocumentStatus::OcrReject)
    } else {
        Mapped::defaulted(DocumentStatus::New)
    }
}

/// DTX 2.0 `DocRequirementStatus` (Decision #6, document_status table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocRequirementStatus {
    InReview,
    Pass,
    Fail,
    Override,
}

impl DocRequirementStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            DocRequirementStatus::InReview => "in_review",
            DocRequirementStatus::Pass => "pass",
            DocRequirementStatus::Fail => "fail",
            DocRequirementStatus::Override => "override",
        }
    }
}

/// DTX 1.0 `document_status.document_status` → `DocRequirement.status` (Decision #6):
/// NOT_PROVIDED → in_review, PROVIDED/APPROVED → pass, REJECTED → fail, OVERRIDE → override;
/// anything else, NULL included → in_review with `known == false`.
///
/// Choice: trimmed and ASCII case-insensitive, as for the other status maps. The spec's table
/// says only "Safe default" for unknowns; they are flagged anyway, in line with the
/// error-handling table's treatment of every other unknown status.
pub fn doc_requirement_status(legacy: Option<&str>) -> Mapped<DocRequirementStatus> {
    let Some(v) = present(legacy) else {
        return Mapped::defaulted(DocRequirementStatus::InReview);
    };
    let is = |word: &str| v.eq_ignore_ascii_case(word);
    if is("NOT_PROVIDED") {
        Mapped::known(DocRequirementStatus::InReview)
    } else if is("PROVIDED") || is("APPROVED") {
        Mapped::known(DocRequirementStatus::Pass)
    } else if is("REJECTED") {
        Mapped::known(DocRequirementStatus::Fail)
    } else if is("OVERRIDE") {
        Mapped::known(DocRequirementStatus::Override)
    } else {
        Mapped::defaulted(DocRequirementStatus::InReview)
    }
}

/// A text value fitted to a column's width.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fitted {
    /// The value to store, `None` for NULL/blank.
    pub value: Option<String>,
    /// When the value was cut: its length in characters (after trimming) before the cut.
    /// The loader logs these as "overlong".
    pub truncated_from: Option<usize>,
}

/// Trims `value`, maps blank to `None`, and cuts it to at most `max_chars` characters
/// (Unicode scalar values, which is what PostgreSQL's `varchar(n)` counts; never mid-character).
///
/// Choice: `truncated_from` is the trimmed length in characters, so surrounding blanks alone
/// never count as "overlong".
/// Choice: after a cut, trailing whitespace exposed by the cut is trimmed too (no stored value
/// ends in a blank), so the result may be shorter than `max_chars`; a cut that leaves nothing
/// (e.g. `max_chars == 0`) gives `value: None` with `truncated_from` set.
pub fn fit_text(value: Option<&str>, max_chars: usize) -> Fitted {
    let Some(v) = present(value) else {
        return Fitted { value: None, truncated_from: None };
    };
    // `char_indices().nth(max_chars)` is the byte offset of the first character past the
    // limit, so slicing there is always on a char boundary.
    match v.char_indices().nth(max_chars) {
        None => Fitted { value: Some(v.to_string()), truncated_from: None },
        Some((cut, _)) => {
            let kept = v[..cut].trim_end();
            Fitted {
                value: (!kept.is_empty()).then(|| kept.to_string()),
                truncated_from: Some(v.chars().count()),
            }
        }
    }
}

/// A legacy MySQL DATE/DATETIME read as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyDate {
    /// SQL NULL.
    Null,
    /// The MySQL zero date ("0000-00-00", "0000-00-00 00:00:00"): stored as NULL, but the
    /// loader logs it, since it is a legacy placeholder rather than a real absence.
    Zero,
    Value(NaiveDateTime),
}

impl LegacyDate {
    /// The value to store (`None` for NULL and for the zero date).
    pub fn value(self) -> Option<NaiveDateTime> {
        match self {
            LegacyDate::Value(v) => Some(v),
            LegacyDate::Null | LegacyDate::Zero => None,
        }
    }
}

/// Parses a legacy MySQL DATE/DATETIME rendered as text: "YYYY-MM-DD" (midnight),
/// "YYYY-MM-DD HH:MM:SS" with optional fractional seconds ("….123456", MySQL DATETIME(6)).
///
/// Choice: returns [`LegacyDate`] rather than `Option`, so the zero date (`Zero`, must be
/// logged) stays distinguishable from NULL (`Null`, not an issue).
/// Choice: a value whose date part is all zeros ("0000-00-00", with or without a time) is
/// `Zero`; a partial zero date ("2019-00-00", "2019-04-00", allowed by lax MySQL modes) is an
/// `Err`, as it is not a date at all and a guessed day would be invented data.
/// Choice: the text is trimmed; blank text is an `Err` (DATE columns never hold it, so it is
/// a sign of a wrong column, not an absence). A 'T' separator is accepted as well as a space.
/// Choice: no time zone is applied; the value is as MySQL stored it and any conversion is the
/// caller's.
pub fn legacy_date(value: Option<&str>) -> Result<LegacyDate, String> {
    let Some(raw) = value else {
        return Ok(LegacyDate::Null);
    };
    let text = raw.trim();
    let invalid = || format!("invalid legacy date {raw:?}");
    // MySQL renders "date time"; ISO 'T' is accepted too.
    let (date_part, time_part) = match text.split_once([' ', 'T']) {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    // A time, when present, must be well-formed even on the zero date, so that garbage is
    // never reported as a mere zero date.
    let time = match time_part {
        None => NaiveTime::MIN,
        Some(t) => NaiveTime::parse_from_str(t, "%H:%M:%S%.f").map_err(|_| invalid())?,
    };
    if date_part == "0000-00-00" {
        return Ok(LegacyDate::Zero);
    }
    // `%Y` alone would accept a sign, more than four digits or unpadded fields; the legacy
    // format is fixed at "YYYY-MM-DD".
    if date_part.len() != 10 {
        return Err(invalid());
    }
    let date = NaiveDate::parse_from_str(date_part, "%Y-%m-%d").map_err(|_| invalid())?;
    Ok(LegacyDate::Value(date.and_time(time)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    // ---- agent_address ----

    #[test]
    fn agent_address_full_layout_matches_spec() {
        assert_eq!(
            agent_address(Some("1 Main St"), Some("Suite 5"), Some("Boston"), Some("MA"), Some("02101")),
            s("1 Main St\nSuite 5\nBoston, MA 02101")
        );
    }

    #[test]
    fn agent_address_missing_addr2_leaves_empty_line() {
        assert_eq!(
            agent_address(Some("1 Main St"), None, Some("Boston"), Some("MA"), Some("02101")),
            s("1 Main St\n\nBoston, MA 02101")
        );
        assert_eq!(
            agent_address(Some("1 Main St"), Some("   "), Some("Boston"), Some("MA"), Some("02101")),
            s("1 Main St\n\nBoston, MA 02101")
        );
    }

    #[test]
    fn agent_address_strip_removes_leading_and_trailing_blanks() {
        assert_eq!(agent_address(None, None, Some("Boston"), Some("MA"), Some("02101")), s("Boston, MA 02101"));
        assert_eq!(agent_address(None, Some("Suite 5"), Some("Boston"), Some("MA"), None), s("Suite 5\nBoston, MA"));
        assert_eq!(agent_address(Some(" 1 Main St "), None, None, None, None), s("1 Main St\n\n,"));
    }

    #[test]
    fn agent_address_keeps_python_separators() {
        assert_eq!(agent_address(None, None, None, Some("MA"), Some("02101")), s(", MA 02101"));
        assert_eq!(agent_address(None, None, Some("Boston"), None, Some("02101")), s("Boston,  02101"));
    }

    #[test]
    fn agent_address_all_empty_is_none() {
        assert_eq!(agent_address(None, None, None, None, None), None);
        assert_eq!(agent_address(Some(""), Some(" "), Some("\t"), None, Some("")), None);
    }

    // ---- agent_contact ----

    #[test]
    fn agent_contact_brief_example() {
        assert_eq!(
            agent_contact(Some("Jane"), Some("555-1234"), Some("12"), None, Some("j@x.com")),
            s("Contact: Jane | Phone: 555-1234 x12 | Email: j@x.com")
        );
    }

    #[test]
    fn agent_contact_all_parts_in_order() {
        assert_eq!(
            agent_contact(Some("Jane"), Some("555-1234"), None, Some("555-9999"), Some("j@x.com")),
            s("Contact: Jane | Phone: 555-1234 | Fax: 555-9999 | Email: j@x.com")
        );
    }

    #[test]
    fn agent_contact_ext_without_phone_is_dropped() {
        assert_eq!(agent_contact(None, None, Some("12"), Some("555-9999"), None), s("Fax: 555-9999"));
        assert_eq!(agent_contact(None, Some("  "), Some("12"), None, None), None);
    }

    #[test]
    fn agent_contact_trims_and_treats_blank_as_absent() {
        assert_eq!(
            agent_contact(Some("  Jane "), Some(" 555-1234 "), Some(" "), Some(""), Some(" j@x.com")),
            s("Contact: Jane | Phone: 555-1234 | Email: j@x.com")
        );
        assert_eq!(agent_contact(None, None, None, None, None), None);
        assert_eq!(agent_contact(Some(""), Some(" "), Some(""), Some("\n"), Some("")), None);
    }

    // ---- insured_contact ----

    #[test]
    fn insured_contact_spec_order_with_mobile() {
        assert_eq!(
            insured_contact(Some("Bob"), Some("555-1"), Some("7"), Some("555-2"), Some("555-3"), Some("b@y.org")),
            s("Contact: Bob | Phone: 555-1 x7 | Fax: 555-2 | Mobile: 555-3 | Email: b@y.org")
        );
    }

    #[test]
    fn insured_contact_partial_and_empty() {
        assert_eq!(insured_contact(None, None, Some("7"), None, Some("555-3"), None), s("Mobile: 555-3"));
        assert_eq!(insured_contact(None, Some("555-1"), None, None, None, Some("b@y.org")), s("Phone: 555-1 | Email: b@y.org"));
        assert_eq!(insured_contact(None, None, None, None, None, None), None);
        assert_eq!(insured_contact(Some(" "), None, Some("7"), Some(""), None, None), None);
    }

    // ---- holder_notes ----

    #[test]
    fn holder_notes_prefix_and_order() {
        assert_eq!(
            holder_notes(Some("Ann"), Some("Risk Mgr"), Some("555-1"), Some("555-2"), Some("a@z.com")),
            s("[Migrated Holder Contact] Contact: Ann | Title: Risk Mgr | Phone: 555-1 | Fax: 555-2 | Email: a@z.com")
        );
        assert_eq!(holder_notes(None, None, None, None, Some(" a@z.com ")), s("[Migrated Holder Contact] Email: a@z.com"));
        assert_eq!(holder_notes(None, Some("Risk Mgr"), None, Some("555-2"), None), s("[Migrated Holder Contact] Title: Risk Mgr | Fax: 555-2"));
    }

    #[test]
    fn holder_notes_none_without_extras() {
        assert_eq!(holder_notes(None, None, None, None, None), None);
        assert_eq!(holder_notes(Some(""), Some("  "), None, Some(""), None), None);
    }

    // ---- insured_name ----

    #[test]
    fn insured_name_both_different_is_combined() {
        let n = insured_name(Some("Acme Inc"), Some("DBA Acme Roofing"));
        assert_eq!(n, InsuredName::Combined("Acme Inc / DBA Acme Roofing".to_string()));
        assert_eq!(n.value(), Some("Acme Inc / DBA Acme Roofing"));
    }

    #[test]
    fn insured_name_both_equal_is_single() {
        assert_eq!(insured_name(Some("Acme Inc"), Some("Acme Inc")), InsuredName::Single("Acme Inc".to_string()));
        assert_eq!(insured_name(Some(" Acme Inc"), Some("Acme Inc  ")), InsuredName::Single("Acme Inc".to_string()));
    }

    #[test]
    fn insured_name_case_only_difference_is_combined() {
        assert_eq!(insured_name(Some("ACME INC"), Some("Acme Inc")), InsuredName::Combined("ACME INC / Acme Inc".to_string()));
    }

    #[test]
    fn insured_name_one_missing() {
        assert_eq!(insured_name(Some("Acme"), None), InsuredName::Single("Acme".to_string()));
        assert_eq!(insured_name(Some("Acme"), Some("  ")), InsuredName::Single("Acme".to_string()));
        assert_eq!(insured_name(None, Some("Acme DBA")), InsuredName::Single("Acme DBA".to_string()));
        assert_eq!(insured_name(Some(""), Some(" Acme DBA ")).value(), Some("Acme DBA"));
    }

    #[test]
    fn insured_name_none_is_missing() {
        assert_eq!(insured_name(None, None), InsuredName::Missing);
        assert_eq!(insured_name(Some(" "), Some("")), InsuredName::Missing);
        assert_eq!(InsuredName::Missing.value(), None);
    }

    // ---- certificate_status ----

    #[test]
    fn certificate_status_known_values() {
        assert_eq!(certificate_status(Some("FINISHED")), Mapped { value: CertificateStatus::Evaluated, known: true });
        assert_eq!(certificate_status(Some("PENDING")), Mapped { value: CertificateStatus::ManualReview, known: true });
        assert_eq!(certificate_status(Some("PROCESSING")), Mapped { value: CertificateStatus::Ready, known: true });
    }

    #[test]
    fn certificate_status_case_and_whitespace() {
        assert_eq!(certificate_status(Some(" finished ")), Mapped { value: CertificateStatus::Evaluated, known: true });
        assert_eq!(certificate_status(Some("Pending")), Mapped { value: CertificateStatus::ManualReview, known: true });
        assert_eq!(certificate_status(Some("processing\n")), Mapped { value: CertificateStatus::Ready, known: true });
    }

    #[test]
    fn certificate_status_unknown_and_null_are_flagged_manual_review() {
        for v in [None, Some(""), Some("  "), Some("DONE"), Some("FINISHED2"), Some("0")] {
            assert_eq!(certificate_status(v), Mapped { value: CertificateStatus::ManualReview, known: false }, "{v:?}");
        }
    }

    #[test]
    fn certificate_status_strings() {
        assert_eq!(CertificateStatus::Ready.as_str(), "ready");
        assert_eq!(CertificateStatus::ManualReview.as_str(), "manual_review");
        assert_eq!(CertificateStatus::Evaluated.as_str(), "evaluated");
    }

    // ---- coverage_type ----

    #[test]
    fn coverage_type_spec_examples() {
        assert_eq!(coverage_type("GLPolExpDate"), Mapped { value: "GeneralLiability", known: true });
        assert_eq!(coverage_type("AutoPolExpDate"), Mapped { value: "AutoLiability", known: true });
        assert_eq!(coverage_type("WCPolExpDate"), Mapped { value: "WorkersCompensation", known: true });
        assert_eq!(coverage_type("UMBPolExpDate"), Mapped { value: "UmbrellaLiability", known: true });
    }

    #[test]
    fn coverage_type_other_prefixes() {
        assert_eq!(coverage_type("LLPolExpDate"), Mapped { value: "LiquorLiability", known: true });
        assert_eq!(coverage_type("PropPolExpDate"), Mapped { value: "PropertyCoverage", known: true });
        assert_eq!(coverage_type("PropertyLimit"), Mapped { value: "PropertyCoverage", known: true });
        assert_eq!(coverage_type("GLEachOccurrence"), Mapped { value: "GeneralLiability", known: true });
        assert_eq!(coverage_type("GL"), Mapped { value: "GeneralLiability", known: true });
        assert_eq!(coverage_type("  WCPolExpDate "), Mapped { value: "WorkersCompensation", known: true });
    }

    #[test]
    fn coverage_type_unknown_is_other_and_flagged() {
        for name in ["BondAmount", "", "   ", "glPolExpDate", "autoPolExpDate", "Umbrella", "Glass", "Llama", "ProductsLimit", "XGLPolExpDate"] {
            assert_eq!(coverage_type(name), Mapped { value: "OtherCoverage", known: false }, "{name:?}");
        }
    }

    // ---- evaluation ----

    #[test]
    fn is_compliant_rules() {
        assert!(is_compliant(Some("COMPLIANT")));
        assert!(is_compliant(Some(" compliant ")));
        assert!(is_compliant(Some("Compliant")));
        assert!(!is_compliant(Some("NON_COMPLIANT")));
        assert!(!is_compliant(Some("NONCOMPLIANT")));
        assert!(!is_compliant(Some("COMPLIANTX")));
        assert!(!is_compliant(Some("")));
        assert!(!is_compliant(None));
    }

    #[test]
    fn evaluation_status_all_compliant_passes() {
        // The spec's example: certificate 5215, four COMPLIANT rows.
        let codes = [Some("COMPLIANT"), Some("COMPLIANT"), Some("COMPLIANT"), Some("COMPLIANT")];
        assert_eq!(evaluation_status(codes), EvalStatus::Pass);
        assert_eq!(evaluation_status([Some("compliant")]), EvalStatus::Pass);
    }

    #[test]
    fn evaluation_status_any_non_compliant_fails() {
        assert_eq!(evaluation_status([Some("COMPLIANT"), Some("NON_COMPLIANT")]), EvalStatus::Fail);
        assert_eq!(evaluation_status([Some("EXPIRED"), Some("COMPLIANT")]), EvalStatus::Fail);
        assert_eq!(evaluation_status([Some("COMPLIANT"), None]), EvalStatus::Fail);
        assert_eq!(evaluation_status([Some("NON_COMPLIANT")]), EvalStatus::Fail);
    }

    #[test]
    fn evaluation_status_empty_fails() {
        assert_eq!(evaluation_status(std::iter::empty::<Option<&str>>()), EvalStatus::Fail);
    }

    #[test]
    fn evaluation_status_strings() {
        assert_eq!(EvalStatus::Pass.as_str(), "pass");
        assert_eq!(EvalStatus::Fail.as_str(), "fail");
    }

    // ---- document_status ----

    #[test]
    fn document_status_known_values() {
        for v in ["0", "new", "NEW", " New ", "NOT_PROVIDED", "not_provided"] {
            assert_eq!(document_status(Some(v)), Mapped { value: DocumentStatus::New, known: true }, "{v:?}");
        }
        for v in ["reviewed", "REVIEWED", "approved", " Approved"] {
            assert_eq!(document_status(Some(v)), Mapped { value: DocumentStatus::Submitted, known: true }, "{v:?}");
        }
        for v in ["rejected", "REJECTED", "Rejected "] {
            assert_eq!(document_status(Some(v)), Mapped { value: DocumentStatus::OcrReject, known: true }, "{v:?}");
        }
    }

    #[test]
    fn document_status_unknown_and_null_are_flagged_new() {
        for v in [None, Some(""), Some(" "), Some("1"), Some("00"), Some("PROVIDED"), Some("NOT PROVIDED"), Some("pending")] {
            assert_eq!(document_status(v), Mapped { value: DocumentStatus::New, known: false }, "{v:?}");
        }
    }

    #[test]
    fn document_status_strings() {
        assert_eq!(DocumentStatus::New.as_str(), "new");
        assert_eq!(DocumentStatus::Submitted.as_str(), "submitted");
        assert_eq!(DocumentStatus::OcrReject.as_str(), "ocr_reject");
    }

    // ---- doc_requirement_status ----

    #[test]
    fn doc_requirement_status_known_values() {
        assert_eq!(doc_requirement_status(Some("NOT_PROVIDED")), Mapped { value: DocRequirementStatus::InReview, known: true });
        assert_eq!(doc_requirement_status(Some("PROVIDED")), Mapped { value: DocRequirementStatus::Pass, known: true });
        assert_eq!(doc_requirement_status(Some("APPROVED")), Mapped { value: DocRequirementStatus::Pass, known: true });
        assert_eq!(doc_requirement_status(Some("REJECTED")), Mapped { value: DocRequirementStatus::Fail, known: true });
        assert_eq!(doc_requirement_status(Some("OVERRIDE")), Mapped { value: DocRequirementStatus::Override, known: true });
        assert_eq!(doc_requirement_status(Some(" provided ")), Mapped { value: DocRequirementStatus::Pass, known: true });
        assert_eq!(doc_requirement_status(Some("Override")), Mapped { value: DocRequirementStatus::Override, known: true });
        assert_eq!(doc_requirement_status(Some("not_provided")), Mapped { value: DocRequirementStatus::InReview, known: true });
    }

    #[test]
    fn doc_requirement_status_unknown_and_null_are_flagged_in_review() {
        for v in [None, Some(""), Some("  "), Some("0"), Some("OVERRIDDEN"), Some("NOT PROVIDED"), Some("EXPIRED")] {
            assert_eq!(doc_requirement_status(v), Mapped { value: DocRequirementStatus::InReview, known: false }, "{v:?}");
        }
    }

    #[test]
    fn doc_requirement_status_strings() {
        assert_eq!(DocRequirementStatus::InReview.as_str(), "in_review");
        assert_eq!(DocRequirementStatus::Pass.as_str(), "pass");
        assert_eq!(DocRequirementStatus::Fail.as_str(), "fail");
        assert_eq!(DocRequirementStatus::Override.as_str(), "override");
    }

    // ---- fit_text ----

    #[test]
    fn fit_text_fits_and_trims() {
        assert_eq!(fit_text(Some("  Acme  "), 10), Fitted { value: s("Acme"), truncated_from: None });
        assert_eq!(fit_text(Some("Acme"), 4), Fitted { value: s("Acme"), truncated_from: None });
        assert_eq!(fit_text(Some("  Acme  "), 4), Fitted { value: s("Acme"), truncated_from: None });
    }

    #[test]
    fn fit_text_blank_is_none() {
        assert_eq!(fit_text(None, 10), Fitted { value: None, truncated_from: None });
        assert_eq!(fit_text(Some(""), 10), Fitted { value: None, truncated_from: None });
        assert_eq!(fit_text(Some(" \t\n"), 10), Fitted { value: None, truncated_from: None });
    }

    #[test]
    fn fit_text_cuts_on_characters_not_bytes() {
        assert_eq!(fit_text(Some("Müller"), 3), Fitted { value: s("Mül"), truncated_from: Some(6) });
        assert_eq!(fit_text(Some("Müller"), 2), Fitted { value: s("Mü"), truncated_from: Some(6) });
        // 6 characters but 7 bytes: fits a 6-character column.
        assert_eq!(fit_text(Some("Müller"), 6), Fitted { value: s("Müller"), truncated_from: None });
        assert_eq!(fit_text(Some("日本語テキスト"), 3), Fitted { value: s("日本語"), truncated_from: Some(7) });
    }

    #[test]
    fn fit_text_trims_after_cut_and_handles_zero() {
        assert_eq!(fit_text(Some("Hello World"), 6), Fitted { value: s("Hello"), truncated_from: Some(11) });
        assert_eq!(fit_text(Some("Hello"), 0), Fitted { value: None, truncated_from: Some(5) });
    }

    // ---- legacy_date ----

    fn dt(y: i32, m: u32, d: u32, h: u32, mi: u32, sec: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d).and_then(|x| x.and_hms_opt(h, mi, sec)).unwrap()
    }

    #[test]
    fn legacy_date_values() {
        assert_eq!(legacy_date(Some("2019-04-04")), Ok(LegacyDate::Value(dt(2019, 4, 4, 0, 0, 0))));
        assert_eq!(legacy_date(Some("2019-04-04 10:11:12")), Ok(LegacyDate::Value(dt(2019, 4, 4, 10, 11, 12))));
        assert_eq!(legacy_date(Some(" 2019-04-04 10:11:12 ")), Ok(LegacyDate::Value(dt(2019, 4, 4, 10, 11, 12))));
        assert_eq!(legacy_date(Some("2019-04-04T10:11:12")), Ok(LegacyDate::Value(dt(2019, 4, 4, 10, 11, 12))));
        let frac = NaiveDate::from_ymd_opt(2019, 4, 4).and_then(|d| d.and_hms_micro_opt(10, 11, 12, 123_456)).unwrap();
        assert_eq!(legacy_date(Some("2019-04-04 10:11:12.123456")), Ok(LegacyDate::Value(frac)));
        assert_eq!(legacy_date(Some("2019-04-04")).map(LegacyDate::value), Ok(Some(dt(2019, 4, 4, 0, 0, 0))));
    }

    #[test]
    fn legacy_date_zero_and_null() {
        assert_eq!(legacy_date(Some("0000-00-00")), Ok(LegacyDate::Zero));
        assert_eq!(legacy_date(Some("0000-00-00 00:00:00")), Ok(LegacyDate::Zero));
        assert_eq!(legacy_date(Some("0000-00-00 00:00:00.000000")), Ok(LegacyDate::Zero));
        assert_eq!(legacy_date(None), Ok(LegacyDate::Null));
        assert_eq!(LegacyDate::Zero.value(), None);
        assert_eq!(LegacyDate::Null.value(), None);
    }

    #[test]
    fn legacy_date_invalid_names_the_value() {
        for v in ["", "  ", "2019-00-00", "2019-04-00", "2019-02-30", "2019-13-01", "04/04/2019", "2019-04-04 25:00:00", "0000-00-00 junk", "+2019-04-04", "2019-4-4", "yesterday"] {
            let e = legacy_date(Some(v)).unwrap_err();
            assert!(e.contains(&format!("{v:?}")), "{v:?}: {e}");
        }
    }
}
