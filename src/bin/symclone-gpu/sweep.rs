//! `symclone-gpu sweep`: plan, run, resume and show a sweep, printing what happened.

use crate::open::{choice, program};
use crate::{Cli, SweepCommand};
use symclone::progress::{Bars, Reporter};
use symclone::Error;

pub(crate) fn sweep(cli: &Cli, command: &SweepCommand) -> Result<(), Error> {
    use symclone::sweep;
    let cell_bars = |total: usize| {
        move |c: &sweep::CellEntry| -> Box<dyn Reporter> {
            Box::new(Bars::with_header(vec![format!(
                "cell {} of {total} ({}): {}",
                c.index + 1,
                c.hash,
                sweep::grid::show(&c.values)
            )]))
        }
    };
    let outcome = match command {
        SweepCommand::Plan { grid, out } => {
            let index = sweep::plan(grid, out)?;
            println!(
                "planned {} cells over {} in {}",
                index.cells.len(),
                index.keys.join(", "),
                out.display()
            );
            return Ok(());
        }
        SweepCommand::Status { dir } => {
            print!("{}", sweep::status_table(&sweep::status(dir)?));
            return Ok(());
        }
        SweepCommand::Run { dir, opts } => {
            let n = sweep::read_index(dir)?.cells.len();
            sweep::run(
                dir,
                &opts.args(),
                &program(cli)?,
                &choice(cli),
                &mut cell_bars(n),
            )?
        }
        SweepCommand::Resume { dir } => {
            let n = sweep::read_index(dir)?.cells.len();
            sweep::resume(dir, &choice(cli), &mut cell_bars(n))?
        }
    };
    if let Some(cmd) = &outcome.command {
        println!("{cmd}");
    }
    if let Some(job) = &outcome.job {
        println!("submitted job {job}: {} cells", outcome.started.len());
    }
    for (i, who) in &outcome.busy {
        println!("cell {i}: left alone, held by {who}");
    }
    println!(
        "{} cells done before, {} {}",
        outcome.done,
        outcome.started.len(),
        if outcome.job.is_some() || outcome.command.is_some() {
            "submitted"
        } else {
            "run"
        }
    );
    if !outcome.failed.is_empty() {
        for (i, why) in &outcome.failed {
            eprintln!("cell {i}: {why}");
        }
        return Err(Error::invalid(format!(
            "{} cells failed (above); `symclone-gpu sweep resume` runs them again",
            outcome.failed.len()
        )));
    }
    Ok(())
}
