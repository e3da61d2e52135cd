//! The dashboard: one HTML page, its script, style and Apache ECharts, embedded in the binary
//! (`include_bytes!`), served at `/` and `/assets/*`. It needs no CDN and no build step, so
//! `liandong serve` shows it on a machine without internet access. The page reads the query API
//! with the key the user signs in with; this crate serves files only and touches no data.
//!
//! Caching: the page is `no-cache` (revalidated with its ETag on every load) and names each
//! asset with `?v=<fingerprint of all assets>`, so an asset asked for with the current
//! fingerprint is cached for a year (`immutable`), and a new binary's page asks for new URLs.

use std::sync::{Arc, LazyLock};

use axum::body::Bytes;

use axum::extract::{Path, RawQuery};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// One embedded file.
struct Asset {
    /// Path under `/assets/`.
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        Asset {
            path: $path,
            content_type: $content_type,
            bytes: include_bytes!(concat!("../assets/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";
const TEXT: &str = "text/plain; charset=utf-8";

/// Everything under `/assets/`. The index page is separate (it is rendered once, below).
static ASSETS: &[Asset] = &[
    asset!("app.js", JS),
    asset!("i18n.js", JS),
    asset!("style.css", CSS),
    asset!("favicon.svg", SVG),
    asset!("vendor/echarts/echarts.min.js", JS),
    asset!("vendor/echarts/LICENSE", TEXT),
    asset!("vendor/echarts/NOTICE", TEXT),
    asset!("vendor/echarts/LICENSE-d3", TEXT),
    asset!("vendor/echarts/VERSION", TEXT),
];

const INDEX_TEMPLATE: &str = include_str!("../assets/index.html");

/// The version of Apache ECharts embedded (from `assets/vendor/echarts/VERSION`).
pub fn echarts_version() -> &'static str {
    let version = include_str!("../assets/vendor/echarts/VERSION");
    version
        .lines()
        .find_map(|l| l.strip_prefix("echarts "))
        .unwrap_or("unknown")
}

/// 64-bit FNV-1a: a fingerprint of content for ETags and cache-busting, not a security hash.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The ETag of each asset, in the order of [`ASSETS`].
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| format!("\"{:016x}\"", fnv1a(a.bytes)))
        .collect()
});

/// A fingerprint of every asset: the `v` the page puts in the assets' URLs.
static FINGERPRINT: LazyLock<String> = LazyLock::new(|| {
    let all: String = ETAGS.iter().map(String::as_str).collect();
    format!("{:016x}", fnv1a(all.as_bytes()))
});

/// The page with the fingerprint in its asset URLs and where the sign-in keys are, and its
/// ETag.
fn render_index(keys_file: Option<&str>) -> (String, String) {
    let html = INDEX_TEMPLATE
        .replace("{{v}}", &FINGERPRINT)
        .replace("{{keys_file}}", &escape_attribute(keys_file.unwrap_or("")));
    let etag = format!("\"{:016x}\"", fnv1a(html.as_bytes()));
    (html, etag)
}

/// Text made safe for a double-quoted HTML attribute.
fn escape_attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Scripts and styles only from this server; API calls only to it; no framing. ECharts sets
/// inline styles on its tooltip and canvas containers, hence `'unsafe-inline'` for styles
/// (never for scripts).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; \
    form-action 'self'; frame-ancestors 'none'";

/// `/` (the page) and `/assets/*` (its files), for a server whose keys are configured
/// (`LIANDONG_API_KEYS`): the sign-in hint names no file.
pub fn router() -> Router {
    router_with_keys_file(None)
}

/// The same, telling the sign-in form where this server keeps its keys (`serve`'s
/// `<data dir>/api-keys`; the demo's `liandong-demo/api-keys`), or that they are configured.
pub fn router_with_keys_file(keys_file: Option<&str>) -> Router {
    let (html, etag) = render_index(keys_file);
    let page = Arc::new((Bytes::from(html), etag));
    Router::new()
        .route(
            "/",
            get(move |headers: HeaderMap| index(headers, page.clone())),
        )
        .route("/assets/{*path}", get(asset))
}

fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

fn respond(
    headers: &HeaderMap,
    etag: &str,
    content_type: &'static str,
    cache: &'static str,
    body: Bytes,
) -> Response {
    let status = if not_modified(headers, etag) {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let mut res = if status == StatusCode::OK {
        body.into_response()
    } else {
        status.into_response()
    };
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(ETAG, v);
    }
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    res
}

async fn index(headers: HeaderMap, page: Arc<(Bytes, String)>) -> Response {
    let (html, etag) = &*page;
    let mut res = respond(
        &headers,
        etag,
        "text/html; charset=utf-8",
        "no-cache",
        html.clone(),
    );
    let h = res.headers_mut();
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}

async fn asset(
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.path == path) else {
        return (
            StatusCode::NOT_FOUND,
            [(CONTENT_TYPE, HeaderValue::from_static(TEXT))],
            "no such asset",
        )
            .into_response();
    };
    let a = &ASSETS[i];
    // Only a URL carrying the current fingerprint may be cached for good: the same URL always
    // has the same bytes.
    let current = query.as_deref().is_some_and(|q| {
        form_urlencoded_pairs(q).any(|(k, v)| k == "v" && v == FINGERPRINT.as_str())
    });
    let cache = if current {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    respond(
        &headers,
        &ETAGS[i],
        a.content_type,
        cache,
        Bytes::from_static(a.bytes),
    )
}

/// `k=v` pairs of a query string (the fingerprint is hex, so no decoding is needed).
fn form_urlencoded_pairs(q: &str) -> impl Iterator<Item = (&str, &str)> {
    q.split('&').filter_map(|p| p.split_once('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_page_names_is_served() {
        let (html, _) = render_index(Some("liandong-demo/api-keys"));
        for part in html.split("assets/").skip(1) {
            let path = part.split(['?', '"']).next().expect("a path");
            assert!(
                ASSETS.iter().any(|a| a.path == path),
                "index.html names assets/{path}, which is not embedded"
            );
        }
        assert!(!html.contains("{{"), "every placeholder is filled");
        assert!(
            html.contains(r#"<meta name="liandong-keys-file" content="liandong-demo/api-keys">"#),
            "the page says where the keys are"
        );
        let (odd, _) = render_index(Some(r#"d"><script>/api-keys"#));
        assert!(odd.contains(r#"content="d&quot;&gt;&lt;script&gt;/api-keys""#));
        let (configured, _) = render_index(None);
        assert!(configured.contains(r#"<meta name="liandong-keys-file" content="">"#));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no CDN"
        );
    }

    #[test]
    fn the_vendored_echarts_is_the_recorded_version() {
        use sha2::{Digest, Sha256};
        let recorded = include_str!("../assets/vendor/echarts/VERSION");
        let sha = recorded
            .lines()
            .find_map(|l| l.strip_prefix("sha256 "))
            .expect("VERSION records the sha256");
        let js = ASSETS
            .iter()
            .find(|a| a.path == "vendor/echarts/echarts.min.js")
            .expect("echarts is embedded");
        assert_eq!(hex::encode(Sha256::digest(js.bytes)), sha);
        assert!(echarts_version().starts_with("5."), "{}", echarts_version());
    }
}
