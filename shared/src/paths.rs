//! Legacy path resolution and confinement to the source root.
//!
//! DTX 1.0 stored file paths from three server generations plus the file repository and
//! logo areas. Each is rewritten by a [`PathRule`] onto a location under the source root
//! (what production calls `/efsdata`). Legacy paths are untrusted input: a path is turned
//! into clean relative components here (no `..`, no NUL, no absolute escape), and
//! [`confine`] later proves the file it names is a regular file inside the root.

use crate::model::Area;
use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};

/// One rewrite rule: paths starting with `legacy_prefix` live under `location` (relative to
/// the source root). Rules of the same `family` are alternative homes of the same tree, so a
/// file absent from one is probed in the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathRule {
    pub generation: String,
    pub family: String,
    pub legacy_prefix: String,
    pub location: String,
}

/// The ordered rule set. Longest legacy prefix wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRules {
    rules: Vec<PathRule>,
}

/// Production's layout: all three attachment generations now live under `/efsdata/attachments`.
pub const GEN3_ATTACHMENTS_PREFIX: &str = "/efsdata/attachments/";
pub const FILEREPO_PREFIX: &str = "/efsdata/filerepo/";
pub const LOGOS_PREFIX: &str = "/efsdata/logos/";

impl Default for PathRules {
    fn default() -> Self {
        let rule = |generation: &str, family: &str, legacy_prefix: &str, location: &str| PathRule {
            generation: generation.into(),
            family: family.into(),
            legacy_prefix: legacy_prefix.into(),
            location: location.into(),
        };
        PathRules::new(vec![
            rule("gen1", "attachments", "/home/wwwriskt/public_html/attachments/", "attachments/"),
            rule("gen2", "attachments", "/home/wwwriskt/public_html/www1/attachments/", "attachments/"),
            rule("gen3", "attachments", GEN3_ATTACHMENTS_PREFIX, "attachments/"),
            rule("filerepo", "filerepo", FILEREPO_PREFIX, "filerepo/"),
            rule("logos", "logos", LOGOS_PREFIX, "logos/"),
        ])
        .expect("built-in path rules are valid")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path contains a NUL byte")]
    NulByte,
    #[error("path is not absolute: {0:?}")]
    NotAbsolute(String),
    #[error("path matches no rewrite rule: {0:?}")]
    NoRule(String),
    #[error("path has a parent-directory component (`..`): {0:?}")]
    ParentComponent(String),
    #[error("path names a directory, not a file: {0:?}")]
    NoFileName(String),
    #[error("file name contains a path separator: {0:?}")]
    SeparatorInName(String),
    #[error("invalid rewrite rule {0:?}: {1}")]
    BadRule(String, String),
}

/// Where a legacy path points, before touching the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPath {
    /// The rule's generation label (gen1, gen2, gen3, filerepo, logos).
    pub generation: String,
    /// Candidates relative to the source root, primary first, each with how it was derived.
    pub candidates: Vec<Candidate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub relative: PathBuf,
    /// `primary`, `probe:<generation>` or `decoded-name`.
    pub via: String,
    pub generation: String,
}

impl PathRules {
    pub fn new(mut rules: Vec<PathRule>) -> Result<Self, PathError> {
        for rule in &rules {
            if !rule.legacy_prefix.starts_with('/') || !rule.legacy_prefix.ends_with('/') {
                return Err(PathError::BadRule(
                    rule.generation.clone(),
                    "legacy_prefix must be absolute and end with '/'".into(),
                ));
            }
            let location_ok = !rule.location.starts_with('/')
                && Path::new(&rule.location).components().all(|c| matches!(c, Component::Normal(_)));
            if !location_ok {
                return Err(PathError::BadRule(
                    rule.generation.clone(),
                    "location must be a relative path without `..`".into(),
                ));
            }
        }
        rules.sort_by_key(|r| std::cmp::Reverse(r.legacy_prefix.len()));
        Ok(Self { rules })
    }

    /// Parses the `PATH_REWRITE_RULES` JSON form: `[{"generation","family","legacy_prefix","location"}]`.
    pub fn from_json(json: &str) -> Result<Self, PathError> {
        let rules: Vec<PathRule> = serde_json::from_str(json)
            .map_err(|e| PathError::BadRule("PATH_REWRITE_RULES".into(), e.to_string()))?;
        Self::new(rules)
    }

    pub fn rules(&self) -> &[PathRule] {
        &self.rules
    }

    /// Rewrites a legacy absolute path into candidate locations under the root.
    pub fn resolve(&self, legacy_path: &str) -> Result<ResolvedPath, PathError> {
        if legacy_path.contains('\0') {
            return Err(PathError::NulByte);
        }
        if !legacy_path.starts_with('/') {
            return Err(PathError::NotAbsolute(legacy_path.to_string()));
        }
        let rule = self
            .rules
            .iter()
            .find(|r| legacy_path.starts_with(&r.legacy_prefix))
            .ok_or_else(|| PathError::NoRule(legacy_path.to_string()))?;
        let rest = clean_components(&legacy_path[rule.legacy_prefix.len()..], legacy_path)?;

        let mut candidates = Vec::new();
        let mut push = |relative: PathBuf, via: String, generation: &str| {
            if !candidates.iter().any(|c: &Candidate| c.relative == relative) {
                candidates.push(Candidate { relative, via, generation: generation.to_string() });
            }
        };
        push(Path::new(&rule.location).join(&rest), "primary".into(), &rule.generation);
        for other in self.rules.iter().filter(|o| o.family == rule.family && o.generation != rule.generation) {
            push(Path::new(&other.location).join(&rest), format!("probe:{}", other.generation), &other.generation);
        }
        if let Some(decoded) = decoded_file_name(&rest) {
            push(Path::new(&rule.location).join(decoded), "decoded-name".into(), &rule.generation);
        }
        Ok(ResolvedPath { generation: rule.generation.clone(), candidates })
    }

    /// The storage area a root-relative path belongs to, when its location says so.
    pub fn area_of(&self, relative: &Path) -> Option<Area> {
        let rel = relative.to_string_lossy();
        for rule in &self.rules {
            if let Some(inner) = rel.strip_prefix(rule.location.as_str()) {
                return match rule.family.as_str() {
                    "filerepo" => Some(Area::Filerepo),
                    "logos" => Some(Area::Logos),
                    _ if inner.starts_with("certificate_management/") => Some(Area::Certificates),
                    _ if inner.starts_with("document_management/") => Some(Area::Documents),
                    _ => None,
                };
            }
        }
        None
    }

    /// The root-relative directories the storage areas live in (for the orphan scan).
    pub fn storage_locations(&self) -> Vec<String> {
        let mut locations: Vec<String> = self.rules.iter().map(|r| r.location.clone()).collect();
        locations.sort();
        locations.dedup();
        locations
    }
}

/// Splits the part of a legacy path after its prefix into safe components.
fn clean_components(rest: &str, whole: &str) -> Result<PathBuf, PathError> {
    let mut out = PathBuf::new();
    for part in rest.split('/') {
        match part {
            "" | "." => continue,
            ".." => return Err(PathError::ParentComponent(whole.to_string())),
            name => out.push(name),
        }
    }
    if out.as_os_str().is_empty() || rest.ends_with('/') {
        return Err(PathError::NoFileName(whole.to_string()));
    }
    Ok(out)
}

/// `Policy%20Renewal.pdf` stored in the database while the disk has `Policy Renewal.pdf`.
fn decoded_file_name(rest: &Path) -> Option<PathBuf> {
    let name = rest.file_name()?.to_str()?;
    if !name.contains('%') {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(name).decode_utf8().ok()?;
    // `%2e` must not decode to the directory itself (found by the path_resolve fuzz target).
    if decoded == name || decoded.contains('/') || decoded.contains('\0') || matches!(decoded.as_ref(), "" | "." | "..") {
        return None;
    }
    Some(rest.with_file_name(decoded.as_ref()))
}

/// Validates a bare file name taken from the database (e.g. `attachment.name`) before it is
/// joined into a constructed path.
pub fn checked_file_name(name: &str) -> Result<&str, PathError> {
    if name.contains('\0') {
        return Err(PathError::NulByte);
    }
    if name.contains('/') {
        return Err(PathError::SeparatorInName(name.to_string()));
    }
    if name.is_empty() || name == "." || name == ".." {
        return Err(PathError::NoFileName(name.to_string()));
    }
    Ok(name)
}

/// The spec's constructed path for a certificate attachment without a repo_file row.
pub fn constructed_certificate_path(certificate_id: u64, name: &str) -> Result<String, PathError> {
    let name = checked_file_name(name)?;
    Ok(format!("{GEN3_ATTACHMENTS_PREFIX}certificate_management/{certificate_id}/{name}"))
}

/// The spec's constructed path for a document attachment without a repo_file row.
pub fn constructed_document_path(customer_id: u64, document_id: u64, name: &str) -> Result<String, PathError> {
    let name = checked_file_name(name)?;
    Ok(format!("{GEN3_ATTACHMENTS_PREFIX}document_management/{customer_id}/{document_id}/{name}"))
}

/// A customer's logo: `customer.logo` is a file name under `/efsdata/logos/`, or already a
/// full legacy path.
pub fn logo_path(logo: &str) -> Result<String, PathError> {
    if logo.starts_with('/') {
        return Ok(logo.to_string());
    }
    Ok(format!("{LOGOS_PREFIX}{}", checked_file_name(logo)?))
}

/// Why a candidate that exists on disk cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfineError {
    #[error("no such file")]
    NotFound,
    #[error("escapes root: resolves to {0}")]
    EscapesRoot(String),
    #[error("not a regular file ({0})")]
    NotRegular(&'static str),
    #[error("cannot inspect: {0}")]
    Io(String),
}

/// Proves `root/relative` is a regular file inside `root` after following every symlink, and
/// returns its canonical path and size. `root` must already be canonical.
///
/// Symlinks that stay inside the root are followed (legacy trees use them); anything that
/// resolves outside, or is a FIFO, socket, device or directory, is refused without opening
/// it, so a hostile entry can neither leak data nor block the worker.
pub fn confine(root: &Path, relative: &Path) -> Result<(PathBuf, u64), ConfineError> {
    if relative.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(ConfineError::EscapesRoot(relative.display().to_string()));
    }
    let joined = root.join(relative);
    let canonical = match std::fs::canonicalize(&joined) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ConfineError::NotFound),
        // A dangling symlink or a component that is not a directory also means "not there".
        Err(e) if e.raw_os_error() == Some(20) => return Err(ConfineError::NotFound),
        Err(e) => return Err(ConfineError::Io(e.to_string())),
    };
    if !canonical.starts_with(root) {
        return Err(ConfineError::EscapesRoot(canonical.display().to_string()));
    }
    let meta = std::fs::symlink_metadata(&canonical).map_err(|e| ConfineError::Io(e.to_string()))?;
    let file_type = meta.file_type();
    if !file_type.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let kind = if file_type.is_dir() {
            "directory"
        } else if file_type.is_fifo() {
            "fifo"
        } else if file_type.is_socket() {
            "socket"
        } else if file_type.is_block_device() || file_type.is_char_device() {
            "device"
        } else {
            "special file"
        };
        return Err(ConfineError::NotRegular(kind));
    }
    Ok((canonical, meta.len()))
}

/// Opens a confined file without following a last-moment swap to a FIFO (`O_NONBLOCK`) or a
/// symlink (`O_NOFOLLOW`), and re-checks that the opened handle is a regular file.
pub fn open_confined(canonical: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(canonical)?;
    if !file.metadata()?.file_type().is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_each_generation_under_the_root() {
        let rules = PathRules::default();
        for (legacy, generation) in [
            ("/home/wwwriskt/public_html/attachments/certificate_management/5/a.pdf", "gen1"),
            ("/home/wwwriskt/public_html/www1/attachments/certificate_management/5/a.pdf", "gen2"),
            ("/efsdata/attachments/certificate_management/5/a.pdf", "gen3"),
        ] {
            let r = rules.resolve(legacy).unwrap();
            assert_eq!(r.generation, generation);
            assert_eq!(r.candidates[0].relative, PathBuf::from("attachments/certificate_management/5/a.pdf"));
            assert_eq!(r.candidates.len(), 1, "same location for all generations by default");
            assert_eq!(rules.area_of(&r.candidates[0].relative), Some(Area::Certificates));
        }
        let r = rules.resolve("/efsdata/filerepo/3/9/x y.pdf").unwrap();
        assert_eq!(r.candidates[0].relative, PathBuf::from("filerepo/3/9/x y.pdf"));
        assert_eq!(rules.area_of(&r.candidates[0].relative), Some(Area::Filerepo));
    }

    #[test]
    fn probes_other_generation_locations_when_configured_apart() {
        let rules = PathRules::from_json(
            r#"[{"generation":"gen1","family":"attachments","legacy_prefix":"/old/attachments/","location":"old/"},
                {"generation":"gen3","family":"attachments","legacy_prefix":"/efsdata/attachments/","location":"attachments/"}]"#,
        )
        .unwrap();
        let r = rules.resolve("/old/attachments/document_management/1/2/d.pdf").unwrap();
        let got: Vec<_> = r.candidates.iter().map(|c| (c.relative.clone(), c.via.clone())).collect();
        assert_eq!(
            got,
            vec![
                (PathBuf::from("old/document_management/1/2/d.pdf"), "primary".to_string()),
                (PathBuf::from("attachments/document_management/1/2/d.pdf"), "probe:gen3".to_string()),
            ]
        );
    }

    #[test]
    fn refuses_hostile_paths() {
        let rules = PathRules::default();
        assert!(matches!(
            rules.resolve("/efsdata/attachments/../../etc/passwd"),
            Err(PathError::ParentComponent(_))
        ));
        assert!(matches!(rules.resolve("/etc/passwd"), Err(PathError::NoRule(_))));
        assert!(matches!(rules.resolve("efsdata/attachments/a"), Err(PathError::NotAbsolute(_))));
        assert!(matches!(rules.resolve("/efsdata/attachments/a\0b"), Err(PathError::NulByte)));
        assert!(matches!(rules.resolve("/efsdata/attachments/dir/"), Err(PathError::NoFileName(_))));
        assert!(constructed_certificate_path(1, "../x").is_err());
        assert!(constructed_certificate_path(1, "a/b").is_err());
    }

    #[test]
    fn adds_a_decoded_name_candidate() {
        let r = PathRules::default().resolve("/efsdata/attachments/certificate_management/1/Policy%20Renewal.pdf").unwrap();
        assert_eq!(r.candidates.len(), 2);
        assert_eq!(r.candidates[1].relative, PathBuf::from("attachments/certificate_management/1/Policy Renewal.pdf"));
        assert_eq!(r.candidates[1].via, "decoded-name");
        // `100% complete.pdf` is not valid percent-encoding of anything else: no extra candidate.
        let r = PathRules::default().resolve("/efsdata/attachments/certificate_management/1/100% complete.pdf").unwrap();
        assert_eq!(r.candidates.len(), 1);
        // A name decoding to `.` would name the directory itself: a missing `%2e` file must
        // stay missing, not be refused as "not a regular file".
        for name in ["%2e", "%2E", "%2e%2e"] {
            let r = PathRules::default().resolve(&format!("/efsdata/attachments/certificate_management/7/{name}")).unwrap();
            assert_eq!(r.candidates.len(), 1, "{name}: {:?}", r.candidates);
        }
    }

    #[test]
    fn confine_accepts_inside_and_refuses_escapes_and_specials() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(root.join("a/f.pdf"), b"x").unwrap();
        std::fs::write(dir.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("a/out")).unwrap();
        std::os::unix::fs::symlink(root.join("a/f.pdf"), root.join("a/in")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("updir")).unwrap();
        let root = std::fs::canonicalize(&root).unwrap();

        assert_eq!(confine(&root, Path::new("a/f.pdf")).unwrap().1, 1);
        assert!(confine(&root, Path::new("a/in")).is_ok());
        assert!(matches!(confine(&root, Path::new("a/out")), Err(ConfineError::EscapesRoot(_))));
        assert!(matches!(confine(&root, Path::new("updir/secret")), Err(ConfineError::EscapesRoot(_))));
        assert!(matches!(confine(&root, Path::new("a")), Err(ConfineError::NotRegular("directory"))));
        assert!(matches!(confine(&root, Path::new("a/none")), Err(ConfineError::NotFound)));
        assert!(matches!(confine(&root, Path::new("a/f.pdf/x")), Err(ConfineError::NotFound)));
        assert!(matches!(confine(&root, Path::new("../secret")), Err(ConfineError::EscapesRoot(_))));
        let fifo = root.join("a/pipe");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(status.success());
        assert!(matches!(confine(&root, Path::new("a/pipe")), Err(ConfineError::NotRegular("fifo"))));
    }
}
