"""Regression tests for the findings of the adversarial code review.

Each test names the weakness it closes: forgery with small-order Edwards keys,
CPU exhaustion through RSA numbers, header-cache pollution, memo poisoning,
length bounds bypassed through memoryview shapes, and exceptions that escaped
the JWTWardError tree.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from jwtward import Key, KeySet, jws
from jwtward.codecs import b64decode, b64encode, dumps
from jwtward.errors import (
    DecodeError,
    InvalidArgument,
    InvalidKey,
    InvalidSignature,
    JWTWardError,
    KeyNotFound,
    MalformedToken,
    TokenTooLarge,
)
from jwtward.jose.headers import MAX_HEADER_MEMBERS
from jwtward.jose.keys import MissingAlgorithm
from jwtward.jws import _VERIFIED_HEADERS as verified_headers

P25519 = 2**255 - 19
P448 = 2**448 - 2**224 - 1
# A point of order 8 on edwards25519 (the cofactor subgroup): the encoding
# 26e8958f...6d53fc05 found in published small-order blocklists, read as the
# little-endian y it encodes. Checked below to be of order exactly 8.
EDWARDS25519_ORDER8_Y = int.from_bytes(
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), "little"
)


def ed25519_encoding(y: int, sign: int = 0) -> bytes:
    return (y | (sign << 255)).to_bytes(32, "little")


def ed448_encoding(y: int, sign: int = 0) -> bytes:
    return y.to_bytes(56, "little") + bytes([sign << 7])


ED25519_WEAK = {
    "identity": ed25519_encoding(1),
    "order-2": ed25519_encoding(P25519 - 1),
    "order-4": ed25519_encoding(0),
    "order-4-negative": ed25519_encoding(0, 1),
    "order-8": ed25519_encoding(EDWARDS25519_ORDER8_Y),
    "order-8-negative": ed25519_encoding(EDWARDS25519_ORDER8_Y, 1),
    "order-8-mirror": ed25519_encoding(P25519 - EDWARDS25519_ORDER8_Y),
    "identity-negative-zero": ed25519_encoding(1, 1),
    "non-canonical-y": ed25519_encoding(P25519 + 1),
}
ED448_WEAK = {
    "identity": ed448_encoding(1),
    "order-2": ed448_encoding(P448 - 1),
    "order-4": ed448_encoding(0),
    "order-4-negative": ed448_encoding(0, 1),
    "non-canonical-y": ed448_encoding(P448 + 1),
}


def _edwards25519_add(p1: tuple[int, int], p2: tuple[int, int]) -> tuple[int, int]:
    d = (-121665 * pow(121666, -1, P25519)) % P25519
    (x1, y1), (x2, y2) = p1, p2
    t = d * x1 * x2 * y1 * y2 % P25519
    x3 = (x1 * y2 + y1 * x2) * pow(1 + t, -1, P25519) % P25519
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, -1, P25519) % P25519
    return x3, y3


def test_the_order_8_constant_has_order_8() -> None:
    """Independent of jwtward's code: recover x and check 4P != O, 8P = O."""
    y = EDWARDS25519_ORDER8_Y
    d = (-121665 * pow(121666, -1, P25519)) % P25519
    x2 = (y * y - 1) * pow(d * y * y + 1, -1, P25519) % P25519
    x = pow(x2, (P25519 + 3) // 8, P25519)
    if (x * x - x2) % P25519:
        x = x * pow(2, (P25519 - 1) // 4, P25519) % P25519
    assert (x * x - x2) % P25519 == 0
    point = (x, y)
    multiples = [point]
    for _ in range(3):
        multiples.append(_edwards25519_add(multiples[-1], multiples[-1]))
    assert multiples[2] != (0, 1) and multiples[3] == (0, 1)


@pytest.mark.parametrize("name", sorted(ED25519_WEAK))
def test_small_order_ed25519_public_keys_are_refused(name: str) -> None:
    """With A the identity, R the identity and S = 0 verify for every message:
    a JWKS publishing such a key would let anyone mint tokens."""
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64encode(ED25519_WEAK[name])}
    with pytest.raises(InvalidKey):
        Key.from_jwk(jwk)


@pytest.mark.parametrize("name", sorted(ED448_WEAK))
def test_small_order_ed448_public_keys_are_refused(name: str) -> None:
    jwk = {"kty": "OKP", "crv": "Ed448", "x": b64encode(ED448_WEAK[name])}
    with pytest.raises(InvalidKey):
        Key.from_jwk(jwk)


def test_the_identity_key_forgery_is_impossible() -> None:
    """The forgery itself, which the primitive would accept, never gets a key."""
    header = b64encode(json.dumps({"alg": "EdDSA", "kid": "weak"}).encode())
    forged = f"{header}.{b64encode(b'{}')}.{b64encode(bytes([1]) + bytes(63))}"
    weak = {"kty": "OKP", "crv": "Ed25519", "x": b64encode(ED25519_WEAK["identity"]), "kid": "weak"}
    with pytest.raises(InvalidKey):
        KeySet.from_jwks({"keys": [weak]})
    good = Key.generate("EdDSA", kid="weak")
    with pytest.raises(InvalidSignature):
        jws.verify(forged, good)


@pytest.mark.parametrize("crv", ["Ed25519", "Ed448"])
def test_generated_edwards_keys_are_accepted(crv: str) -> None:
    for _ in range(20):
        key = Key.generate("EdDSA", crv=crv)
        assert Key.from_jwk(key.to_jwk()).thumbprint() == key.thumbprint()


def _rsa_jwk(n: int, e: int = 65537, **private: int) -> dict[str, str]:
    def enc(value: int) -> str:
        return b64encode(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    return {"kty": "RSA", "alg": "RS256", "n": enc(n), "e": enc(e)} | {
        name: enc(value) for name, value in private.items()
    }


@pytest.fixture(scope="module")
def rsa_numbers() -> rsa.RSAPrivateNumbers:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048).private_numbers()


def test_rsa_private_exponent_at_or_above_n_is_refused_before_arithmetic(
    rsa_numbers: rsa.RSAPrivateNumbers,
) -> None:
    """A d far larger than n made prime recovery run for minutes."""
    n = rsa_numbers.public_numbers.n
    huge_d = rsa_numbers.d + n * (1 << 4000)
    with pytest.raises(InvalidKey, match="out of range"):
        Key.from_jwk(_rsa_jwk(n, d=huge_d))
    with pytest.raises(InvalidKey, match="out of range"):
        Key.from_jwk(_rsa_jwk(n, d=n))


def test_rsa_crt_members_out_of_range_are_refused(rsa_numbers: rsa.RSAPrivateNumbers) -> None:
    n = rsa_numbers.public_numbers.n
    members = {
        "d": rsa_numbers.d,
        "p": rsa_numbers.p,
        "q": rsa_numbers.q,
        "dp": rsa_numbers.dmp1,
        "dq": rsa_numbers.dmq1,
        "qi": rsa_numbers.iqmp,
    }
    assert Key.from_jwk(_rsa_jwk(n, **members)).is_private
    with pytest.raises(InvalidKey, match="out of range"):
        Key.from_jwk(_rsa_jwk(n, **(members | {"p": rsa_numbers.p + n})))


def test_rsa_bounds_hold_on_every_import_route() -> None:
    """An oversized modulus or exponent is refused from cryptography objects
    and PEM too, not only from JWK (verification cost grows with both)."""
    odd_16392_bits = (1 << 16391) | 1
    oversized = rsa.RSAPublicNumbers(65537, odd_16392_bits).public_key()
    with pytest.raises(InvalidKey, match="at most"):
        Key.from_cryptography(oversized, alg="RS256")
    big_exponent = rsa.generate_private_key(65537, 2048).public_key().public_numbers()
    wide_e = rsa.RSAPublicNumbers((1 << 80) + 1, big_exponent.n).public_key()
    pem = Key.from_cryptography(rsa.generate_private_key(65537, 2048), alg="RS256")
    with pytest.raises(InvalidKey, match="exponent"):
        Key.from_cryptography(wide_e, alg="RS256")
    assert pem.public_key().to_pem().startswith(b"-----BEGIN PUBLIC KEY-----")


def test_ec_coordinates_must_be_reduced() -> None:
    """x + p names the same point as x: two JWKs, one key, two kids."""
    key = ec.generate_private_key(ec.SECP521R1())
    numbers = key.public_key().public_numbers()
    p521 = 2**521 - 1
    jwk = Key.from_cryptography(key, alg="ES512").to_jwk()
    assert Key.from_jwk(jwk).thumbprint()
    if numbers.x + p521 < 1 << (66 * 8):
        alias = jwk | {"x": b64encode((numbers.x + p521).to_bytes(66, "big"))}
        with pytest.raises(InvalidKey, match="reduced"):
            Key.from_jwk(alias)


def test_header_cache_only_holds_headers_of_verified_tokens() -> None:
    """Forged tokens cannot fill or evict the verified-header cache."""
    key = Key.generate("HS256")
    verified_headers.clear()
    for index in range(50):
        header = b64encode(json.dumps({"alg": "HS256", "kid": key.kid, "n": index}).encode())
        with pytest.raises(InvalidSignature):
            jws.verify(f"{header}.e30.{b64encode(bytes(32))}", key)
    assert verified_headers.get(b"x") is None
    token = jws.sign(b"{}", key)
    jws.verify(token, key)
    segment = token.split(".")[0].encode()
    assert verified_headers.get(segment) is not None
    forged_segments = [
        b64encode(json.dumps({"alg": "HS256", "kid": key.kid, "n": i}).encode()).encode()
        for i in range(50)
    ]
    assert all(verified_headers.get(s) is None for s in forged_segments)


def test_header_member_count_is_bounded() -> None:
    key = Key.generate("HS256")
    header = {"alg": "HS256", "kid": key.kid} | {f"m{i}": i for i in range(MAX_HEADER_MEMBERS)}
    segment = b64encode(json.dumps(header).encode())
    with pytest.raises(MalformedToken, match="members"):
        jws.verify(f"{segment}.e30.{b64encode(bytes(32))}", key)
    with pytest.raises(InvalidArgument):
        jws.sign(b"{}", key, headers={f"m{i}": "v" for i in range(MAX_HEADER_MEMBERS)})


class _ShiftingHeaders(Mapping[str, str]):
    """A mapping that answers differently on each read, as a dict mutated by
    another thread between two reads would."""

    def __init__(self) -> None:
        self.reads = 0

    def __getitem__(self, name: str) -> str:
        return "JWT" if self.reads < 2 else "refresh+jwt"

    def __iter__(self) -> Iterator[str]:
        self.reads += 1
        return iter(["typ"])

    def __len__(self) -> int:
        return 1

    def items(self) -> Any:
        self.reads += 1
        return [("typ", "JWT" if self.reads < 2 else "refresh+jwt")]


def test_header_memo_cannot_be_poisoned() -> None:
    """The memo stores what was encoded from the items it was keyed by."""
    key = Key.generate("HS256")
    shifting = _ShiftingHeaders()
    first = jws.sign(b"{}", key, headers=shifting)
    honest = jws.sign(b"{}", key, headers={"typ": "JWT"})
    assert jws.unverified_header(honest)["typ"] == "JWT"
    assert jws.unverified_header(first)["typ"] == "JWT"


def test_header_memo_tells_equal_but_different_values_apart() -> None:
    key = Key.generate("HS256")
    for value in (1, True, 1.0, "1"):
        token = jws.sign(b"{}", key, headers={"x": value})
        got = jws.unverified_header(token)["x"]
        assert got == value and type(got) is type(value)


def test_memoryview_length_counts_bytes() -> None:
    key = Key.generate("HS256")
    token = jws.sign(b"x" * 600, key).encode()
    shaped = memoryview(bytearray(token)).cast("B", shape=[1, len(token)])
    with pytest.raises(TokenTooLarge):
        jws.verify(shaped, key, max_length=100)
    assert jws.verify(memoryview(token), key) == b"x" * 600


@pytest.mark.parametrize("bad", [None, -1, 1.5, "8192"])
def test_max_length_must_be_a_count(bad: Any) -> None:
    key = Key.generate("HS256")
    with pytest.raises(InvalidArgument):
        jws.verify(jws.sign(b"{}", key), key, max_length=bad)


def test_self_referencing_values_are_refused_not_looped_on() -> None:
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    with pytest.raises(DecodeError):
        dumps(cyclic)
    with pytest.raises(InvalidArgument):
        jws.sign(b"{}", Key.generate("HS256"), headers={"x": cyclic})


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: Key.generate("HS256", size=-8), InvalidArgument),
        (lambda: Key.generate("HS256", size="x"), InvalidArgument),  # type: ignore[arg-type]
        (lambda: Key.generate("HS256", size=2048.0), InvalidArgument),  # type: ignore[arg-type]
        (lambda: Key.generate("EdDSA", crv=[]), InvalidArgument),  # type: ignore[arg-type]
        (lambda: Key.generate(10**5000), JWTWardError),  # type: ignore[arg-type]
        (lambda: jws.sign(b"x", Key.generate("HS256"), headers=[("typ", "JWT")]), InvalidArgument),  # type: ignore[arg-type]
        (lambda: Key.generate("HS256").sign("abc"), InvalidArgument),  # type: ignore[arg-type]
        (lambda: Key.generate("HS256").sign(5), InvalidArgument),  # type: ignore[arg-type]
        (lambda: Key.generate("HS256").verify(None, b""), InvalidArgument),  # type: ignore[arg-type]
        (lambda: KeySet(5), InvalidArgument),  # type: ignore[arg-type]
        (
            lambda: Key.generate("ES256").to_pem(private=True, password=5),  # type: ignore[arg-type]
            InvalidKey,
        ),
        (lambda: Key.from_jwk({"kty": "EC", "crv": [[[[]]]]}), JWTWardError),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_bad_arguments_raise_typed_errors(call: Any, expected: type[Exception]) -> None:
    with pytest.raises(expected):
        call()


def test_jwks_entries_must_be_objects() -> None:
    key = Key.generate("ES256")
    with pytest.raises(InvalidKey, match="not a JSON object"):
        KeySet.from_jwks({"keys": [json.dumps(key.to_jwk())]})


def test_default_alg_binds_keys_without_alg(rsa_numbers: rsa.RSAPrivateNumbers) -> None:
    """Issuers often publish RSA keys with use but no alg."""
    private = rsa_numbers.private_key()
    signer = Key.from_cryptography(private, alg="RS256", kid="r1")
    published = signer.public_key().to_jwk()
    del published["alg"]
    ec_key = Key.generate("ES256")
    doc = {"keys": [published, ec_key.to_jwk()]}
    with pytest.raises(MissingAlgorithm):
        KeySet.from_jwks(doc)
    skipping = KeySet.from_jwks(doc, ignore_unsupported=True)
    assert [k.alg for k in skipping] == ["ES256"] and len(skipping.skipped) == 1
    bound = KeySet.from_jwks(doc, default_alg="RS256")
    assert sorted(k.alg for k in bound) == ["ES256", "RS256"]
    assert jws.verify(jws.sign(b"{}", signer), bound) == b"{}"


def test_b64decode_refuses_every_non_alphabet_byte_at_every_position() -> None:
    alphabet = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    for byte in range(256):
        if byte in alphabet:
            continue
        for position in range(4):
            text = bytearray(b"AAAA")
            text[position] = byte
            with pytest.raises(DecodeError):
                b64decode(bytes(text))


def test_a_sign_only_key_named_by_a_token_is_a_client_error() -> None:
    source = Key.generate("ES256", kid="signer")
    sign_only = Key.from_jwk(source.to_jwk(private=True) | {"key_ops": ["sign"]})
    with pytest.raises(KeyNotFound) as info:
        jws.verify(jws.sign(b"{}", source), KeySet([sign_only]))
    assert info.value.status_code == 401


# -- second review ---------------------------------------------------------------


def test_private_rsa_jwk_size_is_bounded_before_key_checks() -> None:
    """Building a private RSA key costs a full key check (and prime recovery
    without the CRT members): a hostile JWK Set must not buy minutes of CPU."""
    n = (1 << 4199) | 1
    jwk = _rsa_jwk(n, d=(1 << 4000) | 3)
    with pytest.raises(InvalidKey, match="at most 4096 bits"):
        Key.from_jwk(jwk)
    crt = dict.fromkeys(("p", "q", "dp", "dq", "qi"), 3)
    with pytest.raises(InvalidKey, match="at most 8192 bits"):
        Key.from_jwk(_rsa_jwk((1 << 8299) | 1, d=5, **crt))


def test_duplicate_kids_refuse_a_jwks_before_any_key_is_built() -> None:
    bad_entry = {"kty": "RSA", "alg": "RS256", "kid": "dup", "n": "AQAB", "e": "AQAB"}
    good = Key.generate("ES256", kid="dup").to_jwk()
    # The first entry would fail on its own; the duplicate kid is found first.
    with pytest.raises(InvalidKey, match="duplicate kid"):
        KeySet.from_jwks({"keys": [bad_entry, good]})


def test_default_alg_must_be_a_known_algorithm() -> None:
    from jwtward.errors import UnsupportedAlgorithm

    with pytest.raises(UnsupportedAlgorithm):
        KeySet.from_jwks({"keys": []}, default_alg="RS1")
    with pytest.raises(UnsupportedAlgorithm):
        KeySet.from_jwks({"keys": []}, default_alg=["RS256"])  # type: ignore[arg-type]


def test_keyset_lookups_with_unhashable_kids_answer_instead_of_crashing() -> None:
    keys = KeySet([Key.generate("ES256", kid="a")])
    assert keys.get(["a"]) is None  # type: ignore[arg-type]
    assert ["a"] not in keys
    with pytest.raises(KeyNotFound):
        keys[{"a": 1}]  # type: ignore[index]


def test_der_encoded_keys_of_any_type_are_refused_as_secrets() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import dsa

    dsa_public = (
        dsa.generate_private_key(2048)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    brainpool = (
        ec.generate_private_key(ec.BrainpoolP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    encrypted = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    for secret in (dsa_public, brainpool, encrypted):
        with pytest.raises(InvalidKey, match="key-confusion"):
            Key.from_secret(secret, alg="HS256")


@pytest.mark.parametrize(
    ("alg", "options"),
    [("RS256", {"crv": "P-256"}), ("HS256", {"crv": "P-256"}), ("ES256", {"size": 256})],
)
def test_generate_refuses_options_that_do_not_apply(alg: str, options: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        Key.generate(alg, **options)


def test_generated_secrets_are_bounded() -> None:
    from jwtward.jose.keys import MAX_SECRET_BITS

    assert len(Key.generate("HS512", size=MAX_SECRET_BITS).to_jwk(private=True)["k"]) > 0
    with pytest.raises(InvalidArgument):
        Key.generate("HS512", size=MAX_SECRET_BITS + 8)


def test_an_overlong_export_password_is_a_typed_error() -> None:
    with pytest.raises(InvalidKey):
        Key.generate("ES256").to_pem(private=True, password=b"x" * 4096)


class _CaseInsensitive(str):
    """A str whose equality ignores case: the memo must not trust it."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.lower() == other.lower()

    def __hash__(self) -> int:
        return hash(self.lower())


def test_header_memo_ignores_str_subclasses() -> None:
    key = Key.generate("HS256")
    jws.sign(b"{}", key, headers={"typ": "jwt"})
    token = jws.sign(b"{}", key, headers={"typ": _CaseInsensitive("JWT")})
    assert jws.unverified_header(token)["typ"] == "JWT"


# -- review of the claims layer and the JWKS client --------------------------------


def test_default_alg_skips_keys_whose_use_or_curve_do_not_fit(
    rsa_numbers: rsa.RSAPrivateNumbers,
) -> None:
    """An RSA encryption key or a P-384 key beside the signing key must not make
    default_alg refuse the whole set."""
    signer = Key.from_cryptography(rsa_numbers.private_key(), alg="RS256", kid="sig")
    sig_jwk = signer.public_key().to_jwk()
    del sig_jwk["alg"]
    enc_jwk = Key.generate("RSA-OAEP-256", kid="enc").public_key().to_jwk()
    del enc_jwk["alg"]
    p384 = Key.generate("ES384", kid="p384").public_key().to_jwk()
    del p384["alg"]
    keys = KeySet.from_jwks(
        {"keys": [sig_jwk, enc_jwk, p384]}, default_alg="RS256", ignore_unsupported=True
    )
    assert {key.kid: key.alg for key in keys} == {"sig": "RS256", "p384": "ES384"}
    assert len(keys.skipped) == 1


def test_public_only_reports_a_private_key_even_without_alg(
    rsa_numbers: rsa.RSAPrivateNumbers,
) -> None:
    """A leaked private key is refused, never skipped as merely 'unsupported'."""
    private = Key.from_cryptography(rsa_numbers.private_key(), alg="RS256").to_jwk(private=True)
    del private["alg"]
    good = Key.generate("ES256").public_key().to_jwk()
    with pytest.raises(InvalidKey, match="private key members"):
        KeySet.from_jwks({"keys": [private, good]}, public_only=True, ignore_unsupported=True)
