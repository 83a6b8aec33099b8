//! `--query-url`: rules evaluated through a Prometheus-compatible HTTP API (`/api/v1/query`) instead of
//! the local store. Series the rules write (recording rules, ALERTS) stay in the local store: a remote
//! Prometheus cannot be written to, so later rules read recording outputs only from the remote side.

use std::time::Duration;

use promql::Labels;
use promql_parser::parser::Expr;
use serde::Deserialize;

use crate::group::RuleStorage;

/// Where and how to query; one per daemon, cloned into each evaluation.
#[derive(Clone)]
pub struct RemoteQuerier {
    pub base: String,
    pub client: reqwest::Client,
    /// `--query.timeout`: a query that has not answered by then fails its rule, alone.
    pub timeout: Duration,
}

impl RemoteQuerier {
    pub fn new(base: &str, timeout: Duration) -> Result<RemoteQuerier, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("--query-url: {e}"))?;
        Ok(RemoteQuerier {
            base: base.trim_end_matches('/').to_string(),
            client,
            timeout,
        })
    }

    /// The query endpoint without credentials a URL may carry (`https://user:pass@host/`), for errors.
    fn shown_url(&self) -> String {
        let url = format!("{}/api/v1/query", self.base);
        match reqwest::Url::parse(&url) {
            Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
                let _ = u.set_username("");
                let _ = u.set_password(None);
                u.to_string()
            }
            _ => url,
        }
    }
}

/// One group's evaluation through the remote API. Runs on a blocking thread (the rule evaluator is
/// synchronous) and drives each request on the runtime with `handle.block_on`; no lock is held.
pub struct RemoteStorage {
    pub querier: RemoteQuerier,
    pub handle: tokio::runtime::Handle,
    /// What the rules wrote, for the shared store.
    pub written: Vec<(Labels, i64, f64)>,
}

#[derive(Deserialize)]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiData {
    result_type: String,
    result: serde_json::Value,
}

fn parse_value(v: &serde_json::Value) -> Result<f64, String> {
    let s = v
        .get(1)
        .and_then(|x| x.as_str())
        .ok_or("malformed sample")?;
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        other => other
            .parse()
            .map_err(|_| format!("malformed value {other:?}")),
    }
}

/// Decodes a Prometheus instant-query answer.
pub fn decode(body: &[u8]) -> Result<Vec<(Labels, f64)>, String> {
    let r: ApiResponse =
        serde_json::from_slice(body).map_err(|e| format!("decoding the query answer: {e}"))?;
    if r.status != "success" {
        return Err(r.error.unwrap_or_else(|| "query failed".into()));
    }
    let d = r.data.ok_or("answer without data")?;
    match d.result_type.as_str() {
        "vector" => {
            let arr = d.result.as_array().ok_or("malformed vector")?;
            let mut out = Vec::with_capacity(arr.len());
            for s in arr {
                let metric = s
                    .get("metric")
                    .and_then(|m| m.as_object())
                    .ok_or("malformed vector sample")?;
                let labels = Labels::new(
                    metric
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())),
                );
                out.push((
                    labels,
                    parse_value(s.get("value").ok_or("sample without value")?)?,
                ));
            }
            Ok(out)
        }
        "scalar" => Ok(vec![(Labels::empty(), parse_value(&d.result)?)]),
        other => Err(format!(
            "rule result is not a vector or scalar (got {other})"
        )),
    }
}

impl RuleStorage for RemoteStorage {
    fn query(&self, _expr: &Expr, text: &str, ts_ms: i64) -> Result<Vec<(Labels, f64)>, String> {
        let q = &self.querier;
        let url = format!("{}/api/v1/query", q.base);
        let shown = q.shown_url();
        let time = format!("{:.3}", ts_ms as f64 / 1000.0);
        // reqwest's errors carry the URL; it is printed once, without credentials.
        let fail = |e: reqwest::Error| {
            if e.is_timeout() {
                format!(
                    "query {shown}: no answer within {} (--query.timeout)",
                    prom_exposition::duration::format(q.timeout)
                )
            } else {
                format!("query {shown}: {}", e.without_url())
            }
        };
        let request = async {
            let resp = q
                .client
                .post(&url)
                .form(&[("query", text), ("time", time.as_str())])
                .send()
                .await
                .map_err(fail)?;
            let status = resp.status();
            let body = resp.bytes().await.map_err(fail)?;
            if !status.is_success() && status.as_u16() != 400 && status.as_u16() != 422 {
                return Err(format!("query {shown}: HTTP {status}"));
            }
            decode(&body)
        };
        self.handle.block_on(request)
    }

    fn append(&mut self, labels: &Labels, ts_ms: i64, v: f64) -> Result<(), String> {
        self.written.push((labels.clone(), ts_ms, v));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_prometheus_answers() {
        let v = decode(br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a"},"value":[1.5,"1"]}]}}"#).unwrap();
        assert_eq!(v[0].0.to_string(), r#"{__name__="up", job="a"}"#);
        assert_eq!(v[0].1, 1.0);
        let s =
            decode(br#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"+Inf"]}}"#)
                .unwrap();
        assert_eq!(s[0].1, f64::INFINITY);
        let e = decode(br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#)
            .unwrap_err();
        assert_eq!(e, "parse error");
    }
}
