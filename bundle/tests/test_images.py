"""`build --with-docker-images` without Docker: a stand-in `docker` and build script record
what the build asks for (the real images are built by docker/tests)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from securechat_bundle.cli import main
from securechat_bundle.images import (
    ARCHIVE,
    TAG_DEFAULT,
    ImagesError,
    build_images,
    copy_deployment,
    docker_tag,
    manifest_entries,
    save_images,
)

REPO = Path(__file__).resolve().parents[2]
FAKE_DOCKER = """#!/bin/sh
echo "$*" >> "$FAKE_LOG"
case "$1 $2" in
"image inspect") echo "sha256:$(printf %s "$5" | sha256sum | cut -c1-64)" ;;
"save --output") echo saved > "$3" ;;
esac
"""


def _executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "calls.log"
    _executable(tmp_path / "bin" / "docker", FAKE_DOCKER)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(log))
    return log


def test_tags_are_what_docker_accepts() -> None:
    assert docker_tag("3a16c1d-dirty") == "3a16c1d-dirty"
    assert docker_tag("1.0.0+local/x") == "1.0.0-local-x"
    assert docker_tag("-.") == "dev"
    assert len(docker_tag("x" * 300)) == 128


def test_images_are_built_by_the_script_and_saved_in_one_archive(
    tmp_path: Path, fake_docker: Path
) -> None:
    root = tmp_path / "repo"
    _executable(root / "docker" / "build-images.sh", '#!/bin/sh\necho "build $*" >> "$FAKE_LOG"\n')
    tree, base = tmp_path / "tree", tmp_path / "base"
    images = build_images(root, tree, base, "1.0")
    calls = fake_docker.read_text().splitlines()
    assert calls[0] == f"build --tree {tree} --base {base} --tag 1.0"
    assert [image.reference for image in images] == [
        "securechat/app:1.0",
        "securechat/mariadb:1.0",
        "securechat/nginx:1.0",
    ]
    assert all(image.id.startswith("sha256:") and len(image.id) == 71 for image in images)
    archive = save_images(tree, images)
    assert archive == tree / ARCHIVE
    assert archive.read_text() == "saved\n"
    assert (
        fake_docker.read_text()
        .splitlines()[-1]
        .endswith("securechat/app:1.0 securechat/mariadb:1.0 securechat/nginx:1.0")
    )
    entries = manifest_entries(images)
    assert entries[0] == {
        "name": "securechat/app",
        "tag": "1.0",
        "id": images[0].id,
        "archive": ARCHIVE,
    }


def test_a_failing_build_script_is_an_images_error(tmp_path: Path, fake_docker: Path) -> None:
    root = tmp_path / "repo"
    _executable(root / "docker" / "build-images.sh", "#!/bin/sh\necho 'no engine' >&2\nexit 1\n")
    with pytest.raises(ImagesError, match="no engine"):
        build_images(root, tmp_path / "tree", tmp_path / "base", "1.0")


def test_compose_defaults_to_the_bundle_tag(tmp_path: Path) -> None:
    assert TAG_DEFAULT in (REPO / "docker" / "compose.yml").read_text()
    copy_deployment(REPO, tmp_path, "2.0")
    compose = (tmp_path / "docker" / "compose.yml").read_text()
    assert TAG_DEFAULT not in compose
    assert compose.count("${SECURECHAT_IMAGE_TAG:-2.0}") == 4  # db, migrate, app, front
    for script in ("init-secrets.sh", "init-tls.sh"):
        assert os.access(tmp_path / "docker" / script, os.X_OK)


def test_images_need_the_apt_repository(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--no-debs", "--with-docker-images"]) == 2
    assert "drop --no-debs" in capsys.readouterr().err
