"""video_prediction/download.py against a local HTTP server: resume, checks, skip; safe archive extraction."""

import hashlib
import io
import os
import tarfile
import zipfile

import numpy as np
import pytest

from local_http_server import FileServer
from video_prediction.download import DownloadError, download_file, extract_archive, verify_archive

PAYLOAD = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_download_checks_size_and_sha_then_skips(tmp_path):
    target = tmp_path / "sub" / "file.bin"
    with FileServer({"/file.bin": PAYLOAD}) as server:
        path = download_file(f"{server.url}/file.bin", target, expected_size=len(PAYLOAD), sha256=SHA,
                             chunk_size=65536, progress=False)
        assert open(path, "rb").read() == PAYLOAD and not os.path.exists(f"{target}.part")
        download_file(f"{server.url}/file.bin", target, expected_size=len(PAYLOAD), sha256=SHA, progress=False)
        assert server.requests == [("/file.bin", None)]  # the second call did not download


def test_dropped_connection_resumes_with_range(tmp_path):
    target = tmp_path / "file.bin"
    with FileServer({"/file.bin": PAYLOAD}, cut_once={"/file.bin"}) as server:
        download_file(f"{server.url}/file.bin", target, sha256=SHA, chunk_size=4096, progress=False)
    assert open(target, "rb").read() == PAYLOAD
    (first, no_range), (second, resume) = server.requests
    assert no_range is None and resume == f"bytes={len(PAYLOAD) // 2}-"


def test_part_file_of_an_earlier_run_is_continued(tmp_path):
    target = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(PAYLOAD[:1000])
    with FileServer({"/file.bin": PAYLOAD}) as server:
        download_file(f"{server.url}/file.bin", target, expected_size=len(PAYLOAD), sha256=SHA, progress=False)
    assert server.requests == [("/file.bin", "bytes=1000-")]
    assert open(target, "rb").read() == PAYLOAD


def test_server_without_range_support_restarts(tmp_path):
    target = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(b"x" * 1000)  # not even a prefix: must be overwritten
    with FileServer({"/file.bin": PAYLOAD}, ignore_range=True) as server:
        download_file(f"{server.url}/file.bin", target, sha256=SHA, progress=False)
    assert open(target, "rb").read() == PAYLOAD


def test_checksum_mismatch_names_file_and_removes_it(tmp_path):
    target = tmp_path / "file.bin"
    with FileServer({"/file.bin": PAYLOAD}) as server:
        with pytest.raises(DownloadError, match=r"file\.bin(\.part)? has sha256 .* expected 0{64}"):
            download_file(f"{server.url}/file.bin", target, sha256="0" * 64, progress=False)
        assert not target.exists() and not (tmp_path / "file.bin.part").exists()
        with pytest.raises(DownloadError, match=r"has 300000 bytes on the server, expected 5"):
            download_file(f"{server.url}/file.bin", target, expected_size=5, progress=False)
    target.write_bytes(b"stale")
    with pytest.raises(DownloadError, match=r"file\.bin has 5 bytes, expected 300000"):
        download_file("http://127.0.0.1:9/unused", target, expected_size=len(PAYLOAD), progress=False)


def test_persistent_failures_keep_the_part_for_the_next_run(tmp_path):
    target = tmp_path / "file.bin"
    with FileServer({"/file.bin": PAYLOAD}, cut_always={"/file.bin"}) as server:
        with pytest.raises(DownloadError, match=r"after 3 attempts .*file\.bin\.part is kept"):
            download_file(f"{server.url}/file.bin", target, attempts=3, progress=False)
        assert len(server.requests) == 3 and server.requests[1][1] is not None
    partial = (tmp_path / "file.bin.part").read_bytes()
    assert 0 < len(partial) < len(PAYLOAD) and PAYLOAD.startswith(partial)
    with FileServer({"/file.bin": PAYLOAD}) as server:
        download_file(f"{server.url}/file.bin", target, sha256=SHA, progress=False)
        assert server.requests == [("/file.bin", f"bytes={len(partial)}-")]
    with FileServer({}) as server, pytest.raises(DownloadError, match=r"missing\.bin: HTTP 404"):
        download_file(f"{server.url}/missing.bin", tmp_path / "missing.bin", progress=False)


# -- archives ------------------------------------------------------------------------------------


def make_tar(path, members, mode="w:gz"):
    with tarfile.open(path, mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_tar_verify_and_extract_with_strip(tmp_path):
    archive = make_tar(tmp_path / "a.tar.gz", {"root/x/one.bin": PAYLOAD[:5000], "root/two.txt": b"two"})
    assert verify_archive(archive) == 2
    written = extract_archive(archive, tmp_path / "out", strip_components=1)
    assert sorted(os.path.relpath(p, tmp_path / "out") for p in written) == ["two.txt", os.path.join("x", "one.bin")]
    assert (tmp_path / "out" / "x" / "one.bin").read_bytes() == PAYLOAD[:5000]
    truncated = tmp_path / "cut.tar.gz"
    truncated.write_bytes(archive.read_bytes()[:2000])
    with pytest.raises(ValueError, match=r"cut\.tar\.gz"):
        verify_archive(truncated)
    plain = make_tar(tmp_path / "b.tar", {"big.bin": PAYLOAD}, mode="w")
    cut = tmp_path / "cut.tar"
    cut.write_bytes(plain.read_bytes()[:100_000])
    with pytest.raises(ValueError, match=r"cut\.tar"):
        verify_archive(cut)


def test_zip_crc_is_checked(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
        z.writestr("dir/v.avi", PAYLOAD[:20000])
    assert verify_archive(archive) == 1
    extract_archive(archive, tmp_path / "out")
    assert (tmp_path / "out" / "dir" / "v.avi").read_bytes() == PAYLOAD[:20000]
    data = bytearray(archive.read_bytes())
    data[5000] ^= 0xFF  # inside the stored member
    archive.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"a\.zip: member 'dir/v\.avi' fails its CRC check"):
        verify_archive(archive)


@pytest.mark.parametrize("name", ["../evil.txt", "/abs/evil.txt", "ok/../../evil.txt"])
def test_members_escaping_the_target_are_refused(tmp_path, name):
    archive = make_tar(tmp_path / "bad.tar", {"fine.txt": b"fine", name: b"evil"}, mode="w")
    with pytest.raises(ValueError, match=r"refusing to extract .*evil\.txt.* outside the target"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "fine.txt").exists()
    zipped = tmp_path / "bad.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr(name, b"evil")
    with pytest.raises(ValueError, match=r"outside the target"):
        extract_archive(zipped, tmp_path / "out2")


def test_links_are_refused(tmp_path):
    archive = tmp_path / "link.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("link")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(ValueError, match=r"'link' .* only regular files and directories"):
        extract_archive(archive, tmp_path / "out")
    with pytest.raises(ValueError, match=r"neither a zip nor a tar"):
        verify_archive(__file__)


def test_skip_existing_keeps_finished_files_and_file_urls_work(tmp_path):
    archive = make_tar(tmp_path / "a.tar.gz", {"root/a.bin": PAYLOAD[:100], "root/b.bin": b"bb"})
    out = tmp_path / "out"
    extract_archive(archive, out, strip_components=1)
    (out / "a.bin").write_bytes(b"k" * 100)  # same size: taken as finished by an earlier run
    (out / "b.bin").unlink()
    extract_archive(archive, out, strip_components=1, skip_existing=True)
    assert (out / "a.bin").read_bytes() == b"k" * 100 and (out / "b.bin").read_bytes() == b"bb"
    # a local mirror: --base_url file:///path works through the same code
    copy = download_file(archive.as_uri(), tmp_path / "copy.tar.gz", sha256=hashlib.sha256(archive.read_bytes())
                         .hexdigest(), progress=False)
    assert open(copy, "rb").read() == archive.read_bytes()


def test_complete_part_of_a_killed_run_is_only_checked_and_renamed(tmp_path):
    target = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(PAYLOAD)
    with FileServer({"/file.bin": PAYLOAD}) as server:  # answers 416: nothing left to send
        download_file(f"{server.url}/file.bin", target, sha256=SHA, progress=False)
        assert server.requests == [("/file.bin", f"bytes={len(PAYLOAD)}-")]
    assert target.read_bytes() == PAYLOAD and not (tmp_path / "file.bin.part").exists()
