//! Server-sent events both ways: [`SseParser`] reads a provider's stream (any chunking, `\n`,
//! `\r\n` or `\r` line ends, comments, multi-line `data`), and [`frame`] writes the gateway's
//! own events, one JSON object per `data:` line, so no content can break the framing.

use axum::body::Bytes;
use serde_json::Value;

/// Most bytes one event (or one unfinished line) may hold before the stream is refused.
pub const MAX_EVENT_BYTES: usize = 4 << 20;

/// One event: its `event:` name (empty when none) and its `data:` lines joined by `\n`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field.
    pub event: String,
    /// The `data:` fields, joined by `\n`.
    pub data: String,
}

/// An incremental parser of the `text/event-stream` format.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    event: String,
    data: String,
    has_data: bool,
    after_cr: bool,
    started: bool,
}

/// The stream broke the format's limits.
#[derive(Debug, PartialEq, Eq)]
pub struct TooLarge;

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Feeds the next bytes; returns the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, TooLarge> {
        let mut events = Vec::new();
        for &byte in bytes {
            if self.after_cr {
                self.after_cr = false;
                if byte == b'\n' {
                    continue;
                }
            }
            match byte {
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(&mut events);
                }
                b'\n' => self.end_line(&mut events),
                _ => {
                    self.line.push(byte);
                    if self.line.len() + self.data.len() > MAX_EVENT_BYTES {
                        return Err(TooLarge);
                    }
                }
            }
        }
        Ok(events)
    }

    fn end_line(&mut self, events: &mut Vec<SseEvent>) {
        let mut line = std::mem::take(&mut self.line);
        if !self.started {
            self.started = true;
            if line.starts_with("\u{feff}".as_bytes()) {
                line.drain(..3);
            }
        }
        if line.is_empty() {
            if self.has_data {
                events.push(SseEvent { event: std::mem::take(&mut self.event), data: std::mem::take(&mut self.data) });
            } else {
                self.event.clear();
            }
            self.has_data = false;
            return;
        }
        if line[0] == b':' {
            return;
        }
        let text = String::from_utf8_lossy(&line);
        let (field, value) = match text.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (text.as_ref(), ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
    }
}

/// One gateway event on the wire: `data: <json>\n\n`. JSON escapes every line break, so a
/// newline (or `\r`, or U+2028) in the content never ends the line.
pub fn frame(event: &Value) -> Bytes {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"data: ");
    // A `Value` always serialises.
    serde_json::to_writer(&mut out, event).unwrap_or_default();
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        chunks.iter().flat_map(|chunk| parser.push(chunk).unwrap()).collect()
    }

    fn event(name: &str, data: &str) -> SseEvent {
        SseEvent { event: name.into(), data: data.into() }
    }

    #[test]
    fn reads_events_whatever_the_chunking_and_line_ends() {
        let stream =
            b"event: message_start\ndata: {\"a\":1}\n\n: ping\r\ndata:{\"b\":2}\r\n\r\nevent:x\rdata: l1\rdata: l2\r\r";
        let whole = all(&[stream]);
        let expected = vec![event("message_start", "{\"a\":1}"), event("", "{\"b\":2}"), event("x", "l1\nl2")];
        assert_eq!(whole, expected);
        for size in 1..stream.len() {
            let chunks: Vec<&[u8]> = stream.chunks(size).collect();
            assert_eq!(all(&chunks), expected, "chunks of {size}");
        }
    }

    #[test]
    fn ignores_events_without_data_and_unknown_fields_and_a_bom() {
        let events = all(&["\u{feff}event: ping\n\nid: 7\nretry: 10\nfoo\ndata\n\n".as_bytes()]);
        assert_eq!(events, vec![event("", "")]);
        assert!(all(&[b"data: unfinished"]).is_empty(), "no blank line, no event");
    }

    #[test]
    fn refuses_an_endless_line() {
        let mut parser = SseParser::new();
        let chunk = vec![b'a'; 1 << 20];
        let mut result = Ok(Vec::new());
        for _ in 0..5 {
            result = parser.push(&chunk);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(TooLarge));
    }

    #[test]
    fn frames_survive_any_content() {
        let content = "line one\nline two\r\n\r\ndata: fake\n\n\u{2028}😀 \u{202e}rtl";
        let framed = frame(&json!({"type": "delta", "content": content}));
        let text = std::str::from_utf8(&framed).unwrap();
        assert_eq!(text.matches('\n').count(), 2, "only the frame's own line ends: {text}");
        let parsed = all(&[&framed]);
        assert_eq!(parsed.len(), 1);
        let value: Value = serde_json::from_str(&parsed[0].data).unwrap();
        assert_eq!(value["content"], content);
    }
}
