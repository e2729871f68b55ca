"""Extended attribute names of SEMANTICS.md mapped onto a version's fields.

Read-only: user.mldash.{id,checksum,content_type,created_at,state}. Read-write:
user.mldash.{tags,description,metadata}, aliases user.xdg.tags / user.xdg.comment, and any other
user.<key> = metadata[<key>]. Setting a read-only name gives ENOTSUP; removing one is accepted and
changes nothing (they describe the version, and `rsync -X` removes every listed name its source
lacks). Non-user namespaces (security.*, system.*) are answered ENOTSUP by the FUSE layer.
"""

from __future__ import annotations

import errno
import json
from typing import Any

from ..records import Version, iso
from ..store import MAX_META_BYTES, check_description, check_metadata, check_tags

USER = "user."
TAGS = ("user.mldash.tags", "user.xdg.tags")
DESCRIPTION = ("user.mldash.description", "user.xdg.comment")
METADATA = "user.mldash.metadata"
READ_ONLY = {
    "user.mldash.id": lambda v: v.id_str,
    "user.mldash.checksum": lambda v: v.sha256,
    "user.mldash.content_type": lambda v: v.content_type,
    "user.mldash.created_at": lambda v: iso(v.created_at),
    "user.mldash.state": lambda v: v.state,
}


class XattrError(Exception):
    """An xattr request the FUSE layer answers with `errno`."""

    def __init__(self, errno_: int) -> None:
        super().__init__(errno_)
        self.errno = errno_


def decode_name(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _text(value: Any) -> bytes:
    s = value if isinstance(value, str) else json.dumps(value)
    return s.encode("utf-8", "surrogateescape")


def get(fields: dict[str, Any], version: Version | None, name: str) -> bytes:
    """The value of `name` given the editable `fields` (tags/description/metadata) and the version."""
    if not name.startswith(USER):
        raise XattrError(errno.ENODATA)
    if name in READ_ONLY:
        if version is None:
            raise XattrError(errno.ENODATA)
        return READ_ONLY[name](version).encode()
    if name in TAGS:
        if not fields["tags"]:
            raise XattrError(errno.ENODATA)
        return ",".join(fields["tags"]).encode()
    if name in DESCRIPTION:
        if fields["description"] is None:
            raise XattrError(errno.ENODATA)
        return fields["description"].encode("utf-8", "surrogateescape")
    if name == METADATA:
        return json.dumps(fields["metadata"], sort_keys=True).encode()
    key = name[len(USER) :]
    if key not in fields["metadata"]:
        raise XattrError(errno.ENODATA)
    return _text(fields["metadata"][key])


def names(fields: dict[str, Any], version: Version | None) -> list[bytes]:
    """The names listxattr shows: the read-only ones, tags, description, one user.<key> per metadata key.

    The aggregate user.mldash.metadata is readable by name but not listed: `rsync -X` prunes
    listed names the source lacks, and removing the aggregate would clear every key.
    """
    out = list(READ_ONLY) if version is not None else []
    if fields["tags"]:
        out.append(TAGS[0])
    if fields["description"] is not None:
        out.append(DESCRIPTION[0])
    out.extend(USER + k for k in fields["metadata"])
    return [n.encode("utf-8", "surrogateescape") for n in out]


def changed(fields: dict[str, Any], name: str, value: bytes | None) -> dict[str, Any]:
    """The field changes (for Store.update) that set `name` to `value`, or remove it if None."""
    if not name.startswith(USER) or (name in READ_ONLY and value is not None):
        raise XattrError(errno.ENOTSUP)
    if name in READ_ONLY:
        return {}
    if value is not None and len(value) > MAX_META_BYTES:
        raise XattrError(errno.E2BIG)
    try:
        text = None if value is None else value.decode("utf-8")
    except UnicodeDecodeError:
        raise XattrError(errno.EINVAL) from None
    if name in TAGS:
        if text is None and not fields["tags"]:
            raise XattrError(errno.ENODATA)
        return {"tags": [t.strip() for t in (text or "").split(",") if t.strip()]}
    if name in DESCRIPTION:
        if text is None and fields["description"] is None:
            raise XattrError(errno.ENODATA)
        return {"description": text}
    if name == METADATA:
        if text is None:
            return {"metadata": {}}
        try:
            obj = json.loads(text)
        except ValueError:
            raise XattrError(errno.EINVAL) from None
        if not isinstance(obj, dict):
            raise XattrError(errno.EINVAL)
        return {"metadata": obj}
    key = name[len(USER) :]
    metadata = dict(fields["metadata"])
    if text is None:
        if key not in metadata:
            raise XattrError(errno.ENODATA)
        del metadata[key]
    else:
        metadata[key] = text
    return {"metadata": metadata}


def fields_of(version: Version | None) -> dict[str, Any]:
    """The editable fields of a version (empty ones for a file with no version yet)."""
    if version is None:
        return {"tags": (), "description": None, "metadata": {}}
    return {"tags": version.tags, "description": version.description, "metadata": dict(version.metadata)}


def check(changes: dict[str, Any]) -> None:
    """Validate xattr changes kept for a later commit, so a bad value fails now (EINVAL/E2BIG)."""
    if "description" in changes:
        check_description(changes["description"])
    if "tags" in changes:
        check_tags(changes["tags"])
    if "metadata" in changes:
        check_metadata(changes["metadata"])
