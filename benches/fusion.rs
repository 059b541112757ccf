//! Store fusion cost per store frame: 8 cameras, each seeing about 50 people, on one floor plan.
//!
//!   cargo bench --bench fusion
//!
//! The floor is 40 x 20 m, cut into a 4 x 2 grid of 10 x 10 m views, each grown by 1 m on every side so
//! that neighbours overlap. 300 people walk straight at 0.5-1.5 m/s and turn back at the walls. Each camera
//! gives a person a track id on entering its view and ends it on leaving, like its tracker. A store frame is
//! one update per camera at the same time (every 100 ms): the time measured is those 8 updates alone.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use iobox::fuse::{FusionConfig, StoreFusion};
use iobox::geometry::PointOnFloor;
use iobox::track::TrackId;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CAMERAS: usize = 8;
const PEOPLE: usize = 300;
const FRAME_MS: i64 = 100;

struct Store {
    people: Vec<(PointOnFloor, (f64, f64))>,
    views: Vec<(f64, f64, f64, f64)>,
    tracks: Vec<HashMap<usize, TrackId>>,
    next_id: u64,
    seen: Vec<Vec<(TrackId, PointOnFloor)>>,
    ended: Vec<Vec<TrackId>>,
}

impl Store {
    fn new(rng: &mut StdRng) -> Self {
        let people = (0..PEOPLE)
            .map(|_| {
                let p = PointOnFloor { x: rng.random_range(0.0..40.0), y: rng.random_range(0.0..20.0) };
                let (speed, angle) = (rng.random_range(0.5..1.5), rng.random_range(0.0..std::f64::consts::TAU));
                (p, (speed * angle.cos(), speed * angle.sin()))
            })
            .collect();
        let views = (0..CAMERAS)
            .map(|c| {
                let (cx, cy) = ((c % 4) as f64 * 10.0, (c / 4) as f64 * 10.0);
                (cx - 1.0, cx + 11.0, cy - 1.0, cy + 11.0)
            })
            .collect();
        Self {
            people,
            views,
            tracks: vec![HashMap::new(); CAMERAS],
            next_id: 0,
            seen: vec![Vec::new(); CAMERAS],
            ended: vec![Vec::new(); CAMERAS],
        }
    }

    /// Moves everyone on by one frame and fills each camera's seen and ended tracks.
    fn step(&mut self) {
        let dt = FRAME_MS as f64 / 1000.0;
        for (p, v) in &mut self.people {
            p.x += v.0 * dt;
            p.y += v.1 * dt;
            if !(0.0..=40.0).contains(&p.x) {
                v.0 = -v.0;
            }
            if !(0.0..=20.0).contains(&p.y) {
                v.1 = -v.1;
            }
        }
        for c in 0..CAMERAS {
            let (x0, x1, y0, y1) = self.views[c];
            self.seen[c].clear();
            self.ended[c].clear();
            for (i, (p, _)) in self.people.iter().enumerate() {
                if (x0..=x1).contains(&p.x) && (y0..=y1).contains(&p.y) {
                    let id = *self.tracks[c].entry(i).or_insert_with(|| {
                        self.next_id += 1;
                        TrackId(self.next_id)
                    });
                    self.seen[c].push((id, *p));
                } else if let Some(id) = self.tracks[c].remove(&i) {
                    self.ended[c].push(id);
                }
            }
        }
    }
}

fn fusion(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(7);
    let mut store = Store::new(&mut rng);
    let mut fusion = StoreFusion::with_seed(FusionConfig::default(), 7);
    let mut events = Vec::new();
    let mut t = 0i64;
    // Warm up to a steady state: everyone tracked, visits open.
    for _ in 0..100 {
        store.step();
        for cam in 0..CAMERAS {
            fusion.update(cam, t, &store.seen[cam], &store.ended[cam], &mut events);
        }
        t += FRAME_MS;
    }
    let per_camera = store.seen.iter().map(Vec::len).sum::<usize>() as f64 / CAMERAS as f64;
    println!("{CAMERAS} cameras, {per_camera:.0} people per camera on average, {} visits open", fusion.open());
    c.bench_function(&format!("fusion, one store frame: {CAMERAS} cameras x ~50 people"), |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                store.step();
                events.clear();
                let started = Instant::now();
                for cam in 0..CAMERAS {
                    fusion.update(cam, t, &store.seen[cam], &store.ended[cam], &mut events);
                }
                spent += started.elapsed();
                t += FRAME_MS;
            }
            spent
        })
    });
}

criterion_group!(benches, fusion);
criterion_main!(benches);
