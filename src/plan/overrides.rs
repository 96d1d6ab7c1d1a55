//! Command-line and environment overrides of plan fields: `--set
//! path.to.field=value` and the shorthands suites pass that way (`--rate`,
//! `--duration`, `--concurrency`, `--requests`, `--users`,
//! `--spawn-rate`). Each is an edit of the plan's TOML document made
//! before the plan is parsed, so an overridden value is validated exactly
//! like one written in the file, and everything the file did not touch
//! keeps its place (errors still point at the right line).

use toml_edit::{DocumentMut, InlineTable, Item, Value};

/// One edit: where, what, and how the user asked for it (recorded in the
/// resolved plan, so report.json says what differs from the file).
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    /// What the user wrote, e.g. `--rate 50` or `INFERCHECK_REQUESTS=600`.
    pub label: String,
    /// Dotted path; `*` stands for every element of an array (every phase).
    pub path: String,
    /// The new value as TOML (`50`, `"30s"`, `{ type = "pause" }`), or
    /// bare text taken as a string (`30s`).
    pub value: String,
}

/// The plan shapes the shorthand flags set, each for every phase.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadFlags {
    pub rate: Option<f64>,
    pub concurrency: Option<usize>,
    pub users: Option<usize>,
    pub spawn_rate: Option<f64>,
    pub duration: Option<String>,
    pub requests: Option<u64>,
}

impl LoadFlags {
    /// The edits the flags stand for; `label` names a flag as the user gave
    /// it (`--rate` or its environment variable).
    pub fn edits(&self, label: impl Fn(&str, &str) -> String) -> Vec<Override> {
        let every = |field: &str, value: String, flag: &str, shown: &str| Override {
            label: label(flag, shown),
            path: format!("phases.*.{field}"),
            value,
        };
        let mut edits = Vec::new();
        if let Some(rate) = self.rate {
            let load = format!("{{ type = \"constant\", rate = {rate:?} }}");
            edits.push(every("load", load, "rate", &rate.to_string()));
        }
        if let Some(n) = self.concurrency {
            let load = format!("{{ type = \"concurrency\", concurrency = {n} }}");
            edits.push(every("load", load, "concurrency", &n.to_string()));
        }
        match (self.users, self.spawn_rate) {
            (Some(n), spawn) => {
                let spawn = spawn.map_or_else(String::new, |r| format!(", spawn_rate = {r:?}"));
                let load = format!("{{ type = \"users\", users = {n}{spawn} }}");
                edits.push(every("load", load, "users", &n.to_string()));
            }
            (None, Some(r)) => {
                edits.push(every(
                    "load.spawn_rate",
                    format!("{r:?}"),
                    "spawn-rate",
                    &r.to_string(),
                ));
            }
            (None, None) => {}
        }
        if let Some(d) = &self.duration {
            edits.push(every("duration", quoted(d), "duration", d));
        }
        if let Some(n) = self.requests {
            edits.push(every("requests", n.to_string(), "requests", &n.to_string()));
        }
        edits
    }
}

fn quoted(text: &str) -> String {
    Value::from(text).to_string().trim().to_owned()
}

/// `path=value` of `--set`.
pub fn parse_set(text: &str) -> Result<Override, String> {
    let (path, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not path=value, e.g. target.timeout=30s"))?;
    let path = path.trim();
    if path.is_empty() || path.split('.').any(str::is_empty) {
        return Err(format!(
            "`{path}` is not a dotted path like phases.0.load.rate"
        ));
    }
    Ok(Override {
        label: format!("--set {text}"),
        path: path.to_owned(),
        value: value.trim().to_owned(),
    })
}

/// Applies `overrides` in order to the plan text. A source that is not
/// TOML is returned as it is: the parser then reports where it breaks.
pub fn apply(source: &str, overrides: &[Override]) -> Result<String, String> {
    if overrides.is_empty() {
        return Ok(source.to_owned());
    }
    let Ok(mut doc) = source.parse::<DocumentMut>() else {
        return Ok(source.to_owned());
    };
    for o in overrides {
        let value = o
            .value
            .parse::<Value>()
            .unwrap_or_else(|_| Value::from(o.value.as_str()));
        let path: Vec<&str> = o.path.split('.').collect();
        let set = set_in_item(doc.as_item_mut(), &path, &value)
            .map_err(|e| format!("{}: {e}", o.label))?;
        if set == 0 {
            return Err(format!("{}: the plan has no `{}`", o.label, o.path));
        }
    }
    Ok(doc.to_string())
}

/// Sets `path` below `item` to `value`; returns how many places were set
/// (a `*` can match several, or none).
fn set_in_item(item: &mut Item, path: &[&str], value: &Value) -> Result<usize, String> {
    let Some((head, rest)) = path.split_first() else {
        match item {
            Item::Value(old) => replace(old, value),
            _ => *item = Item::Value(decorated(value)),
        }
        return Ok(1);
    };
    match item {
        Item::Table(table) => match table.get_mut(head) {
            Some(child) => set_in_item(child, rest, value),
            None => {
                table.insert(head, nested(rest, value));
                Ok(1)
            }
        },
        Item::ArrayOfTables(_) if rest.is_empty() => Err(format!(
            "`{head}` is a whole table of a list: set its fields, e.g. phases.0.duration"
        )),
        Item::ArrayOfTables(array) => {
            let mut set = 0;
            for index in indices(head, array.len())? {
                let table = array.get_mut(index).expect("index in range");
                let child = table.entry(rest[0]).or_insert(Item::None);
                if child.is_none() {
                    *child = nested(&rest[1..], value);
                    set += 1;
                } else {
                    set += set_in_item(child, &rest[1..], value)?;
                }
            }
            Ok(set)
        }
        Item::Value(v) => set_in_value(v, path, value),
        Item::None => {
            *item = nested(path, value);
            Ok(1)
        }
    }
}

fn set_in_value(node: &mut Value, path: &[&str], value: &Value) -> Result<usize, String> {
    let Some((head, rest)) = path.split_first() else {
        replace(node, value);
        return Ok(1);
    };
    match node {
        Value::InlineTable(table) => match table.get_mut(head) {
            Some(child) => set_in_value(child, rest, value),
            None => {
                table.insert(*head, nested_value(rest, value));
                Ok(1)
            }
        },
        Value::Array(array) => {
            let mut set = 0;
            for index in indices(head, array.len())? {
                let child = array.get_mut(index).expect("index in range");
                set += set_in_value(child, rest, value)?;
            }
            Ok(set)
        }
        _ => Err(format!("`{head}` is below a value that is not a table")),
    }
}

/// `*` (every element) or an index below `len`.
fn indices(segment: &str, len: usize) -> Result<Vec<usize>, String> {
    if segment == "*" {
        return Ok((0..len).collect());
    }
    let index: usize = segment
        .parse()
        .map_err(|_| format!("`{segment}` indexes a list: give a number or *"))?;
    if index < len {
        Ok(vec![index])
    } else {
        Err(format!("index {index} is past the end of a list of {len}"))
    }
}

fn nested(path: &[&str], value: &Value) -> Item {
    Item::Value(nested_value(path, value))
}

/// `value` under the keys of `path`, as inline tables.
fn nested_value(path: &[&str], value: &Value) -> Value {
    path.iter().rev().fold(decorated(value), |inner, key| {
        let mut table = InlineTable::new();
        table.insert(*key, inner);
        Value::InlineTable(table)
    })
}

/// Puts `value` where `old` was, with `old`'s spacing.
fn replace(old: &mut Value, value: &Value) {
    let decor = old.decor().clone();
    *old = value.clone();
    *old.decor_mut() = decor;
}

/// The value with the spacing a hand-written `key = value` has.
fn decorated(value: &Value) -> Value {
    let mut value = value.clone();
    value.decor_mut().set_prefix(" ");
    value.decor_mut().set_suffix("");
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = "name = \"p\"\n[target]\ntimeout = \"10s\"\n\n[[phases]]\nname = \"a\"\nduration = \"5s\"\nload = { type = \"constant\", rate = 5 }\n\n[[phases]]\nname = \"b\"\nduration = \"5s\"\nload = { type = \"concurrency\", concurrency = 2 }\n";

    fn set(path: &str, value: &str) -> Override {
        parse_set(&format!("{path}={value}")).unwrap()
    }

    #[test]
    fn a_set_replaces_one_value_and_keeps_every_other_line() {
        let out = apply(PLAN, &[set("target.timeout", "30s")]).unwrap();
        assert_eq!(out, PLAN.replace("\"10s\"", "\"30s\""));
        let out = apply(PLAN, &[set("phases.1.load.concurrency", "8")]).unwrap();
        assert_eq!(out, PLAN.replace("concurrency = 2", "concurrency = 8"));
    }

    #[test]
    fn a_star_sets_every_phase_and_missing_tables_are_made() {
        let flags = LoadFlags {
            requests: Some(600),
            concurrency: Some(30),
            ..LoadFlags::default()
        };
        let edits = flags.edits(|flag, value| format!("--{flag} {value}"));
        assert_eq!(edits[0].label, "--concurrency 30");
        let out = apply(PLAN, &edits).unwrap();
        assert_eq!(out.matches("requests = 600").count(), 2, "{out}");
        assert_eq!(
            out.matches("load = { type = \"concurrency\", concurrency = 30 }")
                .count(),
            2,
            "{out}"
        );
        let out = apply(PLAN, &[set("observe.interval", "2s")]).unwrap();
        let doc: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(doc["observe"]["interval"].as_str(), Some("2s"));
    }

    #[test]
    fn bad_paths_are_refused_with_the_flag_named() {
        assert!(
            parse_set("target.timeout")
                .unwrap_err()
                .contains("path=value")
        );
        assert!(
            parse_set("target..timeout=1s")
                .unwrap_err()
                .contains("dotted")
        );
        let past = apply(PLAN, &[set("phases.5.duration", "1s")]).unwrap_err();
        assert!(
            past.contains("--set phases.5.duration=1s") && past.contains("past the end"),
            "{past}"
        );
        let below = apply(PLAN, &[set("name.first", "x")]).unwrap_err();
        assert!(below.contains("not a table"), "{below}");
    }
}
