"""Wycheproof primitive vectors, run through jwtward's own signer layer.

The JOSE vectors test tokens; these test the primitive under each JWS algorithm
(ECDSA in P1363 form, RSASSA-PKCS1-v1_5, RSASSA-PSS, EdDSA, HMAC) through
``Key.verify``, the exact code path of every token verification. A key is built
from the group's JWK (``Key.from_jwk(..., alg=...)``) and, where the group also
has DER, ``Key.from_der`` must load the same key (same RFC 7638 thumbprint).

Every ``valid`` case must verify; every ``invalid`` case must be refused with a
``JWTWardError`` subclass, and nothing else may escape. Each file is one test
that runs all its cases and lists every mismatching tcId in one message, so the
~5000 cases cost a few seconds, not thousands of pytest items.

Which groups apply, and the verdicts jwtward deliberately gives:

* ECDSA: a group applies when its ``sha`` is the hash of the curve's JOSE alg.
  In the four P1363 files every group uses that hash, so the excluded set is
  pinned at zero groups per file (a new upstream group with another hash would
  show up as a count change, not as silently skipped cases).
* RSASSA-PKCS1-v1_5: the one ``acceptable`` case per file is tcId 8, flag
  ``MissingNull`` (a DigestInfo without the NULL parameter, a legacy encoding
  that is not valid PKCS#1). jwtward verifies through pyca/cryptography, which
  compares against the canonical DigestInfo, so it refuses it; that stricter
  verdict is the one asserted (refused with a ``JWTWardError``). No group in
  these files is below 2048 bits; the test would expect such a group to be
  refused at import (invariant 4) and pins the count of weak groups at zero.
* RSASSA-PSS: RFC 7518 §3.5 fixes MGF1 with the message hash and a salt as long
  as the hash, so only such groups apply: one per ``rsa_pss_<bits>_*`` file and
  three in ``rsa_pss_misc`` (one each for PS256/384/512). The other 87 misc
  groups with a SHA-2 message hash JOSE knows carry signatures that are valid
  under other MGF/salt parameters: the PS alg of that hash must refuse all of
  them (no salt auto-detection). The 60 misc groups hashing with SHA-1 or
  SHA-224 match no JOSE alg.
* EdDSA: both files run under ``EdDSA`` and under the fully specified
  ``Ed25519`` / ``Ed448`` (RFC 9864).
* HMAC: JWS never truncates a MAC, so only groups whose ``tagSize`` is the full
  hash output apply. Their shortest-key group (16/24/32-byte keys for
  HS256/384/512) is below RFC 7518 §3.2, so every key in it must be refused at
  ``Key.from_secret``. In the truncated-tag groups every tag, valid ones
  included, must be refused. Every vector key of an allowed length is random
  and must be accepted by ``Key.from_secret`` (it is not an encoded key).
"""

from __future__ import annotations

import base64
import functools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jwtward import Key
from jwtward.errors import InvalidKey, InvalidSignature, JWTWardError
from jwtward.jose.algorithms import MIN_RSA_BITS
from tests.conftest import load_vectors

Group = Mapping[str, Any]
Case = Mapping[str, Any]

HASH_BYTES = {"SHA-256": 32, "SHA-384": 48, "SHA-512": 64}
ALG_HASH = {suffix: f"SHA-{suffix}" for suffix in ("256", "384", "512")}

ECDSA_FILES = {  # file -> (alg, its hash, applicable groups, excluded groups)
    "ecdsa_secp256r1_sha256_p1363_test.json": ("ES256", "SHA-256", 112, 0),
    "ecdsa_secp384r1_sha384_p1363_test.json": ("ES384", "SHA-384", 104, 0),
    "ecdsa_secp521r1_sha512_p1363_test.json": ("ES512", "SHA-512", 107, 0),
    "ecdsa_secp256k1_sha256_p1363_test.json": ("ES256K", "SHA-256", 108, 0),
}
RSA_PKCS1_FILES = {  # file -> (alg, groups); every group applies, none is weak
    f"rsa_signature_{bits}_sha{h}_test.json": (f"RS{h}", groups)
    for (bits, h), groups in {
        (2048, 256): 3,
        (2048, 384): 1,
        (2048, 512): 2,
        (3072, 256): 2,
        (3072, 384): 1,
        (3072, 512): 2,
        (4096, 256): 1,
        (4096, 384): 1,
        (4096, 512): 1,
    }.items()
}
# The acceptable cases of the PKCS#1 files and the verdict jwtward gives them.
RSA_PKCS1_ACCEPTABLE_TCIDS = frozenset({8})
ACCEPTABLE_VERDICTS = {"MissingNull": "refused"}

PSS_FILES = {  # file -> applicable groups per PS alg
    "rsa_pss_2048_sha256_mgf1_32_test.json": {"PS256": 1},
    "rsa_pss_3072_sha256_mgf1_32_test.json": {"PS256": 1},
    "rsa_pss_4096_sha256_mgf1_32_test.json": {"PS256": 1},
    "rsa_pss_2048_sha384_mgf1_48_test.json": {"PS384": 1},
    "rsa_pss_4096_sha384_mgf1_48_test.json": {"PS384": 1},
    "rsa_pss_4096_sha512_mgf1_64_test.json": {"PS512": 1},
    "rsa_pss_misc_test.json": {"PS256": 1, "PS384": 1, "PS512": 1},
}
PSS_MISC_FOREIGN_PARAMETER_GROUPS = 87

EDDSA_RUNS = [
    ("ed25519_test.json", "EdDSA"),
    ("ed25519_test.json", "Ed25519"),
    ("ed448_test.json", "EdDSA"),
    ("ed448_test.json", "Ed448"),
]
HMAC_FILES = {  # file -> (alg, full-tag groups, of which with a too-short key)
    "hmac_sha256_test.json": ("HS256", 3, 1),
    "hmac_sha384_test.json": ("HS384", 3, 1),
    "hmac_sha512_test.json": ("HS512", 3, 1),
}

# Key.generate for every signature alg: label -> (alg, crv, JOSE signature length).
GENERATED = {
    "HS256": ("HS256", None, 32),
    "HS384": ("HS384", None, 48),
    "HS512": ("HS512", None, 64),
    "RS256": ("RS256", None, 256),
    "RS384": ("RS384", None, 256),
    "RS512": ("RS512", None, 256),
    "PS256": ("PS256", None, 256),
    "PS384": ("PS384", None, 256),
    "PS512": ("PS512", None, 256),
    "ES256": ("ES256", None, 64),
    "ES384": ("ES384", None, 96),
    "ES512": ("ES512", None, 132),
    "ES256K": ("ES256K", None, 64),
    "EdDSA-Ed25519": ("EdDSA", "Ed25519", 64),
    "EdDSA-Ed448": ("EdDSA", "Ed448", 114),
    "Ed25519": ("Ed25519", None, 64),
    "Ed448": ("Ed448", None, 114),
}
# The vector files whose messages each generated key signs.
MESSAGES_OF = {
    "HS256": ["hmac_sha256_test.json"],
    "HS384": ["hmac_sha384_test.json"],
    "HS512": ["hmac_sha512_test.json"],
    **{
        alg: [name for name, (file_alg, _) in RSA_PKCS1_FILES.items() if file_alg == alg]
        for alg in ("RS256", "RS384", "RS512")
    },
    **{
        alg: [name for name, algs in PSS_FILES.items() if alg in algs]
        for alg in ("PS256", "PS384", "PS512")
    },
    **{alg: [name] for name, (alg, _, _, _) in ECDSA_FILES.items()},
    "EdDSA-Ed25519": ["ed25519_test.json"],
    "EdDSA-Ed448": ["ed448_test.json"],
    "Ed25519": ["ed25519_test.json"],
    "Ed448": ["ed448_test.json"],
}


@functools.cache
def _vectors(name: str) -> dict[str, Any]:
    return load_vectors("wycheproof", "primitives", name)  # type: ignore[no-any-return]


def _outcome(key: Key, msg: bytes, sig: bytes) -> str:
    """What ``key.verify`` did: accepted, refused (with which error) or escaped."""
    try:
        key.verify(msg, sig)
    except InvalidSignature:
        return "refused"
    except JWTWardError as exc:
        return f"refused ({type(exc).__name__})"
    except Exception as exc:
        return f"escaped {type(exc).__name__}: {exc}"
    return "accepted"


@dataclass
class Tally:
    """The cases run per expected verdict, and every case that came out otherwise."""

    name: str
    verdicts: Counter[str] = field(default_factory=Counter)
    mismatches: list[str] = field(default_factory=list)

    def check(self, case: Case, key: Key, expected: str, sig_member: str = "sig") -> None:
        got = _outcome(key, bytes.fromhex(case["msg"]), bytes.fromhex(case[sig_member]))
        self.verdicts[expected] += 1
        if got != expected and not (expected == "refused" and got.startswith("refused")):
            self.fail(case, f"expected {expected}, got {got}")

    def fail(self, case: Case, what: str) -> None:
        self.mismatches.append(
            f"tcId {case['tcId']} ({case.get('comment', '')}; {case.get('flags', [])}): {what}"
        )

    def assert_clean(self) -> None:
        assert sum(self.verdicts.values()) > 0, f"{self.name}: no applicable case ran"
        assert not self.mismatches, f"{self.name}: {len(self.mismatches)} mismatches\n" + "\n".join(
            self.mismatches
        )


def _expected(case: Case) -> str:
    """The strict verdict: valid accepted, invalid refused, acceptable per table."""
    if case["result"] == "valid":
        return "accepted"
    if case["result"] == "invalid":
        return "refused"
    decided = {ACCEPTABLE_VERDICTS[f] for f in case["flags"] if f in ACCEPTABLE_VERDICTS}
    assert len(decided) == 1, f"tcId {case['tcId']}: no decided verdict for {case['flags']}"
    return decided.pop()


def _run_groups(
    tally: Tally,
    groups: Iterable[Group],
    make_key: Callable[[Group], Key],
    expect: Callable[[Case], str],
) -> None:
    """Verify every case of ``groups``; a key refused at import fails all its cases."""
    for group in groups:
        try:
            key = make_key(group)
        except JWTWardError as exc:
            for case in group["tests"]:
                tally.fail(case, f"group key refused: {type(exc).__name__}: {exc}")
            continue
        for case in group["tests"]:
            tally.check(case, key, expect(case))


def _same_key_from_der(group: Group, key: Key) -> None:
    """The group's DER must load as the same key as its JWK."""
    der_key = Key.from_der(bytes.fromhex(group["publicKeyDer"]), alg=key.alg)
    assert der_key.thumbprint() == key.thumbprint()


def _group_key(group: Group, alg: str) -> Key:
    """The group's public key from its JWK (checked against its DER), else its DER.

    Some groups (the ``davidben/*`` ECDSA edge cases, all of ``rsa_pss_misc``)
    carry no JWK.
    """
    jwk = group.get("publicKeyJwk", group.get("keyJwk"))
    if jwk is None:
        return Key.from_der(bytes.fromhex(group["publicKeyDer"]), alg=alg)
    key = Key.from_jwk(jwk, alg=alg)
    _same_key_from_der(group, key)
    return key


# -- ECDSA (P1363 r||s is exactly the JWS signature) ------------------------------


@pytest.mark.parametrize("name", ECDSA_FILES)
def test_ecdsa_p1363_vectors(name: str) -> None:
    alg, sha, applicable_count, excluded_count = ECDSA_FILES[name]
    groups = _vectors(name)["testGroups"]
    applicable = [g for g in groups if g["sha"] == sha]
    assert len(applicable) == applicable_count
    assert len(groups) - len(applicable) == excluded_count

    tally = Tally(name)
    _run_groups(tally, applicable, lambda g: _group_key(g, alg), _expected)
    tally.assert_clean()


# -- RSASSA-PKCS1-v1_5 ------------------------------------------------------------


def _refuse_weak_rsa(groups: list[Group], make_key: Callable[[Group], Key]) -> list[Group]:
    """Assert that keys below 2048 bits are refused at import; return the others.

    Invariant 4: a weak key never becomes a ``Key``, so its cases yield no
    verdict at all (they are not counted as mismatches).
    """
    strong = []
    for group in groups:
        if group["keySize"] < MIN_RSA_BITS:
            with pytest.raises(InvalidKey):
                make_key(group)
        else:
            strong.append(group)
    return strong


@pytest.mark.parametrize("name", RSA_PKCS1_FILES)
def test_rsa_pkcs1_vectors(name: str) -> None:
    alg, group_count = RSA_PKCS1_FILES[name]
    groups = _vectors(name)["testGroups"]
    assert len(groups) == group_count
    assert {g["sha"] for g in groups} == {ALG_HASH[alg[2:]]}
    acceptable = {c["tcId"] for g in groups for c in g["tests"] if c["result"] == "acceptable"}
    assert acceptable == RSA_PKCS1_ACCEPTABLE_TCIDS

    def make_key(group: Group) -> Key:
        return _group_key(group, alg)

    strong = _refuse_weak_rsa(groups, make_key)
    assert len(strong) == group_count  # no group of these files is below 2048 bits
    tally = Tally(name)
    _run_groups(tally, strong, make_key, _expected)
    tally.assert_clean()
    assert tally.verdicts["refused"] > tally.verdicts["accepted"] > 0


# -- RSASSA-PSS -------------------------------------------------------------------


def _pss_alg(group: Group) -> str | None:
    """The PS alg whose fixed parameters the group uses, if any (RFC 7518 §3.5)."""
    sha = group["sha"]
    if sha not in HASH_BYTES:
        return None
    if (group["mgf"], group["mgfSha"], group["sLen"]) != ("MGF1", sha, HASH_BYTES[sha]):
        return None
    return "PS" + sha.removeprefix("SHA-")


@pytest.mark.parametrize("name", PSS_FILES)
def test_rsa_pss_vectors(name: str) -> None:
    groups = _vectors(name)["testGroups"]
    per_alg = Counter(alg for g in groups if (alg := _pss_alg(g)) is not None)
    assert dict(per_alg) == PSS_FILES[name]

    def make_key(group: Group) -> Key:
        return _group_key(group, _pss_alg(group) or "")

    applicable = [g for g in groups if _pss_alg(g) is not None]
    strong = _refuse_weak_rsa(applicable, make_key)
    assert len(strong) == len(applicable)  # no applicable group is below 2048 bits
    tally = Tally(name)
    _run_groups(tally, strong, make_key, _expected)
    tally.assert_clean()


def test_rsa_pss_foreign_parameters_are_refused() -> None:
    """Signatures valid under another MGF hash or salt length fail the JOSE PS alg."""
    name = "rsa_pss_misc_test.json"
    foreign = [
        g for g in _vectors(name)["testGroups"] if g["sha"] in HASH_BYTES and _pss_alg(g) is None
    ]
    assert len(foreign) == PSS_MISC_FOREIGN_PARAMETER_GROUPS
    tally = Tally(f"{name} (foreign parameters)")
    _run_groups(
        tally,
        foreign,
        lambda g: _group_key(g, "PS" + g["sha"].removeprefix("SHA-")),
        lambda _case: "refused",
    )
    tally.assert_clean()


# -- EdDSA ------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "alg"), EDDSA_RUNS)
def test_eddsa_vectors(name: str, alg: str) -> None:
    groups = _vectors(name)["testGroups"]

    tally = Tally(f"{name} as {alg}")
    _run_groups(tally, groups, lambda g: _group_key(g, alg), _expected)
    tally.assert_clean()


@pytest.mark.parametrize(
    ("name", "wrong_alg"), [("ed25519_test.json", "Ed448"), ("ed448_test.json", "Ed25519")]
)
def test_eddsa_key_refused_for_the_other_curve(name: str, wrong_alg: str) -> None:
    """A fully specified alg binds its curve (invariant 4)."""
    for group in _vectors(name)["testGroups"]:
        with pytest.raises(InvalidKey):
            Key.from_jwk(group["publicKeyJwk"], alg=wrong_alg)


# -- HMAC -------------------------------------------------------------------------


def _hmac_groups(name: str, *, full_tag: bool) -> tuple[str, int, list[Group]]:
    alg = HMAC_FILES[name][0]
    size = HASH_BYTES[ALG_HASH[alg[2:]]]
    groups = [g for g in _vectors(name)["testGroups"] if (g["tagSize"] == 8 * size) == full_tag]
    return alg, size, groups


@pytest.mark.parametrize("name", HMAC_FILES)
def test_hmac_vectors(name: str) -> None:
    alg, size, groups = _hmac_groups(name, full_tag=True)
    _, group_count, weak_count = HMAC_FILES[name]
    assert len(groups) == group_count
    assert sum(g["keySize"] < 8 * size for g in groups) == weak_count

    tally = Tally(name)
    refused_keys = 0
    for group in groups:
        for case in group["tests"]:
            secret = bytes.fromhex(case["key"])
            if len(secret) < size:  # RFC 7518 §3.2: refused at key creation
                with pytest.raises(InvalidKey):
                    Key.from_secret(secret, alg=alg)
                refused_keys += 1
                continue
            try:
                key = Key.from_secret(secret, alg=alg)
            except JWTWardError as exc:
                tally.fail(case, f"secret refused: {type(exc).__name__}: {exc}")
                continue
            tally.check(case, key, _expected(case), sig_member="tag")
            if (
                case["result"] == "valid"
                and key.sign(bytes.fromhex(case["msg"])).hex() != case["tag"]
            ):
                tally.fail(case, "key.sign does not produce the vector's tag")
    assert refused_keys > 0
    tally.assert_clean()


@pytest.mark.parametrize("name", HMAC_FILES)
def test_hmac_truncated_tags_are_refused(name: str) -> None:
    """JWS MACs are never truncated: a tag valid as a truncated HMAC must fail.

    Keys come in as oct JWKs here so that this test depends only on the tag rule.
    """
    alg, size, groups = _hmac_groups(name, full_tag=False)
    assert groups
    tally = Tally(f"{name} (truncated tags)")
    for group in groups:
        for case in group["tests"]:
            secret = bytes.fromhex(case["key"])
            jwk = {"kty": "oct", "k": base64.urlsafe_b64encode(secret).rstrip(b"=").decode()}
            if len(secret) < size:
                with pytest.raises(InvalidKey):
                    Key.from_jwk(jwk, alg=alg)
                continue
            tally.check(case, Key.from_jwk(jwk, alg=alg), "refused", sig_member="tag")
    assert tally.verdicts["refused"] > 0
    tally.assert_clean()


@pytest.mark.parametrize("name", HMAC_FILES)
def test_random_vector_secrets_are_accepted(name: str) -> None:
    """Random secrets of an allowed length are not encoded keys and must import.

    The key-confusion guard of ``Key.from_secret`` must not refuse a random
    secret merely because its first byte is ``{`` (0x7b), which 1 in 256
    random secrets has (``hmac_sha256`` tcIds 82 and 104).
    """
    alg = HMAC_FILES[name][0]
    size = HASH_BYTES[ALG_HASH[alg[2:]]]
    refused = []
    checked = 0
    for group in _vectors(name)["testGroups"]:
        for case in group["tests"]:
            secret = bytes.fromhex(case["key"])
            if len(secret) < size:
                continue
            checked += 1
            try:
                Key.from_secret(secret, alg=alg)
            except JWTWardError as exc:
                refused.append(f"tcId {case['tcId']} (key {case['key'][:8]}...): {exc}")
    assert checked > 0
    assert not refused, "\n".join(refused)


# -- generated keys: round trip and garbage signatures ------------------------------


@pytest.fixture(scope="module")
def generated_keys() -> dict[str, Key]:
    """One fresh key per signature alg (RSA generation is the slow part: once per module)."""
    return {
        label: Key.generate(alg, crv=crv) if crv else Key.generate(alg)
        for label, (alg, crv, _) in GENERATED.items()
    }


def _verifier(key: Key) -> Key:
    return key if key.kty == "oct" else key.public_key()


@pytest.mark.parametrize("label", GENERATED)
def test_generated_key_round_trips_vector_messages(
    generated_keys: dict[str, Key], label: str
) -> None:
    """Fresh keys sign every vector message at the JOSE length; only that message verifies."""
    key = generated_keys[label]
    alg, _crv, sig_len = GENERATED[label]
    assert key.alg == alg
    verifier = _verifier(key)
    messages = {
        bytes.fromhex(case["msg"])
        for name in MESSAGES_OF[label]
        for group in _vectors(name)["testGroups"]
        for case in group["tests"]
    }
    assert messages
    for msg in messages:
        sig = key.sign(msg)
        assert len(sig) == sig_len
        verifier.verify(msg, sig)
        with pytest.raises(InvalidSignature):
            verifier.verify(msg + b"\x00", sig)


def _edge_signatures(valid: bytes) -> list[bytes]:
    n = len(valid)
    return [
        b"",
        b"\x00",
        valid[:-1],
        valid + b"\x00",
        b"\x00" + valid,
        valid * 2,
        bytes(n),
        b"\xff" * n,
        bytes([valid[0] ^ 1]) + valid[1:],
        valid[:-1] + bytes([valid[-1] ^ 0x80]),
    ]


@pytest.mark.parametrize("label", GENERATED)
def test_malformed_signatures_raise_only_invalid_signature(
    generated_keys: dict[str, Key], label: str
) -> None:
    """Near misses of a real signature (lengths off by one, zeros, flipped bits) fail cleanly."""
    key = generated_keys[label]
    msg = b"wycheproof primitives"
    verifier = _verifier(key)
    for sig in _edge_signatures(key.sign(msg)):
        got = _outcome(verifier, msg, sig)
        assert got == "refused", f"{len(sig)}-byte signature {sig.hex()[:40]}...: {got}"


@pytest.mark.parametrize("label", GENERATED)
@settings(max_examples=50, deadline=None)
@given(sig=st.binary(max_size=1200))
def test_garbage_signatures_raise_only_invalid_signature(
    generated_keys: dict[str, Key], label: str, sig: bytes
) -> None:
    """Any byte string, of any length, is refused with InvalidSignature and nothing else."""
    assert _outcome(_verifier(generated_keys[label]), b"payload", sig) == "refused"
