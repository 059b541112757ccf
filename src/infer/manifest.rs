//! The models' contract, from `models/manifest.toml` (compiled into the binary, so the binary always knows
//! what it expects even if the files around it change).

use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

use ort::session::Session;
use ort::value::TensorElementType;
use ort::value::ValueType;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Error, Result};

/// The models iobox runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Face,
    Person,
    Pose,
    Emotion,
}

impl ModelKind {
    /// Every model, in the order a frame meets them.
    pub const ALL: [ModelKind; 4] = [ModelKind::Face, ModelKind::Person, ModelKind::Pose, ModelKind::Emotion];
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModelKind::Face => "face detector",
            ModelKind::Person => "person detector",
            ModelKind::Pose => "pose",
            ModelKind::Emotion => "emotion",
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Dim {
    Fixed(i64),
    Symbolic(String),
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Symbolic(s) => f.write_str(s),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub elem: String,
    pub shape: Vec<Dim>,
}

impl fmt::Display for TensorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims: Vec<String> = self.shape.iter().map(ToString::to_string).collect();
        write!(f, "'{}' {} [{}]", self.name, self.elem, dims.join(","))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub name: ModelKind,
    pub file: String,
    pub sha256: String,
    pub source: String,
    pub licence: String,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub model: Vec<ModelEntry>,
}

impl Manifest {
    /// The manifest this binary was built with.
    pub fn bundled() -> Result<&'static Manifest> {
        static M: OnceLock<std::result::Result<Manifest, String>> = OnceLock::new();
        M.get_or_init(|| toml::from_str(include_str!("../../models/manifest.toml")).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| Error::Manifest(e.clone()))
    }

    pub fn entry(&self, kind: ModelKind) -> Result<&ModelEntry> {
        self.model
            .iter()
            .find(|m| m.name == kind)
            .ok_or_else(|| Error::Manifest(format!("no entry for the {kind} model")))
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn elem_name(t: TensorElementType) -> &'static str {
    match t {
        TensorElementType::Float32 => "float32",
        TensorElementType::Float16 => "float16",
        TensorElementType::Int32 => "int32",
        TensorElementType::Int64 => "int64",
        TensorElementType::Uint8 => "uint8",
        _ => "other",
    }
}

/// A session's input or output as the manifest would write it, for messages.
fn describe(name: &str, ty: &ValueType) -> String {
    match ty {
        ValueType::Tensor { ty, shape, .. } => {
            let dims: Vec<String> =
                shape.iter().map(|d| if *d < 0 { "?".to_string() } else { d.to_string() }).collect();
            format!("'{name}' {} [{}]", elem_name(*ty), dims.join(","))
        }
        other => format!("'{name}' {other:?}"),
    }
}

fn matches(spec: &TensorSpec, ty: &ValueType) -> bool {
    let ValueType::Tensor { ty, shape, .. } = ty else { return false };
    elem_name(*ty) == spec.elem
        && shape.len() == spec.shape.len()
        && shape.iter().zip(&spec.shape).all(|(found, want)| match want {
            // A symbolic dimension must stay symbolic: a model fixed to one size would break callers that
            // choose the input size.
            Dim::Symbolic(_) => *found < 0,
            Dim::Fixed(n) => found == n,
        })
}

impl ModelEntry {
    /// Checks that `session` has exactly the inputs and outputs this entry promises.
    pub fn check(&self, path: &Path, session: &Session) -> Result<()> {
        let contract = |detail: String| Error::ModelContract { path: path.to_path_buf(), kind: self.name, detail };
        for (what, specs, found) in
            [("input", &self.inputs, session.inputs()), ("output", &self.outputs, session.outputs())]
        {
            let found_list = || found.iter().map(|o| describe(o.name(), o.dtype())).collect::<Vec<_>>().join(", ");
            if found.len() != specs.len() {
                return Err(contract(format!(
                    "expected {} {what}s ({}), found {} ({})",
                    specs.len(),
                    specs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
                    found.len(),
                    found_list()
                )));
            }
            for spec in specs.iter() {
                match found.iter().find(|o| o.name() == spec.name) {
                    None => return Err(contract(format!("expected {what} {spec}, found {}", found_list()))),
                    Some(o) if !matches(spec, o.dtype()) => {
                        return Err(contract(format!(
                            "expected {what} {spec}, found {}",
                            describe(o.name(), o.dtype())
                        )));
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_manifest_names_every_model() {
        let m = Manifest::bundled().unwrap();
        for kind in ModelKind::ALL {
            let e = m.entry(kind).unwrap();
            assert_eq!(e.sha256.len(), 64);
            assert!(!e.inputs.is_empty() && !e.outputs.is_empty());
        }
    }
}
