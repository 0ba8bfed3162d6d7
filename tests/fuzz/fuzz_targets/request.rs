//! Fuzz target: see `fuzzing::request` for the properties it checks.
#![no_main]

#[path = "../../fuzzing/mod.rs"]
mod fuzzing;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::request(data));
