//! The coordinator's clock (the shared one of `gendan_runtime`). Deadlines
//! are computed from it and timers fire against it, so tests drive time
//! instead of sleeping.

pub use gendan_runtime::clock::{Clock, ManualClock, SystemClock};
