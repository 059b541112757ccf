//! The things iobox does end to end, each a function over the library's modules.
//!
//! - [`blur`]: `iobox blur IN OUT`, offline anonymization of a file.
//! - [`run`]: `iobox run`, the appliance.
//! - [`analyze`]: `iobox analyze`, what the models see, as JSON.
//! - [`heatmap`]: `iobox heatmap`, the floor-plan heatmap picture.
//! - [`calibrate`]: `iobox calibrate overlay`, calibration pictures.
//! - [`report`]: `iobox report`, k-suppressed figures for a store manager; [`export`]: `iobox export`.

pub mod analyze;
pub mod blur;
pub mod calibrate;
pub mod doctor;
pub mod export;
pub mod heatmap;
pub mod report;
pub mod run;
pub mod sync;

/// Errors of a whole job: whichever boundary failed, with its own message.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Capture(#[from] crate::capture::Error),
    #[error(transparent)]
    Infer(#[from] crate::infer::Error),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Chain(#[from] crate::chain::Error),
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    #[error(transparent)]
    Calibration(#[from] crate::calibration::Error),
    #[error(transparent)]
    Picture(#[from] crate::overlay::Error),
    #[error("{0}")]
    Usage(String),
    /// A file that could not be written.
    #[error("{path}: {message}")]
    Output { path: std::path::PathBuf, message: String },
}
