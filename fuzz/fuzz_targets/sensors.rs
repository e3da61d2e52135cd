//! A request to the Sensors intake: the query string, a newline, the body. Form parsing,
//! base64, bounded gunzip, JSON and the mapping onto the catalogue.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (query, body) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let query = String::from_utf8_lossy(query);
    let _ = liandong_ingest::sensors::decode(&query, body);
});
