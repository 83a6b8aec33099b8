//! Executing a parsed template against a value, as Go's text/template does.

use std::collections::HashMap;
use std::sync::Arc;

use crate::parse::{Node, Operand, Pipeline, Term};
use crate::value::{SafeHtml, Value};
use crate::{builtins, text, Escape, Funcs, TemplateError};

const MAX_DEPTH: usize = 100;
const MAX_OUTPUT: usize = 1 << 20;

pub struct Exec<'a> {
    vars: Vec<(String, Value)>,
    pub out: String,
    funcs: &'a dyn Funcs,
    defs: &'a HashMap<String, Arc<Vec<Node>>>,
    escape: Escape,
    depth: usize,
}

enum Flow {
    Normal,
    Break,
    Continue,
}

impl<'a> Exec<'a> {
    pub fn new(
        dot: &Value,
        funcs: &'a dyn Funcs,
        defs: &'a HashMap<String, Arc<Vec<Node>>>,
        escape: Escape,
    ) -> Self {
        Exec {
            vars: vec![("$".to_string(), dot.clone())],
            out: String::new(),
            funcs,
            defs,
            escape,
            depth: 0,
        }
    }

    /// Writes an action's value; html/template escapes everything but `template.HTML`.
    fn emit(&mut self, v: &Value) {
        let s = v.to_go_string();
        match self.escape {
            Escape::Html if v.downcast::<SafeHtml>().is_none() => {
                self.out.push_str(&text::html_escape(&s))
            }
            _ => self.out.push_str(&s),
        }
    }

    fn call(&mut self, name: &str, args: &[Value], line: usize) -> Result<Value, TemplateError> {
        let r = if self.funcs.has(name) {
            self.funcs.call(name, args)
        } else {
            builtins::call(name, args)
        };
        r.map_err(|e| TemplateError::exec(line, &format!("error calling {name}: {e}")))
    }

    pub fn run(&mut self, nodes: &[Node], dot: &Value) -> Result<(), TemplateError> {
        self.list(nodes, dot).map(|_| ())
    }

    fn list(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, TemplateError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(TemplateError::exec(0, "exceeded maximum template depth"));
        }
        let mut flow = Flow::Normal;
        for node in nodes {
            flow = self.node(node, dot)?;
            if !matches!(flow, Flow::Normal) {
                break;
            }
            if self.out.len() > MAX_OUTPUT {
                return Err(TemplateError::exec(0, "template output too large"));
            }
        }
        self.depth -= 1;
        Ok(flow)
    }

    fn scoped(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, TemplateError> {
        let mark = self.vars.len();
        let r = self.list(nodes, dot);
        self.vars.truncate(mark);
        r
    }

    fn node(&mut self, node: &Node, dot: &Value) -> Result<Flow, TemplateError> {
        match node {
            Node::Text(t) => self.out.push_str(t),
            Node::Action(p) => {
                let v = self.pipeline(p, dot)?;
                if p.decl.is_empty() {
                    self.emit(&v);
                }
            }
            Node::Template { name, pipe, line } => {
                let v = match pipe {
                    Some(p) => self.pipeline(p, dot)?,
                    None => Value::Nil,
                };
                let Some(body) = self.defs.get(name).cloned() else {
                    return Err(TemplateError::exec(
                        *line,
                        &format!("template: no template {name:?} associated with template \"\""),
                    ));
                };
                // A called template sees only its argument: `$` and `.` are both that value.
                let outer = std::mem::replace(&mut self.vars, vec![("$".to_string(), v.clone())]);
                let r = self.list(&body, &v);
                self.vars = outer;
                r?;
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
            Node::If(p, body, els) | Node::With(p, body, els) => {
                let mark = self.vars.len();
                let v = self.pipeline(p, dot)?;
                let is_with = matches!(node, Node::With(..));
                let flow = if v.truthy() {
                    let d = if is_with { v } else { dot.clone() };
                    self.scoped(body, &d)?
                } else {
                    self.scoped(els, dot)?
                };
                self.vars.truncate(mark);
                return Ok(flow);
            }
            Node::Range(p, body, els) => {
                let mark = self.vars.len();
                let decl = p.decl.clone();
                let plain = Pipeline {
                    decl: Vec::new(),
                    ..p.clone()
                };
                let v = self.pipeline(&plain, dot)?;
                let items: Vec<(Value, Value)> = match v.plain() {
                    Value::List(l) => l
                        .iter()
                        .enumerate()
                        .map(|(i, e)| (Value::Int(i as i64), e.clone()))
                        .collect(),
                    Value::Map(m) => m
                        .iter()
                        .map(|(k, e)| (Value::Str(k.clone()), e.clone()))
                        .collect(),
                    Value::Nil => Vec::new(),
                    _ => {
                        return Err(TemplateError::exec(
                            p.line,
                            &format!("range can't iterate over {}", v.to_go_string()),
                        ))
                    }
                };
                if items.is_empty() {
                    self.scoped(els, dot)?;
                }
                for (k, e) in items {
                    let inner = self.vars.len();
                    match decl.len() {
                        1 => self.vars.push((decl[0].clone(), e.clone())),
                        2 => {
                            self.vars.push((decl[0].clone(), k));
                            self.vars.push((decl[1].clone(), e.clone()));
                        }
                        _ => {}
                    }
                    let flow = self.scoped(body, &e)?;
                    self.vars.truncate(inner);
                    if matches!(flow, Flow::Break) {
                        break;
                    }
                }
                self.vars.truncate(mark);
            }
        }
        Ok(Flow::Normal)
    }

    fn lookup(&self, name: &str, line: usize) -> Result<Value, TemplateError> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| TemplateError::exec(line, &format!("undefined variable: {name}")))
    }

    pub fn pipeline(&mut self, p: &Pipeline, dot: &Value) -> Result<Value, TemplateError> {
        let mut last: Option<Value> = None;
        for cmd in &p.cmds {
            last = Some(self.command(cmd, dot, last, p.line)?);
        }
        let v = last.unwrap_or(Value::Nil);
        for name in &p.decl {
            if p.is_assign {
                let slot = self
                    .vars
                    .iter_mut()
                    .rev()
                    .find(|(n, _)| n == name)
                    .ok_or_else(|| {
                        TemplateError::exec(p.line, &format!("undefined variable: {name}"))
                    })?;
                slot.1 = v.clone();
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn command(
        &mut self,
        cmd: &[Operand],
        dot: &Value,
        final_arg: Option<Value>,
        line: usize,
    ) -> Result<Value, TemplateError> {
        let first = &cmd[0];
        if let Term::Func(name) = &first.term {
            let mut args = Vec::with_capacity(cmd.len());
            // `and`/`or` stop at the first decisive argument, as Go 1.18+ does.
            if name == "and" || name == "or" {
                let want = name == "or";
                let mut result = Value::Nil;
                let n = cmd.len() - 1 + usize::from(final_arg.is_some());
                if n == 0 {
                    return Err(TemplateError::exec(
                        line,
                        &format!("wrong number of args for {name}: want at least 1 got 0"),
                    ));
                }
                for op in &cmd[1..] {
                    result = self.operand(op, dot, line)?;
                    if result.truthy() == want {
                        return Ok(result);
                    }
                }
                if let Some(f) = final_arg {
                    result = f;
                }
                return Ok(result);
            }
            for op in &cmd[1..] {
                args.push(self.operand(op, dot, line)?);
            }
            if let Some(f) = final_arg {
                args.push(f);
            }
            return self.call(name, &args, line);
        }
        if cmd.len() > 1 || final_arg.is_some() {
            // `.Labels.Remove $names`, `.StartsAt.Format "..."`: a method call with arguments.
            let Some((method, chain)) = first.fields.split_last() else {
                return Err(TemplateError::exec(
                    line,
                    "can't give argument to non-function",
                ));
            };
            let receiver = self.operand(
                &Operand {
                    term: first.term.clone(),
                    fields: chain.to_vec(),
                },
                dot,
                line,
            )?;
            let mut args = Vec::with_capacity(cmd.len());
            for op in &cmd[1..] {
                args.push(self.operand(op, dot, line)?);
            }
            if let Some(f) = final_arg {
                args.push(f);
            }
            return match &receiver {
                Value::Object(o) => match o.method(method, &args) {
                    Some(r) => r.map_err(|e| {
                        TemplateError::exec(line, &format!("error calling {method}: {e}"))
                    }),
                    None => Err(TemplateError::exec(
                        line,
                        &format!("{method} has arguments but cannot be invoked as function"),
                    )),
                },
                _ => Err(TemplateError::exec(
                    line,
                    &format!("{method} has arguments but cannot be invoked as function"),
                )),
            };
        }
        self.operand(first, dot, line)
    }

    fn operand(&mut self, op: &Operand, dot: &Value, line: usize) -> Result<Value, TemplateError> {
        let mut v = match &op.term {
            Term::Dot => dot.clone(),
            Term::Var(name) => self.lookup(name, line)?,
            Term::Func(name) => self.call(name, &[], line)?,
            Term::Str(s) => Value::Str(s.clone()),
            Term::Int(i) => Value::Int(*i),
            Term::Float(f) => Value::Float(*f),
            Term::Bool(b) => Value::Bool(*b),
            Term::Nil => return Err(TemplateError::exec(line, "nil is not a command")),
            Term::Sub(p) => self.pipeline(p, dot)?,
        };
        for f in &op.fields {
            v = field(&v, f).map_err(|e| TemplateError::exec(line, &e))?;
        }
        Ok(v)
    }
}

/// `.name` on a value: a method of its type first (as Go looks methods up first), then a field or key.
fn field(v: &Value, name: &str) -> Result<Value, String> {
    if let Value::Object(o) = v {
        if let Some(r) = o.method(name, &[]) {
            return r.map_err(|e| format!("error calling {name}: {e}"));
        }
        return field(o.plain(), name).map_err(|e| e.replace(o.plain().go_type(), o.type_name()));
    }
    match v {
        Value::Map(m) => Ok(m.get(name).cloned().unwrap_or(Value::Str(String::new()))),
        Value::Struct(ty, m) => m
            .get(name)
            .cloned()
            .ok_or_else(|| format!("can't evaluate field {name} in type {ty}")),
        Value::Nil => Err(format!("nil pointer evaluating interface {{}}.{name}")),
        other => Err(format!(
            "can't evaluate field {name} in type {}",
            other.go_type()
        )),
    }
}
