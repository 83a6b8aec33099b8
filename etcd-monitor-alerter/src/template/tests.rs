// Expected outputs are what Go's text/template with Prometheus' functions prints (Prometheus'
// template/template_test.go cases and the Go text/template documentation), not our own output.
use super::*;

struct Q;
impl Funcs for Q {
    fn query(&self, q: &str) -> Result<QueryRows, String> {
        // Stands in for the evaluator: the template engine only needs rows back.
        match q {
            "up" => Ok(vec![
                (
                    BTreeMap::from([("instance".to_string(), "b".to_string())]),
                    0.0,
                ),
                (
                    BTreeMap::from([("instance".to_string(), "a".to_string())]),
                    1.0,
                ),
            ]),
            "none" => Ok(vec![]),
            other => Err(format!("bad query {other}")),
        }
    }
}

fn run(text: &str, value: f64) -> Result<String, TemplateError> {
    let labels = BTreeMap::from([
        ("job".to_string(), "etcd".to_string()),
        ("instance".to_string(), "host.example.com:2379".to_string()),
    ]);
    let ext = BTreeMap::from([("cluster".to_string(), "prod".to_string())]);
    let data = AlertData {
        labels: &labels,
        external_labels: &ext,
        external_url: "http://x",
        value,
    };
    execute_rule_template(&parse_rule_template(text)?, &data.to_value(), &Q)
}

#[test]
fn prometheus_cases() {
    let cases: &[(&str, f64, &str)] = &[
        ("{{ $value }}", 0.5, "0.5"),
        ("{{ $value }}", 1e21, "1e+21"),
        ("{{ $value }}", 3.0, "3"),
        ("{{ .Value }}", 11.0, "11"),
        ("{{ $labels.job }}", 0.0, "etcd"),
        ("{{ .Labels.job }}/{{ $labels.missing }}/", 0.0, "etcd//"),
        ("{{ $externalLabels.cluster }}", 0.0, "prod"),
        ("{{ .ExternalLabels.cluster }} {{ $externalURL }}", 0.0, "prod http://x"),
        ("{{ printf \"%.2f\" $value }}", 1.0 / 3.0, "0.33"),
        ("{{ $value | printf \"%.1f\" }}", 2.25, "2.2"),
        ("{{ humanize $value }}", 1234567.0, "1.235M"),
        ("{{ $value | humanize1024 }}", 1048576.0, "1Mi"),
        ("{{ humanizeDuration $value }}", 90061.0, "1d 1h 1m 1s"),
        ("{{ humanizePercentage $value }}", 0.5, "50%"),
        ("{{ humanizeTimestamp $value }}", 1435065584.128, "2015-06-23 13:19:44.128 +0000 UTC"),
        ("{{ toUpper \"abc\" }}{{ toLower \"DEF\" }}{{ title \"hello world\" }}", 0.0, "ABCdefHello World"),
        ("{{ reReplaceAll \"(a)b\" \"x$1\" \"abab\" }}", 0.0, "xaxa"),
        ("{{ match \"^e\" $labels.job }}", 0.0, "true"),
        ("{{ if gt $value 1.0 }}big{{ else }}small{{ end }}", 2.0, "big"),
        ("{{ if gt $value 1.0 }}big{{ else if gt $value 0.5 }}mid{{ else }}small{{ end }}", 0.7, "mid"),
        ("{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}", 0.0, "instance=host.example.com:2379;job=etcd;"),
        ("{{ with $labels.job }}[{{ . }}]{{ end }}{{ with $labels.nope }}x{{ else }}none{{ end }}", 0.0, "[etcd]none"),
        ("{{ range query \"up\" }}{{ .Labels.instance }}:{{ .Value }} {{ end }}", 0.0, "b:0 a:1 "),
        ("{{ range query \"up\" | sortByLabel \"instance\" }}{{ .Labels.instance }} {{ end }}", 0.0, "a b "),
        ("{{ query \"up\" | first | value }}", 0.0, "0"),
        ("{{ with query \"up\" }}{{ . | first | label \"instance\" }}{{ end }}", 0.0, "b"),
        ("{{ with query \"none\" }}yes{{ else }}empty{{ end }}", 0.0, "empty"),
        ("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}", 0.0, "2"),
        ("a {{- \" b \" -}} c", 0.0, "a b c"),
        ("{{/* comment */}}x", 0.0, "x"),
        ("{{ stripPort $labels.instance }} {{ stripDomain $labels.instance }}", 0.0, "host.example.com host:2379"),
        ("{{ len $labels }} {{ index $labels \"job\" }}", 0.0, "2 etcd"),
        ("{{ and 1 0 }} {{ or 0 \"\" \"x\" }} {{ not true }}", 0.0, "0 x false"),
        ("{{ eq $labels.job \"x\" \"etcd\" }}", 0.0, "true"),
        ("{{ print 1 2 \"a\" 3 }}", 0.0, "1 2a3"),
        ("{{ printf \"%s %d %v %5.2f|%-4s|\" \"a\" 7 $value 3.25159 \"b\" }}", 0.25, "a 7 0.25  3.25|b   |"),
        ("{{ range $i, $e := query \"up\" }}{{ if eq $i 1 }}{{ break }}{{ end }}{{ $e.Value }}{{ end }}", 0.0, "0"),
        ("{{ \"a\\tb\" }}{{ `raw\\n` }}", 0.0, "a\tbraw\\n"),
        ("{{ 0x10 }} {{ 1e3 }} {{ -2 }} {{ 'a' }}", 0.0, "16 1000 -2 97"),
        ("{{ (query \"up\" | first).Labels.instance }}", 0.0, "b"),
    ];
    for (text, value, want) in cases {
        assert_eq!(run(text, *value).as_deref(), Ok(*want), "template {text:?}");
    }
}

#[test]
fn errors_as_go_reports_them() {
    assert!(parse_rule_template("{{ $nope }}")
        .unwrap_err()
        .message
        .contains("undefined variable"));
    assert!(parse_rule_template("{{ nofunc 1 }}")
        .unwrap_err()
        .message
        .contains("not defined"));
    assert!(parse_rule_template("{{ if 1 }}").is_err());
    assert!(parse_rule_template("{{ end }}").is_err());
    assert!(parse_rule_template("{{ .Labels").is_err());
    assert!(parse_rule_template("{{ \"abc }}").is_err());
    // Go refuses to compare an int constant with a float64 value.
    assert!(run("{{ if gt $value 1 }}x{{ end }}", 2.0)
        .unwrap_err()
        .message
        .contains("incompatible types"));
    assert!(run("{{ query \"none\" | first }}", 0.0)
        .unwrap_err()
        .message
        .contains("first() called on vector with no elements"));
    assert!(run("{{ .Nope }}", 0.0)
        .unwrap_err()
        .message
        .contains("can't evaluate field Nope"));
    let labels = BTreeMap::new();
    let data = AlertData {
        labels: &labels,
        external_labels: &labels,
        external_url: "",
        value: 1.0,
    };
    let s = expand_rule_template("__alert_X", "{{ first 1 }}", &data, &NoQuery);
    assert!(
        s.starts_with("<error expanding template: template: __alert_X"),
        "{s}"
    );
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        #[test]
        fn never_panics(text in "[ -~\\n]{0,80}") {
            if let Ok(t) = parse_rule_template(&text) {
                let labels = BTreeMap::new();
                let data = AlertData { labels: &labels, external_labels: &labels, external_url: "", value: 1.0 };
                let _ = execute_rule_template(&t, &data.to_value(), &NoQuery);
            }
        }

        #[test]
        fn never_panics_on_actions(parts in proptest::collection::vec(prop_oneof![
            Just("{{"), Just("}}"), Just("{{-"), Just(" -}}"), Just("if"), Just("else"), Just("end"), Just("range"),
            Just("with"), Just("$labels"), Just("$value"), Just(".Labels"), Just(".job"), Just("|"), Just("("), Just(")"),
            Just("printf"), Just("\"%5.2f\""), Just("humanize"), Just("1"), Just("1.5"), Just(":="), Just("$x"), Just("="),
            Just(","), Just("break"), Just("\""), Just("`"), Just("'"), Just(" "), Just("first"), Just("query"),
            Just("\"up\""), Just("/*"), Just("*/"), Just("eq"), Just("and"), Just("index"), Just("len")
        ], 0..24)) {
            let text: String = parts.concat();
            if let Ok(t) = parse_rule_template(&text) {
                let labels = BTreeMap::from([("job".to_string(), "etcd".to_string())]);
                let data = AlertData { labels: &labels, external_labels: &labels, external_url: "", value: 1.0 };
                let _ = execute_rule_template(&t, &data.to_value(), &Q);
            }
        }
    }
}
