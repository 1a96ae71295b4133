//! `TypeName` registrations of every bus payload, one file per owning
//! service.

mod finance;
mod logistics;
mod orders_production_saga;
mod procurement;
mod quality;
