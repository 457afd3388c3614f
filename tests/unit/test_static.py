"""The static files of a release, prepared on the control node for the load balancers.

Artifacts are built for real with pip from a tiny app (tests/unit/tiny_app.py) into a private
cache; the checks are the deploy's own pre-flight functions.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
import tiny_app

from fleet import artifact
from fleet.ops import deploy

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def quiet(_: str) -> None:
    pass


def tree(root: Path) -> dict[str, str]:
    """Every file under `root` with its content hash."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture()
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def test_a_reused_artifact_is_checked_against_this_deploys_static_dir(tmp_path, cache):
    app = tiny_app.make(tmp_path)
    first = artifact.build(app, PYTHON, cache, say=quiet)
    published = deploy._static_of(first, tiny_app.STATIC_DIR)
    assert (published / "manifest.json").is_file()

    reused = artifact.build(app, PYTHON, cache, say=quiet)
    assert reused == first  # the cached artifact, not a new build
    before = tree(cache)
    with pytest.raises(deploy.DeployError) as refused:
        deploy._static_of(reused, "tinyapp/no-such-static")
    message = str(refused.value)
    assert "app_static_dir" in message and "tinyapp/no-such-static" in message, message
    assert "nothing was changed" in message, message
    assert tree(cache) == before, "the refused check left files behind"


def test_a_reused_artifact_with_the_right_static_dir_reuses_its_copy(tmp_path, cache):
    app = tiny_app.make(tmp_path)
    built = artifact.build(app, PYTHON, cache, say=quiet)
    first = deploy._static_of(built, tiny_app.STATIC_DIR)
    before = tree(cache)
    again = deploy._static_of(artifact.build(app, PYTHON, cache, say=quiet),
                              "/" + tiny_app.STATIC_DIR + "/")
    assert again == first and tree(cache) == before
