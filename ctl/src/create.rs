//! `create -f …` (see [`crate::apply`]) and imperative creation:
//! `create deployment` (see [`crate::create_deployment`]),
//! `create namespace NAME`, `create configmap NAME --from-literal=k=v
//! --from-file=[key=]path` (files that are not UTF-8 go to `binaryData`),
//! `create secret generic NAME` with the same flags and `--type`.

use std::path::Path;

use capstan_proto::Object;
use capstan_proto::api::core::v1::{ConfigMap, Namespace, Secret};
use capstan_proto::api::meta::v1::ObjectMeta;
use clap::{Args, Subcommand};

use crate::dynamic::DynApi;
use crate::{Cli, Context, Error, object_ref};

/// `capctl create`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CreateArgs {
    /// A manifest file, a directory of them, or `-` for standard input.
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR|-")]
    pub filename: Vec<String>,
    /// An object to create from flags.
    #[command(subcommand)]
    pub what: Option<CreateWhat>,
}

/// `capctl create <kind> NAME …`.
#[derive(Debug, Subcommand)]
pub enum CreateWhat {
    /// A namespace.
    #[command(visible_alias = "ns")]
    Namespace {
        /// Its name.
        name: String,
    },
    /// A config map from literals and files.
    #[command(visible_alias = "cm")]
    Configmap {
        /// Its name.
        name: String,
        /// `key=value`, repeatable.
        #[arg(long = "from-literal", value_name = "KEY=VALUE")]
        from_literal: Vec<String>,
        /// `path` (key: the file name) or `key=path`, repeatable; a
        /// directory adds each regular file in it.
        #[arg(long = "from-file", value_name = "[KEY=]PATH")]
        from_file: Vec<String>,
    },
    /// A deployment running the given images (labels app=NAME).
    #[command(visible_alias = "deploy")]
    Deployment(crate::create_deployment::DeploymentArgs),
    /// A secret.
    Secret {
        /// Which kind of secret.
        #[command(subcommand)]
        kind: SecretKind,
    },
}

/// `capctl create secret …`.
#[derive(Debug, Subcommand)]
pub enum SecretKind {
    /// A secret from literals and files.
    Generic {
        /// Its name.
        name: String,
        /// `key=value`, repeatable.
        #[arg(long = "from-literal", value_name = "KEY=VALUE")]
        from_literal: Vec<String>,
        /// `path` (key: the file name) or `key=path`, repeatable; a
        /// directory adds each regular file in it.
        #[arg(long = "from-file", value_name = "[KEY=]PATH")]
        from_file: Vec<String>,
        /// The secret's type.
        #[arg(long = "type", default_value = "Opaque")]
        secret_type: String,
    },
}

fn meta(name: &str) -> Option<ObjectMeta> {
    Some(ObjectMeta {
        name: name.to_owned(),
        ..Default::default()
    })
}

type Data = std::collections::BTreeMap<String, Vec<u8>>;

fn insert(data: &mut Data, key: &str, value: Vec<u8>) -> Result<(), Error> {
    if key.is_empty() {
        return Err(Error::Usage("a data key may not be empty".into()));
    }
    if data.insert(key.to_owned(), value).is_some() {
        return Err(Error::Usage(format!("key {key:?} given more than once")));
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::Other(format!("cannot read {}: {e}", path.display())))
}

/// The keys and values of `--from-literal` and `--from-file` flags.
fn data(literals: &[String], files: &[String]) -> Result<Data, Error> {
    let mut data = Data::new();
    for lit in literals {
        let (k, v) = lit
            .split_once('=')
            .ok_or_else(|| Error::Usage(format!("--from-literal={lit}: expected KEY=VALUE")))?;
        insert(&mut data, k, v.as_bytes().to_vec())?;
    }
    for spec in files {
        let (key, path) = match spec.split_once('=') {
            Some((k, p)) => (Some(k), Path::new(p)),
            None => (None, Path::new(spec.as_str())),
        };
        if path.is_dir() {
            if key.is_some() {
                return Err(Error::Usage(format!(
                    "--from-file={spec}: a key cannot be given for a directory"
                )));
            }
            let mut entries: Vec<_> = std::fs::read_dir(path)
                .map_err(|e| Error::Other(format!("cannot read {}: {e}", path.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            entries.sort();
            for p in entries {
                let k = p
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                insert(&mut data, &k, read(&p)?)?;
            }
        } else {
            let k = match key {
                Some(k) => k.to_owned(),
                None => path
                    .file_name()
                    .ok_or_else(|| Error::Usage(format!("--from-file={spec}: no file name")))?
                    .to_string_lossy()
                    .into_owned(),
            };
            insert(&mut data, &k, read(path)?)?;
        }
    }
    Ok(data)
}

fn config_map(name: &str, literals: &[String], files: &[String]) -> Result<ConfigMap, Error> {
    let mut cm = ConfigMap {
        metadata: meta(name),
        ..Default::default()
    };
    for (k, v) in data(literals, files)? {
        match String::from_utf8(v) {
            Ok(text) => {
                cm.data.insert(k, text);
            }
            Err(e) => {
                cm.binary_data.insert(k, e.into_bytes());
            }
        }
    }
    Ok(cm)
}

/// Runs `capctl create`.
pub async fn create(cli: &Cli, args: &CreateArgs) -> Result<(), Error> {
    let object: Object = match &args.what {
        None if args.filename.is_empty() => {
            return Err(Error::Usage(
                "create needs -f FILE, or a subcommand (deployment, namespace, configmap, secret generic); see `capctl create --help`".into(),
            ));
        }
        None => {
            let ctx = Context::connect(cli)?;
            return crate::apply::apply_or_create(&ctx, &args.filename, true).await;
        }
        Some(CreateWhat::Deployment(deployment)) => {
            return crate::create_deployment::create_deployment(deployment, || {
                Context::connect(cli)
            })
            .await;
        }
        Some(CreateWhat::Namespace { name }) => Namespace {
            metadata: meta(name),
            ..Default::default()
        }
        .into(),
        Some(CreateWhat::Configmap {
            name,
            from_literal,
            from_file,
        }) => config_map(name, from_literal, from_file)?.into(),
        Some(CreateWhat::Secret {
            kind:
                SecretKind::Generic {
                    name,
                    from_literal,
                    from_file,
                    secret_type,
                },
        }) => Secret {
            metadata: meta(name),
            data: data(from_literal, from_file)?,
            r#type: secret_type.clone(),
            ..Default::default()
        }
        .into(),
    };
    let ctx = Context::connect(cli)?;
    let api = DynApi::new(&ctx.client, object.info(), &ctx.namespace);
    api.create(&object).await?;
    println!("{} created", object_ref(&object));
    Ok(())
}
