//! The procurement service (being built).

pub const SERVICE: &str = "procurement";
