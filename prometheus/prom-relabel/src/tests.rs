//! Cases from Prometheus 2.42's `model/relabel/relabel_test.go` (inputs and expected outputs are
//! Prometheus'), plus the configuration checks with Prometheus' messages. The broad comparison with a
//! running Prometheus is `etcd-monitor/tests/it/alerter/relabel.rs`.

use super::*;

fn steps(yaml: &str) -> Vec<RelabelConfig> {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
}

fn set(pairs: &[(&str, &str)]) -> LabelSet {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn check(input: &[(&str, &str)], yaml: &str, want: Option<&[(&str, &str)]>) {
    let got = process(&set(input), &steps(yaml));
    assert_eq!(got, want.map(set), "{yaml}");
}

#[test]
fn replace_with_groups_and_defaults() {
    let abc = [("a", "foo"), ("b", "bar"), ("c", "baz")];
    check(
        &abc,
        "- {source_labels: [a], regex: 'f(.*)', target_label: d, replacement: 'ch${1}-ch${1}'}",
        Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "choo-choo")]),
    );
    check(
        &abc,
        "- {source_labels: [a, b], regex: 'f(.*);(.*)r', target_label: a, replacement: 'b${1}${2}m'}\n- {source_labels: [c, a], regex: '(b).*b(.*)ba(.*)', target_label: d, replacement: '$1$2$2$3'}",
        Some(&[("a", "boobam"), ("b", "bar"), ("c", "baz"), ("d", "boooom")]),
    );
    // No match: nothing changes. An empty result deletes the target.
    check(
        &[("a", "foo")],
        "- {source_labels: [a], regex: 'xyz', target_label: d, replacement: x}",
        Some(&[("a", "foo")]),
    );
    check(
        &[("a", "foo"), ("b", "bar")],
        "- {source_labels: [c], target_label: b}",
        Some(&[("a", "foo")]),
    );
    // A target name that expands to an invalid name deletes the label as written.
    check(
        &[("a", "some-name-value")],
        "- {source_labels: [a], regex: 'some-([^-]+)-([^,]+)', target_label: '${1}', replacement: '${2}'}",
        Some(&[("a", "some-name-value"), ("name", "value")]),
    );
    check(
        &[("a", "some-name-0")],
        "- {source_labels: [a], regex: 'some-([^-]+)-([^,]+)', target_label: '${3}', replacement: '${1}'}",
        Some(&[("a", "some-name-0")]),
    );
    check(
        &[("a", "some-0-value")],
        "- {source_labels: [a], regex: 'some-([^-]+)-([^,]+)', target_label: '${1}', replacement: '${2}'}",
        Some(&[("a", "some-0-value")]),
    );
    // The regex is anchored.
    check(
        &[("a", "foo")],
        "- {source_labels: [a], regex: 'o', target_label: b, replacement: x}",
        Some(&[("a", "foo")]),
    );
}

#[test]
fn keep_drop_and_equal() {
    let abc = [("a", "foo"), ("b", "bar"), ("c", "baz")];
    check(
        &abc,
        "- {source_labels: [a], regex: '.*o.*', action: drop}",
        None,
    );
    check(
        &abc,
        "- {source_labels: [b], regex: 'f(.*)', action: drop}",
        Some(&abc),
    );
    check(
        &abc,
        "- {source_labels: [c], regex: 'f(.*)', action: keep}",
        None,
    );
    check(
        &abc,
        "- {source_labels: [a], regex: 'f(.*)', action: Keep}",
        Some(&abc),
    );
    check(
        &[("a", "1"), ("b", "1"), ("c", "2")],
        "- {source_labels: [a], target_label: b, action: keepequal}",
        Some(&[("a", "1"), ("b", "1"), ("c", "2")]),
    );
    check(
        &[("a", "1"), ("b", "1"), ("c", "2")],
        "- {source_labels: [c], target_label: b, action: keepequal}",
        None,
    );
    check(
        &[("a", "1"), ("b", "1")],
        "- {source_labels: [a], target_label: b, action: dropequal}",
        None,
    );
}

#[test]
fn hashmod_as_prometheus_computes_it() {
    check(
        &[("a", "foo"), ("b", "bar"), ("c", "baz")],
        "- {source_labels: [c], target_label: d, action: hashmod, modulus: 1000}",
        Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "976")]),
    );
    check(
        &[("a", "foo\nbar")],
        "- {source_labels: [a], target_label: b, action: hashmod, modulus: 1000}",
        Some(&[("a", "foo\nbar"), ("b", "734")]),
    );
}

#[test]
fn label_map_drop_keep_and_case() {
    check(
        &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
        "- {regex: '(b.*)', replacement: 'bar_${1}', action: labelmap}",
        Some(&[
            ("a", "foo"),
            ("b1", "bar"),
            ("b2", "baz"),
            ("bar_b1", "bar"),
            ("bar_b2", "baz"),
        ]),
    );
    check(
        &[
            ("__meta_my_bar", "aaa"),
            ("__meta_my_baz", "bbb"),
            ("__meta_other", "ccc"),
        ],
        "- {regex: '__meta_(my.*)', replacement: '${1}', action: labelmap}",
        Some(&[
            ("__meta_my_bar", "aaa"),
            ("__meta_my_baz", "bbb"),
            ("__meta_other", "ccc"),
            ("my_bar", "aaa"),
            ("my_baz", "bbb"),
        ]),
    );
    check(
        &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
        "- {regex: '(b.*)', action: labeldrop}",
        Some(&[("a", "foo")]),
    );
    check(
        &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
        "- {regex: '(b.*)', action: labelkeep}",
        Some(&[("b1", "bar"), ("b2", "baz")]),
    );
    check(
        &[("foo", "bAr123Foo")],
        "- {source_labels: [foo], target_label: foo_uppercase, action: uppercase}\n- {source_labels: [foo], target_label: foo_lowercase, action: lowercase}",
        Some(&[
            ("foo", "bAr123Foo"),
            ("foo_lowercase", "bar123foo"),
            ("foo_uppercase", "BAR123FOO"),
        ]),
    );
}

#[test]
fn expand_follows_go() {
    let re = Regex::new("^(?:(?P<first>a)(b)?)$").unwrap();
    let caps = re.captures("a").unwrap();
    let e = |t: &str| expand(t, &re, &caps);
    assert_eq!(e("$1-${1}x-$first-${first}"), "a-ax-a-a");
    // `$1x` is the group named "1x" (none), `$2` did not match, `$01` is a name in Go.
    assert_eq!(e("[$1x][$2][$01][$9]"), "[][][][]");
    assert_eq!(e("$$1 $ ${ ${1"), "$1 $ ${ ${1");
}

fn refused(yaml: &str) -> String {
    serde_yaml::from_str::<Vec<RelabelConfig>>(yaml)
        .expect_err(yaml)
        .to_string()
}

#[test]
fn configuration_checks_with_prometheus_messages() {
    for (yaml, want) in [
        ("- {action: nope}", "unknown relabel action \"nope\""),
        ("- {action: ''}", "relabel action cannot be empty"),
        ("- {action: hashmod, target_label: x}", "requires non-zero modulus"),
        ("- {source_labels: [a]}", "replace action requires 'target_label' value"),
        (
            "- {source_labels: [a], target_label: '1x'}",
            "\"1x\" is invalid 'target_label' for replace action",
        ),
        (
            "- {source_labels: [a], target_label: b, action: lowercase, replacement: x}",
            "'replacement' can not be set for lowercase action",
        ),
        (
            "- {action: labelmap, replacement: 'a-b'}",
            "\"a-b\" is invalid 'replacement' for labelmap action",
        ),
        (
            "- {action: hashmod, modulus: 2, target_label: '$1'}",
            "\"$1\" is invalid 'target_label' for hashmod action",
        ),
        (
            "- {action: keepequal, source_labels: [a], target_label: b, regex: '(.*)'}",
            "keepequal action requires only 'source_labels' and `target_label`, and no other fields",
        ),
        (
            "- {action: labeldrop, regex: a, source_labels: [a]}",
            "labeldrop action requires only 'regex', and no other fields",
        ),
        ("- {source_labels: [a-b], target_label: c}", "\"a-b\" is not a valid label name"),
        ("- {source_labels: [a], target_label: c, regex: '('}", "invalid regex \"(\""),
        ("- {source_labels: [a], target_label: c, sourcelabels: [b]}", "unknown field `sourcelabels`"),
    ] {
        let e = refused(yaml);
        assert!(e.contains(want), "{yaml}: {e}");
        assert!(!e.contains('\n'), "{yaml}: one line: {e}");
    }
    // Valid target templates.
    for t in ["a", "_a1", "${1}", "$1", "a_${x}b", "$a$b"] {
        assert!(is_valid_target_template(t), "{t}");
    }
    for t in ["", "1", "a-b", "${}", "${1", "$", "a$"] {
        assert!(!is_valid_target_template(t), "{t}");
    }
}

#[test]
fn an_explicit_empty_regex_matches_only_the_empty_string() {
    check(
        &[("a", "foo")],
        "- {source_labels: [b], regex: , target_label: c, replacement: yes}",
        Some(&[("a", "foo"), ("c", "yes")]),
    );
    check(
        &[("a", "foo")],
        "- {source_labels: [a], regex: , target_label: c, replacement: yes}",
        Some(&[("a", "foo")]),
    );
}
