//! Report outputs: [`json`] for machines, [`markdown`] and [`html`] (with [`charts`]) for people.

pub mod charts;
pub mod html;
pub mod json;
pub mod markdown;
