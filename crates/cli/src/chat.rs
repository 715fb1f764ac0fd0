//! `steward plan "<text>"`, `steward chat` and `steward warm`: natural language through the
//! planner and the one request path. `plan` shows the proposed call, its validation, the
//! policy decision and the dry-run, and executes nothing. `chat` is a REPL that investigates
//! with read tools, shows each step as it happens (a tool's result one fact per line, a
//! plain-text answer word by word as the model writes it), asks inline when policy wants an
//! approval, and runs. While the person types, it warms the planner's prompt state, and
//! after each request the conversation so far; `warm` does the first ahead of time.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result};
use steward_agent::conversation::{Conversation, Event, Means, Mode};
use steward_agent::{Orchestrator, Outcome};
use steward_exec::env::Env;
use steward_llm::eval::ToolSet;
use steward_llm::{Backend, Inventory, InventoryItem, PlanRequest, TextStream};
use steward_policy::Principal;
use steward_protocol::Origin;

use crate::call;
use crate::config::{Config, Key};
use crate::planner;

/// The inventory the planner sees: `--inventory FILE` (`{"services": [{"name", "kind",
/// "description", "image"}]}`), else the services and tenants Steward manages, read from
/// Docker, each with the image of its newest release.
pub(crate) async fn inventory(env: &Env, file: Option<&Path>) -> Result<Inventory> {
    if let Some(path) = file {
        return Ok(steward_llm::eval::load_inventory(path)?);
    }
    let services = steward_exec::inventory::services(env, None)
        .await
        .context("cannot read the inventory from Docker (or pass --inventory FILE)")?;
    Ok(Inventory {
        services: services
            .into_iter()
            .map(|s| InventoryItem {
                // The newest release's image: "fresco 3.1.0" names its repository.
                image: s
                    .containers
                    .last()
                    .map(|c| c.image.clone())
                    .unwrap_or_default(),
                name: s.name,
                kind: s.kind,
                description: String::new(),
            })
            .collect(),
    })
}

struct Session {
    planner: Arc<dyn Backend>,
    orchestrator: Arc<Orchestrator>,
    tools: Vec<steward_llm::ToolDef>,
    inventory: Inventory,
    principal: Principal,
}

impl Session {
    /// What the planner needs to warm: the tools and the inventory.
    fn warm_request(&self) -> PlanRequest {
        PlanRequest {
            tools: self.tools.clone(),
            inventory: self.inventory.clone(),
            ..PlanRequest::default()
        }
    }

    fn means<'a>(&'a self, stream: Option<&'a TextStream>) -> Means<'a> {
        Means {
            planner: self.planner.as_ref(),
            orchestrator: &self.orchestrator,
            tools: &self.tools,
            inventory: &self.inventory,
            stream,
        }
    }
}

/// Prints a plain-text answer while the model writes it, and remembers what it printed so
/// the finished answer is not printed twice; remembers the last tool output for `/json`.
#[derive(Default)]
struct LiveAnswer {
    shown: Arc<Mutex<String>>,
    verbose: bool,
    last_output: Mutex<Option<serde_json::Value>>,
}

impl LiveAnswer {
    fn stream(&self) -> TextStream {
        let shown = self.shown.clone();
        TextStream(Arc::new(move |piece: &str| {
            let mut shown = shown.lock().unwrap_or_else(PoisonError::into_inner);
            if shown.is_empty() {
                print!("steward> ");
            }
            shown.push_str(piece);
            print!("{piece}");
            let _ = std::io::stdout().flush();
        }))
    }

    /// Shows `e`, ending a streamed answer rather than repeating it. A different final
    /// answer (a fallback backend's) is shown in full.
    fn show(&self, e: &Event) {
        if let Event::Outcome {
            outcome: Outcome::Done { done, .. },
            ..
        } = e
        {
            *self
                .last_output
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(done.output.clone());
        }
        let mut shown = self.shown.lock().unwrap_or_else(PoisonError::into_inner);
        let ends_answer = !matches!(e, Event::Proposed { tool, .. } if tool == "respond");
        if ends_answer && !shown.is_empty() {
            println!();
            let same = matches!(e, Event::Answer { text } if text.trim() == shown.trim());
            shown.clear();
            if same {
                return;
            }
        }
        drop(shown);
        show(e, self.verbose);
    }

    /// The raw output of the last tool that ran, for `/json`.
    fn last_json(&self) -> String {
        match &*self
            .last_output
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            Some(v) => serde_json::to_string_pretty(v).unwrap_or_default(),
            None => "(no tool has run in this conversation yet)".to_string(),
        }
    }
}

async fn session(cfg: &Config, inventory_file: Option<&Path>) -> Result<Session> {
    let principal = Principal::parse(cfg.require(Key::Principal)?)?;
    // The model loads (seconds) while Docker, the stores and the policies open.
    eprintln!("steward: loading the planner model...");
    let loading = {
        let cfg = cfg.clone();
        tokio::task::spawn_blocking(move || planner::backend(&cfg, None))
    };
    // One Docker connection serves both the inventory and the executors.
    let steward = call::steward(cfg)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let inventory = inventory(&steward.env, inventory_file).await?;
    let orchestrator = steward.orchestrator.clone();
    let planner = loading
        .await
        .context("the planner stopped while loading")??;
    Ok(Session {
        planner,
        orchestrator,
        tools: ToolSet::catalogue().with_respond().defs,
        inventory,
        principal,
    })
}

/// `steward plan`: propose and dry-run; exit 0 when a call was planned or answered, 2 when
/// the proposal did not validate, 3 when policy refused it.
pub async fn plan(
    cfg: &Config,
    text: &str,
    inventory_file: Option<&Path>,
    as_json: bool,
) -> Result<ExitCode> {
    let s = session(cfg, inventory_file).await?;
    let mut conv = Conversation::new(s.principal.clone(), Origin::Chat);
    let mut print = |e: &Event| {
        if !as_json {
            show(e, false);
        }
    };
    let events = conv
        .turn(text, s.means(None), Mode::PlanOnly, &mut print)
        .await?;
    s.orchestrator.audit().close().await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&events)?);
    }
    Ok(exit_code(&events))
}

fn exit_code(events: &[Event]) -> ExitCode {
    match events.last() {
        Some(Event::Invalid { .. }) => ExitCode::from(2),
        Some(Event::Outcome {
            outcome: Outcome::Refused { .. },
            ..
        }) => ExitCode::from(3),
        Some(Event::Outcome {
            outcome: Outcome::Failed { .. },
            ..
        }) => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    }
}

/// `steward warm`: loads the planner and saves its prompt state for the live inventory.
pub async fn warm(cfg: &Config, inventory_file: Option<&Path>) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let s = session(cfg, inventory_file).await?;
    s.planner.warm(&s.warm_request()).await?;
    s.orchestrator.audit().close().await?;
    println!(
        "planner warmed for {} services and tenants in {:.1} s",
        s.inventory.services.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Warms the planner for `req` in the background; a request that comes first waits for it.
fn warm_while_typing(planner: &Arc<dyn Backend>, req: PlanRequest) {
    let planner = planner.clone();
    tokio::spawn(async move {
        if let Err(e) = planner.warm(&req).await {
            tracing::warn!("could not warm the planner: {e}");
        }
    });
}

/// `steward chat`: one line per request; `/json` shows the last tool's raw output, `/reset`
/// starts over, `/quit` or end of input leaves.
pub async fn chat(cfg: &Config, inventory_file: Option<&Path>, verbose: bool) -> Result<ExitCode> {
    let s = session(cfg, inventory_file).await?;
    // The prompt state is loaded or decoded while the person types their first request.
    warm_while_typing(&s.planner, s.warm_request());
    let mut conv = Conversation::new(s.principal.clone(), Origin::Chat);
    let live = LiveAnswer {
        verbose,
        ..LiveAnswer::default()
    };
    let stream = live.stream();
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    println!(
        "steward chat as {} ({} services known). Ask in plain words; /json, /reset, /quit.",
        s.principal,
        s.inventory.services.len()
    );
    loop {
        print!("you> ");
        std::io::stdout().flush()?;
        let Some(line) = lines.next() else { break };
        let line = line?;
        let text = line.trim();
        match text {
            "" => continue,
            "/quit" | "/exit" => break,
            "/json" => {
                println!("{}", live.last_json());
                continue;
            }
            "/reset" => {
                conv = Conversation::new(s.principal.clone(), Origin::Chat);
                println!("(new conversation)");
                continue;
            }
            _ => {}
        }
        let mut show_live = |e: &Event| live.show(e);
        let turn = conv.turn(text, s.means(Some(&stream)), Mode::Execute, &mut show_live);
        let events = match turn.await {
            Ok(events) => events,
            Err(e) => {
                println!("steward: {e}");
                continue;
            }
        };
        // The conversation so far is decoded while the person types the next request.
        warm_while_typing(&s.planner, conv.request(s.means(None)));
        if let Some(Event::Outcome {
            outcome: Outcome::PendingApproval { approval, .. },
            ..
        }) = events.last()
        {
            print!("approve {} now? [y/N] ", approval.id);
            std::io::stdout().flush()?;
            let answer = lines.next().transpose()?.unwrap_or_default();
            if answer.trim().eq_ignore_ascii_case("y") {
                match s.orchestrator.approve(&approval.id, &s.principal, None).await {
                    Ok(outcome) => {
                        call::render(&approval.tool, false, false, &outcome);
                    }
                    Err(e) => println!(
                        "steward: {e}\n(another operator can run: steward approve {} --as operator:<name>)",
                        approval.id
                    ),
                }
            } else {
                println!("left pending: steward approve|deny {}", approval.id);
            }
        }
    }
    s.orchestrator.audit().close().await?;
    Ok(ExitCode::SUCCESS)
}

/// Prints one event as it happens; a tool's output one fact per line, or also as raw JSON
/// when `verbose`.
fn show(e: &Event, verbose: bool) {
    match e {
        Event::Proposed {
            tool,
            arguments,
            backend,
            confidence,
            ms,
        } => {
            if tool != "respond" {
                println!("steward> {tool} {arguments}   ({backend}, {ms} ms, confidence {confidence:.2})");
            }
        }
        Event::Invalid { message } => println!("steward> (invalid proposal: {message})"),
        Event::Outcome {
            outcome: Outcome::Done { done, .. },
            ..
        } if !verbose => {
            println!("{}", done.summary);
            for line in steward_llm::facts::beyond(
                &done.summary,
                &done.output,
                steward_llm::facts::FOR_PEOPLE,
            ) {
                println!("  {line}");
            }
        }
        Event::Outcome { tool, outcome } => {
            let dry_run = matches!(outcome, Outcome::Planned { .. });
            call::render(tool, dry_run, false, outcome);
        }
        Event::Answer { text } => println!("steward> {text}"),
        Event::BudgetSpent { steps } => {
            println!("steward> (stopped after {steps} steps without an answer; ask again more precisely)")
        }
    }
}
