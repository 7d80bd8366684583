//! The cap on the whole `/debug/state` response: when the reports together are larger,
//! the largest are replaced, one by one, by error entries that say so, until the rest
//! fits. Each one is still readable alone at `/debug/state/{name}`.

use std::collections::BTreeMap;

use super::registry::serialized_len;
use super::{ProviderReport, ProviderStatus};

/// Replaces the largest reports until the serialized map fits in `max_total` bytes;
/// returns how many it replaced.
pub(crate) fn apply(reports: &mut BTreeMap<String, ProviderReport>, max_total: usize) -> u64 {
    // `"name":` + report + `,` per entry; one comma fewer than entries, plus the braces.
    let entry_len = |name: &str, r: &ProviderReport| name.len() + 4 + serialized_len(r);
    let mut sizes: Vec<(usize, String)> = reports
        .iter()
        .map(|(name, r)| (entry_len(name, r), name.clone()))
        .collect();
    let mut total: usize = 1 + sizes.iter().map(|(s, _)| s).sum::<usize>();
    if total <= max_total {
        return 0;
    }
    let mut replaced = 0;
    sizes.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    for (size, name) in sizes {
        if total <= max_total {
            break;
        }
        let Some(report) = reports.get_mut(&name) else {
            continue;
        };
        let replacement = ProviderReport::failed(
            ProviderStatus::Error,
            format!(
                "left out: this report is {size} bytes and the whole /debug/state response is \
                 capped at {max_total} bytes; read /debug/state/{name}"
            ),
            report.duration_ms,
        );
        let new_size = entry_len(&name, &replacement);
        *report = replacement;
        total = total - size + new_size;
        replaced += 1;
    }
    replaced
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(v: serde_json::Value) -> ProviderReport {
        ProviderReport::ok(v, 1.0)
    }

    #[test]
    fn largest_entries_go_first_until_it_fits() {
        let mut m = BTreeMap::new();
        m.insert("big".to_owned(), ok(json!("x".repeat(3000))));
        m.insert("medium".to_owned(), ok(json!("y".repeat(1500))));
        m.insert("small".to_owned(), ok(json!(1)));
        assert_eq!(apply(&mut m, 2500), 1);
        assert_eq!(m["big"].status, ProviderStatus::Error);
        assert!(
            m["big"]
                .error
                .as_deref()
                .unwrap()
                .contains("/debug/state/big")
        );
        assert_eq!(m["medium"].status, ProviderStatus::Ok);
        assert_eq!(m["small"].status, ProviderStatus::Ok);
        assert!(serde_json::to_vec(&m).unwrap().len() <= 2500);

        assert_eq!(apply(&mut m, 600), 1, "big is already small");
        assert_eq!(m["medium"].status, ProviderStatus::Error);
        assert_eq!(m["small"].status, ProviderStatus::Ok);
        assert!(serde_json::to_vec(&m).unwrap().len() <= 600);
    }

    #[test]
    fn under_the_cap_nothing_changes() {
        let mut m = BTreeMap::new();
        m.insert("a".to_owned(), ok(json!({"k": [1, 2, 3]})));
        let before = serde_json::to_vec(&m).unwrap();
        assert_eq!(apply(&mut m, before.len()), 0);
        assert_eq!(serde_json::to_vec(&m).unwrap(), before);
    }
}
