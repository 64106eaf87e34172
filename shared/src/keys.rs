//! S3 key templates and file UIDs.

use crate::error::ConfigError;
use crate::model::Area;

pub const DEFAULT_KEY_TEMPLATE: &str = "org_{account_id}/{category}/{sha256}{ext}";

/// A validated S3 key template. Placeholders: `{account_id}`, `{category}`, `{sha256}`,
/// `{ext}` (the original extension, lower-cased, with its dot, or empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate(String);

const PLACEHOLDERS: [&str; 4] = ["{account_id}", "{category}", "{sha256}", "{ext}"];

impl KeyTemplate {
    pub fn new(template: &str) -> Result<Self, ConfigError> {
        if !template.contains("{sha256}") {
            // Without the hash the key is not content-addressed and dedup would overwrite.
            return Err(ConfigError(format!("KEY_TEMPLATE {template:?} must contain {{sha256}}")));
        }
        let mut rest = template.to_string();
        for p in PLACEHOLDERS {
            rest = rest.replace(p, "");
        }
        if rest.contains('{') || rest.contains('}') {
            return Err(ConfigError(format!("KEY_TEMPLATE {template:?} has an unknown placeholder")));
        }
        if template.starts_with('/') {
            return Err(ConfigError(format!("KEY_TEMPLATE {template:?} must not start with '/'")));
        }
        Ok(Self(template.to_string()))
    }

    pub fn render(&self, account_id: &str, area: Area, sha256_hex: &str, original_filename: &str) -> String {
        self.0
            .replace("{account_id}", &key_safe(account_id))
            .replace("{category}", area.as_str())
            .replace("{sha256}", sha256_hex)
            .replace("{ext}", &extension(original_filename))
    }
}

impl Default for KeyTemplate {
    fn default() -> Self {
        Self(DEFAULT_KEY_TEMPLATE.to_string())
    }
}

/// The extension part of a key: ASCII alphanumerics only, so an odd legacy name can never put
/// a slash, a space or a control character into an S3 key.
pub fn extension(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty() && !ext.is_empty() && ext.len() <= 10 && ext.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            format!(".{}", ext.to_ascii_lowercase())
        }
        _ => String::new(),
    }
}

fn key_safe(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// `{content_hash}_{YYYYMMDDHHmmssffffff}` (spec: DTX 2.0's compound unique id).
pub fn file_uid(sha256_hex: &str, uid_timestamp: &str) -> String {
    format!("{sha256_hex}_{uid_timestamp}")
}

/// The timestamp half of a file UID, fixed the first time a worker sees the source file.
pub fn uid_timestamp(now: chrono::DateTime<chrono::Utc>) -> String {
    now.format("%Y%m%d%H%M%S%6f").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn renders_the_default_template() {
        let t = KeyTemplate::default();
        assert_eq!(t.render("5003", Area::Documents, "ab12", "Scan 1.PDF"), "org_5003/documents/ab12.pdf");
        assert_eq!(t.render("a/b", Area::Logos, "ff", "logo"), "org_a_b/logos/ff");
    }

    #[test]
    fn validates_templates() {
        assert!(KeyTemplate::new("x/{category}").is_err());
        assert!(KeyTemplate::new("{sha256}{nope}").is_err());
        assert!(KeyTemplate::new("/{sha256}").is_err());
        assert!(KeyTemplate::new("{account_id}/{sha256}").is_ok());
    }

    #[test]
    fn extensions_are_tame() {
        assert_eq!(extension("a.tar.GZ"), ".gz");
        assert_eq!(extension(".hidden"), "");
        assert_eq!(extension("x.p df"), "");
        assert_eq!(extension("noext"), "");
        assert_eq!(extension("保险证书.pdf"), ".pdf");
    }

    #[test]
    fn file_uid_has_the_spec_shape() {
        let ts = uid_timestamp(chrono::Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap());
        assert_eq!(ts, "20260304050607000000");
        assert_eq!(file_uid("abc", &ts), "abc_20260304050607000000");
    }
}
