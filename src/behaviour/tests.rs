//! Scripted tracks through a small store, and properties of the state machines.
//!
//! The floor (metres, y down):
//! - `door` (Entrance) [0,2]x[0,2], `till` (Queue) [4,6]x[0,2], `shelf` (Shelf) [8,9]x[0,2],
//!   `aisle` (Zone) [4,9]x[4,6];
//! - line `gate` from (3,5) to (3,-5), in-side Right: facing up the plan, `In` is towards +x.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> PolygonOnFloor {
    PolygonOnFloor::new(vec![
        PointOnFloor::new(x0, y0),
        PointOnFloor::new(x1, y0),
        PointOnFloor::new(x1, y1),
        PointOnFloor::new(x0, y1),
    ])
}

fn zones() -> Vec<ZoneSpec> {
    let z = |name: &str, kind, polygon| ZoneSpec { name: name.into(), kind, polygon };
    vec![
        z("door", ZoneKind::Entrance, rect(0.0, 0.0, 2.0, 2.0)),
        z("till", ZoneKind::Queue, rect(4.0, 0.0, 6.0, 2.0)),
        z("shelf", ZoneKind::Shelf, rect(8.0, 0.0, 9.0, 2.0)),
        z("aisle", ZoneKind::Zone, rect(4.0, 4.0, 9.0, 6.0)),
    ]
}

fn lines() -> Vec<LineSpec> {
    vec![LineSpec {
        name: "gate".into(),
        from: PointOnFloor::new(3.0, 5.0),
        to: PointOnFloor::new(3.0, -5.0),
        in_side: Side::Right,
    }]
}

fn behaviour(config: BehaviourConfig) -> Behaviour {
    Behaviour::new(zones(), lines(), config).unwrap()
}

fn p(x: f64, y: f64) -> PointOnFloor {
    PointOnFloor::new(x, y)
}

fn at(track: u64, x: f64, y: f64) -> Observation {
    Observation::at(TrackId(track), p(x, y))
}

/// A scripted input.
enum Step {
    Frame(i64, Vec<Observation>),
    End(u64),
    Flush(i64),
}

fn run(b: &mut Behaviour, script: Vec<Step>) -> Vec<Event> {
    let mut out = Vec::new();
    for step in script {
        match step {
            Step::Frame(t, obs) => b.frame(t, &obs, &mut out),
            Step::End(id) => b.end_track(TrackId(id), &mut out),
            Step::Flush(t) => b.flush(t, &mut out),
        }
    }
    // Tokens are keyed at random per run: check what holds for any key, then clear them so that tests can
    // compare whole events.
    for e in &mut out {
        if let Event::MoodBucket { tracks, tokens, .. } | Event::HeatCell { tracks, tokens, .. } = e {
            assert!(tokens.len() <= *tracks as usize && !tokens.is_empty(), "{tokens:?} for {tracks} tracks");
            assert!(tokens.as_slice().windows(2).all(|w| w[0] < w[1]), "sorted and distinct: {tokens:?}");
            *tokens = TrackTokens::default();
        }
    }
    out
}

/// One track walking in a straight line from `a` to `b`, one frame every `dt` ms from `t0`, `n` steps.
fn walk(track: u64, t0: i64, dt: i64, n: i64, a: (f64, f64), b: (f64, f64)) -> Vec<Step> {
    (0..=n)
        .map(|k| {
            let f = k as f64 / n as f64;
            Step::Frame(t0 + k * dt, vec![at(track, a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f)])
        })
        .collect()
}

/// The same place for `n` + 1 frames.
fn stay(track: u64, t0: i64, dt: i64, n: i64, x: f64, y: f64) -> Vec<Step> {
    walk(track, t0, dt, n, (x, y), (x, y))
}

fn only(events: &[Event], keep: impl Fn(&Event) -> bool) -> Vec<Event> {
    events.iter().filter(|e| keep(e)).cloned().collect()
}

fn n(s: &str) -> Name {
    Name::from(s)
}

/// Only these kinds, so each test reads only what it is about.
fn config_for(pick: impl FnOnce(&mut EventSwitches)) -> BehaviourConfig {
    let mut events = EventSwitches {
        entry_exit: false,
        zones: false,
        lines: false,
        queue: false,
        occupancy: false,
        shelf: false,
        journey: false,
        mood: false,
        heatmap: false,
    };
    pick(&mut events);
    BehaviourConfig { events, ..BehaviourConfig::default() }
}

#[test]
fn entries_start_in_the_entrance_and_exits_end_there() {
    let mut b = behaviour(config_for(|e| e.entry_exit = true));
    let mut script = walk(1, 0, 100, 10, (1.0, 1.0), (5.0, 5.0));
    script.push(Step::End(1));
    script.extend(walk(2, 2000, 100, 10, (5.0, 5.0), (1.0, 1.5)));
    script.push(Step::End(2));
    // Starts and stays in the doorway until the stream stops: an entry, but no exit.
    script.extend(stay(3, 4000, 100, 3, 0.5, 0.5));
    script.push(Step::Flush(5000));
    let out = run(&mut b, script);
    assert_eq!(
        out,
        vec![
            Event::Entry { zone: n("door"), track: TrackId(1), at_ms: 0 },
            Event::Exit { zone: n("door"), track: TrackId(2), at_ms: 3000 },
            Event::Entry { zone: n("door"), track: TrackId(3), at_ms: 4000 },
        ]
    );
}

#[test]
fn zone_stays_are_dated_at_their_first_sample() {
    let mut b = behaviour(config_for(|e| e.zones = true));
    // Into the aisle across x = 4, 3 s inside, out across its right edge (x = 9); 0.2 m per frame.
    let mut script = walk(1, 0, 100, 20, (2.1, 5.0), (6.1, 5.0));
    script.extend(stay(1, 2100, 100, 30, 6.1, 5.0));
    script.extend(walk(1, 5200, 100, 20, (6.1, 5.0), (10.1, 5.0)));
    script.push(Step::End(1));
    let out = run(&mut b, script);
    // First inside sample: x = 4.1 at t = 1000; first outside: x = 9.1 at t = 6700.
    assert_eq!(
        out,
        vec![
            Event::ZoneEntered { zone: n("aisle"), track: TrackId(1), at_ms: 1000 },
            Event::ZoneExited { zone: n("aisle"), track: TrackId(1), at_ms: 6700, dwell_ms: 5700 },
        ]
    );
}

#[test]
fn a_person_on_a_zone_edge_does_not_flap() {
    let mut b = behaviour(config_for(|e| e.zones = true));
    let mut script = stay(1, 0, 100, 10, 5.0, 5.0);
    // Jitter across the aisle's left edge (x = 4) by 10 cm for a minute.
    for k in 0..600 {
        let x = if k % 2 == 0 { 3.9 } else { 4.1 };
        script.push(Step::Frame(1100 + k * 100, vec![at(1, x, 5.0)]));
    }
    script.push(Step::End(1));
    let out = run(&mut b, script);
    assert_eq!(out.len(), 2, "{out:?}");
    // Last seen (inside) at 61 000.
    assert!(matches!(out[1], Event::ZoneExited { at_ms: 61_000, dwell_ms: 61_000, .. }), "{out:?}");
}

#[test]
fn lines_count_in_and_out_through_the_segment_only() {
    let mut b = behaviour(config_for(|e| e.lines = true));
    // In: first sample past x = 3 is x = 3.05 at t = 1000; back out: x = 2.85 at t = 3200.
    let mut script = walk(1, 0, 100, 20, (1.05, 1.0), (5.05, 1.0));
    script.extend(walk(1, 2100, 100, 20, (5.05, 1.0), (1.05, 1.0)));
    script.extend(walk(2, 0, 100, 20, (1.0, 8.0), (5.0, 8.0))); // past the end of the line: nothing
    let out = run(&mut b, script);
    assert_eq!(
        out,
        vec![
            Event::LineCrossed { line: n("gate"), track: TrackId(1), direction: Direction::In, at_ms: 1000 },
            Event::LineCrossed { line: n("gate"), track: TrackId(1), direction: Direction::Out, at_ms: 3200 },
        ]
    );
}

#[test]
fn queue_and_occupancy_are_sampled_on_aligned_periods() {
    let mut b = behaviour(config_for(|e| {
        e.queue = true;
        e.occupancy = true;
    }));
    let mut script = Vec::new();
    for k in 0..=110 {
        let t = 100 * k;
        let mut obs = vec![at(1, 5.0, 1.0)];
        if t >= 2000 {
            obs.push(at(2, 5.5, 1.5));
        }
        script.push(Step::Frame(t, obs));
    }
    let out = run(&mut b, script);
    let queue = only(&out, |e| matches!(e, Event::QueueSample { .. }));
    assert_eq!(
        queue,
        vec![
            Event::QueueSample { zone: n("till"), at_ms: 5000, length: 2, mean_wait_ms: 4000, max_wait_ms: 5000 },
            Event::QueueSample { zone: n("till"), at_ms: 10000, length: 2, mean_wait_ms: 9000, max_wait_ms: 10000 },
        ]
    );
    let occupancy = only(&out, |e| matches!(e, Event::Occupancy { at_ms: 5000, .. }));
    assert_eq!(
        occupancy,
        ["door", "till", "shelf", "aisle"]
            .iter()
            .map(|z| Event::Occupancy { zone: n(z), at_ms: 5000, count: u32::from(*z == "till") * 2 })
            .collect::<Vec<_>>()
    );
}

#[test]
fn shelf_interactions_need_a_wrist_in_the_shelf_within_reach() {
    let mut b = behaviour(config_for(|e| e.shelf = true));
    let mut script = Vec::new();
    for k in 0..=40 {
        let t = 100 * k;
        // Track 1 stands 0.5 m from the shelf and reaches in from t = 1000 to 2000 (a 200 ms slip at 1500).
        let reaching = (1000..2000).contains(&t) && t != 1500 && t != 1600;
        let mut o = at(1, 7.5, 1.0);
        o.right_wrist = Some(if reaching { p(8.2, 1.0) } else { p(7.6, 1.0) });
        // Track 2's wrist is in the shelf polygon but its feet are 3 m away: a projection artefact, no reach.
        let mut far = at(2, 5.0, 1.0);
        far.left_wrist = Some(p(8.5, 1.0));
        // Track 3 brushes the shelf for 200 ms: too short.
        let mut brush = at(3, 9.5, 1.0);
        brush.left_wrist = (t == 1000 || t == 1100).then(|| p(8.8, 1.0));
        script.push(Step::Frame(t, vec![o, far, brush]));
    }
    let out = run(&mut b, script);
    assert_eq!(
        out,
        vec![Event::ShelfInteraction { zone: n("shelf"), track: TrackId(1), start_ms: 1000, duration_ms: 1000 }]
    );
}

#[test]
fn journeys_list_confirmed_zones_in_order_without_repeats() {
    let mut b = behaviour(config_for(|e| e.journey = true));
    let mut script = stay(1, 0, 100, 10, 1.0, 1.0); // door
    script.extend(walk(1, 1100, 100, 5, (1.0, 1.0), (5.0, 1.0))); // through the gap: not in a zone
    script.extend(stay(1, 1700, 100, 10, 5.0, 1.0)); // till
    script.extend(stay(1, 2800, 100, 1, 3.0, 1.0)); // out for 100 ms: still the till
    script.extend(stay(1, 3000, 100, 10, 5.0, 1.0));
    script.extend(stay(1, 4100, 100, 20, 3.0, 3.0)); // out
    script.extend(stay(1, 6200, 100, 10, 5.0, 5.0)); // aisle
    script.extend(stay(1, 7300, 100, 20, 5.0, 1.0)); // till again
    script.push(Step::End(1));
    script.extend(stay(2, 10_000, 100, 3, 3.0, 3.0)); // a passer-by, in no zone
    script.push(Step::Flush(20_000));
    let out = run(&mut b, script);
    assert_eq!(
        out,
        vec![
            Event::Journey {
                track: TrackId(1),
                zones: vec![n("door"), n("till"), n("aisle"), n("till")],
                start_ms: 0,
                end_ms: 9300
            },
            Event::Journey { track: TrackId(2), zones: vec![], start_ms: 10_000, end_ms: 10_300 },
        ]
    );
}

#[test]
fn mood_is_a_histogram_per_zone_and_bucket() {
    let config = BehaviourConfig { mood_bucket_ms: 10_000, ..config_for(|e| e.mood = true) };
    let mut b = behaviour(config);
    let happy = [0.0, 0.0, 0.0, 0.9, 0.0, 0.0, 0.1];
    let sad = [0.0, 0.0, 0.0, 0.1, 0.8, 0.0, 0.1];
    let mut script = Vec::new();
    for k in 0..=120 {
        let t = 100 * k;
        let mut a = at(1, 5.0, 5.0); // in the aisle from t = 0 (confirmed at 500)
        a.emotion = Some(Mood::Read(if k % 4 == 0 { sad } else { happy }));
        let mut outside = at(2, 3.0, 3.0); // in no zone: never counted
        outside.emotion = Some(Mood::Read(sad));
        // A face that could not be read, or probabilities that are not numbers: counted as uncertain.
        let mut unreadable = at(3, 6.0, 5.0);
        unreadable.emotion = Some(if k % 2 == 0 { Mood::Read([f32::NAN; 7]) } else { Mood::Uncertain });
        let faceless = at(4, 6.0, 6.0); // no face seen: neither read nor uncertain
        script.push(Step::Frame(t, vec![a, outside, unreadable, faceless]));
    }
    script.push(Step::Flush(12_100));
    let out = run(&mut b, script);
    // Bucket [0, 10 000): frames 0..=99, of which 5..=99 count (the stay is confirmed at 500 ms): 95 frames,
    // k % 4 == 0 for 8..=96 step 4 = 23 sad, 72 happy. Bucket [10 000, 20 000): frames 100..=120: 6 sad, 15 happy.
    assert_eq!(
        out,
        vec![
            Event::MoodBucket {
                zone: n("aisle"),
                bucket_start_ms: 0,
                counts: [0, 0, 0, 72, 23, 0, 0],
                samples: 95,
                uncertain: 95,
                tracks: 2,
                tokens: TrackTokens::default(),
            },
            Event::MoodBucket {
                zone: n("aisle"),
                bucket_start_ms: 10_000,
                counts: [0, 0, 0, 15, 6, 0, 0],
                samples: 21,
                uncertain: 21,
                tracks: 2,
                tokens: TrackTokens::default(),
            },
        ]
    );
}

#[test]
fn heat_cells_count_presence_dwell_and_distinct_tracks() {
    let heat = |bucket_start_ms, presence, dwell_ms, tracks| Event::HeatCell {
        bucket_start_ms,
        cx: 0,
        cy: 0,
        presence,
        dwell_ms,
        tracks,
        tokens: TrackTokens::default(),
    };
    let config = BehaviourConfig { heat_bucket_ms: 1_000, ..config_for(|e| e.heatmap = true) };
    let mut b = behaviour(config);
    let mut script = Vec::new();
    for k in 0..=14 {
        let t = 100 * k;
        let mut obs = vec![at(1, 0.2, 0.2)];
        if k < 5 {
            obs.push(at(2, 0.4, 0.1));
        }
        script.push(Step::Frame(t, obs));
    }
    script.push(Step::Flush(1_500));
    let out = run(&mut b, script);
    assert_eq!(
        out,
        vec![
            // [0, 1000): track 1 ten frames, 1000 ms (the 900..1000 interval lands with the 900 sample);
            // track 2 five frames, 400 ms.
            heat(0, 15, 1400, 2),
            heat(1000, 5, 400, 1),
        ]
    );
}

#[test]
fn heat_dwell_bridges_at_most_the_max_gap() {
    let config = BehaviourConfig { heat_bucket_ms: 100_000, ..config_for(|e| e.heatmap = true) };
    let mut b = behaviour(config);
    let out = run(
        &mut b,
        vec![Step::Frame(0, vec![at(1, 0.2, 0.2)]), Step::Frame(10_000, vec![at(1, 0.2, 0.2)]), Step::Flush(10_000)],
    );
    assert!(matches!(out[..], [Event::HeatCell { presence: 2, dwell_ms: 2000, .. }]), "{out:?}");
}

/// A busy script touching every kind.
fn busy() -> Vec<Step> {
    let mut script = Vec::new();
    for k in 0..=200 {
        let t = 100 * k;
        let f = k as f64 / 200.0;
        let mut a = at(1, 1.0 + 7.0 * f, 1.0); // door -> till -> shelf, across the gate
        a.right_wrist = Some(p(8.5, 1.0));
        a.emotion = Some(Mood::Read([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]));
        let b = at(2, 5.0, 1.0); // waits in the till
        script.push(Step::Frame(t, vec![a, b]));
    }
    script.push(Step::End(1));
    script.push(Step::Flush(20_100));
    script
}

#[test]
fn every_kind_can_be_switched_off() {
    let everything = run(&mut behaviour(BehaviourConfig::default()), busy());
    let kinds = |events: &[Event]| {
        let mut k: Vec<_> = events.iter().map(std::mem::discriminant).collect();
        k.dedup();
        k.len()
    };
    assert!(kinds(&everything) >= 8, "{everything:?}");
    let none = config_for(|_| {});
    assert_eq!(run(&mut behaviour(none), busy()), vec![]);

    type Pick = fn(&mut EventSwitches);
    type Kind = fn(&Event) -> bool;
    let cases: [(Pick, Kind); 9] = [
        (|e| e.entry_exit = false, |e| matches!(e, Event::Entry { .. } | Event::Exit { .. })),
        (|e| e.zones = false, |e| matches!(e, Event::ZoneEntered { .. } | Event::ZoneExited { .. })),
        (|e| e.lines = false, |e| matches!(e, Event::LineCrossed { .. })),
        (|e| e.queue = false, |e| matches!(e, Event::QueueSample { .. })),
        (|e| e.occupancy = false, |e| matches!(e, Event::Occupancy { .. })),
        (|e| e.shelf = false, |e| matches!(e, Event::ShelfInteraction { .. })),
        (|e| e.journey = false, |e| matches!(e, Event::Journey { .. })),
        (|e| e.mood = false, |e| matches!(e, Event::MoodBucket { .. })),
        (|e| e.heatmap = false, |e| matches!(e, Event::HeatCell { .. })),
    ];
    for (off, kind) in cases {
        let mut events = EventSwitches::default();
        off(&mut events);
        let out = run(&mut behaviour(BehaviourConfig { events, ..BehaviourConfig::default() }), busy());
        assert!(everything.iter().any(kind), "the busy script should produce every kind");
        assert_eq!(out, only(&everything, |e| !kind(e)));
    }
}

#[test]
fn flush_closes_stays_interactions_journeys_and_buckets() {
    let mut b = behaviour(BehaviourConfig::default());
    let mut script = Vec::new();
    for k in 0..=20 {
        let mut o = at(7, 7.8, 1.0);
        o.right_wrist = Some(p(8.3, 1.0));
        script.push(Step::Frame(100 * k, vec![o]));
    }
    script.push(Step::Flush(2_500));
    let out = run(&mut b, script);
    assert!(out.contains(&Event::ShelfInteraction {
        zone: n("shelf"),
        track: TrackId(7),
        start_ms: 0,
        duration_ms: 2000
    }));
    assert!(out.contains(&Event::Journey { track: TrackId(7), zones: vec![], start_ms: 0, end_ms: 2000 }));
    assert!(out.iter().any(|e| matches!(e, Event::HeatCell { .. })));
    assert_eq!(b.live_tracks(), 0);

    // A stay open at the end closes at the last sample.
    let out = run(
        &mut b,
        vec![Step::Frame(0, vec![at(1, 5.0, 5.0)]), Step::Frame(900, vec![at(1, 5.0, 5.0)]), Step::Flush(1000)],
    );
    assert!(out.contains(&Event::ZoneExited { zone: n("aisle"), track: TrackId(1), at_ms: 900, dwell_ms: 900 }));
}

#[test]
fn late_frames_and_broken_points_are_counted_and_ignored() {
    let mut b = behaviour(BehaviourConfig::default());
    let mut out = Vec::new();
    b.frame(1000, &[at(1, 1.0, 1.0)], &mut out);
    b.frame(900, &[at(1, 5.0, 5.0)], &mut out);
    b.frame(1100, &[at(2, f64::NAN, 1.0)], &mut out);
    assert_eq!(b.counters(), Counters { frames_out_of_order: 1, observations_rejected: 1 });
    assert_eq!(b.live_tracks(), 1);
}

#[test]
fn bad_zones_lines_and_configs_are_refused() {
    let bowtie = PolygonOnFloor::new(vec![p(0.0, 0.0), p(2.0, 2.0), p(2.0, 0.0), p(0.0, 2.0)]);
    let zone = |name: &str, polygon| ZoneSpec { name: name.into(), kind: ZoneKind::Zone, polygon };
    let err = |zs, ls, c| Behaviour::new(zs, ls, c).unwrap_err();
    assert_eq!(
        err(vec![zone("x", bowtie)], vec![], BehaviourConfig::default()),
        Error::ZonePolygon { name: "x".into() }
    );
    assert_eq!(
        err(
            vec![zone("x", rect(0.0, 0.0, 1.0, 1.0)), zone("x", rect(2.0, 0.0, 3.0, 1.0))],
            vec![],
            BehaviourConfig::default()
        ),
        Error::DuplicateName { what: "zone", name: "x".into() }
    );
    assert_eq!(
        err(vec![zone("", rect(0.0, 0.0, 1.0, 1.0))], vec![], BehaviourConfig::default()),
        Error::EmptyName { what: "zone" }
    );
    let dot = LineSpec { name: "l".into(), from: p(1.0, 1.0), to: p(1.0, 1.0), in_side: Side::Left };
    assert_eq!(err(vec![], vec![dot], BehaviourConfig::default()), Error::DegenerateLine { name: "l".into() });
    let bad = BehaviourConfig { cell_m: 0.0, ..BehaviourConfig::default() };
    assert!(matches!(err(vec![], vec![], bad), Error::Config { field: "cell_m", .. }));
    let bad = BehaviourConfig { queue_sample_ms: 0, ..BehaviourConfig::default() };
    assert!(matches!(err(vec![], vec![], bad), Error::Config { field: "queue_sample_ms", .. }));
}

/// (d) Events carry only ids, names, times, counts and grid cells: this match names every field of every
/// variant with its type, so adding a field of any other type (a coordinate, a score, pixels) fails to compile.
/// A check at compile time: nothing needs to call it.
const _: fn(&Event) = only_ids_names_times_counts;

fn only_ids_names_times_counts(e: &Event) {
    fn id(_: &TrackId) {}
    fn name(_: &Name) {}
    fn ms(_: &i64) {}
    fn count(_: &u32) {}
    fn cell(_: &i32) {}
    fn direction(_: &Direction) {}
    fn token(_: &TrackTokens) {}
    match e {
        Event::Entry { zone, track, at_ms }
        | Event::Exit { zone, track, at_ms }
        | Event::ZoneEntered { zone, track, at_ms } => {
            name(zone);
            id(track);
            ms(at_ms);
        }
        Event::ZoneExited { zone, track, at_ms, dwell_ms } => {
            name(zone);
            id(track);
            ms(at_ms);
            ms(dwell_ms);
        }
        Event::LineCrossed { line, track, direction: d, at_ms } => {
            name(line);
            id(track);
            direction(d);
            ms(at_ms);
        }
        Event::QueueSample { zone, at_ms, length, mean_wait_ms, max_wait_ms } => {
            name(zone);
            ms(at_ms);
            count(length);
            ms(mean_wait_ms);
            ms(max_wait_ms);
        }
        Event::Occupancy { zone, at_ms, count: c } => {
            name(zone);
            ms(at_ms);
            count(c);
        }
        Event::ShelfInteraction { zone, track, start_ms, duration_ms } => {
            name(zone);
            id(track);
            ms(start_ms);
            ms(duration_ms);
        }
        Event::Journey { track, zones, start_ms, end_ms } => {
            id(track);
            zones.iter().for_each(name);
            ms(start_ms);
            ms(end_ms);
        }
        Event::MoodBucket { zone, bucket_start_ms, counts, samples, uncertain, tracks, tokens } => {
            name(zone);
            ms(bucket_start_ms);
            counts.iter().for_each(count);
            count(samples);
            count(uncertain);
            count(tracks);
            token(tokens);
        }
        Event::HeatCell { bucket_start_ms, cx, cy, presence, dwell_ms, tracks, tokens } => {
            ms(bucket_start_ms);
            cell(cx);
            cell(cy);
            count(presence);
            ms(dwell_ms);
            count(tracks);
            token(tokens);
        }
    }
}

// ---- properties ----

/// Along-line positions stay well inside the `gate` segment (y in [-5, 5]), so every side change is a crossing.
fn gate_path() -> impl Strategy<Value = Vec<(f64, f64, i64)>> {
    // (offset from the line in x, y, dt)
    (-2.0f64..2.0, prop::collection::vec((-0.4f64..0.4, -0.3f64..0.3, 1i64..300), 1..150)).prop_map(|(x0, steps)| {
        let (mut x, mut y, mut t) = (x0, 0.0, 0);
        steps
            .into_iter()
            .map(|(dx, dy, dt)| {
                x = (x + dx).clamp(-3.0, 3.0);
                y = (y + dy).clamp(-4.0, 4.0);
                t += dt;
                (x, y, t)
            })
            .collect()
    })
}

/// Runs one track along `path` (x relative to the gate at x = 3) and returns its crossings.
fn crossings(path: &[(f64, f64, i64)]) -> Vec<Direction> {
    let mut b = behaviour(config_for(|e| e.lines = true));
    let mut out = Vec::new();
    for &(x, y, t) in path {
        b.frame(t, &[at(1, 3.0 + x, y)], &mut out);
    }
    b.end_track(TrackId(1), &mut out);
    out.iter()
        .map(|e| match e {
            Event::LineCrossed { direction, .. } => *direction,
            other => panic!("{other:?}"),
        })
        .collect()
}

/// Frames of a scripted run: (time, [(track, x, y)]).
type Walks = Vec<(i64, Vec<(u64, f64, f64)>)>;

/// Random walks of a few tracks over the whole floor, with the times of their frames.
fn floor_walks() -> impl Strategy<Value = Walks> {
    let track = (-1.0f64..11.0, -1.0f64..7.0, prop::collection::vec((-0.7f64..0.7, -0.7f64..0.7), 1..120));
    (prop::collection::vec(track, 1..4), prop::collection::vec(1i64..400, 120)).prop_map(|(tracks, dts)| {
        let mut t = 0;
        let times: Vec<i64> = dts
            .iter()
            .map(|dt| {
                t += dt;
                t
            })
            .collect();
        let positions: Vec<Vec<(f64, f64)>> = tracks
            .into_iter()
            .map(|(x0, y0, steps)| {
                let (mut x, mut y) = (x0, y0);
                steps
                    .into_iter()
                    .map(|(dx, dy)| {
                        x += dx;
                        y += dy;
                        (x, y)
                    })
                    .collect()
            })
            .collect();
        times
            .iter()
            .enumerate()
            .map(|(k, &t)| {
                let obs = positions
                    .iter()
                    .enumerate()
                    .filter_map(|(id, path)| path.get(k).map(|&(x, y)| (id as u64, x, y)))
                    .collect();
                (t, obs)
            })
            .collect()
    })
}

/// Feeds `walks`, ending each track after the last frame it appears in, then flushes.
fn run_walks(b: &mut Behaviour, walks: &Walks) -> Vec<Event> {
    let mut out = Vec::new();
    let mut obs = Vec::new();
    for (k, (t, tracks)) in walks.iter().enumerate() {
        obs.clear();
        obs.extend(tracks.iter().map(|&(id, x, y)| at(id, x, y)));
        b.frame(*t, &obs, &mut out);
        for &(id, _, _) in tracks {
            if !walks.get(k + 1).is_some_and(|(_, next)| next.iter().any(|o| o.0 == id)) {
                b.end_track(TrackId(id), &mut out);
            }
        }
    }
    b.flush(walks.last().map_or(0, |w| w.0), &mut out);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// (a) Crossings alternate, the first goes away from the side the track was first seen on (beyond the
    /// hysteresis), and their number is the number of times the track changed side beyond the hysteresis.
    #[test]
    fn line_crossings_alternate_and_match_side_changes(path in gate_path()) {
        let h = BehaviourConfig::default().line_hysteresis_m;
        let sides: Vec<bool> = path.iter().filter(|(x, _, _)| x.abs() > h).map(|(x, _, _)| *x > 0.0).collect();
        let changes = sides.windows(2).filter(|w| w[0] != w[1]).count();
        let got = crossings(&path);
        prop_assert_eq!(got.len(), changes);
        for (k, d) in got.iter().enumerate() {
            let towards_in = (k % 2 == 0) != sides[0];
            prop_assert_eq!(*d, if towards_in { Direction::In } else { Direction::Out });
        }
        if let (Some(first), Some(last)) = (sides.first(), sides.last()) {
            prop_assert_eq!(got.len() % 2 == 1, first != last);
        }
    }

    /// (a) A walk up to the line, a stretch of jitter smaller than the hysteresis around it, and away again:
    /// one crossing if it left on the other side, none otherwise.
    #[test]
    fn jitter_on_a_line_never_counts(
        noise in prop::collection::vec(-0.149f64..0.149, 1..200),
        start_in in any::<bool>(),
        end_in in any::<bool>(),
    ) {
        let side = |inside: bool| if inside { 1.0 } else { -1.0 };
        let mut path = vec![(side(start_in), 0.0, 0)];
        path.extend(noise.iter().enumerate().map(|(k, dx)| (*dx, 0.01 * k as f64, 100 * (k as i64 + 1))));
        path.push((side(end_in), 1.0, 100 * (noise.len() as i64 + 1)));
        let got = crossings(&path);
        let expected = if start_in == end_in { vec![] } else if end_in { vec![Direction::In] } else { vec![Direction::Out] };
        prop_assert_eq!(got, expected);
    }

    /// (b) Per (track, zone), enters and exits alternate starting with an enter, every stay is closed by the
    /// end, and each exit's dwell is its time minus its enter's time, never negative.
    #[test]
    fn zone_stays_alternate_and_dwell_is_exit_minus_enter(
        walks in floor_walks(),
        enter_ms in 0i64..1500,
        exit_ms in 0i64..2000,
        margin_m in 0.0f64..1.5,
    ) {
        let config = BehaviourConfig { enter_ms, exit_ms, margin_m, ..config_for(|e| e.zones = true) };
        let out = run_walks(&mut behaviour(config), &walks);
        let mut open: HashMap<(TrackId, Name), i64> = HashMap::new();
        for e in &out {
            match e {
                Event::ZoneEntered { zone, track, at_ms } => {
                    prop_assert!(open.insert((*track, zone.clone()), *at_ms).is_none(), "entered twice: {:?}", e);
                }
                Event::ZoneExited { zone, track, at_ms, dwell_ms } => {
                    let entered = open.remove(&(*track, zone.clone()));
                    prop_assert!(entered.is_some(), "exit without entry: {:?}", e);
                    prop_assert!(*dwell_ms >= 0);
                    prop_assert_eq!(*dwell_ms, at_ms - entered.unwrap());
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }
        prop_assert!(open.is_empty(), "left open: {:?}", open);
    }

    /// (c) With no inertia, the dwell per (track, zone) is within one frame interval of the time inside
    /// measured from the samples (each sample inside counts until the next sample).
    #[test]
    fn dwell_matches_time_inside_without_inertia(walks in floor_walks()) {
        let config = BehaviourConfig { enter_ms: 0, exit_ms: 0, ..config_for(|e| e.zones = true) };
        let out = run_walks(&mut behaviour(config), &walks);
        let mut dwell: HashMap<(u64, String), i64> = HashMap::new();
        for e in &out {
            if let Event::ZoneExited { zone, track, dwell_ms, .. } = e {
                *dwell.entry((track.0, zone.to_string())).or_default() += dwell_ms;
            }
        }
        let mut truth: HashMap<(u64, String), i64> = HashMap::new();
        let mut last: HashMap<u64, (i64, f64, f64)> = HashMap::new();
        let max_dt = walks.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap_or(0);
        for (t, obs) in &walks {
            for &(id, x, y) in obs {
                if let Some((t0, x0, y0)) = last.insert(id, (*t, x, y)) {
                    for z in zones() {
                        if z.polygon.contains(p(x0, y0)) {
                            *truth.entry((id, z.name.clone())).or_default() += t - t0;
                        }
                    }
                }
            }
        }
        for key in dwell.keys().chain(truth.keys()) {
            let (d, g) = (dwell.get(key).copied().unwrap_or(0), truth.get(key).copied().unwrap_or(0));
            prop_assert!((d - g).abs() <= max_dt, "{:?}: dwell {} vs truth {}", key, d, g);
        }
    }
}
