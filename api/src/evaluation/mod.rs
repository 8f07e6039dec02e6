//! Evaluations: rendering a version with a test case's inputs, asking a provider,
//! checking the answer against the case's expectations, and recording the run.

pub mod expect;
pub mod judge;
pub mod playground;
pub mod render;
pub mod run;
