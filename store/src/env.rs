//! Reading typed settings from the environment, once at start, with errors that name the
//! variable: what every binary's settings struct is built from.

use std::str::FromStr;

use crate::error::{Result, StoreError};

/// The value of a setting that must be there.
pub fn required(name: &str) -> Result<String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| StoreError::Config(format!("the setting {name} is missing")))
}

/// An optional setting: `None` when it is unset or blank.
pub fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A setting parsed as `T`, or `default` when it is unset or empty. `what` says what the value
/// must be, for the error: "a whole number", "a number of MiB".
pub fn parsed<T: FromStr>(name: &str, default: T, what: &str) -> Result<T> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v.trim().parse().map_err(|_| {
            StoreError::Config(format!("the setting {name} must be {what}, not {v:?}"))
        }),
        _ => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_setting_and_the_value() {
        // Names no other test uses: the environment is shared by the test threads.
        std::env::set_var("CAUCE_TEST_ENV_BAD", "12x");
        std::env::set_var("CAUCE_TEST_ENV_GOOD", " 12 ");
        let bad = parsed::<u64>("CAUCE_TEST_ENV_BAD", 1, "a whole number").unwrap_err();
        assert_eq!(
            bad.to_string(),
            "configuration: the setting CAUCE_TEST_ENV_BAD must be a whole number, not \"12x\""
        );
        assert_eq!(parsed::<u64>("CAUCE_TEST_ENV_GOOD", 1, "n").unwrap(), 12);
        assert_eq!(parsed::<u64>("CAUCE_TEST_ENV_UNSET", 7, "n").unwrap(), 7);
        let missing = required("CAUCE_TEST_ENV_UNSET").unwrap_err();
        assert_eq!(
            missing.to_string(),
            "configuration: the setting CAUCE_TEST_ENV_UNSET is missing"
        );
    }
}
