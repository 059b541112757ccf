//! Finding and loading the ONNX Runtime shared library.
//!
//! iobox links ONNX Runtime dynamically (`ort`'s load-dynamic), so the binary needs `libonnxruntime.so`
//! (1.31) at run time. It looks, in order, at: the path given in the config, `ORT_DYLIB_PATH`, the
//! executable's folder (and its `lib/`), a `.ort/` folder in the checkout that holds the executable (where
//! `make setup` puts it), and the system's library path.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::{Error, Result};

const LIB_NAMES: [&str; 3] = ["libonnxruntime.so", "libonnxruntime.so.1", "libonnxruntime.so.1.31.1"];

/// Why loading failed, kept so every later call reports the same thing.
#[derive(Clone)]
enum Failure {
    NotFound { looked_in: String },
    Load { path: PathBuf, message: String },
}

/// The loaded library and the one environment every session shares (kept alive for the process).
static LOADED: OnceLock<std::result::Result<(PathBuf, ort::environment::Environment), Failure>> = OnceLock::new();

/// Candidate library paths, most specific first.
pub fn candidates(configured: Option<&Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = configured {
        out.push(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        out.push(PathBuf::from(p));
    }
    if let Some(dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf)) {
        for name in LIB_NAMES {
            out.push(dir.join(name));
            out.push(dir.join("lib").join(name));
        }
    }
    for name in LIB_NAMES {
        if let Some(p) = crate::paths::find_upwards(&Path::new(".ort").join(name)) {
            out.push(p);
        }
    }
    for dir in ["/usr/local/lib", "/usr/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"] {
        out.push(Path::new(dir).join("libonnxruntime.so"));
    }
    out
}

/// Loads ONNX Runtime once per process and returns the library's path. Later calls return the first
/// outcome, whatever they pass.
pub fn ensure_loaded(configured: Option<&Path>) -> Result<PathBuf> {
    environment(configured).map(|(path, _)| path.clone())
}

/// The process's ONNX Runtime environment (loading the library first if needed).
pub fn environment(configured: Option<&Path>) -> Result<&'static (PathBuf, ort::environment::Environment)> {
    let outcome = LOADED.get_or_init(|| {
        let tried = candidates(configured);
        let Some(path) = tried.iter().find(|p| p.is_file()).cloned() else {
            let looked_in = tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
            return Err(Failure::NotFound { looked_in });
        };
        let fail = |message: String| Failure::Load { path: path.clone(), message };
        let env = ort::init_from(&path)
            .map_err(|e| fail(e.to_string()))?
            .with_name("iobox")
            .with_telemetry(false)
            .build()
            .map_err(|e| fail(e.to_string()))?;
        tracing::debug!(path = %path.display(), "ONNX Runtime loaded");
        Ok((path, env))
    });
    match outcome {
        Ok(loaded) => Ok(loaded),
        Err(Failure::NotFound { looked_in }) => Err(Error::LibraryNotFound { looked_in: looked_in.clone() }),
        Err(Failure::Load { path, message }) => {
            Err(Error::LibraryLoad { path: path.clone(), message: message.clone() })
        }
    }
}
