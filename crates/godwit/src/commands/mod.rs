//! One module per subcommand; each has a `run` that returns the exit status.

pub mod agent;
pub mod codes;
pub mod completions;
pub mod config;
pub mod confirm;
pub mod copy;
pub mod doctor;
pub mod empty_folders;
pub mod explain;
pub mod finalize;
mod job;
pub mod permissions;
pub mod plan;
pub mod release;
mod render;
pub mod runs;
pub mod sanitize;
pub mod scan;
pub mod serve;
pub(crate) mod shared;
pub mod speed_test;
pub mod sync;
pub mod token;
pub mod undo;
pub mod validate;
pub mod verify;

use std::io::Write;

/// Writes to standard output. A closed pipe (`godwit codes | head`) is not an error.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// `text` folded into lines of at most `width` characters, each starting with `indent`.
pub fn wrap(text: &str, indent: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::from(indent);
    for word in text.split_whitespace() {
        if line.len() > indent.len() && line.len() + 1 + word.len() > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(indent);
        }
        if line.len() > indent.len() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if line.len() > indent.len() {
        out.push_str(&line);
        out.push('\n');
    }
    out
}
