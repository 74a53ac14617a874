//! An in-process mutation fuzzer for the parsers of untrusted input: what
//! agents write (the codex app-server, claude stream-json and ACP decoders),
//! the session files (`inbox.jsonl`, `events.jsonl`), the control API,
//! the TOML files people and agents write (config, adapter profiles,
//! chains) and terminal input. DESIGN.md §10: they are bounded and never
//! stop on bad bytes, and CI proves it on every run.
//!
//! Why not cargo-fuzz: it needs a nightly compiler and libFuzzer; the
//! machines and CI here have stable Rust only, and a fuzzer that runs
//! inside the ordinary test suite (`#[cfg(test)]`, so it reaches the
//! crate-private parsers) runs on every `scripts/test` with nothing to
//! install. The price is no coverage feedback; structure-aware mutations
//! (JSON values, lines, tokens each format cares about) make up for part
//! of it.
//!
//! Each target ([`fuzz`]) first replays every file in
//! `tests/fixtures/fuzz/<target>/` (seeds, and the crashes found so far),
//! then runs a fixed number of mutants made from a seeded PRNG: stacked
//! byte flips, inserts, deletes, splices and interesting tokens over the
//! seeds (real fixtures and those files) and over earlier mutants; JSON
//! Lines and TOML get mutations that keep their shape (a value changed in
//! place, an id renamed everywhere it occurs, lines dropped or doubled).
//! A mutant that got past the target's first gate (it parsed, a turn
//! completed) is kept to mutate further: the feedback a coverage-guided
//! fuzzer would get from its instrumentation, cheaply. A panic
//! is caught, the input shrunk and saved, and the test fails naming the
//! file: fix the crash, then copy the file into
//! `tests/fixtures/fuzz/<target>/` so every run replays it.
//!
//! `REINS_FUZZ_ITERS=N` runs N mutants per target instead of the default
//! (a second or two of one core each in a debug build);
//! `REINS_FUZZ_SEED=S` explores from another seed. The same seed and
//! iterations give the same inputs.

use std::cell::{Cell, RefCell};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use serde_json::Value;

mod targets;

/// Largest input a mutator makes; each target cuts its inputs to its own
/// `max_len` (small inputs are fast; only the protocol targets need
/// texts past the transcript cap).
const MAX_INPUT: usize = 256 << 10;

/// Mutants kept to mutate further (besides the seeds).
const POOL: usize = 256;

/// A splitmix64 generator: small, fast, and the same everywhere.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }

    pub(crate) fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Byte strings the formats here care about: broken and multi-byte UTF-8,
/// line ends, JSON and TOML syntax, escape sequences, number edges.
const TOKENS: &[&[u8]] = &[
    b"\xff",
    b"\xc3",
    b"\xe2\x82",
    b"\xf0\x9f\x98",
    "é".as_bytes(),
    "世界".as_bytes(),
    "😀".as_bytes(),
    "\u{a0}".as_bytes(),
    "\u{fffd}".as_bytes(),
    b"\0",
    b"\n",
    b"\r\n",
    b"\r",
    b"\t",
    b"\x1b",
    b"\x1b[",
    b"\x1b[200~",
    b"\x1b[201~",
    b"\x1b]0;",
    b"\x1bP",
    b"\x07",
    b"\x1b\\",
    b"\x1b[M",
    b"\x1bO",
    b"\x03",
    b"\x7f",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"\\u00e9",
    b":",
    b",",
    b"null",
    b"true",
    b"-1",
    b"0",
    b"-0",
    b"1e308",
    b"-1e400",
    b"0.5",
    b"4294967296",
    b"18446744073709551616",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"=",
    b"#",
    b"'",
    b"'''",
    b"\"\"\"",
    b"[[",
    b"]]",
    b"{{",
    b"}}",
    b"[[step]]",
    b"[[route]]",
    b"[agents.",
    b"%",
    b"&",
    b"?",
    b"/",
    b"..",
    b"ms",
    b"h",
];

/// Byte-level mutations, one to four of them stacked.
pub(crate) fn mutate_bytes(rng: &mut Rng, data: &mut Vec<u8>, pool: &[Vec<u8>]) {
    for _ in 0..1 + rng.below(4) {
        let len = data.len();
        let at = rng.below(len + 1);
        match rng.below(10) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = *rng.pick(&[0x00, 0x7f, 0x80, 0xc0, 0xff, b'\n', b'"', b'a']);
            }
            2 => {
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                data.splice(at..at, bytes);
            }
            3 if len > 0 => {
                let n = 1 + rng.below(len.min(64));
                let start = rng.below(len);
                data.drain(start..(start + n).min(len));
            }
            4 | 5 => {
                let token = rng.pick(TOKENS);
                data.splice(at..at, token.iter().copied());
            }
            6 if len > 0 => {
                // Replace a run with a token.
                let start = rng.below(len);
                let end = (start + 1 + rng.below(8)).min(len);
                data.splice(start..end, rng.pick(TOKENS).iter().copied());
            }
            7 if len > 0 => {
                // Repeat a run: long lines, deep nesting.
                let start = rng.below(len);
                let end = (start + 1 + rng.below(16)).min(len);
                let run = data[start..end].to_vec();
                let most = if rng.one_in(8) { 512 } else { 8 };
                let times = 1 + rng.below(most);
                let repeated: Vec<u8> =
                    run.iter().copied().cycle().take(run.len() * times).collect();
                data.splice(end..end, repeated);
            }
            8 if !pool.is_empty() => {
                // Splice in a piece of another input.
                let other = rng.pick(pool);
                if !other.is_empty() {
                    let start = rng.below(other.len());
                    let end = (start + 1 + rng.below(256)).min(other.len());
                    data.splice(at..at, other[start..end].iter().copied());
                }
            }
            _ if len > 0 => data.truncate(rng.below(len)),
            _ => {
                let token: &&[u8] = rng.pick(TOKENS);
                data.extend_from_slice(token)
            }
        }
    }
    data.truncate(MAX_INPUT);
}

/// Mutations of JSON Lines (and line protocols): a JSON value of a line
/// changed in place, lines dropped, doubled, swapped or taken from
/// another input, or the bytes mutated.
pub(crate) fn mutate_json_lines(rng: &mut Rng, data: &mut Vec<u8>, pool: &[Vec<u8>]) {
    if rng.one_in(4) && rename_everywhere(rng, data) {
        return;
    }
    let mut lines: Vec<Vec<u8>> = data.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    let n = lines.len();
    match rng.below(8) {
        0..=3 => {
            let i = rng.below(n);
            match serde_json::from_slice::<Value>(&lines[i]) {
                Ok(mut value) => {
                    let mut line = lines[i].clone();
                    // Stacked changes, until the line is as long as allowed
                    // (growth compounds).
                    for _ in 0..1 + rng.below(3) {
                        mutate_json(rng, &mut value, 0);
                        line = value.to_string().into_bytes();
                        if line.len() > MAX_INPUT {
                            break;
                        }
                    }
                    lines[i] = line;
                }
                Err(_) => mutate_bytes(rng, &mut lines[i], pool),
            }
        }
        4 if n > 1 => {
            lines.remove(rng.below(n));
        }
        5 => {
            let line = lines[rng.below(n)].clone();
            lines.insert(rng.below(n + 1), line);
        }
        6 if n > 1 => {
            let (a, b) = (rng.below(n), rng.below(n));
            lines.swap(a, b);
        }
        7 if !pool.is_empty() => {
            let other = rng.pick(pool);
            let theirs: Vec<&[u8]> = other.split(|b| *b == b'\n').collect();
            lines.insert(rng.below(n + 1), rng.pick(&theirs).to_vec());
        }
        _ => {
            *data = lines.join(&b'\n');
            mutate_bytes(rng, data, pool);
            return;
        }
    }
    *data = lines.join(&b'\n');
    data.truncate(MAX_INPUT);
}

/// Values a TOML key might not expect: wrong types, edges of numbers and
/// durations, templates and regexes that are not closed, long and
/// non-ASCII strings.
const TOML_VALUES: &[&str] = &[
    "\"\"",
    "\"é世😀\"",
    "-1",
    "0",
    "4294967296",
    "1e400",
    "nan",
    "true",
    "[]",
    "[\"\"]",
    "[\"é\", 1]",
    "{ a = 1 }",
    "\"1e300s\"",
    "\"-5m\"",
    "\"0ms\"",
    "\"18446744073709551616h\"",
    "\"{{task}}\"",
    "\"{{\"",
    "\"}}{{\"",
    "\"{{ prev.é.output }}\"",
    "\"label:\"",
    "\"(?i)[\"",
    "\"(a*)*b\"",
    "\"cmd:\"",
    "\"file:\"",
    "\"quiet:1e300\"",
    "\"\"\"\nmulti\né\n\"\"\"",
    "'literal é'",
    "1979-05-27T07:32:00Z",
];

/// A TOML value of the same kind as `old` (a string, a number, an array
/// of strings, a boolean), made hostile.
fn toml_like(rng: &mut Rng, old: &str) -> String {
    let strings = [
        "",
        "é",
        "{{task}}",
        "{{",
        "{{ nope }}",
        "}}{{task",
        "label:",
        "label:é",
        "(?i)[",
        "(a+)+$",
        "cmd:",
        "cmd:true {{task}}",
        "file:",
        "file:../../x",
        "quiet:1e300",
        "quiet:-1s",
        "clean",
        "1e300s",
        "-5m",
        "0",
        "18446744073709551616h",
        "0.0000001ms",
        "w",
        "mock",
        "plan",
        "impl",
        "review",
        "nope",
        "a/b",
        "..",
        "-x",
    ];
    let string = |rng: &mut Rng| -> String {
        let s = *rng.pick(&strings);
        match rng.below(4) {
            0 => format!("{s}{}", "é".repeat(rng.below(8))),
            1 => s.repeat(1 + rng.below(50)),
            _ => s.to_string(),
        }
    };
    let quoted = |s: String| serde_json::to_string(&s).expect("a string serializes");
    match old.chars().next() {
        Some('"' | '\'') => quoted(string(rng)),
        Some('[') => {
            let items: Vec<String> = (0..rng.below(5)).map(|_| quoted(string(rng))).collect();
            format!("[{}]", items.join(", "))
        }
        Some('t' | 'f') => rng.pick(&["true", "false"]).to_string(),
        Some(c) if c.is_ascii_digit() || c == '-' || c == '+' => rng
            .pick(&["0", "1", "-1", "2", "25", "26", "4294967295", "4294967296", "1.5"])
            .to_string(),
        _ => rng.pick(TOML_VALUES).to_string(),
    }
}

/// Mutations of TOML: a value replaced, a key renamed, lines dropped,
/// doubled, swapped or taken from another input, or the bytes mutated.
/// Line and value changes keep most mutants valid TOML, so they reach
/// the validation after the parser.
pub(crate) fn mutate_toml(rng: &mut Rng, data: &mut Vec<u8>, pool: &[Vec<u8>]) {
    let mut lines: Vec<Vec<u8>> = data.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    let n = lines.len();
    let i = rng.below(n);
    let eq = lines[i].iter().position(|b| *b == b'=');
    match rng.below(10) {
        0..=3 if eq.is_some() => {
            // Keep the type, change the value: past the schema, into the
            // checks after it.
            let eq = eq.expect("checked");
            let old = String::from_utf8_lossy(&lines[i][eq + 1..]).trim().to_string();
            let new = toml_like(rng, &old);
            lines[i].truncate(eq + 1);
            lines[i].push(b' ');
            lines[i].extend_from_slice(new.as_bytes());
        }
        4 if eq.is_some() => {
            let eq = eq.expect("checked");
            lines[i].truncate(eq + 1);
            lines[i].push(b' ');
            lines[i].extend_from_slice(rng.pick(TOML_VALUES).as_bytes());
        }
        5 if eq.is_some() => {
            let key = *rng.pick(&["name", "agent", "brief", "tasks", "needs", "timeout", "é"]);
            let rest = lines[i].split_off(eq.expect("checked"));
            lines[i] = [key.as_bytes(), b" ", &rest].concat();
        }
        6 if n > 1 => {
            lines.remove(i);
        }
        7 => {
            let line = lines[i].clone();
            lines.insert(rng.below(n + 1), line);
        }
        8 if !pool.is_empty() => {
            let other = rng.pick(pool);
            let theirs: Vec<&[u8]> = other.split(|b| *b == b'\n').collect();
            lines.insert(rng.below(n + 1), rng.pick(&theirs).to_vec());
        }
        _ => mutate_bytes(rng, &mut lines[i], pool),
    }
    *data = lines.join(&b'\n');
    data.truncate(MAX_INPUT);
}

/// Picks a string of some JSON line (an id, a method, a status) and
/// changes it everywhere in the input, so that what refers to the same
/// turn or request still does: the protocol goes on, with hostile names.
/// False if there was no string to take.
fn rename_everywhere(rng: &mut Rng, data: &mut Vec<u8>) -> bool {
    let lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    let line: &&[u8] = rng.pick(&lines);
    let Ok(value) = serde_json::from_slice::<Value>(line) else { return false };
    let mut strings = Vec::new();
    collect_strings(&value, &mut strings);
    if strings.is_empty() {
        return false;
    }
    let old = rng.pick(&strings).clone();
    let chars: Vec<char> = old.chars().collect();
    let piece = *rng.pick(&["é", "世", "😀", "\u{a0}", "\u{0}", "\n", "\u{fffd}"]);
    let new = match rng.below(4) {
        // A multi-byte character somewhere: byte offsets stop being
        // character offsets after it.
        0 | 1 => {
            let at = rng.below(chars.len() + 1);
            let mut new: String = chars[..at].iter().collect();
            new.push_str(piece);
            new.extend(&chars[at..]);
            new
        }
        // As many characters, each of them multi-byte.
        2 => piece.repeat(chars.len().max(1)),
        _ => format!("{old}{}", piece.repeat(1 + rng.below(64))),
    };
    let (from, to) =
        (serde_json::to_vec(&Value::String(old)), serde_json::to_vec(&Value::String(new)));
    let (Ok(from), Ok(to)) = (from, to) else { return false };
    let mut out = Vec::with_capacity(data.len());
    let mut rest: &[u8] = data;
    while let Some(at) = rest.windows(from.len()).position(|w| w == from.as_slice()) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(&to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    *data = out;
    data.truncate(MAX_INPUT);
    true
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

/// Changes one node of `value`: descends at random, then replaces, drops
/// or reshapes what it finds.
fn mutate_json(rng: &mut Rng, value: &mut Value, depth: usize) {
    let descend = depth < 32 && !rng.one_in(4);
    match value {
        Value::Object(map) if descend && !map.is_empty() => {
            let key = map.keys().nth(rng.below(map.len())).cloned().expect("in range");
            match rng.below(10) {
                0 => {
                    map.remove(&key);
                }
                1 => {
                    let renamed = format!("{key}{}", rng.pick(&["é", "_", "", "\u{0}"]));
                    let v = map.remove(&key).expect("present");
                    map.insert(renamed, v);
                }
                _ => mutate_json(rng, map.get_mut(&key).expect("present"), depth + 1),
            }
        }
        Value::Array(items) if descend && !items.is_empty() => {
            let i = rng.below(items.len());
            match rng.below(8) {
                0 => {
                    items.remove(i);
                }
                1 if items.len() < 1024 => {
                    let copy = items[i].clone();
                    let times = 1 + rng.below(16);
                    items.splice(i..i, std::iter::repeat_n(copy, times));
                }
                _ => mutate_json(rng, &mut items[i], depth + 1),
            }
        }
        Value::String(s) if rng.one_in(2) => {
            // Keep it a string, make it hostile.
            let piece = *rng.pick(&["é", "世", "😀", "\u{0}", "\n", "\u{fffd}", "\u{1b}[31m", "x"]);
            // Growth is bounded: a string is at most about MAX_INPUT.
            let room = MAX_INPUT.saturating_sub(s.len());
            match rng.below(4) {
                0 => {
                    let mut at = rng.below(s.len() + 1);
                    while !s.is_char_boundary(at) {
                        at -= 1;
                    }
                    s.insert_str(at, piece);
                }
                1 => *s = piece.repeat(1 + rng.below(64)),
                2 => s.push_str(&piece.repeat(rng.below(4096).min(room / 4))),
                _ => *s = format!("{s}\n").repeat(1 + rng.below(300).min(room / (s.len() + 1))),
            }
        }
        _ => *value = interesting_value(rng),
    }
}

/// A value a parser might not expect where it finds it.
fn interesting_value(rng: &mut Rng) -> Value {
    match rng.below(16) {
        0 => Value::Null,
        1 => Value::Bool(rng.one_in(2)),
        2 => Value::from(*rng.pick(&[0i64, -1, 1, i64::MIN, i64::MAX, 429, 100, 101])),
        3 => Value::from(u64::MAX),
        4 => Value::from(*rng.pick(&[1.5e308, -0.5, 1e-300, 0.1])),
        5 => Value::String(String::new()),
        6 => Value::String("é".repeat(1 + rng.below(40))),
        7 if rng.one_in(8) => Value::String("x".repeat(rng.below(80 << 10))),
        7 => Value::String("x".repeat(rng.below(5000))),
        8 => Value::String("\n".repeat(rng.below(5000))),
        9 => Value::Array(Vec::new()),
        10 => Value::Object(Default::default()),
        11 => {
            // Deeper than serde_json's recursion limit, sometimes.
            let mut v = Value::Null;
            for _ in 0..rng.below(160) {
                v = Value::Array(vec![v]);
            }
            v
        }
        12 => Value::String(
            rng.pick(&["completed", "failed", "interrupted", "inProgress", "usageLimitExceeded"])
                .to_string(),
        ),
        13 => serde_json::json!({ "id": "tu-é", "status": "failed", "error": { "message": "é" } }),
        14 => Value::String("\u{1b}]0;title\u{7}\u{1b}[2J".into()),
        _ => Value::String("😀".repeat(1 + rng.below(3))),
    }
}

thread_local! {
    /// Whether a panic on this thread is the fuzzer's to catch quietly.
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    /// The message of the last panic caught.
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that keeps the fuzzer's caught panics off
/// stderr and remembers their message; other panics print as usual.
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) {
                CAUGHT.with(|c| *c.borrow_mut() = Some(info.to_string()));
            } else {
                default(info);
            }
        }));
    });
}

/// Runs `run` on `input`: whether it went deep, or the panic message.
fn outcome(run: &dyn Fn(&[u8]) -> bool, input: &[u8]) -> Result<bool, String> {
    quiet_panics();
    CATCHING.with(|c| c.set(true));
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| run(input)));
    CATCHING.with(|c| c.set(false));
    result.map_err(|_| CAUGHT.with(|c| c.borrow_mut().take()).unwrap_or_default())
}

/// The panic message if `run` panics on `input`.
fn crash(run: &dyn Fn(&[u8]) -> bool, input: &[u8]) -> Option<String> {
    outcome(run, input).err()
}

/// The smallest input (by removing runs of bytes) that still panics.
fn shrink(run: &dyn Fn(&[u8]) -> bool, input: &[u8]) -> Vec<u8> {
    let mut best = input.to_vec();
    let mut tries = 2000;
    let mut chunk = best.len().div_ceil(2);
    while chunk > 0 && tries > 0 {
        let mut at = 0;
        while at < best.len() && tries > 0 {
            tries -= 1;
            let mut candidate = best.clone();
            candidate.drain(at..(at + chunk).min(best.len()));
            if crash(run, &candidate).is_some() {
                best = candidate;
            } else {
                at += chunk;
            }
        }
        chunk /= 2;
    }
    best
}

/// One fuzz target.
pub(crate) struct Target<'a> {
    /// Its directory under `tests/fixtures/fuzz/`.
    pub(crate) name: &'static str,
    /// Inputs to start from (real fixtures), besides that directory's files.
    pub(crate) seeds: Vec<Vec<u8>>,
    /// Mutants per run unless `REINS_FUZZ_ITERS` says otherwise.
    pub(crate) iters: u64,
    /// Longest input tried.
    pub(crate) max_len: usize,
    pub(crate) mutate: fn(&mut Rng, &mut Vec<u8>, &[Vec<u8>]),
    /// Feeds one input to the code under test; panics on a failed check.
    /// True when the input got past the first gate (it parsed, a turn
    /// completed): such inputs are kept to mutate further, the poor
    /// fuzzer's coverage feedback.
    pub(crate) run: &'a dyn Fn(&[u8]) -> bool,
}

/// `tests/fixtures/fuzz/<name>/`.
pub(crate) fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz").join(name)
}

/// Every file of `dir`, sorted by name, with its path.
pub(crate) fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    paths.sort();
    paths.into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect()
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.parse().unwrap_or_else(|_| panic!("{name}={value:?} is not a number")))
}

/// Replays the target's fixtures, then runs its mutants; panics naming a
/// saved input if any of them crashes.
pub(crate) fn fuzz(target: Target<'_>) {
    let fixtures = files(&fixture_dir(target.name));
    let seeds_replayed = fixtures.len();
    for (path, input) in &fixtures {
        if let Some(message) = crash(target.run, input) {
            panic!("fuzz target {}: {} crashes: {message}", target.name, path.display());
        }
    }
    let mut pool: Vec<Vec<u8>> = target.seeds;
    pool.extend(fixtures.into_iter().map(|(_, input)| input));
    assert!(!pool.is_empty(), "fuzz target {} has no seeds", target.name);
    let seeds = pool.len();
    let iters = env_number("REINS_FUZZ_ITERS").unwrap_or(target.iters);
    let seed = env_number("REINS_FUZZ_SEED").unwrap_or(0x5eed);
    // Each target explores from its own point.
    let mut rng = Rng::new(seed ^ fnv(target.name.as_bytes()));
    let mut went_deep = 0;
    for iteration in 0..iters {
        let mut input = rng.pick(&pool).clone();
        (target.mutate)(&mut rng, &mut input, &pool);
        input.truncate(target.max_len);
        let result = outcome(target.run, &input);
        if let Err(message) = result {
            let small = shrink(target.run, &input);
            let dir = std::env::temp_dir().join("reins-fuzz").join(target.name);
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("crash-{:016x}", fnv(&small)));
            std::fs::write(&path, &small).unwrap();
            let message = crash(target.run, &small).unwrap_or(message);
            panic!(
                "fuzz target {} crashed at iteration {iteration} (REINS_FUZZ_SEED={seed}): \
                 {message}\nthe input ({} bytes, shrunk) is in {}: fix the crash, then copy \
                 it into {} so every run replays it",
                target.name,
                small.len(),
                path.display(),
                fixture_dir(target.name).display()
            );
        }
        // Keep mutants that went deep to mutate further (and a few others):
        // deeper changes over time.
        let deep = result.unwrap_or(false);
        went_deep += u64::from(deep);
        if rng.one_in(if deep { 2 } else { 32 }) {
            if pool.len() < seeds + POOL {
                pool.push(input);
            } else {
                let i = seeds + rng.below(POOL);
                pool[i] = input;
            }
        }
    }
    eprintln!(
        "fuzz target {}: {} fixtures replayed, {iters} mutants (seed {seed}), {went_deep} got past \
         the first gate",
        target.name, seeds_replayed
    );
}

/// FNV-1a: a stable name for an input.
fn fnv(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_harness_catches_shrinks_and_names_a_crash() {
        let run = |input: &[u8]| {
            assert!(!input.windows(2).any(|w| w == b"\xff\xff"), "two 0xff bytes");
            true
        };
        let big: Vec<u8> = b"aaaa\xff\xffbbbbbbbbbbbb".to_vec();
        assert!(crash(&run, &big).unwrap().contains("two 0xff bytes"));
        assert_eq!(shrink(&run, &big), b"\xff\xff");
        assert!(crash(&run, b"fine").is_none());
        // A target that crashes on some mutant is reported, with the file.
        let result = std::panic::catch_unwind(|| {
            fuzz(Target {
                name: "harness-self-test",
                seeds: vec![b"\xff".to_vec()],
                iters: 10_000,
                max_len: 64,
                mutate: mutate_bytes,
                run: &run,
            })
        });
        let message = *result.unwrap_err().downcast::<String>().unwrap();
        assert!(message.contains("harness-self-test crashed at iteration"), "{message}");
        let path = message.split(" is in ").nth(1).unwrap().split(':').next().unwrap();
        assert_eq!(std::fs::read(path).unwrap(), b"\xff\xff");
    }

    #[test]
    fn the_same_seed_makes_the_same_mutants() {
        let make = || {
            let mut rng = Rng::new(7);
            let mut input = br#"{"a":[1,"x",{"b":null}]}"#.to_vec();
            for _ in 0..50 {
                mutate_json_lines(&mut rng, &mut input, &[]);
            }
            input
        };
        assert_eq!(make(), make());
    }
}
