//! The command line, as clap sees it. What each subcommand does lives in `commands/`.

use clap::{Args, Parser, Subcommand};
use godwit_spec::{Compare, Links, ProfileName, Verify};

/// godwit moves file shares, NAS volumes and local disks into object and file storage (S3,
/// Azure Blob, SFTP, other file systems) and keeps the copy in step until you switch over.
///
/// Every condition godwit reports has a stable code; `godwit explain CODE` says what it means
/// and what to do.
#[derive(Debug, Parser)]
#[command(
    name = "godwit",
    version = crate::VERSION,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Diagnostics on stderr, for every subcommand.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log more: `serve` and `agent` log at info, -v debug, -vv trace; other commands log
    /// nothing unless asked: -v info, -vv debug, -vvv trace. RUST_LOG (a filter such as
    /// `godwit_engine=debug,opendal=trace`) overrides both flags.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log less: -q warnings and errors only (and no progress bar), -qq errors only.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    pub quiet: u8,
    /// How log lines are written [default: json when stderr is systemd's journal, else text]
    #[arg(
        long,
        value_enum,
        value_name = "FORMAT",
        global = true,
        env = "GODWIT_LOG_FORMAT"
    )]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line a event, for people.
    Text,
    /// One JSON object a line, with the ids of the run, the command and the request it is in.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inventory a source and report what the target will make of it.
    ///
    /// Walks the source once and reports files, folders, bytes, a size histogram, the deepest
    /// and longest paths, the largest folder, and every name, length or type the target cannot
    /// hold, with its AZSM202x code and example paths. Nothing is written to the source.
    #[command(after_help = "Examples:\n  godwit scan /data/share\n  \
                            godwit scan /data/share --target-profile windows --exclude '*.tmp'\n  \
                            godwit scan /data/share --json > scan.json\n\n\
                            Exit status: 0 scanned; 1 the scan failed (see its job error code); \
                            2 bad arguments.")]
    Scan(ScanArgs),
    /// Propose how to cut a large source into jobs that each stay under the job limits.
    ///
    /// Walks the source once into a folder tree (kept on disk in the run folder, so memory does
    /// not grow with the number of files) and cuts it on folder boundaries: a folder whose
    /// whole subtree fits the limits goes to one job, a larger one is cut at its subfolders,
    /// and the pieces are packed, in tree order, into jobs of about even size. Each job is
    /// given as include rules (`a/b/**` a folder and everything below it, `a/*` the files
    /// directly in a folder) that together select every file exactly once: use them as
    /// `--include` of each job's copy. A folder whose own files exceed a limit cannot be cut:
    /// it is named, with its size, and proposed as a job alone (9130). Nothing is written to
    /// the source.
    #[command(
        visible_alias = "simulate-scan",
        after_help = "Examples:\n  godwit plan /data/share --max-job-files 1000000 --max-job-size 10T\n  \
                      godwit plan /data/share --max-job-files 30000 --json > plan.json\n\n\
                      Exit status: 0 a proposal within the limits; 1 the walk failed, or a \
                      folder is too large to split (9130, the proposal is still printed); 2 bad \
                      arguments."
    )]
    Plan(PlanArgs),
    /// Check, before a migration runs, everything that would stop it.
    ///
    /// Scans the source under the target's profile and the filters (names, lengths, depths,
    /// sizes and file types the target cannot hold: AZSM2021-2026 with example paths; folders
    /// over --max-folder-entries: 3050; paths that cannot be read), writes a small probe file at
    /// the target and removes it (722 when it cannot), and compares what a copy would move with
    /// the job limits (629, 640). Each finding has its code; any finding ends the run with 9140.
    /// Nothing is written to the source and nothing is left at the target.
    #[command(
        after_help = "Example:\n  godwit validate /data/share s3://bucket/share --target-profile s3\n\n\
                            Exit status: 0 nothing found; 1 findings (9140, each listed) or the \
                            check itself failed; 2 bad arguments."
    )]
    Validate(ValidateArgs),
    /// Copy what is new or changed from SOURCE to TARGET, verify it, and record every file.
    ///
    /// Each file is decided once: excluded (AZSM2001), unsupported by the target (AZSM202x),
    /// unchanged since godwit last copied it (AZSM2041), or copied and verified (AZSM0000).
    /// Files are written under a temporary name and renamed when complete, so nothing
    /// half-written appears at its final name. Stopped or killed, the same command resumes.
    /// The run's summary.json and copylog.jsonl are kept under the state directory.
    #[command(after_help = "Examples:\n  godwit copy /data/share /mnt/new/share\n  \
                            godwit copy /data/share /mnt/new/share --exclude '**/node_modules/' --json\n  \
                            godwit copy /data/share /mnt/new/share --verify full\n\n\
                            Exit status: 0 every file copied or skipped on purpose; 1 the job failed \
                            or was stopped; 2 bad arguments; 3 finished, some files failed or are \
                            unsupported (see copylog.jsonl).")]
    Copy(CopyArgs),
    /// True-up: copy what changed since the last run, and with --delete remove at the target
    /// what is gone from the source, guarded.
    ///
    /// Changes are found from the migration's index of what godwit last wrote, so unchanged
    /// files cost one stat at the source and nothing at the target. Files gone from the source
    /// are listed in the run folder's deletes.txt. With --delete they are removed at the target,
    /// but the run pauses before deleting anything (exit status 4) when the deletions exceed
    /// --max-delete (9080), when part of the source could not be read (9090), or both (9100);
    /// `godwit confirm RUN_ID` then carries out exactly the reviewed list. A folder that cannot
    /// be read is never taken for deleted.
    #[command(
        after_help = "Examples:\n  godwit sync /data/share s3://bucket/share\n  \
                            godwit sync /data/share s3://bucket/share --delete\n  \
                            godwit sync /data/share s3://bucket/share --delete --max-delete 2%\n  \
                            godwit sync /data/share s3://bucket/share --delete \
                            --backup-dir s3://bucket/share-backups\n  \
                            godwit confirm 20261122T153000Z-1a2b\n\n\
                            Exit status: 0 in step; 1 the job failed or was stopped; 2 bad \
                            arguments; 3 finished, some files failed; 4 paused before deleting: \
                            review deletes.txt, then confirm."
    )]
    Sync(SyncArgs),
    /// Carry out the deletions of a true-up that paused for review (9080/9090/9100).
    ///
    /// Deletes exactly the files listed in that run's deletes.txt, each only if the source
    /// still does not hold it: a file re-created since the review is kept. Nothing found after
    /// the review is deleted.
    #[command(after_help = "Example:\n  godwit confirm 20261122T153000Z-1a2b\n\n\
                            Exit status: 0 done; 1 failed; 2 no such paused run; 3 some \
                            deletions failed.")]
    Confirm(ConfirmArgs),
    /// Put back what a true-up with --backup-dir deleted or replaced at the target.
    ///
    /// Reads that run's copy log and moves each file it kept back from the run's backup
    /// folder to its place at the target: AZSM2047 for each file put back, AZSM2079 with the
    /// reason for one that is not. A file is put back only where the target still holds what
    /// the run left there (the version it wrote, or nothing where it deleted one); anything
    /// changed at the target since is left alone. The migration's index learns each file put
    /// back, so the next true-up sends the source's version again if the source still differs.
    #[command(after_help = "Example:\n  godwit undo 20261122T153000Z-1a2b\n\n\
                            Exit status: 0 all put back; 1 failed; 2 no such run, or it kept \
                            nothing to put back; 3 some files could not be put back.")]
    Undo(UndoArgs),
    /// Close a migration after its cut-over: remove its index and its runs' working files.
    ///
    /// What stays: each run's summary, copy log, sides and reports (`godwit runs` and `godwit
    /// report` still show them). What goes: the migration's index and every inventory, list,
    /// tree and marker of its runs. Nothing at the source or the target is touched. Afterwards
    /// every command on this source and target is refused with AZSM1048: without its index a
    /// true-up would send everything again and see no deletion.
    #[command(
        after_help = "Example:\n  godwit finalize /data/share s3://bucket/share\n\n\
                            Exit status: 0 finalized (or already); 1 failed part way (2090; \
                            run it again), or the migration is running; 2 bad arguments."
    )]
    Finalize(FinalizeArgs),
    /// Rename, on the source itself, the names a target cannot hold (a dry run without --apply).
    ///
    /// Names are made acceptable to the target profile deterministically (a refused character
    /// becomes `_`, extensions are kept) and two names that would become one are told apart by
    /// a stable tag. Every rename is reported in the run folder's sanitize.csv. To rename only
    /// at the target, leaving the source alone, use `copy --sanitize on-the-fly` instead.
    #[command(
        after_help = "Examples:\n  godwit sanitize /data/share --target-profile windows\n  \
                            godwit sanitize /data/share --target-profile windows --apply\n\n\
                            Exit status: 0 done; 1 failed; 2 bad arguments; 3 some names could \
                            not be renamed (4010)."
    )]
    Sanitize(SanitizeArgs),
    /// Make the source's empty folders exist at the target (folders, or `name/` markers on
    /// object stores), and nothing else.
    #[command(
        name = "empty-folders",
        after_help = "Example:\n  godwit empty-folders /data/share s3://bucket/share\n\n\
                            Exit status: 0 done; 1 failed; 2 bad arguments; 3 some folders \
                            could not be made (9010)."
    )]
    EmptyFolders(EmptyFoldersArgs),
    /// Compare the whole target with the whole source, file by file, and report every
    /// difference; nothing is written to either side.
    ///
    /// A point-in-time check of the migration, not only of what the last run wrote: both sides
    /// are listed and each file gets one record in the run's copy log: the same (AZSM2045),
    /// differs (AZSM2074, saying what), missing at the target (AZSM2075), extra at the target
    /// (AZSM2076), or unreadable on one side (AZSM2077). By default size and modification time
    /// decide (the time as precisely as the target keeps it; one HEAD a file on object
    /// stores); --checksum reads and hashes both sides instead. The differences are also in the
    /// run folder's differences.jsonl. Run it last, right before switching over.
    #[command(
        after_help = "Examples:\n  godwit verify /data/share s3://bucket/share\n  \
                            godwit verify /data/share /mnt/new/share --checksum\n  \
                            godwit verify /data/share sftp://backup@nas/share --json\n\n\
                            Exit status: 0 the target is the same as the source; 1 the \
                            verification failed or was stopped; 2 bad arguments; 3 differences \
                            were found (AZSM1047; see differences.jsonl)."
    )]
    Verify(VerifyArgs),
    /// Carry owners, groups, modes, POSIX ACLs, extended attributes and times from the source
    /// to the same paths at the target (--simulate: only report what would be set).
    ///
    /// Every path of the source, folders and the source folder itself included, gets one
    /// record: AZSM0000 when set, 7020 when its owner or group (or a user or group named in its
    /// ACLs) is not in the owner map, 7030 when the target refuses it or does not hold the path
    /// yet (copy first). The owner map translates principals: one FROM=TO a line, by name or
    /// id, `@` for groups on both sides (`alice=bob`, `1001=2001`, `@staff=@eng`), `*=TO` and
    /// `@*=@TO` for everyone else, `keep` for the same one; without a map every owner and
    /// group keeps its id, and a map without a default refuses (7020) what it does not name.
    /// The run folder's permissions.jsonl says, path by path, what is there now and what is set
    /// (or would be). Setting owners needs root. From a local or mounted folder to another, to
    /// an SFTP server (owners, modes, times), or to S3 and Azure Blob as object metadata in
    /// rclone's form; what a target cannot hold is in the report.
    #[command(
        after_help = "Examples:\n  godwit permissions /data/share /mnt/new/share --simulate \
                            --owner-map owners.txt\n  \
                            godwit permissions /data/share /mnt/new/share --owner-map owners.txt\n  \
                            godwit permissions /data/share /mnt/new/share --what mode,times\n\n\
                            Exit status: 0 done; 1 failed; 2 bad arguments; 3 some paths could \
                            not be translated (7020) or set (7030)."
    )]
    Permissions(PermissionsArgs),
    /// Measure what the path to a target can do: write, read back and delete test files.
    ///
    /// Writes 200 files of 64 KiB and 2 of 64 MiB under a temporary prefix of the target
    /// (.godwit-tmp-speedtest-RUN), reads them back and compares them byte for byte, deletes
    /// them and checks that nothing is left. Reports MB/s and files/s each way with latency
    /// percentiles and, given a scan of the source, how long its copy would take.
    #[command(
        name = "speed-test",
        after_help = "Examples:\n  godwit speed-test s3://bucket/share\n  \
                            godwit speed-test sftp://backup@nas/share --max-time 2m\n  \
                            godwit speed-test s3://bucket/share --from-scan 20261202T182442Z-1afe --json\n\n\
                            Exit status: 0 measured; 1 the target could not be used, or --max-time \
                            ran out (6090; what was measured is still reported); 2 bad arguments."
    )]
    SpeedTest(SpeedTestArgs),
    /// List the runs godwit keeps in its state directory, newest first: of one migration
    /// (SOURCE TARGET), or of all.
    ///
    /// Each run with its id, command, status code, files, bytes, start time and duration. A run
    /// still going on is RUNNING; one that ended without a summary (killed, or its machine went
    /// down) says so: running its command again resumes it.
    #[command(after_help = "Examples:\n  godwit runs\n  \
                            godwit runs /data/share s3://bucket/share\n  \
                            godwit runs --json | jq '.[0].run_id'\n  \
                            godwit report 20261202T182442Z-1afe --failed")]
    Runs(RunsArgs),
    /// Show one run: its summary, its failed files (--failed), or its copy log as CSV for a
    /// spreadsheet (--csv).
    #[command(after_help = "Examples:\n  godwit report 20261202T182442Z-1afe\n  \
                            godwit report 20261202T182442Z-1afe --failed\n  \
                            godwit report 20261202T182442Z-1afe --csv > copylog.csv\n  \
                            godwit report 20261202T182442Z-1afe --json\n\n\
                            Exit status: 0 shown; 2 no such run (800).")]
    Report(ReportArgs),
    /// Run the control plane: the REST API for agents, endpoints, projects and migrations.
    ///
    /// With no flags it listens on 127.0.0.1:8080 and keeps its store in a SQLite file in the
    /// state directory; `--database postgres://...` uses PostgreSQL instead. The schema is
    /// brought up to date at start. Requests need a token (`godwit token create`). Ctrl-C or
    /// SIGTERM stops it gracefully: requests in flight finish first.
    #[command(after_help = "Examples:\n  godwit serve\n  \
                            godwit serve --listen 0.0.0.0:8080 --database postgres://godwit@db/godwit\n  \
                            curl -H \"Authorization: Bearer $(godwit token create --role viewer)\" \
                            http://127.0.0.1:8080/v1/projects\n\n\
                            The API is described at /openapi.json; /healthz, /readyz and /metrics \
                            need no token.")]
    Serve(ServeArgs),
    /// Run next to the data: connect to a control plane and run the commands it sends.
    ///
    /// The agent registers with the agent id its token is bound to (an admin gets the token
    /// from `POST /v1/agents`), sends heartbeats, runs scan, copy and sync with the same engine
    /// as the command line (its state stays in --state-dir), and reports progress, copy logs and
    /// results. It reconnects by itself; nothing it reports is lost while the connection is
    /// down, and started again after a crash it resumes its runs.
    #[command(after_help = "Example:\n  \
                            GODWIT_AGENT_TOKEN=eyJ... godwit agent --server http://control-plane:8080\n\n\
                            Exit status: 0 stopped by Ctrl-C or SIGTERM; 1 refused by the control plane \
                            (the code and what to do are printed); 2 bad arguments.")]
    Agent(AgentArgs),
    /// Make, list and revoke tokens for the control plane's API.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Make a release key and sign agent releases, for upgrading agents from the control plane.
    ///
    /// An agent installs only a binary signed with the release key whose public half it was
    /// started with (`godwit agent --release-key`), and the control plane keeps only releases
    /// that verify with its own (`godwit serve --release-key`). Keep the secret half off the
    /// control plane's host: whoever holds it decides what agents run.
    #[command(
        subcommand,
        after_help = "Examples:\n  godwit release keygen --out release.key\n  \
                      Q=$(godwit release sign --key release.key --version 0.2.0 target/release/godwit)\n  \
                      curl -H \"Authorization: Bearer $ADMIN\" -H 'content-type: application/octet-stream' \\\n    \
                      --data-binary @target/release/godwit \"http://127.0.0.1:8080/v1/releases?$Q\"\n\n\
                      See docs/agents.md."
    )]
    Release(ReleaseCommand),
    /// Check a configuration file for `serve` and `agent` without starting anything.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Check what runs will need: credentials, endpoints, buckets, write access, clocks, free
    /// space, the control plane.
    ///
    /// For each LOCATION (a local path, s3://BUCKET/PREFIX, azblob://CONTAINER/PREFIX,
    /// sftp://USER@HOST/PATH): its credentials are present and accepted, it is reachable, the
    /// bucket or container exists, a probe file can be written and removed, and the store's
    /// clock agrees with this host's. Then the free space in the state directory, and with
    /// --server the control plane, reached with the token. Each problem has its code; nothing
    /// is left behind.
    #[command(
        after_help = "Examples:\n  godwit doctor s3://bucket/share /data/share\n  \
                            GODWIT_AGENT_TOKEN=eyJ... godwit doctor --server https://cp:8443\n  \
                            godwit doctor s3://bucket/share --json\n\n\
                            Exit status: 0 all checks passed; 1 a check failed (each is listed \
                            with its code); 2 bad arguments."
    )]
    Doctor(DoctorArgs),
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

/// `godwit serve`'s address when neither a flag nor a configuration file gives one.
pub const DEFAULT_LISTEN: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Read FILE as `serve --config` and `agent --config` would, and say what is wrong with
    /// it (the line of a key godwit does not know, a value it cannot use).
    #[command(
        after_help = "Example:\n  godwit config check /etc/godwit/godwit.toml\n\n\
                            Exit status: 0 the file is usable; 2 it is not (724, with the reason)."
    )]
    Check(ConfigCheckArgs),
}

#[derive(Debug, Args)]
pub struct ConfigCheckArgs {
    pub file: std::path::PathBuf,
}

/// How an agent (or `godwit doctor` on its host) reaches the control plane.
#[derive(Debug, Args)]
pub struct ControlPlaneArgs {
    /// The control plane: https://HOST:PORT, or http://HOST:PORT on loopback (elsewhere only
    /// with --allow-plain-http). An agent needs it, here or in its configuration file. Several
    /// replicas of one control plane: their URLs separated by commas; the agent connects to
    /// one and moves to the next whenever its connection fails or ends.
    #[arg(long, value_name = "URL", env = "GODWIT_SERVER")]
    pub server: Option<String>,
    /// The agent's token (better in GODWIT_AGENT_TOKEN, or in a file named by the
    /// configuration's token_file, than on the command line).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "GODWIT_AGENT_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// The CA certificates (PEM) the control plane's certificate must chain to, instead of
    /// the system's (a private CA).
    #[arg(long, value_name = "FILE", env = "GODWIT_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The locations to check.
    #[arg(value_name = "LOCATION")]
    pub locations: Vec<String>,
    /// The control plane to check too, reached as the agent reaches it.
    #[command(flatten)]
    pub control_plane: ControlPlaneArgs,
    /// One JSON object: each check with its result and code.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Where runs keep their index, summaries and copy logs.
#[derive(Debug, Args)]
pub struct StateArgs {
    /// godwit's state directory [default: $XDG_DATA_HOME/godwit or ~/.local/share/godwit]
    #[arg(long, value_name = "DIR", env = "GODWIT_STATE_DIR")]
    pub state_dir: Option<std::path::PathBuf>,
}

/// Which files take part.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Leave out files and folders matching GLOB (repeatable). `*.tmp` matches at any depth,
    /// `/build` only at the root, `**` crosses folders, a trailing `/` matches folders only.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Only files matching GLOB (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Leave out paths matching the regular expression RE (repeatable).
    #[arg(long, value_name = "RE")]
    pub exclude_regex: Vec<String>,
    /// Read exclude globs from FILE, one a line (blank lines and `#` comments are skipped).
    #[arg(long, value_name = "FILE")]
    pub exclude_from: Vec<std::path::PathBuf>,
    /// Match globs and regular expressions without regard to case.
    #[arg(long)]
    pub ignore_case: bool,
    /// Only files of at least SIZE bytes: 100, 10K, 1.5M, 2G.
    #[arg(long, value_name = "SIZE")]
    pub min_size: Option<String>,
    /// Only files of at most SIZE bytes.
    #[arg(long, value_name = "SIZE")]
    pub max_size: Option<String>,
    /// Only files last modified at least AGE ago: 90s, 30m, 12h, 7d, 2w.
    #[arg(long, value_name = "AGE")]
    pub min_age: Option<String>,
    /// Only files last modified at most AGE ago.
    #[arg(long, value_name = "AGE")]
    pub max_age: Option<String>,
    /// What to do with symbolic links: skip them (each recorded as AZSM2021), follow them (copy
    /// what they point to; loops are detected), or copy the links themselves (local targets).
    #[arg(long, value_enum, default_value_t = Links::Skip)]
    pub links: Links,
    /// The rules the target's names must follow [default: from the target's kind; posix for a
    /// local path].
    #[arg(long, value_enum)]
    pub target_profile: Option<ProfileName>,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The folder to scan: a local path, s3://bucket/prefix, az://container/prefix or
    /// sftp://user@host:port/path.
    pub source: String,
    #[command(flatten)]
    pub filters: FilterArgs,
    /// A folder with more entries than this is reported as code 3050.
    #[arg(long, value_name = "N", default_value_t = 50_000)]
    pub max_folder_entries: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The migration's source: a local path, s3://bucket/prefix, az://container/prefix or
    /// sftp://user@host:port/path.
    pub source: String,
    /// Its target, in the same forms.
    pub target: String,
    /// The most files one job may hold [default: 50000000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_job_files: Option<u64>,
    /// The most bytes one job may hold: 500G, 10T [default: 1P].
    #[arg(long, value_name = "SIZE")]
    pub max_job_size: Option<String>,
    /// A folder with more entries than this is a 3050 finding.
    #[arg(long, value_name = "N", default_value_t = 50_000)]
    pub max_folder_entries: usize,
    #[command(flatten)]
    pub filters: FilterArgs,
    /// Print the summary, with the findings, as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The folder to plan: a local path, s3://bucket/prefix, az://container/prefix or
    /// sftp://user@host:port/path.
    pub source: String,
    /// The most files one job may hold [default: 50000000, the control plane's limit].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_job_files: Option<u64>,
    /// The most bytes one job may hold: 500G, 10T (K, M, G, T are powers of 1024)
    /// [default: 1P].
    #[arg(long, value_name = "SIZE")]
    pub max_job_size: Option<String>,
    #[command(flatten)]
    pub filters: FilterArgs,
    /// Print the summary, with the proposal, as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The folder to copy from: a local path, s3://bucket/prefix, az://container/prefix or
    /// sftp://user@host:port/path.
    #[arg(required_unless_present = "config")]
    pub source: Option<String>,
    /// The folder to copy into, in the same forms (a local folder is created if missing).
    #[arg(required_unless_present = "config")]
    pub target: Option<String>,
    /// Run the migrations of a configuration file instead (JSON: {"migrations": [{"source":
    /// "/mnt/nas", "target": "s3://bucket/nas", "options": {...}}, ...]}, the format the
    /// control plane takes too; docs/projects.md). Each runs in turn with its own options; the
    /// option flags are then refused, the file gives them.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["source", "target"])]
    pub config: Option<std::path::PathBuf>,
    /// Files copied at once [default: 8 to a local target, 16 to a remote store].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub transfers: Option<u16>,
    /// Limit the whole run to RATE bytes a second, shared by all transfers: 10M, 512K, 1.5G
    /// (K, M, G are powers of 1024: 10M is 10 MiB/s). Or a timetable by local time, with
    /// optional days, that a running copy follows: "08:00,10M 18:00,off" or
    /// "Mon-08:00,2M Fri-18:00,off".
    #[arg(long, value_name = "RATE|TIMETABLE")]
    pub bwlimit: Option<String>,
    /// Compute a checksum of every file while reading it, and record it in the copy log.
    #[arg(long)]
    pub checksum: bool,
    /// What to check after writing: nothing, the size, or the content re-read from the target.
    #[arg(long, value_enum, default_value_t = Verify::Size)]
    pub verify: Verify,
    /// How to tell that a file is already at the target: from godwit's index of what it wrote
    /// (no request to the target), or by listing the target (for a target changed behind
    /// godwit's back, or a lost state directory; unchanged files are then AZSM2042 and the index
    /// is repaired).
    #[arg(long, value_enum, default_value_t = Compare::Index)]
    pub compare: Compare,
    /// Check N files the index says are at the target, picked at random, with one stat or
    /// HEAD each (and whether a local target folder is gone): a file missing or changed there
    /// is copied again and the run ends with AZSM1028, which says to run with
    /// `--compare target`. 0 turns the check off.
    #[arg(long, value_name = "N", default_value_t = godwit_spec::options::DEFAULT_SPOT_CHECK)]
    pub spot_check: u32,
    /// Decide every file and report what would be copied, without writing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep hard links: a file with several names at the source is copied once and its other
    /// names are linked to it at the target, like `rsync -H` (local source and target).
    #[arg(long)]
    pub hard_links: bool,
    /// Make folders that hold nothing exist at the target too (on object stores as a
    /// zero-byte `name/` marker).
    #[arg(long)]
    pub create_empty_dirs: bool,
    /// Names the target cannot hold: leave such files out (AZSM2022/AZSM2023), or rename them
    /// at the target only, keeping the source as it is (the mapping is kept for later runs and
    /// each record's target_path shows the new name).
    #[arg(long, value_parser = ["off", "on-the-fly"], default_value = "off")]
    pub sanitize: String,
    /// Copy exactly the files FILE lists, one path a line below the source (`-`: standard
    /// input), without walking the rest; `\n`, `\r`, `\\` and `\xNN` stand for a newline, a
    /// carriage return, a backslash and a byte, as in a true-up's deletes.txt. A line that names
    /// no file at the source is recorded as AZSM2078.
    #[arg(long, value_name = "FILE")]
    pub files_from: Option<std::path::PathBuf>,
    /// Keep what this run deletes or replaces at the target in a folder of the run under DIR
    /// (named by the run id, which starts with its date and time) instead of losing it:
    /// moved there within the store, never sent again. DIR is a path or URL on the target's
    /// own store (the same bucket, container or SFTP server; for a local target the same file
    /// system), outside the target. `godwit undo RUN_ID` puts everything back.
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<String>,
    /// Carry each file's and folder's owner, group, mode, ACLs, extended attributes and
    /// times with its data, as `godwit permissions` does (from a local or mounted source; to
    /// S3 and Azure Blob as the object's metadata in rclone's form). A true-up then sets a
    /// change of permissions alone without sending the data again (AZSM2048).
    #[arg(long)]
    pub metadata: bool,
    /// With --metadata: the owner map, one FROM=TO a line (`godwit permissions --help`);
    /// without it owners and groups keep their ids.
    #[arg(long, value_name = "FILE", requires = "metadata")]
    pub owner_map: Option<std::path::PathBuf>,
    /// With --metadata: what to carry, some of owner, mode, acl, xattr, times [default: all].
    #[arg(long, value_name = "LIST", requires = "metadata")]
    pub what: Option<String>,
    /// Write a copy-log record for every excluded file (by default they are only counted).
    #[arg(long)]
    pub log_excluded: bool,
    /// Write a copy-log record for every file found unchanged, AZSM2041 (by default they are
    /// only counted, in the summary).
    #[arg(long)]
    pub log_unchanged: bool,
    #[command(flatten)]
    pub filters: FilterArgs,
    /// Print JSON progress lines while copying, and the summary as JSON at the end.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub copy: CopyArgs,
    /// Delete at the target the files that are gone from the source (guarded; see above).
    #[arg(long)]
    pub delete: bool,
    /// Pause for review when more files than this would be deleted: a number (500) or a share
    /// of the files in the index (2%) [default: 5% of the index, at most 1000].
    #[arg(long, value_name = "N|P%", requires = "delete")]
    pub max_delete: Option<String>,
    /// Carry out the reviewed deletions of the paused run RUN_ID along with this true-up.
    #[arg(long, value_name = "RUN_ID", requires = "delete")]
    pub confirm_deletes: Option<String>,
}

#[derive(Debug, Args)]
pub struct FinalizeArgs {
    /// The migration's source, as its copies were given it.
    pub source: String,
    /// Its target.
    pub target: String,
    /// The include rules of a job cut out of its source (a plan's job), as given to its copy.
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct UndoArgs {
    /// The true-up run whose deletions and replacements to put back, as `godwit runs` shows it.
    pub run_id: String,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The source: a local path, s3://bucket/prefix, az://container/prefix or
    /// sftp://user@host:port/path.
    pub source: String,
    /// The target it was copied to, in the same forms.
    pub target: String,
    /// Read both sides and compare their content (xxh3-128) instead of their modification
    /// times. Reads every byte twice over; memory stays the same.
    #[arg(long)]
    pub checksum: bool,
    /// Take the source side from the migration's index (what godwit last copied, with its
    /// checksum when the copy ran with --checksum) instead of reading the source.
    #[arg(long)]
    pub use_index: bool,
    /// Files compared at once when a comparison reads them or asks the store [default: 8 to a
    /// local target, 16 to a remote store].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub transfers: Option<u16>,
    #[command(flatten)]
    pub filters: FilterArgs,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct PermissionsArgs {
    /// The local or mounted folder whose permissions are carried.
    pub source: String,
    /// The folder it was copied to.
    pub target: String,
    /// Set nothing: report what would be set, path by path, and who would own what.
    #[arg(long)]
    pub simulate: bool,
    /// The owner map: one FROM=TO a line (see above); without it owners and groups keep their
    /// ids.
    #[arg(long, value_name = "FILE")]
    pub owner_map: Option<std::path::PathBuf>,
    /// What to carry: some of owner, mode, acl, xattr, times [default: all].
    #[arg(long, value_name = "LIST")]
    pub what: Option<String>,
    #[command(flatten)]
    pub filters: FilterArgs,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct SpeedTestArgs {
    /// The target to measure: a local path, s3://bucket/prefix, az://container/prefix or
    /// sftp://user@host:port/path.
    pub target: String,
    /// Stop after this long, clean up, and fail with 6090: 90s, 5m.
    #[arg(long, value_name = "DURATION")]
    pub max_time: Option<String>,
    /// Estimate the copy of the source this scan run saw (`godwit runs` lists them).
    #[arg(long, value_name = "RUN_ID")]
    pub from_scan: Option<String>,
    /// Files in flight at once [default: 8 to a local target, 16 to a remote store].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub transfers: Option<u16>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Only the runs of the migration from SOURCE (to TARGET; a scan or a sanitize has no
    /// target).
    pub source: Option<String>,
    pub target: Option<String>,
    /// The include rules of a job cut out of its source (a plan's job), as given to its copy:
    /// each such job is a migration of its own.
    #[arg(long, value_name = "GLOB", requires = "source")]
    pub include: Vec<String>,
    /// Show at most N runs (0: all).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: usize,
    /// Print the runs as a JSON array.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run, as `godwit runs` and its summary name it.
    pub run_id: String,
    /// Only the files that failed: each copy-log record whose code is an error.
    #[arg(long)]
    pub failed: bool,
    /// Print JSON: the summary, or with --failed the failed records, one a line.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print the copy log (with --failed, only its failed records) as CSV.
    #[arg(long)]
    pub csv: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct ConfirmArgs {
    /// The run that paused, as its message and summary.json name it.
    pub run_id: String,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct SanitizeArgs {
    /// The local folder whose names are checked (and, with --apply, renamed).
    pub source: String,
    /// The rules the names must follow.
    #[arg(long, value_enum)]
    pub target_profile: ProfileName,
    /// Rename for real; without it nothing is changed and sanitize.csv shows what would be.
    #[arg(long)]
    pub apply: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct EmptyFoldersArgs {
    /// The folder whose empty folders are made at the target.
    pub source: String,
    /// Where to make them.
    pub target: String,
    #[command(flatten)]
    pub filters: FilterArgs,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address and port to listen on [default: 127.0.0.1:8080]. An address other than
    /// loopback needs --tls-cert and --tls-key, or --allow-plain-http.
    #[arg(long, value_name = "ADDR:PORT", env = "GODWIT_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// Serve HTTPS with this certificate chain (PEM).
    #[arg(
        long,
        value_name = "FILE",
        env = "GODWIT_TLS_CERT",
        requires = "tls_key"
    )]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(
        long,
        value_name = "FILE",
        env = "GODWIT_TLS_KEY",
        requires = "tls_cert"
    )]
    pub tls_key: Option<std::path::PathBuf>,
    /// Serve plain HTTP on an address other than loopback (behind a proxy that does TLS).
    #[arg(long)]
    pub allow_plain_http: bool,
    /// The public half of the release key (base64, or a file holding it): agent releases are
    /// kept only when they verify with it (see `godwit release`).
    #[arg(long, value_name = "KEY|FILE", env = "GODWIT_RELEASE_KEY")]
    pub release_key: Option<String>,
    /// Refuse agents older than this version at registration (864), and as upgrade targets
    /// (1010).
    #[arg(long, value_name = "VERSION", env = "GODWIT_MIN_AGENT_VERSION")]
    pub min_agent_version: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// A configuration file: its [agent] and [log] tables (see docs/operations.md). Flags and
    /// environment variables override what it says.
    #[arg(long, value_name = "FILE", env = "GODWIT_CONFIG")]
    pub config: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub control_plane: ControlPlaneArgs,
    /// Connect over plain HTTP to a control plane that is not on loopback.
    #[arg(long)]
    pub allow_plain_http: bool,
    /// A name for the control plane's logs [default: the host name].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The public half of the release key (base64, or a file holding it): upgrades are
    /// installed only when their release verifies with it. Without it the agent refuses
    /// upgrades (AZSM0001).
    #[arg(long, value_name = "KEY|FILE", env = "GODWIT_RELEASE_KEY")]
    pub release_key: Option<String>,
    /// Seconds a new binary has after an upgrade to register with the control plane before it
    /// puts the previous binary back [default: 60].
    #[arg(long, value_name = "SECS", env = "GODWIT_UPGRADE_WINDOW")]
    pub upgrade_window: Option<u64>,
    /// Check this binary can run as the agent (self-test, state directory, the control plane
    /// reachable with the token), print its version and exit: what an upgrade runs before the
    /// new binary replaces the old.
    #[arg(long, hide = true)]
    pub post_check: bool,
    /// Serve this agent's metrics (Prometheus text) at http://ADDR:PORT/metrics: commands
    /// running and ended, files and bytes copied, retries, the connection. Off by default.
    #[arg(long, value_name = "ADDR:PORT", env = "GODWIT_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// Make a release key: the secret half in FILE (readable by you only), the public half in
    /// FILE.pub and printed.
    #[command(after_help = "Example:\n  godwit release keygen --out release.key")]
    Keygen(ReleaseKeygenArgs),
    /// Sign a godwit binary as a release: writes its manifest (version, platform, SHA-256,
    /// size, signature) to BINARY.release.json and prints it as the query of the upload (POST
    /// /v1/releases?...).
    #[command(
        disable_version_flag = true,
        after_help = "Example:\n  \
                      godwit release sign --key release.key --version 0.2.0 target/release/godwit"
    )]
    Sign(ReleaseSignArgs),
}

#[derive(Debug, Args)]
pub struct ReleaseKeygenArgs {
    /// Where to write the secret key; FILE.pub gets the public one.
    #[arg(long, value_name = "FILE")]
    pub out: std::path::PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ReleaseSignArgs {
    /// The secret release key's file (from `godwit release keygen`).
    #[arg(long, value_name = "FILE")]
    pub key: std::path::PathBuf,
    /// The version the binary reports (`BINARY --version`); checked when the binary is this
    /// platform's.
    #[arg(long, value_name = "VERSION")]
    pub version: String,
    /// The platform it runs on [default: this one, such as linux-x86_64].
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Print the manifest as JSON instead of as a URL query.
    #[arg(long)]
    pub json: bool,
    /// The godwit binary.
    pub binary: std::path::PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new token signed with the control plane's secret (GODWIT_JWT_SECRET, or the one
    /// in the state directory), recorded in its store so that it can be listed and revoked.
    #[command(
        after_help = "Run it where the control plane runs, with the same --state-dir and \
                            --database (or GODWIT_DATABASE_URL) as `godwit serve`: the \
                            control plane accepts only tokens it has a record of.\n\n\
                            Examples:\n  godwit token create --role operator --subject alice\n  \
                            godwit token create --role viewer --ttl 7d"
    )]
    Create(TokenCreateArgs),
    /// List the tokens issued, newest first, without their secret text: id, role, subject,
    /// expiry, and whether they were revoked.
    #[command(after_help = "Examples:\n  godwit token list\n  godwit token list --json")]
    List(TokenListArgs),
    /// Revoke a token by its id (from `godwit token list`): the control plane refuses it on
    /// every request from now on (707).
    #[command(after_help = "Examples:\n  godwit token revoke 3f2a9c...")]
    Revoke(TokenRevokeArgs),
}

/// Where the control plane keeps its tokens: its state directory and its store.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// A configuration file: its [serve] table (its database and state directory; for `serve`
    /// all of it) and its [log] table (see docs/operations.md). Flags and environment
    /// variables override what it says.
    #[arg(long, value_name = "FILE", env = "GODWIT_CONFIG")]
    pub config: Option<std::path::PathBuf>,
    /// The control plane's store: postgres://USER@HOST/DB or sqlite://PATH [default: a SQLite
    /// file in the state directory]. `godwit token` must name the one `godwit serve` uses.
    #[arg(long, value_name = "URL", env = "GODWIT_DATABASE_URL")]
    pub database: Option<String>,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// admin: everything, agents and tokens included; operator: create and change, start and
    /// stop commands; viewer: read only. (An agent's token comes with its registration, POST
    /// /v1/agents.)
    #[arg(long, value_parser = ["admin", "operator", "viewer", "agent"])]
    pub role: String,
    /// The agent an agent token is bound to (required with --role agent).
    #[arg(long, value_name = "ID", required_if_eq("role", "agent"))]
    pub agent_id: Option<String>,
    /// Who the token is for, as the audit log names them.
    #[arg(long, value_name = "NAME", default_value = "cli")]
    pub subject: String,
    /// How long the token is valid: 1h, 30d, 1y (at most 5 years).
    #[arg(long, value_name = "DURATION", default_value = "30d")]
    pub ttl: String,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct TokenListArgs {
    /// Print the list as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    /// The token's id (its jti), as `godwit token list` shows it.
    pub id: String,
    #[command(flatten)]
    pub store: StoreArgs,
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
