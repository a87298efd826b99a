//! What every Prometheus exporter and CLI tool does and lapse must too:
//! durations with units, `--version` naming the build, `process_*`
//! metrics, `--web.telemetry-path`, shell completions and a man page.

use crate::support::*;
use time::macros::datetime;

fn cert_expiring_in(s: &Scratch, name: &str, seconds: i64) {
    let not_after = datetime!(2026-06-01 0:00 UTC) + time::Duration::seconds(seconds);
    let cert = Cert::ca(name, datetime!(2025-01-01 0:00 UTC), not_after);
    s.write(&format!("{name}.pem"), cert.pem);
}

#[test]
fn a_duration_without_a_unit_is_refused_on_the_command_line() {
    let s = Scratch::new();
    cert_expiring_in(&s, "soon", 20 * DAY);

    let bare = s.check().args(["soon.pem", "--warning", "30"]).run();
    bare.assert_code(3);
    assert_eq!(bare.stdout, "");
    assert_eq!(
        bare.stderr.lines().next().unwrap_or_default(),
        "error: invalid value '30' for '--warning <WARNING>': \
         duration \"30\" has no unit: add a unit: 30d (or 30h, 30m, 30s)"
    );

    // Once 30 s and 10 s: nothing was ever in warning.
    let both = s
        .check()
        .args(["soon.pem", "--warning", "30", "--critical", "10"])
        .run();
    both.assert_code(3);
    assert_contains(&both.stderr, "add a unit: 30d");

    let critical = s.check().args(["soon.pem", "--critical", "10"]).run();
    critical.assert_code(3);
    assert_contains(
        &critical.stderr,
        "duration \"10\" has no unit: add a unit: 10d (or 10h, 10m, 10s)",
    );

    // With units, the same numbers mean what they say.
    let days = s
        .check()
        .args(["soon.pem", "--warning", "30d", "--critical", "10d"])
        .json();
    let c = days.credential("soon.pem", None, Some(0));
    assert_eq!(c["status"], "warning");
}

#[test]
fn a_duration_without_a_unit_is_refused_in_lapse_yaml() {
    let s = Scratch::new();
    cert_expiring_in(&s, "soon", 20 * DAY);
    s.write(
        "lapse.yaml",
        "paths: [soon.pem]\nthresholds: {warning: 30, critical: 7d}\n",
    );
    let out = s.check().args(["--config", "lapse.yaml"]).run();
    out.assert_code(3);
    assert_eq!(out.stdout, "");
    assert_contains(
        &out.stderr,
        "thresholds.warning: duration \"30\" has no unit: add a unit: 30d (or 30h, 30m, 30s)",
    );
}

#[test]
fn a_warning_shorter_than_critical_is_refused_naming_both() {
    let s = Scratch::new();
    cert_expiring_in(&s, "soon", 5 * DAY);
    let out = s
        .check()
        .args(["soon.pem", "--warning", "3d", "--critical", "7d"])
        .run();
    out.assert_code(3);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "lapse: --warning (3d) is shorter than --critical (7d): warning must be the longer window\n"
    );
    // The default critical (7d) counts as well.
    let against_default = s.check().args(["soon.pem", "--warning", "2d"]).run();
    against_default.assert_code(3);
    assert_eq!(
        against_default.stderr,
        "lapse: --warning (2d) is shorter than --critical (7d): warning must be the longer window\n"
    );
}

fn git(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn lapse(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_lapse"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .args(args)
        .output()
        .expect("run lapse")
}

#[test]
fn version_names_the_revision_build_date_and_rustc() {
    let out = lapse(&["--version"]);
    let text = assert_success("lapse --version", &out);
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .expect("rustc --version");
    let rustc = String::from_utf8_lossy(&rustc.stdout);
    let revision = env!("LAPSE_REVISION");
    // The date: SOURCE_DATE_EPOCH when the build had it, else the commit's.
    let date = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(epoch) => epoch,
        Err(_) => git(&["log", "-1", "--format=%ct", revision]).expect("git log"),
    };
    let date = time::OffsetDateTime::from_unix_timestamp(date.parse().unwrap())
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(
        text,
        format!(
            "lapse 0.1.0\n  revision:   {revision}\n  build date: {date}\n  rustc:      {}\n  platform:   {}-unknown-linux-gnu\n",
            rustc.trim().trim_start_matches("rustc "),
            std::env::consts::ARCH
        )
    );
    if let Some(head) = git(&["rev-parse", "--short=12", "HEAD"]) {
        assert_eq!(revision, head, "built from HEAD");
    }
    // -V stays short, as clap and every exporter print it.
    assert_eq!(assert_success("lapse -V", &lapse(&["-V"])), "lapse 0.1.0\n");
}

#[test]
fn build_info_carries_the_rust_version() {
    let s = Scratch::new();
    cert_expiring_in(&s, "ok", 90 * DAY);
    let lapse = s.serve().arg("ok.pem").start();
    let m = lapse.metrics();
    let build = m.one("lapse_build_info", &[]);
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .expect("rustc --version");
    let semver = String::from_utf8_lossy(&rustc.stdout)
        .split(' ')
        .nth(1)
        .unwrap_or_default()
        .to_string();
    assert_eq!(build.label("version"), "0.1.0");
    assert_eq!(build.label("revision"), env!("LAPSE_REVISION"));
    assert_eq!(build.label("rustversion"), semver);
    assert_eq!(build.value, 1.0);
}

/// `/proc/<pid>/stat`'s fields from the 3rd on (after the command name).
fn stat_of(pid: u32) -> Vec<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the child's stat");
    text[text.rfind(')').unwrap() + 1..]
        .split_ascii_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect()
}

#[test]
fn process_metrics_are_those_of_the_lapse_process() {
    let s = Scratch::new();
    cert_expiring_in(&s, "ok", 90 * DAY);
    let port = free_port();
    let before = unix_now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lapse"))
        .env_clear()
        .env("HOME", s.home())
        .current_dir(s.path(""))
        .args([
            "serve",
            "--web.listen-address",
            &format!("127.0.0.1:{port}"),
            "ok.pem",
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start lapse serve");
    let pid = child.id();
    let page = (0..250)
        .find_map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            Client::plain()
                .request(port, "GET", "/metrics", &[])
                .ok()
                .filter(|r| r.status == 200)
        })
        .expect("lapse serve answers");
    let after = unix_now();
    let stat = stat_of(pid);
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let max_fds: f64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_ascii_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as f64;
    let _ = child.kill();
    let _ = child.wait();

    let m = Exposition::parse(&page.body);
    assert_eq!(m.value("process_max_fds", &[]), max_fds);
    // The scrape's own connection and the listing's descriptor come and go.
    let open = m.value("process_open_fds", &[]);
    assert!((fds - 2.0..=fds + 2.0).contains(&open), "{open} vs {fds}");
    // proc(5): utime 14, stime 15, vsize 23, rss 24 (fields from 3 on).
    let cpu = (stat[14 - 3] + stat[15 - 3]) as f64 / 100.0;
    let reported_cpu = m.value("process_cpu_seconds_total", &[]);
    assert!(
        (0.0..=cpu).contains(&reported_cpu),
        "{reported_cpu} vs {cpu}"
    );
    // Memory moves as threads (and their stacks) come and go: the same
    // order as what /proc said just after.
    let vsize = stat[23 - 3] as f64;
    let virt = m.value("process_virtual_memory_bytes", &[]);
    assert!(
        (vsize / 2.0..=vsize * 2.0).contains(&virt),
        "{virt} vs {vsize}"
    );
    let rss = stat[24 - 3] as f64 * 4096.0;
    let resident = m.value("process_resident_memory_bytes", &[]);
    assert!(
        (rss / 2.0..=rss * 2.0).contains(&resident),
        "{resident} vs {rss}"
    );
    let start = m.value("process_start_time_seconds", &[]);
    assert!(
        (before as f64 - 1.0..=after as f64 + 1.0).contains(&start),
        "{start} not in [{before}, {after}]"
    );
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        assert_contains(&page.body, &format!("\n# TYPE {name} {kind}\n"));
    }
}

#[test]
fn the_telemetry_path_moves_metrics() {
    let s = Scratch::new();
    cert_expiring_in(&s, "ok", 90 * DAY);
    let lapse = s
        .serve()
        .args(["ok.pem", "--web.telemetry-path", "/lapse/metrics"])
        .start();
    let moved = lapse.get("/lapse/metrics");
    assert_eq!(moved.status, 200);
    assert_contains(&moved.body, "\nlapse_credential_expires_in_seconds{");
    let old = lapse.get("/metrics");
    assert_eq!((old.status, old.body.as_str()), (404, "Not found\n"));
    assert_eq!(lapse.get("/healthz").body, "ok\n");

    let bad = s
        .serve()
        .args(["ok.pem", "--web.telemetry-path", "metrics"])
        .run_to_exit(std::time::Duration::from_secs(10));
    bad.assert_code(3);
    assert_contains(
        &bad.stderr,
        "invalid value 'metrics' for '--web.telemetry-path <PATH>': \
         a path starting with /, without ? or #, e.g. /metrics",
    );
}

/// Runs `script` in bash with lapse's completions sourced.
fn bash_with_completions(script: &str) -> String {
    let out = std::process::Command::new("bash")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LAPSE", env!("CARGO_BIN_EXE_lapse"))
        .args([
            "-c",
            &format!("source <(\"$LAPSE\" completions bash) && {script}"),
        ])
        .output()
        .expect("run bash");
    assert_success("bash with lapse's completions", &out)
}

#[test]
fn bash_sources_the_completions_and_completes_subcommands_flags_and_values() {
    assert_eq!(
        bash_with_completions("complete -p lapse"),
        "complete -o bashdefault -o default -o nosort -F _lapse lapse\n"
    );
    let complete = |words: &str, cword: usize| {
        bash_with_completions(&format!(
            "COMP_WORDS=({words}); COMP_CWORD={cword}; \
             _lapse lapse \"${{COMP_WORDS[$COMP_CWORD]}}\" \"${{COMP_WORDS[$COMP_CWORD-1]}}\"; \
             echo \"${{COMPREPLY[@]}}\""
        ))
    };
    assert_eq!(complete("lapse ch", 1), "check\n");
    assert_eq!(complete("lapse check --war", 2), "--warning\n");
    assert_eq!(complete("lapse check --color ''", 3), "auto always never\n");
    assert_eq!(
        complete("lapse serve --web.tel", 2),
        "--web.telemetry-path\n"
    );
    assert_eq!(
        complete("lapse completions ''", 2),
        "-v -h --verbose --log.level --log.format --log.max-repeats --log.repeat-window --help bash elvish fish powershell zsh\n"
    );
}

#[test]
fn zsh_and_fish_completions_name_every_subcommand() {
    let zsh = assert_success("completions zsh", &lapse(&["completions", "zsh"]));
    assert!(zsh.starts_with("#compdef lapse\n"), "{}", &zsh[..40]);
    assert_contains(
        &zsh,
        "'--web.telemetry-path=[Path under which to expose metrics]:PATH:_default' \\\n",
    );
    let fish = assert_success("completions fish", &lapse(&["completions", "fish"]));
    for sub in ["check", "serve", "completions", "man"] {
        assert_contains(
            &fish,
            &format!("complete -c lapse -n \"__fish_lapse_needs_command\" -f -a \"{sub}\""),
        );
    }
    assert_contains(
        &fish,
        "complete -c lapse -n \"__fish_lapse_using_subcommand serve\" -l web.telemetry-path -d 'Path under which to expose metrics' -r\n",
    );
    let bad = lapse(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(3));
    assert_contains(
        &String::from_utf8_lossy(&bad.stderr),
        "error: invalid value 'tcsh' for '<SHELL>'",
    );
}

/// `lapse man ARGS` rendered by man(1) at 80 columns.
fn man_page(args: &[&str]) -> String {
    let roff = lapse(&[&["man"], args].concat());
    assert_success("lapse man", &roff);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("page.1");
    std::fs::write(&file, &roff.stdout).unwrap();
    // groff's own check: no warning of any kind.
    let groff = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(&file)
        .output()
        .expect("run groff");
    assert_success("groff -ww", &groff);
    assert_eq!(String::from_utf8_lossy(&groff.stderr), "");
    let man = std::process::Command::new("man")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("MANWIDTH", "80")
        .env("MAN_KEEP_FORMATTING", "0")
        .arg("-l")
        .arg(&file)
        .output()
        .expect("run man -l");
    // Without a terminal, grotty still overstrikes bold ("N\bN"): undone.
    let mut text = String::new();
    for c in assert_success("man -l", &man).chars() {
        if c == '\u{8}' {
            text.pop();
        } else {
            text.push(c);
        }
    }
    text
}

#[test]
fn the_man_pages_render_with_every_subcommand_and_flag() {
    let page = man_page(&[]);
    assert!(
        page.starts_with("lapse(1)                    General Commands Manual                   lapse(1)\n\nNAME\n       lapse  -  Finds every certificate and token you depend on and tells you\n       when each lapses\n"),
        "{page}"
    );
    for heading in [
        "\nSYNOPSIS\n",
        "\nOPTIONS\n",
        "\nSUBCOMMANDS\n",
        "\nVERSION\n",
    ] {
        assert_contains(&page, heading);
    }
    for sub in [
        "lapse-check(1)",
        "lapse-serve(1)",
        "lapse-completions(1)",
        "lapse-man(1)",
    ] {
        assert_contains(&page, &format!("\n       {sub}\n"));
    }
    assert_contains(
        &page,
        &format!("\n         revision:   {}\n", env!("LAPSE_REVISION")),
    );

    let check = man_page(&["check"]);
    assert!(check.starts_with("lapse-check(1)"), "{check}");
    assert_contains(&check, "\n       --warning <WARNING>\n");
    let serve = man_page(&["serve"]);
    assert_contains(
        &serve,
        "\n       --web.telemetry-path <PATH> [default: /metrics]\n              Path under which to expose metrics\n",
    );

    let none = lapse(&["man", "nosuch"]);
    assert_eq!(none.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&none.stderr),
        "lapse: no subcommand \"nosuch\": try lapse --help\n"
    );
}

/// Runs `shell args…` on `script` written to a file; its stdout.
fn shell_on(shell: &str, args: &[&str], name: &str, script: &[u8]) -> String {
    assert!(
        std::path::Path::new(&format!("/usr/bin/{shell}")).exists(),
        "/usr/bin/{shell} is missing: apt-get install {shell} (CI installs it in .ci/run)"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), script).unwrap();
    let out = std::process::Command::new(shell)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir.path())
        .env("DIR", dir.path())
        .args(args)
        .current_dir(dir.path())
        .output()
        .expect("run the shell");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{shell} {args:?}");
    assert_success(shell, &out)
}

#[test]
fn zsh_and_fish_accept_their_completion_scripts() {
    let zsh = lapse(&["completions", "zsh"]).stdout;
    shell_on("zsh", &["-n", "_lapse"], "_lapse", &zsh);
    // compinit reads the #compdef line: lapse is completed by _lapse.
    assert_eq!(
        shell_on(
            "zsh",
            &[
                "-fc",
                "fpath=($DIR $fpath); autoload -U compinit; compinit -u -d $DIR/.zcompdump; \
                 print -r -- ${_comps[lapse]}",
            ],
            "_lapse",
            &zsh
        ),
        "_lapse\n"
    );
    let fish = lapse(&["completions", "fish"]).stdout;
    shell_on("fish", &["-n", "lapse.fish"], "lapse.fish", &fish);
    assert_eq!(
        shell_on(
            "fish",
            &["-c", "source lapse.fish; and complete -c lapse | count"],
            "lapse.fish",
            &fish
        )
        .trim()
        .parse::<usize>()
        .map(|n| n > 40),
        Ok(true)
    );
}
