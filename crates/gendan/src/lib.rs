//! The `gendan` command's building blocks, also used by the cross-service
//! tests:
//!
//! - [`bench`]: orders through the whole happy path, and what it costs;
//! - [`cli`]: the merchandiser's commands against running services, with
//!   [`orders_cli`] for orders (create, list, show, accept),
//!   [`claims_cli`] for the customer's claims, [`amend`] for their
//!   amendments, [`customers_cli`] for the customer master,
//!   [`order_details`] for an order's customer and cost plan,
//!   [`calendar_cli`] for its time-and-action calendar,
//!   [`summary_cli`] for its closing summary, [`finance_cli`] for exchange
//!   rates, the inspection rate and (with [`costs_cli`]) an order's
//!   estimate and ledger, and [`workflow_cli`] for decisions and stalled
//!   workflows;
//!   [`retry`]: how they (and the simulators) retry transient failures;
//! - [`stack`]: every service's `Application` in one process;
//! - [`demo`]: the sample factory catalog, sample orders, an MES player and
//!   the live progress view;
//! - [`local`]: private nats-server / PostgreSQL when none answers;
//! - [`progress`]: the demo's live view (an indicatif bar on a terminal,
//!   plain lines in a log);
//! - [`chaos`]: every service as its own process on private servers,
//!   orders driven through faults (kills, crashes), then checks that
//!   nothing was lost or done twice.

pub mod amend;
pub mod bench;
pub mod calendar_cli;
pub mod chaos;
pub mod claims_cli;
pub mod cli;
pub mod costs_cli;
pub mod customers_cli;
pub mod deadletters;
pub mod demo;
pub mod finance_cli;
pub mod local;
pub mod order_details;
pub mod orders_cli;
pub mod progress;
pub mod register;
pub mod retry;
pub mod sim;
pub mod stack;
pub mod summary_cli;
pub mod watch_cli;
pub mod workflow_cli;
