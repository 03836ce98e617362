//! `godwit sync SOURCE TARGET [--delete]`: a copy that also finds, and with `--delete`
//! removes, what is gone from the source.

use godwit_spec::{CommandKind, MaxDelete};

use crate::cli::SyncArgs;
use crate::commands::copy::{output, run_all, specs};
use crate::exit::ExitStatus;

pub fn run(args: &SyncArgs) -> anyhow::Result<ExitStatus> {
    let specs = specs(&args.copy, CommandKind::Sync).and_then(|mut specs| {
        let max_delete = args
            .max_delete
            .as_deref()
            .map(MaxDelete::parse)
            .transpose()?;
        for spec in &mut specs {
            // The flags add to a configuration file's options.
            spec.options.sync_deletes |= args.delete;
            if max_delete.is_some() {
                spec.options.max_delete = max_delete;
            }
            spec.reviewed_run = args.confirm_deletes.clone();
        }
        Ok(specs)
    });
    Ok(run_all(specs, output(args.copy.json)))
}
