// The messages and lines are what `promtool check rules` (Prometheus 2.42) prints for the same files.
use super::*;

fn errors(text: &str) -> Vec<String> {
    parse_rules(Path::new("f.yml"), text)
        .err()
        .unwrap_or_default()
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn promtool_messages() {
    let text = r#"groups:
  - name: a
    rules:
      - alert: X
        expr: up ==
        for: 5m
      - record: "bad name"
        expr: up
      - alert: Y
        expr: up
        labels:
          "bad-label": x
        annotations:
          summary: "{{ $nope }}"
      - record: r
        expr: up
        for: 1m
"#;
    let e = errors(text);
    assert_eq!(e.len(), 5, "{e:#?}");
    assert!(
        e[0].starts_with("f.yml:5: group \"a\", rule 1, \"X\": could not parse expression:"),
        "{}",
        e[0]
    );
    assert_eq!(
        e[1],
        "f.yml:7: group \"a\", rule 2, \"bad name\": invalid recording rule name: bad name"
    );
    assert_eq!(
        e[2],
        "f.yml:11: group \"a\", rule 3, \"Y\": invalid label name: bad-label"
    );
    assert_eq!(e[3], "f.yml:13: group \"a\", rule 3, \"Y\": annotation \"summary\": template: __alert_Y:1: undefined variable \"$nope\"");
    assert_eq!(
        e[4],
        "f.yml:17: group \"a\", rule 4, \"r\": invalid field 'for' in recording rule"
    );
}

#[test]
fn structure_errors() {
    let e = errors(
        "groups:\n  - name: a\n    foo: 1\n    rules:\n      - alert: X\n        expr: up\n",
    );
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("f.yml:3: groups[0]: unknown field `foo`"),
        "{}",
        e[0]
    );
    let e = errors("x: 1\n");
    assert!(e[0].starts_with("f.yml:1: unknown field `x`"), "{}", e[0]);
    let e = errors("groups: [\n");
    assert!(e[0].starts_with("f.yml:"), "{}", e[0]);
    let text = "groups:\n  - name: a\n    rules:\n      - alert: X\n        expr: up == 0\n  - name: a\n    rules:\n      - expr: up\n      - alert: Z\n        record: z\n        expr: up\n      - alert: W\n        for: 5x\n        expr: up\n        labels:\n          a: \"{{ if }}\"\n";
    let e = errors(text);
    assert_eq!(
        e[0],
        "f.yml:6: groupname: \"a\" is repeated in the same file"
    );
    assert_eq!(
        e[1],
        "f.yml:8: group \"a\", rule 1, \"\": one of 'record' or 'alert' must be set"
    );
    assert_eq!(
        e[2],
        "f.yml:10: group \"a\", rule 2, \"Z\": only one of 'record' and 'alert' must be set"
    );
    assert_eq!(
        e[3],
        "f.yml:13: group \"a\", rule 3, \"W\": not a valid duration string: \"5x\""
    );
    assert!(e[4].starts_with("f.yml:15: group \"a\", rule 3, \"W\": label \"a\": template: __alert_W:1: missing value for if"), "{}", e[4]);
}

#[test]
fn valid_file_and_duplicates() {
    let text = "groups:\n- name: g\n  interval: 30s\n  limit: 3\n  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n    labels: {a: b}\n  - alert: Down\n    expr: job:up:sum == 0\n    for: 5m\n    keep_firing_for: 1m\n    annotations:\n      summary: '{{ $labels.job }} down'\n  - alert: Down\n    expr: job:up:sum == 0\n";
    let (groups, lint) = parse_rules(Path::new("f.yml"), text).unwrap();
    assert_eq!(groups.len(), 1);
    let g = &groups[0];
    assert_eq!((g.interval, g.limit), (Some(Duration::from_secs(30)), 3));
    assert_eq!(g.rules.len(), 3);
    assert_eq!(g.rules[1].line, 9);
    match &g.rules[1].kind {
        RuleKind::Alerting {
            hold,
            keep_firing_for,
            ..
        } => {
            assert_eq!(*hold, Duration::from_secs(300));
            assert_eq!(*keep_firing_for, Duration::from_secs(60));
        }
        _ => panic!("alert expected"),
    }
    assert_eq!(lint.duplicates.len(), 1);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]
        #[test]
        fn never_panics(text in "[ -~\\n]{0,200}") {
            let _ = parse_rules(Path::new("f.yml"), &text);
        }

        #[test]
        fn never_panics_on_rule_shapes(parts in proptest::collection::vec(prop_oneof![
            Just("groups:\n"), Just("- name: a\n"), Just("  rules:\n"), Just("  - alert: X\n"), Just("    expr: up\n"),
            Just("    for: 5m\n"), Just("    labels:\n"), Just("      a: '{{ $value }}'\n"), Just("  - record: r\n"),
            Just("    expr: sum(\n"), Just("  interval: 1x\n"), Just("  limit: -1\n"), Just("    annotations: {}\n"),
            Just("  "), Just("- "), Just("\t"), Just("'"), Just("{{"), Just("keep_firing_for: 1m\n")
        ], 0..20)) {
            let _ = parse_rules(Path::new("f.yml"), &parts.concat());
        }
    }
}
