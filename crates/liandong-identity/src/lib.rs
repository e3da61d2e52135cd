//! Identity binding: every WeChat openid (OA or MP) binds to exactly one unionid for life.
//! Bindings are event-sourced with cqrs-es (`OpenidBinding` aggregate, one per openid) in the
//! `identity_events` table; a conflicting bind is refused with `identity conflict`.

pub mod aggregate;
mod cache;
mod service;
mod store;

pub use aggregate::{
    aggregate_id, BindingCommand, BindingEvent, IdentityConflict, OpenidBinding, OpenidKind,
};
pub use cache::DEFAULT_CACHE_CAPACITY;
pub use service::{Binding, IdentityError, IdentityService};
pub use store::{migrate, IdentityDatabase, EVENTS_TABLE, SNAPSHOTS_TABLE};
