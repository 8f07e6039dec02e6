pub mod change_requests;
pub mod fleet;
pub mod login;
pub mod prompt;
pub mod prompts;
pub mod webhooks;
