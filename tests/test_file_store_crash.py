"""A writer killed with SIGKILL mid-save never leaves a partial key file.

A child process saves large key sets to a :class:`FileKeyStore` in a tight
loop, printing each version once its save has returned. The test kills it
(SIGKILL: no cleanup, no flush) after a random number of acknowledged saves,
so the kill lands at a random point of the next save: sealing, writing the
temporary file, fsync, rename. After every kill the file must load, its
version must be the last acknowledged one or the one being written, and its
records must be exactly the records of that version.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from jwtward import Key
from jwtward.keys.file_store import FileKeyStore
from jwtward.keys.records import KeyRecord, KeyState

REPO_ROOT = Path(__file__).resolve().parent.parent
MASTER_KEY = bytes(range(100, 132))
TIME_BUDGET = 10.0
MAX_KILLS = 200
MAX_KILL_DELAY_MS = 40  # about one save of the key set below

WRITER = """
import sys
from pathlib import Path
from tests.test_file_store_crash import MASTER_KEY, load_pool, records_for_version
from jwtward.keys.file_store import FileKeyStore

store = FileKeyStore(sys.argv[1], master_key=MASTER_KEY)
pool = load_pool(Path(sys.argv[2]))
version = int(sys.argv[3])
while True:
    version = store.save(version, records_for_version(pool, version + 1))
    print(version, flush=True)
"""


def make_pool(path: Path) -> None:
    """Private JWKs of many keys of every type, shared by the test and its writers."""
    algs = ["ES256"] * 40 + ["EdDSA"] * 40 + ["HS256"] * 40 + ["ES512"] * 10
    jwks = [Key.generate(alg).to_jwk(private=True) for alg in algs]
    path.write_text(json.dumps(jwks), encoding="utf-8")


def load_pool(path: Path) -> list[Key]:
    return [Key.from_jwk(jwk) for jwk in json.loads(path.read_text(encoding="utf-8"))]


def records_for_version(pool: list[Key], version: int) -> list[KeyRecord]:
    """The records written at ``version``: every field depends on it."""
    states = list(KeyState)
    count = len(pool) - version % 7
    shift = version % len(pool)
    keys = (pool[shift:] + pool[:shift])[:count]
    return [
        KeyRecord(
            key=key,
            state=states[(version + i) % len(states)],
            created_at=version * 1000.0 + i,
            activates_at=version * 1000.0 + i + 0.5,
            retires_at=None if (version + i) % 2 else version * 1000.0 + i + 0.25,
            expires_at=None if (version + i) % 3 else version * 2000.0 + i,
            revoked_at=None if (version + i) % 5 else version * 3000.0 + i,
        )
        for i, key in enumerate(keys)
    ]


def comparable(records: Any) -> list[tuple[Any, ...]]:
    return [
        (
            r.key.to_jwk(private=True),
            r.state,
            r.created_at,
            r.activates_at,
            r.retires_at,
            r.expires_at,
            r.revoked_at,
        )
        for r in records
    ]


def run_writer_until_killed(
    store_path: Path, pool_path: Path, version: int, acks_before_kill: int, delay: float
) -> int:
    """Start a writer from ``version``, kill it ``delay`` seconds after its
    ``acks_before_kill``-th save returned; the last acknowledged version."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    writer = subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", WRITER, str(store_path), str(pool_path), str(version)],
        stdout=subprocess.PIPE,
        env=env,
        cwd=REPO_ROOT,
    )
    assert writer.stdout is not None
    acknowledged = []
    try:
        while len(acknowledged) < acks_before_kill:
            line = writer.stdout.readline()
            assert line, f"writer exited early with {writer.wait()}"
            acknowledged.append(int(line))
        time.sleep(delay)  # lands the kill at a random point of the next save
        writer.send_signal(signal.SIGKILL)
        assert writer.wait(timeout=30) == -signal.SIGKILL
        acknowledged += [int(line) for line in writer.stdout.read().split()]
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
        writer.stdout.close()
    return acknowledged[-1]


def test_a_killed_writer_leaves_the_previous_or_the_new_version(tmp_path: Path) -> None:
    store_path = tmp_path / "keys.json"
    pool_path = tmp_path / "pool.json"
    make_pool(pool_path)
    pool = load_pool(pool_path)
    store = FileKeyStore(store_path, master_key=MASTER_KEY)
    last_version = 0
    kills = 0
    deadline = time.monotonic() + TIME_BUDGET
    while kills < MAX_KILLS and (kills == 0 or time.monotonic() < deadline):
        acknowledged = run_writer_until_killed(
            store_path,
            pool_path,
            last_version,
            acks_before_kill=1 + secrets.randbelow(3),
            delay=secrets.randbelow(MAX_KILL_DELAY_MS) / 1000,
        )
        kills += 1
        assert acknowledged > last_version
        snapshot = store.load()
        # The save in flight when the kill came either landed whole or not at all.
        assert snapshot.version in (acknowledged, acknowledged + 1)
        assert comparable(snapshot.records) == comparable(
            records_for_version(pool, snapshot.version)
        )
        last_version = snapshot.version
    # Temporary files of killed writers are cleared by the next save.
    store.save(last_version, records_for_version(pool, last_version + 1))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "keys.json",
        "keys.json.lock",
        "pool.json",
    ]
    assert store.load().version == last_version + 1
