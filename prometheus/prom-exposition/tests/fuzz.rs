//! Property tests: the parser never panics on arbitrary input, and what the writers write, it reads back.

use prom_exposition::{
    parse_text, parse_text_filtered, write_openmetrics, write_text, MetricFamily, MetricKind,
    Sample,
};
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_]{0,12}"
}

fn label_value() -> impl Strategy<Value = String> {
    // Any text, including quotes, backslashes, newlines and non-ASCII.
    ".{0,12}|[\"\\\\\n]{1,4}"
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("NaN compares unequal", |v| !v.is_nan()),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        (-1_000_000i64..1_000_000).prop_map(|i| i as f64),
    ]
}

fn family() -> impl Strategy<Value = MetricFamily> {
    (
        name(),
        prop::option::of(".{0,20}"),
        prop::collection::vec(
            (
                prop::collection::btree_map("[a-z_][a-z0-9_]{0,6}", label_value(), 0..4),
                value(),
            ),
            1..4,
        ),
        any::<bool>(),
    )
        .prop_map(|(name, help, samples, gauge)| MetricFamily {
            name: format!("f_{name}"),
            help,
            kind: if gauge {
                MetricKind::Gauge
            } else {
                MetricKind::Untyped
            },
            samples: samples
                .into_iter()
                .map(|(labels, v)| {
                    Sample::new(format!("f_{name}"), labels.into_iter().collect(), v)
                })
                .collect(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics(input in "(.|\n|#|\\{|\\}|\"|=|,| ){0,200}") {
        let _ = parse_text(&input);
    }

    #[test]
    fn parser_never_panics_on_near_valid_lines(
        n in name(), l in label_value(), v in "[-+0-9.eEInfNa]{0,8}", ts in "[0-9.]{0,5}"
    ) {
        let line = format!("{n}{{a=\"{l}\"}} {v} {ts}\n");
        let _ = parse_text(&line);
        let _ = parse_text(&format!("{line}# EOF\n"));
    }

    #[test]
    fn text_round_trip(mut families in prop::collection::vec(family(), 1..5)) {
        // Names must be unique per exposition.
        families.sort_by(|a, b| a.name.cmp(&b.name));
        families.dedup_by(|a, b| a.name == b.name);
        for f in &mut families {
            // HELP text is one line; escaping handles the rest.
            if let Some(h) = &mut f.help { *h = h.replace('\r', ""); }
        }
        let mut out = String::new();
        write_text(&families, &mut out);
        let back = parse_text(&out).unwrap();
        prop_assert_eq!(back.len(), families.len());
        for (a, b) in back.iter().zip(&families) {
            prop_assert_eq!(&a.samples, &b.samples);
        }
        let mut om = String::new();
        write_openmetrics(&families, &mut om);
        let back = parse_text(&om).unwrap();
        for (a, b) in back.iter().zip(&families) {
            prop_assert_eq!(&a.samples, &b.samples);
        }
    }

    /// Filtering by name never changes what fails, and keeps exactly the samples the full parse has
    /// under the kept names: the alerter drops unselectable series before building their labels.
    #[test]
    fn filtered_parse_agrees_with_the_full_parse(
        input in "((f_[ab]|g_[ab])(\\{(a|b)=\"[a-z\\\\\"]{0,3}\"(,b=\"x\")?\\})? [0-9]{1,3}( [0-9]{1,3})?\n|# TYPE (f_a|g_b) gauge\n|# HELP f_b x\n|garbage\\{\n){0,12}(# EOF\n)?"
    ) {
        let keep = |n: &str| n.starts_with("f_");
        let full = parse_text(&input);
        let filtered = parse_text_filtered(&input, &keep);
        prop_assert_eq!(full.is_ok(), filtered.is_ok(), "{:?} vs {:?}", full, filtered);
        if let (Ok(full), Ok(filtered)) = (full, filtered) {
            let all: Vec<&Sample> = full.iter().flat_map(|f| &f.samples).collect();
            let kept: Vec<&Sample> = all.iter().copied().filter(|s| keep(&s.name)).collect();
            let got: Vec<&Sample> = filtered.families.iter().flat_map(|f| &f.samples).collect();
            prop_assert_eq!(got, kept);
            prop_assert_eq!(filtered.skipped, all.iter().filter(|s| !keep(&s.name)).count());
        }
    }
}
