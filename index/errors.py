"""Named errors of the index layer; each carries the file or input at fault."""

from __future__ import annotations


class NewsqaError(Exception):
    """Base of every error a front end turns into one clear sentence."""


class ArticleError(NewsqaError):
    """An input file (or one line of it) that cannot be indexed, and why."""

    def __init__(self, path: str, reason: str, line: int | None = None) -> None:
        self.path = path
        self.reason = reason
        self.line = line
        where = f"{path}: line {line}" if line is not None else path
        super().__init__(f"{where}: {reason}")


class ModelNotFoundError(NewsqaError):
    """The embedding model cannot be loaded (not on disk and the hub unreachable)."""


class GpuMemoryError(NewsqaError):
    """The GPU has no room for the model itself (a batch too large is halved instead)."""


class ModelFormatError(NewsqaError):
    """A bundled model file is not in the format this code knows."""


class IndexNotFoundError(NewsqaError):
    """No usable index at the configured folder."""


class IndexCorruptError(NewsqaError):
    """An index version on disk is incomplete or inconsistent."""


class IndexLockedError(NewsqaError):
    """Another build holds the index lock."""


class IndexReadOnlyError(NewsqaError):
    """The index folder cannot be written (a build needs to write its lock and a new version)."""


class ModelMismatchError(NewsqaError):
    """The index was built with another embedding model (name, dimension or weights) than the one configured."""


class AnalyserMismatchError(NewsqaError):
    """The index was built with another version of the Arabic text analyser than this code's."""


class EmptyCorpusError(NewsqaError):
    """The corpus yields no article while the index holds some: an unmounted or emptied folder."""


class IndexDamagedError(IndexCorruptError):
    """A file of an index version (or the CURRENT pointer) fails its checksum, size or a consistency check."""

    def __init__(self, version: str | None, file: str, reason: str, where: str | None = None) -> None:
        self.version = version
        self.file = file
        self.reason = reason
        what = f"index version {version}" if version else f"the index in {where}" if where else "the index"
        super().__init__(f"{what} is damaged ({file}: {reason}); run newsqa index update to rebuild")


class RayUnavailableError(NewsqaError):
    """A build on Ray was asked for, but Ray (with Ray Data) is not installed here."""


class RayBuildError(NewsqaError):
    """A build on Ray cannot go ahead: the cluster is unreachable, the pipeline failed, or the options do not combine."""
