//! PromQL evaluation (placeholder until the alerter engine lands).
