//! The decider pattern as a trait, so one command executor serves every kind of stream.

use crate::access::*;
use crate::change_request;
use crate::events::Event;
use crate::prompt::{self, Context, DomainError, PromptCommand, PromptState};

pub trait Aggregate: Send + Sync + 'static {
    type State: Default + Clone + Send + Sync + 'static;
    type Command: Clone + Send + Sync + 'static;
    fn decide(state: &Self::State, ctx: &Context, command: Self::Command) -> Result<Vec<Event>, DomainError>;
    fn evolve(state: Self::State, event: &Event) -> Self::State;
}

/// Prompts, their versions and deployments.
pub struct Prompts;
/// Users and their roles.
pub struct Users;
/// API keys for applications.
pub struct ApiKeys;
/// Change requests for environments that need approvals.
pub struct ChangeRequests;
/// Webhook subscriptions.
pub struct Webhooks;

impl Aggregate for Prompts {
    type State = PromptState;
    type Command = PromptCommand;
    fn decide(state: &PromptState, ctx: &Context, command: PromptCommand) -> Result<Vec<Event>, DomainError> {
        prompt::decide(state, ctx, command)
    }
    fn evolve(state: PromptState, event: &Event) -> PromptState {
        prompt::evolve(state, event)
    }
}

impl Aggregate for Users {
    type State = UserState;
    type Command = UserCommand;
    fn decide(state: &UserState, _: &Context, command: UserCommand) -> Result<Vec<Event>, DomainError> {
        decide_user(state, command)
    }
    fn evolve(state: UserState, event: &Event) -> UserState {
        evolve_user(state, event)
    }
}

impl Aggregate for ApiKeys {
    type State = ApiKeyState;
    type Command = ApiKeyCommand;
    fn decide(state: &ApiKeyState, _: &Context, command: ApiKeyCommand) -> Result<Vec<Event>, DomainError> {
        decide_api_key(state, command)
    }
    fn evolve(state: ApiKeyState, event: &Event) -> ApiKeyState {
        evolve_api_key(state, event)
    }
}

impl Aggregate for ChangeRequests {
    type State = change_request::ChangeRequestState;
    type Command = change_request::ChangeRequestCommand;
    fn decide(state: &Self::State, _: &Context, command: Self::Command) -> Result<Vec<Event>, DomainError> {
        change_request::decide(state, command)
    }
    fn evolve(state: Self::State, event: &Event) -> Self::State {
        change_request::evolve(state, event)
    }
}

impl Aggregate for Webhooks {
    type State = crate::webhook::WebhookState;
    type Command = crate::webhook::WebhookCommand;
    fn decide(state: &Self::State, _: &Context, command: Self::Command) -> Result<Vec<Event>, DomainError> {
        crate::webhook::decide(state, command)
    }
    fn evolve(state: Self::State, event: &Event) -> Self::State {
        crate::webhook::evolve(state, event)
    }
}
