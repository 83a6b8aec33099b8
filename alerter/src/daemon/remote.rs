//! `--query-url`: rules evaluated through a Prometheus-compatible HTTP API (`/api/v1/query`) instead of
//! the local store. Series the rules write (recording rules, ALERTS) stay in a local store: a remote
//! Prometheus cannot be written to, so later rules read recording outputs only from the remote side.

use etcd_monitor_promql::{Labels, MemStorage};
use promql_parser::parser::Expr;
use serde::Deserialize;

use crate::group::RuleStorage;

pub struct RemoteStorage {
    pub base: String,
    pub client: reqwest::Client,
    pub handle: tokio::runtime::Handle,
    pub local: MemStorage,
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
        let url = format!("{}/api/v1/query", self.base.trim_end_matches('/'));
        let time = format!("{:.3}", ts_ms as f64 / 1000.0);
        let client = self.client.clone();
        let text = text.to_string();
        self.handle.block_on(async move {
            let resp = client
                .post(&url)
                .form(&[("query", text.as_str()), ("time", time.as_str())])
                .send()
                .await
                .map_err(|e| format!("query {url}: {e}"))?;
            let status = resp.status();
            let body = resp
                .bytes()
                .await
                .map_err(|e| format!("query {url}: {e}"))?;
            if !status.is_success() && status.as_u16() != 400 && status.as_u16() != 422 {
                return Err(format!("query {url}: HTTP {status}"));
            }
            decode(&body)
        })
    }

    fn append(&mut self, labels: &Labels, ts_ms: i64, v: f64) -> Result<(), String> {
        self.local
            .append(labels, ts_ms, v)
            .map_err(|e| e.to_string())
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
