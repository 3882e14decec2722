//! Prometheus text exposition (version 0.0.4) as `tether run` and `tether billing serve` serve
//! it: label pairs, histogram families and the encoder over a `prometheus-client` registry.

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`encode`]'s output.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// One series' label pairs, in the order they are exposed.
pub(crate) type Labels = Vec<(&'static str, String)>;
/// A histogram family whose buckets a `fn` builds.
pub(crate) type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

/// The label pairs `names` = `values`.
pub(crate) fn labels(names: &[&'static str], values: &[&str]) -> Labels {
    names
        .iter()
        .zip(values)
        .map(|(name, value)| (*name, (*value).to_owned()))
        .collect()
}

/// The text exposition of everything in `registry`.
pub(crate) fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a `String` cannot fail, and every registered metric encodes infallibly.
    let _ = prometheus_text::encode(&mut out, registry);
    out
}
