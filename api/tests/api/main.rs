//! HTTP-level tests: the real server on a random port, a fresh database per test, run
//! against SQLite and PostgreSQL.

mod fake_llm;
mod helpers;

mod auth;
mod bad_input;
mod change_requests;
mod changes;
mod checkpoints;
mod cli;
mod composition;
mod concurrency;
mod evaluations;
mod experiments;
mod faults;
mod fleet;
mod integrity;
mod llm;
mod metrics;
mod optimize;
mod outage;
mod projector_faults;
mod scale_out;
mod seed_client;
mod time_travel;
mod ui;
mod webhooks;
mod workflow;
