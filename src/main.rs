use clap::Parser;
use lapse::cli::{Cli, Command};
use lapse::command::{self, EXIT_UNKNOWN};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Usage errors are UNKNOWN (3), not clap's 2, which monitoring reads as CRITICAL.
            let _ = e.print();
            std::process::exit(if e.use_stderr() { EXIT_UNKNOWN } else { 0 });
        }
    };
    lapse::logging::init(cli.log_level(), cli.log_format(), cli.log_limits());
    let code = match cli.command {
        Command::Check(args) => command::check::run(&args),
        Command::Serve(args) => command::serve::run(&args),
        Command::Completions(args) => command::docs::completions(&args),
        Command::Man(args) => command::docs::man(&args),
    };
    std::process::exit(code);
}
