//! The `OpenidBinding` aggregate: one instance per openid (id `oa:<openid>` / `mp:<openid>`).
//! Invariant: an instance emits at most one `OpenidBound` event in its life, so the binding
//! it records never changes; rebinding to the same unionid is an idempotent no-op.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

/// Which WeChat app an openid belongs to: the event model's kind. OA and MP openids live in
/// separate namespaces (the same string could be issued by both), hence separate aggregate ids.
pub use liandong_event::OpenidKind;

/// The cqrs-es aggregate id of the binding of `openid`: `oa:<openid>` or `mp:<openid>`.
pub fn aggregate_id(kind: OpenidKind, openid: &str) -> String {
    format!("{}:{openid}", kind.as_str())
}

/// Commands accepted by [`OpenidBinding`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingCommand {
    /// Bind this aggregate's openid to `unionid` (idempotent when already bound to it).
    Bind { unionid: String },
}

/// Events emitted by [`OpenidBinding`]. The serialized form is persisted forever, so it
/// must only ever be extended compatibly (bump `event_version` and add an upcaster otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BindingEvent {
    /// The openid is now bound to `unionid`, for life.
    OpenidBound { unionid: String },
}

impl DomainEvent for BindingEvent {
    fn event_type(&self) -> String {
        match self {
            BindingEvent::OpenidBound { .. } => "OpenidBound".to_string(),
        }
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// Rejection of a `Bind` whose unionid differs from the one the openid is already bound to.
///
/// cqrs-es does not hand the aggregate id to `handle`, so the aggregate cannot name its own
/// openid here; [`crate::IdentityService`] adds kind and openid in
/// [`crate::IdentityError::Conflict`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("identity conflict: openid is bound to unionid {bound_to}, not {attempted}")]
pub struct IdentityConflict {
    /// The unionid the openid is bound to.
    pub bound_to: String,
    /// The unionid the rejected command tried to bind.
    pub attempted: String,
}

/// State of one openid: `None` until its single `OpenidBound` event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenidBinding {
    /// The unionid this openid is bound to, if any.
    pub unionid: Option<String>,
}

impl Aggregate for OpenidBinding {
    const TYPE: &'static str = "openid_binding";
    type Command = BindingCommand;
    type Event = BindingEvent;
    type Error = IdentityConflict;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            BindingCommand::Bind { unionid } => match &self.unionid {
                None => {
                    sink.write(BindingEvent::OpenidBound { unionid }, self)
                        .await;
                    Ok(())
                }
                // Emitting nothing keeps replays and the event table free of duplicates,
                // and makes the common "event repeats a known binding" case write-free.
                Some(bound) if *bound == unionid => Ok(()),
                Some(bound) => Err(IdentityConflict {
                    bound_to: bound.clone(),
                    attempted: unionid,
                }),
            },
        }
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            BindingEvent::OpenidBound { unionid } => self.unionid = Some(unionid),
        }
    }
}
