"""Wycheproof JOSE vectors for the JWS and JWK layer, one pytest item per tcId.

Files: ``json_web_signature_test.json``, ``json_web_key_test.json`` and the
signature groups of ``json_web_crypto_test.json`` (its JWE groups belong to the
JWE layer; :func:`test_only_the_jwe_groups_are_left_out` proves nothing else is
left out). Each case runs as the vectors README says: the verifier is the
group's ``public`` member if present, else ``private`` (a JWK through
``Key.from_jwk`` or a JWK Set through ``KeySet.from_jwks``), then
``jws.verify(token, keys)``.

* ``valid``: the payload comes back, verified by the key the group names (the
  token's ``kid`` picks it out of a set), and no other key of the set verifies.
* ``invalid``: a ``JWTWardError`` is raised, either at key import (then an
  ``InvalidKey``) or by ``jws.verify`` (then an ``InvalidToken``, which carries
  the RFC 6750 code). Any other exception is a failure.

Where jwtward's verdict differs from the file's on purpose, ``DISAGREEMENTS``
names the tcId, the verdict jwtward gives and why; the quirk tests below check
each stated reason against the data, so the table cannot quietly go stale.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from jwtward import JWTWardError, Key, KeySet, errors, jws
from tests.conftest import is_jwe_group, load_module_vectors

SIG = "json_web_signature_test.json"
JWK = "json_web_key_test.json"
CRYPTO = "json_web_crypto_test.json"
FILES = {SIG: "sig", JWK: "jwk", CRYPTO: "crypto"}


VECTORS: dict[str, Any] = {name: load_module_vectors("wycheproof", name) for name in FILES}


@dataclass(frozen=True)
class Case:
    """One Wycheproof test with the group it belongs to."""

    file: str
    group_index: int
    group: Mapping[str, Any]
    test: Mapping[str, Any]

    @property
    def tc_id(self) -> int:
        return int(self.test["tcId"])

    @property
    def id(self) -> str:
        return f"{FILES[self.file]}-{self.group['comment']}-tc{self.tc_id}"

    @property
    def token(self) -> Any:
        return self.test["jws"]

    @property
    def key_doc(self) -> Mapping[str, Any]:
        return self.group.get("public", self.group["private"])


def _cases() -> Iterator[Case]:
    for name in FILES:
        for index, group in enumerate(VECTORS[name]["testGroups"]):
            if is_jwe_group(group):
                continue
            for test in group["tests"]:
                yield Case(name, index, group, test)


CASES = list(_cases())
BY_KEY = {(case.file, case.tc_id): case for case in CASES}


@dataclass(frozen=True)
class Disagreement:
    """jwtward's deliberate verdict on one vector, and why it differs from the file's."""

    refusal: type[JWTWardError] | None  # None: jwtward accepts the token
    reason: str


_KEY_ALG_PS = (
    "RFC 7520 §4.2 PS384 token, but the group's key says alg PS256: a key is made for one "
    "alg and the header must name it (invariant 1). The same file's ps512 group "
    "(WrongPrimitive, e.g. tcId 338) calls exactly this mismatch invalid."
)
_KEY_ALG_ES521 = (
    "RFC 7520 §4.3 ES512 token, but the group's key says alg 'ES521', which is not a "
    "registered JWA name: the key is refused at import, as json_web_key tcId 19 expects."
)
_MAC_OF_OTHER_INPUT = (
    "the '?' makes the segment non-base64url, and the MAC is that of the token without "
    "the '?' (tcId 357), not of this signing input: an RFC 7515 verifier must refuse it."
)
_SAME_AS_357 = (
    "the token is byte for byte the valid token of tcId 357 (the padding this case is "
    "named after is absent from the data), so no verifier can accept 357 and refuse it."
)

DISAGREEMENTS: dict[tuple[str, int], Disagreement] = {
    (SIG, 346): Disagreement(errors.AlgorithmMismatch, _KEY_ALG_PS),
    (SIG, 350): Disagreement(errors.AlgorithmMismatch, _KEY_ALG_PS),
    (SIG, 347): Disagreement(errors.UnsupportedAlgorithm, _KEY_ALG_ES521),
    (SIG, 351): Disagreement(errors.UnsupportedAlgorithm, _KEY_ALG_ES521),
    # Header segment: refused while parsing, before any key work.
    (SIG, 372): Disagreement(errors.MalformedToken, _MAC_OF_OTHER_INPUT),
    # Payload segment: the signature is checked before the payload is decoded.
    (SIG, 373): Disagreement(errors.InvalidSignature, _MAC_OF_OTHER_INPUT),
    # Not in the README's quirk list: found while writing these tests.
    (SIG, 367): Disagreement(None, _SAME_AS_357),
    (SIG, 370): Disagreement(None, _SAME_AS_357),
}


# -- running one case ----------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What jwtward did: the keys it built, and the result or the refusal."""

    keys: Key | KeySet | None
    payload: bytes | None
    error: JWTWardError | None
    stage: str  # "import", "verify" or "accepted"


def _build(doc: Mapping[str, Any]) -> Key | KeySet:
    if "keys" in doc:
        return KeySet.from_jwks(doc)
    return Key.from_jwk(doc)


def _run(case: Case) -> Outcome:
    """Import the group's keys, then verify; any non-JWTWardError fails the test."""
    try:
        keys = _build(case.key_doc)
    except JWTWardError as exc:
        return Outcome(None, None, exc, "import")
    except Exception as exc:
        pytest.fail(f"{type(exc).__name__} escaped key import: {exc}")
    try:
        payload = jws.verify(case.token, keys)
    except JWTWardError as exc:
        return Outcome(keys, None, exc, "verify")
    except Exception as exc:
        pytest.fail(f"{type(exc).__name__} escaped jws.verify: {exc}")
    return Outcome(keys, payload, None, "accepted")


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key_members(jwk: Mapping[str, Any]) -> dict[str, Any]:
    names = {"RSA": ("n", "e"), "EC": ("crv", "x", "y"), "OKP": ("crv", "x"), "oct": ("k",)}
    return {name: jwk[name] for name in ("kty", *names[jwk["kty"]])}


def _group_jwks(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(doc["keys"]) if "keys" in doc else [doc]


def _check_key_use(case: Case, keys: Key | KeySet) -> None:
    """The key that verified is the group's key the token names, and only it verifies."""
    decoded = jws.decode(case.token, keys)
    header = decoded.header
    key = decoded.key
    assert key.alg == header["alg"]
    if "kid" in header:
        assert key.kid == header["kid"]
    if isinstance(keys, KeySet):
        assert key is (keys[header["kid"]] if "kid" in header else next(iter(keys)))
    else:
        assert key is keys
    named = [jwk for jwk in _group_jwks(case.key_doc) if jwk.get("kid") == key.kid]
    assert len(named) == 1, "the verifying key is not exactly one JWK of the group"
    exported = key.to_jwk(private=key.kty == "oct")
    assert _key_members(exported) == _key_members(named[0])
    signing_input, _, signature = case.token.rpartition(".")
    for other in keys if isinstance(keys, KeySet) else ():
        if other is not key:
            with pytest.raises(errors.InvalidSignature):
                other.verify(signing_input.encode("ascii"), _b64(signature))


# -- the vectors ---------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_vector(case: Case) -> None:
    outcome = _run(case)
    disagreement = DISAGREEMENTS.get((case.file, case.tc_id))
    if disagreement is not None:
        if disagreement.refusal is None:
            assert outcome.error is None, f"refused: {outcome.error!r}"
        else:
            assert isinstance(outcome.error, disagreement.refusal), outcome
        return
    if case.test["result"] == "valid":
        assert outcome.error is None, f"refused at {outcome.stage}: {outcome.error!r}"
        assert outcome.keys is not None
        assert outcome.payload == _b64(case.token.split(".")[1])
        _check_key_use(case, outcome.keys)
        return
    assert case.test["result"] == "invalid"
    assert outcome.error is not None, "an invalid token was accepted"
    if outcome.stage == "import":
        assert isinstance(outcome.error, errors.InvalidKey)
    else:
        assert isinstance(outcome.error, errors.InvalidToken)
        assert outcome.error.error == "invalid_token"


def test_every_file_yields_cases() -> None:
    """Each file's cases are all collected, and the counts match its numberOfTests."""
    for name in FILES:
        doc = VECTORS[name]
        total = sum(len(group["tests"]) for group in doc["testGroups"])
        assert doc["numberOfTests"] == total
        collected = [case for case in CASES if case.file == name]
        assert collected, f"{name} yields no cases"
        skipped = sum(len(g["tests"]) for g in doc["testGroups"] if is_jwe_group(g))
        assert len(collected) + skipped == total
        assert len({case.tc_id for case in collected}) == len(collected)
    assert {name: sum(c.file == name for c in CASES) for name in FILES} == {
        SIG: 394,
        JWK: 17,
        CRYPTO: 47,
    }


def test_only_the_jwe_groups_are_left_out() -> None:
    """The left-out groups are exactly the JWE groups of the combined file."""
    for name in FILES:
        for group in VECTORS[name]["testGroups"]:
            kinds = {("jwe" in test, "jws" in test) for test in group["tests"]}
            if is_jwe_group(group):
                assert name == CRYPTO
                assert kinds == {(True, False)}
                assert group["comment"].startswith("jwe")
                assert group["private"]["use"] == "enc"
            else:
                assert kinds == {(False, True)}
    skipped = [g["comment"] for g in VECTORS[CRYPTO]["testGroups"] if is_jwe_group(g)]
    assert skipped == ["jwe_aes"]


def test_json_serialization_is_refused() -> None:
    """A JSON-serialized JWS, as text or as an object, is not a compact token."""
    cases = [
        case
        for case in CASES
        if "JsonSerialization" in case.test["flags"] or not isinstance(case.token, str)
    ]
    assert {(c.file, c.tc_id) for c in cases} == {(SIG, 17), (CRYPTO, 17)}
    for case in cases:
        keys = _build(case.key_doc)
        texts = (
            [case.token] if isinstance(case.token, str) else [case.token, json.dumps(case.token)]
        )
        for token in texts:
            with pytest.raises(errors.MalformedToken):
                jws.verify(token, keys)


# -- the disagreements: each stated reason is checked against the data ---------


def test_disagreements_are_real_and_present() -> None:
    """Every entry names a case that exists and whose file verdict it contradicts."""
    for (name, tc_id), disagreement in DISAGREEMENTS.items():
        case = BY_KEY[(name, tc_id)]
        expected = "invalid" if disagreement.refusal is None else "valid"
        assert case.test["result"] == expected


@pytest.mark.parametrize("tc_id", [372, 373])
def test_quirk_mac_over_another_input(tc_id: int) -> None:
    """Without the '?' the token is tcId 357's, so its MAC is not over its own input."""
    token = BY_KEY[(SIG, tc_id)].token
    assert token.count("?") == 1
    assert token.replace("?", "") == BY_KEY[(SIG, 357)].token


@pytest.mark.parametrize("tc_id", [367, 370])
def test_quirk_same_token_as_a_valid_case(tc_id: int) -> None:
    """The 'invalid padding' cases hold no padding: they are tcId 357's valid token."""
    token = BY_KEY[(SIG, tc_id)].token
    assert "=" not in token
    assert token == BY_KEY[(SIG, 357)].token


@pytest.mark.parametrize("tc_id", [346, 347, 350, 351])
def test_quirk_key_alg_is_the_only_obstacle(tc_id: int) -> None:
    """With the key bound to the header's alg, the token verifies: only the alg differs."""
    case = BY_KEY[(SIG, tc_id)]
    header_alg = jws.unverified_header(case.token)["alg"]
    assert case.key_doc["alg"] != header_alg
    key = Key.from_jwk({**case.key_doc, "alg": header_alg})
    assert jws.verify(case.token, key) == _b64(case.token.split(".")[1])


def test_duplicate_kid_is_refused_for_itself() -> None:
    """json_web_key tcId 4 (DuplicateKid) is refused for its duplicate kid, found
    before any key is built.

    Its second key's ``k`` also ends in a character with non-zero unused bits
    (strict base64url, invariant 5): that key alone is refused too, and
    re-encoding it canonically leaves the duplicate kid as the only fault.
    """
    doc = BY_KEY[(JWK, 4)].key_doc
    with pytest.raises(errors.InvalidKey, match="duplicate kid"):
        KeySet.from_jwks(doc)
    with pytest.raises(errors.InvalidKey, match="unused trailing bits"):
        Key.from_jwk(doc["keys"][1])
    canonical = [
        {**jwk, "k": base64.urlsafe_b64encode(_b64(jwk["k"])).rstrip(b"=").decode()}
        for jwk in doc["keys"]
    ]
    assert canonical[1]["k"] != doc["keys"][1]["k"]
    with pytest.raises(errors.InvalidKey, match="duplicate kid"):
        KeySet.from_jwks({"keys": canonical})
