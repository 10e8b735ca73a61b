//! End to end: the real `recents` binary in a real terminal (tmux), driven
//! by keys and read back from the screen. Opens on a seeded SQLite
//! database, filters to the heavy workspace, opens it, sees its recent
//! workflow, compares with the history, backfills and verifies it, opens
//! the Queue and resets stalled jobs, quits; the terminal is back in
//! cooked mode on the main screen.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A tmux server of our own (its own socket), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "e2e"]).stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        for key in keys {
            assert!(self.run(&["send-keys", "-t", "e2e", key]).status.success());
            // One key at a time: an Esc followed at once by another key would
            // read as Alt+key.
            std::thread::sleep(Duration::from_millis(60));
        }
    }

    fn text(&self, text: &str) {
        assert!(
            self.run(&["send-keys", "-t", "e2e", "-l", text])
                .status
                .success()
        );
    }

    fn wait_for(&self, needle: &str) -> String {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(needle) {
                return screen;
            }
            if started.elapsed() > Duration::from_secs(30) {
                panic!("{needle:?} did not appear within 30 s; the screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn console_in_tmux_opens_a_workspace_backfills_it_opens_the_queue_and_restores_the_terminal_on_quit()
 {
    if !tmux_available() {
        if std::env::var_os("CI").is_some() {
            panic!("tmux is required in CI (.ci/run installs it)");
        }
        eprintln!("skipping the tmux end-to-end test: tmux is not installed");
        return;
    }
    let bin = env!("CARGO_BIN_EXE_recents");
    let dir: PathBuf = std::env::temp_dir().join(format!("recents-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/e2e.db?mode=rwc", dir.display());
    let seeded = Command::new(bin)
        .args(["seed", "--demo", "--heavy-runs", "5000"])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );

    let tmux = Tmux {
        socket: format!("recents-e2e-{}", std::process::id()),
    };
    // After the console exits, the shell prints its exit code and whether
    // the terminal is in cooked mode (`icanon`) or still raw (`-icanon`).
    let shell = format!(
        "DATABASE_URL='{url}' '{bin}'; echo \"recents exited $?\"; \
         stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon; echo 'checks done'; sleep 60"
    );
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "e2e",
        "-x",
        "100",
        "-y",
        "30",
        &shell,
    ]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );

    let screen = tmux.wait_for("nightly-imports");
    assert!(screen.contains("Workspaces · by id"), "{screen}");
    assert!(screen.contains("platform-team"), "{screen}");

    tmux.keys(&["/"]);
    tmux.wait_for("/ ");
    tmux.text("nightly");
    tmux.keys(&["Enter"]);
    tmux.wait_for("name ∋ “nightly”");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("Nightly import");
    assert!(screen.contains("5 000 history runs"), "{screen}");
    assert!(screen.contains("Scope (40 members)"), "{screen}");

    tmux.keys(&["h"]);
    let screen = tmux.wait_for("✓ agree");
    assert!(
        screen.contains("summary ·") && screen.contains("history ·"),
        "{screen}"
    );

    // The Backfill screen: rebuild that workspace's summary, watch it finish,
    // and verify it.
    tmux.keys(&["3"]);
    tmux.wait_for("not started · b starts");
    tmux.keys(&["t"]);
    tmux.wait_for("Target: workspace nightly-imports");
    tmux.keys(&["b"]);
    let screen = tmux.wait_for("done: 5 000 history rows");
    assert!(screen.contains("100.0%"), "{screen}");
    tmux.keys(&["v"]);
    tmux.wait_for("exact: ");

    // The Queue screen: the demo's queue has waiting jobs and workers that
    // died (their heartbeats stopped when the demo was seeded); a reset
    // puts their jobs back in line.
    tmux.keys(&["4"]);
    let screen = tmux.wait_for("Next in line");
    assert!(screen.contains("12 stalled"), "{screen}");
    tmux.keys(&["x"]);
    tmux.wait_for("x again resets the stalled jobs");
    tmux.keys(&["x"]);
    let screen = tmux.wait_for("reset: 12 requeued");
    assert!(screen.contains("0 stalled"), "{screen}");

    tmux.keys(&["q"]);
    let screen = tmux.wait_for("checks done");
    assert!(screen.contains("recents exited 0"), "{screen}");
    let modes: Vec<&str> = screen
        .lines()
        .map(str::trim)
        .filter(|l| *l == "icanon" || *l == "-icanon")
        .collect();
    assert_eq!(modes, ["icanon"], "the terminal is left raw:\n{screen}");
    let alternate = tmux.run(&["display-message", "-p", "-t", "e2e", "#{alternate_on}"]);
    assert_eq!(
        String::from_utf8_lossy(&alternate.stdout).trim(),
        "0",
        "still on the alternate screen"
    );
    drop(tmux);
    let _ = std::fs::remove_dir_all(&dir);
}
