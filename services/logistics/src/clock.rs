//! The service's clock (the shared one of `gendan_runtime`): what "today"
//! is for the ETD chase and re-bookings; tests drive a [`ManualClock`].

pub use gendan_runtime::clock::{Clock, ManualClock, SystemClock};
