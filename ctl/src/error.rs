//! [`Error`]: why a command failed, how it is printed, and its exit status
//! (64 for usage errors, 1 for everything else).

use capstan_proto::DecodeError;

/// EX_USAGE from sysexits.h: the command line is wrong.
pub const EXIT_USAGE: u8 = 64;

/// A failed command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line is wrong (unknown kind, missing name, ...).
    #[error("error: {0}")]
    Usage(String),
    /// The server refused a request or could not be reached.
    #[error("{}", api_message(.0))]
    Api(#[from] capstan_client::Error),
    /// One or more manifests are invalid; nothing was sent.
    #[error("{}", invalid_message(.source_name, .error))]
    Invalid {
        /// The file (or `-`) the documents came from.
        source_name: String,
        /// Every field error the decoder found.
        error: DecodeError,
    },
    /// Anything else (reading a file, encoding output).
    #[error("error: {0}")]
    Other(String),
    /// Failures already printed one by one (e.g. some of several names not
    /// found); only the exit status is left to report.
    #[error("")]
    Reported,
}

impl Error {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => EXIT_USAGE,
            _ => 1,
        }
    }
}

/// `Error from server (Reason): message`, then one line per field cause.
pub fn api_message(e: &capstan_client::Error) -> String {
    use capstan_client::Error as E;
    match e {
        E::Config(m) => format!("error: {m}"),
        E::Decode(m) => format!("error: cannot decode the server's answer: {m}"),
        E::Unavailable { message } => format!("error: cannot reach the cluster: {message}"),
        E::Invalid { message, causes } => {
            let mut s = format!("Error from server (Invalid): {message}");
            // The message often repeats a single cause; list the causes
            // only when it does not say them all.
            let all_said = causes
                .iter()
                .all(|c| message.contains(&format!("{}: {}", c.field, c.message)));
            for c in causes.iter().filter(|_| !all_said) {
                if c.field.is_empty() {
                    s.push_str(&format!("\n  {}", c.message));
                } else {
                    s.push_str(&format!("\n  {}: {}", c.field, c.message));
                }
            }
            s
        }
        other => {
            let reason = other.reason();
            let text = other.to_string();
            let message = text
                .strip_prefix(&format!("{reason}: "))
                .unwrap_or(&text)
                .to_owned();
            format!("Error from server ({reason}): {message}")
        }
    }
}

/// [`api_message`] naming what was being done: `Error from server
/// (Reason): error when applying pod/x from FILE: message`.
pub fn api_message_in(e: &capstan_client::Error, doing: &str) -> String {
    let text = api_message(e);
    match text.split_once("): ") {
        Some((head, rest)) if head.starts_with("Error from server (") => {
            format!("{head}): error when {doing}: {rest}")
        }
        _ => format!("error when {doing}: {text}"),
    }
}

fn invalid_message(source: &str, error: &DecodeError) -> String {
    let mut s = format!(
        "error: {source} is invalid ({} problem{}); nothing was applied:",
        error.errors.len(),
        if error.errors.len() == 1 { "" } else { "s" }
    );
    for e in &error.errors {
        s.push_str(&format!("\n  {e}"));
        if let Some(line) = e.line {
            s.push_str(&format!(" (line {line})"));
        }
    }
    s
}
