//! Integration tests: layering. ARCHITECTURE.md's "Layers" table says, for
//! every top-level module of `src/`, its layer and the modules it may
//! import; this test reads that table and every source file, and fails on
//! an import the table does not allow, on a table that allows an import
//! from the same or a higher layer (which would permit a cycle), and on a
//! module missing from either side. Test code (`#[cfg(test)]`) is held to
//! the same rules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One row of the table: a module's layer and what it may import.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    layer: u32,
    may_import: BTreeSet<String>,
}

/// Where one module imports another: "src/stats/x.rs:12".
type Imports = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The rows of the table under "## Layers": `| layer | `module` | `a`, `b` |`
/// (`—` for nothing).
fn parse_table(markdown: &str) -> Result<BTreeMap<String, Rule>, String> {
    let section = markdown
        .split("\n## Layers")
        .nth(1)
        .ok_or("ARCHITECTURE.md has no \"## Layers\" section")?;
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut rules = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let [layer, module, imports] = cells[..] else {
            return Err(format!("a Layers row has {} cells: {line}", cells.len()));
        };
        let Ok(layer) = layer.parse::<u32>() else {
            continue; // the header and the separator
        };
        let names = |text: &str| -> BTreeSet<String> {
            text.split(',')
                .map(|n| n.trim().trim_matches('`').to_owned())
                .filter(|n| !n.is_empty() && n != "—")
                .collect()
        };
        let module = module.trim_matches('`').to_owned();
        let rule = Rule {
            layer,
            may_import: names(imports),
        };
        if rules.insert(module.clone(), rule).is_some() {
            return Err(format!("{module} has two rows"));
        }
    }
    Ok(rules)
}

/// The top-level modules of `src/`: `x.rs` and `x/`, without the crate
/// roots.
fn modules(src: &Path) -> BTreeSet<String> {
    std::fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_stem()?.to_str()?.to_owned();
            let rust = p.extension().is_some_and(|e| e == "rs") || p.is_dir();
            (rust && name != "main" && name != "lib").then_some(name)
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file below `src/`: `src/sim/engine/mod.rs` is
/// `[sim, engine]`, `src/stats/series.rs` is `[stats, series]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The first segments of the `use` tree after `crate::` (`crate::{a, b::c}`
/// names `a` and `b`).
fn first_segments(rest: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let Some(group) = rest.strip_prefix('{') else {
        return vec![ident(rest)];
    };
    let (mut depth, mut item, mut names) = (0, String::new(), Vec::new());
    for ch in group.chars() {
        match ch {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                names.push(ident(&item));
                item.clear();
                continue;
            }
            _ => {}
        }
        if depth == 0 {
            item.push(ch);
        }
    }
    names.push(ident(&item));
    names.into_iter().filter(|n| !n.is_empty()).collect()
}

/// Every top-level module `source` (the text of a file at `path` in the
/// module tree) names through `crate::…` or a `super::` chain that climbs
/// to the crate root. Comments are skipped.
fn imported_modules(path: &[String], source: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    for (n, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut at = 0;
        while let Some(i) = code[at..].find("crate::") {
            let start = at + i;
            let before = code[..start].chars().next_back();
            at = start + "crate::".len();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            // A group may run over the following lines.
            let rest: String = std::iter::once(&code[at..])
                .chain(source.lines().skip(n + 1).take(40))
                .collect::<Vec<_>>()
                .join("\n");
            found.extend(first_segments(&rest).into_iter().map(|m| (m, n + 1)));
        }
        found.extend(super_climbs(path, code).into_iter().map(|m| (m, n + 1)));
    }
    found
}

/// Modules reached by `super::super::…` chains that climb out of the
/// file's own top-level module.
fn super_climbs(path: &[String], code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(i) = code[at..].find("super::") {
        let start = at + i;
        let mut rest = &code[start..];
        let mut ups = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            ups += 1;
            rest = r;
        }
        at = start + ups * "super::".len();
        // A file's own module is its path; a `mod.rs` or a module's own
        // file is one level shallower than its children.
        if ups >= path.len() {
            found.extend(first_segments(rest));
        }
    }
    found
}

fn imports_in_tree(src: &Path) -> Imports {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut imports: Imports = BTreeMap::new();
    for file in files {
        let path = module_path(src, &file);
        let Some(own) = path.first().cloned() else {
            continue;
        };
        if own == "main" || own == "lib" {
            continue;
        }
        let source = std::fs::read_to_string(&file).unwrap();
        let shown = file
            .strip_prefix(root())
            .unwrap_or(&file)
            .display()
            .to_string();
        for (module, line) in imported_modules(&path, &source) {
            if module != own {
                imports
                    .entry(own.clone())
                    .or_default()
                    .entry(module)
                    .or_default()
                    .push(format!("{shown}:{line}"));
            }
        }
    }
    imports
}

/// Everything wrong with `imports` under `rules`, one line each.
fn violations(
    rules: &BTreeMap<String, Rule>,
    modules: &BTreeSet<String>,
    imports: &Imports,
) -> Vec<String> {
    let mut wrong = Vec::new();
    for module in modules {
        if !rules.contains_key(module) {
            wrong.push(format!(
                "`{module}` is not in ARCHITECTURE.md's Layers table"
            ));
        }
    }
    for (module, rule) in rules {
        if !modules.contains(module) {
            wrong.push(format!(
                "the Layers table names `{module}`, which src/ does not have"
            ));
        }
        for allowed in &rule.may_import {
            match rules.get(allowed) {
                None => wrong.push(format!(
                    "`{module}` may import `{allowed}`, which is not a module"
                )),
                Some(other) if other.layer >= rule.layer => wrong.push(format!(
                    "`{module}` (layer {}) may import `{allowed}` (layer {}): imports go down only",
                    rule.layer, other.layer
                )),
                Some(_) => {}
            }
        }
    }
    for (module, deps) in imports {
        let Some(rule) = rules.get(module) else {
            continue;
        };
        for (dep, places) in deps {
            if !rule.may_import.contains(dep) && rules.contains_key(dep) {
                wrong.push(format!(
                    "`{module}` imports `{dep}`, which the Layers table does not allow ({})",
                    places.join(", ")
                ));
            }
        }
    }
    wrong
}

#[test]
fn no_module_imports_one_the_layers_table_does_not_allow() {
    let markdown = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let rules = parse_table(&markdown).unwrap();
    let src = root().join("src");
    let wrong = violations(&rules, &modules(&src), &imports_in_tree(&src));
    assert!(wrong.is_empty(), "layering:\n  {}", wrong.join("\n  "));
}

#[test]
fn the_simulator_depends_on_none_of_plan_load_analysis_report() {
    let imports = imports_in_tree(&root().join("src"));
    let sim = imports.get("sim").cloned().unwrap_or_default();
    for forbidden in ["plan", "load", "analysis", "report", "aggregate", "runner"] {
        assert!(
            !sim.contains_key(forbidden),
            "sim imports {forbidden}: {:?}",
            sim[forbidden]
        );
    }
}

// ---------------------------------------------------------------------------
// The checker itself: it must catch what it is for.

const TABLE: &str = "# x\n\n## Layers\n\n| layer | module | may import |\n|---|---|---|\n\
    | 0 | `outcome` | — |\n| 1 | `stats` | `outcome` |\n| 2 | `report` | `stats`, `outcome` |\n\n## Next\n";

fn one(module: &str, dep: &str) -> Imports {
    BTreeMap::from([(
        module.to_owned(),
        BTreeMap::from([(dep.to_owned(), vec!["src/x.rs:1".to_owned()])]),
    )])
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn the_checker_catches_an_upward_import() {
    let rules = parse_table(TABLE).unwrap();
    let modules = names(&["outcome", "stats", "report"]);
    assert!(violations(&rules, &modules, &one("report", "stats")).is_empty());
    let wrong = violations(&rules, &modules, &one("stats", "report"));
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    assert!(wrong[0].contains("`stats` imports `report`") && wrong[0].contains("src/x.rs:1"));
}

#[test]
fn the_checker_catches_a_table_that_allows_a_cycle_or_misses_a_module() {
    let cyclic = TABLE.replace(
        "| 1 | `stats` | `outcome` |",
        "| 1 | `stats` | `outcome`, `report` |",
    );
    let rules = parse_table(&cyclic).unwrap();
    let modules = names(&["outcome", "stats", "report", "sim"]);
    let wrong = violations(&rules, &modules, &Imports::new());
    assert!(
        wrong.iter().any(|w| w.contains("imports go down only")),
        "{wrong:?}"
    );
    assert!(
        wrong.iter().any(|w| w.contains("`sim` is not in")),
        "{wrong:?}"
    );
}

#[test]
fn imports_are_read_from_every_form_of_path() {
    let path = |p: &[&str]| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let source = "use crate::stats::Histogram;\n\
        use crate::{\n    outcome::Outcome,\n    report::{self, Report},\n};\n\
        // use crate::sim::Nope;\n\
        let x = crate::units::parse_duration(t);\n\
        pub(crate) fn f() {}\n\
        use super::super::plan::Plan;\n";
    let found: Vec<String> = imported_modules(&path(&["stats", "series"]), source)
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    assert_eq!(found, ["stats", "outcome", "report", "units", "plan"]);
    // Within its own module, `super::` reaches no other.
    assert!(
        imported_modules(
            &path(&["sim", "router", "forward"]),
            "use super::super::trace::X;"
        )
        .is_empty()
    );
}
