//! The CLI conventions as a user meets them, by running the binary: shell completions (bash loads
//! them), the manual pages (every command has one), exit codes in `--help`, `--color`/`NO_COLOR` on a
//! real terminal (`script` gives the command a pty), `-q`, and `--output json` on every command that
//! prints data, against a live `supactl up`.

#[path = "support/up.rs"]
mod up;

use serde_json::Value;
use std::process::{Command, Output, Stdio};

fn supactl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_supactl"))
        .args(args)
        .env_remove("NO_COLOR")
        .env_remove("SUPACTL_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run supactl")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(&o)
}

/// The subcommands `supactl [PARENT…] --help` lists (its `Commands:` section), `help` aside.
fn subcommands(parent: &[&str]) -> Vec<String> {
    let mut args = parent.to_vec();
    args.push("--help");
    let help = ok(supactl(&args));
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn completions_for_every_shell_name_the_subcommands_and_bash_loads_them() {
    let top = subcommands(&[]);
    assert!(top.len() > 15, "{top:?}");
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let script = ok(supactl(&["completions", shell]));
        for cmd in ["project", "deploy", "completions", "man", "logs"] {
            assert!(script.contains(cmd), "{shell}: no {cmd}");
        }
    }
    // bash parses and registers it, and completes `supactl pro` to `project`
    let o = Command::new("bash")
        .arg("-c")
        .arg(format!(
            r#"source <("{bin}" completions bash) && complete -p supactl &&
               COMP_WORDS=(supactl pro) COMP_CWORD=1 COMP_LINE="supactl pro" COMP_POINT=11 &&
               _supactl supactl pro supactl && echo "${{COMPREPLY[@]}}""#,
            bin = env!("CARGO_BIN_EXE_supactl")
        ))
        .output()
        .unwrap();
    let out = ok(o);
    assert!(out.contains("-F _supactl supactl"), "{out}");
    assert!(
        out.lines()
            .last()
            .unwrap()
            .split(' ')
            .any(|w| w == "project"),
        "{out}"
    );
    // an unknown shell is a usage error
    assert_eq!(supactl(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn the_man_page_covers_every_command() {
    let page = ok(supactl(&["man"]));
    assert!(page.contains(".TH supactl 1"), "{page:.300}");
    assert!(
        page.contains("Exit codes"),
        "the exit codes are in the page"
    );
    for cmd in subcommands(&[]) {
        assert!(
            page.contains(&format!("supactl\\-{cmd}")),
            "no {cmd} in the page"
        );
    }
    // one page per command, nested ones included
    let dir = tempfile::tempdir().unwrap();
    ok(supactl(&["man", "--out-dir", dir.path().to_str().unwrap()]));
    for group in ["project", "worker", "secrets", "functions", "serve"] {
        for cmd in subcommands(&[group]) {
            let file = dir.path().join(format!("supactl-{group}-{cmd}.1"));
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert!(
                text.contains(&format!(".TH supactl-{group}-{cmd} 1")),
                "{}",
                file.display()
            );
        }
    }
    assert!(dir.path().join("supactl-project-keys-create.1").exists());
}

#[test]
fn help_documents_exit_codes_and_usage_errors_exit_2() {
    let help = ok(supactl(&["--help"]));
    for line in [
        "Exit codes:",
        "0  success",
        "1  error",
        "2  usage or configuration error",
        "3  changes pending",
        "NO_COLOR",
    ] {
        assert!(help.contains(line), "{line}: {help}");
    }
    for flags in [
        &["--color", "never", "-q", "--help"][..],
        &["project", "list", "-v", "-v", "--help"],
    ] {
        ok(supactl(flags));
    }
    assert_eq!(supactl(&["--no-such-flag"]).status.code(), Some(2));
    assert_eq!(supactl(&["-q", "-v", "validate"]).status.code(), Some(2));
    assert_eq!(
        supactl(&["--color", "sometimes", "man"]).status.code(),
        Some(2)
    );
}

/// Runs supactl on a pseudo-terminal (util-linux `script`), with `env` set, and returns what it printed.
fn on_terminal(args: &str, env: &[(&str, &str)]) -> String {
    let mut c = Command::new("script");
    c.args([
        "-qec",
        &format!("{} {args}", env!("CARGO_BIN_EXE_supactl")),
        "/dev/null",
    ])
    .env_remove("NO_COLOR")
    .env("TERM", "xterm-256color")
    .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    String::from_utf8_lossy(&c.output().unwrap().stdout).into_owned()
}

#[test]
fn color_only_on_a_terminal_and_never_with_no_color_or_color_never() {
    const ESC: char = '\x1b';
    // help and usage errors on a terminal are coloured…
    let help = on_terminal("--help", &[]);
    assert!(help.contains("Exit codes"), "{help}");
    assert!(help.contains(ESC), "no colour on a terminal: {help:?}");
    let error = on_terminal("plan --no-such-flag", &[]);
    assert!(error.contains(ESC), "{error:?}");
    // …and not with NO_COLOR or --color never
    for (args, env) in [
        ("--help", &[("NO_COLOR", "1")][..]),
        ("plan --no-such-flag", &[("NO_COLOR", "1")]),
        ("--color never --help", &[]),
        ("plan --color=never --no-such-flag", &[]),
    ] {
        let out = on_terminal(args, env);
        assert!(out.len() > 50, "{args}: {out}");
        assert!(!out.contains(ESC), "{args} {env:?}: {out:?}");
    }
    // --color always colours even through a pipe, and wins over NO_COLOR
    let piped = Command::new(env!("CARGO_BIN_EXE_supactl"))
        .args(["--color", "always", "--help"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(stdout(&piped).contains(ESC));
    assert!(!stdout(&supactl(&["--help"])).contains(ESC));
}

/// Every admin command that prints data, with `--output json` (valid JSON of the expected shape) and
/// `--output table` (exit 0, not JSON).
#[test]
fn output_json_on_every_data_command_is_json() {
    let up = up::Up::start(&[]);
    let run = |args: &[&str]| -> Value {
        let mut json = args.to_vec();
        json.extend(["--output", "json"]);
        let out = ok(up.cli(&json));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    };
    let table = |args: &[&str]| {
        let mut t = args.to_vec();
        t.extend(["--output", "table"]);
        let out = ok(up.cli(&t));
        assert!(
            serde_json::from_str::<Value>(&out).is_err(),
            "{args:?}: {out}"
        );
    };
    let created = run(&[
        "project",
        "create",
        "--name",
        "Conventions",
        "--ref",
        "convention",
    ]);
    assert_eq!(created["ref"], "convention");
    let p = "convention";
    // (command, answers an array, may run twice)
    for (args, is_array, again) in [
        (&["project", "list"][..], true, true),
        (&["project", "show", p], false, true),
        (&["project", "update", p, "--name", "Renamed"], false, true),
        (&["project", "health", p], false, true),
        (&["project", "keys", "list", p], true, true),
        (
            &[
                "project", "keys", "create", p, "--type", "secret", "--name", "ci",
            ],
            false,
            false,
        ),
        (&["project", "jwt", "list", p], true, true),
        (&["project", "jwt", "standby", p], false, false),
        (&["secrets", "set", p, "API_TOKEN=abc"], false, false),
        (&["secrets", "list", p], true, true),
        (&["secrets", "unset", p, "API_TOKEN"], false, false),
        (&["functions", "list", p], true, true),
        (&["worker", "list"], true, true),
        (&["worker", "placement"], false, true),
        (&["project", "pause", p], false, false),
        (&["project", "restore", p], false, false),
    ] {
        let v = run(args);
        assert_eq!(v.is_array(), is_array, "{args:?}: {v}");
        if again {
            table(args);
        }
    }
    let workers = run(&["worker", "list"]);
    let id = workers[0]["id"].to_string();
    assert!(run(&["worker", "projects", &id]).is_array());
    let deleted = run(&["project", "delete", p]);
    assert_eq!(deleted["deleted"], true);
}

#[test]
fn build_lists_its_images_as_json_and_quiet_leaves_out_progress() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("supactl");
    let o = Command::new("strip")
        .arg("-o")
        .arg(&bin)
        .arg(env!("CARGO_BIN_EXE_supactl"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let out = dir.path().join("images");
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "build",
            "gateway",
            "--binary",
            bin.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--revision",
            "test",
            "--compression",
            "0",
        ];
        a.extend(extra);
        a.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let run = |a: Vec<String>| supactl(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run(args(&["--output", "json"]));
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let v: Value = serde_json::from_str(&ok(o)).unwrap();
    assert_eq!(v[0]["service"], "gateway", "{v}");
    assert!(v[0]["digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(v[0]["compressed_bytes"].as_u64().unwrap() > 1_000_000);
    assert!(stderr.contains("layer "), "{stderr}");
    // -q: the same result, no progress or informational lines
    let o = run(args(&["-q"]));
    assert!(o.status.success());
    assert!(stdout(&o).contains("gateway  sha256:"));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");
}
