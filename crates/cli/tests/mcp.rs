//! Steward's MCP server driven by the official Python MCP SDK (PyPI `mcp`, a client this
//! project did not write), over both transports: `steward mcp` on stdio, and streamable
//! HTTP at `steward serve`'s `/mcp`. Against a real service on Docker, the client lists the
//! tools (with their hints), calls a read tool (it runs), a write (it waits for a person and
//! says how to approve), a tool its entity does not list (refused by policy, audited) and
//! bad arguments (refused, naming the field).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::serve::*;
use common::*;
use serde_json::Value;
use steward_exec::platform::Platform;

const CLIENT: &str = "mcp:claude-desktop";

fn client_script() -> PathBuf {
    repo_root().join("crates/cli/tests/mcp/client.py")
}

/// Runs the Python client; returns what it printed.
fn run_client(home: &TestHome, args: &[&str]) -> Value {
    let out = Command::new("python3")
        .arg(client_script())
        .args(args)
        .env("STEWARD_HOME", &home.dir)
        .env("STEWARD_POLICIES_DIR", &home.policies)
        .env("STEWARD_LOG", "warn")
        .env_remove("STEWARD_STATE_URL")
        .output()
        .expect("python3 with PyPI's mcp (scripts/setup installs it)");
    assert!(
        out.status.success(),
        "the MCP client failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), stderr(&out)))
}

/// What both transports must show.
fn check_session(home: &TestHome, service: &str, got: &Value) {
    assert_eq!(got["server"], "steward");
    let tools = got["tools"].as_object().unwrap();
    assert_eq!(
        tools.len(),
        steward_tools::CATALOGUE.len() - 1,
        "all but respond"
    );
    assert!(!tools.contains_key("respond"));
    assert_eq!(tools["service_status"]["read_only"], true);
    assert_eq!(tools["service_status"]["destructive"], false);
    assert_eq!(tools["tenant_destroy"]["destructive"], true);
    assert_eq!(tools["tenant_destroy"]["read_only"], false);
    assert_eq!(tools["service_restart"]["required"][0], "service");

    let calls = &got["calls"];
    let status = &calls["0:service_status"];
    assert_eq!(status["is_error"], false, "{status:#}");
    assert_eq!(status["body"]["status"], "done", "{status:#}");
    assert!(status["body"]["result"].to_string().contains(service));

    let restart = &calls["1:service_restart"];
    assert_eq!(restart["body"]["status"], "pending_approval", "{restart:#}");
    let id = restart["body"]["approval"]["id"].as_str().unwrap();
    let message = restart["body"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("steward approve {id}")),
        "{message}"
    );

    let deploy = &calls["2:service_deploy"];
    assert_eq!(deploy["is_error"], true, "{deploy:#}");
    assert_eq!(deploy["body"]["status"], "refused");
    assert_eq!(deploy["body"]["error"]["kind"], "denied", "{deploy:#}");

    let bad = &calls["3:service_status"];
    assert_eq!(bad["is_error"], true);
    assert_eq!(bad["body"]["error"]["kind"], "invalid_args", "{bad:#}");
    assert_eq!(bad["body"]["error"]["field"], "args.service", "{bad:#}");

    // The restart waits for a person, as the client; the refusal is in the audit log.
    let out = home.run(&["approvals", "--json"]);
    let pending: Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = pending
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("{id} not pending: {pending:#}"));
    assert_eq!(a["principal"], CLIENT);
    assert_eq!(a["origin"], "mcp");
    // A running serve indexes new records in the background: search until it shows.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let out = home.run(&["audit", "search", "service_deploy", "--json"]);
        let found = stdout(&out);
        if found.contains(CLIENT) && found.contains("refused") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not audited: {found}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_over_stdio_lists_reads_and_gets_approvals_and_refusals() {
    on_heal_service(
        "mcps",
        async |home: &TestHome, platform: &Platform, service: &str| {
            one_release(home, platform, service).await;
            let bin = env!("CARGO_BIN_EXE_steward");
            let got = run_client(home, &["stdio", service, bin, "mcp", "--as", CLIENT]);
            check_session(home, service, &got);
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_over_streamable_http_behind_a_token() {
    on_heal_service(
        "mcph",
        async |home: &TestHome, platform: &Platform, service: &str| {
            one_release(home, platform, service).await;
            let token = create_token(home, CLIENT);
            let operator = create_token(home, "operator:local");
            let (mut server, base) = start_serve(home);
            let client = reqwest::Client::new();
            wait_ready(&client, &base, &mut server).await;
            // No token, and a token of a principal that is not an MCP client: refused.
            let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#;
            for (token, want) in [(None, 401), (Some(&operator), 403)] {
                let mut req = client
                    .post(format!("{base}/mcp"))
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .body(init);
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                let r = req.send().await.unwrap();
                assert_eq!(r.status().as_u16(), want);
                let body: Value = r.json().await.unwrap();
                assert!(body["error"]["kind"].is_string(), "{body}");
            }
            let got = run_client(home, &["http", service, &format!("{base}/mcp"), &token]);
            check_session(home, service, &got);
            stop_serve(server, home).await;
        },
    )
    .await;
}

/// `service` on one healthy release.
async fn one_release(home: &TestHome, platform: &Platform, service: &str) {
    let spec = steward_cli::demo::spec(&home.config(), service, "v1").unwrap();
    platform
        .ensure_service(&spec, std::time::Duration::from_secs(30))
        .await
        .unwrap();
}
