//! The menu configuration (`LIANDONG_WECHAT_MENU`): what WeChat's menu pushes do not say.
//! A `CLICK` push names the button's `key`, a `VIEW` / `view_miniprogram` push its URL or page
//! path, and both may name the personalised menu (`MenuId`) the user saw; none carries the
//! label people read, nor the experiment a menu variant belongs to. The file maps them:
//!
//! ```json
//! {
//!   "menus": [
//!     {"key": "ORDER_NOW", "label": "立即点餐"},
//!     {"key": "ORDER_NOW", "menu_id": "415", "label": "马上下单", "experiment": "entry_name", "variant": "b"},
//!     {"target": "pages/menu/index?from=menu&type=home", "label": "点单小程序"}
//!   ],
//!   "templates": {"template_id": "ORDER_SHIPPED_TPL", "purpose": "order_shipped"}
//! }
//! ```
//!
//! Invariants, checked when the file is read (start-up): every entry has a `label` and exactly
//! one of `key` / `target`; no two entries answer the same (key or target, menu_id); lengths fit
//! the schema of `oa.menu.click` / `oa.template.sent`. Lookup prefers the entry naming the push's
//! `MenuId`, then the one naming none.

use serde::Deserialize;

/// `template_id` recorded for WeChat's delivery results when the file names none: the
/// `TEMPLATESENDJOBFINISH` push does not say which template was sent.
pub const UNKNOWN_TEMPLATE: &str = "unknown";

/// One menu button as configured.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuEntry {
    /// The `key` of a `click` button (the push's `EventKey` for `CLICK`).
    #[serde(default)]
    pub key: Option<String>,
    /// The URL of a `view` button or the page path of a `miniprogram` button (the push's
    /// `EventKey` for `VIEW` / `view_miniprogram`), compared exactly.
    #[serde(default)]
    pub target: Option<String>,
    /// The personalised menu (`MenuId`) this entry is for; none: any menu.
    #[serde(default)]
    pub menu_id: Option<String>,
    pub label: String,
    #[serde(default)]
    pub experiment: Option<String>,
    #[serde(default)]
    pub variant: Option<String>,
}

/// What to record for a template delivery result.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSettings {
    #[serde(default)]
    pub template_id: Option<String>,
    #[serde(default)]
    pub purpose: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MenuFile {
    #[serde(default)]
    menus: Vec<MenuEntry>,
    #[serde(default)]
    templates: TemplateSettings,
}

/// The validated configuration. The default (no file) knows no menu: clicks are then labelled
/// by their key or target, and delivery results get [`UNKNOWN_TEMPLATE`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MenuConfig {
    entries: Vec<MenuEntry>,
    templates: TemplateSettings,
}

/// Which button a push names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clicked<'a> {
    /// `CLICK`: the button's key.
    Key(&'a str),
    /// `VIEW` / `view_miniprogram`: the URL or page path.
    Target(&'a str),
}

fn check_len(at: &str, field: &str, value: &str, min: usize, max: usize) -> Result<(), String> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(format!(
            "{at}.{field}: expected {min} to {max} characters, got {n}"
        ));
    }
    Ok(())
}

impl MenuConfig {
    /// Parses and validates the file's text; the error names the entry and the field.
    pub fn parse(text: &str) -> Result<MenuConfig, String> {
        // serde would read a JSON array as the struct's fields in order: only an object is a file.
        if !text.trim_start().starts_with('{') {
            return Err(
                "expected a JSON object {\"menus\": [...], \"templates\"?: {...}}".to_owned(),
            );
        }
        let file: MenuFile = serde_json::from_str(text).map_err(|e| {
            format!("expected {{\"menus\": [{{\"key\" or \"target\", \"label\", \"menu_id\"?, \"experiment\"?, \"variant\"?}}], \"templates\"?: {{\"template_id\"?, \"purpose\"?}}}}: {e}")
        })?;
        for (i, e) in file.menus.iter().enumerate() {
            let at = format!("menus[{i}]");
            match (&e.key, &e.target) {
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "{at}: has both key and target; a CLICK button has a key, a VIEW or mini program button a target"
                    ))
                }
                (None, None) => {
                    return Err(format!(
                        "{at}: needs a key (CLICK button) or a target (VIEW URL or mini program page path)"
                    ))
                }
                _ => {}
            }
            // WeChat's own limits: a key is at most 128 bytes; the schema's `target` 2048.
            if let Some(k) = &e.key {
                check_len(&at, "key", k, 1, 128)?;
            }
            if let Some(t) = &e.target {
                check_len(&at, "target", t, 1, 2048)?;
            }
            if let Some(m) = &e.menu_id {
                check_len(&at, "menu_id", m, 1, 128)?;
            }
            check_len(&at, "label", &e.label, 1, 256)?;
            if let Some(x) = &e.experiment {
                check_len(&at, "experiment", x, 1, 128)?;
            }
            if let Some(v) = &e.variant {
                check_len(&at, "variant", v, 1, 128)?;
            }
            if let Some(j) = file.menus[..i]
                .iter()
                .position(|o| o.key == e.key && o.target == e.target && o.menu_id == e.menu_id)
            {
                return Err(format!(
                    "{at}: answers the same button and menu_id as menus[{j}]"
                ));
            }
        }
        if let Some(t) = &file.templates.template_id {
            check_len("templates", "template_id", t, 1, 128)?;
        }
        if let Some(p) = &file.templates.purpose {
            check_len("templates", "purpose", p, 1, 256)?;
        }
        Ok(MenuConfig {
            entries: file.menus,
            templates: file.templates,
        })
    }

    /// Reads and validates the file at `path`.
    pub fn load(path: &std::path::Path) -> Result<MenuConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        MenuConfig::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The entry for a clicked button: the one for the push's menu, else the one for any menu.
    pub fn lookup(&self, clicked: Clicked<'_>, menu_id: Option<&str>) -> Option<&MenuEntry> {
        let button = |e: &&MenuEntry| match clicked {
            Clicked::Key(k) => e.key.as_deref() == Some(k),
            Clicked::Target(t) => e.target.as_deref() == Some(t),
        };
        let specific = menu_id.and_then(|m| {
            self.entries
                .iter()
                .filter(button)
                .find(|e| e.menu_id.as_deref() == Some(m))
        });
        specific.or_else(|| {
            self.entries
                .iter()
                .filter(button)
                .find(|e| e.menu_id.is_none())
        })
    }

    /// The `template_id` for delivery results.
    pub fn template_id(&self) -> &str {
        self.templates
            .template_id
            .as_deref()
            .unwrap_or(UNKNOWN_TEMPLATE)
    }

    /// The `purpose` for delivery results, when configured.
    pub fn template_purpose(&self) -> Option<&str> {
        self.templates.purpose.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
      "menus": [
        {"key": "ORDER_NOW", "label": "立即点餐"},
        {"key": "ORDER_NOW", "menu_id": "415", "label": "马上下单", "experiment": "entry_name", "variant": "b"},
        {"target": "pages/menu/index?from=menu&type=home", "label": "点单小程序"}
      ],
      "templates": {"template_id": "TPL_1", "purpose": "order_shipped"}
    }"#;

    #[test]
    fn lookup_prefers_the_pushed_menu_then_any_menu() {
        let m = MenuConfig::parse(SAMPLE).expect("valid");
        let label = |c, id| m.lookup(c, id).map(|e| e.label.as_str());
        assert_eq!(label(Clicked::Key("ORDER_NOW"), None), Some("立即点餐"));
        assert_eq!(
            label(Clicked::Key("ORDER_NOW"), Some("415")),
            Some("马上下单")
        );
        assert_eq!(
            label(Clicked::Key("ORDER_NOW"), Some("999")),
            Some("立即点餐")
        );
        assert_eq!(label(Clicked::Key("OTHER"), None), None);
        assert_eq!(
            label(
                Clicked::Target("pages/menu/index?from=menu&type=home"),
                Some("415")
            ),
            Some("点单小程序")
        );
        // A key is not a target.
        assert_eq!(label(Clicked::Target("ORDER_NOW"), None), None);
        assert_eq!(
            (m.template_id(), m.template_purpose()),
            ("TPL_1", Some("order_shipped"))
        );
    }

    #[test]
    fn only_a_menu_of_its_own_matches_a_menu_specific_entry() {
        let m = MenuConfig::parse(r#"{"menus": [{"key": "K", "menu_id": "1", "label": "A"}]}"#)
            .expect("valid");
        assert!(m.lookup(Clicked::Key("K"), Some("2")).is_none());
        assert!(m.lookup(Clicked::Key("K"), None).is_none());
        assert_eq!(MenuConfig::default().template_id(), UNKNOWN_TEMPLATE);
    }

    #[test]
    fn problems_are_named() {
        for (text, says) in [
            ("[]", "expected a JSON object {\"menus\""),
            (r#"{"menu": []}"#, "unknown field `menu`"),
            (r#"{"menus": [{"label": "A"}]}"#, "menus[0]: needs a key"),
            (
                r#"{"menus": [{"key": "K", "target": "t", "label": "A"}]}"#,
                "menus[0]: has both",
            ),
            (r#"{"menus": [{"key": "K"}]}"#, "missing field `label`"),
            (
                r#"{"menus": [{"key": "K", "label": ""}]}"#,
                "menus[0].label: expected 1 to 256 characters, got 0",
            ),
            (
                r#"{"menus": [{"key": "K", "label": "A", "variant": ""}]}"#,
                "menus[0].variant",
            ),
            (
                r#"{"menus": [{"key": "K", "label": "A"}, {"key": "K", "label": "B"}]}"#,
                "menus[1]: answers the same button and menu_id as menus[0]",
            ),
            (
                r#"{"templates": {"template_id": ""}}"#,
                "templates.template_id",
            ),
            (
                r#"{"menus": [{"key": "K", "label": "A", "colour": "red"}]}"#,
                "unknown field `colour`",
            ),
        ] {
            let e = MenuConfig::parse(text).expect_err(text);
            assert!(e.contains(says), "{text}: {e}");
        }
        let e =
            MenuConfig::load(std::path::Path::new("/nonexistent/menu.json")).expect_err("no file");
        assert!(e.starts_with("cannot read /nonexistent/menu.json"), "{e}");
    }
}
