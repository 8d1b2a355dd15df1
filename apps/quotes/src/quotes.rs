//! USD→BRL and EUR→BRL from an AwesomeAPI-shaped upstream
//! (`GET {base}/json/last/USD-BRL,EUR-BRL?token=KEY`), with the last answer
//! kept so that a short upstream outage is answered from it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The pairs the app serves, as AwesomeAPI names them in the URL.
pub const PAIRS: [&str; 2] = ["USD-BRL", "EUR-BRL"];

/// One pair as AwesomeAPI sends it (numbers are strings there).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Quote {
    pub code: String,
    pub codein: String,
    #[serde(default)]
    pub name: String,
    pub bid: String,
    pub ask: String,
    #[serde(default)]
    pub high: String,
    #[serde(default)]
    pub low: String,
    #[serde(default)]
    pub timestamp: String,
    #[serde(default)]
    pub create_date: String,
}

/// What `/consultar` answers.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    /// `USD-BRL` and `EUR-BRL`.
    pub quotes: BTreeMap<String, Quote>,
    /// `upstream`, or `cache` when the upstream failed and a fresh copy was at hand.
    pub source: &'static str,
    pub age_seconds: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the quote service at {url} is unreachable: {why}")]
    Unreachable { url: String, why: String },
    #[error("the quote service at {url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("the quote service at {url} sent an answer without {missing}")]
    Malformed { url: String, missing: String },
}

pub struct Quotes {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
    fresh_for: Duration,
    last: Mutex<Option<(Instant, BTreeMap<String, Quote>)>>,
}

impl Quotes {
    pub fn new(base: &str, key: Option<String>, timeout: Duration, fresh_for: Duration) -> Quotes {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .unwrap_or_default();
        Quotes {
            http,
            base: base.trim_end_matches('/').to_owned(),
            key,
            fresh_for,
            last: Mutex::new(None),
        }
    }

    fn url(&self) -> String {
        format!("{}/json/last/{}", self.base, PAIRS.join(","))
    }

    async fn fetch(&self) -> Result<BTreeMap<String, Quote>, UpstreamError> {
        let url = self.url();
        let mut req = self.http.get(&url);
        if let Some(k) = &self.key {
            req = req.query(&[("token", k)]);
        }
        let unreachable = |e: reqwest::Error| UpstreamError::Unreachable {
            url: url.clone(),
            why: e.without_url().to_string(),
        };
        let resp = req.send().await.map_err(unreachable)?;
        if !resp.status().is_success() {
            return Err(UpstreamError::Status {
                url,
                status: resp.status().as_u16(),
            });
        }
        let mut body: BTreeMap<String, Quote> = resp.json().await.map_err(unreachable)?;
        let mut out = BTreeMap::new();
        for pair in PAIRS {
            // AwesomeAPI keys its answer by the pair without the dash.
            let q =
                body.remove(&pair.replace('-', ""))
                    .ok_or_else(|| UpstreamError::Malformed {
                        url: url.clone(),
                        missing: pair.to_owned(),
                    })?;
            out.insert(pair.to_owned(), q);
        }
        Ok(out)
    }

    /// The upstream's answer, or the last one if the upstream fails and that
    /// one is younger than the freshness window.
    pub async fn current(&self) -> Result<Answer, UpstreamError> {
        match self.fetch().await {
            Ok(quotes) => {
                *self.last.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((Instant::now(), quotes.clone()));
                Ok(Answer {
                    quotes,
                    source: "upstream",
                    age_seconds: 0,
                })
            }
            Err(e) => {
                let last = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
                match last {
                    Some((at, quotes)) if at.elapsed() <= self.fresh_for => {
                        tracing::warn!(error = %e, "serving cached quotes");
                        Ok(Answer {
                            quotes,
                            source: "cache",
                            age_seconds: at.elapsed().as_secs(),
                        })
                    }
                    _ => Err(e),
                }
            }
        }
    }
}
