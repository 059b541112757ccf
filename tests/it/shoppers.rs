//! Simulated shoppers written through the real store writer, for the chain's tests and benchmark
//! (benches/chain.rs includes this file with `#[path]`).

#![allow(dead_code)]

use std::path::Path;

use iobox::behaviour::{Event, Name, TrackId, TrackTokens};
use iobox::store::{Record, Writer, WriterOptions};
use rand::{Rng, SeedableRng};

const HOUR: i64 = 3_600_000;

/// A store's shoppers on `days` (local midnights), 9:00 to 19:00, written through the real writer: a door
/// camera (entries and exits) and a floor camera (stays in shelf, bakery and the checkout queue, queue
/// samples, heat cells and mood per hour). `scale` multiplies the shoppers per hour (3 to 12 at 1).
pub fn simulate(db: &Path, days: &[i64], scale: f64, seed: u64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let name = |s: &str| Name::from(s);
    let mut seq = 0u64;
    for &day in days {
        // A run per day, so that the writer's channel never fills.
        let options = WriterOptions { retention: None, ..WriterOptions::default() };
        let writer = Writer::start_with(db, &["door".to_string(), "floor".to_string()], options).unwrap();
        let tx = writer.sender();
        let send = |camera: usize, event: Event| tx.send(Record::Event { camera, event });
        for minute in 0..600i64 {
            for camera in 0..2 {
                seq += 1;
                let ts_ms = day + 9 * HOUR + minute * 60_000;
                tx.send(Record::Frame { camera, ts_ms, seq, faces_blurred: 0, frames_dropped: 0 });
            }
        }
        for h in 9..19i64 {
            let hour = day + h * HOUR;
            let n = ((rng.random_range(3..=12) as f64) * scale).round() as u32;
            let mut tokens = Vec::new();
            for _ in 0..n {
                let at = hour + rng.random_range(0..55 * 60_000i64);
                let (door, floor) = (TrackId(rng.random()), TrackId(rng.random()));
                tokens.push(floor.0 as u16);
                send(0, Event::Entry { zone: name("entrance"), track: door, at_ms: at });
                let mut t = at + 30_000;
                let mut zones = vec![name("shelf")];
                let shelf = rng.random_range(10_000..900_000i64);
                send(1, Event::ZoneEntered { zone: name("shelf"), track: floor, at_ms: t });
                send(1, Event::ZoneExited { zone: name("shelf"), track: floor, at_ms: t + shelf, dwell_ms: shelf });
                t += shelf;
                if rng.random_bool(0.5) {
                    let bakery = rng.random_range(20_000..300_000i64);
                    send(1, Event::ZoneEntered { zone: name("bakery"), track: floor, at_ms: t });
                    send(
                        1,
                        Event::ZoneExited { zone: name("bakery"), track: floor, at_ms: t + bakery, dwell_ms: bakery },
                    );
                    t += bakery;
                    zones.push(name("bakery"));
                }
                let wait = rng.random_range(30_000..400_000i64);
                send(1, Event::ZoneEntered { zone: name("checkout"), track: floor, at_ms: t });
                send(1, Event::ZoneExited { zone: name("checkout"), track: floor, at_ms: t + wait, dwell_ms: wait });
                t += wait;
                zones.push(name("checkout"));
                send(1, Event::Journey { track: floor, zones, start_ms: at + 30_000, end_ms: t });
                send(0, Event::Exit { zone: name("entrance"), track: door, at_ms: t + 30_000 });
            }
            for s in 0..6i64 {
                let length = rng.random_range(0..5u32);
                send(
                    1,
                    Event::QueueSample {
                        zone: name("checkout"),
                        at_ms: hour + s * 600_000,
                        length,
                        mean_wait_ms: i64::from(length) * 40_000,
                        max_wait_ms: i64::from(length) * 70_000,
                    },
                );
            }
            for (cx, cy) in [(1, 1), (2, 1), (2, 2)] {
                send(
                    1,
                    Event::HeatCell {
                        bucket_start_ms: hour,
                        cx,
                        cy,
                        presence: 20 * n,
                        dwell_ms: 60_000 * i64::from(n),
                        tracks: n,
                        tokens: TrackTokens::new(tokens.clone()),
                    },
                );
            }
            send(
                1,
                Event::MoodBucket {
                    zone: name("shelf"),
                    bucket_start_ms: hour,
                    counts: [0, 0, 0, 4 * n, 0, 0, 6 * n],
                    samples: 10 * n,
                    uncertain: n,
                    tracks: n,
                    tokens: TrackTokens::new(tokens),
                },
            );
        }
        drop(tx);
        assert_eq!(writer.finish().unwrap().dropped, 0);
    }
}
