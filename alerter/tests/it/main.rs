//! The alerter library against promtool's verdicts and against misbehaving scrape targets.

mod promtool_agreement;
mod scrape_faults;
