//! Rule test fixtures (`saker test`): the YAML format, and the builder that turns a case's input
//! into what the detection pipeline consumes.
//!
//! A case's input is either a synthetic scenario (a process tree, containers, users, then
//! syscalls) or a slice of a `.scap` capture. Scenarios become real [`saker_event::Event`]s in the
//! encoding the probe and the capture reader produce (current exit-only event ids, parameters as
//! scap stores them), plus the state seed (threads, fds, users, container metadata), so the state
//! engine and every field extractor run exactly as they do live. See docs/testing-rules.md.

mod encode;
mod model;
mod scenario;

pub use model::{
    AuditInput, Case, ContainerSpec, Expect, ExpectFire, FixtureFile, Input, PodSpec, ProcSpec,
    ScapSpec, UserSpec,
};
pub use scenario::{build, Built};

use std::path::{Path, PathBuf};

/// A fixture problem, naming the file, the case and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: case '{case}': {message}")]
    Case {
        file: String,
        case: String,
        message: String,
    },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A fixture file as loaded: where it came from (for messages and relative `.scap` paths).
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The name shown in reports (a path, or `builtin:<file>`).
    pub name: String,
    /// Directory that relative `scap.file` paths are resolved against.
    pub dir: PathBuf,
    pub file: FixtureFile,
}

impl Fixture {
    /// Parses fixture text; `name` labels errors, `dir` anchors relative capture paths.
    pub fn from_str(name: &str, dir: &Path, text: &str) -> Result<Fixture, Error> {
        let file: FixtureFile = serde_norway::from_str(text).map_err(|e| Error::Parse {
            file: name.to_string(),
            message: e.to_string(),
        })?;
        let fx = Fixture {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            file,
        };
        fx.check()?;
        Ok(fx)
    }

    pub fn load(path: &Path) -> Result<Fixture, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        Fixture::from_str(&path.display().to_string(), &dir, &text)
    }

    /// Structural checks that serde cannot express, reported before anything runs.
    fn check(&self) -> Result<(), Error> {
        if self.file.cases.is_empty() {
            return Err(Error::Parse {
                file: self.name.clone(),
                message: "no cases: a fixture file needs a `cases:` list with at least one case"
                    .into(),
            });
        }
        for c in &self.file.cases {
            let err = |m: String| Error::Case {
                file: self.name.clone(),
                case: c.name.clone(),
                message: m,
            };
            c.input().map_err(err)?;
            c.expect
                .resolve(self.file.rule.as_deref())
                .map_err(|m| Error::Case {
                    file: self.name.clone(),
                    case: c.name.clone(),
                    message: m,
                })?;
        }
        Ok(())
    }

    /// Builds one case's input.
    pub fn build(&self, case: &Case) -> Result<Built, Error> {
        scenario::build(case, &self.dir).map_err(|m| Error::Case {
            file: self.name.clone(),
            case: case.name.clone(),
            message: m,
        })
    }
}

/// Fixture files under `path`: the file itself, or a directory's `*.yaml`/`*.yml` files
/// (recursively) in name order.
pub fn fixture_files(path: &Path) -> Result<Vec<PathBuf>, Error> {
    if !path.is_dir() {
        if !path.exists() {
            return Err(Error::Read {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "does not exist"),
            });
        }
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let rd = std::fs::read_dir(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            out.extend(fixture_files(&p)?);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
    Ok(out)
}
