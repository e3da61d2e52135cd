//! What the `support` role sees of a member: enough to tell members apart on the phone
//! (`oAbC****wXyZ`), never an identifier in full. A support agent looks a member up by the key
//! they were given, so `member_key` is echoed as sent; the member's other identifiers — the
//! unionid behind an `mp:` key, the openids behind a unionid — are masked, so a lookup never
//! turns one identifier into another. `admin` sees everything.

use serde_json::Value;

/// The identifier fields of a member's answer.
pub const IDENTIFIER_FIELDS: [&str; 3] = ["unionid", "oa_openid", "mp_openid"];

/// The first 4 and the last 4 characters around `****` (`oU2xV5aBcDeFgHiJkLmN` →
/// `oU2x****kLmN`); an identifier of 10 characters or fewer keeps only its first 2.
pub fn mask_identifier(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() > 10 {
        let head: String = chars[..4].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}****{tail}")
    } else {
        let head: String = chars.iter().take(2).collect();
        format!("{head}****")
    }
}

/// Masks the identifier fields of a member's answer in place (strings only; nulls stay null).
pub fn mask_identifiers(answer: &mut Value) {
    let Some(object) = answer.as_object_mut() else {
        return;
    };
    for field in IDENTIFIER_FIELDS {
        if let Some(Value::String(id)) = object.get_mut(field) {
            *id = mask_identifier(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identifiers_keep_only_their_ends() {
        assert_eq!(mask_identifier("oU2xV5aBcDeFgHiJkLmN"), "oU2x****kLmN");
        assert_eq!(mask_identifier("o_demo"), "o_****");
        assert_eq!(mask_identifier("abcdefghijk"), "abcd****hijk");
        assert_eq!(mask_identifier("abcdefghij"), "ab****");
        assert_eq!(
            mask_identifier("联动会员标识一二三四五"),
            "联动会员****二三四五"
        );
        assert_eq!(mask_identifier(""), "****");
    }

    #[test]
    fn a_members_answer_loses_its_identifiers_but_not_its_facts() {
        let mut answer = json!({
            "member_key": "mp:oMp123456789abcdef",
            "unionid": "uUnion123456789abcdef",
            "oa_openid": "oOa123456789abcdefgh",
            "mp_openid": "oMp123456789abcdef",
            "following": true,
            "orders_paid": 3,
        });
        mask_identifiers(&mut answer);
        let shown = answer.to_string();
        assert!(
            !shown.contains("uUnion123456789abcdef") && !shown.contains("oOa123456789abcdefgh")
        );
        assert_eq!(answer["unionid"], "uUni****cdef");
        assert_eq!(answer["mp_openid"], "oMp1****cdef");
        assert_eq!(
            answer["member_key"], "mp:oMp123456789abcdef",
            "the key asked for"
        );
        assert_eq!(
            (answer["following"].clone(), answer["orders_paid"].clone()),
            (json!(true), json!(3))
        );
        let mut none = json!({"unionid": null});
        mask_identifiers(&mut none);
        assert_eq!(none, json!({"unionid": null}));
    }
}
