//! Time for a run, injectable: the system's clocks in the appliance, a hand-driven one in tests.
//!
//! Durations (dwell, visit length, intervals between stills) come from a monotonic clock; the wall clock is
//! read only to anchor it. A [`Timeline`] turns a monotonic reading into the wall time stored in the
//! database, and follows a wall clock that was stepped (a box that boots without a battery-backed clock and
//! is set by NTP minutes later) without letting a step turn into a dwell.

use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of time. `monotonic` never goes back; `wall_ms` may jump.
pub trait Clock: Send + Sync + Debug {
    /// Time since this clock's origin, never decreasing.
    fn monotonic(&self) -> Duration;
    /// The wall clock now, in milliseconds since the Unix epoch.
    fn wall_ms(&self) -> i64;
}

/// The machine's clocks: [`Instant`] for durations, [`SystemTime`] for the wall.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        Self { origin: Instant::now() }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }

    fn wall_ms(&self) -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
    }
}

/// The process's system clock, shared.
pub fn system() -> Arc<dyn Clock> {
    static CLOCK: OnceLock<Arc<SystemClock>> = OnceLock::new();
    CLOCK.get_or_init(|| Arc::new(SystemClock::new())).clone()
}

/// A clock that moves only when told to: a run in a test starts on a chosen day and hour, and every time
/// it stores is known in advance, however fast the machine is.
#[derive(Debug)]
pub struct ManualClock {
    wall_at_origin_ms: i64,
    elapsed_ns: AtomicU64,
    /// The wall clock's own steps (a test of a clock set by NTP).
    wall_step_ms: AtomicI64,
}

impl ManualClock {
    /// A clock whose monotonic origin is at `wall_ms` on the wall.
    pub fn starting_at(wall_ms: i64) -> Arc<Self> {
        Arc::new(Self { wall_at_origin_ms: wall_ms, elapsed_ns: AtomicU64::new(0), wall_step_ms: AtomicI64::new(0) })
    }

    /// Moves both clocks forward.
    pub fn advance(&self, by: Duration) {
        self.elapsed_ns.fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
    }

    /// Steps the wall clock alone, as NTP setting the time would.
    pub fn step_wall(&self, by_ms: i64) {
        self.wall_step_ms.fetch_add(by_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn monotonic(&self) -> Duration {
        Duration::from_nanos(self.elapsed_ns.load(Ordering::SeqCst))
    }

    fn wall_ms(&self) -> i64 {
        self.wall_at_origin_ms + self.monotonic().as_millis() as i64 + self.wall_step_ms.load(Ordering::SeqCst)
    }
}

/// Wall times for monotonic readings: the wall clock at the start of the run plus the monotonic time since,
/// re-anchored by [`Timeline::follow_wall`] when the wall clock has been stepped by more than
/// [`Timeline::STEP_MS`].
#[derive(Debug)]
pub struct Timeline {
    clock: Arc<dyn Clock>,
    /// Wall milliseconds at the clock's monotonic origin.
    anchor_ms: AtomicI64,
}

impl Timeline {
    /// Differences between the wall and the anchored monotonic clock up to this are drift, not a step.
    pub const STEP_MS: i64 = 2_000;

    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let anchor = clock.wall_ms() - clock.monotonic().as_millis() as i64;
        Self { clock, anchor_ms: AtomicI64::new(anchor) }
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The wall time, in ms since the epoch, of a monotonic reading of this clock.
    pub fn wall_ms_at(&self, monotonic: Duration) -> i64 {
        self.anchor_ms.load(Ordering::Relaxed) + monotonic.as_millis() as i64
    }

    /// The wall time now, as this timeline tells it.
    pub fn now_ms(&self) -> i64 {
        self.wall_ms_at(self.clock.monotonic())
    }

    /// Compares with the wall clock and, when it was stepped, moves the anchor to it. Returns the step in
    /// milliseconds (positive: the wall clock jumped ahead).
    pub fn follow_wall(&self) -> Option<i64> {
        let step = self.clock.wall_ms() - self.now_ms();
        (step.abs() > Self::STEP_MS).then(|| {
            self.anchor_ms.fetch_add(step, Ordering::Relaxed);
            step
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::starting_at(1_000_000);
        let timeline = Timeline::new(clock.clone());
        assert_eq!(timeline.now_ms(), 1_000_000);
        clock.advance(Duration::from_millis(250));
        assert_eq!(timeline.now_ms(), 1_000_250);
        assert_eq!(timeline.wall_ms_at(Duration::from_secs(2)), 1_002_000);
    }

    #[test]
    fn a_stepped_wall_clock_moves_the_anchor_but_drift_does_not() {
        let clock = ManualClock::starting_at(5_000_000);
        let timeline = Timeline::new(clock.clone());
        clock.advance(Duration::from_secs(10));
        clock.step_wall(1_500);
        assert_eq!(timeline.follow_wall(), None, "1.5 s is drift");
        assert_eq!(timeline.now_ms(), 5_010_000);
        clock.step_wall(3_600_000);
        assert_eq!(timeline.follow_wall(), Some(3_601_500));
        assert_eq!(timeline.now_ms(), clock.wall_ms());
        // A monotonic reading taken before the step keeps its distance to readings after it.
        let before = Duration::from_secs(9);
        assert_eq!(timeline.now_ms() - timeline.wall_ms_at(before), 1_000);
    }

    #[test]
    fn the_system_timeline_is_the_wall_clock() {
        let timeline = Timeline::new(system());
        let wall = SystemClock::new().wall_ms();
        assert!((timeline.now_ms() - wall).abs() < 1_000);
    }
}
