//! The rule engine on scripted events, on a real `Behaviour`, and properties of holds, cooldowns and stays.

use proptest::prelude::*;

use super::*;
use crate::behaviour::{Behaviour, BehaviourConfig, Observation, ZoneKind, ZoneSpec};
use crate::geometry::{PointOnFloor, PolygonOnFloor};

fn rule(name: &str, kind: AlertKind, zone: &str, above: f64, for_s: f64, cooldown_s: f64) -> Rule {
    Rule {
        name: name.into(),
        kind,
        camera: None,
        zone: zone.into(),
        above,
        for_ms: (for_s * 1000.0) as i64,
        cooldown_ms: (cooldown_s * 1000.0) as i64,
    }
}

fn occupancy(zone: &str, at_ms: i64, count: u32) -> Event {
    Event::Occupancy { zone: zone.into(), at_ms, count }
}

fn queue(zone: &str, at_ms: i64, length: u32) -> Event {
    Event::QueueSample { zone: zone.into(), at_ms, length, mean_wait_ms: 0, max_wait_ms: 0 }
}

fn entered(zone: &str, track: u64, at_ms: i64) -> Event {
    Event::ZoneEntered { zone: zone.into(), track: TrackId(track), at_ms }
}

fn exited(zone: &str, track: u64, entered_ms: i64, at_ms: i64) -> Event {
    Event::ZoneExited { zone: zone.into(), track: TrackId(track), at_ms, dwell_ms: at_ms - entered_ms }
}

fn feed(engine: &mut Engine, events: &[Event]) -> Vec<Alert> {
    let mut out = Vec::new();
    for e in events {
        engine.event(e, &mut out);
    }
    out
}

fn fired(alerts: &[Alert]) -> Vec<&Alert> {
    alerts.iter().filter(|a| a.state == AlertState::Fired).collect()
}

#[test]
fn a_count_must_hold_for_for_s_before_it_fires() {
    let rules = [rule("long-queue", AlertKind::QueueLength, "till", 3.0, 20.0, 300.0)];
    let mut e = Engine::new("cam", &rules, Some("store-12")).unwrap();
    // 4 people from t = 0; a sample every 5 s. 20 s of hold: fires on the sample at 20 s, once.
    let samples: Vec<Event> = (0..=6).map(|k| queue("till", k * 5000, 4)).collect();
    let out = feed(&mut e, &samples[..4]);
    assert!(out.is_empty(), "{out:?}");
    let out = feed(&mut e, &samples[4..]);
    assert_eq!(out.len(), 1, "{out:?}");
    let a = &out[0];
    assert_eq!((a.state, a.kind, a.value, a.threshold), (AlertState::Fired, AlertKind::QueueLength, 4.0, 3.0));
    assert_eq!((a.since_ms, a.at_ms), (0, 20_000));
    assert_eq!((a.camera.as_str(), a.zone.as_str(), a.rule.as_str()), ("cam", "till", "long-queue"));
    assert_eq!(a.site.as_ref().map(Name::as_str), Some("store-12"));

    // A dip to 3 (not above 3) resets the hold and clears the alert.
    let out = feed(&mut e, &[queue("till", 35_000, 3)]);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].state, out[0].value, out[0].since_ms, out[0].at_ms), (AlertState::Cleared, 3.0, 0, 35_000));
    // Other zones and kinds are not this rule's business.
    assert!(feed(&mut e, &[occupancy("till", 40_000, 9), queue("door", 40_000, 9)]).is_empty());
}

#[test]
fn a_hold_that_breaks_starts_again() {
    let rules = [rule("busy", AlertKind::Occupancy, "floor", 0.0, 10.0, 0.0)];
    let mut e = Engine::new("cam", &rules, None).unwrap();
    let counts = [1, 1, 0, 1, 1, 1];
    let events: Vec<Event> = counts.iter().enumerate().map(|(k, &c)| occupancy("floor", k as i64 * 5000, c)).collect();
    let out = feed(&mut e, &events);
    // 0-5 s: only 5 s; the 0 at 10 s resets; 15-25 s holds 10 s and fires at 25 s.
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!((out[0].since_ms, out[0].at_ms), (15_000, 25_000));
}

#[test]
fn for_s_zero_fires_on_the_first_sample_above() {
    let rules = [rule("any", AlertKind::Occupancy, "floor", 2.0, 0.0, 0.0)];
    let mut e = Engine::new("cam", &rules, None).unwrap();
    let out = feed(&mut e, &[occupancy("floor", 0, 2), occupancy("floor", 5000, 3)]);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].at_ms, out[0].value), (5000, 3.0));
}

#[test]
fn the_cooldown_holds_back_a_second_alert() {
    let rules = [rule("busy", AlertKind::Occupancy, "floor", 0.0, 0.0, 60.0)];
    let mut e = Engine::new("cam", &rules, None).unwrap();
    // Above at 0, clear at 5 s, above again at 10 s: within the 60 s cooldown, so nothing...
    let out = feed(&mut e, &[occupancy("floor", 0, 1), occupancy("floor", 5000, 0), occupancy("floor", 10_000, 1)]);
    assert_eq!(fired(&out).len(), 1, "{out:?}");
    assert_eq!(out.len(), 2, "a fired alert and its clear: {out:?}");
    // ... until the cooldown is over while the condition still holds: then it fires, dated from 10 s.
    let out = feed(&mut e, &[occupancy("floor", 55_000, 1), occupancy("floor", 60_000, 2)]);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!((out[0].since_ms, out[0].at_ms, out[0].value), (10_000, 60_000, 2.0));
}

#[test]
fn dwell_fires_while_the_person_is_still_inside() {
    let rules = [rule("long-stay", AlertKind::Dwell, "table", 8.0, 0.0, 0.0)];
    let mut e = Engine::new("cam", &rules, Some("s")).unwrap();
    let mut out = Vec::new();
    e.event(&entered("table", 7, 1000), &mut out);
    // Ticks every 100 ms: at 9.0 s the stay is exactly 8 s (not over); at 9.1 s it is.
    for t in (1000..=9000).step_by(100) {
        e.tick(t, &mut out);
    }
    assert!(out.is_empty(), "{out:?}");
    e.tick(9100, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].state, out[0].value, out[0].since_ms, out[0].at_ms), (AlertState::Fired, 8.1, 1000, 9100));
    // Once per stay.
    out.clear();
    for t in (9200..=20_000).step_by(100) {
        e.tick(t, &mut out);
    }
    assert!(out.is_empty(), "{out:?}");
    // Leaving clears it with the whole stay.
    e.event(&exited("table", 7, 1000, 20_000), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].state, out[0].value, out[0].since_ms, out[0].at_ms), (AlertState::Cleared, 19.0, 1000, 20_000));
    // A short stay never fires; a stay elsewhere is ignored.
    out.clear();
    e.event(&entered("table", 8, 30_000), &mut out);
    e.event(&entered("door", 9, 30_000), &mut out);
    for t in (30_000..=60_000).step_by(100) {
        if t == 37_000 {
            e.event(&exited("table", 8, 30_000, t), &mut out);
        }
        e.tick(t, &mut out);
    }
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn dwell_cooldown_is_per_rule_and_camera_not_per_person() {
    let rules = [rule("long-stay", AlertKind::Dwell, "table", 5.0, 0.0, 30.0)];
    let mut e = Engine::new("cam", &rules, None).unwrap();
    let mut out = Vec::new();
    e.event(&entered("table", 1, 0), &mut out);
    e.event(&entered("table", 2, 0), &mut out);
    e.event(&entered("table", 3, 20_000), &mut out);
    for t in (0..=40_000).step_by(500) {
        e.tick(t, &mut out);
    }
    // 1 and 2 both pass 5 s at 5.5 s: one alert (for 1). 3 passes at 25.5 s, inside the cooldown. At 35.5 s
    // the cooldown is over: 2, waiting longest, fires; 3 waits for the next cooldown to end.
    let times: Vec<i64> = fired(&out).iter().map(|a| a.at_ms).collect();
    assert_eq!(times, vec![5500, 35_500], "{out:?}");
    assert_eq!(out[1].since_ms, 0, "the longer stay fires first: {out:?}");
}

#[test]
fn rules_for_another_camera_are_left_out() {
    let mut only_b = rule("b-queue", AlertKind::QueueLength, "till", 0.0, 0.0, 0.0);
    only_b.camera = Some("b".into());
    let all = rule("any-queue", AlertKind::QueueLength, "till", 0.0, 0.0, 0.0);
    assert!(Engine::new("a", std::slice::from_ref(&only_b), None).is_none());
    let rules = [only_b, all];
    let mut a = Engine::new("a", &rules, None).unwrap();
    let mut b = Engine::new("b", &rules, None).unwrap();
    assert_eq!((a.rules.len(), b.rules.len()), (1, 2));
    let ev = [queue("till", 0, 1)];
    let from_a: Vec<String> = feed(&mut a, &ev).iter().map(|x| format!("{}@{}", x.rule, x.camera)).collect();
    let from_b: Vec<String> = feed(&mut b, &ev).iter().map(|x| format!("{}@{}", x.rule, x.camera)).collect();
    assert_eq!(from_a, vec!["any-queue@a"]);
    assert_eq!(from_b, vec!["b-queue@b", "any-queue@b"]);
}

#[test]
fn the_payload_is_counts_and_times_only() {
    let rules = [rule("long-stay", AlertKind::Dwell, "table", 8.0, 0.0, 0.0)];
    let mut e = Engine::new("sample", &rules, Some("store-12")).unwrap();
    let mut out = Vec::new();
    e.event(&entered("table", 0xdead_beef, 1_767_000_000_000), &mut out);
    e.tick(1_767_000_008_040, &mut out);
    let json = serde_json::to_string(&out[0]).unwrap();
    assert_eq!(
        json,
        r#"{"state":"fired","rule":"long-stay","kind":"dwell","camera":"sample","zone":"table","value":8.04,"threshold":8,"since_ms":1767000000000,"at_ms":1767000008040,"site":"store-12"}"#
    );
    assert!(!json.contains(&0xdead_beef_u64.to_string()) && !json.contains("track"));
    let mut no_site = out[0].clone();
    no_site.site = None;
    assert!(!serde_json::to_string(&no_site).unwrap().contains("site"));
}

#[test]
fn mqtt_urls() {
    let t = MqttTarget::parse("mqtt://127.0.0.1:1884").unwrap();
    assert_eq!((t.host.as_str(), t.port, t.username.as_deref()), ("127.0.0.1", 1884, None));
    let t = MqttTarget::parse("tcp://broker.local/").unwrap();
    assert_eq!((t.host.as_str(), t.port), ("broker.local", 1883));
    let t = MqttTarget::parse("mqtt://iobox:s3cret@[::1]:1999").unwrap();
    assert_eq!((t.host.as_str(), t.port), ("::1", 1999));
    assert_eq!((t.username.as_deref(), t.password.as_deref()), (Some("iobox"), Some("s3cret")));
    assert!(!format!("{t:?} {t}").contains("s3cret"));
    for bad in ["mqtts://x", "http://x", "mqtt://", "mqtt://x:0", "mqtt://x:99999", "mqtt://x/topic", "x:1883"] {
        assert!(MqttTarget::parse(bad).is_err(), "{bad}");
    }
}

/// A person walks into a queue zone of a real `Behaviour`, stands there 30 s and leaves: the dwell rule fires
/// while they stand, the queue rule after its hold, and both clear when they leave.
#[test]
fn rules_fire_on_a_real_behaviour() {
    let square = PolygonOnFloor::new(vec![
        PointOnFloor::new(0.0, 0.0),
        PointOnFloor::new(2.0, 0.0),
        PointOnFloor::new(2.0, 2.0),
        PointOnFloor::new(0.0, 2.0),
    ]);
    let zones = vec![ZoneSpec { name: "till".into(), kind: ZoneKind::Queue, polygon: square }];
    let mut behaviour = Behaviour::new(zones, vec![], BehaviourConfig::default()).unwrap();
    let rules = [
        rule("long-stay", AlertKind::Dwell, "till", 10.0, 0.0, 300.0),
        rule("queue", AlertKind::QueueLength, "till", 0.0, 10.0, 300.0),
    ];
    let mut engine = Engine::new("cam", &rules, None).unwrap();
    let (mut events, mut alerts) = (Vec::new(), Vec::new());
    let track = TrackId(42);
    // Outside until 2 s, inside until 32 s, then outside; a frame every 100 ms.
    for t in (0..40_000).step_by(100) {
        let x = if (2000..32_000).contains(&t) { 1.0 } else { 5.0 };
        behaviour.frame(t, &[Observation::at(track, PointOnFloor::new(x, 1.0))], &mut events);
        for e in events.drain(..) {
            engine.event(&e, &mut alerts);
        }
        engine.tick(t, &mut alerts);
    }
    let summary: Vec<(&str, AlertState, i64)> = alerts.iter().map(|a| (a.rule.as_str(), a.state, a.at_ms)).collect();
    // Entered at 2 s (dated at the first sample inside): the stay passes 10 s at 12.1 s. Queue samples at
    // 5, 10, 15 s show 1 person; the hold of 10 s is reached at 15 s. Left at 32 s (dated at the first
    // sample outside): the stay clears then, the queue at the next sample (35 s).
    assert_eq!(
        summary,
        vec![
            ("long-stay", AlertState::Fired, 12_100),
            ("queue", AlertState::Fired, 15_000),
            ("long-stay", AlertState::Cleared, 32_000),
            ("queue", AlertState::Cleared, 35_000),
        ],
        "{alerts:#?}"
    );
    assert_eq!(alerts[2].value, 30.0);
}

/// Reference for a count rule with no cooldown: one alert per run of samples above the threshold that lasts
/// at least `for_ms`, at the first sample where it has.
fn expected_fires(counts: &[u32], above: u32, for_ms: i64, period: i64) -> Vec<i64> {
    let mut fires = Vec::new();
    let mut since = None;
    let mut done = false;
    for (k, &c) in counts.iter().enumerate() {
        let t = k as i64 * period;
        if c > above {
            let s = *since.get_or_insert(t);
            if !done && t - s >= for_ms {
                fires.push(t);
                done = true;
            }
        } else {
            since = None;
            done = false;
        }
    }
    fires
}

proptest! {
    #[test]
    fn count_rules_fire_once_per_long_enough_run(
        counts in proptest::collection::vec(0u32..5, 0..80),
        above in 0u32..4,
        for_samples in 0i64..5,
    ) {
        let rules = [rule("r", AlertKind::Occupancy, "z", f64::from(above), for_samples as f64 * 5.0, 0.0)];
        let mut e = Engine::new("cam", &rules, None).unwrap();
        let events: Vec<Event> =
            counts.iter().enumerate().map(|(k, &c)| occupancy("z", k as i64 * 5000, c)).collect();
        let out = feed(&mut e, &events);
        let got: Vec<i64> = fired(&out).iter().map(|a| a.at_ms).collect();
        prop_assert_eq!(got, expected_fires(&counts, above, for_samples * 5000, 5000));
        // Fired and cleared alternate, starting with fired.
        for (k, a) in out.iter().enumerate() {
            prop_assert_eq!(a.state, if k % 2 == 0 { AlertState::Fired } else { AlertState::Cleared });
            prop_assert!(a.since_ms <= a.at_ms);
            prop_assert_eq!(a.value > a.threshold, a.state == AlertState::Fired);
        }
    }

    #[test]
    fn fires_of_one_rule_are_a_cooldown_apart(
        counts in proptest::collection::vec(0u32..3, 0..120),
        cooldown_samples in 0i64..10,
    ) {
        let cooldown_ms = cooldown_samples * 5000;
        let rules = [rule("r", AlertKind::Occupancy, "z", 0.0, 0.0, cooldown_ms as f64 / 1000.0)];
        let mut e = Engine::new("cam", &rules, None).unwrap();
        let events: Vec<Event> =
            counts.iter().enumerate().map(|(k, &c)| occupancy("z", k as i64 * 5000, c)).collect();
        let out = feed(&mut e, &events);
        let times: Vec<i64> = fired(&out).iter().map(|a| a.at_ms).collect();
        for w in times.windows(2) {
            prop_assert!(w[1] - w[0] >= cooldown_ms, "{:?}", times);
        }
        // And with no cooldown nothing is held back.
        if cooldown_ms == 0 {
            prop_assert_eq!(times, expected_fires(&counts, 0, 0, 5000));
        }
    }

    /// Without a cooldown every stay longer than the threshold (by more than a tick) fires exactly once,
    /// while inside, with its stay so far as the value; shorter stays never fire.
    #[test]
    fn every_long_stay_fires_once_while_inside(
        stays in proptest::collection::vec((0i64..600, 1i64..300), 1..12),
        above_s in 1u32..20,
    ) {
        let rules = [rule("d", AlertKind::Dwell, "z", f64::from(above_s), 0.0, 0.0)];
        let mut e = Engine::new("cam", &rules, None).unwrap();
        // (start, length) in tenths of a second; track k.
        let mut script: Vec<(i64, Event)> = Vec::new();
        for (k, &(start, len)) in stays.iter().enumerate() {
            let (s, x) = (start * 100, (start + len) * 100);
            script.push((s, entered("z", k as u64, s)));
            script.push((x, exited("z", k as u64, s, x)));
        }
        script.sort_by_key(|(t, e)| (*t, matches!(e, Event::ZoneEntered { .. })));
        let mut out = Vec::new();
        let mut next = 0;
        for t in (0..=100_000).step_by(100) {
            while next < script.len() && script[next].0 <= t {
                e.event(&script[next].1, &mut out);
                next += 1;
            }
            e.tick(t, &mut out);
        }
        let limit = i64::from(above_s) * 1000;
        for (k, &(start, len)) in stays.iter().enumerate() {
            if stays.iter().filter(|o| o.0 == start).count() > 1 {
                continue; // stays that start together cannot be told apart in the payload
            }
            let (s, x) = (start * 100, (start + len) * 100);
            let mine: Vec<&Alert> =
                out.iter().filter(|a| a.since_ms == s && a.state == AlertState::Fired).collect();
            // The exit at `x` is seen before the tick at `x`: the stay must pass the limit at an earlier tick.
            if x - s > limit + 100 {
                prop_assert_eq!(mine.len(), 1, "stay {} {:?}: {:?}", k, (s, x), out);
                let a = mine[0];
                prop_assert!(a.at_ms > s + limit && a.at_ms < x, "{:?}", a);
                prop_assert_eq!(a.value, (a.at_ms - s) as f64 / 1000.0);
            } else {
                prop_assert!(mine.is_empty(), "stay {} {:?}: {:?}", k, (s, x), out);
            }
        }
    }
}

#[test]
fn a_backlog_rule_fires_once_when_head_office_falls_behind_and_clears_when_it_catches_up() {
    let rules = [
        rule("hq", AlertKind::SyncBacklog, "", 60.0, 0.0, 600.0),
        rule("q", AlertKind::QueueLength, "till", 3.0, 0.0, 0.0),
    ];
    let mut engine = BacklogEngine::new(&rules, Some("store-1")).unwrap();
    assert!(Engine::new("cam", &rules[..1], None).is_none(), "a camera's engine has no backlog rule");
    let mut out = Vec::new();
    let t0 = 1_800_000_000_000;
    engine.observe(None, t0, &mut out);
    engine.observe(Some(59.0 * 60.0), t0 + 1000, &mut out);
    assert!(out.is_empty());
    engine.observe(Some(61.0 * 60.0), t0 + 2000, &mut out);
    engine.observe(Some(90.0 * 60.0), t0 + 3000, &mut out);
    assert_eq!(out.len(), 1, "{out:?}");
    let fired = out.remove(0);
    assert_eq!(
        (fired.state, fired.kind, fired.value, fired.threshold),
        (AlertState::Fired, AlertKind::SyncBacklog, 61.0, 60.0)
    );
    assert_eq!(fired.since_ms, t0 + 2000 - 61 * 60_000, "since the oldest row was written");
    assert_eq!(fired.site, Some("store-1".into()));
    engine.observe(None, t0 + 4000, &mut out);
    assert_eq!(out.remove(0).state, AlertState::Cleared);
    // Behind again within the cooldown: quiet; after it, fires again.
    engine.observe(Some(70.0 * 60.0), t0 + 5000, &mut out);
    assert!(out.is_empty());
    engine.observe(Some(70.0 * 60.0), t0 + 2000 + 600_000, &mut out);
    assert_eq!(out.remove(0).state, AlertState::Fired);
    let json = serde_json::to_string(&fired).unwrap();
    assert!(json.contains(r#""kind":"sync_backlog""#) && json.contains(r#""value":61"#), "{json}");
}
