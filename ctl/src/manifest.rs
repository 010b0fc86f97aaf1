//! Reading `-f FILE|DIR|-`: every file (a directory's `.yaml`, `.yml` and
//! `.json` files, sorted; `-` is standard input), every document in it,
//! decoded and checked by [`capstan_proto::decode`]. All sources are read
//! and checked before anything is sent, so one bad document anywhere means
//! nothing is created.

use std::io::Read as _;
use std::path::Path;

use capstan_proto::Object;

use crate::Error;

/// One document read from a source.
#[derive(Debug)]
pub struct Manifest {
    /// Where it came from (a path or `-`).
    pub source: String,
    /// The checked object.
    pub object: Object,
}

/// The files `arg` names: itself, a directory's manifests, or `-`.
fn expand(arg: &str) -> Result<Vec<String>, Error> {
    if arg == "-" {
        return Ok(vec![arg.to_owned()]);
    }
    let path = Path::new(arg);
    if !path.is_dir() {
        return Ok(vec![arg.to_owned()]);
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| Error::Other(format!("cannot read directory {arg}: {e}")))?;
    let mut files: Vec<String> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        })
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::Other(format!(
            "no .yaml, .yml or .json files in directory {arg}"
        )));
    }
    Ok(files)
}

/// Reads and checks every document of every source. On any invalid
/// document, the first invalid source's errors are returned (every field
/// error in it, with paths) and the others are printed to stderr.
pub fn read_all(args: &[String]) -> Result<Vec<Manifest>, Error> {
    let mut out = Vec::new();
    let mut failures = Vec::new();
    for arg in args {
        for file in expand(arg)? {
            let bytes = if file == "-" {
                let mut buf = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut buf)
                    .map_err(|e| Error::Other(format!("cannot read standard input: {e}")))?;
                buf
            } else {
                std::fs::read(&file)
                    .map_err(|e| Error::Other(format!("cannot read {file}: {e}")))?
            };
            match capstan_proto::decode(&bytes) {
                Ok(objects) => out.extend(objects.into_iter().map(|object| Manifest {
                    source: file.clone(),
                    object,
                })),
                Err(error) => failures.push(Error::Invalid {
                    source_name: file.clone(),
                    error,
                }),
            }
        }
    }
    let mut failures = failures.into_iter();
    match failures.next() {
        None => Ok(out),
        Some(first) => {
            for other in failures {
                eprintln!("{other}");
            }
            Err(first)
        }
    }
}
