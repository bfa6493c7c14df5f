//! Retrying transient sink failures: exponential backoff with jitter, forever, visible in logs.

use std::time::Duration;
use strata_core::{ApplyStats, RetryDirective, Sink, SinkError, SinkOp};
use tokio_util::sync::CancellationToken;

/// How long to wait between attempts of a batch that failed transiently.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// The wait before the first retry.
    pub initial: Duration,
    /// The longest wait between two attempts.
    pub max: Duration,
    /// How much the wait grows per attempt (e.g. 2.0).
    pub multiplier: f64,
    /// The random share of each wait, 0.0..=1.0: the wait is drawn from
    /// `[d × (1 − jitter), d]`; 1.0 is "full jitter" (uniform in `[0, d]`), which spreads the
    /// retries of many workers hitting the same store.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 1.0,
        }
    }
}

impl RetryPolicy {
    /// The ceiling of the wait before retry number `attempt` (1-based), before jitter.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exp = self
            .multiplier
            .max(1.0)
            .powi(attempt.saturating_sub(1).min(1000) as i32);
        let secs = (self.initial.as_secs_f64() * exp).min(self.max.as_secs_f64());
        Duration::try_from_secs_f64(secs).unwrap_or(self.max)
    }

    /// The wait before retry number `attempt`, with jitter drawn from `unit` (0.0..1.0).
    pub fn delay_with(&self, attempt: u32, unit: f64) -> Duration {
        let ceiling = self.ceiling(attempt);
        let jitter = self.jitter.clamp(0.0, 1.0);
        ceiling.mul_f64(1.0 - jitter * unit.clamp(0.0, 1.0))
    }

    /// The wait before retry number `attempt`, with fresh jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, fastrand::f64())
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.initial.is_zero() || self.max < self.initial {
            return Err(format!(
                "retry.initial ({:?}) must be above zero and at most retry.max ({:?})",
                self.initial, self.max
            ));
        }
        if !(self.multiplier >= 1.0 && self.multiplier.is_finite()) {
            return Err(format!(
                "retry.multiplier ({}) must be a finite number >= 1",
                self.multiplier
            ));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(format!(
                "retry.jitter ({}) must be between 0 and 1",
                self.jitter
            ));
        }
        Ok(())
    }
}

/// The end of applying one batch.
#[derive(Debug)]
pub(crate) enum Applied {
    /// The sink made the batch durable.
    Durable(ApplyStats),
    /// The sink refused the batch for good.
    Refused(SinkError),
    /// The run is stopping; the batch may or may not have been applied.
    Cancelled,
}

/// Applies `ops`, retrying transient errors forever with backoff; `on_retry` is called once
/// per retry (after the warning is logged) so the caller can count it.
pub(crate) async fn apply_with_retry(
    sink: &dyn Sink,
    ops: &[SinkOp],
    policy: &RetryPolicy,
    cancel: &CancellationToken,
    mut on_retry: impl FnMut(&SinkError),
) -> Applied {
    let mut attempt: u32 = 0;
    loop {
        let result = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Applied::Cancelled,
            r = sink.apply(ops) => r,
        };
        match result {
            Ok(stats) => return Applied::Durable(stats),
            Err(e) if e.kind.retry_directive() == RetryDirective::Backoff => {
                attempt = attempt.saturating_add(1);
                let delay = policy.delay(attempt);
                tracing::warn!(
                    sink = sink.name(),
                    attempt,
                    delay_ms = delay.as_millis() as u64,
                    kind = e.kind.as_str(),
                    ops = ops.len(),
                    error = %e,
                    "transient sink error; retrying the batch"
                );
                on_retry(&e);
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return Applied::Cancelled,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            Err(e) => return Applied::Refused(e),
        }
    }
}

/// Finds the op a sink refuses when it refused a batch without naming one, by applying
/// halves of the batch (safe: sinks are idempotent and guarded). Returns the index and the
/// sink's error for that op, or `None` when every part applies on its own (the refusal was
/// about the batch as a whole) or the run is stopping.
pub(crate) async fn isolate_refused(
    sink: &dyn Sink,
    ops: &[SinkOp],
    policy: &RetryPolicy,
    cancel: &CancellationToken,
    mut on_retry: impl FnMut(&SinkError),
) -> Option<(usize, SinkError)> {
    let (mut lo, mut hi) = (0, ops.len());
    let mut last_error = None;
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        match apply_with_retry(sink, &ops[lo..mid], policy, cancel, &mut on_retry).await {
            Applied::Refused(e) => {
                if let Some(i) = e.op_index.filter(|&i| i < mid - lo) {
                    return Some((lo + i, e));
                }
                hi = mid;
                last_error = Some(e);
            }
            Applied::Durable(_) => {
                match apply_with_retry(sink, &ops[mid..hi], policy, cancel, &mut on_retry).await {
                    Applied::Refused(e) => {
                        if let Some(i) = e.op_index.filter(|&i| i < hi - mid) {
                            return Some((mid + i, e));
                        }
                        lo = mid;
                        last_error = Some(e);
                    }
                    Applied::Durable(_) => return None,
                    Applied::Cancelled => return None,
                }
            }
            Applied::Cancelled => return None,
        }
    }
    let error = match last_error {
        Some(e) => e,
        // A batch of one op: its own refusal is the answer; apply it once more to get it.
        None => match apply_with_retry(sink, &ops[lo..hi], policy, cancel, &mut on_retry).await {
            Applied::Refused(e) => e,
            _ => return None,
        },
    };
    Some((lo, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_exponentially_up_to_the_cap() {
        let p = RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            multiplier: 2.0,
            jitter: 1.0,
        };
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(2), Duration::from_millis(200));
        assert_eq!(p.ceiling(4), Duration::from_millis(800));
        assert_eq!(p.ceiling(5), Duration::from_secs(1));
        assert_eq!(p.ceiling(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn jitter_draws_below_the_ceiling() {
        let full = RetryPolicy::default();
        assert_eq!(full.delay_with(1, 0.0), Duration::from_millis(100));
        assert_eq!(full.delay_with(1, 1.0), Duration::ZERO);
        let half = RetryPolicy {
            jitter: 0.5,
            ..RetryPolicy::default()
        };
        assert_eq!(half.delay_with(2, 1.0), Duration::from_millis(100));
        for attempt in 1..20 {
            let d = full.delay(attempt);
            assert!(d <= full.ceiling(attempt));
        }
    }

    #[test]
    fn invalid_policies_are_explained() {
        let bad = RetryPolicy {
            multiplier: 0.5,
            ..RetryPolicy::default()
        };
        assert!(bad.validate().unwrap_err().contains("multiplier"));
        let bad = RetryPolicy {
            initial: Duration::ZERO,
            ..RetryPolicy::default()
        };
        assert!(bad.validate().unwrap_err().contains("initial"));
        assert!(RetryPolicy::default().validate().is_ok());
    }
}
