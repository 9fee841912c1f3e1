"""Fetching one data file over HTTP(S) into the cache, verified and written atomically.

What it does: download a file (usually a ``.gz`` archive) from a list of mirrors, check the
SHA-256 of the downloaded bytes and/or of the uncompressed content, and only then rename it
into place, so the cache never holds a partial or corrupt file under its final name.  A
progress bar (tqdm) shows on a terminal when ``verbose`` is on.

What it is not: a dataset registry (see ``steepest.data.registry``) or a reader (see
``steepest.data.idx``).  Standard library only (urllib), no retries beyond trying the next
mirror.
"""

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
import zlib

from ..progress import progress_bar

CHUNK = 1 << 16
DATA_ENV_VAR = "STEEPEST_DATA"


class DownloadError(OSError):
    """A file could not be downloaded (offline, HTTP error, connection dropped)."""


class ChecksumError(DownloadError):
    """A downloaded (or hand-placed) file does not have the SHA-256 it should have."""


def cache_dir():
    """The root directory of steepest's data cache.

    ``$STEEPEST_DATA`` when set, else the platform's user cache directory plus "steepest":
    ``$XDG_CACHE_HOME/steepest`` or ``~/.cache/steepest`` on Linux and other Unix systems,
    ``~/Library/Caches/steepest`` on macOS, ``%LOCALAPPDATA%\\steepest\\Cache`` on Windows.
    Nothing is created here; ``fetch`` creates directories as it needs them.
    """
    override = os.environ.get(DATA_ENV_VAR)
    if override:
        return os.path.abspath(os.path.expanduser(override))
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser(r"~\AppData\Local")
        return os.path.join(base, "steepest", "Cache")
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/steepest")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "steepest")


def sha256_of(path):
    """Hex SHA-256 of the file at ``path`` (read in chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _download_to(handle, url, timeout, verbose, description):
    """Stream ``url`` into the open binary ``handle``; returns the SHA-256 of the bytes."""
    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "steepest"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        received = 0
        bar = progress_bar(expected, verbose, unit="B", unit_scale=True, unit_divisor=1024,
                           desc=description, leave=False)
        try:
            while True:
                try:
                    block = response.read(CHUNK)
                except http.client.IncompleteRead as exc:
                    # The server closed the connection before Content-Length bytes came.
                    received += len(exc.partial)
                    raise DownloadError(f"connection dropped while downloading {url}: got "
                                        f"{received} of {expected} bytes") from None
                if not block:
                    break
                received += len(block)
                handle.write(block)
                digest.update(block)
                if bar is not None:
                    bar.update(len(block))
        finally:
            if bar is not None:
                bar.close()
    if expected is not None and received != expected:
        raise DownloadError(f"connection dropped while downloading {url}: got {received} of "
                            f"{expected} bytes")
    return digest.hexdigest()


def _gunzip(source_path, handle, what):
    """Decompress the gzip file at ``source_path`` into ``handle``; SHA-256 of the output."""
    digest = hashlib.sha256()
    inflater = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
    with open(source_path, "rb") as source:
        try:
            for block in iter(lambda: source.read(CHUNK), b""):
                out = inflater.decompress(block)
                handle.write(out)
                digest.update(out)
            out = inflater.flush()
        except zlib.error as exc:
            raise ChecksumError(f"{what}: corrupt gzip data ({exc})") from None
    handle.write(out)
    digest.update(out)
    if not inflater.eof:
        raise ChecksumError(f"{what}: truncated gzip data")
    return digest.hexdigest()


def _check(actual, expected, what, url):
    if expected is not None and actual != expected.lower():
        raise ChecksumError(f"SHA-256 mismatch for {what} from {url}: expected {expected}, got "
                            f"{actual}. The file was discarded; the mirror may be serving a "
                            f"different or damaged file.")


def fetch(urls, path, sha256=None, archive_sha256=None, gunzip=False, timeout=60.0, verbose=1):
    """Download to ``path`` (atomically) unless it is already there; returns ``path``.

    Parameters
    ----------
    urls : str or sequence of str
        Where to download from, tried in order until one succeeds (mirrors).
    path : str or os.PathLike
        Final location.  Its directory is created if needed.  Nothing is ever written under
        this name until every check has passed: the bytes go to a temporary file in the same
        directory, which is renamed over ``path`` at the end (and removed on any failure).
    sha256 : str, optional
        Expected SHA-256 (hex) of the file as stored at ``path`` (after ``gunzip``).
    archive_sha256 : str, optional
        Expected SHA-256 of the downloaded bytes (the ``.gz`` archive when ``gunzip``).
    gunzip : bool
        The download is gzip-compressed; store it decompressed.
    timeout : float
        Seconds to wait on the network before giving up on a mirror.
    verbose : int
        0: silent; 1: a progress bar (only when output is a terminal).

    Raises
    ------
    ChecksumError
        A checksum did not match (or the gzip stream was damaged); nothing was kept.
    DownloadError
        No mirror could be reached or every one failed; the message names the URLs and where
        to put the file by hand.
    """
    path = os.fspath(path)
    if os.path.exists(path):
        return path
    if sha256 is None and archive_sha256 is None:
        raise ValueError("fetch needs sha256 or archive_sha256: an unverified download is refused")
    urls = [urls] if isinstance(urls, str) else list(urls)
    if not urls:
        raise ValueError("urls must name at least one URL")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    name = os.path.basename(path)
    failures = []
    for url in urls:
        try:
            _fetch_one(url, path, directory, name, sha256, archive_sha256, gunzip, timeout,
                       verbose)
            return path
        except ChecksumError:
            raise  # a wrong file is not an outage: say so rather than trying elsewhere
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            failures.append(f"  {url}: {reason}")
    archive = os.path.basename(urls[0].split("?")[0])
    raise DownloadError(
        f"could not download {name}:\n" + "\n".join(failures) + "\n"
        f"If this machine is offline, download {urls[0]} by other means and put it in "
        f"{directory} (as {archive}, or decompressed as {name}); set ${DATA_ENV_VAR} to use "
        f"another cache directory.")


def _fetch_one(url, path, directory, name, sha256, archive_sha256, gunzip, timeout, verbose):
    temporaries = []

    def temporary():
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=directory)
        temporaries.append(tmp)
        return os.fdopen(fd, "wb"), tmp

    try:
        handle, downloaded = temporary()
        with handle:
            got = _download_to(handle, url, timeout, verbose, name)
        _check(got, archive_sha256, os.path.basename(url), url)
        final = downloaded
        if gunzip:
            handle, final = temporary()
            with handle:
                got = _gunzip(downloaded, handle, f"{os.path.basename(url)} from {url}")
        _check(got, sha256, f"{name} (uncompressed)" if gunzip else name, url)
        os.replace(final, path)
    finally:
        for tmp in temporaries:
            if os.path.exists(tmp):
                os.unlink(tmp)
