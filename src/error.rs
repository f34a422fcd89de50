//! Errors by layer: bad input (exit 2) and a failed run (exit 1).

use std::path::PathBuf;

/// A problem with what the user gave us: exit code 2, and nothing written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.render())]
pub struct InputError {
    /// The file, when there is one.
    pub file: Option<PathBuf>,
    /// 1-based line and column, when known.
    pub position: Option<(usize, usize)>,
    /// What was wrong and what was expected.
    pub message: String,
}

impl InputError {
    /// An error about `file` at an optional position.
    pub fn at(
        file: &std::path::Path,
        position: Option<(usize, usize)>,
        message: impl Into<String>,
    ) -> Self {
        InputError {
            file: Some(file.to_path_buf()),
            position,
            message: message.into(),
        }
    }

    /// An error about no file in particular (a bad flag value).
    pub fn general(message: impl Into<String>) -> Self {
        InputError {
            file: None,
            position: None,
            message: message.into(),
        }
    }

    fn render(&self) -> String {
        match (&self.file, self.position) {
            (Some(f), Some((line, col))) => {
                format!("{}:{line}:{col}: {}", f.display(), self.message)
            }
            (Some(f), None) => format!("{}: {}", f.display(), self.message),
            (None, _) => self.message.clone(),
        }
    }
}

/// Why a run stopped without results: exit code 1.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A simulator invariant was violated: a bug. Says how to reproduce it.
    #[error(
        "invariant violated: {what}\n  scenario {scenario}, variant {variant}, seed {seed}\n  reproduce: {command}"
    )]
    Invariant {
        /// The invariant and what broke it.
        what: String,
        /// Scenario name.
        scenario: String,
        /// Variant name.
        variant: String,
        /// The seed of the run.
        seed: u64,
        /// A command line that reproduces it.
        command: String,
    },
    /// A limit on the run was reached.
    #[error("limit reached: {0}")]
    Limit(String),
    /// `sim verify` found broken rules (listed on stdout).
    #[error("{0} violation(s) of the contract's invariants, listed above")]
    Violations(u64),
    /// `sim validate`: rows whose theory lies outside the confidence interval.
    #[error("{0} validation row(s) failed: theory outside the 99% confidence interval")]
    Validation(usize),
    /// An output file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Either kind, for the binary's single exit-code mapping.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Exit 2.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Exit 1.
    #[error(transparent)]
    Run(#[from] RunError),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) => 2,
            Error::Run(_) => 1,
        }
    }
}
