//! The PostgreSQL client programs (pg_dump, pg_restore, psql) of the server's major version,
//! and how they are run: connection settings as flags, the password only in `PGPASSWORD`
//! (never on a command line, where `ps` would show it).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use tokio::process::Command;

use crate::env::Env;
use crate::{Error, Result};

/// Where the client programs live and which server they talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTools {
    pub bindir: PathBuf,
    /// `15.18`, as `SHOW server_version` says.
    pub server_version: String,
    pub server_major: u32,
    conn: ConnParams,
}

/// Connection settings of the admin URL, as the client programs take them.
#[derive(Clone, PartialEq, Eq)]
struct ConnParams {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
}

impl std::fmt::Debug for ConnParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnParams")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl ConnParams {
    fn from_url(url: &str) -> Result<Self> {
        let opts = PgConnectOptions::from_str(url)?;
        Ok(Self {
            host: opts.get_host().to_string(),
            port: opts.get_port(),
            user: opts.get_username().to_string(),
            password: url_password(url),
        })
    }
}

/// The percent-decoded password of a `postgres://user:password@host/db` URL.
fn url_password(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    let raw = userinfo.split_once(':')?.1;
    Some(percent_decode(raw))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A client program invocation: shown to people without the password, run with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl PgCommand {
    /// The command line as a person would type it; the password is never part of it.
    pub fn display(&self) -> String {
        let mut out = String::from("PGPASSWORD=<from pg_url> ");
        out.push_str(&self.program.display().to_string());
        for a in &self.args {
            out.push(' ');
            out.push_str(&shell_quote(a));
        }
        out
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_=./:,@".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The first of the candidate directories that holds all three programs.
fn find_bindir(candidates: &[PathBuf]) -> Option<PathBuf> {
    candidates
        .iter()
        .find(|dir| {
            ["pg_dump", "pg_restore", "psql"]
                .iter()
                .all(|p| dir.join(p).is_file())
        })
        .cloned()
}

/// Majors of the Debian `postgresql-client-<N>` installs under /usr/lib/postgresql, newest
/// first; a pg_dump may be newer than the server, never older.
fn installed_majors(root: &Path, at_least: u32) -> Vec<u32> {
    let mut majors: Vec<u32> = std::fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .filter(|m| *m >= at_least)
                .collect()
        })
        .unwrap_or_default();
    majors.sort_unstable_by(|a, b| b.cmp(a));
    majors
}

impl PgTools {
    /// Asks the server its version and finds client programs of at least that major version:
    /// `/usr/lib/postgresql/<major>/bin` first (Debian's layout), then newer majors, then
    /// `pg_config --bindir`.
    pub async fn discover(env: &Env) -> Result<Self> {
        let pool = env.admin_pool().await?;
        let (version, num): (String, String) = sqlx::query_as(
            "SELECT current_setting('server_version'), current_setting('server_version_num')",
        )
        .fetch_one(pool)
        .await?;
        let server_major = num.parse::<u32>().unwrap_or(0) / 10000;
        let root = Path::new("/usr/lib/postgresql");
        let mut candidates: Vec<PathBuf> = vec![root.join(server_major.to_string()).join("bin")];
        candidates.extend(
            installed_majors(root, server_major)
                .into_iter()
                .map(|m| root.join(m.to_string()).join("bin")),
        );
        let mut found = find_bindir(&candidates);
        if found.is_none() {
            // Only when Debian's layout has none: spawning pg_config costs a few ms per call.
            if let Some(dir) = pg_config_bindir(server_major).await {
                candidates.push(dir);
                found = find_bindir(&candidates);
            }
        }
        let bindir = found.ok_or_else(|| missing_tools(server_major, &candidates))?;
        Ok(Self {
            bindir,
            server_version: version,
            server_major,
            conn: ConnParams::from_url(&env.config.pg_url)?,
        })
    }

    /// What dry runs show when the server cannot be asked: the programs by name only.
    pub fn unresolved(env: &Env) -> Result<Self> {
        Ok(Self {
            bindir: PathBuf::new(),
            server_version: "unknown".into(),
            server_major: 0,
            conn: ConnParams::from_url(&env.config.pg_url)?,
        })
    }

    /// `program` with the connection flags (`-h -p -U -w`) and `-d database` in front.
    pub fn command(&self, program: &str, database: &str, args: &[String]) -> PgCommand {
        let mut all = vec![
            "-h".to_string(),
            self.conn.host.clone(),
            "-p".to_string(),
            self.conn.port.to_string(),
            "-U".to_string(),
            self.conn.user.clone(),
            "-w".to_string(),
            "-d".to_string(),
            database.to_string(),
        ];
        all.extend(args.iter().cloned());
        PgCommand {
            program: self.bindir.join(program),
            args: all,
        }
    }

    /// A program that needs no connection (`pg_restore -f -` reading a file).
    pub fn offline(&self, program: &str, args: &[String]) -> PgCommand {
        PgCommand {
            program: self.bindir.join(program),
            args: args.to_vec(),
        }
    }

    /// The process for `cmd`: password in the environment, no stdin, killed when dropped.
    pub fn process(&self, cmd: &PgCommand, options: Option<&str>) -> Command {
        let mut c = Command::new(&cmd.program);
        c.args(&cmd.args)
            .env_remove("PGSERVICE")
            .env_remove("PGSERVICEFILE")
            .env("PGCONNECT_TIMEOUT", "5")
            .env("PGAPPNAME", "steward-backup")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        match options {
            Some(o) => c.env("PGOPTIONS", o),
            None => c.env_remove("PGOPTIONS"),
        };
        if let Some(p) = &self.conn.password {
            c.env("PGPASSWORD", p);
        }
        c
    }

    /// Runs `cmd` to completion; a failure names the program and quotes its error output.
    pub async fn run(&self, cmd: &PgCommand, what: &str) -> Result<std::process::Output> {
        self.run_with(cmd, what, None).await
    }

    /// Like [`run`](Self::run), with server settings for the session (`PGOPTIONS`).
    pub async fn run_with(
        &self,
        cmd: &PgCommand,
        what: &str,
        options: Option<&str>,
    ) -> Result<std::process::Output> {
        let out = self
            .process(cmd, options)
            .output()
            .await
            .map_err(|e| spawn_error(cmd, e))?;
        check_exit(cmd, what, &out)?;
        Ok(out)
    }
}

/// The error when no directory holds the client programs: where steward looked, and the fix.
fn missing_tools(server_major: u32, candidates: &[PathBuf]) -> Error {
    Error::Failed(format!(
        "pg_dump, pg_restore and psql for PostgreSQL {server_major} (the server's version) were \
         not found in {}; run scripts/setup, which installs Debian's postgresql package",
        candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

async fn pg_config_bindir(at_least: u32) -> Option<PathBuf> {
    let version = Command::new("pg_config")
        .arg("--version")
        .output()
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&version.stdout);
    let major: u32 = text
        .split_whitespace()
        .nth(1)?
        .split('.')
        .next()?
        .parse()
        .ok()?;
    if major < at_least {
        return None;
    }
    let out = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .await
        .ok()?;
    Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

pub fn spawn_error(cmd: &PgCommand, e: std::io::Error) -> Error {
    Error::Failed(format!(
        "could not run {}: {e}; run scripts/setup, which installs Debian's postgresql package",
        cmd.program.display()
    ))
}

/// Last lines of a program's error output, trimmed for a message.
pub fn stderr_tail(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(6);
    lines[start..].join(" | ")
}

/// A non-zero exit as an error. A refused or failed connection becomes a PostgreSQL I/O error
/// so it reports as `Unavailable`, like the same fault seen through sqlx.
pub fn check_exit(cmd: &PgCommand, what: &str, out: &std::process::Output) -> Result<()> {
    if out.status.success() {
        return Ok(());
    }
    let program = cmd
        .program
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tail = stderr_tail(out);
    let code = out
        .status
        .code()
        .map(|c| c.to_string())
        .unwrap_or_else(|| "a signal".into());
    if tail.contains("Connection refused")
        || tail.contains("could not connect")
        || tail.contains("connection to server")
    {
        return Err(Error::Postgres(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            format!("{program} could not connect while {what}: {tail}"),
        ))));
    }
    Err(Error::Failed(format!(
        "{what}: {program} exited with {code}: {tail}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_comes_from_the_url_and_never_reaches_the_command_line() {
        let url = "postgres://steward:p%40ss:w@127.0.0.1:55432/steward";
        assert_eq!(url_password(url).as_deref(), Some("p@ss:w"));
        assert_eq!(url_password("postgres://u@h/db"), None);
        let conn = ConnParams::from_url(url).unwrap();
        let tools = PgTools {
            bindir: PathBuf::from("/usr/lib/postgresql/15/bin"),
            server_version: "15".into(),
            server_major: 15,
            conn,
        };
        let cmd = tools.command("pg_dump", "db", &["-Fc".into()]);
        assert!(!cmd.display().contains("p@ss"));
        assert!(!cmd.args.iter().any(|a| a.contains("p@ss")));
        assert!(!format!("{tools:?}").contains("p@ss"));
        assert!(cmd
            .display()
            .contains("-h 127.0.0.1 -p 55432 -U steward -w -d db -Fc"));
    }

    #[test]
    fn missing_programs_point_at_setup() {
        let candidates = [PathBuf::from("/nonexistent/postgresql/15/bin")];
        assert_eq!(find_bindir(&candidates), None);
        let msg = missing_tools(15, &candidates).to_string();
        assert!(msg.contains("pg_dump"), "{msg}");
        assert!(msg.contains("PostgreSQL 15"), "{msg}");
        assert!(msg.contains("/nonexistent/postgresql/15/bin"), "{msg}");
        assert!(msg.contains("scripts/setup"), "{msg}");
        assert!(installed_majors(Path::new("/nonexistent"), 15).is_empty());
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("abc"), "abc");
        assert_eq!(shell_quote("\"tenant_x\""), "'\"tenant_x\"'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
