//! Vetting with Cedar: turns one validated call into Allow, NeedsApproval or Deny.
//!
//! Cedar decides access with its own semantics (default deny, forbid overrides permit).
//! Steward adds one convention on top, for approval: a `permit` annotated
//! `@approval("required")` is an *approval rule*. It never grants access by itself; when the
//! request is otherwise allowed and an approval rule matches too, the decision is
//! NeedsApproval. See policies/README.md.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};

use cedar_policy::{
    ActionConstraint, Authorizer, Context, Entities, Entity, EntityTypeName, EntityUid, PolicyId,
    PrincipalConstraint, Request, ResourceConstraint, RestrictedExpression, Schema, SchemaFragment,
    ValidationMode, Validator,
};
use miette::Diagnostic;
use serde_json::{Map, Value};
use steward_protocol::{Decision, Effect, Origin};
use steward_tools::{Call, CATALOGUE};
use tracing::{debug, warn};

use crate::entities::{uid, Directory, ENTITIES_FILE};
use crate::error::{PolicyError, Result};
use crate::examples::{parse_examples, Example};
use crate::principal::Principal;
use crate::resource::Resource;

/// The schema file beside the policies.
pub const SCHEMA_FILE: &str = "steward.cedarschema";

/// The annotation that makes a permit an approval rule, and its only accepted value.
const APPROVAL: &str = "approval";
const APPROVAL_REQUIRED: &str = "required";

/// One call to vet. `untrusted_text` is set by the caller when the call was planned from
/// text no operator wrote (logs, alert annotations, webhook bodies, tool output); together
/// with the origin it decides `context.untrusted`.
#[derive(Debug, Clone, Copy)]
pub struct VetRequest<'a> {
    pub principal: &'a Principal,
    pub call: &'a Call,
    pub origin: Origin,
    pub untrusted_text: bool,
    /// Hour of the day, UTC (0..=23), so policies can restrict risky work to office hours.
    pub hour_utc: u8,
}

impl VetRequest<'_> {
    /// Untrusted is the origin, the text, or the principal: a webhook source or an MCP
    /// client is untrusted whatever origin the caller claims.
    pub fn untrusted(&self) -> bool {
        self.origin.is_untrusted()
            || self.untrusted_text
            || self.principal.kind.is_untrusted_source()
    }
}

/// The Cedar action every answer to an approval request is vetted as.
pub const APPROVE_ACTION: &str = "approve";

/// One answer to vet: may `approver` approve (or deny) `call`, which `requester` proposed
/// from `origin`? Vetted as `Action::"approve"` on the call's resource, so who may answer
/// what is written in policy like everything else (approvers.cedar).
#[derive(Debug, Clone, Copy)]
pub struct ApproveRequest<'a> {
    pub approver: &'a Principal,
    pub requester: &'a Principal,
    pub call: &'a Call,
    /// The origin of the request being answered.
    pub origin: Origin,
    pub untrusted_text: bool,
    pub hour_utc: u8,
}

impl ApproveRequest<'_> {
    /// The request being answered, as it was vetted.
    fn proposal(&self) -> VetRequest<'_> {
        VetRequest {
            principal: self.requester,
            call: self.call,
            origin: self.origin,
            untrusted_text: self.untrusted_text,
            hour_utc: self.hour_utc,
        }
    }
}

/// What is being vetted: a call, or an answer to an approval request for one.
#[derive(Clone, Copy)]
enum Ask<'a> {
    Call(&'a VetRequest<'a>),
    Approve(&'a ApproveRequest<'a>),
}

impl Ask<'_> {
    fn principal(&self) -> &Principal {
        match self {
            Ask::Call(r) => r.principal,
            Ask::Approve(r) => r.approver,
        }
    }

    fn call(&self) -> &Call {
        match self {
            Ask::Call(r) => r.call,
            Ask::Approve(r) => r.call,
        }
    }

    /// The key of the Cedar action in `PolicySet::actions`.
    fn action(&self) -> &'static str {
        match self {
            Ask::Call(r) => r.call.tool(),
            Ask::Approve(_) => APPROVE_ACTION,
        }
    }

    /// How messages name what was asked: `service_restart`, or `approve service_restart`.
    fn what(&self) -> String {
        match self {
            Ask::Call(r) => r.call.tool().to_string(),
            Ask::Approve(r) => format!("approve {}", r.call.tool()),
        }
    }
}

/// Where a policy came from and what it says about itself, for reasons and explanations.
#[derive(Debug, Clone)]
struct PolicyMeta {
    file: PathBuf,
    line: usize,
    reason: Option<String>,
    approval: bool,
}

/// What the schema says about one catalogue tool's action.
#[derive(Debug, Clone)]
struct ActionInfo {
    uid: EntityUid,
    /// The action entity and its groups (`Action::"write"`), which `action in` needs.
    entities: Vec<Entity>,
    /// The `args` attributes the schema declares; other arguments stay out of
    /// `context.args` (they remain visible in `context.args_json`). `None`: pass all.
    declared_args: Option<Vec<String>>,
}

/// The loaded, validated and example-checked policies, with the schema and the known
/// principals. Immutable once loaded: reloading builds a new one, so a running vet never
/// sees a half-updated set.
#[derive(Debug)]
pub struct PolicySet {
    dir: PathBuf,
    schema: Schema,
    policies: cedar_policy::PolicySet,
    meta: HashMap<PolicyId, PolicyMeta>,
    principals: HashMap<Principal, KnownPrincipal>,
    platform_services: HashSet<String>,
    actions: HashMap<&'static str, ActionInfo>,
    cache: PreparedCache,
    /// Whether any policy mentions `args_json`. Serialising the arguments is a noticeable
    /// part of a vet, and nobody can observe the attribute when no policy reads it, so it
    /// is left empty then.
    args_json_used: bool,
    /// Request shapes (principal, tool, resource type, arguments present) that passed
    /// schema validation once.
    validated: Mutex<HashSet<(usize, &'static str, u8, u64)>>,
    authorizer: Authorizer,
    examples: usize,
}

/// Everything `vet` worked out, kept for `explain`.
#[derive(Debug)]
struct Evaluation {
    decision: Decision,
    resource: Option<String>,
    args_json: Option<String>,
}

/// A principal listed in entities.toml, ready for requests.
#[derive(Debug)]
struct KnownPrincipal {
    uid: EntityUid,
    /// Itself and its roles: the entities a request about it needs.
    entities: Vec<Entity>,
    /// Per tool, only the policies whose scope can match this principal and that tool's
    /// action (and resource type). Cedar evaluates every policy it is given, so slicing
    /// keeps a vet proportional to the policies that matter, not to all loaded. Policies
    /// left out could never be satisfied (nor error: the scope is checked before any
    /// condition), so decisions are the same as against the whole set.
    slices: HashMap<&'static str, cedar_policy::PolicySet>,
    /// Position in the directory, a cheap cache key.
    index: usize,
}

/// Bound of the cache of prepared requests (principal × tool × resource).
const CACHE_MAX: usize = 4096;

/// The parts of a request that depend only on (principal, tool, resource).
#[derive(Debug, Clone)]
struct Prepared {
    resource: EntityUid,
    entities: Arc<Entities>,
    policies: Arc<cedar_policy::PolicySet>,
}

type PreparedCache = Mutex<HashMap<(usize, &'static str, Resource), Prepared>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The cache holds no invariant a panic could break; keep using it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PolicySet {
    /// Loads `dir/*.cedar`, `dir/steward.cedarschema` and `dir/entities.toml`; validates
    /// every policy against the schema (strict mode); then runs every file's `@example`
    /// lines against the whole set. Any failure refuses the load, naming the file and line,
    /// so a broken or drifted policy never silently changes what Steward allows.
    pub fn load_dir(dir: &Path) -> Result<PolicySet> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
                path: path.to_path_buf(),
                source,
            })
        };

        let schema_path = dir.join(SCHEMA_FILE);
        let schema_src = read(&schema_path)?;
        let (schema, warnings) =
            Schema::from_cedarschema_str(&schema_src).map_err(|e| PolicyError::Schema {
                path: schema_path.clone(),
                message: format!(
                    "line {}: {}",
                    error_line(&e, &schema_src),
                    render(&e, &schema_src)
                ),
            })?;
        for w in warnings {
            warn!(file = %schema_path.display(), warning = %w, "cedar schema warning");
        }
        let declared = declared_args(&schema_src);

        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|source| PolicyError::Io {
                path: dir.to_path_buf(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "cedar") && p.is_file())
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(PolicyError::Policy {
                path: dir.to_path_buf(),
                line: 0,
                message: "no *.cedar policy files".into(),
            });
        }

        let mut policies = cedar_policy::PolicySet::new();
        let mut meta: HashMap<PolicyId, PolicyMeta> = HashMap::new();
        let mut sources: HashMap<PathBuf, String> = HashMap::new();
        let mut examples: Vec<(PathBuf, Vec<Example>)> = Vec::new();
        for path in &files {
            let src = read(path)?;
            let perr = |line: usize, message: String| PolicyError::Policy {
                path: path.clone(),
                line,
                message,
            };
            let parsed = cedar_policy::PolicySet::from_str(&src)
                .map_err(|e| perr(error_line(&e, &src), render(&e, &src)))?;
            if parsed.num_of_templates() > 0 {
                return Err(perr(
                    0,
                    "templates are not supported; write static policies".into(),
                ));
            }
            let mut count = 0;
            for policy in parsed.policies() {
                count += 1;
                let Some(id) = policy.annotation("id").map(str::to_string) else {
                    return Err(perr(
                        0,
                        format!(
                            "policy #{count} has no @id(\"...\") annotation; every policy needs \
                             one so decisions can name it:\n{policy}"
                        ),
                    ));
                };
                let line = annotation_line(&src, &id);
                if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c == ',') {
                    return Err(perr(
                        line,
                        format!("policy id {id:?} must be non-empty, without spaces or commas"),
                    ));
                }
                let pid = PolicyId::new(&id);
                if let Some(other) = meta.get(&pid) {
                    return Err(perr(
                        line,
                        format!(
                            "duplicate policy id {id:?}, first used at {}:{}",
                            other.file.display(),
                            other.line
                        ),
                    ));
                }
                let approval = match policy.annotation(APPROVAL) {
                    None => false,
                    Some(APPROVAL_REQUIRED) => true,
                    Some(other) => {
                        return Err(perr(
                            line,
                            format!(
                                "policy {id}: @approval({other:?}) is not understood; the only \
                                 value is \"required\""
                            ),
                        ))
                    }
                };
                if approval && policy.effect() != cedar_policy::Effect::Permit {
                    return Err(perr(
                        line,
                        format!(
                            "policy {id}: @approval(\"required\") only applies to permit; \
                             a forbid already denies"
                        ),
                    ));
                }
                meta.insert(
                    pid.clone(),
                    PolicyMeta {
                        file: path.clone(),
                        line,
                        reason: policy.annotation("reason").map(str::to_string),
                        approval,
                    },
                );
                policies
                    .add(policy.new_id(pid))
                    .map_err(|e| perr(line, e.to_string()))?;
            }
            let exs = parse_examples(&src).map_err(|(line, message)| PolicyError::BadExample {
                path: path.clone(),
                line,
                message,
            })?;
            if count > 0 && exs.is_empty() {
                return Err(perr(
                    0,
                    "no `// @example` lines; every policy file carries examples that are \
                     checked when it loads"
                        .into(),
                ));
            }
            examples.push((path.clone(), exs));
            sources.insert(path.clone(), src);
        }

        let validator = Validator::new(schema.clone());
        let result = validator.validate(&policies, ValidationMode::Strict);
        for w in result.validation_warnings() {
            warn!(policy = %w.policy_id(), warning = %w, "cedar validation warning");
        }
        if let Some(first) = result.validation_errors().next() {
            let all: Vec<String> = result
                .validation_errors()
                .map(|e| {
                    let (file, src) = meta
                        .get(e.policy_id())
                        .and_then(|m| sources.get(&m.file).map(|s| (m.file.clone(), s)))
                        .unwrap_or((dir.to_path_buf(), &schema_src));
                    format!(
                        "{}:{}: {}",
                        file.display(),
                        error_line(e, src),
                        render(e, src)
                    )
                })
                .collect();
            let m = meta.get(first.policy_id());
            return Err(PolicyError::Policy {
                path: m
                    .map(|m| m.file.clone())
                    .unwrap_or_else(|| dir.to_path_buf()),
                line: m
                    .and_then(|m| sources.get(&m.file).map(|s| error_line(first, s)))
                    .unwrap_or(0),
                message: format!(
                    "policies do not validate against {SCHEMA_FILE}:\n  {}",
                    all.join("\n  ")
                ),
            });
        }

        let directory = Directory::load(&dir.join(ENTITIES_FILE), &schema)?;
        let actions = action_infos(&schema, &declared).map_err(|message| PolicyError::Schema {
            path: schema_path.clone(),
            message,
        })?;

        let principals =
            slice_by_principal(&policies, &schema, &directory, &actions).map_err(|message| {
                PolicyError::Policy {
                    path: dir.to_path_buf(),
                    line: 0,
                    message,
                }
            })?;

        let set = PolicySet {
            dir: dir.to_path_buf(),
            schema,
            policies,
            meta,
            principals,
            platform_services: directory.platform_services,
            actions,
            cache: Mutex::new(HashMap::new()),
            args_json_used: sources.values().any(|src| src.contains("args_json")),
            validated: Mutex::new(HashSet::new()),
            authorizer: Authorizer::new(),
            examples: 0,
        };
        let checked = set.check_examples(&examples)?;
        Ok(PolicySet {
            examples: checked,
            ..set
        })
    }

    /// Runs every example against the whole set; the first failure refuses the load.
    fn check_examples(&self, files: &[(PathBuf, Vec<Example>)]) -> Result<usize> {
        let mut n = 0;
        for (path, examples) in files {
            for ex in examples {
                let bad = |message: String| PolicyError::BadExample {
                    path: path.clone(),
                    line: ex.line,
                    message,
                };
                let principal =
                    Principal::parse(&ex.request.principal).map_err(|e| bad(e.to_string()))?;
                let call = Call::parse(&ex.request.tool, ex.request.args.clone())
                    .map_err(|e| bad(e.to_string()))?;
                let got = match &ex.request.requester {
                    None => self.vet(&VetRequest {
                        principal: &principal,
                        call: &call,
                        origin: ex.request.origin,
                        untrusted_text: ex.request.untrusted_text,
                        hour_utc: ex.request.hour,
                    }),
                    Some(requester) => self.vet_approve(&ApproveRequest {
                        approver: &principal,
                        requester: &Principal::parse(requester).map_err(|e| bad(e.to_string()))?,
                        call: &call,
                        origin: ex.request.origin,
                        untrusted_text: ex.request.untrusted_text,
                        hour_utc: ex.request.hour,
                    }),
                };
                if ex.check(&got).is_some() {
                    return Err(PolicyError::Example {
                        path: path.clone(),
                        line: ex.line,
                        example: ex.text.clone(),
                        expected: ex.expected(),
                        got: describe(&got),
                    });
                }
                n += 1;
            }
        }
        Ok(n)
    }

    /// Decides one call. Never fails: an unknown principal or tool, a request the schema
    /// refuses, or any error while evaluating a policy is a `Deny` whose reason says so.
    pub fn vet(&self, req: &VetRequest) -> Decision {
        self.evaluate(Ask::Call(req), false, true).decision
    }

    /// Decides whether `req.approver` may answer an approval request for `req.call`.
    /// Never fails, like [`PolicySet::vet`]: an unknown approver is a `Deny`.
    pub fn vet_approve(&self, req: &ApproveRequest) -> Decision {
        self.evaluate(Ask::Approve(req), false, true).decision
    }

    /// The decision with why: the deciding policies with their file, line and reason, the
    /// Cedar request (principal, action, resource) and the context the policies saw.
    pub fn explain(&self, req: &VetRequest) -> String {
        self.check(req).1
    }

    /// [`PolicySet::vet`] and [`PolicySet::explain`] in one evaluation, for `steward policy
    /// check`, which prints both.
    pub fn check(&self, req: &VetRequest) -> (Decision, String) {
        let ev = self.evaluate(Ask::Call(req), true, true);
        let mut out = String::new();
        let _ = writeln!(out, "decision: {}", describe(&ev.decision));
        for id in ev.decision.policies() {
            if let Some(m) = self.meta.get(&PolicyId::new(id)) {
                let _ = writeln!(
                    out,
                    "  {id}{} ({}:{}){}",
                    if m.approval { " [approval rule]" } else { "" },
                    m.file.strip_prefix(&self.dir).unwrap_or(&m.file).display(),
                    m.line,
                    m.reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                );
            }
        }
        let _ = writeln!(
            out,
            "request:  {} -> Action::\"{}\" on {}",
            req.principal,
            req.call.tool(),
            ev.resource.as_deref().unwrap_or("?")
        );
        let _ = writeln!(
            out,
            "context:  origin={} untrusted={} untrusted_text={} hour={} effect={}",
            origin_name(req.origin),
            req.untrusted(),
            req.untrusted_text,
            req.hour_utc,
            effect_name(req.call.spec().effect),
        );
        if let Some(args) = ev.args_json {
            let _ = writeln!(out, "args:     {args}");
        }
        (ev.decision, out)
    }

    /// The ids of all loaded policies, sorted.
    pub fn policy_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.meta.keys().map(ToString::to_string).collect();
        ids.sort();
        ids
    }

    /// Number of policies loaded (approval rules included).
    pub fn len(&self) -> usize {
        self.policies.num_of_policies()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of `@example` lines that were checked when the set loaded.
    pub fn examples_checked(&self) -> usize {
        self.examples
    }

    /// Whether `principal` is listed in entities.toml (any other is denied outright).
    pub fn knows(&self, principal: &Principal) -> bool {
        self.principals.contains_key(principal)
    }

    /// The directory the set was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `sliced: false` evaluates against every loaded policy instead of the slice for this
    /// principal, tool and resource; tests use it to prove slicing changes no decision.
    fn evaluate(&self, ask: Ask, explain: bool, sliced: bool) -> Evaluation {
        let mut ev = Evaluation {
            decision: deny(vec![], String::new()),
            resource: None,
            args_json: None,
        };
        let principal = ask.principal();
        let tool = ask.call().tool();
        let fail = |mut ev: Evaluation, reason: String| {
            warn!(%principal, tool, reason = %reason, "vet denied (fail closed)");
            ev.decision = deny(vec![], reason);
            ev
        };

        let Some(known) = self.principals.get(principal) else {
            // Expected in normal operation (and in examples): not worth a warning.
            debug!(%principal, tool, "vet denied: unknown principal");
            ev.decision = deny(
                vec![],
                format!("unknown principal {principal}: it is not listed in {ENTITIES_FILE}"),
            );
            return ev;
        };
        if let Ask::Call(req) = ask {
            if !principal.kind.origins().contains(&req.origin) {
                let allowed: Vec<&str> = principal
                    .kind
                    .origins()
                    .iter()
                    .map(|o| origin_name(*o))
                    .collect();
                ev.decision = deny(
                    vec![],
                    format!(
                        "{principal} cannot send a request with origin {}: a {} principal \
                         arrives only with origin {}",
                        origin_name(req.origin),
                        principal.kind.prefix(),
                        allowed.join(" or ")
                    ),
                );
                return ev;
            }
        }
        let key = ask.action();
        let (Some(action), Some(policies)) = (self.actions.get(key), known.slices.get(key)) else {
            return fail(
                ev,
                format!("{key} has no action in {SCHEMA_FILE} (fail closed)"),
            );
        };

        let args = ask.call().args_json();
        if explain {
            ev.args_json = Some(args.to_string());
        }
        let resource = Resource::of_args(&args);
        let resource_kind = resource.kind();
        let prepared = match self.prepare(known, key, action, policies, resource) {
            Ok(found) => found,
            Err(e) => return fail(ev, format!("{e} (fail closed)")),
        };
        let resource_uid = prepared.resource.clone();
        if explain {
            ev.resource = Some(resource_uid.to_string());
        }

        let built = match ask {
            Ask::Call(req) => build_context(
                req,
                &args,
                action.declared_args.as_deref(),
                self.args_json_used,
            ),
            Ask::Approve(req) => build_approve_context(req, &args, self.args_json_used),
        };
        let (context, shape) = match built {
            Ok(c) => c,
            Err(e) => {
                return fail(
                    ev,
                    format!("cannot build the call's context: {e} (fail closed)"),
                )
            }
        };
        // Validating a request against the schema costs as much as evaluating it. Its outcome
        // depends only on the principal, the action, the resource type and which arguments
        // are present (their types are fixed by the tool's typed struct), so each such shape
        // is validated once; an unvalidated shape always is.
        let shape = shape.map(|args| (known.index, key, resource_kind, args));
        let validated = shape.is_some_and(|k| lock(&self.validated).contains(&k));
        let request = match Request::new(
            known.uid.clone(),
            action.uid.clone(),
            resource_uid.clone(),
            context,
            (!validated).then_some(&self.schema),
        ) {
            Ok(r) => {
                if let (false, Some(k)) = (validated, shape) {
                    let mut done = lock(&self.validated);
                    if done.len() >= CACHE_MAX {
                        done.clear();
                    }
                    done.insert(k);
                }
                r
            }
            Err(e) => {
                return fail(
                    ev,
                    format!("the request does not match {SCHEMA_FILE}: {e} (fail closed)"),
                )
            }
        };
        let response = self.authorizer.is_authorized(
            &request,
            if sliced {
                &prepared.policies
            } else {
                &self.policies
            },
            &prepared.entities,
        );
        ev.decision = self.interpret(ask, &response, &resource_uid);
        ev
    }

    /// What one request is evaluated against: the entity store (the principal with its
    /// roles, the action with its groups, the resource) and the policies whose scope can
    /// match this very resource. Building these is the costliest step of a vet, and the
    /// same few (principal, tool, resource) triples recur, so they are cached; the cache is
    /// emptied when it reaches [`CACHE_MAX`] entries.
    fn prepare(
        &self,
        known: &KnownPrincipal,
        tool: &'static str,
        action: &ActionInfo,
        slice: &cedar_policy::PolicySet,
        resource: Resource,
    ) -> std::result::Result<Prepared, String> {
        let key = (known.index, tool, resource);
        if let Some(hit) = lock(&self.cache).get(&key) {
            return Ok(hit.clone());
        }
        let entity = key
            .2
            .entity(&self.platform_services)
            .map_err(|e| format!("cannot build the resource: {e}"))?;
        let uid = entity.uid();
        let entities = Entities::from_entities(
            known
                .entities
                .iter()
                .chain(action.entities.iter())
                .cloned()
                .chain(std::iter::once(entity)),
            None,
        )
        .map_err(|e| format!("cannot assemble entities: {e}"))?;
        // Resources have no parents, so `resource in X` holds only for X itself.
        let mut policies = cedar_policy::PolicySet::new();
        for policy in slice.policies() {
            let fits = match policy.resource_constraint() {
                ResourceConstraint::Any | ResourceConstraint::Is(_) => true,
                ResourceConstraint::Eq(u) | ResourceConstraint::In(u) => u == uid,
                ResourceConstraint::IsIn(t, u) => &t == uid.type_name() && u == uid,
            };
            if fits {
                policies.add(policy.clone()).map_err(|e| e.to_string())?;
            }
        }
        let found = Prepared {
            resource: uid,
            entities: Arc::new(entities),
            policies: Arc::new(policies),
        };
        let mut cache = lock(&self.cache);
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(key, found.clone());
        Ok(found)
    }

    /// Cedar's answer in Steward's terms: errors deny; a Cedar deny stays a deny; a Cedar
    /// allow is NeedsApproval when an approval rule matched, and a deny when only approval
    /// rules matched (they grant nothing).
    fn interpret(
        &self,
        ask: Ask,
        response: &cedar_policy::Response,
        resource_uid: &EntityUid,
    ) -> Decision {
        let principal = ask.principal();
        let tool = ask.what();
        let diagnostics = response.diagnostics();
        let mut errored: Vec<String> = Vec::new();
        let mut errors: Vec<String> = Vec::new();
        for e in diagnostics.errors() {
            let cedar_policy::AuthorizationError::PolicyEvaluationError(pe) = e;
            errored.push(pe.policy_id().to_string());
            errors.push(format!("{}: {}", pe.policy_id(), pe.inner()));
        }
        if !errors.is_empty() {
            errored.sort();
            errored.dedup();
            errors.sort();
            warn!(%principal, tool, errors = %errors.join("; "), "policy evaluation error");
            return deny(
                errored,
                format!(
                    "policy evaluation failed ({}); failing closed",
                    errors.join("; ")
                ),
            );
        }

        let mut matched: Vec<(String, bool)> = diagnostics
            .reason()
            .map(|id| {
                (
                    AsRef::<str>::as_ref(id).to_owned(),
                    self.meta.get(id).is_some_and(|m| m.approval),
                )
            })
            .collect();
        matched.sort();

        match response.decision() {
            cedar_policy::Decision::Deny => {
                let ids: Vec<String> = matched.into_iter().map(|(id, _)| id).collect();
                if ids.is_empty() {
                    deny(
                        ids,
                        format!(
                            "no policy permits {principal} to {tool} on {resource_uid} (default deny)"
                        ),
                    )
                } else {
                    let reason = self.reasons(&ids, "forbidden by");
                    deny(ids, reason)
                }
            }
            cedar_policy::Decision::Allow => {
                let (approvals, grants): (Vec<_>, Vec<_>) =
                    matched.into_iter().partition(|(_, approval)| *approval);
                let approvals: Vec<String> = approvals.into_iter().map(|(id, _)| id).collect();
                let grants: Vec<String> = grants.into_iter().map(|(id, _)| id).collect();
                if grants.is_empty() {
                    deny(
                        vec![],
                        format!(
                            "no policy permits {principal} to {tool} on {resource_uid} (default \
                             deny; approval rules {} match but grant nothing)",
                            approvals.join(", ")
                        ),
                    )
                } else if approvals.is_empty() {
                    Decision::Allow { policies: grants }
                } else {
                    let reason = self.reasons(&approvals, "approval required by");
                    let mut policies = approvals;
                    policies.extend(grants);
                    Decision::NeedsApproval { policies, reason }
                }
            }
        }
    }

    /// `"<lead> a (reason a); b (reason b)"`, from the policies' `@reason` annotations.
    fn reasons(&self, ids: &[String], lead: &str) -> String {
        let parts: Vec<String> = ids
            .iter()
            .map(|id| {
                match self
                    .meta
                    .get(&PolicyId::new(id))
                    .and_then(|m| m.reason.as_deref())
                {
                    Some(r) => format!("{id} ({r})"),
                    None => id.clone(),
                }
            })
            .collect();
        format!("{lead} {}", parts.join("; "))
    }
}

fn deny(policies: Vec<String>, reason: String) -> Decision {
    Decision::Deny { policies, reason }
}

/// `needs_approval by a,b: reason` — how examples and explanations print a decision.
pub fn describe(d: &Decision) -> String {
    let kind = crate::examples::DecisionKind::of(d);
    let by = if d.policies().is_empty() {
        String::new()
    } else {
        format!(" by {}", d.policies().join(","))
    };
    match d {
        Decision::Allow { .. } => format!("{kind}{by}"),
        Decision::NeedsApproval { reason, .. } | Decision::Deny { reason, .. } => {
            format!("{kind}{by}: {reason}")
        }
    }
}

/// The context record policies see (documented in steward.cedarschema), built directly as
/// Cedar values: parsing it from JSON against the schema costs several times more.
///
/// Also returns which declared arguments are present, as a bit set over the sorted declared
/// names, or `None` when that cannot be said (arguments not declared by the schema).
fn build_context(
    req: &VetRequest,
    args: &Value,
    declared: Option<&[String]>,
    args_json_used: bool,
) -> std::result::Result<(Context, Option<u64>), String> {
    let mut cedar_args = Vec::new();
    let mut present = declared.map(|_| 0u64);
    if let Value::Object(fields) = args {
        for (k, v) in fields {
            if let Some(d) = declared {
                match d.binary_search(k) {
                    Ok(i) if i < 64 => present = present.map(|p| p | (1 << i)),
                    Ok(_) => present = None,
                    Err(_) => continue,
                }
            }
            match to_cedar(v).map_err(|e| format!("argument {k}: {e}"))? {
                Some(v) => cedar_args.push((k.clone(), v)),
                // Absent, so not part of the shape.
                None => {
                    if let (Some(d), Some(p)) = (declared, present.as_mut()) {
                        if let Ok(i) = d.binary_search(k) {
                            *p &= !(1u64 << i);
                        }
                    }
                }
            }
        }
    }
    let s = |v: &str| RestrictedExpression::new_string(v.to_string());
    // A Vec handed over whole: each iterator adapter in between would move every
    // (large) expression once more.
    let pairs: Vec<(String, RestrictedExpression)> = vec![
        (
            "args".to_string(),
            RestrictedExpression::new_record(cedar_args).map_err(|e| e.to_string())?,
        ),
        (
            "args_json".to_string(),
            if args_json_used {
                s(&args.to_string())
            } else {
                s("")
            },
        ),
        ("tool".to_string(), s(req.call.tool())),
        ("effect".to_string(), s(effect_name(req.call.spec().effect))),
        ("origin".to_string(), s(origin_name(req.origin))),
        (
            "untrusted".to_string(),
            RestrictedExpression::new_bool(req.untrusted()),
        ),
        (
            "untrusted_text".to_string(),
            RestrictedExpression::new_bool(req.untrusted_text),
        ),
        (
            "hour".to_string(),
            RestrictedExpression::new_long(i64::from(req.hour_utc)),
        ),
    ];
    let context = Context::from_pairs(pairs).map_err(|e| e.to_string())?;
    Ok((context, present))
}

/// The context of an answer to an approval request (ApproveCtx in steward.cedarschema).
/// Its shape never varies, so it is validated once per (approver, resource type).
fn build_approve_context(
    req: &ApproveRequest,
    args: &Value,
    args_json_used: bool,
) -> std::result::Result<(Context, Option<u64>), String> {
    let s = |v: &str| RestrictedExpression::new_string(v.to_string());
    let proposal = req.proposal();
    let pairs: Vec<(String, RestrictedExpression)> = vec![
        (
            "args_json".to_string(),
            s(if args_json_used {
                args.to_string()
            } else {
                String::new()
            }
            .as_str()),
        ),
        ("tool".to_string(), s(req.call.tool())),
        ("effect".to_string(), s(effect_name(req.call.spec().effect))),
        ("origin".to_string(), s(origin_name(req.origin))),
        ("requester".to_string(), s(&req.requester.to_string())),
        (
            "self_approval".to_string(),
            RestrictedExpression::new_bool(req.requester == req.approver),
        ),
        (
            "untrusted".to_string(),
            RestrictedExpression::new_bool(proposal.untrusted()),
        ),
        (
            "hour".to_string(),
            RestrictedExpression::new_long(i64::from(req.hour_utc)),
        ),
    ];
    let context = Context::from_pairs(pairs).map_err(|e| e.to_string())?;
    Ok((context, Some(0)))
}

/// The names the protocol serialises these enums as, which is what policies compare with.
fn effect_name(e: Effect) -> &'static str {
    match e {
        Effect::None => "none",
        Effect::Read => "read",
        Effect::Write => "write",
        Effect::Destructive => "destructive",
    }
}

fn origin_name(o: Origin) -> &'static str {
    match o {
        Origin::Chat => "chat",
        Origin::Webhook => "webhook",
        Origin::Alert => "alert",
        Origin::Monitor => "monitor",
        Origin::Mcp => "mcp",
        Origin::Api => "api",
        Origin::Schedule => "schedule",
    }
}

/// Maps JSON onto Cedar's value model: integers stay longs, fractions become decimals (four
/// places, as Cedar's decimal allows), nulls disappear (optional attributes are absent).
fn to_cedar(v: &Value) -> std::result::Result<Option<RestrictedExpression>, String> {
    Ok(Some(match v {
        Value::Null => return Ok(None),
        Value::Bool(b) => RestrictedExpression::new_bool(*b),
        Value::String(s) => RestrictedExpression::new_string(s.clone()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                RestrictedExpression::new_long(i)
            } else if n.is_u64() {
                return Err(format!("{n} is too large for a Cedar long"));
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if !f.is_finite() || f.abs() >= 9.0e14 {
                    return Err(format!("{n} cannot be a Cedar decimal"));
                }
                RestrictedExpression::new_decimal(format!("{f:.4}"))
            }
        }
        Value::Array(items) => RestrictedExpression::new_set(
            items
                .iter()
                .map(to_cedar)
                .collect::<std::result::Result<Vec<_>, _>>()?
                .into_iter()
                .flatten(),
        ),
        Value::Object(fields) => {
            let mut out = Vec::with_capacity(fields.len());
            for (k, v) in fields {
                if let Some(v) = to_cedar(v)? {
                    out.push((k.clone(), v));
                }
            }
            RestrictedExpression::new_record(out).map_err(|e| e.to_string())?
        }
    }))
}

/// For every known principal and tool, the policies whose scope can match them.
fn slice_by_principal(
    all: &cedar_policy::PolicySet,
    schema: &Schema,
    directory: &Directory,
    actions: &HashMap<&'static str, ActionInfo>,
) -> std::result::Result<HashMap<Principal, KnownPrincipal>, String> {
    let mut out = HashMap::new();
    for (index, (principal, entities)) in directory.principals.iter().enumerate() {
        let Some(me) = entities.first() else {
            continue;
        };
        let uid = me.uid();
        let roles: HashSet<EntityUid> = entities.iter().skip(1).map(Entity::uid).collect();
        let mut slices = HashMap::new();
        for (tool, action) in actions {
            let groups: HashSet<EntityUid> =
                action.entities.iter().skip(1).map(Entity::uid).collect();
            let resource_types: Vec<EntityTypeName> = schema
                .resources_for_action(&action.uid)
                .map(|types| types.cloned().collect())
                .unwrap_or_default();
            let mut slice = cedar_policy::PolicySet::new();
            for policy in all.policies() {
                let principal_ok = match policy.principal_constraint() {
                    PrincipalConstraint::Any => true,
                    PrincipalConstraint::Eq(u) => u == uid,
                    PrincipalConstraint::In(u) => u == uid || roles.contains(&u),
                    PrincipalConstraint::Is(t) => &t == uid.type_name(),
                    PrincipalConstraint::IsIn(t, u) => {
                        &t == uid.type_name() && (u == uid || roles.contains(&u))
                    }
                };
                let action_ok = match policy.action_constraint() {
                    ActionConstraint::Any => true,
                    ActionConstraint::Eq(u) => u == action.uid,
                    ActionConstraint::In(us) => {
                        us.iter().any(|u| *u == action.uid || groups.contains(u))
                    }
                };
                let resource_ok = match policy.resource_constraint() {
                    ResourceConstraint::Is(t) | ResourceConstraint::IsIn(t, _) => {
                        resource_types.contains(&t)
                    }
                    _ => true,
                };
                if principal_ok && action_ok && resource_ok {
                    slice.add(policy.clone()).map_err(|e| e.to_string())?;
                }
            }
            slices.insert(*tool, slice);
        }
        out.insert(
            principal.clone(),
            KnownPrincipal {
                uid,
                entities: entities.clone(),
                slices,
                index,
            },
        );
    }
    Ok(out)
}

/// The action entity and groups of each catalogue tool the schema declares.
fn action_infos(
    schema: &Schema,
    declared: &HashMap<String, HashSet<String>>,
) -> std::result::Result<HashMap<&'static str, ActionInfo>, String> {
    let all = schema.action_entities().map_err(|e| e.to_string())?;
    let mut out = HashMap::new();
    for spec in CATALOGUE {
        let uid = uid("Action", spec.name)?;
        let Some(entity) = all.get(&uid) else {
            warn!(
                tool = spec.name,
                "tool has no Cedar action; its calls are denied"
            );
            continue;
        };
        let mut entities = vec![entity.clone()];
        if let Some(ancestors) = all.ancestors(&uid) {
            entities.extend(ancestors.filter_map(|a| all.get(a).cloned()));
        }
        out.insert(
            spec.name,
            ActionInfo {
                uid,
                entities,
                declared_args: declared.get(spec.name).map(|d| {
                    let mut v: Vec<String> = d.iter().cloned().collect();
                    v.sort();
                    v
                }),
            },
        );
    }
    // Without it every answer to an approval request is denied (fail closed).
    let approve = uid("Action", APPROVE_ACTION)?;
    match all.get(&approve) {
        Some(entity) => {
            let mut entities = vec![entity.clone()];
            if let Some(ancestors) = all.ancestors(&approve) {
                entities.extend(ancestors.filter_map(|a| all.get(a).cloned()));
            }
            out.insert(
                APPROVE_ACTION,
                ActionInfo {
                    uid: approve,
                    entities,
                    declared_args: None,
                },
            );
        }
        None => warn!("the schema has no approve action; every approval is denied"),
    }
    Ok(out)
}

/// For each action, the attribute names of `context.args`, read from the JSON form of the
/// schema (following common-type references). Actions it cannot resolve get every argument.
fn declared_args(schema_src: &str) -> HashMap<String, HashSet<String>> {
    let mut out = HashMap::new();
    let Ok((fragment, _)) = SchemaFragment::from_cedarschema_str(schema_src) else {
        return out;
    };
    let Ok(json) = fragment.to_json_value() else {
        return out;
    };
    let Some(namespaces) = json.as_object() else {
        return out;
    };
    for ns in namespaces.values() {
        let empty = Map::new();
        let common = ns
            .get("commonTypes")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let Some(actions) = ns.get("actions").and_then(Value::as_object) else {
            continue;
        };
        for (name, action) in actions {
            let args = action
                .pointer("/appliesTo/context")
                .and_then(|c| resolve_record(c, common))
                .and_then(|r| r.pointer("/attributes/args"))
                .and_then(|a| resolve_record(a, common))
                .and_then(|r| r.get("attributes"))
                .and_then(Value::as_object);
            if let Some(attrs) = args {
                out.insert(name.clone(), attrs.keys().cloned().collect());
            }
        }
    }
    out
}

fn resolve_record<'a>(ty: &'a Value, common: &'a Map<String, Value>) -> Option<&'a Value> {
    let mut t = ty;
    for _ in 0..16 {
        let kind = t.get("type")?.as_str()?;
        t = match kind {
            "Record" => return Some(t),
            "EntityOrCommon" => common.get(t.get("name")?.as_str()?)?,
            other => common.get(other)?,
        };
    }
    None
}

/// Line of `@id("<id>")` in a policy file, for pointing at a policy.
fn annotation_line(src: &str, id: &str) -> usize {
    let needle = format!("\"{id}\"");
    src.lines()
        .position(|l| l.contains("@id") && l.contains(&needle))
        .map_or(0, |i| i + 1)
}

/// The 1-based line of the first labelled span of a Cedar diagnostic.
fn error_line(e: &dyn Diagnostic, src: &str) -> usize {
    e.labels()
        .and_then(|mut l| l.next())
        .map(|l| l.offset())
        .filter(|&o| o <= src.len())
        .map_or(0, |o| src[..o].bytes().filter(|&b| b == b'\n').count() + 1)
}

/// A Cedar diagnostic as one message: its text, the quoted source, and its help.
fn render(e: &dyn Diagnostic, src: &str) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let _ = write!(msg, ": {s}");
        source = s.source();
    }
    if let Some(span) = e.labels().and_then(|mut l| l.next()) {
        let (o, len) = (span.offset(), span.len());
        if let Some(snippet) = src.get(o..o + len.min(120)) {
            let _ = write!(msg, " (at `{}`)", snippet.trim());
        }
    }
    if let Some(help) = e.help() {
        let _ = write!(msg, "; help: {help}");
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shipped_schema() -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../policies")
            .join(SCHEMA_FILE);
        std::fs::read_to_string(p).unwrap()
    }

    /// The Cedar schema must keep up with the tool catalogue: every tool has an action, and
    /// every argument of its typed struct is declared, so policies can see all of them.
    #[test]
    fn schema_declares_every_tool_and_argument() {
        let src = shipped_schema();
        let declared = declared_args(&src);
        let (schema, _) = Schema::from_cedarschema_str(&src).unwrap();
        let infos = action_infos(&schema, &declared).unwrap();
        for spec in CATALOGUE {
            let info = infos
                .get(spec.name)
                .unwrap_or_else(|| panic!("{} has no action in the schema", spec.name));
            let group = serde_json::to_value(spec.effect).unwrap();
            assert!(
                info.entities
                    .iter()
                    .any(|e| e.uid().id().unescaped() == group.as_str().unwrap()),
                "{} is not in the action group of its effect {group}",
                spec.name
            );
            if spec.name == "origin_check" || spec.name == "origin_compare" {
                // `product` is a stored id or an inline bill of materials, which a Cedar
                // record cannot type; policies see it in args_json.
                continue;
            }
            let args = declared.get(spec.name).unwrap();
            let tool_schema = steward_tools::schema(spec.name).unwrap();
            let props = tool_schema["properties"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for prop in props.keys() {
                assert!(
                    args.contains(prop),
                    "{}: argument {prop} is not declared in the schema's args record",
                    spec.name
                );
            }
            assert_eq!(
                args.len(),
                props.len(),
                "{}: extra args in schema",
                spec.name
            );
        }
    }

    /// Slicing by principal, action and resource must never change a decision: compare
    /// against evaluation with every policy, over principals × tools × resources × origins,
    /// with policies that use each kind of scope constraint.
    #[test]
    fn slicing_changes_no_decision() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
        let dir = std::env::temp_dir().join(format!("steward-slicing-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(&shipped).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
            }
        }
        std::fs::write(
            dir.join("scopes.cedar"),
            r#"// @example deny by freeze-psra {"principal":"operator:local","tool":"service_restart","args":{"service":"psra"},"hour":23}
@id("freeze-psra")
forbid (principal, action in Action::"write", resource == Service::"psra") when { context.hour >= 22 };
@id("alice-only")
permit (principal == Operator::"alice", action == Action::"service_deploy", resource is Service);
@id("oncall-in")
@approval("required")
permit (principal is Operator in Role::"oncall", action in [Action::"service_stop"], resource in Service::"rentguy");
@id("acme-tenant")
forbid (principal, action == Action::"tenant_destroy", resource is Tenant in Tenant::"acme") when { context.hour < 6 };
"#,
        )
        .unwrap();
        let set = PolicySet::load_dir(&dir).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let mut compared = 0;
        for principal in set.principals.keys() {
            for spec in CATALOGUE {
                for name in ["rentguy", "psra", "acme", "globex"] {
                    let args = match spec.name {
                        "service_list" => serde_json::json!({}),
                        "service_deploy" => json!({"service": name, "image": "x:v1"}),
                        "service_rollback" => json!({"service": name, "to": "previous"}),
                        "tenant_check_subdomain" | "tenant_provision" => json!({"subdomain": name}),
                        "tenant_destroy" => json!({"tenant": name}),
                        "db_backup" | "db_backups_list" => json!({"target": name}),
                        "db_verify_backup" => json!({"backup": format!("{name}-20261123T101500Z")}),
                        "db_restore" => {
                            json!({"target": name, "backup": format!("{name}-20261123T101500Z")})
                        }
                        "audit_search" => json!({"query": name}),
                        "origin_check" => json!({"product": name, "agreement": "uk-eu-tca"}),
                        "origin_compare" => json!({"product": name}),
                        "notify" => json!({"message": name}),
                        "respond" => json!({"text": name}),
                        "service_set_limits" => json!({"service": name, "memory_mb": 512}),
                        _ => json!({"service": name}),
                    };
                    let call = Call::parse(spec.name, args).unwrap();
                    for origin in [Origin::Chat, Origin::Mcp, Origin::Alert] {
                        for hour in [3, 23] {
                            let req = VetRequest {
                                principal,
                                call: &call,
                                origin,
                                untrusted_text: false,
                                hour_utc: hour,
                            };
                            let sliced = set.evaluate(Ask::Call(&req), false, true).decision;
                            let full = set.evaluate(Ask::Call(&req), false, false).decision;
                            assert_eq!(sliced, full, "{principal} {} {name}", spec.name);
                            compared += 1;
                        }
                    }
                }
            }
        }
        assert!(compared > 5000, "{compared}");
    }

    #[test]
    fn numbers_map_onto_cedar_values() {
        let show = |v: Value| to_cedar(&v).map(|e| e.map(|e| format!("{e:?}")));
        assert!(show(json!(3)).unwrap().unwrap().contains('3'));
        let dec = show(json!(1.5)).unwrap().unwrap();
        assert!(dec.contains("decimal") && dec.contains("1.5000"), "{dec}");
        assert_eq!(show(json!(null)), Ok(None));
        assert!(show(json!(u64::MAX)).is_err());
        assert!(show(json!(1e300)).is_err());
    }
}
