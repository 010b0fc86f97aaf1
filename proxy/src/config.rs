//! The daemon's configuration file (YAML, camelCase, unknown fields refused).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A configuration that cannot be used, naming the file and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong, naming the field.
    pub message: String,
}

/// What the daemon needs to start.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// The kubeconfig with this component's identity and the apiservers.
    pub kubeconfig: PathBuf,
}

impl Config {
    /// Reads and checks `path`; relative paths inside resolve against its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let err = |message: String| ConfigError {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let mut config: Config = serde_yaml_ng::from_str(&text).map_err(|e| err(e.to_string()))?;
        if let Some(dir) = path.parent()
            && config.kubeconfig.is_relative()
        {
            config.kubeconfig = dir.join(&config.kubeconfig);
        }
        Ok(config)
    }
}
