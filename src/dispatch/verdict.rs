//! The verifier's verdict: one JSON object `{"accept": bool, "feedback":
//! string}` (other keys are ignored), read from the file its brief names
//! or else from what it answered on screen after its brief. Anything else
//! — no object, the wrong types, a verifier that never finished — is a
//! rejection with the reason as feedback.
//!
//! The file is where nothing but the verifier can know to write: a
//! directory created for this one verification (0700, a random name, made
//! with `mkdir`, so nothing was in it before), and only a regular file
//! this user owns is read, at most [`MAX_FILE`] bytes of it. A stray
//! worker process that writes where verdicts used to go (a path anyone
//! could work out from the session id) is not believed.

use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

/// The most of a verdict file that is read.
pub(crate) const MAX_FILE: u64 = 64 * 1024;

/// A validated verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Verdict {
    pub(crate) accept: bool,
    pub(crate) feedback: String,
}

/// The path the verifier `session` is told to write its verdict to, in a
/// new directory of its own under `dir` (see the module docs).
pub(crate) fn fresh_file(dir: &Path, session: &str) -> std::io::Result<PathBuf> {
    let place = dir.join(format!("{session}.{}", crate::ids::random_hex(12)));
    std::fs::DirBuilder::new().mode(0o700).create(&place)?;
    Ok(place.join("verdict.json"))
}

/// The verdict in `file`: `None` when nothing was written there (the
/// screen decides), an error when what is there is not a verdict this user
/// wrote as a regular file.
pub(crate) fn from_file(file: &Path) -> Option<Result<Verdict, String>> {
    use std::os::unix::fs::OpenOptionsExt;
    let shown = file.display();
    // No symlink followed, no FIFO waited on; what was opened is checked.
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let opened =
        std::fs::OpenOptions::new().read(true).custom_flags(flags.bits() as i32).open(file);
    let opened = match opened {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return None,
        other => other,
    };
    let mut text = String::new();
    let read = opened
        .and_then(|f| {
            let meta = f.metadata()?;
            if !meta.is_file() || meta.uid() != rustix::process::geteuid().as_raw() {
                return Err(std::io::Error::other("not a regular file of this user"));
            }
            f.take(MAX_FILE).read_to_string(&mut text)
        })
        .map_err(|err| format!("cannot read {shown}: {err}"));
    Some(read.and_then(|_| {
        serde_json::from_str(&text)
            .map_err(|err| format!("{shown} is not JSON: {err}"))
            .and_then(|v| validate(&v))
    }))
}

/// Validates one JSON value against the verdict schema.
pub(crate) fn validate(value: &Value) -> Result<Verdict, String> {
    let obj = value.as_object().ok_or("the verdict is not a JSON object")?;
    let accept = match obj.get("accept") {
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("\"accept\" is not true or false".into()),
        None => return Err("the verdict has no \"accept\"".into()),
    };
    let feedback = match obj.get("feedback") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err("\"feedback\" is not a string".into()),
        None => return Err("the verdict has no \"feedback\"".into()),
    };
    Ok(Verdict { accept, feedback })
}

/// The last JSON object in `text` that has an `accept` key, validated.
/// Screens wrap long lines, so a candidate that does not parse is tried
/// again with its line breaks removed.
pub(crate) fn from_text(text: &str) -> Result<Verdict, String> {
    match last_object_with(text, "accept") {
        Ok(value) => validate(&value),
        Err(Some(err)) => Err(format!("the verdict is not valid JSON: {err}")),
        Err(None) => Err("no JSON verdict in the answer".into()),
    }
}

/// The last JSON object in `text` that has the key `key` (a chain's gate
/// decision uses it too). `Err(Some(why))`: the last candidate was not
/// JSON; `Err(None)`: there was no candidate.
pub(crate) fn last_object_with(text: &str, key: &str) -> Result<Value, Option<String>> {
    let quoted = format!("\"{key}\"");
    let mut last_error = None;
    for (start, _) in text.rmatch_indices('{') {
        let Some(candidate) = balanced(&text[start..]) else { continue };
        if !candidate.contains(&quoted) {
            continue;
        }
        let joined: String = candidate.split('\n').map(str::trim_end).collect();
        let parsed = serde_json::from_str::<Value>(candidate)
            .or_else(|_| serde_json::from_str::<Value>(&joined));
        match parsed {
            Ok(value) => return Ok(value),
            Err(err) => {
                if last_error.is_none() {
                    last_error = Some(err.to_string());
                }
            }
        }
    }
    Err(last_error)
}

/// The text of the `{...}` object starting at `text[0]`, braces balanced
/// (outside strings).
fn balanced(text: &str) -> Option<&str> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[..=i]);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_verdict_wins_and_is_validated() {
        let text = r#"> brief {"accept": true, "feedback": "quoted"} ...
● {"accept": false, "feedback": "add a test for {x}"}"#;
        assert_eq!(
            from_text(text).unwrap(),
            Verdict { accept: false, feedback: "add a test for {x}".into() }
        );
        assert!(from_text("● looks good to me").unwrap_err().contains("no JSON verdict"));
        assert!(from_text(r#"{"accept": "yes", "feedback": ""}"#).unwrap_err().contains("accept"));
        assert!(from_text(r#"{"accept": true}"#).unwrap_err().contains("feedback"));
        assert!(from_text(r#"{"accept": tru, "feedback": ""}"#).unwrap_err().contains("JSON"));
    }

    #[test]
    fn the_verdict_file_is_in_a_new_private_place_and_only_a_plain_file_counts() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let a = fresh_file(tmp.path(), "s-verify").unwrap();
        let b = fresh_file(tmp.path(), "s-verify").unwrap();
        assert_ne!(a.parent(), b.parent(), "a name no one can work out");
        let mode = std::fs::metadata(a.parent().unwrap()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(from_file(&a), None, "nothing written: the screen decides");
        std::fs::write(&a, r#"{"accept": true, "feedback": "fine"}"#).unwrap();
        assert_eq!(from_file(&a).unwrap().unwrap().feedback, "fine");
        let elsewhere = tmp.path().join("planted.json");
        std::fs::write(&elsewhere, r#"{"accept": true, "feedback": "planted"}"#).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &b).unwrap();
        assert!(from_file(&b).unwrap().unwrap_err().contains("cannot read"));
    }

    #[test]
    fn a_wrapped_verdict_is_joined() {
        let text = "{\"accept\": true, \"feedback\": \"fi\nne\"}";
        assert_eq!(from_text(text).unwrap().feedback, "fine");
    }
}
