//! A minimal MCP client over raw HTTP/1.1 (Streamable HTTP transport, one kept connection per
//! session), as small as the HTTP side's client, so that a benchmark comparing `/mcp` with
//! `POST /api/tools/{tool}` measures the daemon's two paths rather than two clients' costs.
//! It speaks only what a benchmark needs: `initialize`, `notifications/initialized`, and
//! `tools/call`; it reads an answer as JSON or as an SSE stream (chunked), whichever comes.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};

/// The protocol version the client asks for (the daemon's newest).
const PROTOCOL_VERSION: &str = "2025-11-25";

/// One MCP session on its own kept connection.
pub struct RawMcpSession {
    port: u16,
    stream: Option<TcpStream>,
    session_id: String,
    next_id: u64,
}

impl RawMcpSession {
    /// Opens a session (initialize, then the initialized notification); `None` on failure.
    pub fn open(port: u16) -> Option<RawMcpSession> {
        let mut session = RawMcpSession {
            port,
            stream: None,
            session_id: String::new(),
            next_id: 1,
        };
        let initialize = format!(
            r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{PROTOCOL_VERSION}","capabilities":{{}},"clientInfo":{{"name":"toolgate-bench","version":"1"}}}}}}"#
        );
        let (head, body) = session.post(&initialize)?;
        if !body.contains("\"result\"") {
            return None;
        }
        session.session_id = header(&head, "mcp-session-id")?.to_string();
        let (head, _) =
            session.post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)?;
        head.starts_with("HTTP/1.1 202").then_some(session)
    }

    /// Calls `tool` with `arguments` (a JSON object); true when it answered without a tool
    /// error.
    pub fn call(&mut self, tool: &str, arguments: &str) -> bool {
        let id = self.next_id;
        self.next_id += 1;
        let request = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{arguments}}}}}"#
        );
        self.post(&request).is_some_and(|(head, body)| {
            head.starts_with("HTTP/1.1 200")
                && body.contains("\"result\"")
                && !body.contains("\"isError\":true")
        })
    }

    /// One POST to `/mcp` on the kept connection: the head and the body (SSE events or JSON).
    fn post(&mut self, body: &str) -> Option<(String, String)> {
        let session = if self.session_id.is_empty() {
            String::new()
        } else {
            format!(
                "Mcp-Session-Id: {}\r\nMcp-Protocol-Version: {PROTOCOL_VERSION}\r\n",
                self.session_id
            )
        };
        let request = format!(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\n{session}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if self.stream.is_none() {
            self.stream = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], self.port))).ok();
        }
        let answer = self.stream.as_mut().and_then(|stream| {
            stream.write_all(request.as_bytes()).ok()?;
            read_answer(stream)
        });
        if answer.is_none() {
            self.stream = None;
        }
        answer
    }
}

/// A header's value in `head`.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// Reads one response (Content-Length, chunked, or none for 202) from a kept connection.
fn read_answer(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut bytes = Vec::with_capacity(8 * 1024);
    let mut chunk = [0u8; 8 * 1024];
    let header_end = loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let read = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
        bytes.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8(bytes[..header_end].to_vec()).ok()?;
    let mut rest = bytes[header_end..].to_vec();
    let chunked = header(&head, "transfer-encoding")
        .is_some_and(|value| value.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        let mut body = Vec::new();
        loop {
            // rest starts at a chunk's size line.
            let line_end = loop {
                if let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
                    break end;
                }
                let read = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
                rest.extend_from_slice(&chunk[..read]);
            };
            let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            let needed = line_end + 2 + size + 2;
            while rest.len() < needed {
                let read = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
                rest.extend_from_slice(&chunk[..read]);
            }
            if size == 0 {
                break;
            }
            body.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest.drain(..needed);
        }
        body
    } else {
        let length: usize = header(&head, "content-length")
            .and_then(|value| value.parse().ok())
            .unwrap_or(0);
        while rest.len() < length {
            let read = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
            rest.extend_from_slice(&chunk[..read]);
        }
        rest.truncate(length);
        rest
    };
    Some((head, String::from_utf8(body).ok()?))
}
