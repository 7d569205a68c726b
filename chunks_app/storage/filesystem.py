"""Chunk store on a local (or mounted) filesystem: one file per key under a root directory.

A chunk is written to a temporary dot-file next to its final name, fsynced, renamed into place
and its directory fsynced, so a key names either nothing or the complete content, also after a
crash. Operating-system errors come out as `ChunkStoreError` saying what to check.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, cast

from chunks_app.storage.base import (
    ChunkExistsError,
    ChunkNotFoundError,
    ChunkStore,
    ChunkStoreError,
    ChunkStoreFull,
    InvalidKeyError,
    StoredEntry,
    is_valid_key,
    validate_key,
    validate_prefix,
)
from core.durable import fsync_directory
from core.errors import FULL_ERRNOS

_NO_SUCH_FILE = (FileNotFoundError, NotADirectoryError, IsADirectoryError)
_FORBIDDEN = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
# Why a hard link may be refused where a copy would work: another filesystem, a filesystem
# without links, the source's link count at its limit.
_NO_LINK = frozenset({errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK})
# How many times a directory being removed is walked while writers still add files to it.
REMOVAL_PASSES = 3


def _remove_tree(directory: Path) -> bool:
    """Remove `directory` with all in it, passing over what vanishes meanwhile.

    False when something was written into it meanwhile, so that it is still there.
    """
    written_meanwhile = False

    def passed_over(
        function: Callable[..., object],
        path: str,
        exc_info: tuple[type[BaseException], BaseException, TracebackType],
    ) -> None:
        nonlocal written_meanwhile
        error = exc_info[1]
        if isinstance(error, OSError) and error.errno == errno.ENOTEMPTY:
            written_meanwhile = True
        elif not isinstance(error, FileNotFoundError):
            raise error

    shutil.rmtree(directory, onerror=passed_over)
    return not written_meanwhile


def _is_leftover_name(name: str) -> bool:
    """A temporary file name as `put` and `check_writable` make them: ".<anything>.tmp"."""
    return name.startswith(".") and name.endswith(".tmp") and not {"/", "\0"} & set(name)


class FileSystemChunkStore(ChunkStore):
    def __init__(self, *, root: str | Path) -> None:
        self.root = Path(root).absolute()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} root={str(self.root)!r}>"

    def put(self, key: str, content: Iterable[bytes], *, if_absent: bool = False) -> int:
        path = self._path(key)
        if isinstance(content, bytes | bytearray | memoryview):
            content = [content]
        new_directories = self._make_directories(path.parent)
        temporary = self._temporary_path(path)
        with self._os_errors("create", temporary):
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            try:
                written = 0
                for piece in content:
                    written += self._write_all(fd, piece, temporary)
                with self._os_errors("flush to disk", temporary):
                    os.fsync(fd)
            finally:
                with self._os_errors("close", temporary):
                    os.close(fd)
        except BaseException:
            with suppress(OSError):
                os.unlink(temporary)
            raise
        self._rename_into_place(temporary, path, new_directories, if_absent=if_absent)
        return written

    def put_from(self, key: str, *, source: ChunkStore, source_key: str) -> int:
        """A hard link to the source file when both stores share a filesystem: no copy, and
        no data to flush (the source's were); a copy otherwise."""
        if not isinstance(source, FileSystemChunkStore):
            return super().put_from(key, source=source, source_key=source_key)
        origin = source._path(source_key)
        path = self._path(key)
        new_directories = self._make_directories(path.parent)
        temporary = self._temporary_path(path)
        try:
            os.link(origin, temporary)
        except _NO_SUCH_FILE:
            raise ChunkNotFoundError(
                f"Nothing is stored under {source_key!r} in {source.root}."
            ) from None
        except OSError as exc:
            if exc.errno not in _NO_LINK:
                raise self._error(exc, "link", temporary) from exc
            return super().put_from(key, source=source, source_key=source_key)
        # The link keeps the source's modification time; orphan cleanup must see a new file.
        self._rename_into_place(temporary, path, new_directories, touch=True)
        return self.size(key)

    def _temporary_path(self, path: Path) -> Path:
        return path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")

    def _rename_into_place(
        self,
        temporary: Path,
        path: Path,
        new_directories: list[Path],
        *,
        touch: bool = False,
        if_absent: bool = False,
    ) -> None:
        """Rename the complete `temporary` to `path` and flush every directory that changed;
        with `if_absent`, link it there instead, which fails if `path` exists."""
        try:
            if touch:
                with self._os_errors("touch", temporary):
                    os.utime(temporary)
            if not if_absent:
                with self._os_errors("rename into place", path):
                    os.replace(temporary, path)
            else:
                self._move_if_absent(temporary, path)
        except BaseException:
            with suppress(OSError):
                os.unlink(temporary)
            raise
        changed_directories = dict.fromkeys([path.parent, *(d.parent for d in new_directories)])
        for directory in changed_directories:
            self._fsync_directory(directory)

    def _move_if_absent(self, temporary: Path, path: Path) -> None:
        """Link `temporary` to `path`, which fails if `path` exists, then drop `temporary`; a
        filesystem without links gets a check before a rename (not atomic, but no writer of
        ours reuses a spool key)."""
        taken = ChunkExistsError(
            f"{path} already exists: it was kept and the new bytes were not stored."
        )
        try:
            os.link(temporary, path)
        except FileExistsError:
            raise taken from None
        except OSError as exc:
            if exc.errno not in _NO_LINK:
                raise self._error(exc, "link into place", path) from exc
            if path.exists():
                raise taken from None
            with self._os_errors("rename into place", path):
                os.replace(temporary, path)
            return
        with self._os_errors("remove", temporary):
            os.unlink(temporary)

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return cast(BinaryIO, path.open("rb"))
        except _NO_SUCH_FILE:
            raise ChunkNotFoundError(f"No chunk is stored under {key!r} in {self.root}.") from None
        except OSError as exc:
            raise self._error(exc, "open", path) from exc

    def delete(self, key: str) -> None:
        """Remove the file; its directory stays, and the removal itself is not fsynced."""
        self._unlink(self._path(key))

    def _unlink(self, path: Path) -> None:
        try:
            os.unlink(path)
        except _NO_SUCH_FILE:
            return
        except OSError as exc:
            raise self._error(exc, "delete", path) from exc

    def delete_prefix(self, prefix: str) -> int:
        """Remove the directory of `prefix` whole, leftovers of interrupted writes included.

        Files that vanish during the walk are passed over; files written during it are removed
        by another pass.
        """
        validate_prefix(prefix)
        directory = self._path(prefix.removesuffix("/"))
        removed = sum(1 for _ in self.keys(prefix))
        with self._os_errors("delete", directory):
            for _ in range(REMOVAL_PASSES):
                if _remove_tree(directory):
                    return removed
            raise OSError(errno.ENOTEMPTY, os.strerror(errno.ENOTEMPTY))

    def exists(self, key: str) -> bool:
        path = self._path(key)
        try:
            return stat.S_ISREG(os.stat(path).st_mode)
        except _NO_SUCH_FILE:
            return False
        except OSError as exc:
            raise self._error(exc, "inspect", path) from exc

    def size(self, key: str) -> int:
        return self._stat(key).st_size

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Yield stored keys under `prefix`, name by name within each directory.

        Temporary files of unfinished or interrupted writes, and anything else whose name is
        not a valid key, are skipped.
        """
        validate_prefix(prefix)
        directory_key = prefix.rpartition("/")[0]
        return self._keys_in(self.root / directory_key, directory_key, prefix)

    def entries(self, prefix: str = "") -> Iterator[StoredEntry]:
        """One `stat` per file."""
        for key in self.keys(prefix):
            try:
                status = self._stat(key)
            except ChunkNotFoundError:
                continue
            yield StoredEntry(key, status.st_size, status.st_mtime)

    def modified_at(self, key: str) -> float:
        return self._stat(key).st_mtime

    def _stat(self, key: str) -> os.stat_result:
        """The stored file's status; `ChunkNotFoundError` if there is no file under the key."""
        path = self._path(key)
        try:
            status = os.stat(path)
        except _NO_SUCH_FILE:
            status = None
        except OSError as exc:
            raise self._error(exc, "inspect", path) from exc
        if status is None or not stat.S_ISREG(status.st_mode):
            raise ChunkNotFoundError(f"No chunk is stored under {key!r} in {self.root}.")
        return status

    def leftovers(self, *, older_than: float) -> list[str]:
        """Temporary dot-files left by interrupted writes, in directories that keys can name."""
        found = []
        pending = [self.root]
        while pending:
            directory = pending.pop()
            for entry in self._scan(directory):
                path = Path(entry.path)
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if is_valid_key(entry.name):
                            pending.append(path)
                    elif (
                        _is_leftover_name(entry.name)
                        and entry.is_file(follow_symlinks=False)
                        and entry.stat(follow_symlinks=False).st_mtime < older_than
                    ):
                        found.append(path.relative_to(self.root).as_posix())
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise self._error(exc, "inspect", path) from exc
        return sorted(found)

    def remove_leftover(self, name: str) -> None:
        self._unlink(self._leftover_path(name))

    @property
    def location(self) -> str:
        return str(self.root)

    def used_bytes(self) -> int:
        """Add up the sizes of all files under the root, temporary ones included.

        This walks the whole tree, one stat per file: fine for a status page or a periodic
        check, too slow to call on every request of a large store.
        """
        used_bytes = 0
        pending = [self.root]
        while pending:
            directory = pending.pop()
            for entry in self._scan(directory):
                try:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        used_bytes += entry.stat(follow_symlinks=False).st_size
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise self._error(exc, "inspect", Path(entry.path)) from exc
        return used_bytes

    def check_writable(self) -> None:
        self._make_directories(self.root)
        probe = self.root / f".health.{secrets.token_hex(8)}.tmp"
        with self._os_errors("write a probe file in", self.root):
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            os.unlink(probe)

    def free_bytes(self) -> int:
        existing = self.root
        while not existing.exists() and existing.parent != existing:
            existing = existing.parent
        with self._os_errors("measure free space on", existing):
            return shutil.disk_usage(existing).free

    def _path(self, key: str) -> Path:
        validate_key(key)
        return self.root / key

    def _leftover_path(self, name: str) -> Path:
        """The path of a name `leftovers` gives; anything else, or outside the root, is refused."""
        directory, _, file_name = name.rpartition("/") if isinstance(name, str) else ("", "", "")
        real_root = os.path.realpath(self.root)
        if _is_leftover_name(file_name) and (not directory or is_valid_key(directory)):
            path = self.root / name
            if os.path.commonpath([real_root, os.path.realpath(path.parent)]) == real_root:
                return path
        raise InvalidKeyError(
            f"{name!r} is not a leftover of an interrupted write under {self.root}."
        )

    def _keys_in(self, directory: Path, directory_key: str, prefix: str) -> Iterator[str]:
        for entry in self._scan(directory):
            if entry.name.startswith("."):
                continue
            key = f"{directory_key}/{entry.name}" if directory_key else entry.name
            if not is_valid_key(key):
                continue
            try:
                is_directory = entry.is_dir(follow_symlinks=False)
                is_file = not is_directory and entry.is_file()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise self._error(exc, "inspect", Path(entry.path)) from exc
            if is_directory and (key.startswith(prefix) or prefix.startswith(f"{key}/")):
                yield from self._keys_in(Path(entry.path), key, prefix)
            elif is_file and key.startswith(prefix):
                yield key

    def _scan(self, directory: Path) -> list[os.DirEntry[str]]:
        """List a directory sorted by name; a missing directory is empty."""
        try:
            with os.scandir(directory) as entries:
                return sorted(entries, key=lambda entry: entry.name)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise self._error(exc, "list", directory) from exc

    def _make_directories(self, directory: Path) -> list[Path]:
        """Create `directory` and its missing parents; return those that were missing."""
        missing = []
        while not directory.is_dir() and directory.parent != directory:
            missing.append(directory)
            directory = directory.parent
        for new_directory in reversed(missing):
            try:
                os.mkdir(new_directory)
            except FileExistsError:
                if not new_directory.is_dir():
                    raise ChunkStoreError(
                        f"Could not create directory {new_directory}: a file is in the way. "
                        f"Check what wrote into {self.root} besides this chunk store."
                    ) from None
            except OSError as exc:
                raise self._error(exc, "create directory", new_directory) from exc
        return missing

    def _write_all(self, fd: int, piece: bytes, path: Path) -> int:
        remaining = memoryview(piece).cast("B")
        size = len(remaining)
        with self._os_errors("write", path):
            while remaining:
                remaining = remaining[os.write(fd, remaining) :]
        return size

    def _fsync_directory(self, directory: Path) -> None:
        with self._os_errors("flush to disk directory", directory):
            fsync_directory(directory)

    @contextmanager
    def _os_errors(self, action: str, path: Path) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise self._error(exc, action, path) from exc

    def _error(self, exc: OSError, action: str, path: Path) -> ChunkStoreError:
        message = f"Could not {action} {path}: {exc.strerror or exc}."
        if exc.errno in FULL_ERRNOS:
            return ChunkStoreFull(
                f"{message} Check free space and quota on the filesystem holding {self.root}."
            )
        if exc.errno in _FORBIDDEN:
            advice = (
                f"that {self.root} is writable by this process's user "
                "(ownership, permissions, read-only mount)"
            )
        else:
            advice = f"that {self.root} is an existing directory on a healthy, mounted filesystem"
        return ChunkStoreError(f"{message} Check {advice}.")
