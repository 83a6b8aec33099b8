// Expected outputs are what Go's text/template and html/template print, taken from their package
// documentation and tests (the Unix time from `date -u -d 2026-11-26T18:47:25Z +%s`), not our output.
use std::any::Any;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::*;

fn run(text: &str, data: &Value) -> Result<String, TemplateError> {
    Template::parse(text, &NoFuncs)?.execute(data, &NoFuncs)
}

#[test]
fn define_and_template_as_the_text_template_docs_show() {
    let t = r#"{{define "T1"}}ONE{{end}}{{define "T2"}}TWO {{template "T1"}}{{end}}{{define "T3"}}{{template "T1"}} {{template "T2"}}{{end}}{{template "T3"}}"#;
    assert_eq!(run(t, &Value::Nil).unwrap(), "ONE TWO ONE");
    // The argument becomes both `.` and `$` inside the called template.
    let t = r#"{{define "x"}}[{{.}}|{{$}}]{{end}}{{template "x" "a"}}{{template "x"}}"#;
    assert_eq!(
        run(t, &Value::str("dot")).unwrap(),
        "[a|a][<no value>|<no value>]"
    );
    // block = define + template.
    let t = r#"{{block "list" .}}<{{range .}}{{.}}{{end}}>{{end}}"#;
    let data = Value::List(Rc::new(vec![Value::str("a"), Value::str("b")]));
    assert_eq!(run(t, &data).unwrap(), "<ab>");
    let e = run(r#"{{template "nope"}}"#, &Value::Nil).unwrap_err();
    assert!(e.message.contains("no template \"nope\""), "{e}");
    assert!(Template::parse(r#"{{if 1}}{{define "x"}}{{end}}{{end}}"#, &NoFuncs).is_err());
    assert!(Template::parse(r#"{{define x}}{{end}}"#, &NoFuncs).is_err());
    // Unbounded recursion is an error, not a stack overflow.
    let e = run(
        r#"{{define "r"}}{{template "r"}}{{end}}{{template "r"}}"#,
        &Value::Nil,
    )
    .unwrap_err();
    assert!(e.message.contains("depth"), "{e}");
}

#[test]
fn a_set_shares_definitions_and_later_ones_win_unless_empty() {
    let mut set = TemplateSet::new();
    set.add_file(
        r#"{{define "greet"}}hello {{.}}{{end}}{{define "x"}}X{{end}}"#,
        &NoFuncs,
    )
    .unwrap();
    set.add_file(
        r#"{{define "greet"}}hi {{.}}{{end}}{{define "x"}}  {{end}}"#,
        &NoFuncs,
    )
    .unwrap();
    let t = set
        .parse(r#"{{template "greet" "you"}} {{template "x"}}"#, &NoFuncs)
        .unwrap();
    assert_eq!(t.execute(&Value::Nil, &NoFuncs).unwrap(), "hi you X");
    // A string's own definitions are its alone.
    let own = set
        .parse(r#"{{define "own"}}O{{end}}{{template "own"}}"#, &NoFuncs)
        .unwrap();
    assert_eq!(own.execute(&Value::Nil, &NoFuncs).unwrap(), "O");
    assert!(!set.has("own"));
}

#[derive(Debug)]
struct Kv(Value);

impl Object for Kv {
    fn type_name(&self) -> &'static str {
        "template.KV"
    }
    fn plain(&self) -> &Value {
        &self.0
    }
    fn method(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let Value::Map(m) = &self.0 else { return None };
        match name {
            "Names" => Some(Ok(Value::strings(m.keys()))),
            "Without" => Some(as_str(&args[0], name).map(|k| {
                let mut m = (**m).clone();
                m.remove(k);
                Value::object(Kv(Value::Map(Rc::new(m))))
            })),
            _ => None,
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[test]
fn methods_come_before_keys_and_take_arguments() {
    let m = BTreeMap::from([
        ("a".to_string(), "1".to_string()),
        ("Names".to_string(), "shadowed".to_string()),
    ]);
    let kv = Value::object(Kv(Value::labels(&m)));
    let data = Value::Struct("data", Rc::new(BTreeMap::from([("L".to_string(), kv)])));
    let out = run(
        r#"{{ .L.a }} {{ .L.Names }} {{ len .L }} {{ (.L.Without "a").Names }} {{ with .L.Without "Names" }}{{ .a }}{{ end }} {{ range $k, $v := .L }}{{ $k }}{{ end }} {{ index .L "a" }}"#,
        &data,
    )
    .unwrap();
    assert_eq!(out, "1 [Names a] 2 [Names] 1 Namesa 1");
    let e = run(r#"{{ .L.a "x" }}"#, &data).unwrap_err();
    assert!(e.message.contains("cannot be invoked as function"), "{e}");
}

#[test]
fn html_escaping_as_html_template_escapes_text() {
    let t = Template::parse("Hello, {{.}}!", &NoFuncs).unwrap();
    let out = t
        .execute_html(
            &Value::str("<script>alert('you have been pwned')</script>"),
            &NoFuncs,
        )
        .unwrap();
    assert_eq!(
        out,
        "Hello, &lt;script&gt;alert(&#39;you have been pwned&#39;)&lt;/script&gt;!"
    );
    // template.HTML is written as is; `+` and `"` are escaped (html/template's table).
    let data = Value::List(Rc::new(vec![
        SafeHtml::value("<b>x</b>".into()),
        Value::str("a+\"b\""),
    ]));
    let t = Template::parse("{{range .}}{{.}}{{end}}", &NoFuncs).unwrap();
    assert_eq!(
        t.execute_html(&data, &NoFuncs).unwrap(),
        "<b>x</b>a&#43;&#34;b&#34;"
    );
    assert_eq!(t.execute(&data, &NoFuncs).unwrap(), "<b>x</b>a+\"b\"");
}

#[test]
fn times_print_and_format_as_go() {
    let t = chrono::DateTime::parse_from_rfc3339("2026-11-26T18:47:25.5Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let data = time::GoTime::value(Some(t));
    let out = run(
        r#"{{ . }}|{{ .Format "Jan 2, 2006 at 3:04pm (MST)" }}|{{ .Unix }}|{{ .IsZero }}"#,
        &data,
    )
    .unwrap();
    assert_eq!(
        out,
        "2026-11-26 18:47:25.5 +0000 UTC|Nov 26, 2026 at 6:47pm (UTC)|1795718845|false"
    );
    assert_eq!(
        run("{{ . }} {{ .IsZero }}", &time::GoTime::value(None)).unwrap(),
        "0001-01-01 00:00:00 +0000 UTC true"
    );
}

#[test]
fn unknown_functions_are_refused_at_parse_time() {
    struct One;
    impl Funcs for One {
        fn has(&self, name: &str) -> bool {
            name == "one"
        }
        fn call(&self, _: &str, _: &[Value]) -> Result<Value, String> {
            Ok(Value::Int(1))
        }
    }
    assert_eq!(
        Template::parse("{{ one }}", &One)
            .unwrap()
            .execute(&Value::Nil, &One)
            .unwrap(),
        "1"
    );
    let e = Template::parse("{{ two }}", &One).unwrap_err();
    assert_eq!(e.message, "function \"two\" not defined");
    let e = Template::parse(r#"{{define "x"}}{{ $y }}{{end}}"#, &One).unwrap_err();
    assert!(e.message.contains("undefined variable"), "{e}");
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let parens = format!("{{{{ {}1{} }}}}", "(".repeat(100_000), ")".repeat(100_000));
    assert!(Template::parse(&parens, &NoFuncs)
        .unwrap_err()
        .message
        .contains("nested too deeply"));
    let ifs = format!(
        "{}x{}",
        "{{ if 1 }}".repeat(100_000),
        "{{ end }}".repeat(100_000)
    );
    assert!(Template::parse(&ifs, &NoFuncs)
        .unwrap_err()
        .message
        .contains("nested too deeply"));
    let ok = format!("{}x{}", "{{ if 1 }}".repeat(50), "{{ end }}".repeat(50));
    assert_eq!(run(&ok, &Value::Nil).unwrap(), "x");
}

#[test]
fn literal_calls_are_found_or_declared_unknown() {
    use crate::CallArg::{Literal, Printf};
    let q = |t: &str| crate::literal_calls(t, "query").unwrap();
    let lit = |s: &str| Literal(s.to_string());
    assert_eq!(q("no calls {{ .Value }}"), Some(vec![]));
    assert_eq!(
        q(
            r#"{{ with query "up" }}{{ . }}{{ end }} {{ "a" | query | first }} {{ if (query "b") }}x{{ end }}"#
        ),
        Some(vec![lit("up"), lit("a"), lit("b")])
    );
    assert_eq!(
        q(r#"{{ define "t" }}{{ query "c" }}{{ end }}"#),
        Some(vec![lit("c")])
    );
    assert_eq!(
        q(r#"{{ query (printf "x{a=%q}" .Labels.a) }} {{ printf "y{b=%q}" $labels.b | query }}"#),
        Some(vec![Printf("x{a=%q}".into()), Printf("y{b=%q}".into())])
    );
    assert_eq!(q(r#"{{ $q := "up" }}{{ query $q }}"#), None);
    assert_eq!(q(r#"{{ .Labels.x | query }}"#), None);
    assert_eq!(q(r#"{{ query (printf .Labels.f) }}"#), None);
}
