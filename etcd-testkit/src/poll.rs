//! The one way tests wait: poll a condition until it holds, with a deadline, never a fixed sleep.
//!
//! A check may answer `bool`, `Option<T>` (the value waited for), or `Result<Option<T>>` / `Result<bool>`
//! (an error means "not yet", and the last one is kept for the failure message). The wait starts
//! polling quickly and backs off to a few times a second, so a condition that holds at once costs
//! milliseconds and a long wait does not spin.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

/// What a check answers; see the module documentation.
pub trait Outcome {
    type Value;
    /// `Ok(Some(v))`: done; `Ok(None)`: not yet; `Err(e)`: not yet, and `e` says why.
    fn into_poll(self) -> Result<Option<Self::Value>>;
}

impl Outcome for bool {
    type Value = ();
    fn into_poll(self) -> Result<Option<()>> {
        Ok(self.then_some(()))
    }
}

impl<T> Outcome for Option<T> {
    type Value = T;
    fn into_poll(self) -> Result<Option<T>> {
        Ok(self)
    }
}

// Only anyhow's error: a check's `Ok(...)` then needs no annotation, and `?` converts any error.
impl<T> Outcome for Result<Option<T>> {
    type Value = T;
    fn into_poll(self) -> Result<Option<T>> {
        self
    }
}

impl Outcome for Result<bool> {
    type Value = ();
    fn into_poll(self) -> Result<Option<()>> {
        self.map(|ok| ok.then_some(()))
    }
}

/// The first pause between checks, doubled after each until [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(20);
const MAX_PAUSE: Duration = Duration::from_millis(250);

struct Deadline {
    what: String,
    within: Duration,
    end: Instant,
    pause: Duration,
    last_error: Option<anyhow::Error>,
}

impl Deadline {
    fn new(what: &str, within: Duration) -> Deadline {
        Deadline {
            what: what.to_string(),
            within,
            end: Instant::now() + within,
            pause: FIRST_PAUSE,
            last_error: None,
        }
    }

    /// `Some(result)` when polling is over; `None` to pause (for the returned time) and check again.
    fn after<T>(&mut self, outcome: Result<Option<T>>) -> std::result::Result<Result<T>, Duration> {
        match outcome {
            Ok(Some(v)) => return Ok(Ok(v)),
            Ok(None) => {}
            Err(e) => self.last_error = Some(e),
        }
        if Instant::now() >= self.end {
            return Ok(Err(match self.last_error.take() {
                Some(e) => e.context(format!(
                    "timed out after {:?} waiting for {}",
                    self.within, self.what
                )),
                None => anyhow!(
                    "timed out after {:?} waiting for {}",
                    self.within,
                    self.what
                ),
            }));
        }
        let pause = self
            .pause
            .min(self.end.saturating_duration_since(Instant::now()));
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        Err(pause.max(Duration::from_millis(1)))
    }
}

/// Polls `check` until it holds, for at most `within`; the value it yields, or an error naming `what`
/// (with the check's last error, if any).
pub async fn wait_for<F, Fut>(
    what: &str,
    within: Duration,
    mut check: F,
) -> Result<<Fut::Output as Outcome>::Value>
where
    F: FnMut() -> Fut,
    Fut: Future,
    Fut::Output: Outcome,
{
    let mut deadline = Deadline::new(what, within);
    loop {
        match deadline.after(check().await.into_poll()) {
            Ok(done) => return done,
            Err(pause) => tokio::time::sleep(pause).await,
        }
    }
}

/// [`wait_for`] for tests without an async runtime: the same polling, blocking the thread.
pub fn wait_for_blocking<R: Outcome>(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> R,
) -> Result<R::Value> {
    let mut deadline = Deadline::new(what, within);
    loop {
        match deadline.after(check().into_poll()) {
            Ok(done) => return done,
            Err(pause) => std::thread::sleep(pause),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yields_the_value_once_the_check_holds() {
        let mut n = 0;
        let v = wait_for_blocking("n to reach 3", Duration::from_secs(5), || {
            n += 1;
            (n >= 3).then_some(n)
        })
        .unwrap();
        assert_eq!(v, 3);
    }

    #[test]
    fn a_timeout_names_the_condition_and_the_last_error() {
        let e = wait_for_blocking("the impossible", Duration::from_millis(100), || {
            Err::<Option<()>, _>(anyhow!("still broken"))
        })
        .unwrap_err();
        let text = format!("{e:#}");
        assert!(
            text.contains("waiting for the impossible") && text.contains("still broken"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn async_checks_poll_the_same_way() {
        let start = Instant::now();
        let r = wait_for("never", Duration::from_millis(200), || async { false }).await;
        assert!(r.is_err());
        assert!(start.elapsed() >= Duration::from_millis(200));
    }
}
