//! Reporter.
