//! The command line, as clap sees it. What each subcommand does lives in `commands/`.

use clap::{Args, Parser, Subcommand};

/// godwit moves file shares, NAS volumes and local disks into object and file storage (S3,
/// Azure Blob, SFTP, other file systems) and keeps the copy in step until you switch over.
///
/// Every condition godwit reports has a stable code; `godwit explain CODE` says what it means
/// and what to do.
#[derive(Debug, Parser)]
#[command(
    name = "godwit",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Explain a status or error code: what it means and what to do about it.
    #[command(
        after_help = "Examples:\n  godwit explain 9080\n  godwit explain azsm2023\n  \
                            godwit explain COPY_INPROGRESS_ERR\n  godwit explain http409 --json"
    )]
    Explain(ExplainArgs),
    /// List the codes of the catalog, optionally filtered.
    #[command(after_help = "Examples:\n  godwit codes --scope file\n  \
                            godwit codes --scope file --json\n  godwit codes --command scan")]
    Codes(CodesArgs),
    /// Print a shell completion script to standard output.
    #[command(
        after_help = "Examples:\n  godwit completions bash > /etc/bash_completion.d/godwit\n  \
                            godwit completions zsh > \"${fpath[1]}/_godwit\"\n  \
                            godwit completions fish > ~/.config/fish/completions/godwit.fish"
    )]
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The code: a number (9080), an AZSM code (AZSM2023), an HTTP status (HTTP404) or a name
    /// (FILE_SYNCHRONISE_REVIEW_TRUE_UP_ERROR). Any case.
    pub code: String,
    /// Print the catalog entry as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CodesArgs {
    /// Only codes about this: an agent, a job run, one file, the control plane, or an API
    /// request.
    #[arg(long, value_parser = ["agent", "job", "file", "control-plane", "api"])]
    pub scope: Option<String>,
    /// Only codes of this namespace: app (numbers), azsm (AZSMxxxx), http (HTTPxxx).
    #[arg(long, value_parser = ["app", "azsm", "http"])]
    pub namespace: Option<String>,
    /// Only states, failures or successes.
    #[arg(long, value_parser = ["status", "error", "success"])]
    pub kind: Option<String>,
    /// Only the status codes of one command (scan, migrate-data, true-up, ...).
    #[arg(long, value_name = "COMMAND")]
    pub command: Option<String>,
    /// Print the entries as a JSON array.
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// Print the whole catalog as the Markdown of docs/codes.md (filters do not apply).
    #[arg(long, conflicts_with_all = ["scope", "namespace", "kind", "command"])]
    pub markdown: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    pub shell: clap_complete::Shell,
}
