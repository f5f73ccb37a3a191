//! Records what the results depend on: the compiler, the peers' locked
//! versions and the wsmachine commit, as compile-time environment variables.

use std::process::Command;

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-changed=build.rs");

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=PEERS_RUSTC={version}");

    let lock = std::fs::read_to_string(format!("{dir}/Cargo.lock")).unwrap_or_default();
    for (name, var) in [
        ("wsmachine", "PEERS_V_WSMACHINE"),
        ("tungstenite", "PEERS_V_TUNGSTENITE"),
        ("tokio-tungstenite", "PEERS_V_TOKIO_TUNGSTENITE"),
        ("fastwebsockets", "PEERS_V_FASTWEBSOCKETS"),
        ("tokio-websockets", "PEERS_V_TOKIO_WEBSOCKETS"),
        ("hyper", "PEERS_V_HYPER"),
        ("tokio", "PEERS_V_TOKIO"),
    ] {
        println!("cargo:rustc-env={var}={}", locked_version(&lock, name));
    }

    // Read-only: the commit the path dependency was built from (the working
    // tree may differ from it).
    let commit = Command::new("git")
        .args(["-C", &dir, "rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=PEERS_WSMACHINE_COMMIT={commit}");
}

/// The version of `name` in a Cargo.lock (the first one, if several).
fn locked_version(lock: &str, name: &str) -> String {
    let wanted = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted
            && let Some(version) = lines.next()
            && let Some(v) = version.trim().strip_prefix("version = \"")
        {
            return v.trim_end_matches('"').to_string();
        }
    }
    "unknown".into()
}
