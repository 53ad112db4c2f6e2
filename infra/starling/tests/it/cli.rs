//! The `starling` binary as an operator uses it.

use std::process::{Command, Output};

fn starling(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_starling"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run starling")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn migrate_creates_the_embedded_store_and_is_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("store");
    let data = data.to_str().expect("utf-8 path");
    for _ in 0..2 {
        let out = starling(&["migrate", "--data-dir", data], &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let version = format!("version {}", starling_store::SCHEMA_VERSION);
        assert!(stdout(&out).contains(&version), "{}", stdout(&out));
    }
    assert!(std::path::Path::new(data).is_dir());
}

#[test]
fn flags_beat_environment_which_beats_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        "node_id = 3\n[limits]\nmax_post_chars = 900\n[store.scylla]\npassword = \"hunter2\"\n",
    )
    .expect("write config");
    let file = file.to_str().expect("utf-8 path");
    let out = starling(
        &["config", "--config", file, "--node-id", "7"],
        &[
            ("STARLING_NODE_ID", "5"),
            ("STARLING_LIMITS__MAX_POST_CHARS", "1200"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(shown["node_id"], 7);
    assert_eq!(shown["limits"]["max_post_chars"], 1200);
    assert_eq!(shown["store"]["scylla"]["password"], "<hidden>");
    assert!(
        !stdout(&out).contains("hunter2"),
        "secrets are never printed"
    );
}

#[test]
fn bad_settings_fail_with_a_clear_message() {
    let out = starling(&["config", "--config", "/nonexistent/starling.toml"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    let out = starling(&["config"], &[("STARLING_STORE__BACKEND", "postgres")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("postgres"));
    let out = starling(&["migrate", "--node-id", "300"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("node_id"));
}
