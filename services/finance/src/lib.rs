//! The finance service (being built).

pub const SERVICE: &str = "finance";
