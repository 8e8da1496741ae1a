//! Counters for `/metrics`, in the Prometheus text format, per provider and
//! model. One mutex guards them: each request touches it a few times, for
//! well under a microsecond each.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Most (provider, model) series kept; requests for further models are
/// counted under the model `other`, so a client cannot grow memory without bound.
pub const MAX_SERIES: usize = 1_000;

#[derive(Debug, Default, Clone, Copy)]
struct Series {
    requests: u64,
    queued_seconds: f64,
    sent_429: u64,
    received_429: u64,
    input_tokens: u64,
    output_tokens: u64,
}

/// A metric family: name, type, help text, and its value in a series.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(&Series) -> String,
);

/// The proxy's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<(String, String), Series>>,
}

impl Metrics {
    fn update(&self, provider: &str, model: &str, change: impl FnOnce(&mut Series)) {
        let mut series = self
            .series
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut key = (provider.to_owned(), model.to_owned());
        if !series.contains_key(&key) && series.len() >= MAX_SERIES {
            key.1 = "other".to_owned();
        }
        change(series.entry(key).or_default());
    }

    /// Counts a request and the time it was held for budget.
    pub fn request(&self, provider: &str, model: &str, queued: Duration) {
        self.update(provider, model, |series| {
            series.requests += 1;
            series.queued_seconds += queued.as_secs_f64();
        });
    }

    /// Counts a 429 the proxy answered itself.
    pub fn sent_429(&self, provider: &str, model: &str) {
        self.update(provider, model, |series| series.sent_429 += 1);
    }

    /// Counts a 429 received from the upstream.
    pub fn received_429(&self, provider: &str, model: &str) {
        self.update(provider, model, |series| series.received_429 += 1);
    }

    /// Counts the tokens a call used.
    pub fn tokens(&self, provider: &str, model: &str, input: u64, output: u64) {
        self.update(provider, model, |series| {
            series.input_tokens += input;
            series.output_tokens += output;
        });
    }

    /// The counters in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let series = self
            .series
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut text = String::new();
        let families: [Family; 6] = [
            (
                "specsmith_proxy_requests_total",
                "counter",
                "Requests received per provider and model.",
                |s| s.requests.to_string(),
            ),
            (
                "specsmith_proxy_queued_seconds_total",
                "counter",
                "Seconds requests were held for budget.",
                |s| format!("{:.6}", s.queued_seconds),
            ),
            (
                "specsmith_proxy_429_sent_total",
                "counter",
                "429 answers the proxy gave because the budget was not free in time.",
                |s| s.sent_429.to_string(),
            ),
            (
                "specsmith_proxy_429_received_total",
                "counter",
                "429 answers received from upstreams.",
                |s| s.received_429.to_string(),
            ),
            (
                "specsmith_proxy_input_tokens_total",
                "counter",
                "Prompt tokens recorded.",
                |s| s.input_tokens.to_string(),
            ),
            (
                "specsmith_proxy_output_tokens_total",
                "counter",
                "Output tokens recorded.",
                |s| s.output_tokens.to_string(),
            ),
        ];
        for (name, kind, help, value) in families {
            let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for ((provider, model), figures) in series.iter() {
                let _ = writeln!(
                    text,
                    "{name}{{provider=\"{}\",model=\"{}\"}} {}",
                    label(provider),
                    label(model),
                    value(figures)
                );
            }
        }
        text
    }
}

/// A label value escaped as the text format requires.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_each_family_per_series() {
        let metrics = Metrics::default();
        metrics.request("openai", "gpt-4o", Duration::from_millis(1500));
        metrics.request("openai", "gpt-4o", Duration::ZERO);
        metrics.sent_429("openai", "gpt-4o");
        metrics.tokens("openai", "gpt-4o", 10, 5);
        metrics.received_429("anthropic", "m\"x");
        let text = metrics.render();
        assert!(
            text.contains(
                "specsmith_proxy_requests_total{provider=\"openai\",model=\"gpt-4o\"} 2\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "specsmith_proxy_queued_seconds_total{provider=\"openai\",model=\"gpt-4o\"} 1.500000\n"
        ));
        assert!(text
            .contains("specsmith_proxy_429_sent_total{provider=\"openai\",model=\"gpt-4o\"} 1\n"));
        assert!(text.contains(
            "specsmith_proxy_429_received_total{provider=\"anthropic\",model=\"m\\\"x\"} 1\n"
        ));
        assert!(text.contains(
            "specsmith_proxy_output_tokens_total{provider=\"openai\",model=\"gpt-4o\"} 5\n"
        ));
        assert!(text.contains("# TYPE specsmith_proxy_input_tokens_total counter\n"));
    }

    #[test]
    fn caps_the_number_of_series() {
        let metrics = Metrics::default();
        for index in 0..MAX_SERIES + 5 {
            metrics.request("p", &format!("m{index}"), Duration::ZERO);
        }
        let text = metrics.render();
        assert!(text.contains("specsmith_proxy_requests_total{provider=\"p\",model=\"other\"} 5\n"));
    }
}
