"""A KeyRing on the persistent stores: what several server processes rely on.

Two rings opened on one store stand for two processes: they must agree on the
active key, see each other's rotations and revocations after a refresh, and
never hold a private key in plaintext at rest.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from jwtward import KeyRing, Policy, RotationPolicy, jwt
from jwtward.errors import KeyNotFound
from jwtward.keys import FileKeyStore, KeyState, KeyStore, SQLiteKeyStore

PASSPHRASE = "correct horse battery staple"
T0 = 1_800_000_000.0
StoreFactory = Callable[[Path], KeyStore]

STORES: dict[str, StoreFactory] = {
    "file": lambda tmp: FileKeyStore(tmp / "keys.json", passphrase=PASSPHRASE),
    "sqlite": lambda tmp: SQLiteKeyStore(tmp / "keys.db", passphrase=PASSPHRASE),
}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=sorted(STORES))
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], KeyStore]:
    factory = STORES[request.param]
    return lambda: factory(tmp_path)


def test_two_rings_on_one_store_agree_on_the_active_key(
    make_store: Callable[[], KeyStore],
) -> None:
    clock = Clock(T0)
    first = KeyRing.generate("ES256", store=make_store(), clock=clock)
    second = KeyRing.generate("ES256", store=make_store(), clock=clock)
    assert first.signing_key().kid == second.signing_key().kid
    actives = [r for r in second.records() if r.state is KeyState.ACTIVE]
    assert len(actives) == 1


def test_tokens_signed_by_one_process_verify_in_the_other(
    make_store: Callable[[], KeyStore],
) -> None:
    clock = Clock(T0)
    issuer = KeyRing.generate("ES256", store=make_store(), clock=clock)
    verifier = KeyRing.generate("ES256", store=make_store(), clock=clock)
    policy = Policy(issuer="it", clock=clock)
    token = jwt.encode({"iss": "it"}, issuer.signing_key(), clock=clock)
    assert jwt.decode(token, verifier, policy)["iss"] == "it"
    rotated = issuer.rotate()
    verifier.refresh()
    assert verifier.signing_key().kid == rotated.kid
    assert jwt.decode(token, verifier, policy)["iss"] == "it"  # retired, within grace


def test_a_revocation_reaches_the_other_process_on_refresh(
    make_store: Callable[[], KeyStore],
) -> None:
    clock = Clock(T0)
    issuer = KeyRing.generate("ES256", store=make_store(), clock=clock)
    verifier = KeyRing.generate("ES256", store=make_store(), clock=clock)
    key = issuer.signing_key()
    token = jwt.encode({}, key, clock=clock)
    issuer.revoke(key.kid)
    verifier.refresh()
    with pytest.raises(KeyNotFound):
        jwt.decode(token, verifier, Policy(clock=clock))
    assert key.kid not in {jwk["kid"] for jwk in verifier.jwks()["keys"]}


def test_the_schedule_persists_across_restarts(make_store: Callable[[], KeyStore]) -> None:
    clock = Clock(T0)
    policy = RotationPolicy(rotate_every=timedelta(days=30))
    ring = KeyRing.generate("EdDSA", store=make_store(), clock=clock, policy=policy)
    first = ring.signing_key().kid
    # Restarted late (no process maintained the ring): the successor is
    # published first and signs only publish_ahead (1 day) later, so JWKS
    # caches see it before any token does.
    clock.now = T0 + 31 * 86400
    restarted = KeyRing.generate("EdDSA", store=make_store(), clock=clock, policy=policy)
    assert restarted.signing_key().kid == first
    published = {jwk["kid"] for jwk in restarted.jwks()["keys"]}
    assert len(published) == 2 and first in published
    clock.now += 86400
    again = KeyRing.generate("EdDSA", store=make_store(), clock=clock, policy=policy)
    assert again.signing_key().kid != first
    assert again.signing_key().kid in published
    assert first in {jwk["kid"] for jwk in again.jwks()["keys"]}  # retired, in grace


def _maintain_in_process(path: str, kind: str, now: float, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store: KeyStore = (
        FileKeyStore(Path(path), passphrase=PASSPHRASE)
        if kind == "file"
        else SQLiteKeyStore(Path(path), passphrase=PASSPHRASE)
    )
    ring = KeyRing.generate("ES256", store=store, clock=lambda: now)
    out.put(ring.signing_key().kid)


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_processes_starting_together_make_one_active_key(kind: str, tmp_path: Path) -> None:
    """Four processes open an empty store at once: the store decides, one key wins."""
    path = str(tmp_path / ("keys.json" if kind == "file" else "keys.db"))
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [
        context.Process(target=_maintain_in_process, args=(path, kind, T0, queue)) for _ in range(4)
    ]
    for process in processes:
        process.start()
    deadline = time.monotonic() + 120
    kids = [queue.get(timeout=max(1.0, deadline - time.monotonic())) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert len(set(kids)) == 1
    store = STORES[kind](tmp_path)
    actives = [r for r in store.load().records if r.state is KeyState.ACTIVE]
    assert [r.key.kid for r in actives] == kids[:1]
