//! The quality service (being built).

pub const SERVICE: &str = "quality";
