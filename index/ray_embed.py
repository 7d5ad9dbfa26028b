"""Passage vectors from a Ray Data pipeline, so a build's embedding can spread over a cluster's workers.

Ray is imported only when a build asks for it (`newsqa index build --ray`); it is an optional extra.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from index.errors import ModelMismatchError, NewsqaError, RayBuildError, RayUnavailableError

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'newsqa[ray]' (or NEWSQA_EXTRAS=dev,ray bash scripts/install.sh)"
LOOPBACK = "127.0.0.1"
# Ray binds a node to the machine's own address, on every interface, unless told it is a single-machine
# instance; its `_node_ip_address="127.0.0.1"` is rewritten to that address. This switch is the only way.
_SINGLE_MACHINE_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def import_ray() -> Any:
    """The `ray` module with Ray Data, or RayUnavailableError saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - the pipeline needs Ray Data, not only Ray core
    except ImportError:
        raise RayUnavailableError(f"building on Ray needs Ray, which is not installed here; install it with {INSTALL_HINT}") from None
    return ray


def ray_address(address: str | None) -> str | None:
    """The cluster to join: `address`, else RAY_ADDRESS; None means start a local instance."""
    return address or os.environ.get("RAY_ADDRESS") or None


@contextlib.contextmanager
def _single_machine(ray: Any) -> Iterator[None]:
    """While a local instance starts: Ray's processes bind to loopback only (they inherit the switch)."""
    from ray._private import ray_constants

    before_env, before_flag = os.environ.get(_SINGLE_MACHINE_SWITCH), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[_SINGLE_MACHINE_SWITCH] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before_flag
        if before_env is None:
            os.environ.pop(_SINGLE_MACHINE_SWITCH, None)
        else:
            os.environ[_SINGLE_MACHINE_SWITCH] = before_env


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """Ray connected for the length of a build: the cluster at `address` (or RAY_ADDRESS), else a local instance.

    A local instance listens on loopback only and is shut down afterwards; a connection made here is
    closed afterwards; a Ray already connected in this process (by the caller) is used and left alone.
    `num_cpus` sizes a local instance only (Ray refuses it when joining a cluster).
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    target = ray_address(address)
    levels = _quiet_logs()
    quiet = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    try:
        if target:
            host_port = _host_port(target)
            _check_reachable(host_port)
            # Ray rewrites a loopback address to the machine's own, where a cluster on loopback does not listen
            loopback = host_port is not None and _is_loopback(host_port[0])
            with _single_machine(ray) if loopback else contextlib.nullcontext():
                ray.init(address=target, **{k: v for k, v in quiet.items() if k != "include_dashboard"})
        else:
            with _single_machine(ray):
                ray.init(num_cpus=num_cpus, _node_ip_address=LOOPBACK, **quiet)
    except Exception as exc:  # unreachable, refused, wrong token: one story for the user
        _restore_logs(levels)
        if isinstance(exc, RayBuildError):
            raise
        where = f"the Ray cluster at {target}" if target else "a local Ray instance"
        hint = (" (a cluster started with `ray start` wants RAY_AUTH_MODE=token and its token here too)"
                if target else "")
        raise RayBuildError(f"cannot connect to {where}: {_first_line(exc)}{hint}") from exc
    _quiet_data(ray)
    try:
        yield ray
    finally:
        ray.shutdown()
        _restore_logs(levels)


REACH_SECONDS = 5.0


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a `host:port` or `ray://host:port` address; None for `auto` and other forms."""
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    return (host.strip("[]"), int(port)) if sep and host and port.isdigit() else None


def _is_loopback(host: str) -> bool:
    return host == "localhost" or host == "::1" or host.startswith("127.")


def _check_reachable(host_port: tuple[str, int] | None) -> None:
    """RayBuildError within seconds when nothing listens at the address (Ray itself retries for minutes)."""
    import socket

    if host_port is None:
        return
    try:
        socket.create_connection(host_port, timeout=REACH_SECONDS).close()
    except OSError as exc:
        raise RayBuildError(
            f"cannot reach the Ray cluster at {host_port[0]}:{host_port[1]}: {(exc.strerror or str(exc)).lower()} "
            f"(is `ray start --head` running there? see --address, NEWSQA_RAY_ADDRESS, RAY_ADDRESS)"
        ) from None


_RAY_LOGGERS = ("ray", "ray.data")


def _quiet_logs() -> dict[str, int]:
    """Ray's notices (token mode, progress, plans) only with -v: a build prints its own progress. Returns the old levels."""
    levels = {name: logging.getLogger(name).level for name in _RAY_LOGGERS}
    if not logging.getLogger().isEnabledFor(logging.INFO):
        for name in _RAY_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
    return levels


def _restore_logs(levels: dict[str, int]) -> None:
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def _quiet_data(ray: Any) -> None:
    """No Ray Data progress bars or plan printouts in a build's output."""
    import warnings

    with warnings.catch_warnings():  # Ray Data's own defaults trip its deprecation warnings
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


class PassageEncoder:
    """One per Ray worker: rebuilds the embedder from its spec once, then encodes batches of passages."""

    def __init__(self, spec: Any, batch_size: int, fingerprint: str | None = None) -> None:
        from index.embedder import SentenceTransformerEmbedder, model_fingerprint_of

        self.embedder = SentenceTransformerEmbedder.from_spec(spec) if isinstance(spec, dict) else spec
        self.batch_size = batch_size
        found = model_fingerprint_of(self.embedder)
        if fingerprint is not None and found != fingerprint:
            raise ModelMismatchError(
                f"a Ray worker's copy of {self.embedder.name} differs from the driver's "
                f"(weights {found or 'not found'} vs {fingerprint}); give every node the same model"
            )
        load = getattr(self.embedder, "load", None)
        if load is not None:
            load()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Vectors of this batch's texts, each beside its row number."""
        texts = [str(t) for t in batch["text"]]
        vectors = self.embedder.encode_passages(texts, self.batch_size)
        return {"row": np.asarray(batch["row"], dtype=np.int64), "vector": np.asarray(vectors, dtype=np.float32)}


def worker_spec(embedder: Any, threads: int) -> Any:
    """What workers rebuild the embedder from: its spec() with `threads` each; a stand-in without one goes whole."""
    spec = getattr(embedder, "spec", None)
    return {**spec(), "threads": threads} if callable(spec) else embedder


def encode_passages_on_ray(
    embedder: Any,
    texts: Sequence[str],
    batch_size: int = 32,
    on_batch: Callable[[np.ndarray], None] | None = None,
    address: str | None = None,
) -> np.ndarray:
    """Passage vectors of `texts` (float32, in their order), encoded by a Ray Data pipeline; Ray must be up (ray_session).

    Texts are batched by length; rows carry their index, so the order Ray returns them in does not matter.
    `on_batch` gets the indices of each batch as it comes back (for progress). Without a Ray connection
    (a caller that opened no ray_session) this call opens one to `address` for itself.
    """
    ray = import_ray()
    if not ray.is_initialized():
        with ray_session(address):
            return encode_passages_on_ray(embedder, texts, batch_size, on_batch, address)
    dim = embedder.dim
    out = np.zeros((len(texts), dim), dtype=np.float32)
    if not texts:
        return out
    threads = max(1, int(getattr(embedder, "threads", 0) or 1))
    gpu = str(getattr(embedder, "device", "cpu")).startswith("cuda")
    resources = ray.cluster_resources()
    slots = int(resources.get("GPU", 0)) if gpu else int(resources.get("CPU", 1) // threads)
    workers = max(1, min(slots, math.ceil(len(texts) / batch_size)))
    fingerprint = getattr(embedder, "fingerprint", None)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths share a batch: little padding
    ds = ray.data.from_items([{"row": i, "text": texts[i]} for i in order])
    ds = ds.map_batches(
        PassageEncoder,
        fn_constructor_kwargs={
            "spec": worker_spec(embedder, threads), "batch_size": batch_size,
            "fingerprint": fingerprint if isinstance(fingerprint, str) else None,
        },
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=0 if gpu else threads,
        num_gpus=1 if gpu else 0,
    )
    seen = np.zeros(len(texts), dtype=bool)
    log.info("embedding %d passages on Ray: %d worker(s), %d thread(s) each", len(texts), workers, threads)
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            rows, vectors = np.asarray(batch["row"]), np.asarray(batch["vector"])
            if vectors.shape != (len(rows), dim):
                raise ModelMismatchError(f"{embedder.name} on Ray returned vectors of shape {vectors.shape}, expected {(len(rows), dim)}")
            out[rows] = vectors
            seen[rows] = True
            if on_batch is not None:
                on_batch(rows)
    except NewsqaError:
        raise
    except Exception as exc:
        cause = _newsqa_cause(exc)
        if cause is not None:  # a worker's own clear error (model missing, weights differ): say that
            raise cause from exc
        raise RayBuildError(f"the Ray embedding pipeline failed: {_first_line(exc)}") from exc
    if not seen.all():
        raise RayBuildError(f"the Ray embedding pipeline returned {int(seen.sum())} of {len(texts)} vectors")
    return out


def _newsqa_cause(exc: BaseException) -> NewsqaError | None:
    """The NewsqaError a worker raised, found in the chain Ray wraps it in."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, NewsqaError):
            return e
        stack.extend(n for n in (e.__cause__, e.__context__, getattr(e, "cause", None)) if isinstance(n, BaseException))
    return None
