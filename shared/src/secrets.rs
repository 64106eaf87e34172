//! Database credentials from Secrets Manager (the RDS JSON format), so they never pass
//! through environment variables or logs.

use crate::error::ConfigError;

/// An RDS-style secret: `username`, `password`, `host`, `port` (number or text), `dbname`.
#[derive(serde::Deserialize)]
pub struct RdsSecret {
    pub username: String,
    pub password: String,
    pub host: String,
    #[serde(default)]
    port: Option<serde_json::Value>,
    #[serde(alias = "database")]
    pub dbname: String,
}

impl RdsSecret {
    /// The port, or `default` when the secret has none (or an unreadable one).
    pub fn port_or(&self, default: u16) -> u16 {
        match &self.port {
            Some(serde_json::Value::Number(n)) => n.as_u64().and_then(|p| u16::try_from(p).ok()).unwrap_or(default),
            Some(serde_json::Value::String(s)) => s.parse().unwrap_or(default),
            _ => default,
        }
    }

    pub async fn fetch(secrets: &aws_sdk_secretsmanager::Client, secret_arn: &str) -> Result<Self, ConfigError> {
        let out = secrets.get_secret_value().secret_id(secret_arn).send().await.map_err(|e| {
            ConfigError(format!("reading secret {secret_arn}: {}", aws_smithy_types::error::display::DisplayErrorContext(&e)))
        })?;
        let text = out.secret_string().ok_or_else(|| ConfigError(format!("secret {secret_arn} has no string value")))?;
        Self::parse(text, secret_arn)
    }

    fn parse(text: &str, secret_arn: &str) -> Result<Self, ConfigError> {
        serde_json::from_str(text).map_err(|e| ConfigError(format!("secret {secret_arn} is not the RDS JSON format: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rds_secrets_and_never_shows_the_password_in_errors() {
        let s = RdsSecret::parse(r#"{"username":"u","password":"p","host":"h","port":"3307","dbname":"d"}"#, "arn").unwrap();
        assert_eq!((s.port_or(3306), s.dbname.as_str()), (3307, "d"));
        let s = RdsSecret::parse(r#"{"username":"u","password":"p","host":"h","database":"d"}"#, "arn").unwrap();
        assert_eq!(s.port_or(5432), 5432);
        let err = RdsSecret::parse(r#"{"username":"u","password":"hunter2"}"#, "arn").err().unwrap();
        assert!(!err.0.contains("hunter2"), "{err}");
    }
}
