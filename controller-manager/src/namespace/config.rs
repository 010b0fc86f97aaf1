//! The namespace controller's settings: `namespaceController:` in the
//! configuration file, as Kubernetes's `NamespaceControllerConfiguration`.

use serde::Deserialize;

/// `namespaceController:` in the configuration file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct NamespaceConfig {
    /// Namespaces emptied at once (`--concurrent-namespace-syncs`, 10).
    pub concurrent_namespace_syncs: usize,
}

impl Default for NamespaceConfig {
    fn default() -> Self {
        Self {
            concurrent_namespace_syncs: 10,
        }
    }
}

impl NamespaceConfig {
    /// Checks the values; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.concurrent_namespace_syncs;
        if n == 0 || n > 1000 {
            return Err(format!(
                "namespaceController.concurrentNamespaceSyncs: must be between 1 and 1000, got {n}"
            ));
        }
        Ok(())
    }
}
