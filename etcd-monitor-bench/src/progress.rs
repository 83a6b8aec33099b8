//! A progress bar on stderr, only when stderr is a terminal (never in logs, CI or Kubernetes).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::StopAfter;

#[derive(Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar when `wanted` and stderr is a terminal; otherwise nothing is drawn.
    pub fn new(wanted: bool) -> Progress {
        let bar = (wanted && std::io::stderr().is_terminal())
            .then(|| ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()));
        Progress { bar }
    }

    pub fn hidden() -> Progress {
        Progress { bar: None }
    }

    pub(crate) fn start(&self, len: Option<u64>, stop: StopAfter) {
        let Some(bar) = &self.bar else { return };
        match len {
            Some(n) => {
                bar.set_length(n);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{elapsed_precise} [{bar:40}] {pos}/{len} {per_sec} eta {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
            }
            None => {
                let limit = match stop {
                    StopAfter::Duration(d) => humantime::format_duration(d).to_string(),
                    StopAfter::Total(n) => n.to_string(),
                };
                bar.set_style(
                    ProgressStyle::with_template(&format!(
                        "{{elapsed_precise}} / {limit} {{spinner}} {{pos}} requests {{per_sec}}"
                    ))
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
            }
        }
        bar.enable_steady_tick(Duration::from_millis(200));
    }

    pub(crate) fn set(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
