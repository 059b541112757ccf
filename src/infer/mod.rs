//! ONNX Runtime sessions: the only module that knows `ort`.
//!
//! - [`runtime`]: finds and loads the ONNX Runtime shared library (load-dynamic).
//! - [`manifest`]: the bundled models' contract (file, sha256, inputs, outputs), checked at every load.
//! - [`resize`]: bilinear resampling from a frame straight into a reused input tensor.
//! - [`face`]: RetinaFace-MobileNet0.25 face detection.
//! - [`person`]: NanoDet person detection, tiled for small people.
//! - [`pose`]: MoveNet MultiPose keypoints.
//! - [`emotion`]: facial expression on face crops (mini-Xception).

pub mod emotion;
pub mod face;
pub mod manifest;
pub mod person;
pub mod pose;
pub mod resize;
pub mod runtime;

use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

pub use manifest::{Manifest, ModelKind};

/// Errors at the inference boundary.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "ONNX Runtime shared library not found (looked in: {looked_in}).\n  Run `make setup` to install it into .ort/, or set ORT_DYLIB_PATH (or `onnxruntime` under [runtime] in the config) to the path of libonnxruntime.so 1.31"
    )]
    LibraryNotFound { looked_in: String },
    #[error("ONNX Runtime library {path} could not be loaded: {message}")]
    LibraryLoad { path: PathBuf, message: String },
    #[error("model file {path} not found ({hint})")]
    ModelMissing { path: PathBuf, hint: String },
    #[error(
        "model file {path} is not the bundled {kind} model: sha256 {found}, expected {expected} (the file is damaged or was replaced; restore it with `git checkout models/` or rebuild it with models/export.py)"
    )]
    Checksum { path: PathBuf, kind: ModelKind, expected: String, found: String },
    #[error("model file {path} could not be loaded: {message}")]
    Load { path: PathBuf, message: String },
    #[error("model file {path} does not fit the {kind} contract: {detail}")]
    ModelContract { path: PathBuf, kind: ModelKind, detail: String },
    #[error("{kind} inference failed: {message}")]
    Run { kind: ModelKind, message: String },
    #[error("models/manifest.toml is invalid: {0}")]
    Manifest(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where the models are and how to run them.
#[derive(Debug, Clone)]
pub struct ModelSource {
    /// Folder holding the bundled models.
    pub dir: PathBuf,
    /// Optional replacement files per model; these are checked against the contract but not the checksum.
    pub overrides: Vec<(ModelKind, PathBuf)>,
    /// Threads ONNX Runtime may use inside one session.
    pub intra_threads: usize,
}

impl ModelSource {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), overrides: Vec::new(), intra_threads: default_threads() }
    }

    fn path_of(&self, kind: ModelKind, manifest: &Manifest) -> Result<(PathBuf, bool)> {
        if let Some((_, p)) = self.overrides.iter().find(|(k, _)| *k == kind) {
            return Ok((p.clone(), false));
        }
        let entry = manifest.entry(kind)?;
        Ok((self.dir.join(&entry.file), true))
    }

    /// Loads and checks one model: the checksum (bundled files) and the input/output contract (always).
    pub fn load(&self, kind: ModelKind) -> Result<Session> {
        let (_, env) = runtime::environment(None)?;
        let manifest = Manifest::bundled()?;
        let (path, bundled) = self.path_of(kind, manifest)?;
        let entry = manifest.entry(kind)?;
        let bytes = std::fs::read(&path).map_err(|e| Error::ModelMissing {
            path: path.clone(),
            hint: if bundled {
                format!("{e}; the bundled models live in models/ of the iobox checkout, or set [models] dir")
            } else {
                e.to_string()
            },
        })?;
        if bundled {
            let found = manifest::sha256_hex(&bytes);
            if found != entry.sha256 {
                return Err(Error::Checksum { path, kind, expected: entry.sha256.clone(), found });
            }
        }
        let load_err = |e: ort::Error| Error::Load { path: path.clone(), message: e.to_string() };
        let session = Session::builder(env)
            .map_err(load_err)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| load_err(e.into()))?
            .with_intra_threads(self.intra_threads.max(1))
            .map_err(|e| load_err(e.into()))?
            // Idle ONNX Runtime threads sleep instead of spinning, leaving the cores to the GStreamer
            // decoders and encoders running beside them.
            .with_intra_op_spinning(false)
            .map_err(|e| load_err(e.into()))?
            .commit_from_memory(&bytes)
            .map_err(load_err)?;
        entry.check(&path, &session)?;
        Ok(session)
    }
}

/// Threads for one session: all cores of this box, at least one.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn run_err(kind: ModelKind) -> impl Fn(ort::Error) -> Error {
    move |e| Error::Run { kind, message: e.to_string() }
}

/// Looks for the bundled models folder: `$IOBOX_MODELS`, then `models/` in the working directory, beside
/// the executable, and above it (a cargo `target/` folder inside the checkout).
pub fn find_models_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("IOBOX_MODELS") {
        return Some(PathBuf::from(dir));
    }
    crate::paths::find_upwards(Path::new("models/manifest.toml")).and_then(|p| p.parent().map(Path::to_path_buf))
}
