//! Users and API keys: who may act, as event streams of their own so that auditors
//! see who was given access and when.

use crate::events::*;
use crate::names::{EnvironmentName, Role, Username};
use crate::prompt::DomainError;

#[derive(Debug, Clone, Default, PartialEq)]
pub enum UserState {
    #[default]
    Absent,
    Present {
        username: Username,
        role: Role,
        disabled: bool,
    },
}

#[derive(Debug, Clone)]
pub enum UserCommand {
    /// `password_hash` is computed at the edge (hashing is slow and random).
    Create {
        username: Username,
        role: Role,
        password_hash: String,
    },
    ChangeRole {
        role: Role,
    },
    Disable,
    ChangePassword {
        password_hash: String,
    },
}

pub fn decide_user(state: &UserState, command: UserCommand) -> Result<Vec<Event>, DomainError> {
    if let UserCommand::Create { username, role, password_hash } = command {
        return match state {
            UserState::Present { username, .. } => Err(DomainError::UserExists(username.to_string())),
            UserState::Absent => Ok(vec![Event::UserCreated(UserCreated { username, role, password_hash })]),
        };
    }
    let UserState::Present { username, role: current, disabled } = state else {
        return Err(DomainError::UserNotFound(String::new()));
    };
    let username = username.clone();
    match command {
        UserCommand::Create { .. } => unreachable!("handled above"),
        UserCommand::ChangeRole { role } if role == *current => {
            Err(DomainError::SameRole { username: username.to_string(), role: role.to_string() })
        }
        UserCommand::ChangeRole { role } => {
            Ok(vec![Event::UserRoleChanged(UserRoleChanged { username, role, previous_role: *current })])
        }
        UserCommand::Disable if *disabled => Err(DomainError::UserDisabled(username.to_string())),
        UserCommand::Disable => Ok(vec![Event::UserDisabled(UserDisabled { username })]),
        UserCommand::ChangePassword { .. } if *disabled => Err(DomainError::UserDisabled(username.to_string())),
        UserCommand::ChangePassword { password_hash } => {
            Ok(vec![Event::PasswordChanged(PasswordChanged { username, password_hash })])
        }
    }
}

pub fn evolve_user(state: UserState, event: &Event) -> UserState {
    match (state, event) {
        (_, Event::UserCreated(e)) => {
            UserState::Present { username: e.username.clone(), role: e.role, disabled: false }
        }
        (UserState::Present { username, disabled, .. }, Event::UserRoleChanged(e)) => {
            UserState::Present { username, role: e.role, disabled }
        }
        (UserState::Present { username, role, .. }, Event::UserDisabled(_)) => {
            UserState::Present { username, role, disabled: true }
        }
        (state, _) => state,
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub enum ApiKeyState {
    #[default]
    Absent,
    Active {
        key_id: String,
    },
    Revoked {
        key_id: String,
    },
}

#[derive(Debug, Clone)]
pub enum ApiKeyCommand {
    Create { key_id: String, name: String, environments: Vec<EnvironmentName>, key_hash: String },
    Revoke,
}

pub fn decide_api_key(state: &ApiKeyState, command: ApiKeyCommand) -> Result<Vec<Event>, DomainError> {
    match (state, command) {
        (ApiKeyState::Absent, ApiKeyCommand::Create { key_id, name, environments, key_hash }) => {
            Ok(vec![Event::ApiKeyCreated(ApiKeyCreated { key_id, name, environments, key_hash })])
        }
        (_, ApiKeyCommand::Create { key_id, .. }) => {
            // Key ids are random; a collision is astronomically unlikely but refused.
            Err(DomainError::ApiKeyRevoked(key_id))
        }
        (ApiKeyState::Active { key_id }, ApiKeyCommand::Revoke) => {
            Ok(vec![Event::ApiKeyRevoked(ApiKeyRevoked { key_id: key_id.clone() })])
        }
        (ApiKeyState::Revoked { key_id }, ApiKeyCommand::Revoke) => Err(DomainError::ApiKeyRevoked(key_id.clone())),
        (ApiKeyState::Absent, ApiKeyCommand::Revoke) => Err(DomainError::ApiKeyNotFound(String::new())),
    }
}

pub fn evolve_api_key(state: ApiKeyState, event: &Event) -> ApiKeyState {
    match event {
        Event::ApiKeyCreated(e) => ApiKeyState::Active { key_id: e.key_id.clone() },
        Event::ApiKeyRevoked(e) => ApiKeyState::Revoked { key_id: e.key_id.clone() },
        _ => state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Username {
        Username::parse("alice").unwrap()
    }

    fn given(events: &[Event]) -> UserState {
        events.iter().fold(UserState::default(), evolve_user)
    }

    #[test]
    fn a_user_is_created_once_and_role_changes_record_the_previous_role() {
        let created = decide_user(
            &UserState::Absent,
            UserCommand::Create { username: alice(), role: Role::Editor, password_hash: "h".into() },
        )
        .unwrap();
        let state = given(&created);
        let again = UserCommand::Create { username: alice(), role: Role::Viewer, password_hash: "h".into() };
        assert!(matches!(decide_user(&state, again), Err(DomainError::UserExists(_))));
        let changed = decide_user(&state, UserCommand::ChangeRole { role: Role::Admin }).unwrap();
        assert!(matches!(&changed[..], [Event::UserRoleChanged(e)] if e.previous_role == Role::Editor));
        assert!(matches!(
            decide_user(&state, UserCommand::ChangeRole { role: Role::Editor }),
            Err(DomainError::SameRole { .. })
        ));
    }

    #[test]
    fn a_disabled_user_cannot_change_password() {
        let mut events = decide_user(
            &UserState::Absent,
            UserCommand::Create { username: alice(), role: Role::Viewer, password_hash: "h".into() },
        )
        .unwrap();
        events.extend(decide_user(&given(&events), UserCommand::Disable).unwrap());
        let state = given(&events);
        assert!(matches!(
            decide_user(&state, UserCommand::ChangePassword { password_hash: "x".into() }),
            Err(DomainError::UserDisabled(_))
        ));
        assert!(matches!(decide_user(&state, UserCommand::Disable), Err(DomainError::UserDisabled(_))));
    }

    #[test]
    fn api_keys_are_revoked_once() {
        let created = decide_api_key(
            &ApiKeyState::Absent,
            ApiKeyCommand::Create {
                key_id: "k".into(),
                name: "app".into(),
                environments: vec![],
                key_hash: "h".into(),
            },
        )
        .unwrap();
        let state = created.iter().fold(ApiKeyState::default(), evolve_api_key);
        let revoked = decide_api_key(&state, ApiKeyCommand::Revoke).unwrap();
        let state = revoked.iter().fold(state, evolve_api_key);
        assert!(matches!(decide_api_key(&state, ApiKeyCommand::Revoke), Err(DomainError::ApiKeyRevoked(_))));
    }
}
