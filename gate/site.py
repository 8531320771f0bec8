"""The built editions, loaded once: a file map per edition and the shell of the gate's pages."""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

from markupsafe import escape

from gate.security import cache_headers, security_headers

SHELL = "403.html"  # see overrides/403.html


@dataclass
class Edition:
    name: str
    root: Path
    files: dict      # URL path without the leading '/' -> absolute file path
    shell: str

    def render(self, title: str, content: str) -> str:
        return self.shell.replace("@@GATE_TITLE@@", str(escape(title))).replace("@@GATE_CONTENT@@", content)

    def lookup(self, path: str):
        """(file, None), (None, redirect to path + '/') or (None, None) for a normalized path."""
        rel = path.lstrip("/")
        if rel == "" or rel.endswith("/"):
            f = self.files.get(rel + "index.html")
            return f, None
        f = self.files.get(rel)
        if f is not None:
            return f, None
        if rel + "/index.html" in self.files:
            return None, "/" + rel + "/"
        return None, None


# Extension -> media type of a built file: the gate serves with these, and edge mode's nginx is
# given the same table (gate.edge_config writes its `types` block from it).
MEDIA_TYPES = {
    "html": "text/html", "htm": "text/html", "css": "text/css", "js": "text/javascript",
    "mjs": "text/javascript", "json": "application/json", "map": "application/json",
    "webmanifest": "application/manifest+json", "xml": "text/xml", "txt": "text/plain",
    "gz": "application/gzip", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
    "gif": "image/gif", "webp": "image/webp", "svg": "image/svg+xml", "ico": "image/x-icon",
    "woff": "font/woff", "woff2": "font/woff2", "ttf": "font/ttf", "pdf": "application/pdf",
    "zip": "application/zip", "mp4": "video/mp4", "webm": "video/webm",
}
DEFAULT_TYPE = "application/octet-stream"


def content_type(file: Path) -> str:
    """The media type a built file is served with (sitemap.xml.gz is a gzip file, not
    compressed XML to unpack on the fly)."""
    name = file.name.lower()
    return MEDIA_TYPES.get(name.rsplit(".", 1)[-1], DEFAULT_TYPE) if "." in name else DEFAULT_TYPE


def has_charset(kind: str) -> bool:
    """Whether a media type is sent with '; charset=utf-8' (every built text is UTF-8)."""
    return kind.startswith("text/") or kind == "application/json"


def etag(st) -> str:
    """The entity tag of a file as nginx makes it ("<mtime hex>-<size hex>"), so the gate and
    edge mode's nginx give the same file the same tag."""
    return f'"{int(st.st_mtime):x}-{st.st_size:x}"'


def file_stamp(st) -> tuple:
    """What tells a rebuilt file from the one that was there (finer than its entity tag)."""
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def file_headers(file: Path, st, url_path: str, production: bool) -> list[tuple[str, str]]:
    """The headers of an edition's file, the same from the fast path and the application
    (nginx in edge mode sets the same cache and security headers, from gate.security)."""
    kind = content_type(file)
    if has_charset(kind):
        kind += "; charset=utf-8"
    headers = {"Content-Type": kind, "Content-Length": str(st.st_size), "ETag": etag(st),
               "Last-Modified": formatdate(st.st_mtime, usegmt=True)}
    cache_headers(headers, url_path)
    security_headers(headers, production=production)
    return list(headers.items())


def normalize_path(path: str) -> str | None:
    """The request path with '.' and '..' resolved, or None for paths no page can have."""
    if not path.startswith("/") or len(path) > 1024 or "\x00" in path or "\\" in path:
        return None
    norm = posixpath.normpath(path)
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    if path.endswith("/") and norm != "/":
        norm += "/"
    return norm


def load_site(site_dir: Path) -> tuple[dict, dict[str, Edition]]:
    site_dir = Path(site_dir)
    manifest = json.loads((site_dir / "manifest.json").read_text())
    editions = {}
    for name in manifest["editions"]:
        root = (site_dir / "editions" / name).resolve()
        files = {}
        for p in root.rglob("*"):
            if p.is_file() and not p.is_symlink():
                rel = p.relative_to(root).as_posix()
                if rel != SHELL:
                    files[rel] = p
        editions[name] = Edition(name, root, files, (root / SHELL).read_text(encoding="utf-8"))
    return manifest, editions
