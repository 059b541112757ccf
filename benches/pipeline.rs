//! Per-stage micro-benchmarks on real media: `cargo bench --bench pipeline`.

use iobox::testing::RawPixels;
use std::path::PathBuf;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use iobox::anonymize::{Anonymizer, BlurConfig, BlurMethod};
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
        b.iter(|| detector.detect(&room.raw_view(), &mut faces).unwrap())
    });
    detector.detect(&group.raw_view(), &mut faces).unwrap();
    let boxes: Vec<BoxInImage> = faces.iter().map(|f| f.bbox).collect();
    assert!(boxes.len() >= 6);
    let mut anonymizer = Anonymizer::new(BlurConfig { hold_frames: 0, ..BlurConfig::default() });
    let pixels = group.raw_image();
    c.bench_function("gaussian blur of 6 faces, 500x332 photo", |b| {
        b.iter_batched(
            || Frame::from_rgb_image(&pixels, group.meta),
            |f| iobox::testing::anonymize(&mut anonymizer, f, &boxes),
            BatchSize::SmallInput,
        )
    });
}

/// Blur cost against region size: one large face, one small face, ten small faces, on a 1280x720 frame
/// (the group photo scaled up, for real texture). Sides are of the blurred region (the box grown by the
/// default margin).
fn blur_sizes(c: &mut Criterion) {
    let group = still::read(&root().join("tests/data/dlib_faces/2008_002470.jpg")).unwrap();
    let pixels = image::imageops::resize(&group.raw_image(), 1280, 720, image::imageops::Triangle);
    let config = BlurConfig { hold_frames: 0, ..BlurConfig::default() };
    // A face box whose grown region is `side` x `side` pixels.
    let face = |x: f32, y: f32, side: f32| {
        let b = side / (1.0 + 2.0 * config.margin);
        BoxInImage::from_xywh(x + (side - b) / 2.0, y + (side - b) / 2.0, b, b)
    };
    let cases = [
        ("one 400x400 region", vec![face(400.0, 150.0, 400.0)]),
        ("one 40x40 region", vec![face(600.0, 300.0, 40.0)]),
        ("ten 40x40 regions", (0..10).map(|i| face(50.0 + i as f32 * 110.0, 300.0, 40.0)).collect()),
    ];
    for method in [BlurMethod::Gaussian, BlurMethod::Pixelate] {
        for (name, boxes) in &cases {
            let mut anonymizer = Anonymizer::new(BlurConfig { method, ..config });
            c.bench_function(&format!("{method:?} blur, {name}, 1280x720 frame"), |b| {
                b.iter_batched(
                    || Frame::from_rgb_image(&pixels, group.meta),
                    |f| iobox::testing::anonymize(&mut anonymizer, f, boxes),
                    BatchSize::SmallInput,
                )
            });
        }
    }
}

fn perception(c: &mut Criterion) {
    use iobox::infer::emotion::{EmotionClassifier, EmotionConfig};
    use iobox::infer::pose::{PoseConfig, PoseEstimator};
    let models = ModelSource::new(root().join("models"));
    let room = still::read(&root().join("tests/data/coco/000000196141.jpg")).unwrap();
    let mut pose = PoseEstimator::new(&models, PoseConfig::default()).unwrap();
    let mut people = Vec::new();
    c.bench_function("pose (MoveNet, 256 px), 640x429 photo with 4 people", |b| {
        b.iter(|| pose.estimate(&room.raw_view(), &mut people).unwrap())
    });

    let group = still::read(&root().join("tests/data/dlib_faces/2008_002470.jpg")).unwrap();
    let mut detector = FaceDetector::new(&models, FaceConfig::default()).unwrap();
    let mut faces = Vec::new();
    detector.detect(&group.raw_view(), &mut faces).unwrap();
    let one = &faces[..1];
    let all = &faces[..];
    let mut emotion = EmotionClassifier::new(&models, EmotionConfig::default()).unwrap();
    let mut probs = Vec::new();
    c.bench_function("emotion, 1 face", |b| b.iter(|| emotion.classify(&group.raw_view(), one, &mut probs).unwrap()));
    c.bench_function(&format!("emotion, {} faces in one batch", all.len()), |b| {
        b.iter(|| emotion.classify(&group.raw_view(), all, &mut probs).unwrap())
    });
}

/// Tracking cost per frame with N people walking: synthetic boxes (the tracker sees only boxes).
fn tracking(c: &mut Criterion) {
    use iobox::track::{Detection, Tracker, TrackerConfig};
    for n in [1usize, 10, 50] {
        let frames: Vec<Vec<Detection>> = (0..200)
            .map(|t| {
                (0..n)
                    .map(|i| {
                        let row = (i / 10) as f32;
                        let col = (i % 10) as f32;
                        let x = 20.0 + col * 180.0 + t as f32 * 0.5;
                        let y = 20.0 + row * 140.0 + (t as f32 * 0.1).sin() * 3.0;
                        Detection { bbox: BoxInImage::new(x, y, x + 60.0, y + 120.0), score: 0.5 }
                    })
                    .collect()
            })
            .collect();
        let mut tracker = Tracker::new(TrackerConfig::default());
        let mut out = Vec::new();
        for f in frames.iter().take(10) {
            tracker.update(f, &mut out);
        }
        let mut t = 10;
        c.bench_function(&format!("tracking, {n} people"), |b| {
            b.iter(|| {
                tracker.update(&frames[t % frames.len()], &mut out);
                t += 1;
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = stages, blur_sizes, perception, tracking
}
criterion_main!(benches);
