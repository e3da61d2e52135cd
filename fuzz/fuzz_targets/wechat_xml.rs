//! A WeChat push body: the XML parser, then the mapping onto the catalogue.
#![no_main]
use liandong_wechat::{mapping, xml, MenuConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(push) = xml::parse(data) {
        let _ = mapping::event_id(&push);
        let _ = mapping::map(&push, &MenuConfig::default());
    }
});
