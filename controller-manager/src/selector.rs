//! Label selectors of workload objects as [`Selector`]s.

use capstan_proto::api::meta::v1::LabelSelector;
use capstan_proto::labels::Selector;

/// A `LabelSelector` as a [`Selector`] (Kubernetes's
/// `LabelSelectorAsSelector`); the error names what is wrong.
pub fn from_label_selector(sel: &LabelSelector) -> Result<Selector, String> {
    Selector::from_parts(
        &sel.match_labels,
        sel.match_expressions
            .iter()
            .map(|r| (r.key.clone(), r.operator.clone(), r.values.clone())),
    )
    .map_err(|e| format!("invalid selector: {e}"))
}
