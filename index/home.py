"""The data home: one per-user folder for everything newsqa keeps (models, the default index, bot state).

    <data home>/            NEWSQA_HOME, else platformdirs' user data dir (e.g. ~/.local/share/newsqa)
      .env                  settings read after the environment and ./.env
      models/               `newsqa model provision` writes here; hub ids are looked up here first
      index/                the default index (NEWSQA_INDEX_DIR moves it)
      cache/                model fingerprints (hashes of weight files, keyed by path, size and mtime)

Never the current directory: a service, a cron job and a user's shell must all find the same files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

APP_NAME = "newsqa"
HOME_ENV = "NEWSQA_HOME"


def data_home(environ: Mapping[str, str] | None = None) -> Path:
    """NEWSQA_HOME when set, else the per-user data folder platformdirs gives for this OS."""
    env = os.environ if environ is None else environ
    explicit = env.get(HOME_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser().absolute()
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def models_dir(home: Path) -> Path:
    """Where provisioned models live inside the data home."""
    return home / "models"


def index_dir(home: Path) -> Path:
    """The default index folder inside the data home."""
    return home / "index"


def fingerprint_cache(home: Path) -> Path:
    """JSON cache of model weight hashes inside the data home."""
    return home / "cache" / "fingerprints.json"


def default_models_dir(environ: Mapping[str, str] | None = None) -> Path:
    """NEWSQA_MODELS_DIR when set, else the data home's models folder (as Settings resolves it)."""
    env = os.environ if environ is None else environ
    explicit = env.get("NEWSQA_MODELS_DIR", "").strip()
    return Path(explicit).expanduser() if explicit else models_dir(data_home(env))
