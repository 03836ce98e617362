//! `godwit release`: the release key, and signed agent releases.

use std::io::Write as _;

use crate::cli::{ReleaseCommand, ReleaseKeygenArgs, ReleaseSignArgs};
use crate::exit::ExitStatus;

pub fn run(cmd: &ReleaseCommand) -> anyhow::Result<ExitStatus> {
    match cmd {
        ReleaseCommand::Keygen(args) => keygen(args),
        ReleaseCommand::Sign(args) => sign(args),
    }
}

fn keygen(args: &ReleaseKeygenArgs) -> anyhow::Result<ExitStatus> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let (secret, public) = godwit_spec::release::generate_key().map_err(anyhow::Error::msg)?;
    let mut open = std::fs::OpenOptions::new();
    open.write(true).mode(0o600);
    if args.force {
        open.create(true).truncate(true);
    } else {
        open.create_new(true);
    }
    let mut file = match open.open(&args.out) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            eprintln!(
                "error: {} exists; a new key would orphan every release signed with it (--force replaces it)",
                args.out.display()
            );
            return Ok(ExitStatus::Usage);
        }
        Err(e) => anyhow::bail!("{}: {e}", args.out.display()),
    };
    writeln!(file, "{secret}")?;
    file.sync_all()?;
    let mut pub_path = args.out.clone().into_os_string();
    pub_path.push(".pub");
    std::fs::write(&pub_path, format!("{public}\n"))?;
    eprintln!(
        "secret key: {} (keep it off the control plane's host)\npublic key: {} (give it to `godwit serve` and `godwit agent` as --release-key)",
        args.out.display(),
        std::path::Path::new(&pub_path).display()
    );
    println!("{public}");
    Ok(ExitStatus::Success)
}

fn sign(args: &ReleaseSignArgs) -> anyhow::Result<ExitStatus> {
    let secret = std::fs::read_to_string(&args.key)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.key.display()))?;
    let platform = args
        .platform
        .clone()
        .unwrap_or_else(godwit_spec::release::platform);
    let manifest = match godwit_spec::release::sign(&secret, &args.binary, &args.version, &platform)
    {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitStatus::Usage);
        }
    };
    let mut out = args.binary.clone().into_os_string();
    out.push(".release.json");
    std::fs::write(&out, serde_json::to_string_pretty(&manifest)? + "\n")?;
    eprintln!(
        "signed {} as {} for {} ({} bytes); manifest in {}",
        args.binary.display(),
        manifest.version,
        manifest.platform,
        manifest.size,
        std::path::Path::new(&out).display()
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&manifest)?);
    } else {
        println!(
            "version={}&platform={}&sha256={}&size={}&signature={}",
            godwit_spec::location::query_value(&manifest.version),
            godwit_spec::location::query_value(&manifest.platform),
            manifest.sha256,
            manifest.size,
            godwit_spec::location::query_value(&manifest.signature)
        );
    }
    Ok(ExitStatus::Success)
}
