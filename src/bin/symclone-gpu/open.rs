//! How the global flags open the adapter: the choice they make, the one-line notice of
//! `--validate`, and the flags a child process (a sweep's cell) is given again.

use super::Cli;
use std::sync::Arc;
use symclone::gpu::AdapterChoice;
use symclone::{Error, Gpu};

/// This program with the global flags it was given, as a cell's process runs it.
pub(crate) fn program(cli: &Cli) -> Result<Vec<String>, Error> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::invalid(format!("cannot find this program's path: {e}")))?;
    let mut v = vec![exe.display().to_string()];
    for (flag, value) in [
        ("--backend", &cli.backend),
        ("--adapter", &cli.adapter),
        ("--family", &cli.family),
        ("--limits", &cli.limits),
    ] {
        if let Some(x) = value {
            v.extend([flag.to_string(), x.clone()]);
        }
    }
    if cli.validate {
        v.push("--validate".to_string());
    }
    Ok(v)
}

/// Open the adapter the flags choose; under `--validate`, say in one line what checks are on.
pub(crate) fn open(cli: &Cli) -> Result<Arc<Gpu>, Error> {
    let gpu = Gpu::new(&choice(cli))?;
    if let Some(line) = gpu.validation_line() {
        eprintln!("{line}");
    }
    Ok(gpu)
}

/// The adapter choice the global flags (and their environment variables) make.
pub(crate) fn choice(cli: &Cli) -> AdapterChoice {
    AdapterChoice {
        backend: cli.backend.clone(),
        name: cli.adapter.clone(),
        family: cli.family.clone(),
        limits: cli.limits.clone(),
        validate: cli.validate,
    }
}
