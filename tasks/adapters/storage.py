"""One small module for every file the application reads or writes, local or on S3.

Writes are atomic: a local file is written to a temporary name in the same folder and moved into
place with ``os.replace``; an S3 object is written with a single PUT (S3 never shows half an
object). Nothing else in bua opens an S3 path by hand.
"""

from __future__ import annotations

import io
import itertools
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

import polars as pl

from tasks.settings import Settings


def is_s3(url: str) -> bool:
    return url.startswith("s3://")


def _fs(settings: Settings):  # -> s3fs.S3FileSystem (imported lazily: it is slow to import)
    key = settings.aws_access_key_id.get_secret_value() if settings.aws_access_key_id else None
    secret = settings.aws_secret_access_key.get_secret_value() if settings.aws_secret_access_key else None
    return _s3fs(settings.s3_endpoint_url, settings.aws_region, key, secret)


@lru_cache(maxsize=8)
def _s3fs(endpoint_url: str | None, region: str, key: str | None, secret: str | None):  # noqa: ANN202
    # One filesystem per configuration: a new one costs 0.4-2 s on its first call (botocore
    # session and service model); listings are never cached, so other writers are always seen.
    import s3fs

    client_kwargs: dict[str, str] = {"region_name": region}
    if endpoint_url:
        client_kwargs["endpoint_url"] = endpoint_url
    return s3fs.S3FileSystem(
        key=key,
        secret=secret,
        client_kwargs=client_kwargs,
        skip_instance_cache=True,
        use_listings_cache=False,
    )


def _strip(url: str) -> str:
    return url[len("s3://") :] if is_s3(url) else url


def _file_mode() -> int:
    """The mode ``open()`` would give a new file (0666 less the umask): mkstemp's 0600 would keep the
    exports and the report from the finance readers and integration jobs a plain write lets in."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()


def write_bytes_atomic(data: bytes, url: str, settings: Settings) -> None:
    """Write ``data`` to ``url`` so that readers see the old content or the new, never half."""
    if is_s3(url):
        with _fs(settings).open(_strip(url), "wb") as fh:
            fh.write(data)
        return
    write_atomic(url, settings, lambda fh: fh.write(data))


def write_atomic(url: str, settings: Settings, write: Callable[[BinaryIO], object]) -> None:
    """``write(fh)`` into ``url`` so that readers see the old content or the new, never half: a
    temporary file renamed into place (an S3 object appears whole when its upload completes). The
    content is streamed, never held whole in memory here: to S3 through a local temporary file,
    uploaded once complete (a stream that failed half way must not close into a half object)."""
    if is_s3(url):
        with tempfile.NamedTemporaryFile(prefix=f"bua-upload-{os.getpid()}-", suffix=".tmp") as fh:
            write(fh)
            fh.flush()
            _fs(settings).put_file(fh.name, _strip(url))
        return
    path = Path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        _test_pause(path.name)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


_writes = itertools.count(1)


def _test_pause(name: str) -> None:
    """Test hook: ``BUA_TEST_PAUSE_BEFORE_RENAME=<file name>:<seconds>[:<after n>]`` holds the
    (n+1)-th and later local writes of files of that name with their temporary file in place,
    saying so on stderr, so a test can ``kill -9`` the process there (tests/ingest/test_kill.py).
    Unset in production."""
    hook = os.environ.get("BUA_TEST_PAUSE_BEFORE_RENAME")
    if not hook:
        return
    target, seconds, *after = hook.split(":")
    if name == target and next(_writes) > int(after[0] if after else 0):
        print(f"BUA_TEST_PAUSE_BEFORE_RENAME: holding a write of {name}", file=sys.stderr, flush=True)
        time.sleep(float(seconds))


def read_bytes(url: str, settings: Settings) -> bytes:
    if is_s3(url):
        with _fs(settings).open(_strip(url), "rb") as fh:
            return fh.read()
    return Path(url).read_bytes()


def parquet_bytes(df: pl.DataFrame, compression: str = "zstd") -> bytes:
    """Serialise a frame to parquet deterministically (same frame → same bytes)."""
    buf = io.BytesIO()
    df.write_parquet(buf, compression=compression, statistics=True)
    return buf.getvalue()


def write_parquet_atomic(df: pl.DataFrame, url: str, settings: Settings) -> None:
    write_bytes_atomic(parquet_bytes(df), url, settings)


def scan_parquet(url: str | list[str], settings: Settings, **kwargs: object) -> pl.LazyFrame:
    """Lazy scan of parquet at a local path/glob or an s3:// URL, with pushdown."""
    first = url[0] if isinstance(url, list) and url else url
    if isinstance(first, str) and is_s3(first):
        return pl.scan_parquet(url, storage_options=settings.storage_options(), **kwargs)  # type: ignore[arg-type]
    return pl.scan_parquet(url, **kwargs)  # type: ignore[arg-type]


def size(url: str, settings: Settings) -> int:
    """The size in bytes of the file or object at ``url`` (without reading it)."""
    if is_s3(url):
        return int(_fs(settings).size(_strip(url)))
    return os.path.getsize(url)


def exists(url: str, settings: Settings) -> bool:
    if is_s3(url):
        return bool(_fs(settings).exists(_strip(url)))
    return Path(url).exists()


def list_files(prefix: str, settings: Settings, suffix: str = "") -> list[str]:
    """All files under ``prefix`` (recursively), sorted, as full URLs/paths."""
    if is_s3(prefix):
        fs = _fs(settings)
        base = _strip(prefix).rstrip("/")
        if not fs.exists(base):
            return []
        found = fs.find(base)
        return sorted(f"s3://{p}" for p in found if p.endswith(suffix))
    root = Path(prefix)
    if not root.exists():
        return []
    if root.is_file():
        return [str(root)]
    return sorted(
        str(p)
        for p in root.rglob("*")
        if p.is_file() and p.name.endswith(suffix) and not p.name.startswith(".")
    )


_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")  # write_atomic's: .{name}.{mkstemp's 8}.tmp


def sweep_temporaries(folder: str, settings: Settings) -> list[str]:
    """Remove the temporary files :func:`write_atomic` left under a local ``folder`` when its
    process was killed before the rename (``kill -9`` runs no cleanup): a publishing phase calls
    this on its folders before writing, so a re-run leaves only whole files, and an ingest on the
    meter store before it writes. S3 needs none (its
    temporary file is local; an object appears only once uploaded). Returns the paths removed."""
    if is_s3(folder) or not Path(folder).is_dir():
        return []
    stale = sorted(str(p) for p in Path(folder).rglob(".*.tmp") if p.is_file() and _TEMPORARY.match(p.name))
    for p in stale:
        Path(p).unlink(missing_ok=True)
    return stale


_SCRATCH = re.compile(r"^bua-(?:read|prepare|export|upload)-(\d+)-")  # scratch(): bua-{kind}-{pid}-…


def scratch_dir(kind: str) -> tempfile.TemporaryDirectory[str]:
    """A local scratch folder (removed when the ``with`` block ends) named after this process, so
    that :func:`sweep_scratch` can tell one whose process was killed from one in use."""
    return tempfile.TemporaryDirectory(prefix=f"bua-{kind}-{os.getpid()}-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def sweep_scratch(root: str | None = None) -> list[str]:
    """Remove the scratch folders and files of bua processes that no longer run (a ``kill -9``
    runs no cleanup: prepare's and export's spilled slices are gigabytes at 1M accounts) from the
    local temporary folder; a live process's are left alone (several runs may share a machine).
    Returns the paths removed."""
    folder = Path(root or tempfile.gettempdir())
    removed = []
    for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
        m = _SCRATCH.match(entry.name)
        if not m or _alive(int(m.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(str(entry))
    return removed


def delete(urls: Iterable[str], settings: Settings) -> None:
    urls = list(urls)
    s3 = [_strip(u) for u in urls if is_s3(u)]
    if s3:
        _fs(settings).rm(s3)
    for u in urls:
        if not is_s3(u) and os.path.exists(u):
            os.unlink(u)


def move(src: str, dst: str, settings: Settings) -> None:
    """Move a file (used for quarantine); across local/S3 it copies then deletes."""
    if not is_s3(src) and not is_s3(dst):
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(src, dst)
        return
    write_bytes_atomic(read_bytes(src, settings), dst, settings)
    delete([src], settings)
