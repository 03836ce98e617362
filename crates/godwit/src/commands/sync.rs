//! `godwit sync SOURCE TARGET [--delete]`: a copy that also finds, and with `--delete`
//! removes, what is gone from the source.

use godwit_spec::{CommandKind, MaxDelete};

use crate::cli::SyncArgs;
use crate::commands::copy::{output, spec};
use crate::commands::job;
use crate::commands::shared::report;
use crate::exit::ExitStatus;

pub fn run(args: &SyncArgs) -> anyhow::Result<ExitStatus> {
    let spec = spec(&args.copy, CommandKind::Sync).and_then(|mut spec| {
        spec.options.sync_deletes = args.delete;
        spec.options.max_delete = args
            .max_delete
            .as_deref()
            .map(MaxDelete::parse)
            .transpose()?;
        spec.reviewed_run = args.confirm_deletes.clone();
        let list = crate::commands::shared::StdinList::take(&mut spec)?;
        Ok((spec, list))
    });
    Ok(match spec {
        Ok((spec, _list)) => job::run(&spec, output(args.copy.json)),
        Err(e) => report(&e),
    })
}
