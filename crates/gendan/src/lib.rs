//! The `gendan` command's building blocks, also used by the cross-service
//! tests:
//!
//! - [`stack`]: every service's `Application` in one process;
//! - [`demo`]: the sample factory catalog, sample orders, an MES player and
//!   the live progress view;
//! - [`local`]: private nats-server / PostgreSQL when none answers.

pub mod demo;
pub mod local;
pub mod stack;
