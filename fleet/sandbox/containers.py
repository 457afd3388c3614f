"""The local fleet: real Debian hosts as systemd containers on a private Docker network.

Everything a sandbox creates carries the label `org.flaskfleet.sandbox=<name>`, so `down` removes
exactly that and nothing else, and a foreign container or network with a clashing name is
refused instead of adopted. Docker is driven through its Python SDK only.
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import docker
import yaml
from docker.errors import APIError, NotFound
from docker.models.containers import Container
from fabric import Connection

from fleet.sandbox import image, sshkeys
from fleet.sandbox.topology import HostSpec, TopologyError, check_unique, inventory

DEFAULT_NAME = "flaskfleet"
LABEL = "org.flaskfleet.sandbox"
GROUPS_LABEL = "org.flaskfleet.groups"
ADMIN_UID = 1000  # the `fleet` user of the host image
BOOT_TIMEOUT_S = 120
FACT_CACHE = Path(".cache/facts")  # as set in ansible.cfg
# Every capability except SYS_RESOURCE, which this kind of VM cannot grant (so --privileged
# fails), and BPF/PERFMON, which this Docker does not know. See docs/decisions.md.
CAPABILITIES = (
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP "
    "LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER "
    "SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_TIME "
    "SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG "
    "WAKE_ALARM BLOCK_SUSPEND AUDIT_READ"
).split()

Say = Callable[[str], None]


class SandboxError(RuntimeError):
    """The sandbox cannot do what was asked; nothing was changed unless the message says so."""


@dataclass(frozen=True)
class HostState:
    name: str
    groups: tuple[str, ...]
    status: str
    address: str | None


class Sandbox:
    """One named sandbox. The default one writes `inventory/sandbox/hosts.yml`."""

    def __init__(self, name: str = DEFAULT_NAME, root: Path | None = None,
                 client: docker.DockerClient | None = None, say: Say = print) -> None:
        self.name = name
        self.root = (root or Path.cwd()).resolve()
        self._client = client
        self.say = say

    # -- names of what we own --------------------------------------------------------------
    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = docker.from_env()
        return self._client

    @property
    def network_name(self) -> str:
        return f"{self.name}-net"

    @property
    def state_dir(self) -> Path:
        return self.root / ".sandbox" / self.name

    @property
    def key_path(self) -> Path:
        return self.state_dir / "id_ed25519"

    @property
    def inventory_path(self) -> Path:
        if self.name == DEFAULT_NAME:
            return self.root / "inventory" / "sandbox" / "hosts.yml"
        return self.state_dir / "hosts.yml"

    def container_name(self, host: str) -> str:
        return f"{self.name}-{host}"

    # -- queries -----------------------------------------------------------------------------
    def _containers(self) -> list[Container]:
        return self.client.containers.list(all=True, filters={"label": f"{LABEL}={self.name}"})

    def _network(self):
        found = self.client.networks.list(filters={"label": f"{LABEL}={self.name}"})
        return found[0] if found else None

    def hosts(self) -> list[HostState]:
        states = []
        for container in self._containers():
            container.reload()
            networks = container.attrs["NetworkSettings"]["Networks"]
            address = networks.get(self.network_name, {}).get("IPAddress") or None
            states.append(HostState(
                name=container.labels.get("org.flaskfleet.host", container.name),
                groups=tuple(filter(None, container.labels.get(GROUPS_LABEL, "").split(","))),
                status=container.status,
                address=address,
            ))
        return sorted(states, key=lambda s: s.name)

    def urls(self) -> list[str]:
        """Where the load balancers' HTTP(S) ports are published on this machine."""
        found = []
        for container in self._containers():
            for port, scheme in (("80/tcp", "http"), ("443/tcp", "https")):
                for binding in container.ports.get(port) or []:
                    found.append(f"{scheme}://{binding['HostIp']}:{binding['HostPort']}")
        return sorted(found)

    # -- up ----------------------------------------------------------------------------------
    def _refuse_foreign(self, specs: Iterable[HostSpec]) -> None:
        """Stop before creating anything if a name we need belongs to someone else."""
        for net in self.client.networks.list(names=[self.network_name]):
            owner = (net.attrs.get("Labels") or {}).get(LABEL)
            if net.name == self.network_name and owner != self.name:
                raise SandboxError(
                    f"a Docker network named {self.network_name} exists and was not created by "
                    f"this sandbox; remove it or choose another sandbox name")
        for spec in specs:
            cname = self.container_name(spec.name)
            try:
                other = self.client.containers.get(cname)
            except NotFound:
                continue
            if other.labels.get(LABEL) != self.name:
                raise SandboxError(
                    f"a container named {cname} exists and was not created by this sandbox; "
                    "remove it or choose another sandbox name")

    def up(self, specs: list[HostSpec], http_port: int | None = 8080,
           https_port: int | None = 8443) -> list[HostState]:
        """Make sure every host in `specs` exists and answers SSH; never removes a host."""
        check_unique(specs)
        existing = {h.name: h for h in self.hosts()}
        for spec in specs:
            if spec.name in existing and set(existing[spec.name].groups) != set(spec.groups):
                raise SandboxError(
                    f"host {spec.name} is already up with groups "
                    f"{','.join(existing[spec.name].groups)}; run `fab sandbox.down` first "
                    "to change its groups")
        self._refuse_foreign(specs)
        image_tag = image.ensure_image(self.client, say=self.say)
        network = self._network() or self._create_network()
        private_key, public_key = sshkeys.ensure_keypair(self.key_path)

        missing = [s for s in specs if s.name not in existing]
        for spec in missing:
            self.say(f"sandbox: creating {spec.name} ({', '.join(spec.groups)})")
            self._create_host(spec, image_tag, network.name, public_key, http_port, https_port)
        for container in self._containers():
            if container.status != "running":
                self.say(f"sandbox: starting {container.name}")
                container.start()
        states = self.hosts()
        self._wait_ready(states, private_key)
        self._write_inventory(states, private_key)
        return states

    def _create_network(self):
        self.say(f"sandbox: creating network {self.network_name}")
        return self.client.networks.create(
            self.network_name, driver="bridge", labels={LABEL: self.name})

    def _create_host(self, spec: HostSpec, image_tag: str, network: str, public_key: str,
                     http_port: int | None, https_port: int | None) -> None:
        ports = {}
        if "loadbalancers" in spec.groups:
            # Only on loopback: the sandbox is for the person at this machine.
            ports = {"80/tcp": ("127.0.0.1", http_port), "443/tcp": ("127.0.0.1", https_port)}
        try:
            container = self.client.containers.create(
                image_tag,
                name=self.container_name(spec.name),
                hostname=spec.name,
                labels={LABEL: self.name, "org.flaskfleet.host": spec.name,
                        GROUPS_LABEL: ",".join(spec.groups)},
                network=network,
                cap_add=list(CAPABILITIES),
                security_opt=["seccomp=unconfined", "apparmor=unconfined"],
                cgroupns="host",
                volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}},
                tmpfs={"/run": "rw,exec,mode=755", "/run/lock": "rw,mode=1777"},
                ports=ports,
                detach=True,
            )
            container.put_archive(
                "/home/fleet/.ssh",
                sshkeys.authorized_keys_tar(public_key, uid=ADMIN_UID, gid=ADMIN_UID))
            container.start()
        except APIError as exc:
            raise SandboxError(
                f"could not start {spec.name}: {exc.explanation or exc}; "
                "`fab sandbox.down` removes what was created so far") from exc

    def _wait_ready(self, states: list[HostState], private_key: Path) -> None:
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=max(1, len(states))) as pool:
            list(pool.map(lambda s: self._wait_host(s, private_key), states))
        self.say(f"sandbox: {len(states)} host(s) answer SSH with systemd running "
                 f"({time.monotonic() - started:.1f}s)")

    def _wait_host(self, state: HostState, private_key: Path) -> None:
        container = self.client.containers.get(self.container_name(state.name))
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        system = ""
        while time.monotonic() < deadline:
            result = container.exec_run(["systemctl", "is-system-running"])
            system = result.output.decode().strip()
            if system in ("running", "degraded") and _ssh_answers(state.address, private_key):
                if system == "degraded":
                    failed = container.exec_run(
                        ["systemctl", "--failed", "--no-legend", "--plain"]).output.decode()
                    raise SandboxError(f"{state.name}: systemd is degraded:\n{failed}")
                return
            time.sleep(0.5)
        raise SandboxError(
            f"{state.name} did not come up within {BOOT_TIMEOUT_S}s "
            f"(systemd: {system or 'unknown'}); see `fab sandbox.status`")

    def _write_inventory(self, states: list[HostState], private_key: Path) -> None:
        content = inventory(
            addresses={s.name: s.address for s in states if s.address},
            groups={s.name: s.groups for s in states},
            private_key=str(private_key),
            control_address=self.gateway(),
        )
        self.inventory_path.parent.mkdir(parents=True, exist_ok=True)
        header = (f"# Generated by `fab sandbox.up` for sandbox {self.name!r}; "
                  "do not edit, it is rewritten.\n")
        self.inventory_path.write_text(header + yaml.safe_dump(content, sort_keys=False))

    def gateway(self) -> str | None:
        """This machine's address on the sandbox network, as the hosts see it."""
        network = self._network()
        if network is None:
            return None
        network.reload()
        configs = (network.attrs.get("IPAM") or {}).get("Config") or []
        return next((str(c["Gateway"]).split("/")[0] for c in configs if c.get("Gateway")),
                    None)

    def remove_host(self, host: str) -> bool:
        """Remove one host's container and rewrite the inventory without it (node.remove)."""
        try:
            container = self.client.containers.get(self.container_name(host))
        except NotFound:
            return False
        if container.labels.get(LABEL) != self.name:
            raise SandboxError(f"container {container.name} was not created by this sandbox")
        container.remove(force=True, v=True)
        (self.root / FACT_CACHE / host).unlink(missing_ok=True)
        states = self.hosts()
        if states:
            self._write_inventory(states, self.key_path)
        return True

    # -- down --------------------------------------------------------------------------------
    def down(self) -> list[str]:
        """Remove exactly what `up` created. Returns what was removed."""
        removed = []
        for container in self._containers():
            container.remove(force=True, v=True)
            removed.append(f"container {container.name}")
            # Ansible's cached facts describe the host that is now gone.
            host = container.labels.get("org.flaskfleet.host", "")
            (self.root / FACT_CACHE / host).unlink(missing_ok=True)
        network = self._network()
        if network is not None:
            network.remove()
            removed.append(f"network {network.name}")
        if self.inventory_path.exists():
            self.inventory_path.unlink()
            removed.append(str(self.inventory_path.relative_to(self.root)))
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir)
            removed.append(str(self.state_dir.relative_to(self.root)))
        return removed


def _ssh_answers(address: str | None, private_key: Path) -> bool:
    """True once sshd accepts our key and runs a command."""
    if not address:
        return False
    try:
        with socket.create_connection((address, 22), timeout=2):
            pass
    except OSError:
        return False
    try:
        with Connection(address, user="fleet", connect_timeout=5,
                        connect_kwargs={"key_filename": str(private_key),
                                        "look_for_keys": False, "allow_agent": False}) as conn:
            return conn.run("true", hide=True, warn=True, in_stream=False).ok
    except Exception:  # any failure here only means "not yet"; the caller times out
        return False


__all__ = ["DEFAULT_NAME", "Sandbox", "SandboxError", "TopologyError", "HostState"]
