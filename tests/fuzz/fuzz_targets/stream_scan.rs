//! Fuzz target: see `fuzzing::stream_scan` for the properties it checks.
#![no_main]

#[path = "../../fuzzing/mod.rs"]
mod fuzzing;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::stream_scan(data));
