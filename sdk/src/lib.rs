//! PromptOS SDK. The push-invalidated client arrives with its own issue; this crate
//! reserves the name and place in the workspace.
