//! Fusion on simulated stores: cameras that see rectangles of the floor with their own calibration error,
//! people walking straight lines through them, and a tracker per camera that gives a new id to each
//! person entering its view and ends it on leaving.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use rand::Rng;
use rand::rngs::StdRng;

use super::*;

const FRAME_MS: i64 = 100;

#[derive(Debug, Clone, Copy)]
struct View {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    /// The camera's calibration error: where it puts everyone, off by this much.
    bias: (f64, f64),
}

impl View {
    fn sees(&self, p: PointOnFloor) -> bool {
        (self.x0..=self.x1).contains(&p.x) && (self.y0..=self.y1).contains(&p.y)
    }
}

#[derive(Debug, Clone, Copy)]
struct Walker {
    from: PointOnFloor,
    /// Metres per second.
    velocity: (f64, f64),
    start_ms: i64,
    end_ms: i64,
}

impl Walker {
    fn at(&self, t: i64) -> Option<PointOnFloor> {
        (self.start_ms..=self.end_ms).contains(&t).then(|| {
            let s = (t - self.start_ms) as f64 / 1000.0;
            PointOnFloor { x: self.from.x + self.velocity.0 * s, y: self.from.y + self.velocity.1 * s }
        })
    }
}

/// What a simulated run gave: each walker's store ids (from the `Joined` events of its camera tracks),
/// every event.
struct Outcome {
    stores_of_walker: Vec<HashSet<StoreTrackId>>,
    events: Vec<FusionEvent>,
}

impl Outcome {
    fn started(&self) -> Vec<StoreTrackId> {
        self.events
            .iter()
            .filter_map(|e| if let FusionEvent::Started { store, .. } = e { Some(*store) } else { None })
            .collect()
    }
}

/// Runs `walkers` through `views` frame by frame, with `jitter` metres of noise on every floor point.
fn simulate(config: FusionConfig, views: &[View], walkers: &[Walker], jitter: f64, seed: u64) -> Outcome {
    let mut fusion = StoreFusion::with_seed(config, seed);
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let end = walkers.iter().map(|w| w.end_ms).max().unwrap_or(0) + 1_000;
    let mut next_id = 1u64;
    // Per camera: the camera track of each walker in view.
    let mut tracks: Vec<HashMap<usize, TrackId>> = vec![HashMap::new(); views.len()];
    let mut walker_of: HashMap<(usize, TrackId), usize> = HashMap::new();
    let mut events = Vec::new();
    let mut t = 0;
    while t <= end {
        for (c, view) in views.iter().enumerate() {
            let mut seen = Vec::new();
            let mut ended = Vec::new();
            for (w, walker) in walkers.iter().enumerate() {
                match walker.at(t).filter(|p| view.sees(*p)) {
                    Some(p) => {
                        let id = *tracks[c].entry(w).or_insert_with(|| {
                            next_id += 1;
                            TrackId(next_id)
                        });
                        walker_of.insert((c, id), w);
                        let mut noise = || if jitter > 0.0 { rng.random_range(-jitter..=jitter) } else { 0.0 };
                        let floor = PointOnFloor { x: p.x + view.bias.0 + noise(), y: p.y + view.bias.1 + noise() };
                        seen.push((id, floor));
                    }
                    None => {
                        if let Some(id) = tracks[c].remove(&w) {
                            ended.push(id);
                        }
                    }
                }
            }
            fusion.update(c, t, &seen, &ended, &mut events);
        }
        t += FRAME_MS;
    }
    fusion.finish(&mut events);
    let mut stores_of_walker = vec![HashSet::new(); walkers.len()];
    for e in &events {
        if let FusionEvent::Joined { store, camera, track, .. } = e {
            stores_of_walker[walker_of[&(*camera, *track)]].insert(*store);
        }
    }
    Outcome { stores_of_walker, events }
}

fn p(x: f64, y: f64) -> PointOnFloor {
    PointOnFloor { x, y }
}

/// Two cameras overlapping over x in [4, 6] of a 10 x 4 m floor.
fn overlapping(bias_a: (f64, f64), bias_b: (f64, f64)) -> [View; 2] {
    [
        View { x0: 0.0, x1: 6.0, y0: 0.0, y1: 4.0, bias: bias_a },
        View { x0: 4.0, x1: 10.0, y0: 0.0, y1: 4.0, bias: bias_b },
    ]
}

#[test]
fn one_person_walking_through_two_overlapping_views_is_one_visit() {
    let walker = Walker { from: p(0.5, 2.0), velocity: (1.2, 0.0), start_ms: 0, end_ms: 7_500 };
    let out = simulate(FusionConfig::default(), &overlapping((0.1, 0.0), (-0.1, 0.1)), &[walker], 0.05, 1);
    assert_eq!(out.started().len(), 1, "{:?}", out.events);
    assert_eq!(out.stores_of_walker[0].len(), 1);
    let how: Vec<Joined> = out
        .events
        .iter()
        .filter_map(|e| if let FusionEvent::Joined { how, .. } = e { Some(*how) } else { None })
        .collect();
    assert_eq!(how, [Joined::New, Joined::Overlap]);
    let ended: Vec<_> = out.events.iter().filter(|e| matches!(e, FusionEvent::Ended { .. })).collect();
    assert!(matches!(ended[..], [FusionEvent::Ended { camera_tracks: 2, start_ms: 0, .. }]), "{ended:?}");
}

#[test]
fn a_handover_joins_one_visit_across_a_gap_and_two_waiting_visits_join_none() {
    // Camera 0 sees x in [0, 4], camera 1 x in [6, 10]: a 2 m gap, walked in under 2 s.
    let views = [
        View { x0: 0.0, x1: 4.0, y0: 0.0, y1: 4.0, bias: (0.0, 0.0) },
        View { x0: 6.0, x1: 10.0, y0: 0.0, y1: 4.0, bias: (0.0, 0.0) },
    ];
    let config =
        FusionConfig { adjacency: vec![Adjacency { from: 0, to: 1, within_ms: 4_000 }], ..FusionConfig::default() };
    let one = Walker { from: p(0.5, 2.0), velocity: (1.2, 0.0), start_ms: 0, end_ms: 8_000 };
    let out = simulate(config.clone(), &views, &[one], 0.05, 2);
    assert_eq!(out.started().len(), 1, "{:?}", out.events);
    assert!(out.events.iter().any(|e| matches!(e, FusionEvent::Joined { how: Joined::Handover, .. })));
    // Without the adjacency the two views are two visits.
    let apart = simulate(FusionConfig::default(), &views, &[one], 0.05, 2);
    assert_eq!(apart.started().len(), 2);
    // Two people side by side leave camera 0 together: either could be either on camera 1, so no hand-over
    // is made (four visits rather than two people swapped).
    let two = [one, Walker { from: p(0.5, 1.0), ..one }];
    let out = simulate(config, &views, &two, 0.05, 3);
    assert!(!out.events.iter().any(|e| matches!(e, FusionEvent::Joined { how: Joined::Handover, .. })));
    assert_eq!(out.started().len(), 4);
}

#[test]
fn a_camera_that_stops_reporting_ends_its_tracks() {
    let mut fusion = StoreFusion::with_seed(FusionConfig::default(), 4);
    let mut out = Vec::new();
    fusion.update(0, 0, &[(TrackId(1), p(1.0, 1.0))], &[], &mut out);
    fusion.update(1, 10_000, &[], &[], &mut out);
    assert_eq!(fusion.open(), 0, "{out:?}");
    assert!(matches!(out.last(), Some(FusionEvent::Ended { camera_tracks: 1, .. })));
    // Points that are not numbers are ignored.
    fusion.update(0, 10_100, &[(TrackId(2), p(f64::NAN, 1.0))], &[], &mut out);
    assert_eq!(fusion.open(), 0);
}

fn walker_strategy() -> impl Strategy<Value = Walker> {
    (0.0f64..10.0, 0.0f64..4.0, -1.5f64..1.5, -0.5f64..0.5, 0i64..20_000, 1_000i64..15_000).prop_map(
        |(x, y, vx, vy, start_ms, len)| Walker { from: p(x, y), velocity: (vx, vy), start_ms, end_ms: start_ms + len },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever the people and cameras: every visit's id is new, and every camera track joins exactly one
    /// visit.
    #[test]
    fn store_ids_are_unique(walkers in prop::collection::vec(walker_strategy(), 1..12), seed: u64) {
        let out = simulate(FusionConfig::default(), &overlapping((0.1, -0.1), (-0.1, 0.1)), &walkers, 0.1, seed);
        let started = out.started();
        let distinct: HashSet<_> = started.iter().collect();
        prop_assert_eq!(distinct.len(), started.len());
        let ended = out.events.iter().filter(|e| matches!(e, FusionEvent::Ended { .. })).count();
        prop_assert_eq!(ended, started.len(), "every visit ends");
    }

    /// One person crossing the overlap, at any speed, angle and calibration error within the tolerance,
    /// keeps one store id.
    #[test]
    fn a_person_crossing_an_overlap_keeps_one_store_id(
        y in 0.5f64..3.5, speed in 0.4f64..2.0, drift in -0.2f64..0.2,
        bias in -0.2f64..0.2, jitter in 0.0f64..0.1, leftwards: bool, seed: u64,
    ) {
        let (from, vx) = if leftwards { (p(9.5, y), -speed) } else { (p(0.5, y), speed) };
        let len = (9.0 / speed * 1000.0) as i64;
        let walker = Walker { from, velocity: (vx, drift * speed), start_ms: 0, end_ms: len };
        let out = simulate(FusionConfig::default(), &overlapping((bias, 0.0), (-bias, bias)), &[walker], jitter, seed);
        prop_assert_eq!(out.started().len(), 1, "{:?}", out.events);
    }

    /// Two people passing each other in opposite directions through the overlap, their paths further apart
    /// than the tolerance (plus the noise), are never merged: each keeps one store id of their own.
    #[test]
    fn two_people_passing_apart_are_not_merged(
        y in 0.3f64..1.5, gap in 0.0f64..1.5, speed in 0.5f64..1.8, offset_ms in 0i64..3_000, seed: u64,
    ) {
        let config = FusionConfig::default();
        let jitter = 0.05;
        let separation = config.tolerance_m + 4.0 * jitter + 0.05 + gap;
        let len = (9.0 / speed * 1000.0) as i64;
        let a = Walker { from: p(0.5, y), velocity: (speed, 0.0), start_ms: 0, end_ms: len };
        let b = Walker { from: p(9.5, y + separation), velocity: (-speed, 0.0), start_ms: offset_ms, end_ms: offset_ms + len };
        let out = simulate(config, &overlapping((0.0, 0.0), (0.0, 0.0)), &[a, b], jitter, seed);
        prop_assert_eq!(out.stores_of_walker[0].len(), 1, "{:?}", out.events);
        prop_assert_eq!(out.stores_of_walker[1].len(), 1, "{:?}", out.events);
        prop_assert!(out.stores_of_walker[0].is_disjoint(&out.stores_of_walker[1]));
    }
}

#[test]
fn a_new_id_where_a_camera_just_lost_someone_is_the_same_visit_but_two_at_once_are_two() {
    let mut fusion = StoreFusion::with_seed(FusionConfig::default(), 5);
    let mut out = Vec::new();
    for t in 0..10 {
        fusion.update(0, t * FRAME_MS, &[(TrackId(1), p(1.0 + 0.1 * t as f64, 1.0))], &[], &mut out);
    }
    // The tracker lost track 1 (not ended yet) and found the person again as track 2.
    fusion.update(0, 10 * FRAME_MS, &[(TrackId(2), p(2.05, 1.0))], &[], &mut out);
    assert_eq!(fusion.store_of(0, TrackId(1)), fusion.store_of(0, TrackId(2)), "{out:?}");
    // Two people the camera sees at once, side by side: two visits.
    fusion.update(0, 11 * FRAME_MS, &[(TrackId(2), p(2.1, 1.0)), (TrackId(3), p(2.3, 1.0))], &[], &mut out);
    assert_ne!(fusion.store_of(0, TrackId(2)), fusion.store_of(0, TrackId(3)));
}
