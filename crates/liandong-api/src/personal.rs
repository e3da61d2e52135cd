//! A member's personal data (phone, address) in `GET /v1/members/{member_key}`: opened from
//! `member_personal` with the member's data key for `admin`, masked for `support`
//! (`138****5678`, `上海市****`). After an erasure the data key is gone: the values are `null`
//! and `key_destroyed` says why. No other role reaches the endpoint.

use liandong_auth::Role;
use liandong_projections::member_personal;
use serde::{Deserialize, Serialize};

use crate::{ApiError, ApiState};

/// The `personal` object of a member's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalData {
    /// The latest phone the member gave; `null` when none (or its key is destroyed).
    pub phone: Option<String>,
    /// The latest address the member gave; `null` when none (or its key is destroyed).
    pub address: Option<String>,
    /// True when the values are masked (role `support`).
    pub masked: bool,
    /// True when values were stored but their data key was destroyed (an erasure): they can
    /// never be read again.
    pub key_destroyed: bool,
    /// When the latest update of phone or address happened.
    pub updated_at: Option<String>,
}

/// The personal data of `member_key` as `role` may see it.
pub(crate) async fn for_member(
    s: &ApiState,
    member_key: &str,
    role: Role,
) -> Result<PersonalData, ApiError> {
    let masked = role != Role::Admin;
    let Some(row) = member_personal::read(&s.store, member_key).await? else {
        return Ok(PersonalData {
            phone: None,
            address: None,
            masked,
            key_destroyed: false,
            updated_at: None,
        });
    };
    let (phone, phone_gone) = open(s, row.phone_sealed, masked.then_some(mask_phone)).await?;
    let (address, address_gone) =
        open(s, row.address_sealed, masked.then_some(mask_address)).await?;
    Ok(PersonalData {
        phone,
        address,
        masked,
        key_destroyed: phone_gone || address_gone,
        updated_at: Some(row.updated_at),
    })
}

/// A stored value opened (and masked with `mask`, if given); `true` when its key is destroyed.
async fn open(
    s: &ApiState,
    sealed: Option<String>,
    mask: Option<fn(&str) -> String>,
) -> Result<(Option<String>, bool), ApiError> {
    let Some(sealed) = sealed else {
        return Ok((None, false));
    };
    Ok(match s.data_keys.open(&sealed).await? {
        Some(plain) => (
            Some(mask.map_or_else(|| plain.clone(), |m| m(&plain))),
            false,
        ),
        None => (None, true),
    })
}

/// `13812345678` → `138****5678`: the first 3 and last 4 digits of an 11-digit (or longer)
/// number; of a shorter one the last 2 (8 to 10 characters) or nothing.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    let n = chars.len();
    let (head, tail) = match n {
        11.. => (3, 4),
        8..=10 => (0, 2),
        _ => (0, 0),
    };
    let mut out: String = chars[..head].iter().collect();
    out.push_str("****");
    out.extend(&chars[n - tail..]);
    out
}

/// `上海市徐汇区漕溪北路88号` → `上海市****`: the first 3 characters (usually the city) of an
/// address longer than 6, else nothing.
pub fn mask_address(address: &str) -> String {
    let chars: Vec<char> = address.chars().collect();
    let head = if chars.len() > 6 { 3 } else { 0 };
    let mut out: String = chars[..head].iter().collect();
    out.push_str("****");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_keep_at_most_seven_of_eleven_digits() {
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(mask_phone("+8613812345678"), "+86****5678");
        assert_eq!(mask_phone("87654321"), "****21");
        assert_eq!(mask_phone("1234567"), "****");
        assert_eq!(mask_phone(""), "****");
    }

    #[test]
    fn addresses_keep_the_city_at_most() {
        assert_eq!(mask_address("上海市徐汇区漕溪北路88号"), "上海市****");
        assert_eq!(mask_address("Room 1, 2 Main St"), "Roo****");
        assert_eq!(mask_address("北京市朝阳区"), "****");
        assert_eq!(mask_address(""), "****");
    }
}
