//! The `[[name]]` / `[[name:arg]]` markers a message can carry to make the
//! mock agent misbehave on purpose (stall, crash, ask for approval, flood).
//!
//! Parsing is separate from the state machine so that the exact grammar is
//! unit-tested: a marker the parser does not recognise (unknown name, bad
//! argument) is left in the text untouched, so a typo shows up in the echo.

use std::time::Duration;

/// The command shown in the approval dialog when `[[approve]]` names none.
pub(crate) const DEFAULT_APPROVE_CMD: &str = "touch x.txt";
/// The exit code of `[[crash]]` without an argument (and of `--crash-after`).
pub(crate) const DEFAULT_CRASH_CODE: u8 = 3;

/// What the markers in one message ask for. Several may combine.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Markers {
    /// `[[wait:S]]`: work for this long instead of `--work`.
    pub(crate) wait: Option<Duration>,
    /// `[[stall]]`: go busy and then never draw again until interrupted.
    pub(crate) stall: bool,
    /// `[[crash]]` / `[[crash:N]]`: exit at once with this code.
    pub(crate) crash: Option<u8>,
    /// `[[approve]]` / `[[approve:CMD]]`: ask to run this command first.
    pub(crate) approve: Option<String>,
    /// `[[flood:N]]`: print this many KiB of transcript while working.
    pub(crate) flood_kib: Option<u32>,
    /// `[[spawn]]`: start a long-sleeping child process.
    pub(crate) spawn: bool,
    /// `[[exit]]` / `[[exit:N]]`: exit with this code once the turn is done.
    pub(crate) exit: Option<u8>,
    /// `[[fail]]`: report `MOCK_FAILED` instead of `MOCK_OK`.
    pub(crate) fail: bool,
    /// `[[drip:S]]`: print one line of real output every S seconds while
    /// working (a slow agent that is still getting somewhere).
    pub(crate) drip: Option<Duration>,
    /// `[[ratelimit:S]]`: hit a usage limit that resets in S seconds; until
    /// then every message ends at once with the limit notice.
    pub(crate) ratelimit: Option<Duration>,
    /// `[[reply:TEXT]]`: answer `● TEXT` instead of `MOCK_OK (you said: …)`
    /// (how a mock verifier gives a verdict); `\n` in TEXT breaks the line.
    /// `[[lines:N]]`: answer N lines, `line 1 of N` to `line N of N`.
    pub(crate) reply: Option<String>,
}

/// A submitted message split into its markers and the text without them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Parsed {
    pub(crate) markers: Markers,
    /// The message with recognised markers removed, whitespace runs
    /// (including newlines) collapsed to one space, and trimmed: the form
    /// echoed in `MOCK_OK (you said: ...)`, which must stay on one line.
    pub(crate) text: String,
}

/// Splits `message` into markers and the remaining text.
pub(crate) fn parse(message: &str) -> Parsed {
    let mut markers = Markers::default();
    let mut kept = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(open) = rest.find("[[") {
        let after_open = &rest[open + 2..];
        let Some(close) = after_open.find("]]") else {
            break;
        };
        let body = &after_open[..close];
        kept.push_str(&rest[..open]);
        // A body containing `[[` means the first `[[` was literal text:
        // resume scanning at the inner one.
        if body.contains("[[") {
            kept.push_str("[[");
            rest = after_open;
            continue;
        }
        if !apply(&mut markers, body) {
            kept.push_str(&rest[open..open + 2 + close + 2]);
        }
        rest = &after_open[close + 2..];
    }
    kept.push_str(rest);
    Parsed { markers, text: kept.split_whitespace().collect::<Vec<_>>().join(" ") }
}

/// Records one marker body (`wait:1.5`); false if it is not a valid marker.
fn apply(markers: &mut Markers, body: &str) -> bool {
    let (name, arg) = match body.split_once(':') {
        Some((name, arg)) => (name.trim(), Some(arg.trim())),
        None => (body.trim(), None),
    };
    match (name, arg) {
        ("wait", Some(arg)) => parse_secs(arg).map(|secs| markers.wait = Some(secs)).is_some(),
        ("stall", None) => {
            markers.stall = true;
            true
        }
        ("crash", None) => {
            markers.crash = Some(DEFAULT_CRASH_CODE);
            true
        }
        ("crash", Some(arg)) => arg.parse().map(|code| markers.crash = Some(code)).is_ok(),
        ("approve", None) => {
            markers.approve = Some(DEFAULT_APPROVE_CMD.to_owned());
            true
        }
        ("approve", Some(cmd)) if !cmd.is_empty() => {
            markers.approve = Some(cmd.to_owned());
            true
        }
        ("flood", Some(arg)) => arg.parse().map(|kib| markers.flood_kib = Some(kib)).is_ok(),
        ("spawn", None) => {
            markers.spawn = true;
            true
        }
        ("exit", None) => {
            markers.exit = Some(0);
            true
        }
        ("exit", Some(arg)) => arg.parse().map(|code| markers.exit = Some(code)).is_ok(),
        ("fail", None) => {
            markers.fail = true;
            true
        }
        ("ratelimit", Some(arg)) => {
            parse_secs(arg).map(|secs| markers.ratelimit = Some(secs)).is_some()
        }
        ("reply", Some(text)) if !text.is_empty() => {
            markers.reply = Some(text.replace("\\n", "\n"));
            true
        }
        ("lines", Some(arg)) => arg
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .map(|n| {
                let lines: Vec<String> = (1..=n).map(|i| format!("line {i} of {n}")).collect();
                markers.reply = Some(lines.join("\n"));
            })
            .is_some(),
        ("drip", Some(arg)) => parse_secs(arg)
            .filter(|secs| !secs.is_zero())
            .map(|secs| markers.drip = Some(secs))
            .is_some(),
        _ => false,
    }
}

/// The longest duration accepted (about 31 years): long enough to mean
/// "forever" in a test, short enough that adding it to an `Instant` cannot
/// overflow.
const MAX_SECS: f64 = 1e9;

/// Parses a non-negative number of seconds (`1`, `0.25`), at most `1e9`.
pub(crate) fn parse_secs(text: &str) -> Option<Duration> {
    let secs: f64 = text.trim().parse().ok()?;
    if secs > MAX_SECS {
        return None;
    }
    Duration::try_from_secs_f64(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_has_no_markers() {
        let parsed = parse("  hello   world ");
        assert_eq!(parsed.markers, Markers::default());
        assert_eq!(parsed.text, "hello world");
    }

    #[test]
    fn markers_are_removed_and_combined() {
        let parsed = parse("do it [[wait:1.5]] now [[approve:rm -rf tmp]][[spawn]] [[fail]]");
        assert_eq!(parsed.text, "do it now");
        let m = parsed.markers;
        assert_eq!(m.wait, Some(Duration::from_millis(1500)));
        assert_eq!(m.approve.as_deref(), Some("rm -rf tmp"));
        assert!(m.spawn && m.fail && !m.stall);
        assert_eq!(m.crash, None);
    }

    #[test]
    fn defaults_for_argument_less_markers() {
        let m = parse("[[crash]] [[approve]] [[exit]] [[stall]]").markers;
        assert_eq!(m.crash, Some(3));
        assert_eq!(m.approve.as_deref(), Some("touch x.txt"));
        assert_eq!(m.exit, Some(0));
        assert!(m.stall);
    }

    #[test]
    fn arguments_are_parsed() {
        let m = parse("[[crash:7]] [[exit:42]] [[flood:4]] [[drip:0.5]]").markers;
        assert_eq!((m.crash, m.exit, m.flood_kib), (Some(7), Some(42), Some(4)));
        assert_eq!(m.drip, Some(Duration::from_millis(500)));
        assert_eq!(parse("[[ratelimit:30]]").markers.ratelimit, Some(Duration::from_secs(30)));
    }

    #[test]
    fn reply_keeps_its_text() {
        let m = parse(r#"judge [[reply:{"accept": true, "feedback": "ok: fine"}]] this"#).markers;
        assert_eq!(m.reply.as_deref(), Some(r#"{"accept": true, "feedback": "ok: fine"}"#));
    }

    #[test]
    fn invalid_markers_stay_in_the_text() {
        let parsed =
            parse("a [[wait:soon]] b [[nope]] c [[crash:999]] [[wait:-1]] [[drip:0]] [[unclosed");
        assert_eq!(parsed.markers, Markers::default());
        assert_eq!(
            parsed.text,
            "a [[wait:soon]] b [[nope]] c [[crash:999]] [[wait:-1]] [[drip:0]] [[unclosed"
        );
    }

    #[test]
    fn literal_brackets_before_a_marker() {
        let parsed = parse("x [[ y [[fail]] z");
        assert!(parsed.markers.fail);
        assert_eq!(parsed.text, "x [[ y z");
    }

    #[test]
    fn newlines_collapse_in_the_echo() {
        assert_eq!(parse("line one\nline two\n").text, "line one line two");
    }

    #[test]
    fn seconds_parse() {
        assert_eq!(parse_secs("0"), Some(Duration::ZERO));
        assert_eq!(parse_secs(" 0.25 "), Some(Duration::from_millis(250)));
        assert_eq!(parse_secs("-1"), None);
        assert_eq!(parse_secs("inf"), None);
        assert_eq!(parse_secs("NaN"), None);
        assert_eq!(parse_secs("1e9"), Some(Duration::from_secs(1_000_000_000)));
        assert_eq!(parse_secs("1e19"), None);
    }
}
