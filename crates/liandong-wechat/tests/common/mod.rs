//! Building pushes the way WeChat sends them: the XML, the signed query string, and safe
//! mode's `<xml><ToUserName/><Encrypt/></xml>` envelope sealed with our own encryptor (checked
//! against WeChat's published sample in the crate's unit tests).

#![allow(dead_code)]

use liandong_wechat::crypto::signature;
use liandong_wechat::AesKey;

pub const TOKEN: &str = "liandongToken2026";
pub const APPID: &str = "wx0123456789abcdef";
/// EncodingAESKeys: 43 base64 characters, the last one with non-zero spare bits on purpose.
pub const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
pub const PREVIOUS_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
pub const UNKNOWN_KEY: &str = "zyxwvutsrqponmlkjihgfedcba9876543210ZYXWVUT";

pub fn key(text: &str) -> AesKey {
    AesKey::from_encoding_aes_key(text).expect("a valid EncodingAESKey")
}

/// `<xml>` with the fields in order; every value as CDATA, as WeChat writes strings.
pub fn xml(fields: &[(&str, &str)]) -> String {
    let mut out = String::from("<xml>");
    for (k, v) in fields {
        if *k == "CreateTime" {
            out.push_str(&format!("<{k}>{v}</{k}>"));
        } else {
            out.push_str(&format!("<{k}><![CDATA[{v}]]></{k}>"));
        }
    }
    out.push_str("</xml>");
    out
}

/// An event push from `openid` at `create_time` (Unix seconds).
pub fn event_push(
    openid: &str,
    create_time: i64,
    event: &str,
    key: Option<&str>,
    extra: &[(&str, &str)],
) -> String {
    let time = create_time.to_string();
    let mut fields = vec![
        ("ToUserName", "gh_0123456789ab"),
        ("FromUserName", openid),
        ("CreateTime", time.as_str()),
        ("MsgType", "event"),
        ("Event", event),
    ];
    if let Some(k) = key {
        fields.push(("EventKey", k));
    }
    fields.extend_from_slice(extra);
    xml(&fields)
}

/// The query of a plaintext push or of the URL check: `signature` over token, timestamp, nonce.
pub fn plain_query(token: &str, timestamp: &str, nonce: &str) -> String {
    let sig = signature(&[token, timestamp, nonce]);
    format!("signature={sig}&timestamp={timestamp}&nonce={nonce}&openid=oIgnored")
}

/// A safe-mode push: the query (with `msg_signature` over token, timestamp, nonce, Encrypt)
/// and the envelope body.
pub fn safe_push(
    token: &str,
    key: &AesKey,
    appid: &str,
    message: &str,
    timestamp: &str,
    nonce: &str,
) -> (String, String) {
    let random = *b"0123456789abcdef";
    let encrypt = key.encrypt(random, message.as_bytes(), appid);
    safe_envelope(token, &encrypt, timestamp, nonce)
}

/// The query and envelope for a given `Encrypt` text (signed correctly for it).
pub fn safe_envelope(token: &str, encrypt: &str, timestamp: &str, nonce: &str) -> (String, String) {
    let msg_sig = signature(&[token, timestamp, nonce, encrypt]);
    // The plaintext `signature` WeChat also sends covers token, timestamp and nonce only.
    let sig = signature(&[token, timestamp, nonce]);
    let query = format!(
        "signature={sig}&timestamp={timestamp}&nonce={nonce}&openid=oIgnored&encrypt_type=aes&msg_signature={msg_sig}"
    );
    let body = format!(
        "<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    );
    (query, body)
}

/// Seconds since the epoch, `ago` seconds back (pushes must not be from the future).
pub fn unix_now(ago: i64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    now - ago
}
