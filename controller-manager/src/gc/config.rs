//! The garbage collector's settings: `garbageCollectorController:` in the
//! configuration file, as Kubernetes's `GarbageCollectorControllerConfiguration`.

use serde::Deserialize;

/// `garbageCollectorController:` in the configuration file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct GarbageCollectorConfig {
    /// Whether to run it at all (`--enable-garbage-collector`, true).
    pub enable_garbage_collector: bool,
    /// Objects looked at at once (`--concurrent-gc-syncs`, 20).
    #[serde(rename = "concurrentGCSyncs")]
    pub concurrent_gc_syncs: usize,
}

impl Default for GarbageCollectorConfig {
    fn default() -> Self {
        Self {
            enable_garbage_collector: true,
            concurrent_gc_syncs: 20,
        }
    }
}

impl GarbageCollectorConfig {
    /// Checks the values; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.concurrent_gc_syncs;
        if n == 0 || n > 1000 {
            return Err(format!(
                "garbageCollectorController.concurrentGCSyncs: must be between 1 and 1000, got {n}"
            ));
        }
        Ok(())
    }
}
