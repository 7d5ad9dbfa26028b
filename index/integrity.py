"""Checksums of an index version's files and the cheap invariants checked whenever a version is opened.

The manifest records, for every file of the version, its size and BLAKE2b digest (`files`), and a
digest of the manifest itself (`manifest_blake2b`, over its canonical JSON without that field), so
a damaged manifest is told apart from a damaged file it describes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from index.errors import IndexDamagedError

MANIFEST = "manifest.json"
DIGEST = "blake2b"
SELF_DIGEST = "manifest_blake2b"
BLOCK = 1 << 20


def file_digest(path: Path) -> str:
    """BLAKE2b (256-bit) of one file, read in 1 MiB blocks."""
    h = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK):
            h.update(block)
    return h.hexdigest()


def checksum_files(folder: Path) -> dict[str, dict[str, int | str]]:
    """Size and digest of every file under folder except the manifest, keyed by relative POSIX path."""
    out: dict[str, dict[str, int | str]] = {}
    for f in sorted(folder.rglob("*")):
        if f.is_file() and f.name != MANIFEST:
            out[f.relative_to(folder).as_posix()] = {"size": f.stat().st_size, DIGEST: file_digest(f)}
    return out


def _canonical(manifest: dict) -> bytes:
    body = {k: v for k, v in manifest.items() if k != SELF_DIGEST}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def seal_manifest(manifest: dict) -> dict:
    """The manifest with its own digest added."""
    return {**manifest, SELF_DIGEST: hashlib.blake2b(_canonical(manifest), digest_size=32).hexdigest()}


def read_manifest(folder: Path) -> dict:
    """Parse and check a version's manifest; any damage raises IndexDamagedError naming manifest.json."""
    name = folder.name
    path = folder / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise IndexDamagedError(name, MANIFEST, "missing") from None
    except OSError as exc:
        raise IndexDamagedError(name, MANIFEST, f"unreadable ({exc.strerror})") from None
    if not raw:
        raise IndexDamagedError(name, MANIFEST, "empty")
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise IndexDamagedError(name, MANIFEST, "not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise IndexDamagedError(name, MANIFEST, f"not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(manifest, dict):
        raise IndexDamagedError(name, MANIFEST, "not a JSON object")
    sealed = manifest.get(SELF_DIGEST)
    if sealed is not None and sealed != hashlib.blake2b(_canonical(manifest), digest_size=32).hexdigest():
        raise IndexDamagedError(name, MANIFEST, "checksum mismatch")
    return manifest


@dataclass(frozen=True, slots=True)
class Problem:
    """One damaged file and why."""

    file: str
    reason: str


def check_files(folder: Path, manifest: dict, hashes: bool = True) -> list[Problem]:
    """Every file the manifest lists: present, of its recorded size and (with hashes) digest.

    A manifest from before checksums lists no files: nothing to check here (the invariants still are).
    """
    problems: list[Problem] = []
    files = manifest.get("files")
    if files is None:
        return problems
    if not isinstance(files, dict):
        return [Problem(MANIFEST, "file list is not an object")]
    for rel, want in sorted(files.items()):
        path = folder / rel
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            problems.append(Problem(rel, "missing"))
            continue
        except OSError as exc:
            problems.append(Problem(rel, f"unreadable ({exc.strerror})"))
            continue
        if size != want.get("size"):
            problems.append(Problem(rel, f"size {size} bytes, manifest says {want.get('size')}"))
            continue
        if hashes:
            try:
                got = file_digest(path)
            except OSError as exc:
                problems.append(Problem(rel, f"unreadable ({exc.strerror})"))
                continue
            if got != want.get(DIGEST):
                problems.append(Problem(rel, "checksum mismatch"))
    return problems


def total_bytes(manifest: dict) -> int:
    """Bytes of all files the manifest lists (0 for a manifest from before checksums)."""
    files = manifest.get("files") or {}
    return sum(int(f.get("size", 0)) for f in files.values()) if isinstance(files, dict) else 0


def raise_first(version: str, problems: list[Problem]) -> None:
    """Raise IndexDamagedError for the first problem, if any."""
    if problems:
        p = problems[0]
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise IndexDamagedError(version, p.file, p.reason + more)


def fsync_tree(folder: Path) -> None:
    """Flush every file under folder, then the folders themselves."""
    for f in folder.rglob("*"):
        if f.is_file():
            with open(f, "rb+") as handle:
                os.fsync(handle.fileno())
    for d in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
