//! The pinned codex app-server JSON schema, for tests: validates a message
//! (or a part of one) against a definition of the schema that codex-cli
//! 0.169.0 prints with `codex app-server generate-json-schema`.
//!
//! The schema is the generator's bundle file pruned to the messages reins
//! exchanges (`tests/fixtures/codex-app-server-schema/`, made by
//! `scripts/prune-codex-schema`; `tests/test_codex_schema.rs` fails when the
//! installed codex prints something else). Definitions are named as in the
//! bundle: top-level ones by their name (`ClientRequest`, `InitializeParams`,
//! `CommandExecutionRequestApprovalResponse`), the `v2` namespace with a
//! prefix (`v2/TurnStartParams`). Every `$ref` points into the same document,
//! so nothing is fetched.

#![cfg(test)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::{Value, json};

/// The pruned bundle, embedded so a test needs no working directory.
const BUNDLE: &str = include_str!(
    "../../tests/fixtures/codex-app-server-schema/codex_app_server_protocol.schemas.json"
);

/// The namespace the bundle nests under `definitions/`; its definitions are
/// named `v2/Name`.
const NAMESPACE: &str = "v2";

/// The request unions whose variants carry a method and a `FooParams` ref.
const REQUEST_UNIONS: [&str; 2] = ["ClientRequest", "ServerRequest"];

/// Validates `value` against definition `name` (e.g. "ClientRequest",
/// "ServerNotification", "v2/TurnStartParams") of the pinned codex
/// app-server schema; Err lists every violation with its JSON path.
pub(crate) fn validate(name: &str, value: &Value) -> Result<(), String> {
    let validator = validator(name)?;
    let mut violations = Vec::new();
    for error in validator.iter_errors(value) {
        describe(&error, &mut violations);
    }
    if violations.is_empty() {
        return Ok(());
    }
    let count = violations.len();
    let plural = if count == 1 { "" } else { "s" };
    Err(format!("not a valid {name} ({count} violation{plural}):\n  {}", violations.join("\n  ")))
}

/// Names of all definitions available.
pub(crate) fn definitions() -> Vec<String> {
    let mut names = Vec::new();
    for (name, schema) in defs() {
        if name == NAMESPACE {
            let nested = schema.as_object().into_iter().flatten();
            names.extend(nested.map(|(inner, _)| format!("{NAMESPACE}/{inner}")));
        } else {
            names.push(name.clone());
        }
    }
    names.sort();
    names
}

/// The definition the `result` of a reply to request `method` must match:
/// `FooResponse` for a request whose params are `FooParams`, found in the
/// client or server request union. None for a method the schema does not
/// keep.
pub(crate) fn response_definition(method: &str) -> Option<String> {
    let defs = defs();
    let variants = REQUEST_UNIONS
        .iter()
        .filter_map(|union| defs.get(*union)?.get("oneOf")?.as_array())
        .flatten();
    for variant in variants {
        let props = &variant["properties"];
        if props["method"]["enum"] != json!([method]) {
            continue;
        }
        let params = props["params"]["$ref"].as_str()?;
        let base = params.strip_prefix("#/definitions/")?.strip_suffix("Params")?;
        let name = format!("{base}Response");
        return lookup(&name).is_some().then_some(name);
    }
    None
}

/// The parsed bundle.
fn bundle() -> &'static Value {
    static BUNDLE_JSON: OnceLock<Value> = OnceLock::new();
    BUNDLE_JSON.get_or_init(|| serde_json::from_str(BUNDLE).expect("pinned schema is JSON"))
}

/// The bundle's `definitions`.
fn defs() -> &'static serde_json::Map<String, Value> {
    bundle()["definitions"].as_object().expect("pinned schema has a definitions object")
}

/// The definition called `name`, if the schema has it.
fn lookup(name: &str) -> Option<&'static Value> {
    let defs = defs();
    match name.split_once('/') {
        Some((NAMESPACE, inner)) if !inner.contains('/') => defs.get(NAMESPACE)?.get(inner),
        Some(_) => None,
        None if name == NAMESPACE => None,
        None => defs.get(name),
    }
}

/// A compiled validator for definition `name`, built once per name: the
/// whole bundle with a root `$ref` to the definition, so every other `$ref`
/// resolves inside it.
fn validator(name: &str) -> Result<Arc<Validator>, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Validator>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(found) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
        return Ok(Arc::clone(found));
    }
    if lookup(name).is_none() {
        return Err(format!(
            "no definition {name:?} in the pinned codex app-server schema \
             (see schema::definitions())"
        ));
    }
    let root = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$ref": format!("#/definitions/{name}"),
        "definitions": defs(),
    });
    let built = jsonschema::draft7::options().build(&root).map_err(|e| {
        format!("internal error: pinned schema definition {name} does not compile: {e}")
    })?;
    let built = Arc::new(built);
    cache.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), Arc::clone(&built));
    Ok(built)
}

/// Appends one line per violation in `error`. A failed `oneOf`/`anyOf` is
/// opened up: alternatives that are plainly some other variant (see
/// [`variant_miss`]) are dropped and the errors of those left are reported
/// at their own paths, which says what is wrong with a `turn/start` instead
/// of "not valid under any of the schemas listed in the 'oneOf' keyword".
fn describe(error: &ValidationError<'_>, out: &mut Vec<String>) {
    let path = error.instance_path().as_str();
    let alternatives = match error.kind() {
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            context
        }
        _ => {
            out.push(format!("at {}: {error}", display_path(path)));
            return;
        }
    };
    let fitting: Vec<&Vec<ValidationError<'static>>> =
        alternatives.iter().filter(|errors| variant_miss(errors, path).is_none()).collect();
    if fitting.is_empty() {
        out.push(no_alternative_fits(error, alternatives));
    } else if fitting.len() == alternatives.len() && fitting.len() > 1 {
        // Nothing tells the alternatives apart: report each one's errors.
        out.push(format!("at {}: {error}", display_path(path)));
        for (index, errors) in fitting.into_iter().enumerate() {
            let mut inner = Vec::new();
            errors.iter().for_each(|e| describe(e, &mut inner));
            out.extend(inner.into_iter().map(|line| format!("  alternative {index}: {line}")));
        }
    } else {
        fitting.into_iter().flatten().for_each(|e| describe(e, out));
    }
}

/// What an alternative of a union at `base` expected, when its `errors`
/// show the value is some other variant rather than a broken one of this.
enum Miss {
    /// A tag (a single-value `enum` or `const`, such as `type`, `method` or
    /// a plain string variant) at `path` (`base` or a property of it) has
    /// another value.
    Tag { path: String, found: String, expected: Vec<String> },
    /// An externally tagged variant `{"key": ...}` (required key, no other
    /// keys allowed), and the value has neither.
    Key(String),
    /// The value has another JSON type.
    Type(String),
}

/// Why the alternative with `errors` is not the variant the value at
/// `base` is, or None if it may be.
fn variant_miss(errors: &[ValidationError<'_>], base: &str) -> Option<Miss> {
    let at_base = |e: &ValidationError<'_>| e.instance_path().as_str() == base;
    let at_child = |e: &ValidationError<'_>| {
        let rest = e.instance_path().as_str().strip_prefix(base);
        rest.and_then(|r| r.strip_prefix('/')).is_some_and(|r| !r.contains('/'))
    };
    for e in errors.iter().filter(|e| at_base(e) || at_child(e)) {
        let expected = match e.kind() {
            ValidationErrorKind::Enum { options } => match options.as_array() {
                Some(options) if options.len() == 1 => vec![options[0].to_string()],
                _ => continue,
            },
            ValidationErrorKind::Constant { expected_value } => vec![expected_value.to_string()],
            _ => continue,
        };
        let (path, found) = (e.instance_path().to_string(), e.instance().to_string());
        return Some(Miss::Tag { path, found, expected });
    }
    let required = errors.iter().filter(|e| at_base(e)).find_map(|e| match e.kind() {
        ValidationErrorKind::Required { property } => Some(property.to_string()),
        _ => None,
    });
    let closed = errors.iter().any(|e| {
        at_base(e) && matches!(e.kind(), ValidationErrorKind::AdditionalProperties { .. })
    });
    if let (Some(key), true) = (&required, closed) {
        return Some(Miss::Key(format!("{{{key}: ...}}")));
    }
    let (wrong_type, kind) = errors.iter().find_map(|e| match e.kind() {
        ValidationErrorKind::Type { kind } if at_base(e) => Some((e, kind)),
        _ => None,
    })?;
    if let Some(key) = single_key(wrong_type) {
        return Some(Miss::Key(format!("{{{key}: ...}}")));
    }
    Some(Miss::Type(match kind {
        TypeKind::Single(t) => {
            let name = t.to_string();
            format!("{} {name}", article(&name))
        }
        TypeKind::Multiple(set) => {
            set.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(" or ")
        }
    }))
}

/// The key of the externally tagged variant (`{"key": ...}`: one required
/// key, no others allowed) whose `type` keyword raised `error`, if it is one.
fn single_key(error: &ValidationError<'_>) -> Option<String> {
    // The schema path points into the validator's root, whose `definitions`
    // are the bundle's.
    let schema = error.schema_path().as_str().strip_suffix("/type")?;
    let schema = bundle().pointer(schema)?;
    match (schema["required"].as_array(), &schema["additionalProperties"]) {
        (Some(required), Value::Bool(false)) if required.len() == 1 => {
            Some(required[0].to_string())
        }
        _ => None,
    }
}

/// The line for a union none of whose alternatives fits: what each one
/// expected, when they all tell variants apart at the same place.
fn no_alternative_fits(
    error: &ValidationError<'_>,
    alternatives: &[Vec<ValidationError>],
) -> String {
    let base = error.instance_path().as_str();
    let generic = || format!("at {}: {error}", display_path(base));
    let mut at = (base.to_string(), error.instance().to_string());
    let mut expected: Vec<String> = Vec::new();
    for errors in alternatives {
        match variant_miss(errors, base) {
            Some(Miss::Tag { path, found, expected: values }) => {
                if path != base {
                    if at.0 != base && at.0 != path {
                        return generic();
                    }
                    at = (path, found);
                }
                expected.extend(values);
            }
            Some(Miss::Key(text) | Miss::Type(text)) => expected.push(text),
            None => return generic(),
        }
    }
    // A tag below the value (`/method`) and a type or key of the value
    // itself do not make one list.
    let mixed = at.0 != base
        && alternatives.iter().any(|e| !matches!(variant_miss(e, base), Some(Miss::Tag { .. })));
    if mixed {
        return generic();
    }
    let mut seen = std::collections::HashSet::new();
    expected.retain(|text| seen.insert(text.clone()));
    let (path, found) = at;
    format!("at {}: {found} is not one of {}", display_path(&path), expected.join(", "))
}

/// "an" before a vowel sound, for "an object", "an array".
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
}

/// A JSON pointer, with the root spelled out.
fn display_path(path: &str) -> &str {
    if path.is_empty() { "(root)" } else { path }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use serde_json::{Value, json};

    use super::{definitions, response_definition, validate};

    /// Recorded `codex app-server` traffic (codex-cli 0.169.0, mock model).
    const TRANSCRIPTS: &str = "tests/fixtures/codex-app-server-transcripts";

    /// Who sent a transcript line.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    enum Dir {
        ClientToServer,
        ServerToClient,
    }

    /// The definitions one message must match, found from its shape (and,
    /// for a response, the method of the request it answers).
    fn definitions_for(
        dir: Dir,
        msg: &Value,
        pending: &mut HashMap<(Dir, String), String>,
    ) -> Result<Vec<(String, Value)>, String> {
        let id = msg.get("id").map(Value::to_string);
        let method = msg.get("method").and_then(Value::as_str);
        let mut checks = vec![("JSONRPCMessage".to_string(), msg.clone())];
        match (id, method) {
            (Some(id), Some(method)) => {
                pending.insert((dir, id), method.to_string());
                let union = match dir {
                    Dir::ClientToServer => "ClientRequest",
                    Dir::ServerToClient => "ServerRequest",
                };
                checks.push((union.to_string(), msg.clone()));
            }
            (None, Some(_)) => {
                let union = match dir {
                    Dir::ClientToServer => "ClientNotification",
                    Dir::ServerToClient => "ServerNotification",
                };
                checks.push((union.to_string(), msg.clone()));
            }
            (Some(id), None) => {
                let requester = match dir {
                    Dir::ClientToServer => Dir::ServerToClient,
                    Dir::ServerToClient => Dir::ClientToServer,
                };
                let request = pending
                    .remove(&(requester, id.clone()))
                    .ok_or_else(|| format!("reply to unknown request id {id}"))?;
                if let Some(result) = msg.get("result") {
                    let name = response_definition(&request)
                        .ok_or_else(|| format!("no response definition for {request}"))?;
                    checks.push(("JSONRPCResponse".to_string(), msg.clone()));
                    checks.push((name, result.clone()));
                } else {
                    checks.push(("JSONRPCError".to_string(), msg.clone()));
                }
            }
            (None, None) => return Err("neither id nor method".to_string()),
        }
        Ok(checks)
    }

    /// Checks every line of transcript `file`; returns one entry per line
    /// that does not validate and the number of lines checked.
    fn check_transcript(file: &Path) -> (Vec<String>, usize) {
        let text = std::fs::read_to_string(file).unwrap();
        let mut pending = HashMap::new();
        let mut failures = Vec::new();
        let mut lines = 0;
        for (index, line) in text.lines().enumerate() {
            lines += 1;
            let where_ = format!("{}:{}", file.display(), index + 1);
            let record: Value = serde_json::from_str(line).unwrap();
            let dir = match record["dir"].as_str() {
                Some("c2s") => Dir::ClientToServer,
                Some("s2c") => Dir::ServerToClient,
                other => panic!("{where_}: unknown direction {other:?}"),
            };
            let msg = &record["msg"];
            let summary = msg.get("method").and_then(Value::as_str).unwrap_or("<response>");
            match definitions_for(dir, msg, &mut pending) {
                Err(e) => failures.push(format!("{where_} ({summary}): {e}")),
                Ok(checks) => {
                    for (name, value) in checks {
                        if let Err(e) = validate(&name, &value) {
                            failures.push(format!("{where_} ({summary}): {e}"));
                        }
                    }
                }
            }
        }
        (failures, lines)
    }

    #[test]
    fn every_recorded_codex_message_matches_the_pinned_schema() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(TRANSCRIPTS);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
            .collect();
        files.sort();
        assert!(files.len() >= 4, "expected the recorded transcripts in {}", dir.display());
        let mut failures = Vec::new();
        let mut lines = 0;
        for file in &files {
            let (mut file_failures, file_lines) = check_transcript(file);
            failures.append(&mut file_failures);
            lines += file_lines;
        }
        assert!(lines >= 150, "only {lines} transcript lines");
        assert!(
            failures.is_empty(),
            "{} of {lines} lines fail:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn turn_start_with_an_input_object_is_rejected_at_its_path() {
        // What harnex sent: `input` as an object instead of UserInput[].
        let msg = json!({
            "id": 3,
            "method": "turn/start",
            "params": {"threadId": "t-1", "input": {"content": [{"type": "text", "text": "hi"}]}},
        });
        let err = validate("ClientRequest", &msg).unwrap_err();
        assert!(err.contains("at /params/input: "), "{err}");
        assert!(err.contains("is not of type \"array\""), "{err}");
        let err = validate("v2/TurnStartParams", &msg["params"]).unwrap_err();
        assert!(err.contains("at /input: "), "{err}");
    }

    #[test]
    fn legacy_approval_decision_is_rejected_for_the_v2_request() {
        let err =
            validate("CommandExecutionRequestApprovalResponse", &json!({"decision": "approved"}))
                .unwrap_err();
        assert!(err.contains("at /decision: \"approved\" is not one of \"accept\""), "{err}");
        assert!(err.contains("\"decline\""), "{err}");
        // The legacy request takes exactly that value.
        validate("ExecCommandApprovalResponse", &json!({"decision": "approved"})).unwrap();
        validate("CommandExecutionRequestApprovalResponse", &json!({"decision": "accept"}))
            .unwrap();
    }

    #[test]
    fn legacy_denial_needs_a_rejection_object() {
        // 0.169 has no plain "denied" (the reference driver sends one).
        let err =
            validate("ExecCommandApprovalResponse", &json!({"decision": "denied"})).unwrap_err();
        assert!(err.contains("{\"denied\": ...}"), "{err}");
        // A broken variant is reported inside it, not as "no alternative".
        let err = validate("ExecCommandApprovalResponse", &json!({"decision": {"denied": {}}}))
            .unwrap_err();
        assert!(err.contains("(1 violation)"), "{err}");
        assert!(err.contains("at /decision/denied: \"rejection\" is a required property"), "{err}");
        let denied = json!({"decision": {"denied": {"rejection": "not now"}}});
        validate("ExecCommandApprovalResponse", &denied).unwrap();
    }

    #[test]
    fn a_method_the_schema_does_not_keep_is_named() {
        let err =
            validate("ClientRequest", &json!({"id": 1, "method": "thread/fork", "params": {}}))
                .unwrap_err();
        assert!(err.contains("at /method: \"thread/fork\" is not one of \"initialize\""), "{err}");
    }

    #[test]
    fn every_violation_is_listed() {
        let params = json!({"threadId": 7, "input": [{"type": "text"}], "turnId": null});
        let err = validate("v2/TurnInterruptParams", &params).unwrap_err();
        assert!(err.contains("at /threadId: 7 is not of type \"string\""), "{err}");
        assert!(err.contains("at /turnId: null is not of type \"string\""), "{err}");
        let err = validate("v2/TurnStartParams", &params).unwrap_err();
        assert!(err.contains("at /input/0: \"text\" is a required property"), "{err}");
    }

    #[test]
    fn unknown_definition_is_an_error_not_a_panic() {
        let err = validate("v2/NoSuchThing", &json!({})).unwrap_err();
        assert!(err.contains("no definition \"v2/NoSuchThing\""), "{err}");
        assert!(validate("v2", &json!({})).is_err());
    }

    #[test]
    fn definitions_cover_every_kept_message_and_its_reply() {
        let names = definitions();
        for name in
            ["ClientRequest", "ServerNotification", "InitializeParams", "v2/TurnStartParams"]
        {
            assert!(names.iter().any(|n| n == name), "{name} missing from {names:?}");
        }
        for method in [
            "initialize",
            "thread/start",
            "turn/start",
            "turn/steer",
            "turn/interrupt",
            "item/commandExecution/requestApproval",
            "item/fileChange/requestApproval",
            "execCommandApproval",
            "applyPatchApproval",
            "item/tool/requestUserInput",
            "item/permissions/requestApproval",
        ] {
            let name = response_definition(method).unwrap_or_else(|| panic!("{method}"));
            assert!(names.contains(&name), "{name}");
        }
        assert_eq!(response_definition("turn/start").as_deref(), Some("v2/TurnStartResponse"));
        assert_eq!(response_definition("thread/fork"), None);
    }
}
