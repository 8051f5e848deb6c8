"""The file table of a commit: ``FileEntry`` values, how an upload becomes one (regular file or LFS
pointer), the rule every table obeys (no path both a file and a folder), and the files the Hub
puts in a new repo. Pure values and functions; blobs are stored through ``blobs.BlobStore``."""

from __future__ import annotations

import binascii
import hashlib
from dataclasses import dataclass

from lmolt_hub.localhub.blobs import BlobStore
from lmolt_hub.localhub.errors import HubError
from lmolt_hub.localhub.names import validate_sha256

GITATTRIBUTES = (
    "*.bin filter=lfs diff=lfs merge=lfs -text\n"
    "*.parquet filter=lfs diff=lfs merge=lfs -text\n"
    "*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    "*.pt filter=lfs diff=lfs merge=lfs -text\n"
    "*.arrow filter=lfs diff=lfs merge=lfs -text\n"
)


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass
class FileEntry:
    """One file of a commit: content sha256, git oid (blob sha1, or of the LFS pointer), size."""

    sha256: str
    oid: str
    size: int
    lfs: bool

    def to_json(self) -> dict:
        return {"sha256": self.sha256, "oid": self.oid, "size": self.size, "lfs": self.lfs}

    def lfs_info(self) -> dict | None:
        if not self.lfs:
            return None
        return {
            "oid": self.sha256,
            "size": self.size,
            "pointerSize": len(lfs_pointer(self.sha256, self.size)),
        }


def stored_entry(blobs: BlobStore, data: bytes) -> FileEntry:
    """Store ``data`` as a regular (non-LFS) file's blob; its entry."""
    return FileEntry(blobs.put_bytes(data), git_blob_sha1(data), len(data), False)


def regular_entry(blobs: BlobStore, content_b64: str) -> FileEntry:
    if not isinstance(content_b64, str):
        raise HubError(400, "A regular file's 'content' must be a base64 string")
    try:  # strict, and straight from the str (b64decode would first copy it to bytes)
        data = binascii.a2b_base64(content_b64, strict_mode=True)
    except (binascii.Error, ValueError) as e:
        raise HubError(400, f"A regular file's 'content' is not valid base64: {e}") from None
    return stored_entry(blobs, data)


def lfs_entry(sha256: str, size: int) -> FileEntry:
    validate_sha256(sha256)
    return FileEntry(sha256, git_blob_sha1(lfs_pointer(sha256, size)), int(size), True)


def check_no_file_folder_clash(files: dict[str, FileEntry]) -> None:
    """A path cannot be both a file and a folder (``a`` and ``a/b``): git and snapshots break."""
    for path in files:
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in files:
                raise HubError(
                    409,
                    f"{'/'.join(parts[:i])!r} is a file, so {path!r} cannot be created under it; "
                    "delete one of them in the same commit",
                )


def initial_files(repo_type: str, repo_id: str, sdk: str | None) -> dict[str, bytes]:
    """The Hub's initial commit of a new repo: ``.gitattributes``, and for a Space its README and,
    for ``static`` (the default sdk), a page."""
    files = {".gitattributes": GITATTRIBUTES.encode()}
    if repo_type == "space":
        files.update(space_initial_files(repo_id, sdk or "static"))
    return files


def space_initial_files(repo_id: str, sdk: str) -> dict[str, bytes]:
    """What the Hub commits into a new Space: a README whose front matter configures it, and for
    a ``static`` Space a placeholder page."""
    name = repo_id.split("/")[1]
    readme = (
        f"---\ntitle: {name}\nemoji: 🚀\ncolorFrom: blue\ncolorTo: indigo\nsdk: {sdk}\npinned: false\n---\n\n"
        "Check out the configuration reference at https://huggingface.co/docs/hub/spaces-config-reference\n"
    )
    files = {"README.md": readme.encode()}
    if sdk == "static":
        files["index.html"] = (
            b'<!doctype html>\n<html>\n<head>\n<meta charset="utf-8" />\n<title>My static Space</title>\n'
            b'<link rel="stylesheet" href="style.css" />\n</head>\n<body>\n<div class="card">\n'
            b"<h1>Welcome to your static Space!</h1>\n</div>\n</body>\n</html>\n"
        )
        files["style.css"] = b"body {\n\tpadding: 2rem;\n\tfont-family: -apple-system, sans-serif;\n}\n"
    return files
