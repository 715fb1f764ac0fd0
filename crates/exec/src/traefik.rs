//! Traefik v3: routes are files in the file provider's watched directory (written
//! atomically), and the API on loopback tells what Traefik actually loaded.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::{Error, Result};

/// Client for Traefik's API (`api.insecure` on a loopback entry point).
#[derive(Debug, Clone)]
pub struct TraefikApi {
    base: String,
    http: reqwest::Client,
}

/// One HTTP router as Traefik reports it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Router {
    pub name: String,
    #[serde(default)]
    pub rule: String,
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub provider: String,
}

/// One HTTP service as Traefik reports it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    #[serde(default, rename = "loadBalancer")]
    pub load_balancer: Option<LoadBalancer>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct LoadBalancer {
    #[serde(default)]
    pub servers: Vec<Server>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Server {
    pub url: String,
}

impl Service {
    pub fn server_urls(&self) -> impl Iterator<Item = &str> {
        self.load_balancer
            .iter()
            .flat_map(|lb| lb.servers.iter().map(|s| s.url.as_str()))
    }
}

impl TraefikApi {
    pub fn new(base: &str) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| Error::Traefik {
                url: base.into(),
                message: e.to_string(),
            })?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            http,
        })
    }

    async fn get<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<T> {
        let err = |message: String| Error::Traefik {
            url: self.base.clone(),
            message,
        };
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| err(describe_reqwest(&e)))?;
        if !resp.status().is_success() {
            return Err(err(format!("GET {path} answered {}", resp.status())));
        }
        resp.json()
            .await
            .map_err(|e| err(format!("GET {path}: unexpected body: {e}")))
    }

    /// Traefik's version, e.g. `3.3.4`.
    pub async fn version(&self) -> Result<String> {
        #[derive(Deserialize)]
        struct Version {
            #[serde(rename = "Version")]
            version: String,
        }
        Ok(self.get::<Version>("/api/version").await?.version)
    }

    pub async fn http_routers(&self) -> Result<Vec<Router>> {
        self.get("/api/http/routers").await
    }

    /// Every HTTP service with the backend URLs of its load balancer.
    pub async fn http_services(&self) -> Result<Vec<Service>> {
        self.get("/api/http/services").await
    }

    /// Waits until the file provider has loaded router `name` (as `name@file`) with `rule`,
    /// since Traefik picks up file changes asynchronously.
    pub async fn wait_for_router(&self, name: &str, rule: &str, timeout: Duration) -> Result<()> {
        let want = format!("{name}@file");
        let deadline = Instant::now() + timeout;
        loop {
            let routers = self.http_routers().await?;
            if routers
                .iter()
                .any(|r| r.name == want && r.rule == rule && r.status == "enabled")
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout(format!(
                    "traefik did not load router {want} with rule {rule} within {timeout:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn describe_reqwest(e: &reqwest::Error) -> String {
    if e.is_connect() {
        "connection refused: is Traefik running? (scripts/setup starts it)".into()
    } else if e.is_timeout() {
        "no answer within 3s".into()
    } else {
        e.to_string()
    }
}

/// A host route: `Host(host)` on the `web` entry point, forwarded to `backend`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    pub host: String,
    pub backend: String,
    /// Adds a `headers` middleware named [`Route::headers_middleware`] that sets security
    /// response headers (tenant routes serve third-party apps, so the browser-side hardening
    /// is applied at the edge rather than trusted to each app).
    pub security_headers: bool,
}

impl Route {
    pub fn new(name: &str, host: &str, backend: &str) -> Result<Self> {
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !name_ok {
            return Err(Error::Invalid {
                what: "route name",
                value: name.into(),
                rule: "use [a-z0-9_-]",
            });
        }
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !host_ok {
            return Err(Error::Invalid {
                what: "host",
                value: host.into(),
                rule: "use [a-z0-9.-]",
            });
        }
        let backend_ok = backend.starts_with("http://")
            && !backend.contains(|c: char| c.is_whitespace() || c == '"' || c == '`');
        if !backend_ok {
            return Err(Error::Invalid {
                what: "backend",
                value: backend.into(),
                rule: "use http://host:port",
            });
        }
        Ok(Self {
            name: name.into(),
            host: host.into(),
            backend: backend.into(),
            security_headers: false,
        })
    }

    /// The same route with the security headers middleware.
    pub fn with_security_headers(mut self) -> Self {
        self.security_headers = true;
        self
    }

    /// Name of the headers middleware in the route's file (`<name>-security-headers`).
    pub fn headers_middleware(&self) -> Option<String> {
        self.security_headers
            .then(|| format!("{}-security-headers", self.name))
    }

    /// The rule exactly as Traefik reports it back through its API.
    pub fn rule(&self) -> String {
        format!("Host(`{}`)", self.host)
    }

    /// The file provider YAML of this route, exactly as [`RouteDir::write`] writes it.
    pub fn to_yaml(&self) -> String {
        let (router_middlewares, middlewares) = match self.headers_middleware() {
            Some(m) => (
                format!("      middlewares: [{m}]\n"),
                format!("  middlewares:\n    {m}:\n      headers:\n{SECURITY_HEADERS_YAML}"),
            ),
            None => (String::new(), String::new()),
        };
        format!(
            "# Managed by steward; edits are overwritten.\nhttp:\n  routers:\n    {n}:\n      rule: \"{rule}\"\n      entryPoints: [web]\n      service: {n}\n{router_middlewares}{middlewares}  services:\n    {n}:\n      loadBalancer:\n        servers:\n          - url: \"{b}\"\n",
            n = self.name,
            rule = self.rule(),
            b = self.backend,
        )
    }
}

/// Options of the security headers middleware: no framing (clickjacking), no MIME sniffing,
/// a strict referrer policy, HSTS once TLS terminates here, and no server fingerprint.
const SECURITY_HEADERS_YAML: &str = "        frameDeny: true\n        contentTypeNosniff: true\n        browserXssFilter: true\n        referrerPolicy: \"strict-origin-when-cross-origin\"\n        permissionsPolicy: \"camera=(), microphone=(), geolocation=()\"\n        stsSeconds: 31536000\n        stsIncludeSubdomains: true\n        customResponseHeaders:\n          X-Powered-By: \"\"\n          Server: \"\"\n";

/// The file provider's watched directory. One file per route, `<name>.yml`.
#[derive(Debug, Clone)]
pub struct RouteDir {
    dir: PathBuf,
}

impl RouteDir {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.yml"))
    }

    /// Writes the route through a temp file and a rename, so Traefik never reads a torn file.
    /// Returns false when the file already had this exact content.
    pub fn write(&self, route: &Route) -> Result<bool> {
        let path = self.file(&route.name);
        let io = |source| Error::RouteFile {
            path: path.display().to_string(),
            source,
        };
        let body = route.to_yaml();
        if std::fs::read_to_string(&path).is_ok_and(|old| old == body) {
            return Ok(false);
        }
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        // The temp file lives beside the watched directory (same file system, so the rename
        // is atomic): even an ignored file inside it wakes the watcher and can cost Traefik a
        // whole provider throttle window before the real change is applied.
        let tmp_dir = self.dir.parent().unwrap_or(&self.dir);
        let tmp = tmp_dir.join(format!(".route-{}.tmp", route.name));
        std::fs::write(&tmp, body).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(true)
    }

    /// The current text of route `name`'s file, or `None` when there is no such route.
    pub fn read_text(&self, name: &str) -> Result<Option<String>> {
        let path = self.file(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::RouteFile {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Removes a route; removing a missing route is not an error (idempotent).
    pub fn remove(&self, name: &str) -> Result<bool> {
        let path = self.file(name);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(Error::RouteFile {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// The route steward wrote for `name`, read back from its file. None when there is no
    /// file or it is not in the form [`RouteDir::write`] produces (then steward does not own
    /// what it says, and inventory falls back to container state).
    pub fn read(&self, name: &str) -> Option<Route> {
        let text = std::fs::read_to_string(self.file(name)).ok()?;
        let host = text
            .split_once("Host(`")
            .and_then(|(_, rest)| rest.split_once("`)"))
            .map(|(host, _)| host)?;
        let backend = text.lines().find_map(|l| {
            l.trim()
                .strip_prefix("- url: \"")
                .and_then(|u| u.strip_suffix('"'))
        })?;
        let route = Route::new(name, host, backend).ok()?;
        // A tenant route keeps its headers middleware when read back and rewritten.
        Some(if text.contains("-security-headers]") {
            route.with_security_headers()
        } else {
            route
        })
    }

    /// The backend URL the route `name` forwards to, e.g. `http://172.20.0.5:8080`.
    pub fn backend(&self, name: &str) -> Option<String> {
        self.read(name).map(|r| r.backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_route_values_are_refused() {
        assert!(Route::new("a`b", "x.localhost", "http://1.2.3.4:80").is_err());
        assert!(Route::new("ok", "x.localhost`) || Host(`evil", "http://1.2.3.4:80").is_err());
        assert!(Route::new("ok", "x.localhost", "http://1.2.3.4:80\"\n  evil: 1").is_err());
        assert!(Route::new("../etc", "x.localhost", "http://1.2.3.4:80").is_err());
        assert!(Route::new("ok", "x.localhost", "http://1.2.3.4:80").is_ok());
    }

    #[test]
    fn write_is_idempotent_and_remove_tolerates_missing() {
        let dir = std::env::temp_dir().join(format!("steward-routes-{}", std::process::id()));
        let routes = RouteDir::new(&dir);
        let r = Route::new("app", "app.localhost", "http://10.0.0.2:8080").unwrap();
        assert!(routes.write(&r).unwrap());
        assert!(!routes.write(&r).unwrap());
        let text = std::fs::read_to_string(dir.join("app.yml")).unwrap();
        assert!(text.contains("rule: \"Host(`app.localhost`)\""), "{text}");
        assert_eq!(routes.read("app"), Some(r.clone()));
        assert_eq!(
            routes.backend("app").as_deref(),
            Some("http://10.0.0.2:8080")
        );
        assert_eq!(routes.read("missing"), None);
        let h = r.clone().with_security_headers();
        assert!(routes.write(&h).unwrap());
        let text = routes.read_text("app").unwrap().unwrap();
        assert!(
            text.contains("middlewares: [app-security-headers]"),
            "{text}"
        );
        assert!(text.contains("frameDeny: true"), "{text}");
        assert!(routes.remove("app").unwrap());
        assert!(!routes.remove("app").unwrap());
        assert_eq!(routes.read_text("app").unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
