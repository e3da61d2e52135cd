//! The tracking-event model of liandong: the catalogue of types, the envelope, the typed props,
//! validation against the versioned JSON Schemas in `schemas/`, and the two pure rules every
//! later stage relies on: where a visit came from, and which member an event belongs to.

mod catalogue;
mod event;
pub mod props;
pub mod schema;
pub mod source;

pub use catalogue::{EventType, UnknownEventType};
pub use event::{is_wechat_id, Event, OpenidKind, User, WireError};
pub use props::Body;
pub use schema::{Invalid, Schemas};
pub use source::Source;
