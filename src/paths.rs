//! Finding the files iobox ships with (models, sample footage) from wherever the binary was started.

use std::path::{Path, PathBuf};

/// The first existing `dir/relative` for `dir` in: `$IOBOX_HOME`, the working directory, then the
/// executable's folder and each folder above it (so `target/release/iobox` finds the checkout's files).
pub fn find_upwards(relative: &Path) -> Option<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Some(home) = std::env::var_os("IOBOX_HOME") {
        roots.push(PathBuf::from(home));
    }
    if let Ok(cwd) = std::env::current_dir() {
        roots.push(cwd);
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    roots.into_iter().map(|r| r.join(relative)).find(|p| p.exists())
}
