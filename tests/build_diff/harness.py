"""Building the same Dockerfile with forklift and with buildah, and comparing what comes out.

The comparison is of *results*, never of forklift's own reports: each side's
image is turned into a plain directory tree (forklift's by ``forklift save`` and
unpacking every layer of the docker-archive in order; buildah's by ``buildah
from`` + ``buildah mount``, so buildah applies its own whiteouts) and each
side's config JSON is read as raw JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from forklift.layers import extract_layer
from tests.helpers import run_cli

# The config fields the differential tests compare (issue 4, "How we will know").
CONFIG_FIELDS = (
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Labels",
    "Volumes",
    "StopSignal",
)
# Docker-format-only fields, compared when a case builds with --format docker.
DOCKER_ONLY_FIELDS = ("Shell", "OnBuild", "Healthcheck")
# buildah stamps its own version into every image it commits.
BUILDAH_LABELS = ("io.buildah.version",)


@dataclass(frozen=True)
class Node:
    """One path of a file tree, as the comparison sees it (no times)."""

    kind: str  # f d l c b p s
    mode: int  # permission bits incl. setuid/setgid/sticky
    uid: int
    gid: int
    data: str  # sha256 of a file's bytes, a symlink's target, a device's numbers
    hardlink: str = ""  # for a file with several names here: the first of them (sorted)
    # the bytes of a small file, only to show in failure messages
    preview: bytes = field(default=b"", compare=False, repr=False)

    def describe(self) -> str:
        link = f" =={self.hardlink}" if self.hardlink else ""
        shown = f" {self.preview!r}" if self.preview else f" {self.data[:24]}"
        return f"{self.kind} {self.mode:04o} {self.uid}:{self.gid}{shown}{link}"


def snapshot(root: str | os.PathLike[str]) -> dict[str, Node]:
    """Every path under ``root`` (relative, '/'-separated) with type, mode, owner and content."""
    root = os.fspath(root)
    tree: dict[str, Node] = {}
    inodes: dict[tuple[int, int], list[str]] = {}
    for top, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = os.path.join(top, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            fmt = stat.S_IFMT(st.st_mode)
            if fmt == stat.S_IFREG:
                kind, data = "f", _sha256(path)
                if st.st_nlink > 1:
                    inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
            elif fmt == stat.S_IFDIR:
                kind, data = "d", ""
            elif fmt == stat.S_IFLNK:
                kind, data = "l", os.readlink(path)
            elif fmt in (stat.S_IFCHR, stat.S_IFBLK):
                kind = "c" if fmt == stat.S_IFCHR else "b"
                data = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
            elif fmt == stat.S_IFIFO:
                kind, data = "p", ""
            else:
                kind, data = "s", ""
            preview = b""
            if kind == "f" and st.st_size <= 200:
                with open(path, "rb") as f:
                    preview = f.read()
            tree[rel] = Node(
                kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, data, "", preview
            )
    for names in inodes.values():
        if len(names) > 1:
            first = min(names)
            for name in names:
                tree[name] = replace(tree[name], hardlink=first)
    return tree


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def tree_differences(ours: Mapping[str, Node], theirs: Mapping[str, Node]) -> list[str]:
    """Human-readable differences between two snapshots (empty when they are the same)."""
    out: list[str] = []
    for path in sorted(set(ours) | set(theirs)):
        a, b = ours.get(path), theirs.get(path)
        if a == b:
            continue
        if a is None:
            assert b is not None
            out.append(f"only in buildah: /{path} ({b.describe()})")
        elif b is None:
            out.append(f"only in forklift: /{path} ({a.describe()})")
        else:
            out.append(f"/{path}: forklift {a.describe()} != buildah {b.describe()}")
    return out


# BuildKit gives every image without PATH this one (dockerfile2llb: "make sure that PATH is
# always set"); buildah does the same. test_config.py checks it on its own, so the other
# comparisons leave it out and one missing PATH does not fail every test.
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _normal(value: Any) -> Any:
    # null, absent and empty mean the same thing to every runtime for these fields
    return value if value not in (None, [], {}, "") else None


def config_fields(
    config: Mapping[str, Any], names: tuple[str, ...], *, keep_default_path: bool = False
) -> dict[str, Any]:
    """The compared fields of an image config's ``config`` object, normalised."""
    inner = config.get("config") or {}
    out: dict[str, Any] = {}
    for name in names:
        value = inner.get(name)
        if name == "Labels" and value:
            value = {k: v for k, v in value.items() if k not in BUILDAH_LABELS}
        if name == "Env" and value and not keep_default_path:
            value = [e for e in value if e != DEFAULT_PATH]
        out[name] = _normal(value)
    return out


def config_differences(
    ours: Mapping[str, Any], theirs: Mapping[str, Any], names: tuple[str, ...] = CONFIG_FIELDS
) -> list[str]:
    """Differences between two image configs in the fields ``names``."""
    a, b = config_fields(ours, names), config_fields(theirs, names)
    return [f"{n}: forklift {a[n]!r} != buildah {b[n]!r}" for n in names if a[n] != b[n]]


# buildah 1.28 leaves the empty files it bind-mounts over during RUN in the image (and /run);
# BuildKit removes such mount stubs when they are empty (executor.MountStubsCleaner), and so
# does forklift, so they are dropped from buildah's tree when forklift has no such path.
BUILDAH_RUN_STUBS = ("etc/hostname", "etc/hosts", "etc/resolv.conf", "run")
_EMPTY = hashlib.sha256(b"").hexdigest()


def without_run_stubs(theirs: Mapping[str, Node], ours: Mapping[str, Node]) -> dict[str, Node]:
    """buildah's tree minus the empty RUN mount stubs forklift (like BuildKit) does not keep."""
    out = dict(theirs)
    for path in BUILDAH_RUN_STUBS:
        node = out.get(path)
        if node is None or path in ours:
            continue
        empty_dir = node.kind == "d" and not any(p.startswith(path + "/") for p in out)
        if (node.kind == "f" and node.data == _EMPTY) or empty_dir:
            del out[path]
    return out


# ---------------------------------------------------------------------------------- forklift


def forklift_image(image: str, dest: Path) -> tuple[dict[str, Any], Path]:
    """``forklift save`` the image, unpack its layers in order into ``dest/rootfs``.

    Returns the raw config JSON and the root filesystem directory.
    """
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / "image.tar"
    run_cli("save", "-o", str(archive), image, check=True)
    rootfs = dest / "rootfs"
    rootfs.mkdir()
    with tarfile.open(archive) as tf:
        [entry] = json.load(_member(tf, "manifest.json"))
        config = json.load(_member(tf, entry["Config"]))
        for layer in entry["Layers"]:
            extract_layer(_member(tf, layer), rootfs, label=layer)
    return config, rootfs


def _member(tf: tarfile.TarFile, name: str) -> Any:
    f = tf.extractfile(name)
    assert f is not None, f"{name} missing from the saved archive"
    return f


# ---------------------------------------------------------------------------------- buildah


def _sh(cmd: list[str], *, cwd: Path | None = None, timeout: int = 600) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


@dataclass
class Buildah:
    """buildah with private storage (vfs; runroot kept short, as buildah needs)."""

    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fkbah-", dir="/tmp")))

    def argv(self, *args: str) -> list[str]:
        """The full buildah command line for ``args``."""
        return [
            "buildah", "--root", str(self.base / "r"), "--runroot", str(self.base / "rr"),
            "--storage-driver", "vfs", *args,
        ]  # fmt: skip

    def __call__(self, *args: str, cwd: Path | None = None) -> str:
        return _sh(self.argv(*args), cwd=cwd)

    def load(self, archive: Path, name: str) -> None:
        """Pull a docker-archive into buildah's storage under ``name``."""
        self("pull", "-q", f"docker-archive:{archive}")
        image_id = self("images", "-q", "--no-trunc").split()[0]
        self("tag", image_id, name)

    def bud(
        self,
        context: Path,
        tag: str,
        *,
        dockerfile: Path | None = None,
        docker_format: bool = False,
        extra: tuple[str, ...] = (),
    ) -> None:
        """``buildah bud --layers`` (OCI format unless ``docker_format``)."""
        args = ["bud", "--layers", "-q", "--network", "host", "-t", tag]
        args += ["--format", "docker" if docker_format else "oci"]
        if dockerfile is not None:
            args += ["-f", str(dockerfile)]
        self(*args, *extra, str(context))

    def config(self, image: str, *, docker_format: bool = False) -> dict[str, Any]:
        """The image's config JSON (the Docker one for --format docker builds)."""
        data = json.loads(self("inspect", "--type", "image", image))
        if docker_format:
            docker = data["Docker"]
            return {"config": docker.get("config") or docker.get("container_config") or {}}
        return data["OCIv1"]

    @contextmanager
    def rootfs(self, image: str) -> Iterator[Path]:
        """The image's root filesystem as buildah assembles it (a working container's mount).

        ``buildah from`` runs an image's ONBUILD triggers, so an image that has some is
        pushed to an OCI layout and unpacked by umoci instead (a third implementation).
        """
        data = json.loads(self("inspect", "--type", "image", image))
        if (data.get("Docker", {}).get("config") or {}).get("OnBuild"):
            with tempfile.TemporaryDirectory(prefix="fkbah-umoci-", dir=self.base) as tmp:
                self("push", "-q", image, f"oci:{tmp}/layout:img")
                _sh(["umoci", "raw", "unpack", "--image", f"{tmp}/layout:img", f"{tmp}/rootfs"])
                yield Path(tmp) / "rootfs"
            return
        container = self("from", "--pull-never", image).strip()
        try:
            yield Path(self("mount", container).strip())
        finally:
            self("rm", container)

    def cleanup(self) -> None:
        """Remove every container and image, then the storage."""
        subprocess.run(self.argv("rm", "-a"), capture_output=True, timeout=120)
        subprocess.run(self.argv("rmi", "-a", "-f"), capture_output=True, timeout=120)
        shutil.rmtree(self.base, ignore_errors=True)


# ---------------------------------------------------------------------------------- a case


@dataclass(frozen=True)
class Outcome:
    """What both builders made of one Dockerfile."""

    ours_config: dict[str, Any]
    theirs_config: dict[str, Any]
    ours: dict[str, Node]
    theirs: dict[str, Node]
    ours_root: Path
    fields: tuple[str, ...]

    def tree_differences(self, skip: tuple[str, ...] = ()) -> list[str]:
        """Tree differences, leaving out the paths under any of ``skip`` (relative paths)."""

        def keep(tree: Mapping[str, Node]) -> dict[str, Node]:
            return {
                p: n
                for p, n in tree.items()
                if not any(p == s or p.startswith(s + "/") for s in skip)
            }

        return tree_differences(keep(self.ours), keep(without_run_stubs(self.theirs, self.ours)))

    def config_differences(self, skip: tuple[str, ...] = ()) -> list[str]:
        """Config differences in the compared fields except ``skip``."""
        fields = tuple(f for f in self.fields if f not in skip)
        return config_differences(self.ours_config, self.theirs_config, fields)

    def check_same(
        self, *, skip_paths: tuple[str, ...] = (), skip_fields: tuple[str, ...] = ()
    ) -> None:
        """Fail with every difference listed (tree first, then config).

        ``skip_paths``/``skip_fields`` leave out what a test knows buildah does differently
        from BuildKit (that test then checks forklift against BuildKit's rule itself).
        """
        problems = self.tree_differences(skip_paths) + self.config_differences(skip_fields)
        assert not problems, "forklift and buildah differ:\n  " + "\n  ".join(problems)


# what the ``duo`` fixture returns: duo(dockerfile, files, **options) -> Outcome
BuildFn = Callable[..., "Outcome"]


def same(
    duo: Any, dockerfile: str, files: Mapping[str, str | bytes] | None = None, **kw: Any
) -> Outcome:
    """Build with both tools (the ``duo`` fixture) and fail on any difference."""
    out: Outcome = duo(dockerfile, files, **kw)
    out.check_same()
    return out


def write_context(
    root: Path, files: Mapping[str, str | bytes], modes: Mapping[str, int] | None = None
) -> None:
    """Create a build context from ``name -> content``.

    Content is text, bytes, ``"@link:TARGET"`` (a symlink), ``"@hardlink:OTHER"`` (another
    name for the context file OTHER, written earlier) or, for a name ending in '/', ignored
    (an empty directory). ``modes`` sets permission bits afterwards (deepest paths first).
    """
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str) and content.startswith("@link:"):
            path.symlink_to(content[len("@link:") :])
        elif isinstance(content, str) and content.startswith("@hardlink:"):
            os.link(root / content[len("@hardlink:") :], path)
        elif name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    for name, mode in sorted((modes or {}).items(), key=lambda item: -item[0].count("/")):
        os.chmod(root / name, mode)
