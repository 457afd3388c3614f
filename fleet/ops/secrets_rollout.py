"""`fab secrets.rollout` (and `secrets.rotate --apply`): new secrets through a live fleet.

No request may fail and no client may be locked out, so the servers learn the new password
before any client uses it and forget the old one only after every client has moved:

1. accept:  Redis and MariaDB accept the old and the new password at once (Redis: a second
            password on its ACL user, applied at run time without a restart; MariaDB: a second
            authentication on each account, `IDENTIFIED VIA ... OR ...`).
2. clients: every app, worker and beat host gets its env file with the new values; nothing is
            restarted yet.
3. switch:  the app hosts move through the deploy's own path (playbooks/release-switch.yml on
            the live release: each host starts its other gunicorn slot with the new values,
            gates it on /readyz, and the load balancers move to it).
4. workers: the app programs (app_programs) restart on the live release
            (playbooks/release-workers.yml).
5. finish:  the old values are dropped from the store, and the servers accept only the new ones.

The whole run holds the deploy lock and leaves an audit record. If it stops half-way, the
store still holds the old values beside the new ones and both are accepted: run it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fleet import ansible, phases
from fleet.inventory import INVENTORY_ROOT, Inventory
from fleet.ops import provision as provisioning
from fleet.ops import releases, vault
from fleet.ops.operation import Tracked, operation
from fleet.phases import Clock

PLAYBOOKS = ansible.ROOT / "playbooks"
PASSWORDS_PLAYBOOK = PLAYBOOKS / "secrets-passwords.yml"
CLIENTS_PLAYBOOK = PLAYBOOKS / "secrets-clients.yml"


class RolloutError(RuntimeError):
    """The roll-out stopped; the message says where and what state the fleet is in."""


@dataclass
class Rollout(Tracked):
    env: str
    pending: list[str]
    release: str | None = None

    def summary(self) -> str:
        moved = ", ".join(self.pending) or "no password pair (clients moved to the stored values)"
        tail = (f"secrets rolled out on {self.env}: {moved}" if self.ok
                else f"secrets roll-out on {self.env} FAILED: {self.failure}")
        return phases.table(self.phases, self.ok) + "\n" + tail

    def audit_entry(self) -> dict:
        return self.audit_record("secrets", self.env, self.release or "-", secrets=self.pending)


def live_release(inv: Inventory) -> str | None:
    """The one release every app/worker/beat host runs; None when nothing is deployed yet."""
    found = releases.read(inv)
    unreadable = {h: s.error for h, s in found.items() if s.error}
    if unreadable:
        raise RolloutError("cannot read the releases on: " + "; ".join(
            f"{h}: {e}" for h, e in sorted(unreadable.items())) + "; nothing was changed")
    lives = {s.live for s in found.values()}
    if lives == {None}:
        return None
    if len(lives) != 1:
        shown = ", ".join(f"{h}={s.live or '-'}" for h, s in sorted(found.items()))
        raise RolloutError(f"the hosts run different releases ({shown}): finish the deploy "
                           "or roll back first; nothing was changed")
    return lives.pop()


def _run(playbook: Path, inv: Inventory, variables: dict, say: ansible.Say,
         what: str) -> None:
    result = ansible.run_with_vars(playbook, inv.path, variables, say=say)
    if not result.ok:
        failed = ", ".join(result.failed_hosts) or "a host"
        raise RolloutError(f"{what} failed on {failed} (output above)")


def rollout(env: str, password: str | None = None, say: ansible.Say = print,
            root: Path = INVENTORY_ROOT) -> Rollout:
    """Bring the fleet to the secrets in the store without a failed request (see above)."""
    store = vault.store(env, password, root)
    with vault.password_in_environment(store.password):
        return _rollout(env, store, say)


def _rollout(env: str, store: vault.Store, say: ansible.Say) -> Rollout:
    done = Rollout(env, pending=list(store.pending()))
    clock = Clock(done.phases, say)
    with clock.phase("pre-flight", "inventory, secrets, hosts, live release"):
        try:
            inv = provisioning.preflight(env, say=say)
        except provisioning.ProvisionError as exc:
            raise RolloutError(str(exc)) from None
        done.release = live_release(inv)
    with operation(inv, "secrets", done.release or "-", done, RolloutError, say):
        _phases(clock, inv, store, done, say)
    return done


def _phases(clock: Clock, inv: Inventory, store: vault.Store, done: Rollout,
            say: ansible.Say) -> None:
    stopped = (" The servers still accept the old and the new values; run "
               f"`fab secrets.rollout --env {done.env}` again to finish.")
    with clock.phase("accept", "Redis and MariaDB accept the old and the new passwords"):
        _run(PASSWORDS_PLAYBOOK, inv, {}, say, "teaching the servers the new passwords")
    try:
        with clock.phase("clients", "write the env files of app, worker and beat hosts"):
            _run(CLIENTS_PLAYBOOK, inv, {}, say, "writing the env files")
        if done.release:
            variables = {"deploy_release": done.release}
            with clock.phase("switch", "start each app host's other slot with the new values, "
                                       "gate it, move the load balancers"):
                _run(PLAYBOOKS / "release-switch.yml", inv, variables, say,
                     "restarting the app hosts")
            with clock.phase("workers", "restart app_programs on workers and beat (warm shutdown)"):
                _run(PLAYBOOKS / "release-workers.yml", inv, variables, say,
                     "restarting the programs (app_programs)")
        else:
            say("no release is deployed: no program runs, the env files are all it takes")
    except RolloutError as exc:
        raise RolloutError(str(exc) + stopped) from None
    with clock.phase("finish", "forget the old passwords"):
        forgotten = vault.finish(store)
        if forgotten:
            say(f"removed the old values of {', '.join(forgotten)} from {store.path}")
        _run(PASSWORDS_PLAYBOOK, inv, {}, say, "removing the old passwords")
