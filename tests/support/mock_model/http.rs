//! HTTP/1.1 on a raw socket, framed exactly like Python's
//! `BaseHTTPRequestHandler` with `protocol_version = "HTTP/1.1"`: the same
//! request-line and header parsing, keep-alive rules, `100 Continue`,
//! status lines and error pages, and close-delimited (not chunked) SSE
//! bodies. Writing to the socket ourselves is also what lets the request log
//! record when the last byte of each response left.

use std::io;

use jiff::Timestamp;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::json::{Json, is_py_space, py_str_repr};

/// Longest request or header line Python accepts (`_MAXLINE`).
const MAX_LINE: usize = 65536;
/// Most header lines Python accepts (`_MAXHEADERS`).
const MAX_HEADERS: usize = 100;
/// The `Server` header (Python adds its own version after this).
const SERVER: &str = "mock-llm/1.0";

/// One parsed request head.
#[derive(Debug)]
pub(crate) struct Request {
    /// The request line as received, without its line ending.
    pub(crate) line: String,
    pub(crate) method: String,
    /// The request target as sent (`/v1/messages?beta=true`); a leading
    /// `//` is reduced to `/` as Python does.
    pub(crate) path: String,
    /// Header names and values in arrival order, decoded as Latin-1.
    pub(crate) headers: Vec<(String, String)>,
}

impl Request {
    /// The first header called `name`, case-insensitively (`Message.get`).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Writes one response and remembers when its bytes went out.
pub(crate) struct Responder<'a> {
    wr: &'a mut OwnedWriteHalf,
    /// Python's `close_connection`: close after this response.
    pub(crate) close: bool,
    /// An HTTP/0.9 request gets a bare body, no status line or headers.
    http09: bool,
    head_request: bool,
    verbose: bool,
    request_line: String,
    headers_buf: Vec<u8>,
    /// The status code sent, once sent.
    pub(crate) status: Option<u16>,
    /// When the first byte of the response was written.
    pub(crate) first_byte_at: Option<Timestamp>,
    /// When the last byte written so far was written.
    pub(crate) last_byte_at: Option<Timestamp>,
}

impl<'a> Responder<'a> {
    pub(crate) fn new(wr: &'a mut OwnedWriteHalf, verbose: bool) -> Responder<'a> {
        Responder {
            wr,
            close: true,
            http09: false,
            head_request: false,
            verbose,
            request_line: String::new(),
            headers_buf: Vec::new(),
            status: None,
            first_byte_at: None,
            last_byte_at: None,
        }
    }

    /// Writes bytes straight to the socket (Python's unbuffered `wfile`).
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.wr.write_all(bytes).await?;
        self.wr.flush().await?;
        let now = Timestamp::now();
        self.first_byte_at.get_or_insert(now);
        self.last_byte_at = Some(now);
        Ok(())
    }

    /// `send_response`: status line plus `Server` and `Date`, buffered.
    pub(crate) fn send_response(&mut self, code: u16, message: Option<&str>) {
        if self.verbose {
            eprintln!("mock: \"{}\" {code} -", self.request_line);
        }
        self.send_response_only(code, message);
        self.send_header("Server", SERVER);
        let date = Timestamp::now().strftime("%a, %d %b %Y %H:%M:%S GMT").to_string();
        self.send_header("Date", &date);
    }

    fn send_response_only(&mut self, code: u16, message: Option<&str>) {
        self.status = Some(code);
        if self.http09 {
            return;
        }
        let message = message.unwrap_or_else(|| reason_phrase(code));
        self.headers_buf.extend(latin1(&format!("HTTP/1.1 {code} {message}\r\n")));
    }

    /// `send_header`: buffered; `Connection` also decides keep-alive.
    pub(crate) fn send_header(&mut self, name: &str, value: &str) {
        if !self.http09 {
            self.headers_buf.extend(latin1(&format!("{name}: {value}\r\n")));
        }
        if name.eq_ignore_ascii_case("connection") {
            if value.eq_ignore_ascii_case("close") {
                self.close = true;
            } else if value.eq_ignore_ascii_case("keep-alive") {
                self.close = false;
            }
        }
    }

    /// `end_headers`: the blank line, then the whole head in one write.
    pub(crate) async fn end_headers(&mut self) -> io::Result<()> {
        if self.http09 {
            return Ok(());
        }
        self.headers_buf.extend(b"\r\n");
        let head = std::mem::take(&mut self.headers_buf);
        self.write(&head).await
    }

    /// `_json`: a JSON body with `content-length` (the connection stays open).
    pub(crate) async fn json(&mut self, code: u16, value: &Json) -> io::Result<()> {
        let data = value.dumps();
        self.send_response(code, None);
        self.send_header("content-type", "application/json");
        self.send_header("content-length", &data.len().to_string());
        self.end_headers().await?;
        self.write(data.as_bytes()).await
    }

    /// `_sse_start`: an event stream delimited by closing the connection.
    pub(crate) async fn sse_start(&mut self) -> io::Result<()> {
        self.send_response(200, None);
        self.send_header("content-type", "text/event-stream");
        self.send_header("cache-control", "no-cache");
        self.send_header("connection", "close");
        self.end_headers().await?;
        self.close = true;
        Ok(())
    }

    /// `_sse`: one event (`event:` line only when named), one write.
    pub(crate) async fn sse(&mut self, event: Option<&str>, data: &str) -> io::Result<()> {
        let mut out = String::new();
        if let Some(event) = event {
            out.push_str(&format!("event: {event}\n"));
        }
        out.push_str(&format!("data: {data}\n\n"));
        self.write(out.as_bytes()).await
    }

    /// `_sse` with a JSON payload.
    pub(crate) async fn sse_json(&mut self, event: Option<&str>, data: &Json) -> io::Result<()> {
        self.sse(event, &data.dumps()).await
    }

    /// `send_error`: Python's HTML error page, then close.
    pub(crate) async fn send_error(
        &mut self,
        code: u16,
        message: Option<&str>,
        explain: Option<&str>,
    ) -> io::Result<()> {
        let (short, long) = match reason(code) {
            Some((short, long)) => (short, long),
            None => ("???", "???"),
        };
        let message = message.unwrap_or(short);
        let explain = explain.unwrap_or(long);
        if self.verbose {
            eprintln!("mock: code {code}, message {message}");
        }
        self.send_response(code, Some(message));
        self.send_header("Connection", "close");
        let mut body = None;
        if code >= 200 && !matches!(code, 204 | 205 | 304) {
            let page = format!(
                "<!DOCTYPE HTML>\n<html lang=\"en\">\n    <head>\n        \
                 <meta charset=\"utf-8\">\n        <title>Error response</title>\n    \
                 </head>\n    <body>\n        <h1>Error response</h1>\n        \
                 <p>Error code: {code}</p>\n        <p>Message: {}.</p>\n        \
                 <p>Error code explanation: {code} - {}.</p>\n    </body>\n</html>\n",
                html_escape(message),
                html_escape(explain),
            );
            self.send_header("Content-Type", "text/html;charset=utf-8");
            self.send_header("Content-Length", &page.len().to_string());
            body = Some(page);
        }
        self.end_headers().await?;
        match body {
            Some(page) if !self.head_request => self.write(page.as_bytes()).await,
            _ => Ok(()),
        }
    }
}

/// Reads one request head the way `handle_one_request` + `parse_request`
/// do, answering malformed ones with Python's error pages (`None`: close
/// the connection). Sets `out.close` from the version and `Connection`
/// header, and sends `100 Continue` when asked.
pub(crate) async fn read_request(
    rd: &mut BufReader<OwnedReadHalf>,
    out: &mut Responder<'_>,
) -> io::Result<Option<Request>> {
    out.close = true;
    let raw = read_line(rd, MAX_LINE + 1).await?;
    if raw.len() > MAX_LINE {
        out.send_error(414, None, None).await?;
        return Ok(None);
    }
    if raw.is_empty() {
        return Ok(None);
    }
    let line = latin1_decode(&raw).trim_end_matches(['\r', '\n']).to_owned();
    out.request_line = line.clone();
    // Until a version is parsed Python's `request_version` is "HTTP/0.9",
    // so its early error pages go out without a status line or headers.
    out.http09 = true;
    let words: Vec<&str> = line.split(is_py_space).filter(|w| !w.is_empty()).collect();
    if words.is_empty() {
        return Ok(None);
    }
    let mut request_version = "HTTP/0.9".to_owned();
    if words.len() >= 3 {
        let version = words[words.len() - 1];
        let Some((major, minor)) = parse_version(version) else {
            let message = format!("Bad request version ({})", py_str_repr(version));
            out.send_error(400, Some(&message), None).await?;
            return Ok(None);
        };
        if (major, minor) >= (1, 1) {
            out.close = false;
        }
        if major >= 2 {
            let number = version.split_once('/').map_or("", |(_, n)| n);
            let message = format!("Invalid HTTP version ({number})");
            out.send_error(505, Some(&message), None).await?;
            return Ok(None);
        }
        out.http09 = false;
        request_version = version.to_owned();
    }
    if !(2..=3).contains(&words.len()) {
        let message = format!("Bad request syntax ({})", py_str_repr(&line));
        out.send_error(400, Some(&message), None).await?;
        return Ok(None);
    }
    let method = words[0].to_owned();
    let mut path = words[1].to_owned();
    if words.len() == 2 {
        out.close = true;
        if method != "GET" {
            let message = format!("Bad HTTP/0.9 request type ({})", py_str_repr(&method));
            out.send_error(400, Some(&message), None).await?;
            return Ok(None);
        }
    }
    if path.starts_with("//") {
        path = format!("/{}", path.trim_start_matches('/'));
    }

    let headers = match read_headers(rd).await? {
        Ok(headers) => headers,
        Err((message, explain)) => {
            out.send_error(431, Some(message), Some(&explain)).await?;
            return Ok(None);
        }
    };
    out.head_request = method == "HEAD";
    let request = Request { line, method, path, headers };

    let connection = request.header("Connection").unwrap_or("").to_lowercase();
    if connection == "close" {
        out.close = true;
    } else if connection == "keep-alive" {
        out.close = false;
    }
    // Python compares the version strings, not numbers.
    let expect = request.header("Expect").unwrap_or("").to_lowercase();
    if expect == "100-continue" && request_version.as_str() >= "HTTP/1.1" {
        out.send_response_only(100, None);
        out.end_headers().await?;
    }
    Ok(Some(request))
}

/// Reads a POST body: `content-length` bytes (fewer at end of stream; all
/// of it for a negative length, as Python's `read(-n)`). `None` when the
/// length is not a number, where Python's handler dies and drops the
/// connection.
pub(crate) async fn read_body(
    rd: &mut BufReader<OwnedReadHalf>,
    request: &Request,
) -> io::Result<Option<Vec<u8>>> {
    let declared = request.header("content-length").unwrap_or("");
    let n: i64 = if declared.is_empty() {
        0
    } else {
        match py_int(declared) {
            Some(n) => n,
            None => return Ok(None),
        }
    };
    let mut body = Vec::new();
    if n < 0 {
        rd.read_to_end(&mut body).await?;
    } else if n > 0 {
        (&mut *rd).take(n as u64).read_to_end(&mut body).await?;
    }
    Ok(Some(body))
}

/// `int(text)` for a decimal header value: surrounding whitespace, a sign
/// and single underscores between digits are allowed.
fn py_int(text: &str) -> Option<i64> {
    let text = text.trim_matches(is_py_space);
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let value: i64 = digits.replace('_', "").parse().ok()?;
    Some(if negative { -value } else { value })
}

/// `http.client.parse_headers` + the email parser: `Err((message,
/// explanation))` for a line too long or too many lines (Python's 431).
async fn read_headers(
    rd: &mut BufReader<OwnedReadHalf>,
) -> io::Result<Result<Vec<(String, String)>, (&'static str, String)>> {
    let mut lines = Vec::new();
    loop {
        let line = read_line(rd, MAX_LINE + 1).await?;
        if line.len() > MAX_LINE {
            let explain = format!("got more than {MAX_LINE} bytes when reading header line");
            return Ok(Err(("Line too long", explain)));
        }
        let end = matches!(line.as_slice(), b"\r\n" | b"\n" | b"");
        lines.push(latin1_decode(&line));
        if lines.len() > MAX_HEADERS {
            return Ok(Err(("Too many headers", format!("got more than {MAX_HEADERS} headers"))));
        }
        if end {
            break;
        }
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in lines {
        if line.starts_with([' ', '\t']) {
            // A folded continuation line joins the previous header as is.
            if let Some((_, value)) = current.as_mut() {
                value.push_str(&line);
                continue;
            }
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            break; // not a header: the email parser ends the headers here
        };
        if !name.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            break;
        }
        if let Some((name, value)) = current.take() {
            headers.push((name, value.trim_end_matches(['\r', '\n']).to_owned()));
        }
        current = Some((name.to_owned(), value.trim_start_matches([' ', '\t']).to_owned()));
    }
    if let Some((name, value)) = current {
        headers.push((name, value.trim_end_matches(['\r', '\n']).to_owned()));
    }
    Ok(Ok(headers))
}

/// One line including its `\n`, at most `limit` bytes.
async fn read_line<R: AsyncRead + tokio::io::AsyncBufRead + Unpin>(
    rd: &mut R,
    limit: usize,
) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    (&mut *rd).take(limit as u64).read_until(b'\n', &mut line).await?;
    Ok(line)
}

/// `HTTP/x.y` as numbers, with Python's checks.
fn parse_version(version: &str) -> Option<(u64, u64)> {
    let number = version.strip_prefix("HTTP/")?;
    let (major, minor) = number.split_once('.')?;
    let ok = |part: &str| {
        !part.is_empty() && part.len() <= 10 && part.chars().all(|c| c.is_ascii_digit())
    };
    if !ok(major) || !ok(minor) {
        return None;
    }
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn latin1_decode(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Latin-1 bytes of a header line (every character here is below U+0100:
/// they come from Latin-1 decoded requests or from ASCII literals).
fn latin1(text: &str) -> Vec<u8> {
    text.chars().map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')).collect()
}

/// `html.escape(text, quote=False)`.
fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The reason phrase Python's `send_response` uses (empty when unknown).
pub(crate) fn reason_phrase(code: u16) -> &'static str {
    reason(code).map_or("", |(short, _)| short)
}

/// Python 3.11's `http.HTTPStatus` phrase and (for the codes the server
/// itself can send) description.
fn reason(code: u16) -> Option<(&'static str, &'static str)> {
    let phrase = match code {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Requested Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a Teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Entity",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => return None,
    };
    let explain = match code {
        400 => "Bad request syntax or unsupported method",
        414 => "URI is too long",
        431 => {
            "The server is unwilling to process the request because its header fields are too large"
        }
        501 => "Server does not support this operation",
        505 => "Cannot fulfill request",
        _ => "",
    };
    Some((phrase, explain))
}
