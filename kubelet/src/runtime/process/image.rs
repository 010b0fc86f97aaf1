//! The local image catalogue: a folder of image definitions, one YAML file
//! per image (`*.yaml` or `*.yml`), re-read on every lookup so that a file
//! dropped in is seen at once:
//!
//! ```yaml
//! name: capstan/http-echo      # required
//! tag: "1.0"                   # default "latest"
//! entrypoint: [python3, -m, http.server]   # the image's ENTRYPOINT
//! args: ["8080"]               # the image's CMD (default args)
//! env:                         # the image's ENV
//!   - name: GREETING
//!     value: hello
//! workingDir: /srv             # default: rootfs, or "/"
//! rootfs: /var/lib/capstan/rootfs/http-echo   # optional directory
//! ```
//!
//! A reference `name` means `name:latest`. [`Image::command_line`] combines
//! the image with a container's `command`/`args` as Kubernetes does.
//!
//! `rootfs` is not a chroot (that needs privileges and an unsafe
//! `pre_exec`): it is the base of the working directory (`workingDir` is
//! taken inside it) and its `bin` directories are searched first for the
//! executable (prepended to the default `PATH`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::runtime::RuntimeError;

/// One `env` entry of an image definition.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    /// Variable name.
    pub name: String,
    /// Its value.
    #[serde(default)]
    pub value: String,
}

/// An image definition file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageDef {
    /// Repository name, e.g. `capstan/http-echo`.
    pub name: String,
    /// Tag; `latest` when absent.
    #[serde(default = "latest")]
    pub tag: String,
    /// ENTRYPOINT.
    #[serde(default)]
    pub entrypoint: Vec<String>,
    /// CMD.
    #[serde(default)]
    pub args: Vec<String>,
    /// ENV.
    #[serde(default)]
    pub env: Vec<EnvVar>,
    /// WORKDIR.
    #[serde(default)]
    pub working_dir: Option<String>,
    /// Root directory the image's files live in.
    #[serde(default)]
    pub rootfs: Option<PathBuf>,
}

fn latest() -> String {
    "latest".to_string()
}

/// A resolved image: its definition, reference and id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// `name:tag`.
    pub reference: String,
    /// Stable for one definition (a hash of the file's bytes).
    pub id: String,
    /// Size of the definition file.
    pub size: u64,
    /// The definition.
    pub def: ImageDef,
}

impl Image {
    /// The command line Kubernetes runs: no `command` → the image's
    /// entrypoint; no `command` and no `args` → the image's args too;
    /// `args` alone replace the image's args.
    pub fn command_line(&self, command: &[String], args: &[String]) -> Vec<String> {
        combine(Some((&self.def.entrypoint, &self.def.args)), command, args)
    }
}

/// Kubernetes's command/args rules with or without an image.
pub fn combine(
    image: Option<(&[String], &[String])>,
    command: &[String],
    args: &[String],
) -> Vec<String> {
    let (entrypoint, image_args) = image.unwrap_or((&[], &[]));
    match (command.is_empty(), args.is_empty()) {
        (false, _) => command.iter().chain(args).cloned().collect(),
        (true, false) => entrypoint.iter().chain(args).cloned().collect(),
        (true, true) => entrypoint.iter().chain(image_args).cloned().collect(),
    }
}

/// Splits a reference into `(name, tag)`; `name` alone means `latest`. A
/// digest (`@sha256:...`) is refused: the catalogue has none.
pub fn normalize(reference: &str) -> Result<(String, String), RuntimeError> {
    let r = reference.trim();
    let not_found = |why: &str| RuntimeError::ImageNotFound {
        image: reference.to_string(),
        message: why.to_string(),
    };
    if r.is_empty() {
        return Err(not_found("empty image reference"));
    }
    if r.contains('@') {
        return Err(not_found(
            "digest references are not supported by the local catalogue",
        ));
    }
    let last_slash = r.rfind('/').map(|i| i + 1).unwrap_or(0);
    match r[last_slash..].rfind(':') {
        Some(i) => Ok((
            r[..last_slash + i].to_string(),
            r[last_slash + i + 1..].to_string(),
        )),
        None => Ok((r.to_string(), "latest".to_string())),
    }
}

/// What one read of the catalogue folder found.
#[derive(Debug, Default)]
pub struct Catalogue {
    /// `name:tag` → image.
    pub images: BTreeMap<String, Image>,
    /// Files that could not be read or parsed, or that define an image a
    /// second time, with why (reported with lookups, never ignored).
    pub errors: Vec<String>,
}

impl Catalogue {
    /// Reads every `*.yaml`/`*.yml` file in `dir`. A missing folder is an
    /// empty catalogue with an error saying so.
    pub fn load(dir: &Path) -> Self {
        let mut cat = Catalogue::default();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                cat.errors.push(format!(
                    "cannot read image catalogue {}: {e}",
                    dir.display()
                ));
                return cat;
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
            .collect();
        paths.sort();
        for path in paths {
            match read_def(&path) {
                Ok(image) => {
                    if let Some(first) = cat.images.get(&image.reference) {
                        cat.errors.push(format!(
                            "{}: defines {} again (first definition kept, id {})",
                            path.display(),
                            image.reference,
                            first.id
                        ));
                    } else {
                        cat.images.insert(image.reference.clone(), image);
                    }
                }
                Err(e) => cat.errors.push(e),
            }
        }
        cat
    }

    /// The image for `reference`, or `ImageNotFound` saying what the
    /// catalogue holds and which files are broken.
    pub fn resolve(&self, dir: &Path, reference: &str) -> Result<&Image, RuntimeError> {
        let (name, tag) = normalize(reference)?;
        let key = format!("{name}:{tag}");
        self.images.get(&key).ok_or_else(|| {
            let mut message = format!("{key} is not in the image catalogue {}", dir.display());
            if !self.errors.is_empty() {
                message.push_str(&format!(" (broken entries: {})", self.errors.join("; ")));
            }
            RuntimeError::ImageNotFound {
                image: reference.to_string(),
                message,
            }
        })
    }
}

fn read_def(path: &Path) -> Result<Image, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let def: ImageDef =
        serde_yaml_ng::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    if def.name.trim().is_empty() || def.name.contains(['@', ' ']) {
        return Err(format!(
            "{}: invalid image name {:?}",
            path.display(),
            def.name
        ));
    }
    if def.tag.is_empty() || def.tag.contains(['/', ':', '@', ' ']) {
        return Err(format!("{}: invalid tag {:?}", path.display(), def.tag));
    }
    if def.rootfs.as_ref().is_some_and(|r| !r.is_absolute()) {
        return Err(format!(
            "{}: rootfs must be an absolute path",
            path.display()
        ));
    }
    Ok(Image {
        reference: format!("{}:{}", def.name, def.tag),
        id: format!("capstan-image:{:016x}", fnv1a(&bytes)),
        size: bytes.len() as u64,
        def,
    })
}

/// FNV-1a, 64 bits: a stable id for a definition's bytes (not a security
/// digest; the catalogue is trusted local configuration).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn normalizes_references() {
        assert_eq!(
            normalize("busybox").unwrap(),
            ("busybox".into(), "latest".into())
        );
        assert_eq!(normalize("a/b:1.0").unwrap(), ("a/b".into(), "1.0".into()));
        assert_eq!(
            normalize("reg:5000/a/b").unwrap(),
            ("reg:5000/a/b".into(), "latest".into())
        );
        assert!(matches!(
            normalize("a@sha256:00"),
            Err(RuntimeError::ImageNotFound { .. })
        ));
    }

    #[test]
    fn combines_command_and_args_like_kubernetes() {
        let ep = s(&["/bin/ep"]);
        let ia = s(&["--image-arg"]);
        let img = Some((ep.as_slice(), ia.as_slice()));
        assert_eq!(combine(img, &[], &[]), s(&["/bin/ep", "--image-arg"]));
        assert_eq!(combine(img, &[], &s(&["x"])), s(&["/bin/ep", "x"]));
        assert_eq!(combine(img, &s(&["sh"]), &[]), s(&["sh"]));
        assert_eq!(
            combine(img, &s(&["sh"]), &s(&["-c", "true"])),
            s(&["sh", "-c", "true"])
        );
        assert_eq!(combine(None, &[], &s(&["x"])), s(&["x"]));
    }

    #[test]
    fn loads_a_catalogue_and_reports_broken_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("echo.yaml"),
            "name: capstan/http-echo\ntag: \"1.0\"\nentrypoint: [python3]\nargs: [-V]\nenv: [{name: A, value: b}]\nworkingDir: /tmp\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("plain.yml"), "name: plain\n").unwrap();
        std::fs::write(dir.path().join("dup.yaml"), "name: plain\ntag: latest\n").unwrap();
        std::fs::write(dir.path().join("typo.yaml"), "name: t\nentrypiont: [x]\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not an image").unwrap();
        let cat = Catalogue::load(dir.path());
        let echo = cat.resolve(dir.path(), "capstan/http-echo:1.0").unwrap();
        assert_eq!(
            echo.def.env,
            vec![EnvVar {
                name: "A".into(),
                value: "b".into()
            }]
        );
        assert_eq!(echo.command_line(&[], &[]), s(&["python3", "-V"]));
        assert!(echo.id.starts_with("capstan-image:"));
        assert_eq!(
            cat.resolve(dir.path(), "plain").unwrap().reference,
            "plain:latest"
        );
        assert_eq!(cat.errors.len(), 2, "{:?}", cat.errors);
        assert!(
            cat.errors.iter().any(|e| e.contains("entrypiont")),
            "{:?}",
            cat.errors
        );
        assert!(
            cat.errors.iter().any(|e| e.contains("again")),
            "{:?}",
            cat.errors
        );
        match cat.resolve(dir.path(), "capstan/http-echo") {
            Err(RuntimeError::ImageNotFound { image, message }) => {
                assert_eq!(image, "capstan/http-echo");
                assert!(message.contains("capstan/http-echo:latest"), "{message}");
                assert!(message.contains("typo.yaml"), "{message}");
            }
            other => panic!("expected ImageNotFound, got {other:?}"),
        }
    }
}
