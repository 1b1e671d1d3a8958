pub mod docs;
pub mod functions;
pub mod health;
pub mod image;
pub mod infra;
pub mod logs;
pub mod project;
pub mod secrets;
pub mod serve;
pub mod serve_env;
pub mod up;
pub mod worker;

/// A command's failure with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad flags or configuration: exit 2.
    #[error("{0}")]
    Usage(String),
    /// Anything else: exit 1.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Other(_) => 1,
        }
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;
