//! `policies/hooks.toml`: the shipped file loads, and a bad definition is refused at load
//! with a message that names the hook and what to fix.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::path::Path;

use serde_json::json;
use steward_server::hooks::{sign, verify_signature, HookBook, SignatureError};

#[test]
fn shipped_hooks_load_and_map_the_signup_form() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/hooks.toml");
    let book = HookBook::load(&path).unwrap();
    let signup = book.get("signup").expect("the seed flow's hook is shipped");
    let got = signup
        .extract(&json!({"subdomain": "acme", "plan": "small", "other": [1]}))
        .unwrap();
    assert_eq!(got.fields["subdomain"], json!("acme"));
    assert_eq!(got.fields["plan"], json!("small"));
    assert_eq!(got.fields.len(), 2);
    // A missing file is an empty book, not an error.
    assert!(HookBook::load(Path::new("/nonexistent/hooks.toml"))
        .unwrap()
        .names()
        .next()
        .is_none());
}

#[test]
fn bad_definitions_are_refused_naming_the_problem() {
    let cases = [
        (
            "[hook.Bad]\ndescription = \"x\"\ntext = \"/m\"\n",
            "hook name \"Bad\"",
        ),
        (
            "[hook.alertmanager]\ndescription = \"x\"\ntext = \"/m\"\n",
            "alertmanager",
        ),
        (
            "[hook.a]\ndescription = \"x\"\n",
            "hook a: map at least one field",
        ),
        (
            "[hook.a]\ndescription = \"x\"\nfields = { s = \"subdomain\" }\n",
            "not a JSON Pointer",
        ),
        (
            "[hook.a]\ndescription = \"x\"\ntext = \"m\"\n",
            "not a JSON Pointer",
        ),
        (
            "[hook.a]\ndescription = \"x\"\ntext = \"/m\"\nrun = \"tenant_destroy\"\n",
            "unknown field",
        ),
        ("[hook.a]\ntext = \"/m\"\n", "description"),
        (
            "[hook.a]\ndescription = \"x\"\nfields = { \"a b\" = \"/x\" }\n",
            "field name \"a b\"",
        ),
    ];
    for (text, wanted) in cases {
        let err = HookBook::parse(text, "hooks.toml").unwrap_err().to_string();
        assert!(
            err.contains(wanted),
            "{text:?}: {err:?} should say {wanted:?}"
        );
        assert!(err.starts_with("hooks.toml"), "{err}");
    }
}

#[test]
fn signature_header_forms() {
    let keys = vec![b"whsec_test".to_vec()];
    let key = &keys[0];
    let body = b"{}";
    let good = sign(key, 1_000, body);
    assert_eq!(verify_signature(&good, &keys, body, 1_000), Ok(()));
    // Order and unknown schemes do not matter; a missing t or v1 does.
    let v1 = good.split_once(",v1=").unwrap().1;
    let reordered = format!("v0=abc,v1={v1},t=1000");
    assert_eq!(verify_signature(&reordered, &keys, body, 1_000), Ok(()));
    for bad in [
        "",
        "t=1000",
        &format!("v1={v1}"),
        "t=x,v1=00",
        "t=1000,v1=zz",
        "nonsense",
    ] {
        assert_eq!(
            verify_signature(bad, &keys, body, 1_000),
            Err(SignatureError::Malformed),
            "{bad:?}"
        );
    }
    // No secrets: nothing can match.
    assert_eq!(
        verify_signature(&good, &[], body, 1_000),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_signature(&good, &keys, body, 1_301),
        Err(SignatureError::Stale)
    );
}
