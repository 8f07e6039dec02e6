//! Validated names. Each type can only be built through `parse`, so inside the system
//! a [`PromptName`] is always a valid prompt name ("parse, don't validate").

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a piece of input was refused, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidInput {
    /// The input field the message is about (`name`, `environment`, …).
    pub field: &'static str,
    pub message: String,
}

impl InvalidInput {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }
}

fn check_slug(field: &'static str, what: &str, s: &str, max: usize) -> Result<(), InvalidInput> {
    let len = s.chars().count();
    if len == 0 || len > max {
        return Err(InvalidInput::new(field, format!("{what} must be 1 to {max} characters long (got {len})")));
    }
    if let Some(bad) =
        s.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')))
    {
        return Err(InvalidInput::new(
            field,
            format!("{what} may contain only lowercase letters, digits, '-', '_' and '.'; found {bad:?}"),
        ));
    }
    Ok(())
}

macro_rules! string_newtype {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        /// Values read back from the log were valid when they were written; the rules
        /// only ever get checked at the edge, so reading never fails on them.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map($name)
            }
        }
    };
}

string_newtype!(
    /// A prompt's unique name: lowercase letters, digits, `-`, `_`, `.`; 1–100 chars.
    PromptName
);
string_newtype!(
    /// An environment such as `production`: the prompt-name alphabet, 1–50 chars.
    EnvironmentName
);
string_newtype!(
    /// A version label chosen by its author, such as `v1.2.1`.
    VersionString
);
string_newtype!(
    /// A prompt's description, at most [`Description::MAX_CHARS`] characters.
    Description
);
string_newtype!(
    /// The optional message an author gives a new version.
    CommitMessage
);
string_newtype!(
    /// A label on a prompt for filtering, such as `team:support` or `pii`: lowercase
    /// letters, digits, `-`, `_`, `.`, `:`; 1–50 chars.
    Tag
);

impl Tag {
    pub const MAX_CHARS: usize = 50;
    /// The most tags one prompt may carry.
    pub const MAX_PER_PROMPT: usize = 20;

    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let len = s.chars().count();
        if len == 0 || len > Self::MAX_CHARS {
            return Err(InvalidInput::new(
                "tags",
                format!("a tag must be 1 to {} characters long (got {len})", Self::MAX_CHARS),
            ));
        }
        if let Some(bad) =
            s.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.' | ':')))
        {
            return Err(InvalidInput::new(
                "tags",
                format!(
                    "a tag may contain only lowercase letters, digits, '-', '_', '.' and ':'; found {bad:?} in {s:?}"
                ),
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// Parses a prompt's whole tag list: sorted, without repeats, at most
    /// [`Tag::MAX_PER_PROMPT`].
    pub fn parse_list(tags: &[String]) -> Result<Vec<Self>, InvalidInput> {
        let mut parsed = tags.iter().map(|t| Tag::parse(t)).collect::<Result<Vec<_>, _>>()?;
        parsed.sort();
        parsed.dedup();
        if parsed.len() > Self::MAX_PER_PROMPT {
            return Err(InvalidInput::new(
                "tags",
                format!("a prompt may have at most {} tags (got {})", Self::MAX_PER_PROMPT, parsed.len()),
            ));
        }
        Ok(parsed)
    }
}

impl PromptName {
    pub const MAX_CHARS: usize = 100;
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        check_slug("name", "a prompt name", s, Self::MAX_CHARS)?;
        Ok(Self(s.to_owned()))
    }
}

impl EnvironmentName {
    pub const MAX_CHARS: usize = 50;
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        Self::parse_field(s, "environment")
    }
    pub fn parse_field(s: &str, field: &'static str) -> Result<Self, InvalidInput> {
        check_slug(field, "an environment name", s, Self::MAX_CHARS)?;
        Ok(Self(s.to_owned()))
    }
    /// The environments every installation has.
    pub fn defaults() -> Vec<EnvironmentName> {
        ["development", "staging", "production"].into_iter().map(|s| Self(s.to_owned())).collect()
    }
}

impl VersionString {
    pub const MAX_CHARS: usize = 50;
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        Self::parse_field(s, "version_string")
    }
    pub fn parse_field(s: &str, field: &'static str) -> Result<Self, InvalidInput> {
        let len = s.chars().count();
        if len == 0 || len > Self::MAX_CHARS {
            return Err(InvalidInput::new(
                field,
                format!("a version string must be 1 to {} characters long (got {len})", Self::MAX_CHARS),
            ));
        }
        if let Some(bad) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'))) {
            return Err(InvalidInput::new(
                field,
                format!("a version string may contain only letters, digits, '-', '_', '.' and '+'; found {bad:?}"),
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

impl Description {
    pub const MAX_CHARS: usize = 4000;
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let len = s.chars().count();
        if len > Self::MAX_CHARS {
            return Err(InvalidInput::new(
                "description",
                format!("a description may be at most {} characters long (got {len})", Self::MAX_CHARS),
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

impl CommitMessage {
    pub const MAX_CHARS: usize = 4000;
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let len = s.chars().count();
        if len > Self::MAX_CHARS {
            return Err(InvalidInput::new(
                "commit_message",
                format!("a commit message may be at most {} characters long (got {len})", Self::MAX_CHARS),
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_names_follow_the_slug_rules() {
        assert!(PromptName::parse("customer-support.v2_x").is_ok());
        assert!(PromptName::parse("").is_err());
        assert!(PromptName::parse(&"a".repeat(101)).is_err());
        assert!(PromptName::parse(&"a".repeat(100)).is_ok());
        let err = PromptName::parse("Customer").unwrap_err();
        assert_eq!(err.field, "name");
        assert!(err.message.contains("'C'"), "{}", err.message);
        assert!(PromptName::parse("a b").is_err());
        assert!(PromptName::parse("a/b").is_err());
    }

    #[test]
    fn environment_names_are_at_most_fifty_chars() {
        assert!(EnvironmentName::parse(&"e".repeat(50)).is_ok());
        assert!(EnvironmentName::parse(&"e".repeat(51)).is_err());
    }

    #[test]
    fn version_strings_allow_semver_like_labels() {
        assert!(VersionString::parse("v1.2.1").is_ok());
        assert!(VersionString::parse("1.0.0+build.5").is_ok());
        assert!(VersionString::parse("v 1").is_err());
        assert!(VersionString::parse("").is_err());
    }
}

string_newtype!(
    /// A login name: lowercase letters, digits, `-`, `_`, `.`, `@`; 1–64 chars.
    Username
);

impl Username {
    pub const MAX_CHARS: usize = 64;
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let len = s.chars().count();
        if len == 0 || len > Self::MAX_CHARS {
            return Err(InvalidInput::new(
                "username",
                format!("a username must be 1 to {} characters long (got {len})", Self::MAX_CHARS),
            ));
        }
        if let Some(bad) =
            s.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.' | '@')))
        {
            return Err(InvalidInput::new(
                "username",
                format!("a username may contain only lowercase letters, digits, '-', '_', '.' and '@'; found {bad:?}"),
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

/// What a user may do. Ordered: each role includes the rights of the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything.
    Viewer,
    /// Creates and edits prompts and versions; deploys and rolls back in unprotected
    /// environments.
    Editor,
    /// Everything, including protected environments, users and API keys.
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "editor" => Ok(Role::Editor),
            "admin" => Ok(Role::Admin),
            other => Err(InvalidInput::new("role", format!("role must be viewer, editor or admin (got {other:?})"))),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::parse(s)
    }
}
