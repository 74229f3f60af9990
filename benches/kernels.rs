//! `cargo bench`: a thin front-end over `symclone::bench` (the same cases as `symclone-gpu bench`).
//! Arguments after `--`: an optional filter text.

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let gpu = match symclone::Gpu::from_env() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let opts = symclone::bench::Options {
        filter,
        ..Default::default()
    };
    match symclone::bench::run(&gpu, &opts, &mut |r| eprintln!("{} done", r.case)) {
        Ok(rows) => println!("{}", symclone::bench::markdown(&gpu, &rows)),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
