//! Shared helpers: the shipped policies, scratch copies of them, and sample calls.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};
use steward_policy::{PolicySet, Principal, VetRequest};
use steward_protocol::{Decision, Origin};
use steward_tools::Call;

pub fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

pub fn shipped() -> PolicySet {
    PolicySet::load_dir(&shipped_dir()).unwrap_or_else(|e| panic!("{e}"))
}

/// A fresh scratch copy of the shipped policy directory; removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "steward-policy-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(shipped_dir()).unwrap() {
            let p = entry.unwrap().path();
            if p.is_file() {
                std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
            }
        }
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.0.join(name), text).unwrap();
    }

    pub fn edit(&self, name: &str, from: &str, to: &str) {
        let p = self.0.join(name);
        let s = std::fs::read_to_string(&p).unwrap();
        assert!(s.contains(from), "{name} does not contain {from:?}");
        std::fs::write(&p, s.replacen(from, to, 1)).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A valid sample call of every catalogue tool.
pub fn sample_args(tool: &str) -> Value {
    match tool {
        "service_list" => json!({}),
        "service_logs" => json!({"service": "rentguy", "since": "10m", "tail": 50}),
        "service_metrics" => json!({"service": "rentguy", "window": "5s"}),
        "service_deploy" => json!({"service": "rentguy", "image": "rentguy:v2"}),
        "service_rollback" => json!({"service": "rentguy", "to": "yesterday"}),
        "service_set_limits" => json!({"service": "rentguy", "memory_mb": 512, "cpus": 1.5}),
        "tenant_check_subdomain" | "tenant_provision" => json!({"subdomain": "shop"}),
        "tenant_destroy" => json!({"tenant": "acme"}),
        "db_backup" | "db_backups_list" => json!({"target": "acme"}),
        "db_verify_backup" => json!({"backup": "acme-20261123T101500Z"}),
        "db_restore" => json!({"target": "acme", "backup": "acme-20261123T101500Z"}),
        "audit_search" => json!({"query": "restart"}),
        "origin_check" => json!({"product": "p-1", "agreement": "uk-eu-tca"}),
        "origin_compare" => json!({"product": "p-1", "agreements": ["uk-eu-tca"]}),
        "notify" => json!({"message": "disk almost full", "severity": "warning"}),
        "respond" => json!({"text": "done"}),
        _ => json!({"service": "rentguy"}),
    }
}

pub fn call(tool: &str, args: Value) -> Call {
    Call::parse(tool, args).unwrap_or_else(|e| panic!("{tool}: {e}"))
}

pub fn vet(set: &PolicySet, principal: &str, call: &Call, origin: Origin, text: bool) -> Decision {
    let principal = Principal::parse(principal).unwrap();
    set.vet(&VetRequest {
        principal: &principal,
        call,
        origin,
        untrusted_text: text,
        hour_utc: 12,
    })
}
