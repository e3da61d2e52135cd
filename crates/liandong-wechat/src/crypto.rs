//! WeChat's signatures and its "safe mode" message encryption (消息加解密), as the OA platform
//! specifies them:
//!
//! - a signature is the lowercase SHA-1 hex of its parts sorted bytewise and concatenated
//!   (`token, timestamp, nonce` for `signature`; plus the `Encrypt` text for `msg_signature`);
//! - the AES key is the base64 of the 43-character EncodingAESKey with `=` appended (32 bytes);
//!   the cipher is AES-256-CBC with the first 16 key bytes as IV, and the plaintext is padded
//!   PKCS#7-style to a multiple of **32** bytes (not AES's 16), so padding is done here over an
//!   unpadded CBC;
//! - the plaintext is 16 random bytes, the message length as 4 big-endian bytes, the message,
//!   then the AppID it was sent to.
//!
//! Invariant: nothing here panics on input; every malformed ciphertext is a [`DecryptError`].

use aes::Aes256;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::Engine;
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use sha1::{Digest, Sha1};

/// Length of an EncodingAESKey as the OA admin console shows it.
pub const ENCODING_AES_KEY_LEN: usize = 43;
/// WeChat's padding block: PKCS#7 semantics, 32-byte blocks.
const PAD_BLOCK: usize = 32;
const AES_BLOCK: usize = 16;
const RANDOM_LEN: usize = 16;
const LENGTH_LEN: usize = 4;

/// An EncodingAESKey is 43 base64 characters whose last one carries 2 bits beyond the 32 key
/// bytes; WeChat generates them randomly, so those bits are often not zero. The strict engine
/// would refuse such keys (WeChat's own sample key among them).
const KEY_ENGINE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// The signature of `parts`: SHA-1 hex of the bytewise-sorted parts, concatenated.
pub fn signature(parts: &[&str]) -> String {
    let mut sorted = parts.to_vec();
    sorted.sort_unstable();
    let mut sha = Sha1::new();
    for part in sorted {
        sha.update(part.as_bytes());
    }
    hex::encode(sha.finalize())
}

/// Whether `given` (hex, any letter case) is the signature of `parts`. The comparison takes the
/// same time wherever the first difference is, so the signature cannot be guessed byte by byte.
pub fn signature_matches(given: &str, parts: &[&str]) -> bool {
    let expected = signature(parts);
    let given = given.trim().to_ascii_lowercase();
    if given.len() != expected.len() {
        return false;
    }
    given
        .bytes()
        .zip(expected.bytes())
        .fold(0u8, |diff, (a, b)| diff | (a ^ b))
        == 0
}

/// Why an `Encrypt` value did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    #[error("Encrypt is not base64: {0}")]
    NotBase64(String),
    #[error("Encrypt decodes to {0} bytes, expected a non-empty multiple of 32")]
    BadLength(usize),
    /// The usual result of the wrong key: the last block decrypts to noise.
    #[error("bad padding after decryption (wrong EncodingAESKey?)")]
    BadPadding,
    #[error("the decrypted message length {claimed} exceeds the {available} bytes present")]
    BadMessageLength { claimed: usize, available: usize },
    #[error("the decrypted AppID is not UTF-8")]
    AppidNotUtf8,
}

/// A message opened with a key: the message bytes and the AppID it was addressed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub message: Vec<u8>,
    pub appid: String,
}

/// The AES key of one EncodingAESKey. Its `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct AesKey([u8; 32]);

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesKey([redacted])")
    }
}

impl AesKey {
    /// Reads an EncodingAESKey: exactly 43 characters of the standard base64 alphabet.
    pub fn from_encoding_aes_key(text: &str) -> Result<AesKey, String> {
        let text = text.trim();
        let count = text.chars().count();
        if count != ENCODING_AES_KEY_LEN {
            return Err(format!(
                "expected the 43-character EncodingAESKey of the OA admin console, got {count} characters"
            ));
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !c.is_ascii_alphanumeric() && *c != '+' && *c != '/')
        {
            return Err(format!(
                "expected the 43-character EncodingAESKey (letters, digits, + and /), got the character {bad:?}"
            ));
        }
        let bytes = KEY_ENGINE
            .decode(format!("{text}="))
            .map_err(|e| format!("expected a base64 EncodingAESKey: {e}"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("decodes to {} bytes, expected 32", b.len()))?;
        Ok(AesKey(key))
    }

    fn iv(&self) -> [u8; AES_BLOCK] {
        let mut iv = [0u8; AES_BLOCK];
        iv.copy_from_slice(&self.0[..AES_BLOCK]);
        iv
    }

    /// Opens an `Encrypt` value. Checks everything but the AppID, which the caller compares
    /// with its own (it knows which one it expects).
    pub fn decrypt(&self, encrypt: &str) -> Result<Opened, DecryptError> {
        let mut buf = STANDARD
            .decode(encrypt.trim())
            .map_err(|e| DecryptError::NotBase64(e.to_string()))?;
        // WeChat pads to 32 bytes, so anything else was not made by its scheme.
        if buf.is_empty() || buf.len() % PAD_BLOCK != 0 {
            return Err(DecryptError::BadLength(buf.len()));
        }
        let cipher = cbc::Decryptor::<Aes256>::new(&self.0.into(), &self.iv().into());
        let plain = cipher
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            .map_err(|_| DecryptError::BadLength(encrypt.len()))?;
        let plain = unpad(plain)?;
        let header = RANDOM_LEN + LENGTH_LEN;
        if plain.len() < header {
            return Err(DecryptError::BadMessageLength {
                claimed: 0,
                available: plain.len(),
            });
        }
        let mut len = [0u8; LENGTH_LEN];
        len.copy_from_slice(&plain[RANDOM_LEN..header]);
        let claimed = u32::from_be_bytes(len) as usize;
        let rest = &plain[header..];
        if claimed > rest.len() {
            return Err(DecryptError::BadMessageLength {
                claimed,
                available: rest.len(),
            });
        }
        let (message, appid) = rest.split_at(claimed);
        let appid = std::str::from_utf8(appid).map_err(|_| DecryptError::AppidNotUtf8)?;
        Ok(Opened {
            message: message.to_vec(),
            appid: appid.to_owned(),
        })
    }

    /// Seals `message` for `appid` the way WeChat does, with the caller's 16 random bytes
    /// (tests pass fixed ones to get reproducible pushes). Returns the base64 `Encrypt` text.
    pub fn encrypt(&self, random: [u8; RANDOM_LEN], message: &[u8], appid: &str) -> String {
        let mut buf =
            Vec::with_capacity(RANDOM_LEN + LENGTH_LEN + message.len() + appid.len() + PAD_BLOCK);
        buf.extend_from_slice(&random);
        // A push is at most a few KiB; u32 holds any message this endpoint could ever take.
        let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(message);
        buf.extend_from_slice(appid.as_bytes());
        let pad = PAD_BLOCK - buf.len() % PAD_BLOCK;
        buf.extend(std::iter::repeat_n(pad as u8, pad));
        let len = buf.len();
        let cipher = cbc::Encryptor::<Aes256>::new(&self.0.into(), &self.iv().into());
        // The buffer is a whole number of blocks, which is all NoPadding asks.
        let sealed = match cipher.encrypt_padded_mut::<NoPadding>(&mut buf, len) {
            Ok(sealed) => sealed.to_vec(),
            Err(_) => Vec::new(),
        };
        STANDARD.encode(sealed)
    }
}

/// Removes WeChat's padding: the last byte `n` in `1..=32`, and the last `n` bytes all `n`.
fn unpad(plain: &[u8]) -> Result<&[u8], DecryptError> {
    let n = *plain.last().ok_or(DecryptError::BadPadding)? as usize;
    if n == 0 || n > PAD_BLOCK || n > plain.len() {
        return Err(DecryptError::BadPadding);
    }
    let (body, pad) = plain.split_at(plain.len() - n);
    if pad.iter().any(|&b| b as usize != n) {
        return Err(DecryptError::BadPadding);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The published worked example of this scheme (WeCom's "加解密方案说明", the same
    // algorithm the OA platform uses; the AppID slot holds the corp id there).
    const TOKEN: &str = "QDG6eK";
    const APPID: &str = "wx5823bf96d3bd56c7";
    const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
    const TIMESTAMP: &str = "1409659813";
    const NONCE: &str = "1372623149";
    const MSG_SIGNATURE: &str = "477715d11cdb4164915debcba66cb864d751f3e6";
    /// The Encrypt value as the issue quoted it: its first 381 characters only.
    const ENCRYPT_AS_QUOTED: &str = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS";
    /// The rest of the published value.
    const ENCRYPT_TAIL: &str = "+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==";

    fn encrypt_published() -> String {
        format!("{ENCRYPT_AS_QUOTED}{ENCRYPT_TAIL}")
    }

    fn key() -> AesKey {
        AesKey::from_encoding_aes_key(KEY).expect("the sample key")
    }

    #[test]
    fn published_sample_signature_verifies() {
        let encrypt = encrypt_published();
        assert!(signature_matches(
            MSG_SIGNATURE,
            &[TOKEN, TIMESTAMP, NONCE, &encrypt]
        ));
        assert!(signature_matches(
            &MSG_SIGNATURE.to_uppercase(),
            &[&encrypt, NONCE, TOKEN, TIMESTAMP]
        ));
        assert!(!signature_matches(
            MSG_SIGNATURE,
            &[TOKEN, TIMESTAMP, "1372623148", &encrypt]
        ));
        assert!(!signature_matches("", &[TOKEN, TIMESTAMP, NONCE, &encrypt]));
    }

    #[test]
    fn published_sample_decrypts_to_its_message_for_its_appid() {
        let opened = key()
            .decrypt(&encrypt_published())
            .expect("the sample opens");
        assert_eq!(opened.appid, APPID);
        let text = String::from_utf8(opened.message).expect("UTF-8 XML");
        assert_eq!(
            text,
            "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n\
             <FromUserName><![CDATA[mycreate]]></FromUserName>\n\
             <CreateTime>1409659813</CreateTime>\n\
             <MsgType><![CDATA[text]]></MsgType>\n\
             <Content><![CDATA[hello]]></Content>\n\
             <MsgId>4561255354251345929</MsgId>\n\
             <AgentID>218</AgentID>\n\
             </xml>"
        );
    }

    /// The value as quoted in the issue is 381 characters: not base64 (a length of 4n + 1 is
    /// impossible), not what `msg_signature` was computed over, so neither check passes.
    #[test]
    fn the_sample_as_quoted_is_truncated() {
        assert_eq!(ENCRYPT_AS_QUOTED.len(), 381);
        assert!(!signature_matches(
            MSG_SIGNATURE,
            &[TOKEN, TIMESTAMP, NONCE, ENCRYPT_AS_QUOTED]
        ));
        assert!(matches!(
            key().decrypt(ENCRYPT_AS_QUOTED),
            Err(DecryptError::NotBase64(_))
        ));
    }

    #[test]
    fn round_trips_with_32_byte_padding() {
        let k = key();
        for len in [0usize, 1, 11, 12, 31, 32, 33, 1000] {
            let message = vec![b'x'; len];
            let sealed = k.encrypt([7; 16], &message, APPID);
            let raw = STANDARD.decode(&sealed).expect("base64");
            assert_eq!(raw.len() % 32, 0, "len {len}");
            let opened = k.decrypt(&sealed).expect("opens");
            assert_eq!(opened.message, message);
            assert_eq!(opened.appid, APPID);
        }
    }

    #[test]
    fn the_wrong_key_or_a_damaged_text_is_an_error_not_a_panic() {
        let sealed = key().encrypt([1; 16], b"<xml/>", APPID);
        let other = AesKey::from_encoding_aes_key(&"A".repeat(43)).expect("a key");
        assert!(other.decrypt(&sealed).is_err());
        assert!(matches!(
            key().decrypt("%%%"),
            Err(DecryptError::NotBase64(_))
        ));
        assert!(matches!(key().decrypt(""), Err(DecryptError::BadLength(0))));
        assert!(matches!(
            key().decrypt(&STANDARD.encode([0u8; 16])),
            Err(DecryptError::BadLength(16))
        ));
        // A zero-filled ciphertext decrypts to noise with (almost surely) no valid padding.
        for n in [32usize, 64, 96] {
            let _ = key().decrypt(&STANDARD.encode(vec![0u8; n]));
        }
        // Flipping a byte of the last block breaks the padding.
        let mut raw = STANDARD.decode(&sealed).expect("base64");
        let last = raw.len() - 1;
        raw[last] ^= 0xff;
        assert!(key().decrypt(&STANDARD.encode(&raw)).is_err());
    }

    #[test]
    fn padding_is_checked_byte_by_byte() {
        let mut block = vec![0u8; 32];
        block[31] = 3;
        block[30] = 3;
        block[29] = 2;
        assert_eq!(unpad(&block), Err(DecryptError::BadPadding));
        block[29] = 3;
        assert_eq!(unpad(&block).map(<[u8]>::len), Ok(29));
        block[31] = 33;
        assert_eq!(unpad(&block), Err(DecryptError::BadPadding));
        block[31] = 0;
        assert_eq!(unpad(&block), Err(DecryptError::BadPadding));
    }

    #[test]
    fn encoding_aes_keys_are_validated() {
        assert!(AesKey::from_encoding_aes_key(KEY).is_ok());
        assert!(AesKey::from_encoding_aes_key(&KEY[..42])
            .unwrap_err()
            .contains("got 42 characters"));
        let bad = format!("{}=", &KEY[..42]);
        assert!(AesKey::from_encoding_aes_key(&bad)
            .unwrap_err()
            .contains("'='"));
        assert_eq!(format!("{:?}", key()), "AesKey([redacted])");
    }
}
