//! Session ids: what a valid id looks like, and readable random ones.
//!
//! An id names a directory and a socket file, appears in tmux window names and
//! is typed by people, so it is kept to a safe alphabet: ASCII letters,
//! digits, `.`, `_` and `-`, starting with a letter or digit, at most
//! [`MAX_LEN`] bytes. Anything path-like (`..`, `/`), control characters and
//! whitespace are refused with a hint instead of being rewritten, so the id a
//! user typed is the id everything reports.

use crate::error::CliError;

/// Longest accepted id, in bytes.
pub(crate) const MAX_LEN: usize = 64;

/// Checks a user-supplied id.
pub(crate) fn validate(id: &str) -> Result<(), CliError> {
    let hint = "ids use letters, digits, '.', '_' and '-', start with a letter or digit, \
                and are at most 64 characters (e.g. --id cx-review-1)";
    if id.is_empty() {
        return Err(CliError::usage("invalid session id: it is empty").hint(hint));
    }
    if id.len() > MAX_LEN {
        return Err(CliError::usage(format!(
            "invalid session id: it is {} bytes long, the limit is {MAX_LEN}",
            id.len()
        ))
        .hint(hint));
    }
    if let Some(bad) = id.chars().find(|c| !is_id_char(*c)) {
        return Err(CliError::usage(format!(
            "invalid session id {}: character {} is not allowed",
            quoted(id),
            quoted(&bad.to_string())
        ))
        .hint(hint));
    }
    if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(CliError::usage(format!(
            "invalid session id {}: it must start with a letter or digit",
            quoted(id)
        ))
        .hint(hint));
    }
    Ok(())
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Quotes a string for an error message, escaping control characters so a
/// newline or NUL in bad input cannot break the message.
pub(crate) fn quoted(s: &str) -> String {
    format!("{:?}", s)
}

const ADJECTIVES: &[&str] = &[
    "amber", "brave", "brisk", "calm", "clever", "cosmic", "crisp", "dapper", "eager", "fancy",
    "fuzzy", "gentle", "glad", "golden", "happy", "hardy", "humble", "jolly", "keen", "kind",
    "lively", "lucky", "mellow", "merry", "mighty", "nimble", "noble", "plucky", "polite", "proud",
    "quick", "quiet", "rapid", "rosy", "rusty", "sharp", "shiny", "silent", "sleek", "smart",
    "snappy", "solid", "spry", "steady", "stout", "sunny", "swift", "tidy", "tough", "vivid",
    "warm", "wise", "witty", "zesty",
];

const NOUNS: &[&str] = &[
    "badger", "beaver", "bison", "cobra", "condor", "coyote", "crane", "dingo", "eagle", "falcon",
    "ferret", "finch", "gecko", "heron", "hornet", "ibis", "jackal", "koala", "lemur", "lynx",
    "marten", "mole", "moose", "newt", "ocelot", "osprey", "otter", "owl", "panda", "pelican",
    "puffin", "quail", "raven", "robin", "salmon", "seal", "shrew", "skink", "sparrow", "stoat",
    "swan", "tapir", "tern", "tiger", "toad", "trout", "viper", "walrus", "weasel", "wombat",
    "wren", "yak", "zebra",
];

/// A readable random id such as `brisk-otter`, for which `taken` is false.
/// After a few collisions a numeric suffix is added, so this always returns.
pub(crate) fn random(mut taken: impl FnMut(&str) -> bool) -> String {
    for attempt in 0.. {
        let a = ADJECTIVES[random_index(ADJECTIVES.len())];
        let n = NOUNS[random_index(NOUNS.len())];
        let id = if attempt < 16 {
            format!("{a}-{n}")
        } else {
            format!("{a}-{n}-{}", random_index(10_000))
        };
        if !taken(&id) {
            return id;
        }
    }
    unreachable!("the loop above only ends by returning")
}

/// A random index in `0..len`, from the kernel's random source.
pub(crate) fn random_index(len: usize) -> usize {
    (random_u64() % len as u64) as usize
}

/// 64 random bits from the kernel.
pub(crate) fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    let mut filled = 0;
    while filled < buf.len() {
        match rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => panic!("the kernel random source failed: {err}"),
        }
    }
    u64::from_le_bytes(buf)
}

/// A short random hex token, e.g. for run ids and message ids.
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut out = String::with_capacity(bytes * 2);
    while out.len() < bytes * 2 {
        out.push_str(&format!("{:016x}", random_u64()));
    }
    out.truncate(bytes * 2);
    out
}

/// Whether id `text` matches `pattern`, where `*` matches any run of
/// characters and everything else matches itself (an id has no `*`).
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_ids() {
        assert!(glob("impl-*", "impl-7"));
        assert!(glob("*", "x"));
        assert!(glob("a*b*c", "a-b-c"));
        assert!(!glob("impl-*", "plan-1"));
        assert!(glob("w1", "w1"));
        assert!(!glob("a*a", "a"));
    }

    #[test]
    fn accepts_ordinary_ids() {
        for id in ["a", "cx-1", "Review_2.b", "brisk-otter", &"x".repeat(MAX_LEN)] {
            validate(id).unwrap();
        }
    }

    #[test]
    fn refuses_path_like_and_control_ids() {
        for id in ["", "../x", "a/b", "a\0b", "a\nb", "-a", ".hidden", "a b", "é", &"x".repeat(65)]
        {
            let err = validate(id).unwrap_err();
            assert_eq!(err.code, crate::error::code::USAGE, "{id:?}");
            assert!(err.hint.is_some());
            assert!(!err.message.contains('\n'), "message must stay on one line: {id:?}");
        }
    }

    #[test]
    fn random_ids_are_valid_and_avoid_taken_ones() {
        let id = random(|_| false);
        validate(&id).unwrap();
        let mut seen = 0;
        let id = random(|_| {
            seen += 1;
            seen < 20
        });
        validate(&id).unwrap();
        assert_eq!(id.matches('-').count(), 2, "suffix added after collisions: {id}");
    }
}
