"""RFC 7520 (JOSE Cookbook) JWS examples in compact form, run against ``jwtward.jws``.

Compact JWS examples: §4.1 RS256, §4.2 PS384, §4.3 ES512, §4.4 HS256, §4.5
HS256 with detached content, RFC 8037 A.4 EdDSA (``curve25519/jws.json``),
the inner JWS of §6 (PS256) and RFC 7797's ``b64: false`` HS256 token.

* The six ordinary ones verify with their key. Several cookbook keys have no
  ``alg``; it is bound with ``alg=`` from ``input.alg``, the normal way to
  load such a key.
* Every reproducible example's signature is recomputed with ``Key.sign`` over
  the example's signing input. ``jws.sign`` always writes the header as
  ``{"alg":..,"kid":..}``, so the whole token can be recreated byte for byte
  only where the example's protected header is exactly that (§4.1, §4.4).
* Refused on purpose: RFC 7797 ``b64: false`` (jwtward does not do unencoded
  payloads, nor any ``crit`` extension) and §4.5's compact form. Detached
  content (RFC 7515 Appendix F) leaves the payload segment empty and expects
  the verifier to be handed the payload out of band; ``jws.verify`` has no
  such input, so the token is a JWS over the empty payload, whose signature
  does not match. Re-attaching the payload makes it verify (it is then §4.4).
* The JSON serializations of every JWS example are refused: jwtward is
  compact-only.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from jwtward import Key, errors, jws
from tests.conftest import load_vectors, vector_path

try:  # the parameters below read the vectors at collection time
    ROOT = vector_path("rfc7520")
except pytest.skip.Exception as exc:
    pytest.skip(str(exc), allow_module_level=True)

NESTED = "6.nesting_signatures_and_encryption.json#sign"
DETACHED = "jws/4_5.signature_with_detached_content.json"
B64_FALSE = "rfc7797/hmac-sha2_b64_false.json"

VERIFIES = (
    "jws/4_1.rsa_v15_signature.json",
    "jws/4_2.rsa-pss_signature.json",
    "jws/4_3.ecdsa_signature.json",
    "jws/4_4.hmac-sha2_integrity_protection.json",
    "curve25519/jws.json",
    NESTED,
)
REFUSED: dict[str, type[errors.JWTWardError]] = {
    DETACHED: errors.InvalidSignature,
    B64_FALSE: errors.InvalidHeader,
}
JWS_FOLDERS = ("jws", "rfc7797", "curve25519")


@functools.cache
def _example(name: str) -> Mapping[str, Any]:
    path, _, part = name.partition("#")
    doc: Mapping[str, Any] = load_vectors("rfc7520", *path.split("/"))
    return doc[part] if part else doc


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _key(example: Mapping[str, Any]) -> Key:
    """The example's (first) key, bound to its (first) alg."""
    jwk, alg = example["input"]["key"], example["input"]["alg"]
    if isinstance(jwk, list):
        jwk, alg = jwk[0], alg[0]
    return Key.from_jwk(jwk, alg=alg)


def _verifier(key: Key) -> Key:
    return key if key.kty == "oct" else key.public_key()


def _payload(example: Mapping[str, Any]) -> bytes:
    return str(example["input"]["payload"]).encode("utf-8")


def _jws_example_names() -> list[str]:
    names = [
        path.relative_to(ROOT).as_posix()
        for folder in JWS_FOLDERS
        for path in sorted(Path(ROOT, folder).glob("*.json"))
    ]
    return [name for name in names if "payload" in _example(name)["input"]] + [NESTED]


def test_inventory() -> None:
    """Every compact JWS in the cookbook is either verified or refused below."""
    compact = {n for n in _jws_example_names() if "compact" in _example(n)["output"]}
    assert compact == set(VERIFIES) | set(REFUSED)
    assert len(compact) == 8


@pytest.mark.parametrize("name", VERIFIES)
def test_compact_verifies(name: str) -> None:
    example = _example(name)
    signing, compact = example["signing"], example["output"]["compact"]
    assert compact == f"{signing['sig-input']}.{signing['sig']}"
    verifier = _verifier(_key(example))
    decoded = jws.decode(compact, verifier)
    assert decoded.payload == _payload(example)
    assert jws.verify(compact, verifier) == _payload(example)
    assert dict(decoded.header) == signing["protected"]
    assert decoded.key is verifier
    assert verifier.alg == example["input"]["alg"] == signing["protected"]["alg"]


def _reproducible() -> list[str]:
    # RFC 7797's "signing" block does not describe its own token (its
    # protected_b64u is not even JSON, and its sig is over another header);
    # test_b64_false_is_refused checks the MAC of the compact token instead.
    return [n for n in (*VERIFIES, *REFUSED) if _example(n).get("reproducible") and n != B64_FALSE]


def test_reproducible_examples_are_the_deterministic_algs() -> None:
    """HS256, RS256 and EdDSA are deterministic; PS384, ES512 and PS256 are not."""
    assert sorted(_reproducible()) == sorted(
        [VERIFIES[0], VERIFIES[3], DETACHED, "curve25519/jws.json"]
    )


@pytest.mark.parametrize("name", _reproducible())
def test_signature_recomputed(name: str) -> None:
    """``Key.sign`` over the example's signing input gives the example's signature."""
    example = _example(name)
    signing = example["signing"]
    assert signing["sig-input"].split(".")[0] == signing["protected_b64u"]
    assert json.loads(_b64(signing["protected_b64u"])) == signing["protected"]
    key = _key(example)
    assert key.sign(signing["sig-input"].encode("ascii")) == _b64(signing["sig"])


def _recreatable() -> list[str]:
    return [
        name
        for name in _reproducible()
        if list(_example(name)["signing"]["protected"]) == ["alg", "kid"] and name != DETACHED
    ]


def test_recreatable_examples() -> None:
    """Only §4.1 and §4.4 have exactly the header ``jws.sign`` writes, with attached content."""
    assert _recreatable() == [VERIFIES[0], VERIFIES[3]]


@pytest.mark.parametrize("name", _recreatable())
def test_recreated_byte_for_byte(name: str) -> None:
    example = _example(name)
    assert jws.sign(_payload(example), _key(example)) == example["output"]["compact"]


def test_eddsa_header_differs_only_by_kid() -> None:
    """RFC 8037 A.4's header has no kid, so ``jws.sign`` cannot recreate the token itself."""
    example = _example("curve25519/jws.json")
    key = _key(example)
    token = jws.sign(_payload(example), key)
    assert dict(jws.unverified_header(token)) == {**example["signing"]["protected"], "kid": key.kid}
    assert token.split(".")[1] == example["output"]["compact"].split(".")[1]
    assert jws.verify(token, _verifier(key)) == _payload(example)


def test_detached_content_is_refused() -> None:
    """§4.5 compact is a JWS over the empty payload; its signature is over the real one."""
    example = _example(DETACHED)
    header, payload, signature = example["output"]["compact"].split(".")
    assert payload == ""
    key = _key(example)
    with pytest.raises(REFUSED[DETACHED]):
        jws.verify(example["output"]["compact"], key)
    attached = f"{header}.{_b64encode(_payload(example))}.{signature}"
    assert jws.verify(attached, key) == _payload(example)
    assert attached == _example(VERIFIES[3])["output"]["compact"]
    signed_header, _, signed_signature = jws.sign(_payload(example), key).split(".")
    assert f"{signed_header}..{signed_signature}" == example["output"]["compact"]


def test_b64_false_is_refused() -> None:
    """RFC 7797's token carries a correct MAC, and is refused for its header alone."""
    example = _example(B64_FALSE)
    compact = example["output"]["compact"]
    header, payload, signature = compact.split(".")
    assert payload == example["input"]["payload"]  # unencoded: not base64url at all
    assert json.loads(_b64(header)) == {"alg": "HS256", "b64": False, "crit": ["b64"]}
    key = _key(example)
    assert key.sign(f"{header}.{payload}".encode()) == _b64(signature)
    with pytest.raises(REFUSED[B64_FALSE]):
        jws.verify(compact, key)
    with pytest.raises(errors.InvalidArgument):
        jws.sign(_payload(example), key, headers={"b64": False, "crit": ["b64"]})


def _json_outputs() -> list[tuple[str, str]]:
    return [
        (name, form)
        for name in _jws_example_names()
        for form in ("json", "json_flat")
        if form in _example(name)["output"]
    ]


def test_json_serializations_exist() -> None:
    assert len(_json_outputs()) == 21  # 4.1-4.7 x2, 4.8, RFC 7797 x4, RFC 8037 x2


@pytest.mark.parametrize(("name", "form"), _json_outputs())
def test_json_serialization_is_refused(name: str, form: str) -> None:
    """A JSON-serialized JWS, as an object or as text, is not a compact token."""
    example = _example(name)
    serialized = example["output"][form]
    key = _verifier(_key(example))
    for token in (serialized, json.dumps(serialized)):
        with pytest.raises(errors.MalformedToken):
            jws.verify(token, key)
