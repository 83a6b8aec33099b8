//! Credentials for the servers' `--web.config.file` in tests.

use std::process::Command;

/// A bcrypt hash of `password` at `cost`, made by Python's `bcrypt` package (the reference
/// implementation), for a web config file's `basic_auth_users`.
pub fn bcrypt_hash(password: &str, cost: u32) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import bcrypt, sys; print(bcrypt.hashpw(sys.argv[1].encode(), bcrypt.gensalt(int(sys.argv[2]))).decode())",
            password,
            &cost.to_string(),
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "Python's bcrypt is missing (scripts/deps.sh installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
