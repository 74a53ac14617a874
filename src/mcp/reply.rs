//! How a tool answers when reins says no: the same message and hint the
//! command line prints, as a tool result marked `isError`.
//!
//! MCP has two ways to fail a `tools/call`. A JSON-RPC error is for a call
//! that cannot be routed at all (an unknown tool, arguments that do not fit
//! the tool's schema: rmcp answers those itself, `-32602`); clients show
//! it opaquely. Everything reins itself refuses or fails at (no such
//! session, a condition it does not know, a session that ended, a host that
//! does not answer) reaches the model as a result it can read and act on:
//! `isError: true` and the text `reins: MESSAGE` / `hint: HINT`; a program
//! finds `{kind, message, hint}` in the result's `_meta["reins/error"]`.
//! (Not in `structuredContent`: clients check that against the tool's
//! output schema even on errors — the TypeScript SDK does.)

use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock};
use serde::Serialize;

use crate::error::{CliError, code};

/// The `_meta` key of a tool error's details.
pub(crate) const ERROR_META: &str = "reins/error";

/// A reins error, as a tool answers it.
#[derive(Debug, Serialize)]
pub(crate) struct ToolError {
    /// `invalid_input` (change the arguments), `failed` (it could not be
    /// done), `timeout` or `internal` (a bug in reins).
    pub(crate) kind: &'static str,
    pub(crate) message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) hint: Option<String>,
}

impl ToolError {
    /// Bad arguments that the schema could not rule out.
    pub(crate) fn invalid(message: impl Into<String>) -> ToolError {
        ToolError { kind: "invalid_input", message: message.into(), hint: None }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> ToolError {
        self.hint = Some(hint.into());
        self
    }

    /// The text a client shows: as `reins` prints it on stderr.
    pub(crate) fn text(&self) -> String {
        match &self.hint {
            Some(hint) => format!("reins: {}\nhint: {hint}", self.message),
            None => format!("reins: {}", self.message),
        }
    }
}

impl From<CliError> for ToolError {
    fn from(err: CliError) -> ToolError {
        let kind = match err.code {
            code::USAGE => "invalid_input",
            code::TIMEOUT => "timeout",
            code::INTERNAL => "internal",
            _ => "failed",
        };
        ToolError { kind, message: err.message, hint: err.hint }
    }
}

impl From<std::io::Error> for ToolError {
    fn from(err: std::io::Error) -> ToolError {
        ToolError::from(CliError::from(err))
    }
}

impl IntoCallToolResult for ToolError {
    fn into_call_tool_result(self) -> Result<CallToolResponse, rmcp::ErrorData> {
        let text = self.text();
        let mut meta = rmcp::model::JsonObject::new();
        meta.insert(ERROR_META.into(), serde_json::to_value(&self).unwrap_or_default());
        let result = CallToolResult::error(vec![ContentBlock::text(text)])
            .with_meta(Some(rmcp::model::MetaObject(meta)));
        Ok(result.into())
    }
}

/// What a tool returns: its structured result, or reins' error.
pub(crate) type Reply<T> = Result<rmcp::Json<T>, ToolError>;

/// A structured result.
pub(crate) fn ok<T>(value: T) -> Reply<T> {
    Ok(rmcp::Json(value))
}

/// A JSON object: the result of a tool whose fields are those of a reins
/// record (a session's status, what `reins run` prints).
pub(crate) type Object = serde_json::Map<String, serde_json::Value>;

/// `value` as a JSON object (an empty one if it is not an object).
pub(crate) fn object(value: &impl Serialize) -> Object {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => Object::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reins_error_reads_as_the_command_line_says_it_with_its_details_in_meta() {
        let err = ToolError::from(CliError::failure("no session named x").hint("look elsewhere"));
        let CallToolResponse::Complete(result) = err.into_call_tool_result().unwrap() else {
            panic!("a complete result");
        };
        assert_eq!(result.is_error, Some(true));
        assert!(result.structured_content.is_none(), "output schemas would reject it");
        let text = result.content[0].as_text().unwrap().text.clone();
        assert_eq!(text, "reins: no session named x\nhint: look elsewhere");
        let meta = result.meta.unwrap().0;
        assert_eq!(meta[ERROR_META]["kind"], "failed");
        assert_eq!(meta[ERROR_META]["hint"], "look elsewhere");
        for (code, kind) in [
            (code::USAGE, "invalid_input"),
            (code::TIMEOUT, "timeout"),
            (code::INTERNAL, "internal"),
        ] {
            let err = CliError { code, ..CliError::failure("x") };
            assert_eq!(ToolError::from(err).kind, kind);
        }
    }
}
