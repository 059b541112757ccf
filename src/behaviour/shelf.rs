//! Shelf interactions, one [`InteractionState`] per (track, shelf zone).

/// `Idle -> Active` on the first touching sample (a wrist in the shelf polygon while the ground point is within
/// reach). The interaction ends once samples have not touched for `gap_ms`; it runs from the first touching
/// sample to the first non-touching sample of that gap, and is reported only if it lasted `min_ms`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum InteractionState {
    #[default]
    Idle,
    Active {
        start: i64,
        out_since: Option<i64>,
    },
}

/// A finished interaction: (start_ms, duration_ms).
pub(crate) type Interaction = (i64, i64);

impl InteractionState {
    pub fn update(&mut self, t: i64, touching: bool, gap_ms: i64, min_ms: i64) -> Option<Interaction> {
        match *self {
            InteractionState::Idle if touching => {
                *self = InteractionState::Active { start: t, out_since: None };
                None
            }
            InteractionState::Idle => None,
            InteractionState::Active { start, .. } if touching => {
                *self = InteractionState::Active { start, out_since: None };
                None
            }
            InteractionState::Active { start, out_since } => {
                let out_since = out_since.unwrap_or(t);
                if t - out_since >= gap_ms {
                    *self = InteractionState::Idle;
                    finished(start, out_since, min_ms)
                } else {
                    *self = InteractionState::Active { start, out_since: Some(out_since) };
                    None
                }
            }
        }
    }

    /// The track ended (last seen at `last_seen`).
    pub fn close(&mut self, last_seen: i64, min_ms: i64) -> Option<Interaction> {
        let done = match *self {
            InteractionState::Active { start, out_since } => finished(start, out_since.unwrap_or(last_seen), min_ms),
            InteractionState::Idle => None,
        };
        *self = InteractionState::Idle;
        done
    }
}

fn finished(start: i64, end: i64, min_ms: i64) -> Option<Interaction> {
    let duration = end - start;
    (duration >= min_ms).then_some((start, duration))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(samples: &[(i64, bool)]) -> Vec<Interaction> {
        let mut s = InteractionState::default();
        let mut out: Vec<_> = samples.iter().filter_map(|&(t, touch)| s.update(t, touch, 700, 300)).collect();
        out.extend(s.close(samples.last().map_or(0, |x| x.0), 300));
        out
    }

    #[test]
    fn short_gaps_are_bridged_and_the_end_is_the_first_sample_out() {
        let c = run(&[(0, true), (200, true), (300, false), (500, true), (800, false), (1000, false), (1600, false)]);
        assert_eq!(c, vec![(0, 800)]);
    }

    #[test]
    fn too_short_interactions_are_dropped() {
        assert_eq!(run(&[(0, true), (200, false), (1000, false)]), vec![]);
    }

    #[test]
    fn an_open_interaction_closes_with_the_track() {
        assert_eq!(run(&[(0, true), (500, true)]), vec![(0, 500)]);
    }
}
