//! The bundled models match their manifest and load.

use iobox::infer::{Manifest, ModelKind, manifest::sha256_hex};

use crate::common;

#[test]
fn every_bundled_model_matches_its_checksum_and_contract() {
    let manifest = Manifest::bundled().unwrap();
    let models = common::models();
    for kind in [ModelKind::Face, ModelKind::Pose, ModelKind::Emotion] {
        let entry = manifest.entry(kind).unwrap();
        let bytes = std::fs::read(common::root().join("models").join(&entry.file)).unwrap();
        assert_eq!(sha256_hex(&bytes), entry.sha256, "{}", entry.file);
        models.load(kind).unwrap_or_else(|e| panic!("{kind}: {e}"));
    }
}

#[test]
fn the_models_readme_names_each_file_source_and_licence() {
    let readme = std::fs::read_to_string(common::root().join("models/README.md")).unwrap();
    for entry in &Manifest::bundled().unwrap().model {
        assert!(readme.contains(&entry.file), "{} missing from models/README.md", entry.file);
        assert!(readme.contains(&entry.sha256), "sha256 of {} missing from models/README.md", entry.file);
    }
}
