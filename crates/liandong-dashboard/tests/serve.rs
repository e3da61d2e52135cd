//! The dashboard's files over real HTTP: the page and each asset with its content type, the
//! cache rules (the page revalidates; a fingerprinted asset URL is immutable; 304 on a matching
//! ETag), the page's security headers, and 404 for anything not embedded.

use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use reqwest::StatusCode;

async fn serve() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a port");
    let addr = listener.local_addr().expect("an address");
    let task = tokio::spawn(async move {
        axum::serve(listener, liandong_dashboard::router())
            .await
            .expect("serves");
    });
    (format!("http://{addr}"), task)
}

fn header(res: &reqwest::Response, name: reqwest::header::HeaderName) -> String {
    res.headers()
        .get(&name)
        .unwrap_or_else(|| panic!("{} has {name}", res.url()))
        .to_str()
        .expect("ASCII")
        .to_owned()
}

#[tokio::test]
async fn the_page_and_its_assets() {
    let (base, task) = serve().await;
    let http = reqwest::Client::new();

    let page = http.get(format!("{base}/")).send().await.expect("answers");
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(header(&page, CONTENT_TYPE), "text/html; charset=utf-8");
    assert_eq!(header(&page, CACHE_CONTROL), "no-cache");
    let csp = header(&page, "content-security-policy".parse().expect("a name"));
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let etag = header(&page, ETAG);
    let html = page.text().await.expect("a body");
    assert!(html.contains("<html lang=\"zh-CN\">"), "Chinese first");

    // The page names every asset with the fingerprint; each one answers with its type.
    let urls: Vec<&str> = html
        .split("\"assets/")
        .skip(1)
        .map(|s| s.split('"').next().expect("a URL"))
        .collect();
    assert!(urls.len() >= 5, "{urls:?}");
    for url in &urls {
        let res = http
            .get(format!("{base}/assets/{url}"))
            .send()
            .await
            .expect("answers");
        assert_eq!(res.status(), StatusCode::OK, "{url}");
        let want = match url.split('?').next().expect("a path").rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            other => panic!("unexpected asset type {other:?}"),
        };
        assert_eq!(header(&res, CONTENT_TYPE), want, "{url}");
        assert_eq!(
            header(&res, CACHE_CONTROL),
            "public, max-age=31536000, immutable",
            "{url}: fingerprinted"
        );
        assert_eq!(
            header(&res, "x-content-type-options".parse().expect("a name")),
            "nosniff"
        );
    }
    let echarts = urls
        .iter()
        .find(|u| u.starts_with("vendor/echarts/echarts.min.js?v="))
        .expect("the page loads the vendored ECharts");
    let body = http
        .get(format!("{base}/assets/{echarts}"))
        .send()
        .await
        .expect("answers")
        .bytes()
        .await
        .expect("a body");
    assert!(body.len() > 500_000, "the whole library is embedded");

    // Without the current fingerprint an asset must be revalidated.
    for url in [
        "app.js",
        "app.js?v=0000000000000000",
        "vendor/echarts/LICENSE",
    ] {
        let res = http
            .get(format!("{base}/assets/{url}"))
            .send()
            .await
            .expect("answers");
        assert_eq!(res.status(), StatusCode::OK, "{url}");
        assert_eq!(header(&res, CACHE_CONTROL), "no-cache", "{url}");
    }

    // A matching ETag: 304 without a body; another one: the page again.
    let res = http
        .get(format!("{base}/"))
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert!(res.bytes().await.expect("a body").is_empty());
    let res = http
        .get(format!("{base}/"))
        .header(IF_NONE_MATCH, "\"something-else\"")
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status(), StatusCode::OK);
    let app = http
        .get(format!("{base}/assets/app.js"))
        .send()
        .await
        .expect("answers");
    let app_etag = header(&app, ETAG);
    let res = http
        .get(format!("{base}/assets/app.js"))
        .header(IF_NONE_MATCH, app_etag)
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);

    // Nothing else is served: no listing, no way out of the embedded set.
    for path in [
        "/assets/",
        "/assets/nope.js",
        "/assets/../Cargo.toml",
        "/assets/%2e%2e/src/lib.rs",
        "/assets/vendor/echarts",
        "/index.html",
    ] {
        let res = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("answers");
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
    task.abort();
}
