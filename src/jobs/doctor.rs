//! `iobox doctor`: checks a box before (or while) it runs and says what to fix: GStreamer and its plugins,
//! ONNX Runtime, the models, every camera, the database's disk, the clock, head office.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::config::Config;
use crate::infer::{ModelKind, ModelSource};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

/// One check: what, how it went, what was found, and what to do about it.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: String,
    pub status: Status,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn check(name: &str, status: Status, detail: impl Into<String>, fix: Option<&str>) -> Check {
    Check { check: name.to_string(), status, detail: detail.into(), fix: fix.map(str::to_string) }
}

/// Every check, in order. Nothing is started or written.
pub fn run(config: &Config) -> Vec<Check> {
    let mut out = vec![check("config", Status::Ok, config.origin.clone(), None)];
    // GStreamer.
    match crate::capture::doctor::missing_elements() {
        Ok(missing) if missing.is_empty() => out.push(check(
            "gstreamer",
            Status::Ok,
            format!("{}, every element iobox uses", crate::capture::doctor::gstreamer_version()),
            None,
        )),
        Ok(missing) => {
            let essential = missing.iter().any(|(_, what, _)| *what == "every camera" || *what == "files and cameras");
            let mut packages: Vec<&str> = missing.iter().map(|m| m.2).collect();
            packages.dedup();
            let names: Vec<String> = missing.iter().map(|(e, what, _)| format!("{e} ({what})")).collect();
            out.push(Check {
                check: "gstreamer".into(),
                status: if essential { Status::Fail } else { Status::Warn },
                detail: format!("missing: {}", names.join(", ")),
                fix: Some(format!("apt install {}", packages.join(" "))),
            });
        }
        Err(e) => out.push(check(
            "gstreamer",
            Status::Fail,
            e,
            Some("apt install gstreamer1.0-plugins-base gstreamer1.0-plugins-good"),
        )),
    }
    // ONNX Runtime, then the models.
    match crate::infer::runtime::ensure_loaded(config.onnxruntime.as_deref()) {
        Ok(lib) => {
            out.push(check("onnxruntime", Status::Ok, lib.display().to_string(), None));
            match config.models_dir.clone().or_else(crate::infer::find_models_dir) {
                Some(dir) => {
                    let mut models = ModelSource::new(dir.clone());
                    models.overrides = config.model_overrides.clone();
                    models.intra_threads = 1;
                    for kind in ModelKind::ALL {
                        match models.load(kind) {
                            Ok(_) => out.push(check(&format!("model {kind}"), Status::Ok, dir.display().to_string(), None)),
                            Err(e) => out.push(check(
                                &format!("model {kind}"),
                                Status::Fail,
                                e.to_string(),
                                Some("reinstall the models (models/ of the checkout, /usr/share/iobox/models of the package)"),
                            )),
                        }
                    }
                }
                None => out.push(check("models", Status::Fail, "not found", Some("set [models] dir or IOBOX_MODELS"))),
            }
        }
        Err(e) => out.push(check(
            "onnxruntime",
            Status::Fail,
            e.to_string(),
            Some("scripts/setup.sh demo, or set [runtime] onnxruntime to libonnxruntime.so"),
        )),
    }
    // Cameras.
    for cam in &config.cameras {
        let name = format!("camera '{}'", cam.source.name);
        match crate::capture::doctor::reach(&cam.source, Duration::from_secs(3)) {
            Ok(found) => out.push(check(&name, Status::Ok, found, None)),
            Err(problem) => out.push(check(&name, Status::Fail, problem, Some("fix the camera or its [[camera]] uri"))),
        }
    }
    out.push(disk(&config.store_path));
    out.push(clock());
    if let Some(chain) = &config.chain {
        out.push(head_office(config, chain));
    }
    out
}

fn disk(db: &Path) -> Check {
    let dir = db.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let existing = dir.ancestors().find(|d| d.exists()).unwrap_or(Path::new("/"));
    let Ok(c) = std::ffi::CString::new(existing.as_os_str().as_encoded_bytes()) else {
        return check("disk", Status::Fail, format!("{}: not a path", dir.display()), None);
    };
    // SAFETY: statvfs fills the struct it is given; the path is a valid C string.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return check(
            "disk",
            Status::Fail,
            format!("{}: {}", existing.display(), std::io::Error::last_os_error()),
            None,
        );
    }
    let free = s.f_bavail as u64 * s.f_frsize as u64;
    let mib = free / 1_048_576;
    let writable = {
        let c = std::ffi::CString::new(existing.as_os_str().as_encoded_bytes()).unwrap_or_default();
        // SAFETY: access only reads the path.
        unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
    };
    let detail = format!("{}: {mib} MiB free", existing.display());
    if !writable {
        check(
            "disk",
            Status::Fail,
            format!("{detail}, not writable"),
            Some("make the database's folder writable by the iobox user"),
        )
    } else if mib < 100 {
        check("disk", Status::Fail, detail, Some("free space or set [store] retention_days / max_size_mb"))
    } else if mib < 1024 {
        check("disk", Status::Warn, detail, Some("less than 1 GiB free: set [store] max_size_mb"))
    } else {
        check("disk", Status::Ok, detail, None)
    }
}

fn clock() -> Check {
    let now = crate::clock::system().wall_ms();
    let year = chrono::DateTime::from_timestamp_millis(now).map(|t| chrono::Datelike::year(&t)).unwrap_or(1970);
    if !(2024..2100).contains(&year) {
        return check(
            "clock",
            Status::Fail,
            format!("the clock says {year}"),
            Some("set the time (timedatectl set-ntp true)"),
        );
    }
    let synced = std::process::Command::new("timedatectl")
        .args(["show", "-p", "NTPSynchronized", "--value"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "yes");
    match synced {
        Some(true) => check("clock", Status::Ok, "synchronised (NTP)", None),
        Some(false) => check(
            "clock",
            Status::Warn,
            "not synchronised: stored times drift",
            Some("timedatectl set-ntp true (systemd-timesyncd)"),
        ),
        None => check("clock", Status::Warn, "cannot tell whether it is synchronised (no timedatectl)", None),
    }
}

fn head_office(config: &Config, chain: &crate::config::ChainConfig) -> Check {
    let Some(url) = &chain.url else {
        return check("head office", Status::Ok, "no chain.url: the outbox is kept, nothing sent", None);
    };
    let result = crate::chain::Target::new(url, "chain.url", chain.password_file.as_deref(), chain.ca_file.as_deref())
        .and_then(|t| {
            let mut c = t.connect()?;
            crate::chain::sync::check_binding(&mut c, &t, &chain.store)?;
            Ok(t.label)
        });
    let _ = config;
    match result {
        Ok(label) => check("head office", Status::Ok, format!("{label}, bound to store '{}'", chain.store), None),
        Err(e) => check(
            "head office",
            Status::Fail,
            e.to_string(),
            Some("check [chain] url, password_file and the store's login"),
        ),
    }
}
