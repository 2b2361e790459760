//! Build sandbox.
