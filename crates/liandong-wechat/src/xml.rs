//! Reading a WeChat push: `<xml>` with one element per field, values as text or CDATA, e.g.
//! `<xml><FromUserName><![CDATA[oA…]]></FromUserName><CreateTime>1764000000</CreateTime>…</xml>`.
//!
//! Invariants, because the body comes from the network before anything else is trusted:
//! - no DTD: a `<!DOCTYPE …>` is refused, so no entity can be declared, and a reference to
//!   anything but XML's five predefined entities or a character reference is refused too (no
//!   "billion laughs", no external entities: nothing is ever expanded or fetched);
//! - bounded: at most [`MAX_FIELDS`] fields, [`MAX_DEPTH`] levels; the input itself is capped
//!   by the caller, and the output is never larger than the input.

use std::collections::BTreeMap;

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use quick_xml::Reader;
use serde_json::{Map, Value};

/// Most fields a push may have (WeChat's have about ten).
pub const MAX_FIELDS: usize = 128;
/// Deepest nesting below `<xml>` (WeChat's deepest, `SendPicsInfo/PicList/item/PicMd5Sum`, is 4).
pub const MAX_DEPTH: usize = 8;

/// The fields of one push. Top-level elements are keyed by name; nested ones by their path
/// (`ScanCodeInfo.ScanResult`), a repeated nested path gets `#2`, `#3`… Values are trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Push {
    fields: BTreeMap<String, String>,
}

/// Why a body is not a push; the message says where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct XmlError(pub String);

impl Push {
    /// A field's value; `None` when absent. An empty element is `Some("")`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// A field's value when present and not empty.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// Every field, for the dead-letter stream.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.fields
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect::<Map<String, Value>>(),
        )
    }

    /// Builds a push from pairs (tests and tools).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Push {
        Push {
            fields: pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }
}

fn err(message: impl Into<String>) -> XmlError {
    XmlError(message.into())
}

/// Parses a push. See the module's invariants.
pub fn parse(body: &[u8]) -> Result<Push, XmlError> {
    let text = std::str::from_utf8(body).map_err(|e| err(format!("not UTF-8: {e}")))?;
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.expand_empty_elements = false;

    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    // The open elements below the root, and the text gathered for the innermost one.
    let mut path: Vec<String> = Vec::new();
    let mut value = String::new();
    let mut has_children = false;
    let mut root_seen = false;
    let mut root_open = false;

    let position = |reader: &Reader<&[u8]>| reader.buffer_position();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| err(format!("malformed XML at byte {}: {e}", position(&reader))))?;
        match event {
            Event::DocType(_) => {
                return Err(err(
                    "DOCTYPE is not allowed: entity declarations are refused, never expanded",
                ))
            }
            Event::GeneralRef(r) => {
                let name = r
                    .decode()
                    .map_err(|e| err(format!("entity reference: {e}")))?
                    .into_owned();
                let resolved = if r.is_char_ref() {
                    let c = r
                        .resolve_char_ref()
                        .map_err(|e| err(format!("character reference &{name};: {e}")))?;
                    c.map(String::from)
                } else {
                    resolve_predefined_entity(&name).map(str::to_owned)
                };
                let Some(resolved) = resolved else {
                    return Err(err(format!(
                        "unknown entity &{name};: only XML's predefined entities are allowed, custom entities are never expanded"
                    )));
                };
                if path.is_empty() {
                    return Err(err("text outside the fields of <xml>"));
                }
                value.push_str(&resolved);
            }
            Event::Start(start) => {
                let name = element_name(&start)?;
                if !root_open {
                    if root_seen {
                        return Err(err("more than one root element"));
                    }
                    if name != "xml" {
                        return Err(err(format!(
                            "expected the root element <xml>, got <{name}>"
                        )));
                    }
                    root_seen = true;
                    root_open = true;
                    continue;
                }
                if path.len() >= MAX_DEPTH {
                    return Err(err(format!("nested deeper than {MAX_DEPTH} levels")));
                }
                if let Some(parent) = path.last().filter(|_| !value.trim().is_empty()) {
                    return Err(err(format!("<{parent}> mixes text and elements")));
                }
                path.push(name);
                value.clear();
                has_children = false;
            }
            Event::Empty(start) => {
                let name = element_name(&start)?;
                if !root_open {
                    if root_seen {
                        return Err(err("more than one root element"));
                    }
                    if name != "xml" {
                        return Err(err(format!(
                            "expected the root element <xml>, got <{name}>"
                        )));
                    }
                    // `<xml/>`: a push with no fields.
                    root_seen = true;
                    continue;
                }
                path.push(name);
                insert(&mut fields, &path, String::new())?;
                path.pop();
                has_children = true;
            }
            Event::End(_) => {
                if path.is_empty() {
                    // quick-xml checked that this closes <xml>.
                    root_open = false;
                    continue;
                }
                if !has_children {
                    insert(&mut fields, &path, value.trim().to_owned())?;
                } else if !value.trim().is_empty() {
                    return Err(err(format!(
                        "<{}> mixes text and elements",
                        path.last().map(String::as_str).unwrap_or_default()
                    )));
                }
                value.clear();
                path.pop();
                // The element that just closed was a child of the one now innermost.
                has_children = true;
            }
            Event::Text(t) => {
                let t = t.xml_content().map_err(|e| err(format!("text: {e}")))?;
                if path.is_empty() {
                    if !t.trim().is_empty() {
                        return Err(err("text outside the fields of <xml>"));
                    }
                } else {
                    value.push_str(&t);
                }
            }
            Event::CData(c) => {
                let c = c.xml_content().map_err(|e| err(format!("CDATA: {e}")))?;
                if path.is_empty() {
                    return Err(err("CDATA outside the fields of <xml>"));
                }
                value.push_str(&c);
            }
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !root_seen {
        return Err(err("empty body: expected <xml>…</xml>"));
    }
    if root_open {
        return Err(err("unexpected end: <xml> is not closed"));
    }
    Ok(Push { fields })
}

fn element_name(start: &quick_xml::events::BytesStart<'_>) -> Result<String, XmlError> {
    std::str::from_utf8(start.name().as_ref())
        .map(str::to_owned)
        .map_err(|e| err(format!("element name: {e}")))
}

/// Adds a field. A repeated top-level name is an error (two `FromUserName`s would make the
/// push mean whichever one a reader picks); repeated nested paths are lists, numbered.
fn insert(
    fields: &mut BTreeMap<String, String>,
    path: &[String],
    value: String,
) -> Result<(), XmlError> {
    if fields.len() >= MAX_FIELDS {
        return Err(err(format!("more than {MAX_FIELDS} fields")));
    }
    let key = path.join(".");
    let value = match fields.entry(key.clone()) {
        std::collections::btree_map::Entry::Vacant(slot) => {
            slot.insert(value);
            return Ok(());
        }
        std::collections::btree_map::Entry::Occupied(_) => value,
    };
    if path.len() == 1 {
        return Err(err(format!("<{key}> appears more than once")));
    }
    let mut n = 2;
    while fields.contains_key(&format!("{key}#{n}")) {
        n += 1;
    }
    fields.insert(format!("{key}#{n}"), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Push, XmlError> {
        parse(s.as_bytes())
    }

    #[test]
    fn reads_a_plain_push() {
        let p = parse_str(
            "<?xml version=\"1.0\"?>\n<xml>\n  <ToUserName><![CDATA[gh_1]]></ToUserName>\n  \
             <FromUserName><![CDATA[oA-1]]></FromUserName>\n  <CreateTime>1764000000</CreateTime>\n  \
             <MsgType><![CDATA[event]]></MsgType><Event><![CDATA[CLICK]]></Event>\n  \
             <EventKey><![CDATA[ORDER_NOW]]></EventKey><MenuId/>\n</xml>\n",
        )
        .expect("a push");
        assert_eq!(p.get("FromUserName"), Some("oA-1"));
        assert_eq!(p.get("CreateTime"), Some("1764000000"));
        assert_eq!(p.get("EventKey"), Some("ORDER_NOW"));
        assert_eq!(p.get("MenuId"), Some(""));
        assert_eq!(p.non_empty("MenuId"), None);
        assert_eq!(p.get("Nope"), None);
    }

    #[test]
    fn predefined_and_character_references_are_resolved() {
        let p =
            parse_str("<xml><EventKey>a&amp;b&lt;&#x4E2D;&#25991;</EventKey></xml>").expect("ok");
        assert_eq!(p.get("EventKey"), Some("a&b<中文"));
        let p = parse_str("<xml><EventKey><![CDATA[from=menu&type=home]]></EventKey></xml>")
            .expect("ok");
        assert_eq!(p.get("EventKey"), Some("from=menu&type=home"));
    }

    #[test]
    fn nested_fields_are_kept_by_path() {
        let p = parse_str(
            "<xml><Event>pic_sysphoto</Event><SendPicsInfo><Count>2</Count><PicList>\
             <item><PicMd5Sum>a</PicMd5Sum></item><item><PicMd5Sum>b</PicMd5Sum></item>\
             </PicList></SendPicsInfo></xml>",
        )
        .expect("ok");
        assert_eq!(p.get("SendPicsInfo.Count"), Some("2"));
        assert_eq!(p.get("SendPicsInfo.PicList.item.PicMd5Sum"), Some("a"));
        assert_eq!(p.get("SendPicsInfo.PicList.item.PicMd5Sum#2"), Some("b"));
    }

    #[test]
    fn billion_laughs_is_refused_unexpanded() {
        let lol = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<xml><Content>&lol9;</Content></xml>"#;
        let e = parse_str(lol).expect_err("refused");
        assert!(e.0.contains("DOCTYPE is not allowed"), "{e}");
        // Without the DOCTYPE, the reference alone is refused, not expanded to nothing.
        let e = parse_str("<xml><Content>&lol9;</Content></xml>").expect_err("refused");
        assert!(e.0.contains("unknown entity &lol9;"), "{e}");
        // An external entity cannot even be declared.
        let xxe = r#"<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><A>&e;</A></xml>"#;
        assert!(parse_str(xxe).expect_err("refused").0.contains("DOCTYPE"));
    }

    #[test]
    fn malformed_bodies_are_errors_with_a_message() {
        for (body, says) in [
            ("", "empty body"),
            ("   ", "empty body"),
            ("{\"json\": true}", "text outside"),
            ("<xml><A>1</B></xml>", "malformed XML"),
            ("<xml><A>1</A>", "not closed"),
            ("<root><A>1</A></root>", "expected the root element <xml>"),
            ("<xml><A>1</A></xml><xml/>", "more than one root"),
            ("<xml>loose<A>1</A></xml>", "text outside"),
            ("<xml><A>1</A><A>2</A></xml>", "<A> appears more than once"),
            ("<xml><A>x<B>1</B></A></xml>", "mixes text and elements"),
            ("<xml><A>&#0;</A></xml>", "character reference"),
        ] {
            let e = parse_str(body).expect_err(body);
            assert!(e.0.contains(says), "{body:?}: {e}");
        }
        assert!(parse(&[0xff, 0xfe])
            .expect_err("bytes")
            .0
            .starts_with("not UTF-8"));
    }

    #[test]
    fn size_of_the_result_is_bounded() {
        let many: String = (0..=MAX_FIELDS).map(|i| format!("<F{i}/>")).collect();
        let e = parse_str(&format!("<xml>{many}</xml>")).expect_err("too many");
        assert!(e.0.contains("more than 128 fields"), "{e}");
        let deep = format!(
            "<xml>{}x{}</xml>",
            "<a>".repeat(MAX_DEPTH + 1),
            "</a>".repeat(MAX_DEPTH + 1)
        );
        assert!(parse_str(&deep)
            .expect_err("deep")
            .0
            .contains("deeper than"));
    }
}
