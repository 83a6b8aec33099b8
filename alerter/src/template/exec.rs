//! Executing a parsed template against a value, as Go's text/template does.

use super::parse::{Node, Operand, Pipeline, Term};
use super::value::Value;
use super::{funcs, Funcs, TemplateError};

const MAX_DEPTH: usize = 100;
const MAX_OUTPUT: usize = 1 << 20;

pub struct Exec<'a> {
    vars: Vec<(String, Value)>,
    pub out: String,
    pub funcs: &'a dyn Funcs,
    depth: usize,
}

enum Flow {
    Normal,
    Break,
    Continue,
}

impl<'a> Exec<'a> {
    pub fn new(dot: &Value, funcs: &'a dyn Funcs) -> Self {
        Exec {
            vars: vec![("$".to_string(), dot.clone())],
            out: String::new(),
            funcs,
            depth: 0,
        }
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
                    self.out.push_str(&v.to_go_string());
                }
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
                let items: Vec<(Value, Value)> = match &v {
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
                    other => {
                        return Err(TemplateError::exec(
                            p.line,
                            &format!("range can't iterate over {}", other.to_go_string()),
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
            return funcs::call(self, name, &args)
                .map_err(|e| TemplateError::exec(line, &format!("error calling {name}: {e}")));
        }
        if cmd.len() > 1 || final_arg.is_some() {
            return Err(TemplateError::exec(
                line,
                "can't give argument to non-function",
            ));
        }
        self.operand(first, dot, line)
    }

    fn operand(&mut self, op: &Operand, dot: &Value, line: usize) -> Result<Value, TemplateError> {
        let mut v = match &op.term {
            Term::Dot => dot.clone(),
            Term::Var(name) => self.lookup(name, line)?,
            Term::Func(name) => funcs::call(self, name, &[])
                .map_err(|e| TemplateError::exec(line, &format!("error calling {name}: {e}")))?,
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

fn field(v: &Value, name: &str) -> Result<Value, String> {
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
