//! The alerter library against promtool's verdicts and against misbehaving scrape targets.

mod forward;
mod promtool_agreement;
mod scrape_faults;
