//! The one executor list (`wiring`) serves the whole catalogue: every tool but the planner's
//! `respond` has exactly one executor, and nothing is served that the catalogue does not
//! declare. A tool added to the catalogue without an executor, or wired twice, fails here.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::collections::BTreeMap;

use common::TestHome;
use steward_tools::{Effect, CATALOGUE};

#[test]
fn the_wired_executors_serve_every_catalogue_tool_exactly_once() {
    let home = TestHome::new();
    let cfg = home.config();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let steward = steward_cli::wiring::Steward::open(&cfg).await.unwrap();
        let executors = steward_cli::wiring::executors(steward_cli::wiring::Parts {
            env: steward.env.clone(),
            origin: std::sync::Arc::new(steward_origin::Engine::load().unwrap()),
            store: steward.store.clone(),
            audit: steward.audit.clone(),
            inbox: steward.inbox.clone(),
            clock: steward.clock.clone(),
        });
        let mut served: BTreeMap<&str, String> = BTreeMap::new();
        for e in &executors {
            for tool in e.tools() {
                let spec = steward_tools::find(tool)
                    .unwrap_or_else(|| panic!("{e:?} serves {tool}, not in the catalogue"));
                assert_ne!(
                    spec.effect,
                    Effect::None,
                    "{tool} is served but declares no effect"
                );
                if let Some(other) = served.insert(tool, format!("{e:?}")) {
                    panic!("{tool} is served twice: {other} and {e:?}");
                }
            }
        }
        let unserved: Vec<&str> = CATALOGUE
            .iter()
            .map(|t| t.name)
            .filter(|name| *name != "respond" && !served.contains_key(name))
            .collect();
        assert!(unserved.is_empty(), "no executor serves {unserved:?}");
        assert!(
            !served.contains_key("respond"),
            "respond is the planner's, not an executor's"
        );
        steward.close().await.unwrap();
    });
}
