//! A local SMTP sink: the test server delivers real SMTP to it, and tests read what arrived.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// One delivered message.
#[derive(Clone, Debug)]
pub struct SentMail {
    /// `RCPT TO` addresses.
    pub to: Vec<String>,
    /// The raw message (headers and body) as received.
    pub raw: String,
}

impl SentMail {
    /// The `Subject` header.
    pub fn subject(&self) -> String {
        self.header("Subject").unwrap_or_default()
    }

    /// The value of header `name` (case-insensitive, folded lines joined), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        header_in(self.raw.split_once("\r\n\r\n").map_or(self.raw.as_str(), |(h, _)| h), name)
    }

    /// The plain-text body (of a multipart message, its `text/plain` part), decoded.
    pub fn body(&self) -> String {
        if self.is_multipart() {
            return self.part("text/plain").unwrap_or_default();
        }
        let (headers, body) = self.raw.split_once("\r\n\r\n").unwrap_or(("", self.raw.as_str()));
        decode(headers, body)
    }

    /// The decoded body of the part whose `Content-Type` starts with `content_type`
    /// (`text/plain`, `text/html`) of a multipart message.
    pub fn part(&self, content_type: &str) -> Option<String> {
        let boundary = self.boundary()?;
        let delimiter = format!("--{boundary}");
        self.raw.split(delimiter.as_str()).skip(1).find_map(|part| {
            let part = part.strip_prefix("\r\n")?;
            let (headers, body) = part.split_once("\r\n\r\n")?;
            let kind = header_in(headers, "Content-Type")?;
            kind.to_ascii_lowercase().starts_with(content_type).then(|| decode(headers, body.trim_end_matches("\r\n")))
        })
    }

    /// The HTML part, decoded.
    pub fn html(&self) -> Option<String> {
        self.part("text/html")
    }

    fn is_multipart(&self) -> bool {
        self.header("Content-Type").is_some_and(|t| t.to_ascii_lowercase().starts_with("multipart/"))
    }

    fn boundary(&self) -> Option<String> {
        let kind = self.header("Content-Type")?;
        let at = kind.find("boundary=")? + "boundary=".len();
        Some(kind[at..].split(';').next()?.trim().trim_matches('"').to_owned())
    }

    /// The value of `token=` in the message's link.
    pub fn token(&self) -> String {
        let body = self.body();
        let start = body.find("token=").map(|i| i + "token=".len()).expect("message has a token link");
        body[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
    }
}

/// The sink: a port to point `SMTP_PORT` at, and the messages received so far.
#[derive(Clone, Debug)]
pub struct MailSink {
    /// Where it listens on 127.0.0.1.
    pub port: u16,
    messages: Arc<Mutex<Vec<SentMail>>>,
    arrived: Arc<Notify>,
}

impl MailSink {
    /// Starts listening.
    pub async fn start() -> MailSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind SMTP sink");
        let sink = MailSink {
            port: listener.local_addr().expect("address").port(),
            messages: Arc::default(),
            arrived: Arc::default(),
        };
        let accepting = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let session = accepting.clone();
                tokio::spawn(async move {
                    let _ = session.converse(stream).await;
                });
            }
        });
        sink
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<SentMail> {
        self.messages.lock().expect("sink lock").clone()
    }

    /// Waits (up to 5 s) for a message to `to` whose subject contains `subject`.
    pub async fn wait_for(&self, to: &str, subject: &str) -> SentMail {
        let found = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let notified = self.arrived.notified();
                if let Some(mail) = self.find(to, subject) {
                    return mail;
                }
                notified.await;
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("no email to {to} about {subject:?}; got {:#?}", self.messages()))
    }

    /// A message to `to` whose subject contains `subject`, if one arrived.
    pub fn find(&self, to: &str, subject: &str) -> Option<SentMail> {
        self.messages().into_iter().find(|m| m.to.iter().any(|t| t == to) && m.subject().contains(subject))
    }

    async fn converse(&self, stream: tokio::net::TcpStream) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read);
        write.write_all(b"220 sink ESMTP\r\n").await?;
        let mut to = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let command = line.trim_end().to_ascii_uppercase();
            if command.starts_with("EHLO") || command.starts_with("HELO") {
                write.write_all(b"250-sink\r\n250 8BITMIME\r\n").await?;
            } else if command.starts_with("RCPT TO:") {
                to.push(line.trim_end()[8..].trim().trim_matches(['<', '>']).to_owned());
                write.write_all(b"250 OK\r\n").await?;
            } else if command == "DATA" {
                write.write_all(b"354 end with .\r\n").await?;
                let mut raw = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    raw.push_str(line.strip_prefix('.').filter(|_| line.starts_with("..")).unwrap_or(&line));
                }
                self.messages.lock().expect("sink lock").push(SentMail { to: std::mem::take(&mut to), raw });
                self.arrived.notify_waiters();
                write.write_all(b"250 queued\r\n").await?;
            } else if command == "QUIT" {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            } else {
                if command == "RSET" {
                    to.clear();
                }
                write.write_all(b"250 OK\r\n").await?;
            }
        }
    }
}

/// The unfolded value of header `name` in a header block.
fn header_in(headers: &str, name: &str) -> Option<String> {
    let mut found: Option<String> = None;
    for line in headers.split("\r\n") {
        if let Some(value) = found.as_mut() {
            if line.starts_with([' ', '\t']) {
                value.push(' ');
                value.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((field, value)) = line.split_once(':')
            && field.eq_ignore_ascii_case(name)
        {
            found = Some(value.trim().to_owned());
        }
    }
    found
}

/// `body` decoded by the `Content-Transfer-Encoding` in `headers` (quoted-printable, base64 or
/// as is).
fn decode(headers: &str, body: &str) -> String {
    let encoding = header_in(headers, "Content-Transfer-Encoding").unwrap_or_default().to_ascii_lowercase();
    match encoding.as_str() {
        "quoted-printable" => decode_quoted_printable(body),
        "base64" => {
            use base64::Engine;
            let compact: String = body.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD.decode(compact).unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => body.to_owned(),
    }
}

fn decode_quoted_printable(body: &str) -> String {
    let joined = body.replace("=\r\n", "");
    let mut out = Vec::with_capacity(joined.len());
    let bytes = joined.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && let Ok(byte) = u8::from_str_radix(joined.get(i + 1..i + 3).unwrap_or(""), 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
