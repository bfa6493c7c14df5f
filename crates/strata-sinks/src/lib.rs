//! strata's target stores. One module per store, each split by role (encode, write, guard);
//! every one implements [`strata_core::Sink`] with its guard done atomically in the store.

pub mod mongo;
pub mod postgres;
pub mod redis;
pub mod search;
