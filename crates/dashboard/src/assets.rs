//! The dashboard's pages, styles and scripts, embedded in the binary so the
//! console works without any network beyond this host.
//!
//! Files are served with an ETag (a hash of their bytes, computed once) and
//! `Cache-Control: no-cache`: the browser revalidates and gets a 304 until
//! the binary changes. Every answer carries a Content-Security-Policy that
//! allows nothing but this origin.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::DashboardError;

macro_rules! embed {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_bytes!(concat!("../assets/", $name)) as &[u8])),*]
    };
}

/// Every file, by its path under `/static/`.
static FILES: &[(&str, &[u8])] = embed![
    "index.html",
    "app.css",
    "favicon.svg",
    "js/app.js",
    "js/api.js",
    "js/ui.js",
    "js/charts.js",
    "js/overview.js",
    "js/instances.js",
    "js/images.js",
    "js/flavors.js",
    "js/keypairs.js",
    "js/volumes.js",
    "js/networks.js",
    "js/routers.js",
    "js/floatingips.js",
    "js/loadbalancers.js",
    "js/secgroups.js",
    "js/topology.js",
    "js/admin.js",
];

const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; \
                   script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
                   form-action 'self'";

fn etags() -> &'static HashMap<&'static str, String> {
    static TAGS: OnceLock<HashMap<&'static str, String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        FILES
            .iter()
            .map(|(name, bytes)| {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                bytes.hash(&mut h);
                (*name, format!("\"{:016x}\"", h.finish()))
            })
            .collect()
    })
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

fn serve(name: &str, request: &HeaderMap) -> Response {
    let Some((name, bytes)) = FILES.iter().find(|(n, _)| *n == name) else {
        return DashboardError::NotFound(format!("No such file: {name}")).into_response();
    };
    let tag = etags().get(name).cloned().unwrap_or_default();
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == tag);
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type(name))], bytes.to_vec()).into_response()
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// `GET /`: the one page; the scripts draw the rest.
pub async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `GET /static/{*path}`.
pub async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_the_page_imports_is_embedded() {
        // Each `import … from "./x.js"` in the scripts names an embedded file.
        for (name, bytes) in FILES.iter().filter(|(n, _)| n.ends_with(".js")) {
            let text = std::str::from_utf8(bytes).expect("utf-8");
            for line in text
                .lines()
                .filter(|l| l.trim_start().starts_with("import "))
            {
                let Some(target) = line.split('"').nth(1) else {
                    continue;
                };
                let path = format!("js/{}", target.trim_start_matches("./"));
                assert!(
                    FILES.iter().any(|(n, _)| *n == path),
                    "{name} imports {target}, which is not embedded"
                );
            }
        }
    }

    #[test]
    fn the_page_preloads_every_module() {
        let index = std::str::from_utf8(FILES[0].1).expect("utf-8");
        for (name, _) in FILES
            .iter()
            .filter(|(n, _)| n.ends_with(".js") && *n != "js/app.js")
        {
            assert!(
                index.contains(&format!(
                    "<link rel=\"modulepreload\" href=\"/static/{name}\">"
                )),
                "index.html doesn't preload {name}"
            );
        }
    }

    #[test]
    fn the_page_loads_the_entry_script_and_styles() {
        let index = std::str::from_utf8(FILES[0].1).expect("utf-8");
        assert!(index.contains("/static/js/app.js") && index.contains("/static/app.css"));
    }
}
