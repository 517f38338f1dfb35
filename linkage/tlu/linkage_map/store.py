"""The linkage map's DuckDB file: schema, opening and locking, transactions, small readers.

One file holds a map (ACID: an update is one transaction; DuckDB's write-ahead log makes a
killed process leave the last committed version). Tables, all queryable with plain SQL:

- ``meta(key, value)``: map format version, schema fingerprint, key-check value, filter
  length, encoded-file format version, the match options (threshold, dedupe,
  dedupe_threshold, solver, blocking, max_block, seed, LSH bands/rows), current version.
- ``parties(pix, party, first_version)``: party index (solver order) and name.
- ``versions(version, created, verb, operator, parties, sources, delta, added, changed,
  retired, unchanged, records, entities, pairs, seconds)``: the version log; ``sources`` is
  JSON (file name, party, records, SHA-256 of the file, the file's creation time).
- ``records(rix, pix, record_id, clk, digest, valid_from, valid_to)``: every version of
  every encoded record (``rix`` is the row's own id; a changed record gets a new row);
  ``valid_to`` is the version it stopped being current (NULL: current). ``digest`` is
  BLAKE2b-128 of the filter bytes and the block keys (change detection).
- ``record_keys(key, rix)``: block keys of the *current* records (candidate search).
- ``pairs(a, b, score)``: scored candidate pairs (Dice >= threshold) between current
  records, ``a < b`` (rix): what re-clustering an affected component needs.
- ``membership(rix, entity, valid_from, valid_to)``: each record version's entity, with
  history.
- ``entities(entity, first_version, ended, fate, successor)``: every entity id ever issued
  (ids are never reused); ``fate`` merged / retired, ``successor`` the survivor of a merge.
- ``events(version, change, entity, related, records)``: created / merged / split / retired.

Views ``links_current`` and ``entity_ids`` show entity ids as 16 hex digits.
Versions: ``valid_from <= N`` and ``(valid_to IS NULL OR valid_to > N)`` is "current at N".
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import duckdb
import numpy as np
import pyarrow as pa

from linkage._files import Output, OutputError, check_outputs, os_error_message
from linkage.errors import InputError

MAP_FORMAT_VERSION = "1"
MAP_SUFFIX = (".duckdb",)  # a new map's name ends so (never an encoded file's .parquet)

DDL = """
CREATE TABLE meta (key VARCHAR NOT NULL, value VARCHAR NOT NULL);
CREATE TABLE parties (pix SMALLINT NOT NULL, party VARCHAR NOT NULL, first_version INTEGER);
CREATE TABLE versions (
    version INTEGER NOT NULL, created TIMESTAMP NOT NULL, verb VARCHAR NOT NULL,
    operator VARCHAR, parties VARCHAR, sources VARCHAR, delta BOOLEAN,
    added BIGINT, changed BIGINT, retired BIGINT, unchanged BIGINT,
    records BIGINT, entities BIGINT, pairs BIGINT, seconds DOUBLE);
CREATE TABLE records (
    rix BIGINT NOT NULL, pix SMALLINT NOT NULL, record_id VARCHAR NOT NULL, clk BLOB NOT NULL,
    digest BLOB NOT NULL, valid_from INTEGER NOT NULL, valid_to INTEGER);
CREATE TABLE record_keys (key UBIGINT NOT NULL, rix BIGINT NOT NULL);
CREATE TABLE pairs (a BIGINT NOT NULL, b BIGINT NOT NULL, score DOUBLE NOT NULL);
CREATE TABLE membership (
    rix BIGINT NOT NULL, entity UBIGINT NOT NULL, valid_from INTEGER NOT NULL,
    valid_to INTEGER);
CREATE TABLE entities (
    entity UBIGINT NOT NULL, first_version INTEGER NOT NULL, ended INTEGER, fate VARCHAR,
    successor UBIGINT);
CREATE TABLE events (
    version INTEGER NOT NULL, change VARCHAR NOT NULL, entity UBIGINT NOT NULL,
    related UBIGINT, records BIGINT);
CREATE VIEW links_current AS
    SELECT printf('%016x', m.entity) AS entity_id, p.party, r.record_id
    FROM membership m JOIN records r USING (rix) JOIN parties p USING (pix)
    WHERE m.valid_to IS NULL;
CREATE VIEW entity_ids AS
    SELECT printf('%016x', entity) AS entity_id, first_version, ended, fate,
           CASE WHEN successor IS NULL THEN NULL ELSE printf('%016x', successor) END
               AS successor_id
    FROM entities;
"""


EVENTS = (
    "(SELECT version, change, entity, related, records FROM events UNION ALL "
    "SELECT 1, 'created', entity, NULL::UBIGINT, count(*) FROM membership "
    "WHERE valid_from = 1 AND NOT EXISTS (SELECT 1 FROM events WHERE version = 1) "
    "GROUP BY entity)"
)
"""The ``events`` table as a subquery, with version 1's ``created`` events of maps made
before ``map create`` stored them (derived from version 1's memberships)."""


def hex_ids(ids: np.ndarray) -> pa.Array:
    """uint64 entity ids -> 16 lowercase hex digits each (vectorised)."""
    a = np.ascontiguousarray(ids, dtype=">u8").view(np.uint8).reshape(-1, 8)
    digits = np.frombuffer(b"0123456789abcdef", np.uint8)
    out = np.empty((a.shape[0], 16), np.uint8)
    out[:, 0::2] = digits[a >> 4]
    out[:, 1::2] = digits[a & 15]
    return pa.array(out.reshape(-1).view("S16").astype(object)).cast(pa.string())


def parse_id(text: str) -> int:
    """A 16-hex entity id -> its integer; InputError otherwise."""
    t = text.strip().lower()
    if len(t) != 16 or any(c not in "0123456789abcdef" for c in t):
        raise InputError(f"entity id {text!r} is not 16 hexadecimal digits")
    return int(t, 16)


_PRIVATE_UMASK = 0o077


def private_umask() -> int:
    """Set the umask to 077 (files created from now on are 0600: DuckDB opens its database
    and write-ahead log 0666 minus the umask) and return the previous one. The umask is
    **process-wide**: while it is held, every file any thread of this process creates is
    private too. Restore it with ``os.umask(previous)``."""
    return os.umask(_PRIVATE_UMASK)


def _make_private(*paths: Path) -> None:
    """chmod existing files to 0600 (a map or WAL written by an older linkage or another
    tool may be looser)."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)


_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO}
_WRITE_FAILURES = (duckdb.IOException, duckdb.TransactionException, duckdb.FatalException)


def write_error(exc: BaseException, path: Path) -> OutputError | None:
    """The :class:`OutputError` naming the map for a failed write (a full disk, a read-only
    file system: DuckDB's IOException / TransactionException / FatalException, or an
    OSError), None for any other exception. Never DuckDB's own message: it may quote data."""
    if isinstance(exc, OSError):
        if exc.errno not in _WRITE_ERRNOS:
            return None
        return OutputError(f"cannot write {os_error_message(exc, path)}")
    if isinstance(exc, _WRITE_FAILURES):
        text = str(exc).lower()
        if "no space" in text or "disk is full" in text:
            reason = os.strerror(errno.ENOSPC)
        elif "read-only" in text:
            reason = os.strerror(errno.EROFS)
        else:
            reason = f"the file system refused a write ({type(exc).__name__})"
        return OutputError(f"cannot write {path}: {reason}; the map is unchanged")
    return None


_DAMAGE = {
    "corrupt database file": "a block's checksum does not match its contents",
    "could not read enough bytes": "it is shorter than its contents: truncated?",
    "checksum": "a checksum does not match",
    "not a valid duckdb database": "its header is not DuckDB's: emptied or overwritten?",
}


def damage_error(exc: BaseException, path: Path) -> InputError | None:
    """The error naming the map for DuckDB's words on a damaged file (bytes overwritten, a
    truncated file), None for any other exception. Never DuckDB's own message."""
    if not isinstance(exc, duckdb.Error):
        return None
    text = str(exc).lower()
    if "not a valid duckdb database" in text and path.suffix not in MAP_SUFFIX:
        return InputError(f"{path}: not a linkage map (not a DuckDB file)")  # notes.txt
    for words, reason in _DAMAGE.items():
        if words in text:
            return damaged(path, reason)
    return None


def damaged(path: Path, reason: str) -> InputError:
    return InputError(f"{path}: the map file is damaged ({reason}); restore it from a backup")


def is_duckdb_file(path: Path) -> bool:
    """The file starts with DuckDB's header (its magic bytes ``DUCK`` at offset 8)."""
    try:
        with open(path, "rb") as f:
            return f.read(12)[8:12] == b"DUCK"
    except OSError:
        return False


# leftovers of a killed create or rebuild: .NAME.PID.partial(.wal), .NAME.filters.PID.partial,
# .NAME.keys.PID.partial (written by :func:`new_map`, :func:`new_side_file` and rebuilds)
_PARTIAL = r"^\.{name}(?:\.filters|\.keys)?\.(\d+)\.partial(?:\.wal)?$"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process (EPERM): alive
        return True
    return True


def remove_stale_partials(path: Path) -> list[Path]:
    """Remove the temporary files a killed ``map create`` (or a killed rebuild of the filter
    file or key index) left beside the map at ``path``: those whose process id is no
    longer running (never a live process's, this one's included). Returns what it removed."""
    folder = path.parent if str(path.parent) else Path(".")
    pattern = re.compile(_PARTIAL.format(name=re.escape(path.name)))
    removed: list[Path] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = pattern.match(name)
        if m is None or _alive(int(m.group(1))):
            continue
        with contextlib.suppress(OSError):
            (folder / name).unlink()
            removed.append(folder / name)
    return removed


def read_header(path: Path, size: int) -> bytes | None:
    """The first ``size`` bytes of a side file of the map, or None when it is missing,
    unreadable or shorter (an untrusted file: the caller rebuilds it)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(size)
    except OSError:
        return None
    return raw if len(raw) == size else None


@contextlib.contextmanager
def new_side_file(path: Path) -> Iterator[tuple[BinaryIO, Path]]:
    """A side file of a new or rebuilt map (the filter file, the key index) written to a
    private temporary file beside ``path``: yields (open file, temporary path), fsyncs it
    when the block ends; on error the temporary file is removed. The caller renames it
    into place once the map itself is in place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(tmp, "wb") as f:
            os.chmod(tmp, 0o600)
            yield f, tmp
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def put_side_file(tmp: Path, path: Path) -> None:
    """Rename a side file written by :func:`new_side_file` (a rebuilt key index) into place."""
    os.replace(tmp, path)


def append_durably(path: Path, end: int, parts: Iterable[bytes | memoryview]) -> None:
    """Write ``parts`` at byte ``end`` of a side file of the map (the filter file, the key
    index), cutting whatever lay past it, and fsync. On a failed write the file is cut back
    to ``end`` (its stored content and header as they were) and a refused write raises the
    map's :class:`OutputError` (:func:`write_error`)."""
    try:
        with open(path, "r+b") as f:
            f.seek(end)
            for part in parts:
                f.write(part)
            f.truncate()
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:  # a full disk: the stored content and header are as they were
        with contextlib.suppress(OSError):
            os.truncate(path, end)
        err = write_error(exc, path)
        if err is not None:
            raise err from None
        raise


@contextlib.contextmanager
def cut_back_on_failure(path: Path, end: int) -> Iterator[None]:
    """Around the transaction that commits what :func:`append_durably` wrote past ``end``: if
    it fails, the appended bytes are cut off again (best effort: bytes past the stored
    content are unused in any case), so the side file is byte for byte as it was."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            os.truncate(path, end)
        raise


class MapStore:
    """An open map. ``con`` is the DuckDB connection; use :func:`open_map`. A map opened for
    writing holds a private umask (:func:`private_umask`) until :meth:`close`."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, path: Path, umask: int | None = None
    ) -> None:
        self.con = con
        self.path = path
        self._umask = umask  # the umask to restore on close (None: not changed)
        self._meta: dict[str, str] | None = None
        # files written beside a new map (temporary path, final path): renamed into place
        # after the map, removed if its creation fails (see :func:`new_map`)
        self.companions: list[tuple[Path, Path]] = []

    # -- reading -----------------------------------------------------------------------
    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with self.damage_checked():
            return self.con.execute(query, list(params)).fetchall()

    def arrow(self, query: str, *params: Any) -> pa.Table:
        with self.damage_checked():
            if not params:
                return self.con.sql(query).to_arrow_table()
            args = params[0] if len(params) == 1 and isinstance(params[0], dict) else list(params)
            return self.con.sql(query, params=args).to_arrow_table()

    @contextlib.contextmanager
    def damage_checked(self) -> Iterator[None]:
        """DuckDB's errors on a damaged file become one :func:`damaged` error naming it."""
        try:
            yield
        except duckdb.Error as exc:
            err = damage_error(exc, self.path)
            if err is not None:
                raise err from None
            raise

    @property
    def meta(self) -> dict[str, str]:
        if self._meta is None:
            self._meta = dict(self.sql("SELECT key, value FROM meta"))
        return self._meta

    @property
    def version(self) -> int:
        return int(self.meta["current_version"])

    def parties(self) -> dict[str, int]:
        """party name -> party index (pix)."""
        return {p: int(i) for i, p in self.sql("SELECT pix, party FROM parties ORDER BY pix")}

    def max_rix(self) -> int:
        return int(self.sql("SELECT coalesce(max(rix), -1) FROM records")[0][0])

    def check_version(self, version: int | None) -> int:
        cur = self.version
        if version is None:
            return cur
        if not 1 <= version <= cur:
            raise InputError(f"{self.path}: no version {version} (versions 1..{cur})")
        return version

    # -- writing -----------------------------------------------------------------------
    def set_meta(self, values: dict[str, str]) -> None:
        for k, v in values.items():
            self.con.execute("DELETE FROM meta WHERE key = ?", [k])
            self.con.execute("INSERT INTO meta VALUES (?, ?)", [k, str(v)])
        self._meta = None

    def insert(self, table: str, data: pa.Table) -> None:
        """Append an Arrow table (columns in the table's order)."""
        if data.num_rows == 0:
            return
        name = f"_in_{table}"
        self.con.register(name, data)
        try:
            cols = ", ".join(data.column_names)
            self.con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {name}")
        finally:
            self.con.unregister(name)

    @contextlib.contextmanager
    def temp(self, name: str, data: pa.Table) -> Iterator[str]:
        """Expose an Arrow table to SQL as ``name`` inside the block."""
        self.con.register(name, data)
        try:
            yield name
        finally:
            self.con.unregister(name)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: COMMIT at the end of the block, ROLLBACK on any exception."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException as exc:
            with contextlib.suppress(duckdb.Error):
                self.con.execute("ROLLBACK")
            self._meta = None
            err = write_error(exc, self.path) or damage_error(exc, self.path)
            if err is not None:
                raise err from None
            raise
        try:
            self.con.execute("COMMIT")
        except (*_WRITE_FAILURES, OSError) as exc:
            with contextlib.suppress(duckdb.Error):
                self.con.execute("ROLLBACK")
            raise write_error(exc, self.path) from None  # type: ignore[misc]
        finally:
            self._meta = None

    def close(self) -> None:
        try:
            with contextlib.suppress(*_WRITE_FAILURES):
                self.con.close()
            wal = Path(f"{self.path}.wal")
            with contextlib.suppress(OSError):
                if wal.stat().st_size == 0:  # left by a failed write: nothing to replay
                    wal.unlink()
        finally:
            if self._umask is not None:
                os.umask(self._umask)
                self._umask = None


def _connect(path: Path, read_only: bool, wait: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + max(wait, 0.0)
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            msg = str(exc)
            if "lock" not in msg.lower():
                err = damage_error(exc, path)
                if err is not None:
                    raise err from None
                raise InputError(f"{path}: cannot open the map ({msg.splitlines()[0]})") from None
            if time.monotonic() >= deadline:
                raise in_use(path, wait) from None
            time.sleep(0.2)
        except duckdb.Error as exc:
            err = damage_error(exc, path)
            if err is None and is_duckdb_file(path):
                err = damaged(path, f"DuckDB cannot open it: {exc.__class__.__name__}")
            if err is not None:
                raise err from None
            raise InputError(f"{path}: not a linkage map ({exc.__class__.__name__})") from None


def in_use(path: Path, wait: float = 0.0) -> InputError:
    then = "try again when it has finished, or give --wait SECONDS"
    if wait > 0:
        then = f"waited {round(wait, 2):g} s; try again later, or give a longer --wait"
    return InputError(
        f"{path}: the map is in use by another process (an update, or a program with the map "
        f"open such as `duckdb -readonly`, holds its lock); {then}"
    )


def open_map(path: str | Path, *, write: bool = False, wait: float = 0.0) -> MapStore:
    """Open an existing map (read-only unless ``write``); InputError if it is not a map or
    another process holds it (after waiting up to ``wait`` seconds)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such map (make one with `linkage map create`)")
    old_umask = private_umask() if write else None
    try:
        con = _connect(p, read_only=not write, wait=wait)
    except BaseException:
        if old_umask is not None:
            os.umask(old_umask)
        raise
    store = MapStore(con, p, old_umask)
    if write:
        _make_private(p, Path(f"{p}.wal"))
    try:
        fmt = store.meta.get("map_format_version")
    except InputError:  # damaged
        store.close()
        raise
    except duckdb.Error as exc:
        store.close()
        if damage_error(exc, p) is not None or isinstance(exc, duckdb.IOException):
            raise damaged(p, f"its tables cannot be read: {exc.__class__.__name__}") from None
        raise InputError(f"{p}: not a linkage map (no meta table)") from None
    if fmt != MAP_FORMAT_VERSION:
        store.close()
        raise InputError(
            f"{p}: linkage map format {fmt!r} is not supported (this linkage reads "
            f"{MAP_FORMAT_VERSION!r})"
        )
    if write:
        # random filter bits do not compress; DuckDB's analysis of them only costs time
        con.execute("SET force_compression = 'uncompressed'")
    return store


def check_new_map(path: str | Path, inputs: Sequence[object] = (), *, force: bool = False) -> Path:
    """Refuse a map path before any work: one of the ``inputs`` (the map, its WAL, filter
    file or key index would overwrite it, with or without ``force``), a directory, an
    existing file unless ``force``, and a map another process holds (an update, or a program
    with it open). Returns the path."""
    p = Path(path)
    ins = {Path(i).resolve(): Path(i) for i in inputs if isinstance(i, str | Path)}
    sides = {
        "map": p,
        "map's write-ahead log": Path(f"{p}.wal"),
        "map's filter file": Path(f"{p}.filters"),
        "map's key index": Path(f"{p}.keys"),
    }
    for what, side in sides.items():
        if side.resolve() in ins:
            raise OutputError(f"{side}: the {what} would overwrite the input {ins[side.resolve()]}")
    check_side_files(p)
    (p,) = check_outputs([Output(p, "map", MAP_SUFFIX)],
                         [i for i in inputs if isinstance(i, str | Path)], force=force)  # fmt: skip
    with held_lock(p):  # in use: refused now, not after the work
        pass
    return p


def check_side_files(p: Path) -> None:
    """OutputError when the path of the map's filter file or key index is a directory (it
    could not be written; the error would name a temporary file)."""
    for what, side in (("filter file", f"{p}.filters"), ("key index", f"{p}.keys")):
        if Path(side).is_dir():
            raise OutputError(f"{side}: the map's {what} is a directory; move it away")


@contextlib.contextmanager
def held_lock(path: Path) -> Iterator[None]:
    """Hold the lock DuckDB takes on an existing map file (an update holds it for writing, a
    reader or ``duckdb -readonly`` for reading) for the block: :func:`in_use` if another
    process holds it. Nothing to lock when the file does not exist (or cannot be opened for
    writing, where DuckDB could not write it either)."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        fd = -1
    try:
        if fd >= 0:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    raise in_use(path) from None
                raise
        yield
    finally:
        if fd >= 0:
            os.close(fd)


def _stamp(p: Path) -> tuple[int, int, int] | None:
    """(inode, size, mtime) of an existing file, None when there is none."""
    st = p.stat() if p.exists() else None
    return None if st is None else (st.st_ino, st.st_size, st.st_mtime_ns)


def _put_in_place(tmp: Path, p: Path, force: bool, before: tuple[int, int, int] | None) -> None:
    """Move the finished map ``tmp`` to ``p``. With ``force`` it replaces ``p`` while holding
    its lock (an update or a reader of the old map: :func:`in_use`, nothing replaced), and
    only if ``p`` is as it was when the create began (``before``: an update applied
    meanwhile is never wiped out); without, ``p`` must still not exist: a file that appeared
    meanwhile (another create) is never replaced (``os.link`` fails if the name exists)."""
    if force:
        with held_lock(p):
            if _stamp(p) != before:
                raise OutputError(
                    f"{p} changed while the new map was built (an update applied a version?); "
                    "it was left as it is and nothing was written: run the create again to "
                    "replace it"
                )
            Path(f"{p}.wal").unlink(missing_ok=True)
            os.replace(tmp, p)
        return
    if not p.exists():
        Path(f"{p}.wal").unlink(missing_ok=True)  # a stale log must not replay into it
    try:
        os.link(tmp, p)
    except FileExistsError:
        raise OutputError(
            f"{p} appeared while the map was being created (another `map create`?); it was "
            "left as it is and nothing was written (force=True replaces it)"
        ) from None
    except OSError as exc:  # no hard links on this file system: reserve the name, then rename
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        try:
            os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            raise OutputError(
                f"{p} appeared while the map was being created (another `map create`?); it "
                "was left as it is and nothing was written (force=True replaces it)"
            ) from None
        os.replace(tmp, p)
        return
    tmp.unlink()


@contextlib.contextmanager
def new_map(
    path: str | Path, *, force: bool = False, inputs: Sequence[object] = ()
) -> Iterator[MapStore]:
    """Create a map at a temporary path beside ``path``; on success it is checkpointed,
    closed and put into place (:func:`_put_in_place`: so a crash never leaves a half-built
    map at ``path``, a map in use is never replaced and, without ``force``, neither is a
    file that appeared meanwhile), then its companion files (``store.companions``: the
    filter file, the key index) are renamed into place; on failure they are removed. A
    crash between the renames leaves a new map with no (or the replaced map's) filter file
    or key index, which the first update rebuilds. Temporary files of killed creates are
    removed first (:func:`remove_stale_partials`)."""
    p = check_new_map(path, inputs, force=force)
    before = _stamp(p)  # with force: the map it replaces, as it is now
    remove_stale_partials(p)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.partial")
    for leftover in (tmp, Path(f"{tmp}.wal")):
        leftover.unlink(missing_ok=True)
    old_umask = private_umask()  # the map, its WAL and companions are 0600 from creation
    con: duckdb.DuckDBPyConnection | None = None
    store = MapStore(con, p)  # type: ignore[arg-type]
    try:
        con = store.con = duckdb.connect(str(tmp))
        con.execute("SET force_compression = 'uncompressed'")
        con.execute(DDL)
        yield store
        con.execute("CHECKPOINT")
        con.close()
        os.chmod(tmp, 0o600)
        _put_in_place(tmp, p, force, before)
        for part, final in store.companions:
            os.replace(part, final)
    except BaseException as exc:
        if con is not None:
            with contextlib.suppress(duckdb.Error):
                con.close()
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}.wal").unlink(missing_ok=True)
        for part, _final in store.companions:
            part.unlink(missing_ok=True)
        err = write_error(exc, p)
        if err is not None:
            raise err from None
        raise
    finally:
        os.umask(old_umask)
