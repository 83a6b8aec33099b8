//! Alertmanager-style notifications (placeholder until the notifications issue lands).
