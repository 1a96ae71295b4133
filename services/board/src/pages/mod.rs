//! The board's pages. Each module has a handler that checks its input
//! ([`crate::forms`]), calls the services it needs at once, turns the
//! answers into a view struct and renders it: the whole page, or with
//! `X-Board-Fragment: 1` only the live region (its own template, which the
//! page template includes inside its `data-live` element).
//!
//! - [`orders`]: `/`, the orders list with its filters and paging.
//! - [`order`]: `/orders/{id}`, one order: header, calendar chart,
//!   timeline, exceptions and decisions, costs ([`ledger`]), packing list
//!   and documents ([`logistics`]), notices.
//! - [`decisions`]: `/decisions`, what waits for a person, and the answer
//!   forms' POST.
//! - [`ops`]: `/ops`, stalled sagas with retry and skip, dead letters per
//!   consumer.

pub mod decisions;
pub mod ledger;
pub mod logistics;
pub mod ops;
pub mod order;
pub mod orders;
