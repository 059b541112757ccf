//! Per-stage micro-benchmarks on real media: `cargo bench --bench pipeline`.

use std::path::PathBuf;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use iobox::anonymize::{Anonymizer, BlurConfig};
use iobox::capture::{Frame, still};
use iobox::geometry::BoxInImage;
use iobox::infer::ModelSource;
use iobox::infer::face::{FaceConfig, FaceDetector};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn stages(c: &mut Criterion) {
    let models = ModelSource::new(root().join("models"));
    let mut detector = FaceDetector::new(&models, FaceConfig::default()).unwrap();
    let room = still::read(&root().join("tests/data/empty_room.jpg")).unwrap();
    let group = still::read(&root().join("tests/data/dlib_faces/2008_002470.jpg")).unwrap();
    let mut faces = Vec::new();

    c.bench_function("face detection, 768x432 frame at 640 px", |b| {
        b.iter(|| detector.detect(&room.view(), &mut faces).unwrap())
    });
    detector.detect(&group.view(), &mut faces).unwrap();
    let boxes: Vec<BoxInImage> = faces.iter().map(|f| f.bbox).collect();
    assert!(boxes.len() >= 6);
    let mut anonymizer = Anonymizer::new(BlurConfig { hold_frames: 0, ..BlurConfig::default() });
    let pixels = group.view().to_rgb_image();
    c.bench_function("gaussian blur of 6 faces, 500x332 photo", |b| {
        b.iter_batched(
            || Frame::from_rgb_image(&pixels, group.meta),
            |f| anonymizer.anonymize(f, &boxes),
            BatchSize::SmallInput,
        )
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = stages
}
criterion_main!(benches);
