//! `steward token create|list|revoke` and `steward hooks secret` on a test home of their own.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use common::{stderr, stdout, TestHome};
use serde_json::Value;

#[test]
fn token_is_shown_once_listed_without_secret_and_revocable() {
    let home = TestHome::new();
    let out = home.run(&[
        "token",
        "create",
        "--as",
        "webhook:signup",
        "--ttl",
        "90d",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let created: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let token = created["token"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    assert!(token.starts_with("stw_") && token.len() == 68, "{token}");
    assert_eq!(created["principal"], "webhook:signup");
    let ninety_days = 90 * 24 * 3600 * 1000;
    let lifetime =
        created["expires_at"].as_i64().unwrap() - created["created_at"].as_i64().unwrap();
    assert!(
        (ninety_days - 5_000..=ninety_days + 5_000).contains(&lifetime),
        "{lifetime}"
    );

    // Plain output prints the token alone on stdout.
    let out = home.run(&["token", "create", "--as", "operator:alice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).trim().starts_with("stw_"));
    assert!(stderr(&out).contains("never expires"), "{}", stderr(&out));

    let out = home.run(&["token", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = stdout(&out);
    assert!(
        !listed.contains(&token[4..]),
        "list must never show a token"
    );
    let rows: Vec<Value> = serde_json::from_str(&listed).unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["state"] == "active"));
    // Neither does the store: only the hash is kept.
    let db = std::fs::read(home.state_db()).unwrap();
    assert!(!db.windows(32).any(|w| w == &token.as_bytes()[4..36]));

    let out = home.run(&["token", "revoke", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&id));
    let out = home.run(&["token", "list"]);
    let text = stdout(&out);
    let line = text.lines().find(|l| l.contains(&id)).unwrap();
    assert!(line.contains("revoked"), "{line}");

    let out = home.run(&["token", "revoke", "tok_nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("tok_nope"));
}

#[test]
fn token_create_refuses_bad_principal_and_ttl() {
    let home = TestHome::new();
    let out = home.run(&["token", "create", "--as", "nobody"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nobody"), "{}", stderr(&out));
    let out = home.run(&["token", "create", "--as", "webhook:n8n", "--ttl", "soon"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--ttl"), "{}", stderr(&out));
    let out = home.run(&["token", "list"]);
    assert!(
        stdout(&out).contains("no tokens"),
        "nothing was created: {}",
        stdout(&out)
    );
}

#[test]
fn hook_secret_is_created_kept_and_rotated() {
    let home = TestHome::new();
    let out = home.run(&["hooks", "secret", "signup"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let first = stdout(&out).trim().to_string();
    assert!(first.starts_with("whsec_"), "{first}");
    let path = home.dir.join("secrets/hooks/signup");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let out = home.run(&["hooks", "secret", "signup"]);
    assert_eq!(
        stdout(&out).trim(),
        first,
        "without --rotate the secret stays"
    );
    let out = home.run(&["hooks", "secret", "signup", "--rotate"]);
    assert!(out.status.success());
    let second = stdout(&out).trim().to_string();
    assert_ne!(second, first);
    // The previous secret stays valid beside the new one.
    let kept =
        steward_server::hooks::read_secrets(&home.dir.join("secrets/hooks"), "signup").unwrap();
    assert_eq!(kept, vec![second.clone(), first.clone()]);
    let out = home.run(&["hooks", "secret", "signup", "--rotate"]);
    let third = stdout(&out).trim().to_string();
    let kept =
        steward_server::hooks::read_secrets(&home.dir.join("secrets/hooks"), "signup").unwrap();
    assert_eq!(kept, vec![third, second], "the oldest secret is dropped");

    let out = home.run(&["hooks", "secret", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("signup"),
        "names the defined hooks: {}",
        stderr(&out)
    );
    assert!(!home.dir.join("secrets/hooks/nope").exists());
}
