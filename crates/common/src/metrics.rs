//! Prometheus metrics: requests and latency per service, method and route.
//!
//! Routes are the matched route templates (`/v3/users/{user_id}`), never raw
//! paths, so the series stay few. [`Metrics::render`] writes the text
//! exposition format served at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(&'static str, String, String, u16), u64>,
    latency: BTreeMap<(&'static str, String, String), Histogram>,
}

/// All series of one process.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn observe(
        &self,
        service: &'static str,
        method: &str,
        route: &str,
        status: u16,
        seconds: f64,
    ) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        *inner
            .requests
            .entry((service, method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
        let h = inner
            .latency
            .entry((service, method.to_owned(), route.to_owned()))
            .or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.buckets[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(inner) = self.inner.lock() else {
            return out;
        };
        out.push_str("# HELP ferrostack_http_requests_total HTTP requests by service, method, route and status.\n");
        out.push_str("# TYPE ferrostack_http_requests_total counter\n");
        for ((svc, method, route, status), n) in &inner.requests {
            let _ = writeln!(
                out,
                "ferrostack_http_requests_total{{service=\"{svc}\",method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP ferrostack_http_request_duration_seconds Time to answer a request.\n");
        out.push_str("# TYPE ferrostack_http_request_duration_seconds histogram\n");
        for ((svc, method, route), h) in &inner.latency {
            let labels = format!("service=\"{svc}\",method=\"{method}\",route=\"{route}\"");
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "ferrostack_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    h.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "ferrostack_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "ferrostack_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "ferrostack_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        out
    }
}

/// State of the [`track`] middleware: the registry and the service label.
#[derive(Clone)]
pub struct Tracker {
    pub metrics: Arc<Metrics>,
    pub service: &'static str,
}

/// Middleware (install with `route_layer`, so the matched route is known).
pub async fn track(State(t): State<Tracker>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    let resp = next.run(req).await;
    t.metrics.observe(
        t.service,
        &method,
        &route,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::new();
        m.observe("identity", "GET", "/v3", 200, 0.0007);
        m.observe("identity", "GET", "/v3", 200, 0.02);
        let text = m.render();
        assert!(text.contains(
            "ferrostack_http_requests_total{service=\"identity\",method=\"GET\",route=\"/v3\",status=\"200\"} 2"
        ));
        assert!(text.contains("le=\"0.001\"} 1"));
        assert!(text.contains("le=\"0.025\"} 2"));
        assert!(text.contains("_count{service=\"identity\",method=\"GET\",route=\"/v3\"} 2"));
    }
}
