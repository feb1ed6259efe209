//! The library's layers, bottom up: `io` (whole-or-nothing writes and write guards) and `kernels`
//! (candle only), `models` (registry, provisioning, architectures; may use `kernels` and `io`),
//! `engine` (runtimes; may use `models`, `kernels` and `io`). A module may
//! use only the layers under it: these tests read the sources and fail on any path that reaches up
//! (`crate::engine` in `models`, `crate::models` in `kernels`, ...), so that an import cycle cannot
//! come back. Comments are ignored; code under `#[cfg(test)]` is not exempt.

mod source;

use std::path::Path;

use source::{rust_files, src, strip_comments};

/// Each checked layer and the top-level modules its files may name (besides itself).
const LAYERS: [(&str, &[&str]); 4] = [
    ("io", &["error"]),
    ("kernels", &["error"]),
    ("models", &["kernels", "io", "error"]),
    ("engine", &["models", "kernels", "io", "error"]),
];

/// The top-level modules a file's code names through `crate::` (also in `crate::{a, b::c}` groups)
/// or through a `super::` chain that climbs to the crate root.
fn named_modules(code: &str, file_module_depth: usize) -> Vec<String> {
    let ident = |s: &str| -> String { s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect() };
    let mut found = vec![];
    for (at, _) in code.match_indices("crate::") {
        // Skip `foo_crate::` and the like.
        if code[..at].chars().last().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let rest = code[at + "crate::".len()..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item_start = true;
            for (k, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if c.is_whitespace() => {}
                    _ if item_start && depth == 0 => {
                        found.push(ident(&group[k..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.push(ident(rest));
        }
    }
    // `super::super::x` from src/models/arch/bert.rs (module depth 3) names the crate root's `x`.
    let chain = "super::".repeat(file_module_depth);
    for (at, _) in code.match_indices(&chain) {
        if code[..at].ends_with("::") || code[..at].chars().last().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[at + chain.len()..];
        if !rest.starts_with("super::") {
            found.push(ident(rest));
        }
    }
    found.retain(|m| !m.is_empty() && m != "self");
    found
}

/// How deep a file's module sits under the crate root: src/models/store.rs is 2, src/models/mod.rs 1.
fn module_depth(file: &Path) -> usize {
    let rel = file.strip_prefix(src()).unwrap_or(file);
    let parts = rel.components().count();
    if rel.file_name().is_some_and(|f| f == "mod.rs") {
        parts - 1
    } else {
        parts
    }
}

/// Every (file, module) where a file of `layer` names a top-level module it may not use.
fn violations(layer: &str, allowed: &[&str]) -> Vec<String> {
    let files = rust_files(&src().join(layer));
    assert!(!files.is_empty(), "no sources found for `{layer}` under {}", src().display());
    let mut bad = vec![];
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for m in named_modules(&strip_comments(&text), module_depth(&f)) {
            if m != layer && !allowed.contains(&m.as_str()) {
                bad.push(format!("{}: uses crate::{m}", f.strip_prefix(src()).unwrap_or(&f).display()));
            }
        }
    }
    bad.sort();
    bad.dedup();
    bad
}

#[test]
fn each_layer_uses_only_the_layers_under_it() {
    let mut bad = vec![];
    for (layer, allowed) in LAYERS {
        bad.extend(violations(layer, allowed));
    }
    assert!(bad.is_empty(), "imports that reach up a layer (kernels < models < engine):\n{}", bad.join("\n"));
}

#[test]
fn the_checker_finds_what_it_must() {
    // Plain paths, groups, nested groups and a super chain to the root are found ...
    let code = strip_comments(
        "use crate::engine::cpu::PackedLinear;\nuse crate::{error::Result, graders::{a, b}};\n\
         let x = crate::report::f(); let q = '\"';\nuse super::super::train::X;\n",
    );
    let mut got = named_modules(&code, 2);
    got.sort();
    assert_eq!(got, ["engine", "error", "graders", "report", "train"]);
    // ... comments and strings are not code, and a shorter super chain stays inside the module.
    let code = strip_comments("// crate::engine\n/* crate::graders */ let s = \"// not a comment\"; use super::x;\n");
    assert!(named_modules(&code, 2).is_empty(), "{:?}", named_modules(&code, 2));
    assert_eq!(named_modules(&strip_comments("let u = \"https://x\"; crate::engine::f();"), 1), ["engine"]);
    // Depths: a file module and a folder module.
    assert_eq!(module_depth(&src().join("models/arch/bert.rs")), 3);
    assert_eq!(module_depth(&src().join("models/arch/mod.rs")), 2);
    assert_eq!(module_depth(&src().join("kernels.rs")), 1);
}

/// No two top-level modules of the library import each other, directly or through others: the
/// graph of `crate::` imports between them (test code included) has no cycle. (`config` and
/// `graders` imported each other once; `models` and `engine` too.)
#[test]
fn no_import_cycle_between_library_modules() {
    let mut modules: Vec<String> = std::fs::read_dir(src())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter_map(|p| {
            let name = p.file_stem()?.to_str()?.to_string();
            (p.is_dir() || p.extension().is_some_and(|x| x == "rs")).then_some(name)
        })
        .filter(|m| !["lib", "main", "cli"].contains(&m.as_str()))
        .collect();
    modules.sort();
    modules.dedup();
    let mut uses: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> = Default::default();
    for m in &modules {
        let entry = uses.entry(m.clone()).or_default();
        for f in rust_files(&src().join(m)) {
            let text = std::fs::read_to_string(&f).unwrap();
            for n in named_modules(&strip_comments(&text), module_depth(&f)) {
                if &n != m && modules.contains(&n) {
                    entry.insert(n);
                }
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit<'a>(
        m: &'a str,
        uses: &'a std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut std::collections::BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| *p == m) {
            let mut cycle: Vec<String> = path[i..].iter().map(|s| s.to_string()).collect();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m);
        for n in uses.get(m).into_iter().flatten() {
            if let Some(c) = visit(n, uses, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m);
        None
    }
    let mut done = Default::default();
    for m in &modules {
        if let Some(cycle) = visit(m, &uses, &mut vec![], &mut done) {
            panic!("import cycle between library modules: {}\n(all imports: {uses:?})", cycle.join(" -> "));
        }
    }
    assert!(uses.get("run").is_some_and(|u| u.contains("graders")), "the scan found no imports: {uses:?}");
}
