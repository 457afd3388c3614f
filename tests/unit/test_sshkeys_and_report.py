import io
import stat
import tarfile

from fleet import report
from fleet.sandbox import sshkeys


def test_keypair_is_private_and_reused(tmp_path):
    path = tmp_path / "keys" / "id_ed25519"
    private, public = sshkeys.ensure_keypair(path)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public.startswith("ssh-ed25519 ")
    assert private.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert sshkeys.ensure_keypair(path) == (private, public)


def test_authorized_keys_archive_is_owned_by_the_admin_user():
    blob = sshkeys.authorized_keys_tar("ssh-ed25519 AAAA test", uid=1000, gid=1000)
    with tarfile.open(fileobj=io.BytesIO(blob)) as archive:
        (member,) = archive.getmembers()
        assert (member.name, member.uid, member.gid, member.mode) == (
            "authorized_keys", 1000, 1000, 0o600)
        assert archive.extractfile(member).read() == b"ssh-ed25519 AAAA test\n"


def test_table_aligns_columns_and_marks_empty_cells():
    text = report.table(("host", "address"), [("app1", "10.0.0.3"), ("longname", None)])
    assert text.splitlines() == [
        "host      address",
        "--------  --------",
        "app1      10.0.0.3",
        "longname  -",
    ]
