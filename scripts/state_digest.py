#!/usr/bin/env python3
"""A digest of steward's state in a home, to prove a test run left it as it found it.

    state_digest.py snapshot HOME            print the digest
    state_digest.py compare BEFORE_FILE HOME exit 1, with the differences, if HOME changed

What it covers: every table of the SQLite state store (row count and a hash of the rows:
approvals, the audit log, incidents, origin data, ...), the files under <home>/audit (search
index, checkpoint key), <home>/run (the guards' lock files) and <home>/exec (tenant secrets,
backups), and the Docker containers carrying steward's labels (the user's services). The
store is read from a private copy, so the digest never touches the user's files. A
container that appears is only reported (a test that leaked one fails on its own); one that
went away or changed is a difference. STEWARD_DIGEST_SKIP_CONTAINERS=1 leaves containers out
(for a check that runs while other tests start and remove theirs).
"""
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None


def state_db(home):
    """The SQLite file of the state store, or None with a reason."""
    url = None
    cfg = os.path.join(home, "config.toml")
    if tomllib and os.path.exists(cfg):
        with open(cfg, "rb") as f:
            url = tomllib.load(f).get("state_url")
    url = os.environ.get("STEWARD_STATE_URL") or url
    if not url:
        return os.path.join(home, "state.db"), None
    if url.startswith("sqlite://"):
        path = url[len("sqlite://"):].split("?", 1)[0]
        return path, None
    return None, "state store is not SQLite (%s): not covered" % url.split("://", 1)[0]


def table_lines(path):
    if not os.path.exists(path):
        return ["state %s: absent" % path]
    tmp = tempfile.mkdtemp(prefix="steward-digest-")
    try:
        copy = os.path.join(tmp, "state.db")
        shutil.copyfile(path, copy)
        if os.path.exists(path + "-wal"):
            shutil.copyfile(path + "-wal", copy + "-wal")
        con = sqlite3.connect(copy)
        names = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        lines = []
        for name in names:
            rows = [repr(r) for r in con.execute('SELECT * FROM "%s"' % name.replace('"', '""'))]
            rows.sort()
            digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]
            lines.append("table %s rows=%d sha=%s" % (name, len(rows), digest))
        con.close()
        return lines
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def file_lines(home, sub):
    root = os.path.join(home, sub)
    lines = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, home)
        lines.append("dir %s" % rel_dir)
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)
            try:
                with open(p, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()[:16]
            except OSError as e:
                digest = "unreadable (%s)" % e.strerror
            lines.append("file %s sha=%s" % (os.path.join(rel_dir, name), digest))
    return lines


def container_lines():
    out = subprocess.run(
        ["docker", "ps", "-a", "--filter", "label=steward.service",
         "--format", "{{.Names}} {{.ID}} {{.Image}} {{.State}}"],
        capture_output=True, text=True)
    if out.returncode != 0:
        return ["containers: docker ps failed: %s" % out.stderr.strip()]
    return sorted("container %s" % l for l in out.stdout.splitlines() if l.strip())


def snapshot(home):
    path, why = state_db(home)
    lines = table_lines(path) if path else [why]
    for sub in ("audit", "run", "exec"):
        lines += file_lines(home, sub)
    # Containers are shared by every home on this engine: a test that runs beside others
    # (which start and remove containers of their own) digests its home's files only.
    if os.environ.get("STEWARD_DIGEST_SKIP_CONTAINERS") == "1":
        return lines
    return lines + container_lines()


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "snapshot":
        print("\n".join(snapshot(sys.argv[2])))
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "compare":
        with open(sys.argv[2]) as f:
            before = [l for l in f.read().splitlines() if l]
        after = snapshot(sys.argv[3])
        gone = [l for l in before if l not in after]
        new = [l for l in after if l not in before]
        added_containers = [l for l in new if l.startswith("container ")]
        changed = [l for l in new if not l.startswith("container ")]
        for l in added_containers:
            print("state_digest: note: new %s" % l, file=sys.stderr)
        if gone or changed:
            print("state_digest: %s changed:" % sys.argv[3], file=sys.stderr)
            for l in gone:
                print("  - %s" % l, file=sys.stderr)
            for l in changed:
                print("  + %s" % l, file=sys.stderr)
            return 1
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
