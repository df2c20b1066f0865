"""Resumable downloads and safe archive extraction for datasets and pretrained models.

:func:`download_file` writes to ``<destination>.part``, resumes an interrupted
transfer with an HTTP ``Range`` request (also across runs: a ``.part`` left
by a killed process is continued), renames the file when it is complete and
checks its size and sha256 when they are known.  A destination that already
exists and passes the checks is not downloaded again.

:func:`verify_archive` reads a zip or tar archive through before anything is
extracted; :func:`extract_archive` extracts it with ``strip_components`` like
``tar --strip-components`` and refuses members that would land outside the
target directory (absolute paths, ``..``, links, devices).
"""

import hashlib
import http.client
import os
import shutil
import socket
import stat
import tarfile
import time
import urllib.error
import urllib.request
import zipfile

#: Attempts per call: the first request plus resumed ones after a dropped connection.
DEFAULT_ATTEMPTS = 5


class DownloadError(IOError):
    """A download that could not be completed or does not match its expected size/checksum."""


def file_sha256(path, chunk_size=1 << 20):
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_complete(path, expected_size, sha256, digest=None):
    """Raise DownloadError naming ``path`` if its size or sha256 differs from the expected values."""
    size = os.path.getsize(path)
    if expected_size is not None and size != expected_size:
        raise DownloadError(f"{path} has {size} bytes, expected {expected_size}")
    if sha256 is not None:
        actual = digest.hexdigest() if digest is not None else file_sha256(path)
        if actual.lower() != sha256.lower():
            raise DownloadError(f"{path} has sha256 {actual}, expected {sha256}")


def _open(url, offset, timeout):
    headers = {"User-Agent": "video_prediction-downloader"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _total_size(response, offset):
    """Full size of the remote file from Content-Range / Content-Length, or None."""
    content_range = response.headers.get("Content-Range")
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        if total.isdigit():
            return int(total)
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit():
        return int(length) + offset
    return None


def download_file(url, destination, *, expected_size=None, sha256=None, chunk_size=1 << 20, progress=True,
                  attempts=DEFAULT_ATTEMPTS, timeout=60, retry_wait=1.0):
    """Download ``url`` to ``destination`` (resumable); returns ``destination``.

    * An existing ``destination`` is checked (size, sha256 when given) and
      returned without downloading; a mismatch raises :class:`DownloadError`
      naming it (it is left alone: delete it to download again).
    * Bytes go to ``<destination>.part``; a dropped connection is resumed
      with ``Range: bytes=<received>-`` up to ``attempts`` times, and a
      ``.part`` from an earlier run is continued the same way.  When all
      attempts fail the ``.part`` is kept for the next run.  An attempt that
      received nothing is followed by a pause (``retry_wait`` seconds,
      doubling), one that made progress is resumed at once.
    * A complete file whose size or sha256 is wrong is deleted (resuming
      cannot repair it) and :class:`DownloadError` names it.
    """
    destination = os.fspath(destination)
    if os.path.exists(destination):
        _check_complete(destination, expected_size, sha256)
        return destination
    os.makedirs(os.path.dirname(os.path.abspath(destination)), exist_ok=True)
    part = destination + ".part"
    bar = None
    last_error = None
    try:
        stalled = 0
        for attempt in range(max(1, attempts)):
            offset = os.path.getsize(part) if os.path.exists(part) else 0
            if attempt and offset <= previous_offset:
                # No bytes in the last attempt (server or network down): back off before trying again.
                stalled += 1
                time.sleep(min(retry_wait * 2 ** (stalled - 1), 60))
            previous_offset = offset
            if expected_size is not None and offset > expected_size:
                os.remove(part)  # longer than the real file: cannot be a prefix of it
                offset = 0
            if expected_size is not None and offset == expected_size:
                break
            try:
                response = _open(url, offset, timeout)
            except urllib.error.HTTPError as e:
                if e.code == 416 and offset:  # nothing left to send: the part is (claimed) complete
                    break
                if e.code in (404, 403, 410):
                    raise DownloadError(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
                last_error = e
                continue
            except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
                last_error = e
                continue
            with response:
                status = getattr(response, "status", None) or 200
                if offset and status != 206:
                    offset = 0  # the server ignored the Range header: start over
                total = _total_size(response, offset)
                if expected_size is not None and total is not None and total != expected_size:
                    raise DownloadError(f"{url} has {total} bytes on the server, expected {expected_size}")
                if progress and bar is None:
                    from tqdm import tqdm

                    bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                               desc=os.path.basename(destination))
                elif bar is not None:
                    bar.n = offset
                    bar.refresh()
                try:
                    with open(part, "ab" if offset else "wb") as f:
                        while True:
                            chunk = response.read(chunk_size)
                            if not chunk:
                                break
                            f.write(chunk)
                            if bar is not None:
                                bar.update(len(chunk))
                except (OSError, http.client.HTTPException, socket.timeout) as e:
                    last_error = e
                    continue
            received = os.path.getsize(part)
            if total is not None and received < total:
                last_error = DownloadError(f"connection closed after {received} of {total} bytes")
                continue
            break
        else:
            raise DownloadError(
                f"could not download {url} after {attempts} attempts ({last_error}); the partial file {part} is "
                "kept and the next run resumes it"
            )
    finally:
        if bar is not None:
            bar.close()
    if not os.path.exists(part):
        raise DownloadError(f"could not download {url}: {last_error}")
    try:
        _check_complete(part, expected_size, sha256)
    except DownloadError as e:
        os.remove(part)
        raise DownloadError(f"downloaded {url} but {e} (the file was deleted)") from None
    os.replace(part, destination)
    return destination


# -- archives ------------------------------------------------------------------------------------


def _archive_kind(path):
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except (OSError, EOFError):
        pass
    raise ValueError(f"{path} is neither a zip nor a tar archive (or it is truncated)")


def _is_compressed(path):
    """Whether a tar file is gzip/bz2/xz compressed (by its magic bytes)."""
    with open(path, "rb") as f:
        head = f.read(6)
    return head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00"))


def verify_archive(path):
    """Read a zip (CRC of every member) or tar (every header; compressed data fully) archive.

    Raises ValueError naming the file (and member) when it is truncated or
    corrupt; returns the number of members.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"archive {path} does not exist")
    kind = _archive_kind(path)
    if kind == "zip":
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
                count = len(archive.infolist())
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise ValueError(f"corrupt zip archive {path}: {e}") from None
        if bad is not None:
            raise ValueError(f"corrupt zip archive {path}: member {bad!r} fails its CRC check")
        return count
    size = os.path.getsize(path)
    count = 0
    try:
        with tarfile.open(path, "r:*") as archive:
            compressed = _is_compressed(path)
            for member in archive:
                count += 1
                if not member.isfile():
                    continue
                if compressed:
                    # Only reading a compressed stream to the end checks its CRC.
                    source = archive.extractfile(member)
                    while source.read(1 << 20):
                        pass
                elif member.offset_data + member.size > size:
                    raise ValueError(f"truncated tar archive {path}: member {member.name!r} runs past the end")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise ValueError(f"corrupt tar archive {path}: {e}") from None
    if count == 0:
        raise ValueError(f"tar archive {path} is empty")
    return count


def _target_path(target_dir, name, strip_components, archive_path):
    """Where member ``name`` goes (None when stripped away); ValueError if it escapes ``target_dir``."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in parts:
        raise ValueError(f"refusing to extract {name!r} from {archive_path}: it points outside the target directory")
    parts = parts[strip_components:]
    if not parts:
        return None
    root = os.path.realpath(target_dir)
    path = os.path.realpath(os.path.join(root, *parts))
    if os.path.commonpath([root, path]) != root:
        raise ValueError(f"refusing to extract {name!r} from {archive_path}: it points outside the target directory")
    return path


def _write_member(source, path):
    """Copy an open member to ``path`` via a temporary name."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)
    os.replace(path + ".tmp", path)


def _members(archive, kind, path):
    """``(name, is_dir, size, open)`` of every member; ValueError naming a link or special file."""
    if kind == "zip":
        for member in archive.infolist():
            if stat.S_ISLNK(member.external_attr >> 16):
                raise ValueError(f"refusing to extract {member.filename!r} from {path}: it is a symbolic link")
            yield member.filename, member.is_dir(), member.file_size, lambda m=member: archive.open(m)
        return
    for member in archive.getmembers():
        if not (member.isfile() or member.isdir()):
            raise ValueError(
                f"refusing to extract {member.name!r} from {path}: only regular files and directories are allowed"
            )
        yield member.name, member.isdir(), member.size, lambda m=member: archive.extractfile(m)


def extract_archive(path, target_dir, *, strip_components=0, skip_existing=False):
    """Extract a zip or tar archive into ``target_dir``; returns the extracted file paths.

    Directories and regular files only; a member with an absolute path, a
    ``..`` component, or that is a link or device raises ValueError naming
    it before anything is written.  Every file is written under a
    temporary name and renamed, so an interrupted run leaves no partial file
    under a final name; with ``skip_existing`` a file already there with the
    member's size (from such a run) is not written again.
    """
    path = os.fspath(path)
    kind = _archive_kind(path)
    os.makedirs(target_dir, exist_ok=True)
    written = []
    with (zipfile.ZipFile(path) if kind == "zip" else tarfile.open(path, "r:*")) as archive:
        members = list(_members(archive, kind, path))
        targets = [_target_path(target_dir, name, strip_components, path) for name, *_ in members]
        for (_, is_dir, size, open_member), target in zip(members, targets):
            if target is None:
                continue
            if is_dir:
                os.makedirs(target, exist_ok=True)
                continue
            if not (skip_existing and os.path.isfile(target) and os.path.getsize(target) == size):
                with open_member() as source:
                    _write_member(source, target)
            written.append(target)
    return written
