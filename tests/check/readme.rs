//! The README's first command and its sample output: the contract says a
//! newcomer who runs the command sees exactly that, on any day.

use std::process::Command;

/// The `sh` block that opens the README, and the `text` block after it.
fn opening_blocks(readme: &str) -> (String, String) {
    let block = |from: usize, fence: &str| {
        let start = readme[from..].find(fence).expect("fence") + from + fence.len();
        let end = readme[start..].find("\n```").expect("closing fence") + start;
        (readme[start..end].to_string(), end)
    };
    let (sh, end) = block(0, "```sh\n");
    let (text, _) = block(end, "```text\n");
    (sh, text + "\n")
}

#[test]
fn the_readme_sample_is_what_its_first_command_prints() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("read README.md");
    let (sh, sample) = opening_blocks(&readme);
    let first = sh.lines().next().expect("a first command");
    let command = first.split('#').next().unwrap().trim();
    assert_eq!(
        command,
        "cargo run --release -- check --at 2026-11-27T12:00:00Z examples/demo"
    );
    let second = sh.lines().nth(1).expect("a second command");
    assert_eq!(second.split('#').next().unwrap().trim(), "scripts/test");

    let args: Vec<&str> = command.split_whitespace().skip(4).collect();
    let out = Command::new(env!("CARGO_BIN_EXE_lapse"))
        .args(&args)
        .current_dir(root)
        .env_clear()
        .env("HOME", format!("{root}/target"))
        .output()
        .expect("run lapse");
    // The demo holds a critical credential: the Nagios convention's 2.
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stdout), sample);
}

/// `.ci/run` calls exactly the README's test command.
#[test]
fn ci_runs_the_readme_test_command() {
    let root = env!("CARGO_MANIFEST_DIR");
    let ci = std::fs::read_to_string(format!("{root}/.ci/run")).expect("read .ci/run");
    let calls: Vec<&str> = ci.lines().filter(|l| l.trim() == "scripts/test").collect();
    assert_eq!(calls, ["scripts/test"]);
}
