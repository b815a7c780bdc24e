//! A small SMTP server for the tests: speaks enough of RFC 5321 for lettre
//! (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), answers each message
//! with the next scripted code (250 once the script is empty) and records
//! what it received.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};
use tokio_util::sync::CancellationToken;

/// One message the sink took to the end of DATA.
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: String,
    /// The code the sink answered: 250 accepted, 4xx/5xx rejected.
    pub code: u16,
}

impl Received {
    pub fn message_id(&self) -> String {
        self.header("Message-ID").unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.data
            .lines()
            .take_while(|line| !line.is_empty())
            .find(|line| line.to_ascii_lowercase().starts_with(&prefix))
            .map(|line| line[prefix.len()..].trim().to_string())
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<u16>,
    /// Answer for every message once the script is exhausted.
    then: Option<u16>,
    received: Vec<Received>,
    connections: usize,
}

pub struct SmtpSink {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: CancellationToken,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl SmtpSink {
    /// A sink on a fresh port of 127.0.0.1.
    pub async fn start() -> SmtpSink {
        Self::start_on(0).await
    }

    pub async fn start_on(port: u16) -> SmtpSink {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = CancellationToken::new();
        let (task_state, task_stop) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    _ = task_stop.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                };
                task_state.lock().unwrap().connections += 1;
                let (state, stop) = (task_state.clone(), task_stop.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = serve(stream, state) => {}
                    }
                });
            }
        });
        SmtpSink { addr, state, stop }
    }

    /// The next messages get these codes, in order (then 250).
    pub fn answer_next(&self, codes: &[u16]) {
        self.state.lock().unwrap().script.extend(codes);
    }

    /// Every message (after the script) gets `code`.
    pub fn always_answer(&self, code: u16) {
        self.state.lock().unwrap().then = Some(code);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|m| m.code == 250)
            .collect()
    }

    pub fn rejected(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|m| m.code != 250)
            .collect()
    }

    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    /// Waits (bounded) until `count` messages reached the end of DATA.
    pub async fn wait_for_received(&self, count: usize) -> Vec<Received> {
        for _ in 0..500 {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "expected {count} SMTP message(s), the sink has {}",
            self.received().len()
        );
    }
}

/// `<a@b>` of `MAIL FROM:<a@b> BODY=8BITMIME` or `RCPT TO:<a@b>`.
fn argument(command: &str) -> String {
    let value = command
        .split_once(':')
        .map_or("", |(_, value)| value)
        .trim();
    value.split(' ').next().unwrap_or("").to_string()
}

async fn serve(stream: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP ready\r\n").await?;
    let (mut mail_from, mut rcpt_to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_string();
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 OK\r\n",
            "HELO" | "NOOP" => b"250 OK\r\n",
            "MAIL" => {
                mail_from = argument(&command);
                rcpt_to.clear();
                b"250 2.1.0 OK\r\n"
            }
            "RCPT" => {
                rcpt_to.push(argument(&command));
                b"250 2.1.5 OK\r\n"
            }
            "RSET" => {
                mail_from.clear();
                rcpt_to.clear();
                b"250 2.0.0 OK\r\n"
            }
            "DATA" => {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                    data.push_str(unstuffed);
                }
                let code = {
                    let mut state = state.lock().unwrap();
                    let code = state.script.pop_front().or(state.then).unwrap_or(250);
                    state.received.push(Received {
                        mail_from: std::mem::take(&mut mail_from),
                        rcpt_to: std::mem::take(&mut rcpt_to),
                        data,
                        code,
                    });
                    code
                };
                let reply = match code {
                    250 => "250 2.0.0 queued\r\n".to_string(),
                    451 => "451 4.3.0 try again later\r\n".to_string(),
                    550 => "550 5.1.1 no such mailbox\r\n".to_string(),
                    other => format!("{other} scripted answer\r\n"),
                };
                write.write_all(reply.as_bytes()).await?;
                continue;
            }
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}
