//! The Agent Client Protocol's JSON schema, for tests: validates a whole
//! message, or the params or result of one method, against schema v1
//! 1.21.0 (`tests/fixtures/acp-schema/schema.json`, copied unchanged from
//! the protocol's repository; see its README.md).
//!
//! The schema's envelopes (`ClientRequest`, `AgentNotification`, ...) take
//! any params of their side, so a message is checked twice: against the
//! envelope of the side that sent it (which requires `"jsonrpc": "2.0"`),
//! and its params or result against the definition the schema ties to its
//! method (`x-method`): `InitializeRequest` for `initialize`'s params,
//! `PromptResponse` for `session/prompt`'s result, `SessionNotification`
//! for `session/update`. Every `$ref` points into the same document.

#![cfg(test)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::Validator;
use serde_json::{Value, json};

/// The schema, embedded so a test needs no working directory.
const SCHEMA: &str = include_str!("../../tests/fixtures/acp-schema/schema.json");

/// Who sent a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Side {
    /// reins.
    Client,
    /// The agent.
    Agent,
}

impl Side {
    fn title(self) -> &'static str {
        match self {
            Side::Client => "Client",
            Side::Agent => "Agent",
        }
    }
}

fn schema() -> &'static Value {
    static PARSED: OnceLock<Value> = OnceLock::new();
    PARSED.get_or_init(|| serde_json::from_str(SCHEMA).expect("the ACP schema is JSON"))
}

fn defs() -> &'static serde_json::Map<String, Value> {
    schema()["$defs"].as_object().expect("the ACP schema has $defs")
}

/// The definition the schema ties to `method` whose name ends in one of
/// `suffixes` (`Request`, `Notification`, `Response`).
fn by_method(method: &str, suffixes: &[&str]) -> Option<String> {
    defs()
        .iter()
        .find(|(name, def)| {
            def.get("x-method").and_then(Value::as_str) == Some(method)
                && suffixes.iter().any(|s| name.ends_with(s))
        })
        .map(|(name, _)| name.clone())
}

/// The definition of `method`'s params (a request's or a notification's).
pub(crate) fn params_definition(method: &str) -> Option<String> {
    by_method(method, &["Request", "Notification"])
}

/// The definition of the result of a reply to request `method`.
pub(crate) fn result_definition(method: &str) -> Option<String> {
    by_method(method, &["Response"])
}

/// A validator for `key`: a definition's name, or `@Client` / `@Agent` for
/// the envelope of a side's messages; built once.
fn validator(key: &str) -> Result<Arc<Validator>, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Validator>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(found) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(key) {
        return Ok(Arc::clone(found));
    }
    let root = match key.strip_prefix('@') {
        Some(title) => {
            let envelope = schema()["anyOf"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["title"] == title)
                .ok_or_else(|| format!("no envelope {title:?} in the ACP schema"))?;
            let mut root = envelope.clone();
            root["$schema"] = schema()["$schema"].clone();
            root["$defs"] = schema()["$defs"].clone();
            root
        }
        None => {
            if !defs().contains_key(key) {
                return Err(format!("no definition {key:?} in the ACP schema"));
            }
            json!({ "$schema": schema()["$schema"], "$ref": format!("#/$defs/{key}"), "$defs": defs() })
        }
    };
    let built = jsonschema::draft202012::options()
        .build(&root)
        .map_err(|e| format!("internal error: ACP schema {key} does not compile: {e}"))?;
    let built = Arc::new(built);
    cache.lock().unwrap_or_else(|e| e.into_inner()).insert(key.to_string(), Arc::clone(&built));
    Ok(built)
}

fn check(key: &str, what: &str, value: &Value) -> Result<(), String> {
    let validator = validator(key)?;
    let violations: Vec<String> = validator
        .iter_errors(value)
        .map(|e| {
            let path = e.instance_path().as_str().to_string();
            let path = if path.is_empty() { "(root)".to_string() } else { path };
            let text = e.to_string();
            let text: String = text.chars().take(300).collect();
            format!("at {path}: {text}")
        })
        .collect();
    if violations.is_empty() {
        Ok(())
    } else {
        Err(format!("not a valid {what}:\n  {}", violations.join("\n  ")))
    }
}

/// Validates `value` against definition `name` (`PromptRequest`,
/// `RequestPermissionResponse`, ...).
pub(crate) fn validate(name: &str, value: &Value) -> Result<(), String> {
    check(name, name, value)
}

/// Validates a whole message sent by `side`: its envelope, and its params
/// (requests and notifications) or its result (replies: `answers` names
/// the method of the request it answers). A method the schema does not
/// know is an error.
pub(crate) fn validate_message(
    side: Side,
    message: &Value,
    answers: Option<&str>,
) -> Result<(), String> {
    check(&format!("@{}", side.title()), &format!("{} message", side.title()), message)?;
    match (message.get("method").and_then(Value::as_str), answers) {
        (Some(method), _) => {
            let def = params_definition(method)
                .ok_or_else(|| format!("the ACP schema has no method {method:?}"))?;
            check(&def, &def, message.get("params").unwrap_or(&Value::Null))
        }
        (None, Some(method)) => match message.get("result") {
            Some(result) => {
                let def = result_definition(method)
                    .ok_or_else(|| format!("the ACP schema has no reply to {method:?}"))?;
                check(&def, &def, result)
            }
            None => validate("Error", message.get("error").unwrap_or(&Value::Null)),
        },
        (None, None) => Err("a reply, but to which request?".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_map_to_their_definitions() {
        assert_eq!(params_definition("initialize").as_deref(), Some("InitializeRequest"));
        assert_eq!(params_definition("session/update").as_deref(), Some("SessionNotification"));
        assert_eq!(params_definition("session/cancel").as_deref(), Some("CancelNotification"));
        assert_eq!(
            params_definition("session/request_permission").as_deref(),
            Some("RequestPermissionRequest")
        );
        assert_eq!(result_definition("session/prompt").as_deref(), Some("PromptResponse"));
        assert_eq!(params_definition("craft/drainMidTurnQueue"), None);
    }

    #[test]
    fn a_broken_message_is_rejected_with_its_path() {
        // No jsonrpc member: the envelope refuses it.
        let bare = json!({ "id": 1, "method": "initialize", "params": { "protocolVersion": 1 } });
        let err = validate_message(Side::Client, &bare, None).unwrap_err();
        assert!(err.contains("jsonrpc"), "{err}");
        // A prompt whose content is a string instead of blocks.
        let prompt = json!({ "jsonrpc": "2.0", "id": 3, "method": "session/prompt",
            "params": { "sessionId": "s", "prompt": "hello" } });
        let err = validate_message(Side::Client, &prompt, None).unwrap_err();
        assert!(err.contains("/prompt"), "{err}");
        // A permission answer with an outcome the protocol does not have.
        let answer = json!({ "outcome": { "outcome": "approved", "optionId": "x" } });
        assert!(validate("RequestPermissionResponse", &answer).is_err());
        let answer = json!({ "outcome": { "outcome": "selected", "optionId": "x" } });
        validate("RequestPermissionResponse", &answer).unwrap();
        assert!(validate("NoSuchThing", &json!({})).unwrap_err().contains("no definition"));
    }
}
