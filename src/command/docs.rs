//! `lapse completions SHELL` and `lapse man`: a completion script and the
//! lapse(1) manual page, generated from the same clap definitions the
//! flags are parsed with, so neither can drift from `--help`. Writes to
//! standard output only.

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use clap::CommandFactory;
use std::io::Write;

/// Prints the completion script for `args.shell`; 0, or 3 if stdout fails.
pub fn completions(args: &CompletionsArgs) -> i32 {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, "lapse", &mut out);
    print(&out)
}

/// Prints lapse(1) in roff, or lapse-SUBCOMMAND(1) (`lapse man check`),
/// for `man -l -` or a man directory; 3 for a subcommand lapse lacks.
pub fn man(args: &ManArgs) -> i32 {
    let mut command = Cli::command();
    // Names the subcommands as their pages are named: lapse-check.
    command.build();
    let page = match &args.subcommand {
        None => command,
        Some(name) => match command.find_subcommand(name) {
            Some(sub) => sub.clone(),
            None => {
                eprintln!("lapse: no subcommand {name:?}: try lapse --help");
                return super::EXIT_UNKNOWN;
            }
        },
    };
    let mut out = Vec::new();
    if clap_mangen::Man::new(page).render(&mut out).is_err() {
        return super::EXIT_UNKNOWN;
    }
    print(&out)
}

fn print(bytes: &[u8]) -> i32 {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("lapse: cannot write to standard output: {e}");
            super::EXIT_UNKNOWN
        }
    }
}
