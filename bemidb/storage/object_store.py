"""The S3 filesystem DuckDB reads Iceberg data files through (registered under s3://), safe for its threads.

Why not fsspec's ArrowFSWrapper over pyarrow's S3FileSystem: DuckDB reads a file with `seek(offset)` then
`read(n)` on ONE file object shared by all the threads scanning that file. The wrapper's file keeps one
position, and pyarrow drops the GIL during the network read, so another thread's seek lands between a seek
and its read (or while a read is in flight and then advances the position): bytes from the wrong offset,
which DuckDB decodes as a corrupt Parquet footer ("Invalid data", "Negative size", "invalid TType") or, worse,
as plausible values. Here each thread has its own position and every read is a positional ranged GET
(`read_at`), so no read depends on another thread's.

Every read must return exactly the bytes asked for (a short or failed read is retried, then raised as an
OSError, which the server answers with SQLSTATE 58030), and a read ending at the end of a Parquet file must
end with the magic `PAR1`: a wrong read never reaches DuckDB, so it never becomes an answer or a cached footer.

Iceberg data files are immutable (a new snapshot writes new files), so what we learn about a file (size,
mtime, its open pyarrow handle and its footer bytes) is cached by path, bounded; a file that vanishes (vacuum)
fails its reads, which drops it from the caches. The bytes read are kept too, in BLOCK-aligned pieces up to
`cache_bytes` (least recently used go first): the next query on the same columns reads memory, not the
network, as DuckDB's httpfs does with its external file cache.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from fsspec.implementations.arrow import ArrowFSWrapper

log = logging.getLogger(__name__)

ATTEMPTS = 4  # tries per read before the query fails with an I/O error
BACKOFF_S = (0.1, 0.4, 1.0)  # waits between the tries
TAIL_BYTES = 64 * 1024  # read once per file and kept: the Parquet footer and the page index usually fit
MAX_FILES = 4096  # files whose size and handle are kept
BLOCK = 512 * 1024  # unit of the read cache: a read fetches the missing blocks it covers in one request
PARQUET_MAGIC = b"PAR1"
_GLOB_CHARS = set("*?[")
PARALLEL_PIECE = 8 * BLOCK  # a run of missing blocks at least twice this long is fetched in pieces at once
PARALLEL_READS = 8
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(PARALLEL_READS, thread_name_prefix="bemidb-s3-read")
        return _POOL


@dataclass
class ReadStats:
    """Requests and bytes this process fetched from the store (for the benchmark and DEBUG logs)."""

    requests: int = 0
    bytes: int = 0
    retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, nbytes: int) -> None:
        with self.lock:
            self.requests += 1
            self.bytes += nbytes


@dataclass
class _Entry:
    size: int
    mtime: object
    handle: object = None  # pyarrow RandomAccessFile: read_at() is a stateless ranged GET


class BlockCache:
    """Bytes of immutable files by (path, block number; -1 is the file's tail), least recently used evicted
    past `capacity`."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.size = 0
        self._blocks: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> bytes | None:
        with self._lock:
            data = self._blocks.get(key)
            if data is not None:
                self._blocks.move_to_end(key)
            return data

    def put(self, key: tuple[str, int], data: bytes) -> None:
        with self._lock:
            old = self._blocks.pop(key, None)
            self.size += len(data) - (len(old) if old is not None else 0)
            self._blocks[key] = data
            while self.size > self.capacity and self._blocks:
                _, evicted = self._blocks.popitem(last=False)
                self.size -= len(evicted)

    def forget(self, path: str) -> None:
        with self._lock:
            for key in [k for k in self._blocks if k[0] == path]:
                self.size -= len(self._blocks.pop(key))


class ObjectStoreFS(ArrowFSWrapper):
    """Read-only fsspec filesystem over a pyarrow FileSystem, for DuckDB's register_filesystem."""

    protocol = "s3"
    cachable = False  # fsspec would hand the same instance to every caller with equal arguments

    def __init__(self, arrow_fs, cache_bytes: int = 0, **kwargs):
        super().__init__(arrow_fs, **kwargs)
        self.stats = ReadStats()
        self.cache = BlockCache(cache_bytes) if cache_bytes >= BLOCK else None
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    # -- what DuckDB calls ------------------------------------------------------------------------------

    def _open(self, path, mode="rb", **kwargs):
        if mode != "rb":
            raise PermissionError(f"the object store is read-only here ({mode!r} on {path})")
        path = self._strip_protocol(path)
        return PositionalFile(self, path, self._entry(path).size)

    def size(self, path):
        return self._entry(self._strip_protocol(path)).size

    def modified(self, path):
        return self._entry(self._strip_protocol(path)).mtime

    def isfile(self, path):
        try:
            self._entry(self._strip_protocol(path))
            return True
        except FileNotFoundError:
            return False

    def glob(self, path, **kwargs):
        # DuckDB globs every path it is given; a plain path needs no LIST request, only the (cached) HEAD.
        if not _GLOB_CHARS & set(path):
            return [self._strip_protocol(path)] if self.isfile(path) else []
        return super().glob(path, **kwargs)

    # -- reads ------------------------------------------------------------------------------------------

    def read_range(self, path: str, offset: int, length: int) -> bytes:
        """Exactly the bytes [offset, offset + length) of the file (clipped at its end), or an OSError."""
        entry = self._entry(path)
        end = min(entry.size, offset + length) if length >= 0 else entry.size
        if offset >= end:
            return b""
        tail_start = entry.size - min(entry.size, TAIL_BYTES)
        if offset >= tail_start and self.cache is not None:  # the footer: one request per file, then memory
            tail = self.cache.get((path, -1))
            if tail is None:
                tail = self._fetch(path, tail_start, entry.size - tail_start)
                self.cache.put((path, -1), tail)
            return tail[offset - tail_start:end - tail_start]
        if self.cache is None:
            return self._fetch(path, offset, end - offset)
        return self._read_blocks(path, entry.size, offset, end)

    def _read_blocks(self, path: str, size: int, offset: int, end: int) -> bytes:
        first, last = offset // BLOCK, (end - 1) // BLOCK
        blocks = {i: self.cache.get((path, i)) for i in range(first, last + 1)}
        missing = [i for i, data in blocks.items() if data is None]
        while missing:  # each run of adjacent missing blocks: one request
            run_end = 0
            while run_end + 1 < len(missing) and missing[run_end + 1] == missing[run_end] + 1:
                run_end += 1
            start_block, end_block = missing[0], missing[run_end]
            start = start_block * BLOCK
            data = self._fetch_run(path, start, min(size, (end_block + 1) * BLOCK) - start)
            for i in range(start_block, end_block + 1):
                piece = data[(i - start_block) * BLOCK:(i - start_block + 1) * BLOCK]
                blocks[i] = piece
                self.cache.put((path, i), piece)
            missing = missing[run_end + 1:]
        if first == last:
            return blocks[first][offset - first * BLOCK:end - first * BLOCK]
        parts = [blocks[first][offset - first * BLOCK:]]
        parts += [blocks[i] for i in range(first + 1, last)]
        parts.append(blocks[last][:end - last * BLOCK])
        return b"".join(parts)

    def _fetch_run(self, path: str, offset: int, length: int) -> bytes:
        """One ranged GET, or for a long range (a big column chunk) several at once: one connection to S3
        carries far less than the network can."""
        if length < 2 * PARALLEL_PIECE:
            return self._fetch(path, offset, length)
        pieces = [(start, min(PARALLEL_PIECE, offset + length - start))
                  for start in range(offset, offset + length, PARALLEL_PIECE)]
        return b"".join(_pool().map(lambda piece: self._fetch(path, *piece), pieces))

    def _fetch(self, path: str, offset: int, length: int) -> bytes:
        last_error: Exception | None = None
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S)) - 1])
                with self.stats.lock:
                    self.stats.retries += 1
            try:
                entry = self._entry(path, attempts=1)  # this loop is the retry
                if entry.handle is None:
                    entry.handle = self.fs.open_input_file(path)
                data = entry.handle.read_at(length, offset)
                self.stats.add(len(data))
                if len(data) != length:
                    raise OSError(f"short read: {len(data)} of {length} bytes at offset {offset}")
                if offset + length == entry.size and entry.size >= 8 and not data.endswith(PARQUET_MAGIC):
                    raise OSError("the file does not end with the Parquet magic bytes")
                return data
            except FileNotFoundError as exc:
                self._forget(path)
                raise FileNotFoundError(f"s3://{path} no longer exists: {exc}") from None
            except OSError as exc:  # network, throttling, a truncated response: a fresh handle, then again
                last_error = exc
                self._forget(path)
                log.debug("read of s3://%s [%d, +%d) failed (try %d of %d): %s", path, offset, length,
                          attempt + 1, ATTEMPTS, exc)
        log.warning("read of s3://%s failed %d times: %s", path, ATTEMPTS, last_error)
        raise OSError(f"could not read s3://{path} at offset {offset} after {ATTEMPTS} tries: {last_error}")

    # -- the per-file cache -----------------------------------------------------------------------------

    def _entry(self, path: str, attempts: int = ATTEMPTS) -> _Entry:
        with self._lock:
            entry = self._entries.get(path)
            if entry is not None:
                self._entries.move_to_end(path)
                return entry
        entry = self._head(path, attempts)
        with self._lock:
            entry = self._entries.setdefault(path, entry)
            while len(self._entries) > MAX_FILES:
                self._entries.popitem(last=False)
        return entry

    def _head(self, path: str, attempts: int) -> _Entry:
        from pyarrow.fs import FileType

        last_error: Exception | None = None
        for attempt in range(attempts):
            if attempt:
                time.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S)) - 1])
            try:
                info = self.fs.get_file_info(path)
                with self.stats.lock:
                    self.stats.requests += 1
                break
            except OSError as exc:
                last_error = exc
        else:
            raise OSError(f"could not look up s3://{path}: {last_error}")
        if info.type != FileType.File:
            raise FileNotFoundError(f"s3://{path} does not exist")
        return _Entry(size=info.size, mtime=info.mtime)

    def _forget(self, path: str) -> None:
        with self._lock:
            self._entries.pop(path, None)
        if self.cache is not None:
            self.cache.forget(path)


class PositionalFile:
    """The file object DuckDB gets: a position per thread, reads that never depend on another thread's."""

    def __init__(self, store: ObjectStoreFS, path: str, size: int):
        self.store = store
        self.path = path
        self.size = size
        self._positions: dict[int, int] = {}  # thread id -> offset; DuckDB seeks and reads on one thread
        self.closed = False

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 1:
            offset += self.tell()
        elif whence == 2:
            offset += self.size
        self._positions[threading.get_ident()] = offset
        return offset

    def tell(self) -> int:
        return self._positions.get(threading.get_ident(), 0)

    def read(self, length: int = -1) -> bytes:
        offset = self.tell()
        data = self.store.read_range(self.path, offset, length if length is not None else -1)
        self._positions[threading.get_ident()] = offset + len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True
        self._positions.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
