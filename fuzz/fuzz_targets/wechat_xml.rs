//! A WeChat push body: the XML parser, then the mapping onto the catalogue.
#![no_main]
use libfuzzer_sys::fuzz_target;
use liandong_wechat::{mapping, xml, MenuConfig};

fuzz_target!(|data: &[u8]| {
    if let Ok(push) = xml::parse(data) {
        let _ = mapping::event_id(&push);
        let _ = mapping::map(&push, &MenuConfig::default());
    }
});
