//! The fleet report: what a running SDK instance tells the server it serves
//! (`POST /fleet/reports`), defined once for the server and every SDK. Reports are
//! telemetry, not audit: they never enter the event log.
//!
//! ```
//! use promptos_core::fleet::{FleetReport, Serving};
//! let report = FleetReport {
//!     instance_id: "9f0c1e52-5b8e-4a6f-a1f3-0c6d2f1b7e44".into(),
//!     app_name: Some("support-chatbot".into()),
//!     host: "web-1".into(),
//!     pid: 4242,
//!     sdk: "python".into(),
//!     sdk_version: "0.1.0".into(),
//!     started_at: "2026-12-05T12:00:00Z".into(),
//!     heartbeat_seconds: 15,
//!     applied_position: 42,
//!     stale: false,
//!     serving: vec![Serving {
//!         prompt: "greeting".into(),
//!         environment: "production".into(),
//!         version_string: "v2".into(),
//!         experiment_id: None,
//!         applied_at: "2026-12-05T12:00:01.250Z".into(),
//!     }],
//! };
//! assert!(report.validate().is_ok());
//! assert_eq!(report.environments(), ["production"]);
//! ```

use serde::{Deserialize, Serialize};

/// Most (prompt, environment) entries one report may carry; a larger one is refused.
pub const MAX_SERVING: usize = 2_000;
/// Most bytes of a report's JSON body.
pub const MAX_REPORT_BYTES: usize = 1024 * 1024;
/// Shortest and longest heartbeat an instance may announce, in seconds.
pub const HEARTBEAT_SECONDS: std::ops::RangeInclusive<u32> = 1..=3_600;
/// An instance that misses this many heartbeats in a row is gone.
pub const MISSED_HEARTBEATS: u32 = 3;

/// What one SDK instance (one process) serves, sent on start, after applying changes,
/// and as a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FleetReport {
    /// Random at the start of the process: 8 to 64 letters, digits, `-` or `_`.
    pub instance_id: String,
    /// The application, as configured in the SDK (`app_name`).
    #[serde(default)]
    pub app_name: Option<String>,
    pub host: String,
    pub pid: u32,
    /// `rust`, `python`, `node`.
    pub sdk: String,
    pub sdk_version: String,
    /// When the process started (RFC 3339).
    pub started_at: String,
    /// How often this instance reports when nothing changes; it is gone after
    /// [`MISSED_HEARTBEATS`] missed ones.
    pub heartbeat_seconds: u32,
    /// The highest change-feed position the instance has applied.
    pub applied_position: i64,
    /// The instance could not reach the server or its feed at its last attempt.
    pub stale: bool,
    /// Each prompt the instance holds, and the version it serves.
    pub serving: Vec<Serving>,
}

/// One (prompt, environment) an instance holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Serving {
    pub prompt: String,
    pub environment: String,
    /// The version served to clients unaware of experiments.
    pub version_string: String,
    /// The experiment splitting this prompt's traffic, when one is live.
    #[serde(default)]
    pub experiment_id: Option<String>,
    /// When the instance started serving this version (RFC 3339).
    pub applied_at: String,
}

/// What is wrong with a report, and where (a JSON path into it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct InvalidReport {
    pub location: String,
    pub message: String,
}

fn invalid(location: impl Into<String>, message: impl Into<String>) -> InvalidReport {
    InvalidReport { location: location.into(), message: message.into() }
}

fn text(location: &str, value: &str, max: usize) -> Result<(), InvalidReport> {
    if value.is_empty() || value.len() > max || value.chars().any(char::is_control) {
        return Err(invalid(location, format!("must be 1 to {max} characters, none of them control characters")));
    }
    Ok(())
}

fn timestamp(location: &str, value: &str) -> Result<(), InvalidReport> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|_| ())
        .map_err(|e| invalid(location, format!("must be an RFC 3339 time ({e})")))
}

impl FleetReport {
    /// Checks sizes and formats; the server refuses a report that fails with a 4xx
    /// naming [`InvalidReport::location`]. Whether the caller may report for the
    /// environments in it is the server's to decide.
    pub fn validate(&self) -> Result<(), InvalidReport> {
        let id = &self.instance_id;
        if !(8..=64).contains(&id.len()) || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(invalid("instance_id", "must be 8 to 64 letters, digits, '-' or '_'"));
        }
        if let Some(app) = &self.app_name {
            text("app_name", app, 100)?;
        }
        text("host", &self.host, 255)?;
        text("sdk", &self.sdk, 20)?;
        text("sdk_version", &self.sdk_version, 50)?;
        timestamp("started_at", &self.started_at)?;
        if !HEARTBEAT_SECONDS.contains(&self.heartbeat_seconds) {
            return Err(invalid(
                "heartbeat_seconds",
                format!("must be {} to {}", HEARTBEAT_SECONDS.start(), HEARTBEAT_SECONDS.end()),
            ));
        }
        if self.applied_position < 0 {
            return Err(invalid("applied_position", "must not be negative"));
        }
        if self.serving.len() > MAX_SERVING {
            return Err(invalid(
                "serving",
                format!("{} entries; a report carries at most {MAX_SERVING}", self.serving.len()),
            ));
        }
        for (i, s) in self.serving.iter().enumerate() {
            crate::names::PromptName::parse(&s.prompt)
                .map_err(|e| invalid(format!("serving[{i}].prompt"), e.to_string()))?;
            crate::names::EnvironmentName::parse(&s.environment)
                .map_err(|e| invalid(format!("serving[{i}].environment"), e.to_string()))?;
            text(&format!("serving[{i}].version_string"), &s.version_string, 100)?;
            if let Some(x) = &s.experiment_id {
                text(&format!("serving[{i}].experiment_id"), x, 64)?;
            }
            timestamp(&format!("serving[{i}].applied_at"), &s.applied_at)?;
        }
        Ok(())
    }

    /// The environments the report speaks about, sorted, each once.
    pub fn environments(&self) -> Vec<&str> {
        let mut envs: Vec<&str> = self.serving.iter().map(|s| s.environment.as_str()).collect();
        envs.sort_unstable();
        envs.dedup();
        envs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(entries: usize) -> FleetReport {
        FleetReport {
            instance_id: "instance-0001".into(),
            app_name: Some("support-chatbot".into()),
            host: "web-1".into(),
            pid: 1,
            sdk: "rust".into(),
            sdk_version: "0.1.0".into(),
            started_at: "2026-12-05T12:00:00Z".into(),
            heartbeat_seconds: 15,
            applied_position: 7,
            stale: false,
            serving: (0..entries)
                .map(|i| Serving {
                    prompt: format!("prompt-{i}"),
                    environment: if i % 2 == 0 { "production" } else { "staging" }.into(),
                    version_string: "v1".into(),
                    experiment_id: None,
                    applied_at: "2026-12-05T12:00:01Z".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_well_formed_report_passes_and_names_its_environments_once() {
        let r = report(5);
        assert_eq!(r.validate(), Ok(()));
        assert_eq!(r.environments(), ["production", "staging"]);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<FleetReport>(&json).unwrap(), r);
    }

    #[test]
    fn what_is_wrong_is_named_with_its_place_in_the_report() {
        type Break = Box<dyn Fn(&mut FleetReport)>;
        let cases: Vec<(Break, &str)> = vec![
            (Box::new(|r| r.instance_id = "short".into()), "instance_id"),
            (Box::new(|r| r.instance_id = "has space in it".into()), "instance_id"),
            (Box::new(|r| r.host = String::new()), "host"),
            (Box::new(|r| r.app_name = Some("a\nb".into())), "app_name"),
            (Box::new(|r| r.started_at = "yesterday".into()), "started_at"),
            (Box::new(|r| r.heartbeat_seconds = 0), "heartbeat_seconds"),
            (Box::new(|r| r.applied_position = -1), "applied_position"),
            (Box::new(|r| r.serving[1].environment = "Prod!".into()), "serving[1].environment"),
            (Box::new(|r| r.serving[2].prompt = String::new()), "serving[2].prompt"),
            (Box::new(|r| r.serving[0].applied_at = "soon".into()), "serving[0].applied_at"),
        ];
        for (break_it, location) in cases {
            let mut r = report(3);
            break_it(&mut r);
            assert_eq!(r.validate().unwrap_err().location, location);
        }
    }

    #[test]
    fn a_report_with_ten_thousand_prompts_is_refused() {
        let err = report(10_000).validate().unwrap_err();
        assert_eq!(err.location, "serving");
        assert!(err.message.contains("at most 2000"), "{err}");
        assert_eq!(report(MAX_SERVING).validate(), Ok(()));
    }
}
