//! What a PromQL expression reads: its series selectors, and which of the
//! metric names it needs are missing. An `or` needs only one side; every
//! other operator, function and aggregation needs all of its operands;
//! `absent(…)` and `absent_over_time(…)` need nothing (they exist to watch
//! for a missing series).

use promql_parser::label::MatchOp;
use promql_parser::parser::token::T_LOR;
use promql_parser::parser::{Expr, VectorSelector, parse};

/// One series selector of an expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    /// The metric name (`None` for a selector on labels only).
    pub name: Option<String>,
    /// (label, operator as written, value), the name's own matcher left out.
    pub matchers: Vec<(String, String, String)>,
}

impl Selector {
    /// The selector as PromQL (`name{label="value"}`).
    pub fn promql(&self) -> String {
        let matchers: Vec<String> = self
            .matchers
            .iter()
            .map(|(l, op, v)| format!("{l}{op}{v:?}"))
            .collect();
        let name = self.name.as_deref().unwrap_or("");
        if matchers.is_empty() {
            name.to_owned()
        } else {
            format!("{name}{{{}}}", matchers.join(","))
        }
    }
}

/// Every selector of `expr`, in order of appearance, without repeats.
pub fn selectors(expr: &str) -> Result<Vec<Selector>, String> {
    let ast = parse(expr)?;
    let mut out = Vec::new();
    collect(&ast, &mut out);
    Ok(out)
}

/// The metric names `expr` reads that `exists` denies and without which it
/// cannot return data; empty when every branch it needs exists.
pub fn missing_names(expr: &str, exists: &dyn Fn(&str) -> bool) -> Result<Vec<String>, String> {
    let ast = parse(expr)?;
    let mut missing = needs(&ast, exists);
    missing.sort();
    missing.dedup();
    Ok(missing)
}

fn collect(expr: &Expr, out: &mut Vec<Selector>) {
    let mut push = |vs: &VectorSelector| {
        let s = selector(vs);
        if !out.contains(&s) {
            out.push(s);
        }
    };
    match expr {
        Expr::VectorSelector(vs) => push(vs),
        Expr::MatrixSelector(m) => push(&m.vs),
        _ => children(expr).into_iter().for_each(|c| collect(c, out)),
    }
}

fn selector(vs: &VectorSelector) -> Selector {
    let matchers = vs
        .matchers
        .matchers
        .iter()
        .filter(|m| m.name != "__name__")
        .map(|m| (m.name.clone(), op_text(&m.op).to_owned(), m.value.clone()))
        .collect();
    let name = vs.name.clone().or_else(|| {
        vs.matchers
            .matchers
            .iter()
            .find(|m| m.name == "__name__" && matches!(m.op, MatchOp::Equal))
            .map(|m| m.value.clone())
    });
    Selector { name, matchers }
}

fn op_text(op: &MatchOp) -> &'static str {
    match op {
        MatchOp::Equal => "=",
        MatchOp::NotEqual => "!=",
        MatchOp::Re(_) => "=~",
        MatchOp::NotRe(_) => "!~",
    }
}

/// The direct sub-expressions of `expr`.
fn children(expr: &Expr) -> Vec<&Expr> {
    match expr {
        Expr::Aggregate(a) => std::iter::once(&*a.expr)
            .chain(a.param.as_deref())
            .collect(),
        Expr::Unary(u) => vec![&u.expr],
        Expr::Binary(b) => vec![&b.lhs, &b.rhs],
        Expr::Paren(p) => vec![&p.expr],
        Expr::Subquery(s) => vec![&s.expr],
        Expr::Call(c) => c.args.args.iter().map(|a| &**a).collect(),
        _ => Vec::new(),
    }
}

/// The missing names that keep `expr` from returning data.
fn needs(expr: &Expr, exists: &dyn Fn(&str) -> bool) -> Vec<String> {
    match expr {
        Expr::VectorSelector(vs) => name_missing(vs, exists),
        Expr::MatrixSelector(m) => name_missing(&m.vs, exists),
        Expr::Call(c) if c.func.name.starts_with("absent") => Vec::new(),
        Expr::Binary(b) if b.op.id() == T_LOR => {
            let (lhs, rhs) = (needs(&b.lhs, exists), needs(&b.rhs, exists));
            if lhs.is_empty() || rhs.is_empty() {
                Vec::new()
            } else {
                lhs.into_iter().chain(rhs).collect()
            }
        }
        _ => children(expr)
            .into_iter()
            .flat_map(|c| needs(c, exists))
            .collect(),
    }
}

fn name_missing(vs: &VectorSelector, exists: &dyn Fn(&str) -> bool) -> Vec<String> {
    match selector(vs).name {
        Some(name) if !exists(&name) => vec![name],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_keep_their_label_matchers() {
        let s = selectors(r#"sum(rate(a_total{job="x",code=~"5.."}[5m])) / sum(b)"#).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].promql(), r#"a_total{job="x",code=~"5.."}"#);
        assert_eq!(s[1].promql(), "b");
        assert!(selectors("sum(").is_err());
    }

    #[test]
    fn an_or_needs_one_side_and_everything_else_needs_all() {
        let only = |present: &'static [&'static str]| move |n: &str| present.contains(&n);
        let expr = "sum(vllm_a) or sum(sglang_a) or sum(tgi_a)";
        assert!(missing_names(expr, &only(&["tgi_a"])).unwrap().is_empty());
        assert_eq!(
            missing_names(expr, &only(&[])).unwrap(),
            vec!["sglang_a", "tgi_a", "vllm_a"]
        );
        let ratio = "rate(err_total[5m]) / rate(all_total[5m])";
        assert_eq!(
            missing_names(ratio, &only(&["all_total"])).unwrap(),
            vec!["err_total"]
        );
        assert!(
            missing_names("absent(up_x)", &only(&[]))
                .unwrap()
                .is_empty()
        );
        assert!(missing_names("vector(1)", &only(&[])).unwrap().is_empty());
    }
}
