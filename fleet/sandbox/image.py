"""Build the sandbox host image, once per recipe.

The image is tagged with a hash of its recipe (the files in fleet/sandbox/host_image plus the way
the base was obtained), so a changed recipe gets a new image and an unchanged one is never rebuilt.
`flaskfleet-host:current` always points at the image of the current recipe; molecule scenarios
and the sandbox use that tag.

The base is `debian:bookworm` when a registry answers. These build machines reach none, so the
fallback debootstraps a minimal Debian 12 from the apt mirror and imports it as the base.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import docker
from docker.errors import APIError, BuildError, DockerException, ImageNotFound

RECIPE_DIR = Path(__file__).parent / "host_image"
REPOSITORY = "flaskfleet-host"
CURRENT_TAG = f"{REPOSITORY}:current"
UPSTREAM_BASE = "debian:bookworm"
LOCAL_BASE_REPOSITORY = "flaskfleet-base"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEBOOTSTRAP_INCLUDE = (
    "python3,openssh-server,systemd,systemd-sysv,sudo,ca-certificates,iproute2,procps"
)
LABEL = "org.flaskfleet.recipe"


class ImageError(RuntimeError):
    """The host image could not be built."""


def recipe_hash(recipe_dir: Path = RECIPE_DIR) -> str:
    """Hash every file of the recipe, names included, in a stable order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in recipe_dir.rglob("*") if p.is_file()):
        digest.update(path.relative_to(recipe_dir).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    digest.update(DEBOOTSTRAP_INCLUDE.encode())
    return digest.hexdigest()[:12]


def image_tag(recipe_dir: Path = RECIPE_DIR) -> str:
    return f"{REPOSITORY}:{recipe_hash(recipe_dir)}"


def apt_mirrors(sources_dir: Path = Path("/etc/apt")) -> tuple[str, str]:
    """The (main, security) mirrors this machine uses, so containers use the same ones."""
    main, security = DEFAULT_MIRROR, DEFAULT_MIRROR + "-security"
    files = sorted(sources_dir.glob("sources.list.d/*.sources")) + sorted(
        sources_dir.glob("sources.list*"))
    for path in files:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            words = line.split()
            urls = [w for w in words if w.startswith("http")]
            if not urls or (words[0] not in ("deb", "URIs:")):
                continue
            url = urls[0].rstrip("/")
            if url.endswith("-security"):
                security = url
            elif url.endswith("/debian"):
                main = url
    return main, security


def _has_image(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
    except ImageNotFound:
        return False
    return True


def _pull_upstream(client: docker.DockerClient) -> bool:
    try:
        client.images.pull(UPSTREAM_BASE)
    except (APIError, DockerException):
        return False
    return True


def _debootstrap_base(client: docker.DockerClient, mirror: str, say) -> str:
    base_hash = hashlib.sha256((mirror + DEBOOTSTRAP_INCLUDE).encode()).hexdigest()[:12]
    tag = f"{LOCAL_BASE_REPOSITORY}:bookworm-{base_hash}"
    if _has_image(client, tag):
        return tag
    if shutil.which("debootstrap") is None:
        raise ImageError(
            f"cannot pull {UPSTREAM_BASE} and debootstrap is missing: "
            "run `apt-get install -y debootstrap` (as root) and retry")
    with tempfile.TemporaryDirectory(prefix="flaskfleet-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        say(f"image: {UPSTREAM_BASE} cannot be pulled; debootstrapping a base from {mirror} "
            "(about a minute)")
        run = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={DEBOOTSTRAP_INCLUDE}",
             "bookworm", str(rootfs), mirror],
            capture_output=True, text=True)
        if run.returncode != 0:
            raise ImageError("debootstrap failed:\n" + run.stdout[-2000:] + run.stderr[-2000:])
        archive = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(archive), "."], check=True)
        repository, version = tag.split(":")
        client.api.import_image_from_file(str(archive), repository=repository, tag=version)
    return tag


def ensure_image(client: docker.DockerClient | None = None, say=print) -> str:
    """Return the tag of the host image for the current recipe, building it if needed."""
    client = client or docker.from_env()
    tag = image_tag()
    if _has_image(client, tag):
        client.images.get(tag).tag(REPOSITORY, "current")
        say(f"image: {tag} is cached")
        return tag
    started = time.monotonic()
    mirror, security = apt_mirrors()
    base = UPSTREAM_BASE if _pull_upstream(client) else _debootstrap_base(client, mirror, say)
    say(f"image: building {tag} from {base}")
    try:
        image, _logs = client.images.build(
            path=str(RECIPE_DIR), tag=tag, rm=True, forcerm=True,
            buildargs={"BASE": base, "MIRROR": mirror, "SECURITY_MIRROR": security},
            labels={LABEL: recipe_hash()})
    except BuildError as exc:
        tail = "".join(str(chunk.get("stream", "")) for chunk in exc.build_log)[-3000:]
        raise ImageError(f"building {tag} failed: {exc.msg}\n{tail}") from exc
    image.tag(REPOSITORY, "current")
    say(f"image: built {tag} in {time.monotonic() - started:.0f}s")
    return tag


def remove_images(client: docker.DockerClient | None = None) -> list[str]:
    """Remove every host and base image this project built (for `make clean`)."""
    client = client or docker.from_env()
    removed = []
    for repository in (REPOSITORY, LOCAL_BASE_REPOSITORY):
        for found in client.images.list(name=repository):
            for tag in found.tags:
                client.images.remove(tag, force=True)
                removed.append(tag)
    return removed


def main() -> int:
    try:
        ensure_image()
    except (ImageError, DockerException) as exc:
        print(f"image: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
