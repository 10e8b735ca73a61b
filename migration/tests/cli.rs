//! The `recents-migration` binary fails in one line, never with a panic, and
//! does not drop every table unless told to in so many words.

use std::process::{Command, Output};

fn migration(url: Option<&str>, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let dir = std::env::temp_dir();
    let mut command = Command::new(env!("CARGO_BIN_EXE_recents-migration"));
    command
        .args(args)
        .current_dir(&dir)
        .env_remove("DATABASE_URL");
    if let Some(url) = url {
        command.env("DATABASE_URL", url);
    }
    for (key, value) in envs {
        command.env(key, value);
    }
    command.output().expect("the migration binary runs")
}

fn one_line(output: &Output, code: i32, needle: &str) {
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("recents-migration: "), "{err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
}

#[test]
fn a_database_that_does_not_answer_is_one_line_and_exit_1() {
    let output = migration(
        Some("postgres://app:s3cret@127.0.0.1:1/x"),
        &["status"],
        &[],
    );
    one_line(&output, 1, "nothing answers at 127.0.0.1:1");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("s3cret"));
}

#[test]
fn without_database_url_it_says_what_to_set() {
    one_line(&migration(None, &["up"], &[]), 2, "set DATABASE_URL");
}

#[test]
fn fresh_refresh_and_reset_need_the_explicit_switch() {
    let path =
        std::env::temp_dir().join(format!("recents-migration-cli-{}.db", std::process::id()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let up = migration(Some(&url), &["up"], &[]);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    for command in ["fresh", "refresh", "reset"] {
        one_line(
            &migration(Some(&url), &[command], &[]),
            2,
            "RECENTS_MIGRATION_DROP_ALL_TABLES=yes",
        );
    }
    // Nothing was dropped: every migration is still applied.
    let status = migration(Some(&url), &["status"], &[]);
    let out = String::from_utf8_lossy(&status.stdout).to_string()
        + &String::from_utf8_lossy(&status.stderr);
    assert!(!out.contains("Pending"), "{out}");
    let reset = migration(
        Some(&url),
        &["reset"],
        &[("RECENTS_MIGRATION_DROP_ALL_TABLES", "yes")],
    );
    assert!(
        reset.status.success(),
        "{}",
        String::from_utf8_lossy(&reset.stderr)
    );
    let _ = std::fs::remove_file(&path);
}
