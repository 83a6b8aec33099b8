//! The PromQL evaluator against its references: promtool's recorded answers (the corpus), Prometheus' own
//! limits, the public API, and arbitrary input.

mod api;
mod corpus;
mod fuzz;
mod max_samples;
