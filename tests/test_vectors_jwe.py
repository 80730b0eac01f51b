"""Compact JWE decryption against vectors jwtward's authors did not write.

Three sources, each read through the public API (``jwe.decrypt``,
``jwe.decode``, ``jws.verify``, ``jwt.decode``):

1. Wycheproof: every test of ``json_web_encryption_test.json`` and of the JWE
   groups of ``json_web_crypto_test.json``, decrypted with the group's
   ``private`` key. The expected outcome of each case is worked out from the
   token text alone (see :func:`_expected`), so a refusal is asserted with its
   exact type: ``DecryptionFailed`` (one message, no chained cause) once a key
   is chosen and the cryptography fails, ``MalformedToken`` for a token that is
   not five segments of strict base64url JSON, ``KeyNotFound`` for a ``kid``
   naming no key, ``AlgorithmMismatch`` for a header ``alg`` that is not the
   key's, and ``InvalidHeader`` for what jwtward refuses by design (RSA1_5 and
   ``zip``). Where that differs from the file's verdict, ``DISAGREEMENTS``
   says why, and a test checks the table against the data.
2. RFC 7520 (the JOSE cookbook): every JWE example with a compact form, and
   the nested JWS-in-JWE example of §6.
3. RFC 7516 Appendix A.1, A.2 and A.3, transcribed (see ``RFC7516_*``).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap

from jwtward import Key, KeySet, Policy, errors, jwe, jws, jwt
from jwtward.jose import content_encryption
from jwtward.jose.content_encryption import DECRYPTION_FAILED_MESSAGE
from tests.conftest import is_jwe_group, load_module_vectors, vector_path

ENC_FILE = "json_web_encryption_test.json"
CRYPTO_FILE = "json_web_crypto_test.json"
FILES = {ENC_FILE: "enc", CRYPTO_FILE: "crypto"}
CONTENT_ENCRYPTIONS = frozenset(
    {"A128GCM", "A192GCM", "A256GCM", "A128CBC-HS256", "A192CBC-HS384", "A256CBC-HS512"}
)


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _assert_decryption_failed(error: BaseException) -> None:
    """The one cryptographic refusal: one type, one message, nothing chained to it."""
    assert type(error) is errors.DecryptionFailed
    assert str(error) == DECRYPTION_FAILED_MESSAGE
    assert error.__cause__ is None
    assert error.__context__ is None


def test_the_decryption_failure_message_is_the_documented_one() -> None:
    assert DECRYPTION_FAILED_MESSAGE == "token decryption failed"


# == 1. Wycheproof ==========================================================================

WYCHEPROOF: dict[str, Any] = {name: load_module_vectors("wycheproof", name) for name in FILES}


@dataclass(frozen=True)
class Case:
    """One Wycheproof JWE test with the group it belongs to."""

    file: str
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
        return self.test["jwe"]

    @property
    def jwk(self) -> Mapping[str, Any]:
        # The README: "for JWE always private".
        private: Mapping[str, Any] = self.group["private"]
        return private


def _cases() -> Iterator[Case]:
    for name in FILES:
        for group in WYCHEPROOF[name]["testGroups"]:
            if is_jwe_group(group):
                for test in group["tests"]:
                    yield Case(name, group, test)


CASES = list(_cases())
BY_KEY = {(case.file, case.tc_id): case for case in CASES}


def test_every_jwe_group_is_taken_and_nothing_else() -> None:
    """The encryption file is JWE throughout; the crypto file mixes JWS and JWE groups."""
    for name in FILES:
        for group in WYCHEPROOF[name]["testGroups"]:
            kinds = {("jwe" in test, "jws" in test) for test in group["tests"]}
            assert kinds in ({(True, False)}, {(False, True)}), group["comment"]
    enc_groups = WYCHEPROOF[ENC_FILE]["testGroups"]
    assert all(is_jwe_group(group) for group in enc_groups)
    crypto_jwe = [g["comment"] for g in WYCHEPROOF[CRYPTO_FILE]["testGroups"] if is_jwe_group(g)]
    assert crypto_jwe == ["jwe_aes"]
    by_file = {name: sum(1 for case in CASES if case.file == name) for name in FILES}
    assert by_file == {ENC_FILE: WYCHEPROOF[ENC_FILE]["numberOfTests"], CRYPTO_FILE: 17}
    assert len(BY_KEY) == len(CASES)


def test_no_case_is_acceptable() -> None:
    """No "acceptable" verdict occurs in these files, so there is nothing to decide.

    Were one added, this fails, and the case needs a decision of its own
    (asserted and explained like the DISAGREEMENTS below) before it runs.
    """
    assert {case.test["result"] for case in CASES} == {"valid", "invalid"}


# -- the expected outcome, from the token text alone ---------------------------------------


@dataclass(frozen=True)
class Expected:
    """What jwtward must do with a case: return ``plaintext`` or raise ``error``."""

    plaintext: bytes | None
    error: type[errors.JWTWardError] | None
    stage: str  # "import" (the key is refused), "decrypt" or "accepted"


def _header(token: str) -> dict[str, Any] | None:
    """The protected header as strict JSON, or None when it is not one."""
    segment = token.split(".", maxsplit=1)[0]
    if "=" in segment:
        return None  # JOSE base64url carries no padding
    try:
        padded = segment + "=" * (-len(segment) % 4)
        header = json.loads(base64.b64decode(padded, altchars=b"-_", validate=True))
    except (ValueError, binascii.Error):
        return None
    return header if isinstance(header, dict) else None


def _key_alg(jwk: Mapping[str, Any]) -> str:
    """The alg the key is made for: a content encryption as alg means ``dir`` (RFC 7520 §5.6)."""
    alg = str(jwk["alg"])
    return "dir" if alg in CONTENT_ENCRYPTIONS else alg


def _plaintext(case: Case) -> bytes:
    """The stated plaintext; a crypto-file case without ``pt`` borrows it from the same token
    in the encryption file, whose tests state it."""
    if "pt" in case.test:
        return bytes.fromhex(case.test["pt"])
    twins = [
        other
        for other in CASES
        if other.file == ENC_FILE and other.token == case.token and "pt" in other.test
    ]
    assert twins, f"{case.id}: valid without a plaintext, and no twin in {ENC_FILE}"
    return bytes.fromhex(twins[0].test["pt"])


def _expected(case: Case) -> Expected:
    """jwtward's verdict on a case, derived from the token and the key, not from jwtward."""
    token = case.token
    if not isinstance(token, str):
        # JSON serialization as an object: jwtward decrypts compact tokens only.
        return Expected(None, errors.MalformedToken, "decrypt")
    if token.count(".") != 4:
        # A segment (and its separator) removed, or a JSON serialization string.
        return Expected(None, errors.MalformedToken, "decrypt")
    header = _header(token)
    if header is None:
        return Expected(None, errors.MalformedToken, "decrypt")
    if case.jwk.get("alg") == "RSA1_5":
        # Refused by design (invariant 8): an RSA1_5 key cannot even be loaded.
        return Expected(None, errors.UnsupportedAlgorithm, "import")
    if header.get("alg") == "RSA1_5" or "zip" in header:
        # Refused by design (invariant 8): RSA1_5 has an unfixable padding oracle,
        # and a compressed token is refused before anything is inflated.
        return Expected(None, errors.InvalidHeader, "decrypt")
    if "kid" in header and header["kid"] != case.jwk.get("kid"):
        return Expected(None, errors.KeyNotFound, "decrypt")
    if header.get("alg") != _key_alg(case.jwk):
        # Invariant 1: the key decides the algorithm, never the header.
        return Expected(None, errors.AlgorithmMismatch, "decrypt")
    if case.test["result"] == "valid":
        return Expected(_plaintext(case), None, "accepted")
    # Everything else is a sound header and the right key: the cryptography must fail.
    return Expected(None, errors.DecryptionFailed, "decrypt")


@dataclass(frozen=True)
class Disagreement:
    """A case the file calls valid that jwtward refuses on purpose, and why."""

    refusal: type[errors.JWTWardError]
    reason: str


_RSA1_5 = (
    "RFC 7520 §5.1 (Figure 81): RSA1_5 key management. jwtward does not offer RSA1_5 "
    "(invariant 8, RFC 8725 §3.2): its padding oracle cannot be fixed, so the group's "
    "key is refused at import and the token's header would be refused too."
)
_ZIP = (
    "RFC 7520 §5.9 (Figure 170): 'zip':'DEF'. jwtward refuses compressed JWE "
    "(invariant 8) before inflating anything: decompression bombs and compression "
    "oracles. The vectors README notes a toolkit without DEFLATE must skip it on purpose."
)

DISAGREEMENTS: dict[tuple[str, int], Disagreement] = {
    (ENC_FILE, 128): Disagreement(errors.UnsupportedAlgorithm, _RSA1_5),
    (ENC_FILE, 135): Disagreement(errors.InvalidHeader, _ZIP),
}


def test_disagreements_are_exactly_the_valid_cases_refused_by_design() -> None:
    refused_valid = {
        (case.file, case.tc_id): _expected(case).error
        for case in CASES
        if case.test["result"] == "valid" and _expected(case).error is not None
    }
    assert refused_valid == {key: d.refusal for key, d in DISAGREEMENTS.items()}
    assert BY_KEY[ENC_FILE, 128].test["comment"] == "Figure81"
    assert BY_KEY[ENC_FILE, 135].test["flags"] == ["CompressedPlaintext"]
    assert _header(BY_KEY[ENC_FILE, 135].token) is not None
    assert (_header(BY_KEY[ENC_FILE, 135].token) or {}).get("zip") == "DEF"


def test_every_invalid_case_is_refused_with_a_typed_error() -> None:
    """Each "invalid" case has a refusal, and the kinds add up to what the data holds."""
    counts: dict[str, int] = {}
    for case in CASES:
        expected = _expected(case)
        if case.test["result"] == "invalid":
            assert expected.error is not None, case.id
            counts[expected.error.__name__] = counts.get(expected.error.__name__, 0) + 1
    assert counts == {
        "DecryptionFailed": 28,
        "MalformedToken": 14,
        "InvalidHeader": 12,  # the 12 Pkcs15WithOaepKey tokens
        "KeyNotFound": 2,
        "AlgorithmMismatch": 1,  # WrongCipher: an A256KW token to an A256GCMKW key
    }
    pkcs15 = [case for case in CASES if "Pkcs15WithOaepKey" in case.test["flags"]]
    assert len(pkcs15) == 12
    assert all(_expected(case).error is errors.InvalidHeader for case in pkcs15)


def _build(doc: Mapping[str, Any]) -> Key | KeySet:
    if "keys" in doc:
        return KeySet.from_jwks(doc)
    return Key.from_jwk(doc)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_wycheproof_jwe(case: Case) -> None:
    expected = _expected(case)
    if expected.stage == "import":
        assert expected.error is not None
        with pytest.raises(expected.error):
            _build(case.jwk)
        # The token itself is refused as well, even given a key that could decrypt
        # it: the header is policed before any key is chosen.
        stand_in = Key.from_jwk({k: v for k, v in case.jwk.items() if k != "alg"}, alg="RSA-OAEP")
        with pytest.raises(errors.InvalidHeader):
            jwe.decrypt(case.token, stand_in)
        return
    keys = _build(case.jwk)
    if expected.error is None:
        decoded = jwe.decode(case.token, keys)
        assert decoded.plaintext == expected.plaintext
        assert jwe.decrypt(case.token, keys) == expected.plaintext
        assert decoded.key.alg == decoded.header["alg"] == _key_alg(case.jwk)
        assert decoded.key.kid == case.jwk["kid"]
        return
    with pytest.raises(errors.InvalidToken) as caught:
        jwe.decrypt(case.token, keys)
    assert type(caught.value) is expected.error
    if expected.error is errors.DecryptionFailed:
        _assert_decryption_failed(caught.value)


def test_wycheproof_decryption_failures_are_indistinguishable() -> None:
    """Every cryptographic failure in the files (a changed or cut tag, IV, ciphertext
    or encrypted key; a missing segment) gives the same error, message and (absent)
    chain, whatever was changed: no oracle tells the failures apart."""
    seen = set()
    for case in CASES:
        if _expected(case).error is not errors.DecryptionFailed:
            continue
        with pytest.raises(errors.DecryptionFailed) as caught:
            jwe.decrypt(case.token, _build(case.jwk))
        seen.add((type(caught.value), str(caught.value), caught.value.__context__))
    assert seen == {(errors.DecryptionFailed, DECRYPTION_FAILED_MESSAGE, None)}


# == 2. RFC 7520 cookbook ====================================================================

COOKBOOK_DIR = "rfc7520"


def _cookbook_files() -> dict[str, Any]:
    folder: Path = vector_path(COOKBOOK_DIR, "jwe")
    return {
        path.name.split(".")[0]: load_module_vectors(COOKBOOK_DIR, "jwe", path.name)
        for path in sorted(folder.glob("*.json"))
    }


def _cookbook_or_skip() -> dict[str, Any]:
    try:
        return _cookbook_files()
    except pytest.skip.Exception as exc:
        pytest.skip(str(exc), allow_module_level=True)


COOKBOOK = _cookbook_or_skip()
# §5.10 (extra AAD), §5.11 (unprotected header), §5.12 (no protected header) and
# §5.13 (three recipients) exist only as JSON serializations, which jwtward does
# not offer: they are left out of the parametrization, not skipped.
# test_cookbook_examples_without_a_compact_form checks that list against the data.
JSON_ONLY = ("5_10", "5_11", "5_12", "5_13")
COMPACT = {name: doc for name, doc in COOKBOOK.items() if "compact" in doc["output"]}


@dataclass(frozen=True)
class Refusal:
    """A cookbook example jwtward refuses by design, with the refusal it gives."""

    at_import: type[errors.JWTWardError]
    at_decrypt: type[errors.JWTWardError]
    header_member: str
    reason: str
    named_in_message: str


COOKBOOK_REFUSED = {
    # Invariant 8: RSA1_5 is not offered (padding oracle, RFC 8725 §3.2).
    "5_1": Refusal(errors.UnsupportedAlgorithm, errors.InvalidHeader, "alg", "RSA1_5", "RSA1_5"),
    # Invariant 8: PBES2 is not offered (password-derived keys are too weak for tokens).
    "5_3": Refusal(
        errors.UnsupportedAlgorithm, errors.InvalidHeader, "alg", "PBES2-HS512+A256KW", "PBES2"
    ),
    # Invariant 8: compressed JWE is refused before anything is inflated.
    "5_9": Refusal(errors.InvalidHeader, errors.InvalidHeader, "zip", "DEF", "zip"),
}


def test_cookbook_examples_without_a_compact_form() -> None:
    assert sorted(set(COOKBOOK) - set(COMPACT)) == sorted(JSON_ONLY)
    assert len(COMPACT) == 9


def _cookbook_key(example: Mapping[str, Any]) -> Key:
    """The example's key; the cookbook's RSA and EC keys carry no ``alg``, the input names it."""
    jwk = example["input"]["key"]
    if "alg" in jwk:
        return Key.from_jwk(jwk)
    return Key.from_jwk(jwk, alg=example["input"]["alg"])


ACCEPTED = sorted(name for name in COMPACT if name not in COOKBOOK_REFUSED)


@pytest.mark.parametrize("name", ACCEPTED)
def test_cookbook_compact_decrypts(name: str) -> None:
    example = COMPACT[name]
    key = _cookbook_key(example)
    decoded = jwe.decode(example["output"]["compact"], key)
    assert decoded.plaintext == example["input"]["plaintext"].encode("utf-8")
    assert dict(decoded.header) == example["encrypting_content"]["protected"]
    assert decoded.key is key
    if "enc" in example["input"]:
        assert decoded.header["enc"] == example["input"]["enc"]


@pytest.mark.parametrize("name", sorted(COOKBOOK_REFUSED))
def test_cookbook_compact_refused_by_design(name: str) -> None:
    example = COMPACT[name]
    refusal = COOKBOOK_REFUSED[name]
    token = example["output"]["compact"]
    assert example["encrypting_content"]["protected"][refusal.header_member] == refusal.reason
    inputs = example["input"]
    if refusal.at_import is errors.UnsupportedAlgorithm:
        # The algorithm cannot even be given a key.
        with pytest.raises(errors.UnsupportedAlgorithm):
            if "pwd" in inputs:
                Key.from_secret(inputs["pwd"].encode("utf-8"), alg=inputs["alg"])
            else:
                Key.from_jwk(inputs["key"], alg=inputs["alg"])
        # And the token is refused on its header, whatever key is offered.
        stand_in = (
            Key.from_jwk(inputs["key"], alg="RSA-OAEP")
            if "key" in inputs
            else Key.from_secret(bytes(32), alg="A256KW")
        )
    else:
        stand_in = _cookbook_key(example)  # the right key: zip alone is the reason
    with pytest.raises(refusal.at_decrypt) as caught:
        jwe.decrypt(token, stand_in)
    assert type(caught.value) is refusal.at_decrypt
    assert refusal.named_in_message in str(caught.value)
    with pytest.raises(refusal.at_decrypt):
        jwe.unverified_header(token)


# -- §6: a signed JWT inside a JWE ------------------------------------------------------------

NESTING = load_module_vectors(COOKBOOK_DIR, "6.nesting_signatures_and_encryption.json")


def _nesting_keys() -> tuple[Key, Key]:
    sign, encrypt = NESTING["sign"], NESTING["encrypt"]
    signing_key = Key.from_jwk(sign["input"]["key"], alg=sign["input"]["alg"])
    return signing_key.public_key(), _cookbook_key(encrypt)


def test_nested_jws_in_jwe_decrypts_then_verifies() -> None:
    verify_key, decrypt_key = _nesting_keys()
    inner = NESTING["sign"]["output"]["compact"]
    plaintext = jwe.decrypt(NESTING["encrypt"]["output"]["compact"], decrypt_key)
    assert plaintext == inner.encode("ascii")
    assert plaintext == NESTING["encrypt"]["input"]["plaintext"].encode("ascii")
    assert jws.verify(inner, verify_key) == NESTING["sign"]["input"]["payload"].encode("utf-8")


def test_nested_jwt_decode_applies_the_claims_policy() -> None:
    """The example's JWT expired in 2011: the default policy refuses it as expired;
    a clock set inside its validity accepts it with exactly the stated claims."""
    verify_key, decrypt_key = _nesting_keys()
    outer = NESTING["encrypt"]["output"]["compact"]
    claims = json.loads(NESTING["sign"]["input"]["payload"])
    assert NESTING["encrypt"]["encrypting_content"]["protected"]["cty"] == "JWT"
    with pytest.raises(errors.ExpiredToken) as caught:
        jwt.decode(outer, verify_key, decrypt_with=decrypt_key)
    assert caught.value.claim == "exp"
    back_then = Policy(clock=lambda: float(claims["exp"] - 60))
    assert jwt.decode(outer, verify_key, back_then, decrypt_with=decrypt_key) == claims
    # Just past exp and the leeway, the same token is refused again.
    later = Policy(clock=lambda: float(claims["exp"] + 31))
    with pytest.raises(errors.ExpiredToken):
        jwt.decode(outer, verify_key, later, decrypt_with=decrypt_key)


# == 3. RFC 7516 Appendix A ====================================================================
# Transcribed: the RFC text itself was not reachable here, so these are the RFC's
# values as quoted, with their section named, in the test suites of several
# independent JOSE implementations, all agreeing. Transcription errors cannot
# pass: OAEP, AES Key Wrap and both content encryptions authenticate what they
# decrypt, so a wrong character makes decryption fail rather than succeed.

RFC7516_A1_KEY = {
    "kty": "RSA",
    "n": (
        "oahUIoWw0K0usKNuOR6H4wkf4oBUXHTxRvgb48E-BVvxkeDNjbC4he8rUWcJoZmds2h7M70imEVhRU5djINXtqllXI4D"
        "FqcI1DgjT9LewND8MW2Krf3Spsk_ZkoFnilakGygTwpZ3uesH-PFABNIUYpOiN15dsQRkgr0vEhxN92i2asbOenSZeyaxziK72Uw"
        "xrrKoExv6kc5twXTq4h-QChLOln0_mtUZwfsRaMStPs6mS6XrgxnxbWhojf663tuEQueGC-FCMfra36C9knDFGzKsNa7LZK2djYg"
        "yD3JR_MB_4NUJW_TqOQtwHYbxevoJArm-L5StowjzGy-_bq6Gw"
    ),
    "e": "AQAB",
    "d": (
        "kLdtIj6GbDks_ApCSTYQtelcNttlKiOyPzMrXHeI-yk1F7-kpDxY4-WY5NWV5KntaEeXS1j82E375xxhWMHXyvjYecPT"
        "9fpwR_M9gV8n9Hrh2anTpTD93Dt62ypW3yDsJzBnTnrYu1iwWRgBKrEYY46qAZIrA2xAwnm2X7uGR1hghkqDp0Vqj3kbSCz1XyfC"
        "s6_LehBwtxHIyh8Ripy40p24moOAbgxVw3rxT_vlt3UVe4WO3JkJOzlpUf-KTVI2Ptgm-dARxTEtE-id-4OJr0h-K-VFs3VSndVT"
        "IznSxfyrj8ILL6MG_Uv8YAu7VILSB3lOW085-4qE3DzgrTjgyQ"
    ),
    "p": (
        "1r52Xk46c-LsfB5P442p7atdPUrxQSy4mti_tZI3Mgf2EuFVbUoDBvaRQ-SWxkbkmoEzL7JXroSBjSrK3YIQgYdMgyAEPT"
        "PjXv_hI2_1eTSPVZfzL0lffNn03IXqWF5MDFuoUYE0hzb2vhrlN_rKrbfDIwUbTrjjgieRbwC6Cl0"
    ),
    "q": (
        "wLb35x7hmQWZsWJmB_vle87ihgZ19S8lBEROLIsZG4ayZVe9Hi9gDVCOBmUDdaDYVTSNx_8Fyw1YYa9XGrGnDew00J28cR"
        "UoeBB_jKI1oma0Orv1T9aXIWxKwd4gvxFImOWr3QRL9KEBRzk2RatUBnmDZJTIAfwTs0g68UZHvtc"
    ),
    "dp": (
        "ZK-YwE7diUh0qR1tR7w8WHtolDx3MZ_OTowiFvgfeQ3SiresXjm9gZ5KLhMXvo-uz-KUJWDxS5pFQ_M0evdo1dKiRTjV"
        "w_x4NyqyXPM5nULPkcpU827rnpZzAJKpdhWAgqrXGKAECQH0Xt4taznjnd_zVpAmZZq60WPMBMfKcuE"
    ),
    "dq": (
        "Dq0gfgJ1DdFGXiLvQEZnuKEN0UUmsJBxkjydc3j4ZYdBiMRAy86x0vHCjywcMlYYg4yoC4YZa9hNVcsjqA3FeiL19rk8"
        "g6Qn29Tt0cj8qqyFpz9vNDBUfCAiJVeESOjJDZPYHdHY8v1b-o-Z2X5tvLx-TCekf7oxyeKDUqKWjis"
    ),
    "qi": (
        "VIMpMYbPf47dT1w_zDUXfPimsSegnMOA1zTaX7aGk_8urY6R8-ZW1FxU7AlWAyLWybqq6t16VFd7hQd0y6flUK4SlOyd"
        "B61gwanOsXGOAOv82cHq0E3eL4HrtZkUuKvnPrMnsUUFlfUdybVzxyjz9JF_XyaY14ardLSjf4L_FNY"
    ),
}
RFC7516_A1_TOKEN = (
    "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ."
    "OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03JGe"
    "ipsEdY3mx_etLbbWSrFr05kLzcSr4qKAq7YN7e9jwQRb23nfa6c9d-StnImGyFDb"
    "Sv04uVuxIp5Zms1gNxKKK2Da14B8S4rzVRltdYwam_lDp5XnZAYpQdb76FdIKLaV"
    "mqgfwX7XWRxv2322i-vDxRfqNzo_tETKzpVLzfiwQyeyPGLBIO56YJ7eObdv0je8"
    "1860ppamavo35UgoRdbYaBcoh9QcfylQr66oc6vFWXRcZ_ZT2LawVCWTIy3brGPi"
    "6UklfCpIMfIjf7iGdXKHzg."
    "48V1_ALb6US04U3b."
    "5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6ji"
    "SdiwkIr3ajwQzaBtQD_A."
    "XFBoMYUZodetZdvTiFvSkQ"
)
RFC7516_A1_PLAINTEXT = b"The true sign of intelligence is not knowledge but imagination."

RFC7516_A2_KEY = {
    "kty": "RSA",
    "n": (
        "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIR"
        "ROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_"
        "7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAum"
        "iGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw"
    ),
    "e": "AQAB",
    "d": (
        "VFCWOqXr8nvZNyaaJLXdnNPXZKRaWCjkU5Q2egQQpTBMwhprMzWzpR8Sxq1OPThh_J6MUD8Z35wky9b8eEO0pwNS"
        "8xlh1lOFRRBoNqDIKVOku0aZb-rynq8cxjDTLZQ6Fz7jSjR1Klop-YKaUHc9GsEofQqYruPhzSA-QgajZGPbE_"
        "0ZaVDJHfyd7UUBUKunFMScbflYAAOYJqVIVwaYR5zWEEceUjNnTNo_CVSj-VvXLO5VZfCUAVLgW4dpf1SrtZjSt"
        "34YLsRarSb127reG_DUwg9Ch-KyvjT1SkHgUWRVGcyly7uvVGRSDwsXypdrNinPA4jlhoNdizK2zF2CWQ"
    ),
    "p": (
        "9gY2w6I6S6L0juEKsbeDAwpd9WMfgqFoeA9vEyEUuk4kLwBKcoe1x4HG68ik918hdDSE9vDQSccA3xXHOAFOPJ8R"
        "9EeIAbTi1VwBYnbTp87X-xcPWlEPkrdoUKW60tgs1aNd_Nnc9LEVVPMS390zbFxt8TN_biaBgelNgbC95sM"
    ),
    "q": (
        "uKlCKvKv_ZJMVcdIs5vVSU_6cPtYI1ljWytExV_skstvRSNi9r66jdd9-yBhVfuG4shsp2j7rGnIio901RBeHo6T"
        "PKWVVykPu1iYhQXw1jIABfw-MVsN-3bQ76WLdt2SDxsHs7q7zPyUyHXmps7ycZ5c72wGkUwNOjYelmkiNS0"
    ),
    "dp": (
        "w0kZbV63cVRvVX6yk3C8cMxo2qCM4Y8nsq1lmMSYhG4EcL6FWbX5h9yuvngs4iLEFk6eALoUS4vIWEwcL4txw9Ls"
        "WH_zKI-hwoReoP77cOdSL4AVcraHawlkpyd2TWjE5evgbhWtOxnZee3cXJBkAi64Ik6jZxbvk-RR3pEhnCs"
    ),
    "dq": (
        "o_8V14SezckO6CNLKs_btPdFiO9_kC1DsuUTd2LAfIIVeMZ7jn1Gus_Ff7B7IVx3p5KuBGOVF8L-qifLb6nQnLys"
        "gHDh132NDioZkhH7mI7hPG-PYE_odApKdnqECHWw0J-F0JWnUd6D2B_1TvF9mXA2Qx-iGYn8OVV1Bsmp6qU"
    ),
    "qi": (
        "eNho5yRBEBxhGBtQRww9QirZsB66TrfFReG_CcteI1aCneT0ELGhYlRlCtUkTRclIfuEPmNsNDPbLoLqqCVznFbv"
        "dB7x-Tl-m0l_eFTj2KiqwGqE9PZB9nNTwMVvH3VRRSLWACvPnSiwP8N5Usy-WRXS-V7TbpxIhvepTfE0NNo"
    ),
}
RFC7516_A2_TOKEN = (
    "eyJhbGciOiJSU0ExXzUiLCJlbmMiOiJBMTI4Q0JDLUhTMjU2In0."
    "UGhIOguC7IuEvf_NPVaXsGMoLOmwvc1GyqlIKOK1nN94nHPoltGRhWhw7Zx0-kFm"
    "1NJn8LE9XShH59_i8J0PH5ZZyNfGy2xGdULU7sHNF6Gp2vPLgNZ__deLKxGHZ7Pc"
    "HALUzoOegEI-8E66jX2E4zyJKx-YxzZIItRzC5hlRirb6Y5Cl_p-ko3YvkkysZIF"
    "NPccxRU7qve1WYPxqbb2Yw8kZqa2rMWI5ng8OtvzlV7elprCbuPhcCdZ6XDP0_F8"
    "rkXds2vE4X-ncOIM8hAYHHi29NX0mcKiRaD0-D-ljQTP-cFPgwCp6X-nZZd9OHBv"
    "-B3oWh2TbqmScqXMR4gp_A."
    "AxY8DCtDaGlsbGljb3RoZQ."
    "KDlTtXchhZTGufMYmOYGS4HffxPSUrfmqCHXaI9wOGY."
    "9hH0vgRfYgPnAHOd8stkvw"
)

RFC7516_A3_KEY = {"kty": "oct", "k": "GawgguFyGrWKav7AX4VKUg"}
RFC7516_A3_TOKEN = (
    "eyJhbGciOiJBMTI4S1ciLCJlbmMiOiJBMTI4Q0JDLUhTMjU2In0."
    "6KB707dM9YTIgHtLvtgWQ8mKwboJW3of9locizkDTHzBC2IlrT1oOQ."
    "AxY8DCtDaGlsbGljb3RoZQ."
    "KDlTtXchhZTGufMYmOYGS4HffxPSUrfmqCHXaI9wOGY."
    "U0m_YmjN04DJvceFICbCVQ"
)
LIVE_LONG = b"Live long and prosper."


def test_rfc7516_a1_rsa_oaep_a256gcm() -> None:
    key = Key.from_jwk(RFC7516_A1_KEY, alg="RSA-OAEP")
    decoded = jwe.decode(RFC7516_A1_TOKEN, key)
    assert decoded.plaintext == RFC7516_A1_PLAINTEXT
    assert dict(decoded.header) == {"alg": "RSA-OAEP", "enc": "A256GCM"}
    # One key, one alg: the same key material bound to RSA-OAEP-256 is not asked.
    other = Key.from_jwk(RFC7516_A1_KEY, alg="RSA-OAEP-256")
    with pytest.raises(errors.AlgorithmMismatch):
        jwe.decrypt(RFC7516_A1_TOKEN, other)


def test_rfc7516_a3_a128kw_a128cbc_hs256() -> None:
    key = Key.from_jwk(RFC7516_A3_KEY, alg="A128KW")
    decoded = jwe.decode(RFC7516_A3_TOKEN, key)
    assert decoded.plaintext == LIVE_LONG
    assert dict(decoded.header) == {"alg": "A128KW", "enc": "A128CBC-HS256"}
    # Its tag changed in the last character: the one decryption failure.
    tampered = RFC7516_A3_TOKEN[:-1] + ("A" if RFC7516_A3_TOKEN[-1] != "A" else "B")
    with pytest.raises(errors.DecryptionFailed) as caught:
        jwe.decrypt(tampered, key)
    _assert_decryption_failed(caught.value)


def test_rfc7516_a2_rsa1_5_is_refused_although_it_decrypts() -> None:
    """A.2 is a genuine, decryptable token (checked here outside jwtward: its RSA1_5
    encrypted key holds the CEK that A.3 wraps, and that CEK opens its content),
    and jwtward refuses it anyway: RSA1_5 is not offered (invariant 8)."""
    header_b64, encrypted_key, iv, ciphertext, tag = RFC7516_A2_TOKEN.split(".")
    numbers = rsa.RSAPrivateNumbers(
        p=int.from_bytes(_b64(RFC7516_A2_KEY["p"]), "big"),
        q=int.from_bytes(_b64(RFC7516_A2_KEY["q"]), "big"),
        d=int.from_bytes(_b64(RFC7516_A2_KEY["d"]), "big"),
        dmp1=int.from_bytes(_b64(RFC7516_A2_KEY["dp"]), "big"),
        dmq1=int.from_bytes(_b64(RFC7516_A2_KEY["dq"]), "big"),
        iqmp=int.from_bytes(_b64(RFC7516_A2_KEY["qi"]), "big"),
        public_numbers=rsa.RSAPublicNumbers(
            e=int.from_bytes(_b64(RFC7516_A2_KEY["e"]), "big"),
            n=int.from_bytes(_b64(RFC7516_A2_KEY["n"]), "big"),
        ),
    )
    cek = numbers.private_key().decrypt(_b64(encrypted_key), padding.PKCS1v15())
    a3_key = RFC7516_A3_TOKEN.split(".")[1]
    assert cek == aes_key_unwrap(_b64(RFC7516_A3_KEY["k"]), _b64(a3_key))
    opened = content_encryption.decrypt(
        "A128CBC-HS256", cek, _b64(iv), _b64(ciphertext), _b64(tag), aad=header_b64.encode()
    )
    assert opened == LIVE_LONG

    with pytest.raises(errors.UnsupportedAlgorithm):
        Key.from_jwk(RFC7516_A2_KEY, alg="RSA1_5")
    # Even holding the right private key (bound to an alg jwtward offers), the token
    # is refused on its header, before any key is used.
    with pytest.raises(errors.InvalidHeader) as caught:
        jwe.decrypt(RFC7516_A2_TOKEN, Key.from_jwk(RFC7516_A2_KEY, alg="RSA-OAEP"))
    assert type(caught.value) is errors.InvalidHeader
    assert "RSA1_5" in str(caught.value)
