//! Endpoint descriptors: the Dirigible `*.websocket` files that bind a named
//! handler to an endpoint, and the rules every endpoint name follows.
//!
//! A directory is loaded whole or not at all: the first bad file stops the
//! load with an error naming the file and the field, so a server never runs
//! with half of its endpoints.

use crate::error::Error;
use std::collections::HashMap;
use std::path::Path;

/// One endpoint: its name (the last path segment) and its handler's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) name: String,
    pub(crate) handler: String,
}

/// Checks an endpoint name: ASCII letters, digits, `-`, `_` and `.`, not
/// empty, not `.` or `..`.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("endpoint name '{name}' is not allowed"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
        return Err(format!("endpoint name '{name}' contains '{c}': use ASCII letters, digits, '-', '_' and '.'"));
    }
    Ok(())
}

/// Parses one descriptor's text. `file` names it in errors.
pub(crate) fn parse(file: &str, text: &str) -> Result<Endpoint, Error> {
    let bad = |why: String| Error::InvalidArgument(format!("descriptor {file}: {why}"));
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let obj = json.as_object().ok_or_else(|| bad("not a JSON object".into()))?;
    let field = |name: &str| -> Result<String, Error> {
        match obj.get(name) {
            None => Err(bad(format!("'{name}' is missing"))),
            Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(serde_json::Value::String(_)) => Err(bad(format!("'{name}' is empty"))),
            Some(_) => Err(bad(format!("'{name}' is not a string"))),
        }
    };
    let (handler, name) = (field("handler")?, field("endpoint")?);
    if obj.get("description").is_some_and(|d| !d.is_string()) {
        return Err(bad("'description' is not a string".into()));
    }
    check_name(&name).map_err(bad)?;
    Ok(Endpoint { name, handler })
}

/// Loads every `*.websocket` file of `dir` (other files are ignored), in
/// name order.
pub(crate) fn load_dir(dir: &Path) -> Result<Vec<Endpoint>, Error> {
    let shown = dir.display();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::InvalidArgument(format!("descriptor directory {shown} cannot be read: {e}")))?;
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "websocket") && p.is_file())
        .collect();
    files.sort();
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut endpoints = Vec::new();
    for path in files {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::InvalidArgument(format!("descriptor {file} cannot be read: {e}")))?;
        let endpoint = parse(&file, &text)?;
        if let Some(first) = seen.insert(endpoint.name.clone(), file.clone()) {
            return Err(Error::InvalidArgument(format!(
                "descriptor {file}: endpoint '{}' is already defined by {first}",
                endpoint.name
            )));
        }
        endpoints.push(endpoint);
    }
    Ok(endpoints)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_descriptor_parses() {
        let e = parse(
            "my-endpoint.websocket",
            r#"{ "handler": "my-project/ws-handler", "endpoint": "my-endpoint", "description": "My Websocket" }"#,
        )
        .unwrap();
        assert_eq!(e, Endpoint { name: "my-endpoint".into(), handler: "my-project/ws-handler".into() });
    }

    #[test]
    fn bad_descriptors_name_the_file_and_the_field() {
        let cases = [
            ("{", "invalid JSON"),
            ("[]", "not a JSON object"),
            (r#"{"endpoint":"e"}"#, "'handler' is missing"),
            (r#"{"handler":"","endpoint":"e"}"#, "'handler' is empty"),
            (r#"{"handler":1,"endpoint":"e"}"#, "'handler' is not a string"),
            (r#"{"handler":"h"}"#, "'endpoint' is missing"),
            (r#"{"handler":"h","endpoint":"e","description":2}"#, "'description' is not a string"),
            (r#"{"handler":"h","endpoint":".."}"#, "not allowed"),
            (r#"{"handler":"h","endpoint":"a/b"}"#, "contains '/'"),
        ];
        for (text, want) in cases {
            let e = parse("x.websocket", text).unwrap_err().to_string();
            assert!(e.contains("descriptor x.websocket") && e.contains(want), "{text}: {e}");
        }
        assert!(parse("ok.websocket", r#"{"handler":"h","endpoint":"a-b_c.1","other":[1]}"#).is_ok());
    }
}
