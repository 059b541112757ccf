//! Heap allocations per frame in steady state, counted with a counting global allocator:
//! `cargo bench --bench allocations`. Runs the worker's per-frame sequence (faces, pose, emotion, blur,
//! tracking, floor positions) and the behaviour on 300 frames of the bundled clip decoded by the real
//! GStreamer pipeline, and reports allocations made inside that sequence (not by decoding), per stage.
//! Allocations inside ONNX Runtime's C++ code are not Rust allocations and are not counted; those made by
//! the `ort` bindings around each `run` are.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use iobox::anonymize::BlurConfig;
use iobox::behaviour::{Behaviour, BehaviourConfig};
use iobox::calibration::Calibration;
use iobox::capture;
use iobox::infer::ModelSource;
use iobox::stop::Stop;
use iobox::worker::{CameraPerception, Perception, PerceptionConfig, PersonSeen};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn count<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let out = f();
    (out, ALLOCATIONS.load(Ordering::Relaxed) - before)
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut models = ModelSource::new(root.join("models"));
    models.intra_threads = 2;
    let config = PerceptionConfig::default();
    let mut perception = Perception::new(&models, config).unwrap();
    let cal = Calibration::load(&root.join("calibration/sample.toml")).unwrap();
    let mut behaviour = Behaviour::for_calibration(&cal, BehaviourConfig::default()).unwrap();
    let mut cam = CameraPerception::new(BlurConfig::default(), config.tracker, Some(cal));

    let stop = Stop::new();
    let (rx, source) = capture::open_file(&root.join("samples/one-by-one-person-detection.mp4"), &stop).unwrap();
    let (mut process, mut behave) = (Vec::new(), Vec::new());
    let mut observations = Vec::new();
    let mut events = Vec::new();
    let mut n = 0u64;
    while let Ok(frame) = rx.recv() {
        n += 1;
        if n > 400 {
            stop.request();
            continue;
        }
        let at_ms = frame.meta.pts.map(|p| p.as_millis() as i64).unwrap_or(0);
        let (out, a) = count(|| perception.process(frame, &mut cam).unwrap());
        let (_, b) = count(|| {
            observations.clear();
            observations.extend(cam.people.iter().filter_map(PersonSeen::observation));
            behaviour.frame(at_ms, &observations, &mut events);
            for id in &cam.ended {
                behaviour.end_track(*id, &mut events);
            }
            events.clear();
        });
        drop(out);
        // The first 100 frames warm up (buffers grow to their working size, a person appears).
        if n > 100 {
            process.push(a);
            behave.push(b);
        }
    }
    let _ = source.join();
    let frames = process.len();
    let (p50, pmax) = (median(process.clone()), process.iter().copied().max().unwrap_or(0));
    let (b50, bmax) = (median(behave.clone()), behave.iter().copied().max().unwrap_or(0));
    println!("frames measured: {frames} (after 100 warm-up frames of the bundled clip)");
    println!("allocations per frame, perception (faces, pose, emotion, blur, tracking): median {p50}, max {pmax}");
    println!("allocations per frame, behaviour: median {b50}, max {bmax}");
    println!(
        "{{\"frames\": {frames}, \"process_median\": {p50}, \"process_max\": {pmax}, \"behaviour_median\": {b50}, \"behaviour_max\": {bmax}}}"
    );
}
