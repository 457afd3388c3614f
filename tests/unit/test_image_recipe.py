from pathlib import Path

from fleet.sandbox import image


def _recipe(tmp_path: Path, dockerfile: str) -> Path:
    recipe = tmp_path / "recipe"
    recipe.mkdir(exist_ok=True)
    (recipe / "Dockerfile").write_text(dockerfile)
    (recipe / "unit.service").write_text("[Unit]\n")
    return recipe


def test_hash_is_stable_for_the_same_recipe(tmp_path):
    first = image.recipe_hash(_recipe(tmp_path, "FROM x\n"))
    assert first == image.recipe_hash(_recipe(tmp_path, "FROM x\n"))
    assert len(first) == 12


def test_hash_changes_when_any_file_changes(tmp_path):
    recipe = _recipe(tmp_path, "FROM x\n")
    before = image.recipe_hash(recipe)
    (recipe / "unit.service").write_text("[Unit]\nDescription=changed\n")
    assert image.recipe_hash(recipe) != before


def test_hash_changes_when_a_file_is_renamed(tmp_path):
    recipe = _recipe(tmp_path, "FROM x\n")
    before = image.recipe_hash(recipe)
    (recipe / "unit.service").rename(recipe / "other.service")
    assert image.recipe_hash(recipe) != before


def test_tag_carries_the_hash(tmp_path):
    recipe = _recipe(tmp_path, "FROM y\n")
    assert image.image_tag(recipe) == f"flaskfleet-host:{image.recipe_hash(recipe)}"


def test_the_real_recipe_has_what_hosts_need():
    dockerfile = (image.RECIPE_DIR / "Dockerfile").read_text()
    for needed in ("systemd", "openssh-server", "python3", "sudo", "NOPASSWD", "/sbin/init"):
        assert needed in dockerfile


def test_mirrors_are_read_from_deb822_sources(tmp_path):
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n")
    assert image.apt_mirrors(apt) == (
        "http://mirror.example/debian", "http://mirror.example/debian-security")


def test_mirrors_fall_back_to_debian_defaults(tmp_path):
    assert image.apt_mirrors(tmp_path) == (
        "http://deb.debian.org/debian", "http://deb.debian.org/debian-security")
