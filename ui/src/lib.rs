//! PromptOS admin UI. The Sycamore application arrives with its own issue.
