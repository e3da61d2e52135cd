//! Given/when/then tests of the `OpenidBinding` aggregate with cqrs-es's `TestFramework`:
//! the lifetime binding rule without any database.

use cqrs_es::test::TestFramework;
use cqrs_es::DomainEvent;
use liandong_identity::{BindingCommand, BindingEvent, IdentityConflict, OpenidBinding};

type Given = TestFramework<OpenidBinding>;

fn bind(unionid: &str) -> BindingCommand {
    BindingCommand::Bind {
        unionid: unionid.to_string(),
    }
}

fn bound(unionid: &str) -> BindingEvent {
    BindingEvent::OpenidBound {
        unionid: unionid.to_string(),
    }
}

#[test]
fn unbound_openid_binds() {
    Given::with(())
        .given_no_previous_events()
        .when(bind("u1"))
        .then_expect_events(vec![bound("u1")]);
}

#[test]
fn rebinding_the_same_unionid_is_a_no_op() {
    Given::with(())
        .given(vec![bound("u1")])
        .when(bind("u1"))
        .then_expect_events(vec![]);
}

#[test]
fn binding_another_unionid_conflicts() {
    Given::with(())
        .given(vec![bound("u1")])
        .when(bind("u2"))
        .then_expect_error(IdentityConflict {
            bound_to: "u1".to_string(),
            attempted: "u2".to_string(),
        });
    Given::with(())
        .given(vec![bound("u1")])
        .when(bind("u2"))
        .then_expect_error_message("identity conflict: openid is bound to unionid u1, not u2");
}

#[tokio::test]
async fn async_when_agrees() {
    Given::with(())
        .given(vec![bound("u1")])
        .when_async(bind("u1"))
        .await
        .then_expect_events(vec![]);
}

#[test]
fn event_metadata_is_stable() {
    // These strings are persisted with every event; changing them orphans stored history.
    assert_eq!(bound("u").event_type(), "OpenidBound");
    assert_eq!(bound("u").event_version(), "1.0");
    assert_eq!(
        liandong_identity::aggregate_id(liandong_identity::OpenidKind::Mp, "o-1"),
        "mp:o-1"
    );
}
