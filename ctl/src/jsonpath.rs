//! `-o jsonpath=TEMPLATE`: the subset of kubectl's JSONPath templates that
//! scripts use — literal text, `{.a.b}`, `{.items[0]}`, `{.items[*].x}`,
//! `{['key.with.dots']}`, `{range .items[*]}…{end}`, and quoted literals
//! such as `{"\n"}`. Several results of one expression are separated by
//! spaces; strings print bare, other values as JSON. Filters (`?()`),
//! slices and recursive descent (`..`) are refused with an error.

use serde_json::Value;

use crate::Error;

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    All,
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Path(Vec<Step>),
    Range(Vec<Step>, Vec<Node>),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template(Vec<Node>);

fn bad(template: &str, why: &str) -> Error {
    Error::Usage(format!("jsonpath template {template:?}: {why}"))
}

fn parse_path(template: &str, expr: &str) -> Result<Vec<Step>, Error> {
    let mut steps = Vec::new();
    let mut rest = expr.trim();
    if rest == "$" || rest.is_empty() {
        return Ok(steps);
    }
    rest = rest.strip_prefix('$').unwrap_or(rest);
    while !rest.is_empty() {
        if rest.starts_with("..") {
            return Err(bad(template, "recursive descent (..) is not supported"));
        }
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let name = &r[..end];
            if name.is_empty() {
                return Err(bad(template, "empty field name"));
            }
            if name == "*" {
                steps.push(Step::All);
            } else {
                steps.push(Step::Field(name.to_owned()));
            }
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| bad(template, "unclosed ["))?;
            let inner = r[..end].trim();
            if inner == "*" {
                steps.push(Step::All);
            } else if let Some(q) = inner
                .strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
                .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
            {
                steps.push(Step::Field(q.to_owned()));
            } else if let Ok(i) = inner.parse::<i64>() {
                steps.push(Step::Index(i));
            } else {
                return Err(bad(
                    template,
                    &format!("[{inner}] is not supported (index, *, or 'key')"),
                ));
            }
            rest = &r[end + 1..];
        } else {
            // A bare first field (`{metadata.name}`) as kubectl allows.
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            steps.push(Step::Field(rest[..end].to_owned()));
            rest = &rest[end..];
        }
    }
    Ok(steps)
}

fn unescape(s: &str) -> String {
    s.replace("\\n", "\n")
        .replace("\\t", "\t")
        .replace("\\\"", "\"")
        .replace("\\\\", "\\")
}

impl Template {
    /// Parses `template` (`{.metadata.name}{"\n"}`).
    pub fn parse(template: &str) -> Result<Self, Error> {
        let mut stack: Vec<(Vec<Step>, Vec<Node>)> = Vec::new();
        let mut nodes = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            let Some(open) = rest.find('{') else {
                nodes.push(Node::Text(rest.to_owned()));
                break;
            };
            if open > 0 {
                nodes.push(Node::Text(rest[..open].to_owned()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| bad(template, "unclosed {"))?
                + open;
            let expr = rest[open + 1..close].trim();
            rest = &rest[close + 1..];
            if let Some(lit) = expr.strip_prefix('"').and_then(|e| e.strip_suffix('"')) {
                nodes.push(Node::Text(unescape(lit)));
            } else if let Some(path) = expr.strip_prefix("range ") {
                stack.push((parse_path(template, path)?, std::mem::take(&mut nodes)));
            } else if expr == "end" {
                let (path, outer) = stack
                    .pop()
                    .ok_or_else(|| bad(template, "{end} without {range}"))?;
                let body = std::mem::replace(&mut nodes, outer);
                nodes.push(Node::Range(path, body));
            } else if expr.contains("?(") || expr.contains(':') {
                return Err(bad(template, "filters and slices are not supported"));
            } else {
                nodes.push(Node::Path(parse_path(template, expr)?));
            }
        }
        if !stack.is_empty() {
            return Err(bad(template, "{range} without {end}"));
        }
        Ok(Template(nodes))
    }

    /// Renders the template against `value`.
    pub fn render(&self, value: &Value) -> String {
        let mut out = String::new();
        render(&self.0, value, &mut out);
        out
    }
}

fn select<'a>(steps: &[Step], value: &'a Value) -> Vec<&'a Value> {
    let mut current = vec![value];
    for step in steps {
        let mut next = Vec::new();
        for v in current {
            match step {
                Step::Field(name) => next.extend(v.get(name)),
                Step::Index(i) => {
                    if let Some(items) = v.as_array() {
                        let idx = if *i < 0 { items.len() as i64 + i } else { *i };
                        next.extend(usize::try_from(idx).ok().and_then(|i| items.get(i)));
                    }
                }
                Step::All => match v {
                    Value::Array(items) => next.extend(items),
                    Value::Object(map) => next.extend(map.values()),
                    _ => {}
                },
            }
        }
        current = next;
    }
    current
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn render(nodes: &[Node], value: &Value, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Path(steps) => {
                let found: Vec<String> = select(steps, value).into_iter().map(scalar).collect();
                out.push_str(&found.join(" "));
            }
            Node::Range(steps, body) => {
                for item in select(steps, value) {
                    render(body, item, out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(t: &str, v: &Value) -> String {
        Template::parse(t).unwrap().render(v)
    }

    #[test]
    fn paths_ranges_and_literals() {
        let list = json!({"items": [
            {"metadata": {"name": "a", "labels": {"app.kubernetes.io/name": "x"}}, "spec": {"replicas": 2}},
            {"metadata": {"name": "b"}, "spec": {"replicas": 3}},
        ]});
        assert_eq!(run("{.items[*].metadata.name}", &list), "a b");
        assert_eq!(run("{.items[0].spec.replicas}", &list), "2");
        assert_eq!(run("{.items[-1].metadata.name}", &list), "b");
        assert_eq!(
            run(
                "{range .items[*]}{.metadata.name}={.spec.replicas}{\"\\n\"}{end}",
                &list
            ),
            "a=2\nb=3\n"
        );
        assert_eq!(
            run(
                "{.items[0].metadata.labels['app.kubernetes.io/name']}",
                &list
            ),
            "x"
        );
        assert_eq!(run("name: {.items[1].metadata.name}", &list), "name: b");
        assert_eq!(run("{.items[0].metadata}", &list)[..1], *"{");
        assert!(Template::parse("{.items[?(@.x)]}").is_err());
        assert!(Template::parse("{range .items[*]}").is_err());
        assert!(Template::parse("{.a").is_err());
    }
}
