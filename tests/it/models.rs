//! The bundled models match their manifest and load.

use iobox::infer::{Manifest, ModelKind, manifest::sha256_hex};
use iobox::testing::RawPixels;

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

#[test]
fn movenet_with_float16_weights_matches_the_float32_original_within_tolerance() {
    use iobox::infer::pose::{PoseConfig, PoseEstimator};
    let mut pose = PoseEstimator::new(&common::models(), PoseConfig { input_long_side: 256, min_score: 0.25 }).unwrap();
    for name in ["000000040083", "000000196141"] {
        let dir = common::data("pose_reference");
        let frame = iobox::capture::still::read(&dir.join(format!("{name}_256.png"))).unwrap();
        let reference: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}_256.json"))).unwrap()).unwrap();
        let reference: Vec<f32> =
            reference["output_0"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let got = pose.run_raw(&frame.raw_view()).unwrap();
        assert_eq!(got.len(), reference.len());
        let worst = got.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        println!("{name}: largest difference to the float32 model {worst:.2e}");
        // Coordinates and scores are in 0..1: 2e-3 is under a pixel at 512 px.
        assert!(worst < 2e-3, "{name}: {worst}");
    }
}
