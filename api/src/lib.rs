//! The PromptOS server: HTTP API, command handling and the `promptos` CLI.

pub mod app;
pub mod auth;
pub mod build_info;
pub mod caches;
pub mod change_requests;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod config;
pub mod evaluation;
pub mod fleet;
pub mod follower;
pub mod gate;
pub mod http;
pub mod llm;
pub mod metrics;
pub mod optimize;
pub mod startup;
pub mod webhooks;

pub use app::AppState;
