//! CloudWatch metrics in the Embedded Metric Format: the functions add to a [`Recorder`] as
//! they work and print one EMF JSON line per invocation, which CloudWatch Logs turns into
//! metrics (namespace [`NAMESPACE`], dimension `Function`) without any API call or IAM
//! permission. The dashboard in template.yaml reads these names.
//!
//! Metrics count what an invocation did (a duplicate delivery that finds its file already
//! stored adds nothing), so sums over time are files settled, not deliveries.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;

pub const NAMESPACE: &str = "DtxMigrate";

/// EMF accepts at most 100 values per metric in one document.
const MAX_VALUES: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unit {
    Count,
    Bytes,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// Sums (counts, bytes) and samples (latencies) since the last [`Recorder::take`].
#[derive(Debug, Default)]
pub struct Recorder {
    inner: Mutex<Taken>,
}

/// What one invocation recorded.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Taken {
    sums: BTreeMap<&'static str, (Unit, f64)>,
    samples: BTreeMap<&'static str, (Unit, Vec<f64>)>,
}

impl Recorder {
    /// Adds `value` to the metric's sum.
    pub fn add(&self, name: &'static str, unit: Unit, value: f64) {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.sums.entry(name).or_insert((unit, 0.0)).1 += value;
    }

    /// Records one sample (kept individually, so CloudWatch can give percentiles).
    pub fn sample(&self, name: &'static str, unit: Unit, value: f64) {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.samples.entry(name).or_insert((unit, Vec::new())).1.push(value);
    }

    /// Everything recorded so far; the recorder starts again from nothing.
    pub fn take(&self) -> Taken {
        std::mem::take(&mut *self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

impl Taken {
    pub fn is_empty(&self) -> bool {
        self.sums.is_empty() && self.samples.is_empty()
    }

    pub fn sum(&self, name: &str) -> Option<f64> {
        self.sums.get(name).map(|(_, v)| *v)
    }

    /// The EMF documents (one per 100 samples of the busiest metric), or none when empty.
    pub fn to_emf(&self, function: &str, timestamp_ms: i64) -> Vec<Value> {
        if self.is_empty() {
            return Vec::new();
        }
        let chunks = self.samples.values().map(|(_, v)| v.len().div_ceil(MAX_VALUES)).max().unwrap_or(1).max(1);
        (0..chunks)
            .map(|i| {
                let mut definitions = Vec::new();
                let mut doc = Map::new();
                doc.insert("Function".into(), json!(function));
                if i == 0 {
                    for (name, (unit, value)) in &self.sums {
                        definitions.push(json!({ "Name": name, "Unit": unit.as_str() }));
                        doc.insert((*name).into(), json!(value));
                    }
                }
                for (name, (unit, values)) in &self.samples {
                    let part: Vec<f64> = values.iter().skip(i * MAX_VALUES).take(MAX_VALUES).copied().collect();
                    if !part.is_empty() {
                        definitions.push(json!({ "Name": name, "Unit": unit.as_str() }));
                        doc.insert((*name).into(), json!(part));
                    }
                }
                doc.insert(
                    "_aws".into(),
                    json!({
                        "Timestamp": timestamp_ms,
                        "CloudWatchMetrics": [{ "Namespace": NAMESPACE, "Dimensions": [["Function"]], "Metrics": definitions }],
                    }),
                );
                Value::Object(doc)
            })
            .collect()
    }
}

/// Prints the recorder's metrics as EMF lines on stdout, inside Lambda only (a terminal has
/// no use for them); `DTX_EMF=1` prints them anywhere.
pub fn flush(recorder: &Recorder, function: &str) {
    let taken = recorder.take();
    let wanted = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() || std::env::var("DTX_EMF").is_ok_and(|v| v == "1");
    if !wanted {
        return;
    }
    for doc in taken.to_emf(function, chrono::Utc::now().timestamp_millis()) {
        println!("{doc}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_samples_become_emf_documents_of_at_most_100_values() {
        let r = Recorder::default();
        r.add("FilesMoved", Unit::Count, 1.0);
        r.add("FilesMoved", Unit::Count, 1.0);
        r.add("BytesUploaded", Unit::Bytes, 2048.0);
        for i in 0..150 {
            r.sample("FileLatency", Unit::Milliseconds, i as f64);
        }
        let taken = r.take();
        assert!(r.take().is_empty(), "take starts again from nothing");
        assert_eq!(taken.sum("FilesMoved"), Some(2.0));
        let docs = taken.to_emf("worker", 1_700_000_000_000);
        assert_eq!(docs.len(), 2);
        let first = &docs[0];
        assert_eq!(first["Function"], "worker");
        assert_eq!(first["FilesMoved"], 2.0);
        assert_eq!(first["BytesUploaded"], 2048.0);
        assert_eq!(first["FileLatency"].as_array().unwrap().len(), 100);
        let cw = &first["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], NAMESPACE);
        assert_eq!(cw["Dimensions"], json!([["Function"]]));
        let names: Vec<&str> = cw["Metrics"].as_array().unwrap().iter().map(|m| m["Name"].as_str().unwrap()).collect();
        assert_eq!(names, ["BytesUploaded", "FilesMoved", "FileLatency"]);
        // The second document carries only the remaining samples: sums are not counted twice.
        let second = &docs[1];
        assert_eq!(second["FileLatency"].as_array().unwrap().len(), 50);
        assert!(second.get("FilesMoved").is_none());
        assert_eq!(second["_aws"]["Timestamp"], 1_700_000_000_000i64);
        assert!(Recorder::default().take().to_emf("worker", 0).is_empty());
    }
}
