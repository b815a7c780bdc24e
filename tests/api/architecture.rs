//! The layering of DESIGN.md §4, checked over the text of `src/`: SQL and
//! sea-orm queries only in `store/` (and `migrations/`), `grpc/` never reads
//! `entity/`, no module imports a layer above its own, and no import cycle
//! between modules.
//!
//! While the code moves into that shape, each rule names the places that
//! still break it. The lists only shrink: a new breach fails, and so does a
//! listed place that no longer breaches (take it off the list).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// Files outside `store/` that still hold queries.
const QUERIES_OUTSIDE_STORE: &[&str] = &[];

/// Files under `grpc/` that still read `entity/`.
const GRPC_READING_ENTITIES: &[&str] = &[];

/// Modules that are still part of an import cycle.
const MODULES_IN_CYCLES: &[&str] = &[];

/// The layers, lowest first; a module may import its own layer and those
/// below. `grpc/` and `middleware/` are the transport, one layer.
const LAYERS: &[&[&str]] = &[
    &["kinds", "clock", "proto", "crypto", "entity"],
    &["config"],
    &["telemetry"],
    &["store"],
    &["mail"],
    &["domain"],
    &["grpc", "middleware"],
    &["metrics"],
    &["server"],
    &["cli", ""],
];

/// What marks a sea-orm or driver query in Rust code.
const QUERY_MARKERS: &[&str] = &[
    "EntityTrait",
    "ActiveModelTrait",
    "QueryFilter",
    "QuerySelect",
    "PaginatorTrait",
    "Statement::",
    "execute_unprepared",
    "sea_query::",
    "Entity::",
    "rusqlite::",
    "sqlx::query",
];

struct Source {
    /// Path under `src/`, with `/`.
    file: String,
    /// `domain::login`; `` for lib.rs.
    module: String,
    /// The code without comments and without its `#[cfg(test)]` tail.
    code: String,
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let file = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let mut parts: Vec<&str> = file.trim_end_matches(".rs").split('/').collect();
            if matches!(parts.last(), Some(&"mod" | &"lib" | &"main")) {
                parts.pop();
            }
            let module = parts.join("::");
            let text = std::fs::read_to_string(&path).unwrap();
            Source {
                file,
                module,
                code: without_tests(&without_comments(&text)),
            }
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with("//") {
                ""
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Test modules sit at the end of a file and may use anything.
fn without_tests(code: &str) -> String {
    match code.find("#[cfg(test)]\nmod ") {
        Some(at) => code[..at].to_string(),
        None => code.to_string(),
    }
}

/// The contents of the string literals of `code` (plain and raw).
fn string_literals(code: &str) -> Vec<String> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' if bytes.get(i + 2) == Some(&b'\'') => i += 3,
            b'\'' if bytes.get(i + 1) == Some(&b'\\') => {
                while i + 1 < bytes.len() && bytes[i + 1] != b'\'' {
                    i += 1;
                }
                i += 2;
            }
            b'r' if matches!(bytes.get(i + 1), Some(b'#' | b'"'))
                && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) =>
            {
                let hashes = bytes[i + 1..].iter().take_while(|&&b| b == b'#').count();
                let open = i + 1 + hashes;
                if bytes.get(open) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let close = format!("\"{}", "#".repeat(hashes));
                let end = code[open + 1..]
                    .find(&close)
                    .map_or(bytes.len(), |n| open + 1 + n);
                out.push(code[open + 1..end].to_string());
                i = end + close.len();
            }
            b'"' => {
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != b'"' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                out.push(code[i + 1..j.min(bytes.len())].to_string());
                i = j + 1;
            }
            _ => i += 1,
        }
    }
    out
}

fn is_sql(literal: &str) -> bool {
    let text = literal.to_ascii_lowercase().replace(['\n', '\t'], " ");
    (text.contains("select ") && text.contains(" from "))
        || text.contains("insert into ")
        || text.contains("delete from ")
        || (text.contains("update ") && text.contains(" set "))
        || text.contains("begin immediate")
        || text.contains("pg_advisory")
        || text.starts_with("pragma ")
}

fn holds_queries(source: &Source) -> bool {
    QUERY_MARKERS.iter().any(|m| source.code.contains(m))
        || string_literals(&source.code).iter().any(|l| is_sql(l))
}

/// The `crate::…` and `super::…` paths a file names, made absolute.
fn named_paths(source: &Source) -> Vec<String> {
    let code = &source.code;
    let mut paths = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("crate::") {
        let start = from + at + "crate::".len();
        from = start;
        if start > "crate::".len()
            && code.as_bytes()[start - "crate::".len() - 1].is_ascii_alphanumeric()
        {
            continue;
        }
        paths.extend(expand(&code[start..]));
    }
    let parent: Vec<&str> = {
        let mut parts: Vec<&str> = source
            .module
            .split("::")
            .filter(|s| !s.is_empty())
            .collect();
        // `super` is the parent of the module (a `mod.rs` is named by its folder).
        parts.pop();
        parts
    };
    let mut from = 0;
    while let Some(at) = code[from..].find("super::") {
        let start = from + at + "super::".len();
        from = start;
        for path in expand(&code[start..]) {
            let mut full = parent.join("::");
            if !full.is_empty() && !path.is_empty() {
                full.push_str("::");
            }
            full.push_str(&path);
            paths.push(full);
        }
    }
    paths
}

/// The paths of one `a::b::{c, d::{e, f}}` or `a::b::C` at the start of
/// `text`, without the leading `crate::`.
fn expand(text: &str) -> Vec<String> {
    let path_len = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(text.len());
    let prefix = &text[..path_len];
    if text[path_len..].starts_with('{') && prefix.ends_with("::") || prefix.is_empty() {
        let body_start = path_len + 1;
        let mut depth = 1;
        let mut end = body_start;
        for (i, c) in text[body_start..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = body_start + i;
                break;
            }
        }
        if !text[path_len..].starts_with('{') {
            return Vec::new();
        }
        split_group(&text[body_start..end])
            .into_iter()
            .flat_map(|item| {
                expand(&item)
                    .into_iter()
                    .map(|rest| format!("{prefix}{rest}"))
                    .collect::<Vec<_>>()
            })
            .collect()
    } else {
        vec![prefix.trim_end_matches(':').to_string()]
    }
}

fn split_group(body: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in body.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(current.trim().to_string());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    items.push(current.trim().to_string());
    items.retain(|item| !item.is_empty() && item != "self");
    items
}

/// Module → the modules it names (the longest known prefix of each path).
fn import_graph(sources: &[Source]) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<&str> = sources.iter().map(|s| s.module.as_str()).collect();
    let mut graph = BTreeMap::new();
    for source in sources {
        let targets: BTreeSet<String> = named_paths(source)
            .into_iter()
            .filter_map(|path| {
                let parts: Vec<&str> = path.split("::").collect();
                (1..=parts.len())
                    .rev()
                    .map(|n| parts[..n].join("::"))
                    .find(|candidate| modules.contains(candidate.as_str()))
            })
            .filter(|target| *target != source.module)
            .collect();
        graph.insert(source.module.clone(), targets);
    }
    graph
}

/// The modules on some cycle (Tarjan's strongly connected components of
/// more than one module).
fn modules_in_cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    struct State<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        next: usize,
        found: BTreeSet<String>,
    }
    fn visit<'g>(state: &mut State<'g>, node: &'g str) {
        state.index.insert(node, state.next);
        state.low.insert(node, state.next);
        state.next += 1;
        state.stack.push(node);
        state.on_stack.insert(node);
        let graph = state.graph;
        for target in graph.get(node).into_iter().flatten() {
            let target = target.as_str();
            if !state.index.contains_key(target) {
                visit(state, target);
                let low = state.low[node].min(state.low[target]);
                state.low.insert(node, low);
            } else if state.on_stack.contains(target) {
                let low = state.low[node].min(state.index[target]);
                state.low.insert(node, low);
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            while let Some(member) = state.stack.pop() {
                state.on_stack.remove(member);
                component.push(member);
                if member == node {
                    break;
                }
            }
            if component.len() > 1 {
                state
                    .found
                    .extend(component.into_iter().map(str::to_string));
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: BTreeSet::new(),
    };
    for node in graph.keys() {
        if !state.index.contains_key(node.as_str()) {
            visit(&mut state, node);
        }
    }
    state.found
}

/// Fails with both differences when `found` is not `listed`.
fn only_shrinks(rule: &str, found: BTreeSet<String>, listed: &[&str]) {
    let listed: BTreeSet<String> = listed.iter().map(|s| s.to_string()).collect();
    let new: Vec<_> = found.difference(&listed).collect();
    let gone: Vec<_> = listed.difference(&found).collect();
    assert!(
        new.is_empty() && gone.is_empty(),
        "{rule}\n  new breaches: {new:?}\n  listed but fixed (take them off the list): {gone:?}"
    );
}

#[test]
fn queries_live_in_the_store_only() {
    let found = sources()
        .iter()
        .filter(|s| !s.file.starts_with("store/") && !s.file.starts_with("entity/"))
        .filter(|s| holds_queries(s))
        .map(|s| s.file.clone())
        .collect();
    only_shrinks(
        "SQL or sea-orm queries outside src/store/",
        found,
        QUERIES_OUTSIDE_STORE,
    );
}

#[test]
fn grpc_does_not_read_entities() {
    let found = sources()
        .iter()
        .filter(|s| s.file.starts_with("grpc/"))
        .filter(|s| named_paths(s).iter().any(|p| p.starts_with("entity")))
        .map(|s| s.file.clone())
        .collect();
    only_shrinks(
        "src/grpc/ importing src/entity/",
        found,
        GRPC_READING_ENTITIES,
    );
}

#[test]
fn no_module_imports_in_a_cycle() {
    let graph = import_graph(&sources());
    let found = modules_in_cycles(&graph);
    let detail: Vec<String> = found
        .iter()
        .map(|m| {
            let within: Vec<_> = graph[m].iter().filter(|t| found.contains(*t)).collect();
            format!("{m} -> {within:?}")
        })
        .collect();
    let listed: BTreeSet<String> = MODULES_IN_CYCLES.iter().map(|s| s.to_string()).collect();
    assert!(
        found == listed,
        "import cycles among src/ modules changed.\n  now in cycles: {found:?}\n  edges within cycles:\n{}",
        detail.join("\n")
    );
}

#[test]
fn no_module_imports_a_layer_above_its_own() {
    let layer = |module: &str| {
        let top = module.split("::").next().unwrap_or("");
        LAYERS
            .iter()
            .position(|layer| layer.contains(&top))
            .unwrap_or_else(|| panic!("{top:?} is in no layer of LAYERS"))
    };
    let upwards: Vec<String> = import_graph(&sources())
        .iter()
        .flat_map(|(from, targets)| {
            targets
                .iter()
                .filter(|to| layer(to) > layer(from))
                .map(move |to| format!("{from} -> {to}"))
        })
        .collect();
    assert!(
        upwards.is_empty(),
        "imports of a higher layer: {upwards:#?}"
    );
}

/// The checker itself, on code made up for it.
/// The domain's background jobs: each reads the clock when it starts, as a
/// request's time is read where it enters (the authentication middleware).
const DOMAIN_CLOCK_READERS: &[&str] = &["run", "hand_over", "perform"];

/// Where `code` reads the clock: the name of each enclosing function.
fn clock_reads(code: &str) -> Vec<String> {
    let mut function = String::new();
    let mut readers = Vec::new();
    for line in code.lines() {
        if let Some(at) = line.find("fn ") {
            let name: String = line[at + 3..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                function = name;
            }
        }
        let reads = line.matches(".now()").count() + line.matches("now_ms()").count();
        readers.extend(std::iter::repeat_n(function.clone(), reads));
    }
    readers
}

#[test]
fn the_domain_reads_the_clock_only_where_a_job_starts() {
    let mut misplaced = Vec::new();
    for source in sources() {
        // The context and its dependency traits provide the clock.
        if !source.file.starts_with("domain/")
            || ["domain/mod.rs", "domain/deps.rs"].contains(&source.file.as_str())
        {
            continue;
        }
        for function in clock_reads(&source.code) {
            if !DOMAIN_CLOCK_READERS.contains(&function.as_str()) {
                misplaced.push(format!("{} in fn {function}", source.file));
            }
        }
    }
    assert!(
        misplaced.is_empty(),
        "domain functions take `now` from their caller instead of reading the clock: {misplaced:?}"
    );
    assert_eq!(
        clock_reads("fn a() {}\nfn run() { let now = ctx.now(); }\n"),
        ["run"]
    );
}

/// Whether `code` names the whole `Context` (as a type, not in a longer
/// name such as `ContextFree`).
fn names_the_context(code: &str) -> bool {
    code.match_indices("Context").any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + "Context".len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

#[test]
fn domain_functions_name_the_dependencies_they_use() {
    let holding: Vec<String> = sources()
        .into_iter()
        .filter(|source| {
            source.file.starts_with("domain/")
                && !["domain/mod.rs", "domain/deps.rs"].contains(&source.file.as_str())
                && names_the_context(&source.code)
        })
        .map(|source| source.file)
        .collect();
    assert!(
        holding.is_empty(),
        "domain functions take the dependencies they use (`domain::deps`), not the whole Context: {holding:?}"
    );
    assert!(names_the_context("fn a(ctx: &Context) {}"));
    assert!(!names_the_context("fn a(ctx: &impl Db) {} // ContextFree"));
}

#[test]
fn the_checker_sees_groups_super_paths_and_sql_literals() {
    let source = Source {
        file: "domain/login.rs".into(),
        module: "domain::login".into(),
        code: "use crate::{config::Config, domain::{events, types::Kind}};\n\
               use super::accounts::Account;\n\
               const Q: &str = r#\"UPDATE sessions\n SET x = 1\"#;\n"
            .into(),
    };
    let paths = named_paths(&source);
    for expected in [
        "config::Config",
        "domain::events",
        "domain::types::Kind",
        "domain::accounts::Account",
    ] {
        assert!(
            paths.iter().any(|p| p == expected),
            "{expected} in {paths:?}"
        );
    }
    assert!(holds_queries(&source));
    let clean = Source {
        code: "const Q: &str = \"no query here\"; let c = '\"';".into(),
        ..source
    };
    assert!(!holds_queries(&clean));

    let mut graph = BTreeMap::new();
    graph.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    graph.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    graph.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(
        modules_in_cycles(&graph),
        BTreeSet::from(["a".to_string(), "b".to_string()])
    );
}
