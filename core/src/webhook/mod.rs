//! Webhooks: subscriptions to the log's events, delivered to other tools (CI, chat,
//! warehouses). A subscription is a stream of its own; its signing secret is in the log
//! only sealed with the server's key ([`SealedSecret`]).
//!
//! ```
//! use promptos_core::webhook::{WebhookFilter, webhook_type};
//! let only_deploys = WebhookFilter { event_types: vec!["prompt.version.*".into()], ..Default::default() };
//! let t = webhook_type("VersionDeployed").unwrap();
//! assert!(only_deploys.matches(t, Some("production"), Some("bot"), &[]));
//! assert!(!only_deploys.matches("prompt.created", None, Some("bot"), &[]));
//! ```

pub mod events;

pub use events::*;

use crate::events::Event;
use crate::names::Description;
use crate::DomainError;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// How long a rotated-out secret keeps signing deliveries beside the new one.
pub const ROTATION_OVERLAP_HOURS: i64 = 24;
/// The most types, environments, prompts or tags one filter may list.
pub const MAX_FILTER_ITEMS: usize = 50;

impl WebhookFilter {
    /// Whether an event of `webhook_type`, in `environment`, about `prompt` (carrying
    /// `tags`) is one the subscription wants.
    pub fn matches(
        &self,
        webhook_type: &str,
        environment: Option<&str>,
        prompt: Option<&str>,
        tags: &[String],
    ) -> bool {
        let type_ok = self.event_types.is_empty()
            || self.event_types.iter().any(|t| match t.strip_suffix('*') {
                Some(prefix) => webhook_type.starts_with(prefix),
                None => t == webhook_type,
            });
        let env_ok = self.environments.is_empty()
            || environment.is_some_and(|e| self.environments.iter().any(|x| x.as_str() == e));
        let prompt_ok = self.prompts.is_empty() || prompt.is_some_and(|p| self.prompts.iter().any(|x| x.as_str() == p));
        let tags_ok = self.tags.is_empty() || tags.iter().any(|t| self.tags.iter().any(|x| x.as_str() == t));
        type_ok && env_ok && prompt_ok && tags_ok
    }

    /// Refuses a filter naming a type no event has, or listing too much.
    pub fn check(&self) -> Result<(), DomainError> {
        for t in &self.event_types {
            let known = match t.strip_suffix('*') {
                Some(prefix) => WEBHOOK_TYPES.iter().any(|(_, w)| w.starts_with(prefix)),
                None => webhook_type_known(t),
            };
            if !known {
                return Err(DomainError::InvalidWebhook {
                    field: "event_types",
                    message: format!(
                        "{t:?} is not an event type; use one of {} (or a prefix ending in *, e.g. prompt.*)",
                        WEBHOOK_TYPES.iter().map(|(_, w)| *w).collect::<Vec<_>>().join(", ")
                    ),
                });
            }
        }
        let longest = [self.event_types.len(), self.environments.len(), self.prompts.len(), self.tags.len()];
        if longest.into_iter().max().unwrap_or(0) > MAX_FILTER_ITEMS {
            return Err(DomainError::InvalidWebhook {
                field: "event_types",
                message: format!("a filter lists at most {MAX_FILTER_ITEMS} items of each kind"),
            });
        }
        Ok(())
    }
}

fn webhook_type_known(t: &str) -> bool {
    WEBHOOK_TYPES.iter().any(|(_, w)| *w == t)
}

/// A webhook's stream, folded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookState(pub Option<Webhook>);

#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub webhook_id: Uuid,
    pub url: String,
    pub description: Description,
    pub format: WebhookFormat,
    pub filter: WebhookFilter,
    pub enabled: bool,
    pub secret: SealedSecret,
    /// The rotated-out secret and until when it still signs.
    pub previous: Option<(SealedSecret, DateTime<Utc>)>,
    pub deleted: bool,
}

/// What an update changes; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct WebhookChanges {
    pub url: Option<String>,
    pub description: Option<Description>,
    pub format: Option<WebhookFormat>,
    pub filter: Option<WebhookFilter>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone)]
pub enum WebhookCommand {
    /// The URL was checked and the secret generated and sealed at the edge.
    Create {
        webhook_id: Uuid,
        url: String,
        description: Description,
        format: WebhookFormat,
        filter: WebhookFilter,
        enabled: bool,
        secret: SealedSecret,
    },
    Update(WebhookChanges),
    RotateSecret {
        secret: SealedSecret,
        now: DateTime<Utc>,
    },
    /// By the server, when deliveries keep failing or the receiver answered 410.
    Disable {
        reason: String,
    },
    Delete,
}

pub fn decide(state: &WebhookState, command: WebhookCommand) -> Result<Vec<Event>, DomainError> {
    if let WebhookCommand::Create { webhook_id, url, description, format, filter, enabled, secret } = command {
        if state.0.is_some() {
            return Err(DomainError::InvalidWebhook {
                field: "webhook_id",
                message: format!("webhook {webhook_id} exists"),
            });
        }
        filter.check()?;
        return Ok(vec![Event::WebhookCreated(WebhookCreated {
            webhook_id,
            url,
            description,
            format,
            filter,
            enabled,
            secret,
        })]);
    }
    let Some(w) = state.0.as_ref().filter(|w| !w.deleted) else {
        return Err(DomainError::WebhookNotFound(String::new()));
    };
    let webhook_id = w.webhook_id;
    match command {
        WebhookCommand::Create { .. } => unreachable!("handled above"),
        WebhookCommand::Update(c) => {
            let updated = WebhookUpdated {
                webhook_id,
                url: c.url.unwrap_or_else(|| w.url.clone()),
                description: c.description.unwrap_or_else(|| w.description.clone()),
                format: c.format.unwrap_or(w.format),
                filter: c.filter.unwrap_or_else(|| w.filter.clone()),
                enabled: c.enabled.unwrap_or(w.enabled),
            };
            updated.filter.check()?;
            let same = updated.url == w.url
                && updated.description == w.description
                && updated.format == w.format
                && updated.filter == w.filter
                && updated.enabled == w.enabled;
            Ok(if same { vec![] } else { vec![Event::WebhookUpdated(updated)] })
        }
        WebhookCommand::RotateSecret { secret, now } => Ok(vec![Event::WebhookSecretRotated(WebhookSecretRotated {
            webhook_id,
            secret,
            previous_valid_until: now + chrono::Duration::hours(ROTATION_OVERLAP_HOURS),
        })]),
        WebhookCommand::Disable { reason } => {
            Ok(if w.enabled { vec![Event::WebhookDisabled(WebhookDisabled { webhook_id, reason })] } else { vec![] })
        }
        WebhookCommand::Delete => Ok(vec![Event::WebhookDeleted(WebhookDeleted { webhook_id })]),
    }
}

pub fn evolve(state: WebhookState, event: &Event) -> WebhookState {
    let WebhookState(current) = state;
    WebhookState(match (current, event) {
        (_, Event::WebhookCreated(e)) => Some(Webhook {
            webhook_id: e.webhook_id,
            url: e.url.clone(),
            description: e.description.clone(),
            format: e.format,
            filter: e.filter.clone(),
            enabled: e.enabled,
            secret: e.secret.clone(),
            previous: None,
            deleted: false,
        }),
        (Some(mut w), e) => {
            match e {
                Event::WebhookUpdated(u) => {
                    w.url = u.url.clone();
                    w.description = u.description.clone();
                    w.format = u.format;
                    w.filter = u.filter.clone();
                    w.enabled = u.enabled;
                }
                Event::WebhookSecretRotated(r) => {
                    let old = std::mem::replace(&mut w.secret, r.secret.clone());
                    w.previous = Some((old, r.previous_valid_until));
                }
                Event::WebhookDisabled(_) => w.enabled = false,
                Event::WebhookDeleted(_) => w.deleted = true,
                _ => {}
            }
            Some(w)
        }
        (None, _) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(n: &str) -> SealedSecret {
        SealedSecret { key_id: "k".into(), nonce: n.into(), ciphertext: n.into() }
    }

    fn created() -> WebhookState {
        let events = decide(
            &WebhookState::default(),
            WebhookCommand::Create {
                webhook_id: Uuid::nil(),
                url: "https://ci.example.com/hook".into(),
                description: Description::parse("CI").unwrap(),
                format: WebhookFormat::Standard,
                filter: WebhookFilter::default(),
                enabled: true,
                secret: sealed("one"),
            },
        )
        .unwrap();
        events.iter().fold(WebhookState::default(), evolve)
    }

    #[test]
    fn filters_match_types_prefixes_environments_prompts_and_tags() {
        let f = WebhookFilter {
            event_types: vec!["prompt.version.deployed".into(), "change_request.*".into()],
            environments: vec![crate::names::EnvironmentName::parse("production").unwrap()],
            ..Default::default()
        };
        assert!(f.matches("prompt.version.deployed", Some("production"), Some("bot"), &[]));
        assert!(f.matches("change_request.applied", Some("production"), None, &[]));
        assert!(!f.matches("prompt.version.deployed", Some("staging"), Some("bot"), &[]));
        assert!(!f.matches("prompt.version.created", None, Some("bot"), &[]));
        let tagged = WebhookFilter { tags: vec![crate::names::Tag::parse("billing").unwrap()], ..Default::default() };
        assert!(tagged.matches("prompt.created", None, Some("bot"), &["billing".into()]));
        assert!(!tagged.matches("prompt.created", None, Some("bot"), &["support".into()]));
        let unknown = WebhookFilter { event_types: vec!["prompt.deployd".into()], ..Default::default() };
        assert!(matches!(unknown.check(), Err(DomainError::InvalidWebhook { field: "event_types", .. })));
        assert!(WebhookFilter { event_types: vec!["user.*".into()], ..Default::default() }.check().is_ok());
    }

    #[test]
    fn every_event_type_of_the_log_has_a_webhook_type() {
        for t in Event::TYPES {
            assert!(webhook_type(t).is_some(), "{t} has no webhook type");
        }
    }

    #[test]
    fn rotation_keeps_the_old_secret_for_a_day_and_updates_change_what_they_name() {
        let now = Utc::now();
        let rotated = decide(&created(), WebhookCommand::RotateSecret { secret: sealed("two"), now }).unwrap();
        let state = rotated.iter().fold(created(), evolve);
        let w = state.0.clone().unwrap();
        assert_eq!(w.secret, sealed("two"));
        assert_eq!(w.previous, Some((sealed("one"), now + chrono::Duration::hours(24))));
        let off = WebhookChanges { enabled: Some(false), ..Default::default() };
        let events = decide(&state, WebhookCommand::Update(off)).unwrap();
        let [Event::WebhookUpdated(u)] = events.as_slice() else { panic!("{events:?}") };
        assert_eq!((u.enabled, u.url.as_str()), (false, "https://ci.example.com/hook"));
        assert!(decide(&state, WebhookCommand::Update(WebhookChanges::default())).unwrap().is_empty());
        let gone = decide(&state, WebhookCommand::Delete).unwrap().iter().fold(state, evolve);
        assert_eq!(decide(&gone, WebhookCommand::Delete).unwrap_err(), DomainError::WebhookNotFound(String::new()));
    }
}
