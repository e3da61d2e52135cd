//! An event as a sender writes it: JSON, then the envelope and schema validation.
#![no_main]
use std::sync::OnceLock;

use liandong_event::Schemas;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    let schemas = SCHEMAS.get_or_init(|| Schemas::load().expect("the schemas compile"));
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = schemas.validate(&value, chrono::Utc::now());
    }
});
