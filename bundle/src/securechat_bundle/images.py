"""Docker images in the bundle (`build --with-docker-images`, docs/docker.md).

docker/build-images.sh builds them from the bundle tree being written: the debootstrap base is
`docker import`ed, the software comes from the tree's own signed apt repository and wheelhouse,
and no build step has a network. The images are saved with `docker save` into one archive (the
layers they share are stored once), and the Docker deployment files go next to it, with the
images' tag as the default of compose.yml.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

IMAGES = ("app", "mariadb", "nginx")
REPOSITORY = "securechat"
ARCHIVE = "docker/images/securechat-images.tar"
# What an air-gapped Docker host needs besides the images.
DEPLOYMENT_FILES = ("compose.yml", "init-secrets.sh", "init-tls.sh")
TAG_DEFAULT = "${SECURECHAT_IMAGE_TAG:-dev}"


class ImagesError(RuntimeError):
    pass


@dataclass(frozen=True)
class Image:
    name: str  # securechat/app
    tag: str
    id: str  # sha256:…, the same after `docker load`

    @property
    def reference(self) -> str:
        return f"{self.name}:{self.tag}"


def docker_tag(version: str) -> str:
    """The images' tag for a bundle version: Docker allows [A-Za-z0-9_.-], 128 at most."""
    tag = re.sub(r"[^A-Za-z0-9_.-]", "-", version).lstrip(".-")[:128]
    return tag or "dev"


def _docker(*args: str) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-5:])
        raise ImagesError(f"docker {args[0]} failed: {tail}")
    return result.stdout


def build_images(root: Path, tree: Path, base: Path, tag: str) -> list[Image]:
    """Build securechat/{app,mariadb,nginx}:TAG from `tree` (apt/, wheelhouse/, requirements/)."""
    if shutil.which("docker") is None:
        raise ImagesError(
            "docker is missing: apt-get install docker.io and start dockerd (docs/docker.md)"
        )
    script = root / "docker" / "build-images.sh"
    result = subprocess.run(
        [str(script), "--tree", str(tree), "--base", str(base), "--tag", tag],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-8:])
        raise ImagesError(f"docker/build-images.sh failed: {tail}")
    images = []
    for name in IMAGES:
        reference = f"{REPOSITORY}/{name}:{tag}"
        image_id = _docker("image", "inspect", "--format", "{{.Id}}", reference).strip()
        images.append(Image(f"{REPOSITORY}/{name}", tag, image_id))
    return images


def save_images(tree: Path, images: list[Image]) -> Path:
    archive = tree / ARCHIVE
    archive.parent.mkdir(parents=True, exist_ok=True)
    _docker("save", "--output", str(archive), *(image.reference for image in images))
    return archive


def copy_deployment(root: Path, tree: Path, tag: str) -> None:
    """compose.yml (defaulting to this bundle's tag) and the init scripts, into tree/docker/."""
    target = tree / "docker"
    target.mkdir(parents=True, exist_ok=True)
    for name in DEPLOYMENT_FILES:
        shutil.copy2(root / "docker" / name, target / name)
    compose = target / "compose.yml"
    text = compose.read_text()
    if TAG_DEFAULT not in text:
        raise ImagesError(f"docker/compose.yml does not name its images with {TAG_DEFAULT}")
    compose.write_text(text.replace(TAG_DEFAULT, "${SECURECHAT_IMAGE_TAG:-" + tag + "}"))


def manifest_entries(images: list[Image]) -> list[dict[str, str]]:
    """What manifest.json lists under docker_images: the Ansible docker role compares these ids
    with the host's to load the archive only when an image is missing or different."""
    return [
        {"name": image.name, "tag": image.tag, "id": image.id, "archive": ARCHIVE}
        for image in images
    ]
