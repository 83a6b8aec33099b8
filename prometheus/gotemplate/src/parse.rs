//! Parsing Go's text/template syntax into a small tree.

use crate::TemplateError;

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
    Break,
    Continue,
    /// `{{template "name" pipeline}}` (also what `{{block}}` leaves in place).
    Template {
        name: String,
        pipe: Option<Pipeline>,
        line: usize,
    },
}

/// A parsed source: its top-level nodes and the templates it defines (`{{define}}`, `{{block}}`).
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub nodes: Vec<Node>,
    pub defines: Vec<(String, Vec<Node>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub line: usize,
    /// Variables declared (`:=`) or assigned (`=`).
    pub decl: Vec<String>,
    pub is_assign: bool,
    pub cmds: Vec<Vec<Operand>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Dot,
    Var(String),
    Func(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    Sub(Box<Pipeline>),
}

/// A term followed by a chain of field names (`.Labels.job`, `$x.a`, `(...).b`).
#[derive(Debug, Clone, PartialEq)]
pub struct Operand {
    pub term: Term,
    pub fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Var(String),
    Field(String),
    Dot,
    Str(String),
    Num(String),
    Char(char),
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// Whether whitespace came right before it (a field chain needs none).
    spaced: bool,
}

/// A raw piece of the source: text, or the inside of `{{ }}` with its line.
enum Piece {
    Text(String),
    Action(String, usize),
}

fn split(src: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = src;
    let mut line = 1;
    let mut trim_next_text = false;
    while !rest.is_empty() {
        let Some(start) = rest.find("{{") else {
            let mut text = rest.to_string();
            if trim_next_text {
                text = text.trim_start().to_string();
            }
            pieces.push(Piece::Text(text));
            break;
        };
        let mut text = rest[..start].to_string();
        if trim_next_text {
            text = text.trim_start().to_string();
        }
        let after = &rest[start + 2..];
        let trim_left =
            after.starts_with("- ") || after.starts_with("-\t") || after.starts_with("-\n");
        if trim_left {
            text = text.trim_end().to_string();
        }
        line += rest[..start].matches('\n').count();
        pieces.push(Piece::Text(text));
        let inner_start = if trim_left { 1 } else { 0 };
        let body = &after[inner_start..];
        // Find the closing delimiter outside of string literals.
        let bytes = body.as_bytes();
        let mut i = 0;
        let mut end = None;
        let mut in_comment = false;
        if body.trim_start().starts_with("/*") {
            in_comment = true;
        }
        while i < bytes.len() {
            if in_comment {
                if body[i..].starts_with("*/") {
                    in_comment = false;
                    i += 2;
                    continue;
                }
                i += 1;
                continue;
            }
            match bytes[i] {
                b'"' => {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' {
                        if bytes[i] == b'\\' {
                            i += 1;
                        }
                        if i < bytes.len() && bytes[i] == b'\n' {
                            return Err(TemplateError::parse(line, "unterminated quoted string"));
                        }
                        i += 1;
                    }
                }
                b'`' => {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'`' {
                        i += 1;
                    }
                }
                b'\'' => {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'\'' {
                        if bytes[i] == b'\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                }
                b'}' if body[i..].starts_with("}}") => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let Some(end) = end else {
            return Err(TemplateError::parse(line, "unclosed action"));
        };
        let mut inner = &body[..end];
        trim_next_text = false;
        if inner.ends_with(" -") || inner.ends_with("\t-") || inner.ends_with("\n-") {
            inner = &inner[..inner.len() - 1];
            trim_next_text = true;
        }
        let trimmed = inner.trim();
        if trimmed.starts_with("/*") {
            if !trimmed.ends_with("*/") {
                return Err(TemplateError::parse(
                    line,
                    "comment ends before closing delimiter",
                ));
            }
        } else {
            pieces.push(Piece::Action(inner.to_string(), line));
        }
        line += body[..end].matches('\n').count();
        rest = &body[end + 2..];
    }
    Ok(pieces)
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn lex(src: &str, line: usize) -> Result<Vec<Token>, TemplateError> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let mut spaced = true;
    let err = |m: String| TemplateError::parse(line, &m);
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            spaced = true;
            i += 1;
            continue;
        }
        let start = i;
        let tok = match c {
            '|' => {
                i += 1;
                Tok::Pipe
            }
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                i += 2;
                Tok::Declare
            }
            '=' => {
                i += 1;
                Tok::Assign
            }
            '"' => {
                i += 1;
                let mut s = String::new();
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err(err("unterminated quoted string".into()));
                    };
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => {
                            let Some(&e) = chars.get(i) else {
                                return Err(err("unterminated quoted string".into()));
                            };
                            i += 1;
                            match e {
                                'n' => s.push('\n'),
                                't' => s.push('\t'),
                                'r' => s.push('\r'),
                                '\\' => s.push('\\'),
                                '"' => s.push('"'),
                                '\'' => s.push('\''),
                                'a' => s.push('\u{7}'),
                                'b' => s.push('\u{8}'),
                                'f' => s.push('\u{c}'),
                                'v' => s.push('\u{b}'),
                                'x' | 'u' | 'U' => {
                                    let n = match e {
                                        'x' => 2,
                                        'u' => 4,
                                        _ => 8,
                                    };
                                    let hex: String = chars.iter().skip(i).take(n).collect();
                                    i += n;
                                    let code = u32::from_str_radix(&hex, 16)
                                        .ok()
                                        .and_then(char::from_u32)
                                        .ok_or_else(|| err(format!("invalid escape \\{e}{hex}")))?;
                                    s.push(code);
                                }
                                other => {
                                    return Err(err(format!("unknown escape sequence \\{other}")))
                                }
                            }
                        }
                        c => s.push(c),
                    }
                }
                Tok::Str(s)
            }
            '`' => {
                i += 1;
                let mut s = String::new();
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err(err("unterminated raw quoted string".into()));
                    };
                    i += 1;
                    if c == '`' {
                        break;
                    }
                    s.push(c);
                }
                Tok::Str(s)
            }
            '\'' => {
                let c1 = chars.get(i + 1).copied();
                let (ch, len) = match c1 {
                    Some('\\') => {
                        let e = chars.get(i + 2).copied().unwrap_or(' ');
                        let ch = match e {
                            'n' => '\n',
                            't' => '\t',
                            '\\' => '\\',
                            '\'' => '\'',
                            other => other,
                        };
                        (ch, 4)
                    }
                    Some(ch) => (ch, 3),
                    None => return Err(err("unterminated character constant".into())),
                };
                if chars.get(i + len - 1) != Some(&'\'') {
                    return Err(err("unterminated character constant".into()));
                }
                i += len;
                Tok::Char(ch)
            }
            '$' => {
                i += 1;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
                Tok::Var(chars[start..i].iter().collect())
            }
            '.' if chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()) && spaced => {
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
                Tok::Num(chars[start..i].iter().collect())
            }
            '.' => {
                i += 1;
                if chars.get(i).is_some_and(|c| is_ident_char(*c)) {
                    let s = i;
                    while i < chars.len() && is_ident_char(chars[i]) {
                        i += 1;
                    }
                    Tok::Field(chars[s..i].iter().collect())
                } else {
                    Tok::Dot
                }
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+')
                    && chars
                        .get(i + 1)
                        .is_some_and(|d| d.is_ascii_digit() || *d == '.')) =>
            {
                i += 1;
                while i < chars.len() {
                    let d = chars[i];
                    let prev = chars[i - 1];
                    if d.is_ascii_alphanumeric()
                        || d == '.'
                        || d == '_'
                        || ((d == '-' || d == '+')
                            && (prev == 'e' || prev == 'E' || prev == 'p' || prev == 'P'))
                    {
                        i += 1;
                    } else {
                        break;
                    }
                }
                Tok::Num(chars[start..i].iter().collect())
            }
            c if is_ident_char(c) => {
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
                Tok::Ident(chars[start..i].iter().collect())
            }
            other => return Err(err(format!("unexpected {other:?} in command"))),
        };
        toks.push(Token { tok, spaced });
        spaced = false;
    }
    Ok(toks)
}

fn parse_number(s: &str, line: usize) -> Result<Term, TemplateError> {
    let clean = s.replace('_', "");
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    let int = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        i64::from_str_radix(b, 2).ok()
    } else if body.len() > 1 && body.starts_with('0') && body.chars().all(|c| c.is_ascii_digit()) {
        i64::from_str_radix(&body[1..], 8).ok()
    } else {
        body.parse::<i64>().ok()
    };
    if let Some(i) = int {
        return Ok(Term::Int(if neg { -i } else { i }));
    }
    match body.parse::<f64>() {
        Ok(f)
            if !body.contains("inf")
                && !body.contains("nan")
                && !body.contains("Inf")
                && !body.contains("NaN") =>
        {
            Ok(Term::Float(if neg { -f } else { f }))
        }
        _ => Err(TemplateError::parse(
            line,
            &format!("bad number syntax: {s:?}"),
        )),
    }
}

/// Nesting deeper than this (parentheses, control structures) is refused rather than risk the stack.
const MAX_NESTING: usize = 100;

struct ActionParser {
    toks: Vec<Token>,
    pos: usize,
    line: usize,
    depth: usize,
}

impl ActionParser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn err(&self, msg: &str) -> TemplateError {
        TemplateError::parse(self.line, msg)
    }

    fn pipeline(&mut self, ctx: &str) -> Result<Pipeline, TemplateError> {
        let mut decl = Vec::new();
        let mut is_assign = false;
        // Declarations: `$x :=`, `$x =`, `$i, $e :=`.
        if let Some(Tok::Var(_)) = self.peek() {
            let save = self.pos;
            let mut names = Vec::new();
            while let Some(Tok::Var(v)) = self.peek().cloned() {
                names.push(v);
                self.pos += 1;
                match self.peek() {
                    Some(Tok::Comma) => {
                        self.pos += 1;
                    }
                    _ => break,
                }
            }
            match self.peek() {
                Some(Tok::Declare) => {
                    self.pos += 1;
                    decl = names;
                }
                Some(Tok::Assign) => {
                    self.pos += 1;
                    decl = names;
                    is_assign = true;
                }
                _ => self.pos = save,
            }
            if decl.len() > 2 || (decl.len() == 2 && ctx != "range") {
                return Err(self.err("too many declarations in command"));
            }
        }
        let mut cmds = Vec::new();
        loop {
            let mut cmd = Vec::new();
            while let Some(t) = self.peek() {
                if matches!(t, Tok::Pipe | Tok::RParen) {
                    break;
                }
                cmd.push(self.operand()?);
            }
            if cmd.is_empty() {
                return Err(self.err(&format!("missing value for {ctx}")));
            }
            cmds.push(cmd);
            match self.peek() {
                Some(Tok::Pipe) => {
                    self.pos += 1;
                }
                _ => break,
            }
        }
        Ok(Pipeline {
            line: self.line,
            decl,
            is_assign,
            cmds,
        })
    }

    fn operand(&mut self) -> Result<Operand, TemplateError> {
        let Some(tok) = self.toks.get(self.pos).cloned() else {
            return Err(self.err("unexpected end of action"));
        };
        self.pos += 1;
        let mut fields = Vec::new();
        let term = match tok.tok {
            Tok::Dot => Term::Dot,
            Tok::Field(f) => {
                fields.push(f);
                Term::Dot
            }
            Tok::Var(v) => Term::Var(v),
            Tok::Str(s) => Term::Str(s),
            Tok::Num(n) => parse_number(&n, self.line)?,
            Tok::Char(c) => Term::Int(c as i64),
            Tok::Ident(id) => match id.as_str() {
                "true" => Term::Bool(true),
                "false" => Term::Bool(false),
                "nil" => Term::Nil,
                _ => Term::Func(id),
            },
            Tok::LParen => {
                self.depth += 1;
                if self.depth > MAX_NESTING {
                    return Err(self.err("parentheses nested too deeply"));
                }
                let p = self.pipeline("parenthesized pipeline")?;
                self.depth -= 1;
                if self.peek() != Some(&Tok::RParen) {
                    return Err(self.err("unclosed left paren"));
                }
                self.pos += 1;
                Term::Sub(Box::new(p))
            }
            Tok::RParen => return Err(self.err("unexpected right paren")),
            other => return Err(self.err(&format!("unexpected {other:?} in operand"))),
        };
        while let Some(Token {
            tok: Tok::Field(f),
            spaced: false,
        }) = self.toks.get(self.pos)
        {
            fields.push(f.clone());
            self.pos += 1;
        }
        if matches!(term, Term::Func(_) | Term::Nil | Term::Bool(_)) && !fields.is_empty() {
            return Err(self.err("unexpected . after term"));
        }
        Ok(Operand { term, fields })
    }

    fn done(&self) -> Result<(), TemplateError> {
        match self.peek() {
            None => Ok(()),
            Some(t) => Err(self.err(&format!("unexpected {t:?} in command"))),
        }
    }
}

enum Item {
    Text(String),
    Action(Vec<Token>, usize),
}

struct TreeParser {
    items: Vec<Item>,
    pos: usize,
    loop_depth: usize,
    nesting: usize,
    defines: Vec<(String, Vec<Node>)>,
}

impl ActionParser {
    /// The quoted template name after `define`, `template` or `block`.
    fn template_name(&mut self, keyword: &str) -> Result<String, TemplateError> {
        match self.toks.get(self.pos).map(|t| t.tok.clone()) {
            Some(Tok::Str(name)) => {
                self.pos += 1;
                Ok(name)
            }
            _ => Err(self.err(&format!("unexpected name in {keyword} clause"))),
        }
    }
}

/// What ended a list: `{{end}}`, `{{else}}` (possibly `{{else if ...}}`), or the end of input.
enum Stop {
    End,
    Else(Option<(String, ActionParser)>),
    Eof,
}

impl TreeParser {
    fn list(&mut self) -> Result<(Vec<Node>, Stop, usize), TemplateError> {
        let mut nodes = Vec::new();
        while self.pos < self.items.len() {
            let item = std::mem::replace(&mut self.items[self.pos], Item::Text(String::new()));
            self.pos += 1;
            match item {
                Item::Text(t) => {
                    if !t.is_empty() {
                        nodes.push(Node::Text(t));
                    }
                }
                Item::Action(toks, line) => {
                    let mut p = ActionParser {
                        toks,
                        pos: 0,
                        line,
                        depth: 0,
                    };
                    let keyword = match p.peek() {
                        Some(Tok::Ident(k)) => Some(k.clone()),
                        _ => None,
                    };
                    match keyword.as_deref() {
                        Some("end") => {
                            p.pos += 1;
                            p.done()?;
                            return Ok((nodes, Stop::End, line));
                        }
                        Some("else") => {
                            p.pos += 1;
                            let chained = match p.peek() {
                                Some(Tok::Ident(k)) if k == "if" || k == "with" => {
                                    let k = k.clone();
                                    p.pos += 1;
                                    Some((k, p))
                                }
                                _ => {
                                    p.done()?;
                                    None
                                }
                            };
                            return Ok((nodes, Stop::Else(chained), line));
                        }
                        Some(k @ ("if" | "range" | "with")) => {
                            p.pos += 1;
                            nodes.push(self.control(k, p)?);
                        }
                        Some(k @ ("break" | "continue")) => {
                            if self.loop_depth == 0 {
                                return Err(TemplateError::parse(
                                    line,
                                    &format!("{{{{{k}}}}} outside {{{{range}}}}"),
                                ));
                            }
                            p.pos += 1;
                            p.done()?;
                            nodes.push(if k == "break" {
                                Node::Break
                            } else {
                                Node::Continue
                            });
                        }
                        Some("define") => {
                            if self.nesting > 0 {
                                return Err(TemplateError::parse(
                                    line,
                                    "unexpected <define> in command",
                                ));
                            }
                            p.pos += 1;
                            let name = p.template_name("define")?;
                            p.done()?;
                            let body = self.body_until_end("define", line)?;
                            self.defines.push((name, body));
                        }
                        Some("template") => {
                            p.pos += 1;
                            let name = p.template_name("template")?;
                            let pipe = if p.peek().is_some() {
                                Some(p.pipeline("template clause")?)
                            } else {
                                None
                            };
                            p.done()?;
                            nodes.push(Node::Template { name, pipe, line });
                        }
                        Some("block") => {
                            p.pos += 1;
                            let name = p.template_name("block")?;
                            let pipe = p.pipeline("block clause")?;
                            p.done()?;
                            self.nesting += 1;
                            let body = self.body_until_end("block", line);
                            self.nesting -= 1;
                            self.defines.push((name.clone(), body?));
                            nodes.push(Node::Template {
                                name,
                                pipe: Some(pipe),
                                line,
                            });
                        }
                        _ => {
                            let pipe = p.pipeline("command")?;
                            p.done()?;
                            nodes.push(Node::Action(pipe));
                        }
                    }
                }
            }
        }
        Ok((nodes, Stop::Eof, 0))
    }

    /// A `{{define}}` or `{{block}}` body: everything up to its `{{end}}`, with no `{{else}}`.
    fn body_until_end(&mut self, keyword: &str, line: usize) -> Result<Vec<Node>, TemplateError> {
        let loops = std::mem::take(&mut self.loop_depth);
        let result = self.list();
        self.loop_depth = loops;
        let (body, stop, l) = result?;
        match stop {
            Stop::End => Ok(body),
            Stop::Else(_) => Err(TemplateError::parse(
                l,
                &format!("unexpected <else> in {keyword}"),
            )),
            Stop::Eof => Err(TemplateError::parse(
                line,
                &format!("unexpected EOF in {keyword}"),
            )),
        }
    }

    fn control(&mut self, keyword: &str, mut p: ActionParser) -> Result<Node, TemplateError> {
        let line = p.line;
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(TemplateError::parse(
                line,
                "control structures nested too deeply",
            ));
        }
        let node = self.control_inner(keyword, &mut p, line);
        self.nesting -= 1;
        node
    }

    fn control_inner(
        &mut self,
        keyword: &str,
        p: &mut ActionParser,
        line: usize,
    ) -> Result<Node, TemplateError> {
        let pipe = p.pipeline(keyword)?;
        p.done()?;
        if keyword == "range" {
            self.loop_depth += 1;
        }
        let (body, stop, _) = self.list()?;
        if keyword == "range" {
            self.loop_depth -= 1;
        }
        let else_list = match stop {
            Stop::End => Vec::new(),
            Stop::Eof => {
                return Err(TemplateError::parse(
                    line,
                    &format!("unexpected EOF in {keyword}"),
                ))
            }
            Stop::Else(None) => {
                let (list, stop, l) = self.list()?;
                match stop {
                    Stop::End => list,
                    Stop::Else(_) => {
                        return Err(TemplateError::parse(l, "expected end; found else"))
                    }
                    Stop::Eof => {
                        return Err(TemplateError::parse(
                            line,
                            &format!("unexpected EOF in {keyword}"),
                        ))
                    }
                }
            }
            Stop::Else(Some((k, p2))) => {
                // `{{else if x}}` is `{{else}}{{if x}}...{{end}}{{end}}` sharing the one `{{end}}`.
                vec![self.control(&k, p2)?]
            }
        };
        Ok(match keyword {
            "if" => Node::If(pipe, body, else_list),
            "range" => Node::Range(pipe, body, else_list),
            _ => Node::With(pipe, body, else_list),
        })
    }
}

pub fn parse(src: &str) -> Result<Parsed, TemplateError> {
    let mut items = Vec::new();
    for piece in split(src)? {
        match piece {
            Piece::Text(t) => items.push(Item::Text(t)),
            Piece::Action(a, line) => {
                let toks = lex(&a, line)?;
                if toks.is_empty() {
                    return Err(TemplateError::parse(line, "missing value for command"));
                }
                items.push(Item::Action(toks, line));
            }
        }
    }
    let mut tp = TreeParser {
        items,
        pos: 0,
        loop_depth: 0,
        nesting: 0,
        defines: Vec::new(),
    };
    let (nodes, stop, line) = tp.list()?;
    match stop {
        Stop::Eof => Ok(Parsed {
            nodes,
            defines: tp.defines,
        }),
        Stop::End => Err(TemplateError::parse(line, "unexpected {{end}}")),
        Stop::Else(_) => Err(TemplateError::parse(line, "unexpected {{else}}")),
    }
}
