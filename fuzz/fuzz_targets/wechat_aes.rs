//! The `Encrypt` element of a safe-mode push: base64, AES-256-CBC, padding, length and AppID.
#![no_main]
use liandong_wechat::AesKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = AesKey::from_encoding_aes_key("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
        .expect("a valid EncodingAESKey");
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = key.decrypt(text);
    }
});
