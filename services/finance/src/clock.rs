//! The service's clock (the shared one of `gendan_runtime`): what "today"
//! is for dunning, due-date checks and refund value dates. Production runs
//! on [`SystemClock`]; tests drive a [`ManualClock`] instead of waiting days.

pub use gendan_runtime::clock::{Clock, ManualClock, SystemClock};
