//! `steward plan` and `steward chat` as a user runs them, on the real small model
//! (SmolLM2-135M; accuracy is `steward eval`'s job with the default model).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{stdout, TestHome};
use serde_json::Value;

/// `steward` on a home of the test's own, with the shipped policies and guards.
fn steward(h: &TestHome) -> Command {
    let mut cmd = h.command();
    cmd.env("STEWARD_PLANNER_MODEL", "smollm2-135m-instruct-q4_1");
    cmd
}

#[test]
fn plan_proposes_and_dry_runs_but_executes_nothing() {
    let h = TestHome::with_guards(None);
    let out = steward(&h)
        .args([
            "plan",
            "restart rentguy please",
            "--inventory",
            "evals/inventory.json",
            "--json",
        ])
        .output()
        .unwrap();
    let text = stdout(&out);
    let events: Vec<Value> = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{e}: {text}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(events[0]["event"], "proposed", "{text}");
    let last = events.last().unwrap();
    // Either a question back, or a call that was vetted and only dry-run.
    match last["event"].as_str().unwrap() {
        "answer" => assert!(last["text"].is_string()),
        "outcome" => {
            let status = last["outcome"]["status"].as_str().unwrap();
            assert!(["planned", "refused"].contains(&status), "{text}");
            assert_ne!(status, "done", "plan must never execute");
        }
        "invalid" => assert_eq!(out.status.code(), Some(2)),
        other => panic!("unexpected last event {other}: {text}"),
    }
}

#[test]
fn plan_refuses_empty_and_oversized_text_with_a_clear_error() {
    let h = TestHome::with_guards(None);
    for text in ["", &"x".repeat(10_001)] {
        let out = steward(&h)
            .args(["plan", text, "--inventory", "evals/inventory.json"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("nothing to plan") || err.contains("the limit is 10000"),
            "{err}"
        );
    }
}

/// `steward chat` in a home of its own, with `input` piped at once.
fn chat_with(input: &[u8]) -> std::process::Output {
    let h = TestHome::with_guards(None);
    let mut child = steward(&h)
        .args(["chat", "--inventory", "evals/inventory.json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn chat_answers_line_by_line_and_leaves_on_quit() {
    let out = chat_with(b"write me a poem about the sea\n/quit\n");
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("steward chat as operator:local"), "{text}");
    assert!(text.matches("you> ").count() >= 2, "{text}");
    // Streamed as it is written, or printed whole: either way shown once, not repeated.
    assert_eq!(text.matches("steward> ").count(), 1, "{text}");
}

#[test]
fn chat_answers_a_follow_up_after_the_conversation_so_far_is_warmed() {
    // Piped at once: the second request waits for the warm that the first one started.
    let out = chat_with(b"write me a poem about the sea\nand one about the moon\n/quit\n");
    let text = stdout(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}\n{err}");
    assert_eq!(text.matches("steward> ").count(), 2, "{text}");
    assert!(!err.contains("could not warm"), "{err}");
}
