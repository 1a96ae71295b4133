//! The logistics service (being built).

pub const SERVICE: &str = "logistics";
