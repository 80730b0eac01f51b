"""Fuzzing the parsers: bad input is refused with a JWTWardError, and nothing else escapes.

Two properties, both from the design's error contract:

* a mutated token (bytes flipped, inserted or deleted, segments swapped or
  borrowed from another token, truncated, dots doubled, non-ASCII characters,
  padding) never verifies unless it is, character for character, one of the
  tokens jwtward signed; strict base64url gives every byte string exactly one
  encoding, so no other string can carry the same header, payload and
  signature;
* keys, key sets and the codecs, fed random or mutated input, either return a
  well-formed result or raise a :class:`~jwtward.errors.JWTWardError` subclass;
  no ``ValueError``, ``KeyError``, ``binascii.Error`` or cryptography error.

Any other exception propagates out of the test, so hypothesis reports and
shrinks it.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import event, given, settings
from hypothesis import strategies as st

from jwtward import JWTWardError, Key, KeySet, jws
from jwtward.codecs import b64decode, b64encode, dumps, loads_object
from jwtward.jose.algorithms import ALGORITHMS

FUZZ_ALGS = ("HS256", "ES256", "RS256", "EdDSA")
PAYLOAD = b'{"sub":"fuzz","scope":"read write","n":12345}'
OTHER_PAYLOAD = b"another payload"
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
ALG_NAMES = [*ALGORITHMS, "none", "None", "RSA1_5", "PBES2-HS256+A128KW", "ES521", "HS1", ""]

FUZZ = settings(max_examples=250, deadline=None)

# -- keys and tokens made once ---------------------------------------------------


@pytest.fixture(scope="module")
def signing_keys() -> dict[str, Key]:
    return {alg: Key.generate(alg) for alg in FUZZ_ALGS}


@pytest.fixture(scope="module")
def tokens(signing_keys: dict[str, Key]) -> dict[str, tuple[str, str]]:
    """Per alg: the token under test and a second valid token of the same key."""
    return {
        alg: (
            jws.sign(PAYLOAD, key, headers={"typ": "JWT"}),
            jws.sign(OTHER_PAYLOAD, key),
        )
        for alg, key in signing_keys.items()
    }


def _verifier(key: Key) -> Key:
    return key if key.kty == "oct" else key.public_key()


# -- token mutations ---------------------------------------------------------------

any_char = st.characters(exclude_categories=())  # surrogates included
non_ascii = st.characters(min_codepoint=0x80, exclude_categories=())
token_char = st.one_of(st.sampled_from(B64URL + ".=+/ \t\n\x00"), any_char)
Mutation = Callable[[st.DrawFn, str, str], str]


def _index(draw: st.DrawFn, text: str, *, end: bool = False) -> int:
    return draw(st.integers(0, len(text) if end else max(len(text) - 1, 0)))


def _flip_bit(draw: st.DrawFn, token: str, _other: str) -> str:
    if not token:
        return token
    i = _index(draw, token)
    flipped = chr(ord(token[i]) ^ (1 << draw(st.integers(0, 7))))
    return token[:i] + flipped + token[i + 1 :]


def _substitute(draw: st.DrawFn, token: str, _other: str) -> str:
    """Replace one character by another of the base64url alphabet: the subtle case."""
    if not token:
        return token
    i = _index(draw, token)
    return token[:i] + draw(st.sampled_from(B64URL)) + token[i + 1 :]


def _insert(draw: st.DrawFn, token: str, _other: str) -> str:
    i = _index(draw, token, end=True)
    return token[:i] + draw(st.text(token_char, min_size=1, max_size=4)) + token[i:]


def _delete(draw: st.DrawFn, token: str, _other: str) -> str:
    i = _index(draw, token, end=True)
    return token[:i] + token[i + draw(st.integers(1, 8)) :]


def _truncate(draw: st.DrawFn, token: str, _other: str) -> str:
    return token[: _index(draw, token, end=True)]


def _non_ascii(draw: st.DrawFn, token: str, _other: str) -> str:
    if not token:
        return draw(non_ascii)
    i = _index(draw, token)
    return token[:i] + draw(non_ascii) + token[i + 1 :]


def _double_dot(draw: st.DrawFn, token: str, _other: str) -> str:
    dots = [i for i, c in enumerate(token) if c == "."]
    if not dots:
        return token + "."
    i = draw(st.sampled_from(dots))
    return token[:i] + "." * draw(st.integers(2, 3)) + token[i + 1 :]


def _pad(draw: st.DrawFn, token: str, _other: str) -> str:
    parts = token.split(".")
    i = draw(st.integers(0, len(parts) - 1))
    parts[i] += "=" * draw(st.integers(1, 3))
    return ".".join(parts)


def _swap_segments(draw: st.DrawFn, token: str, _other: str) -> str:
    parts = token.split(".")
    return ".".join(draw(st.permutations(parts)))


def _borrow_segment(draw: st.DrawFn, token: str, other: str) -> str:
    """One segment taken from another valid token of the same key."""
    parts, donor = token.split("."), other.split(".")
    i = draw(st.integers(0, min(len(parts), len(donor)) - 1))
    parts[i] = donor[i]
    return ".".join(parts)


def _inflate(draw: st.DrawFn, token: str, _other: str) -> str:
    """Past the length bound, or just below it."""
    return token + "A" * draw(st.sampled_from([4, 8188 - len(token), 8200, 20000]))


MUTATIONS: tuple[Mutation, ...] = (
    _flip_bit,
    _substitute,
    _insert,
    _delete,
    _truncate,
    _non_ascii,
    _double_dot,
    _pad,
    _swap_segments,
    _borrow_segment,
    _inflate,
)


@st.composite
def mutated(draw: st.DrawFn, token: str, other: str) -> str:
    for mutation in draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=3)):
        token = mutation(draw, token, other)
    return token


@pytest.mark.parametrize("alg", FUZZ_ALGS)
@FUZZ
@given(data=st.data())
def test_mutated_token_never_verifies(
    alg: str,
    signing_keys: dict[str, Key],
    tokens: dict[str, tuple[str, str]],
    data: st.DataObject,
) -> None:
    """Only a signed token verifies; every other string is refused with a JWTWardError."""
    token, other = tokens[alg]
    candidate = data.draw(mutated(token, other), label="mutated token")
    verifier = _verifier(signing_keys[alg])
    keys: Key | KeySet = verifier
    if data.draw(st.booleans(), label="in a key set with a decoy"):
        decoy = signing_keys["HS256" if alg != "HS256" else "ES256"]
        keys = KeySet([verifier, _verifier(decoy)])
    presented: str | bytes = candidate
    if data.draw(st.booleans(), label="as bytes"):
        presented = candidate.encode("utf-8", "surrogatepass")
    # Borrowing every segment from the second token rebuilds that token, so
    # exactly these two strings may verify, each to its own payload.
    signed = {token: PAYLOAD, other: OTHER_PAYLOAD}
    try:
        payload = jws.verify(presented, keys)
    except JWTWardError as exc:
        event(f"refused: {type(exc).__name__}")
        assert candidate not in signed, "an unmodified token must verify"
        return
    assert candidate in signed, f"a modified token verified: {candidate!r}"
    assert payload == signed[candidate]


@pytest.mark.parametrize("alg", FUZZ_ALGS)
def test_unmutated_token_verifies(
    alg: str, signing_keys: dict[str, Key], tokens: dict[str, tuple[str, str]]
) -> None:
    """The baseline of the fuzz above: both fixture tokens do verify."""
    token, other = tokens[alg]
    assert jws.verify(token, _verifier(signing_keys[alg])) == PAYLOAD
    assert jws.verify(other, _verifier(signing_keys[alg])) == OTHER_PAYLOAD


# -- JWK and JWK Set fuzz --------------------------------------------------------

_SEED_KEYS = (
    ("HS256", None),
    ("RS256", None),
    ("RSA-OAEP-256", None),
    ("ES256", None),
    ("ES256K", None),
    ("ES512", None),
    ("EdDSA", "Ed25519"),
    ("EdDSA", "Ed448"),
    ("A128KW", None),
    ("ECDH-ES", "P-256"),
    ("ECDH-ES+A128KW", "X25519"),
)
MEMBERS = ["kty", "alg", "use", "kid", "key_ops", "crv", "x", "y", "d", "n", "e"]
MEMBERS += ["p", "q", "dp", "dq", "qi", "oth", "k", "x5c", "ext"]


@pytest.fixture(scope="module")
def seed_jwks() -> list[dict[str, Any]]:
    """Valid JWKs of every key type, private and public, to mutate."""
    out: list[dict[str, Any]] = []
    for alg, crv in _SEED_KEYS:
        key = Key.generate(alg, crv=crv) if crv else Key.generate(alg)
        out.append(key.to_jwk(private=True))
        if key.kty != "oct":
            out.append(key.to_jwk())
    return out


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(any_char, max_size=12)
    | st.text(B64URL, max_size=90),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=8,
)
member_values = st.one_of(
    json_values,
    st.sampled_from(["RSA", "EC", "OKP", "oct", "sig", "enc", "P-256", "Ed448", "X25519"]),
    st.sampled_from(ALG_NAMES),
    st.lists(st.sampled_from(["sign", "verify", "encrypt", "wrapKey", "deriveKey", "x"])),
)


@st.composite
def mutated_jwk(draw: st.DrawFn, seeds: list[dict[str, Any]]) -> dict[str, Any]:
    jwk = dict(draw(st.sampled_from(seeds)))
    donor = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(MEMBERS) | st.text(max_size=4))
        action = draw(st.integers(0, 3))
        if action == 0:
            jwk.pop(name, None)
        elif action == 1:
            jwk[name] = draw(member_values)
        elif action == 2 and isinstance(donor.get(name), str):
            jwk[name] = donor[name]  # a member of another key, maybe another type
        elif isinstance(jwk.get(name), str):
            jwk[name] = draw(mutated(jwk[name], ""))
    return jwk


random_jwk = st.dictionaries(st.sampled_from(MEMBERS) | st.text(max_size=4), member_values)


def _check_key(key: Key) -> None:
    """A key that was accepted is whole: registered alg, and its JWK imports again."""
    assert key.alg in ALGORITHMS
    again = Key.from_jwk(key.to_jwk(private=key.is_private))
    assert (again.alg, again.kid, again.thumbprint()) == (key.alg, key.kid, key.thumbprint())


@FUZZ
@given(data=st.data(), alg=st.none() | st.sampled_from(ALG_NAMES), public_only=st.booleans())
def test_from_jwk_mutated(
    seed_jwks: list[dict[str, Any]], data: st.DataObject, alg: str | None, public_only: bool
) -> None:
    """Mutated JWKs (objects or JSON text) give a whole Key or a JWTWardError."""
    jwk = data.draw(mutated_jwk(seed_jwks) | random_jwk, label="jwk")
    as_text = data.draw(st.booleans(), label="as JSON text")
    try:
        key = Key.from_jwk(json.dumps(jwk) if as_text else jwk, alg=alg, public_only=public_only)
    except JWTWardError as exc:
        event(f"refused: {type(exc).__name__}")
        return
    event("accepted")
    _check_key(key)


@FUZZ
@given(text=st.text(any_char) | st.binary())
def test_from_jwk_random_text(text: str | bytes) -> None:
    """Random text or bytes never spell a usable JWK."""
    with pytest.raises(JWTWardError):
        Key.from_jwk(text)


@FUZZ
@given(data=st.data(), ignore_unsupported=st.booleans())
def test_from_jwks_mutated(
    seed_jwks: list[dict[str, Any]], data: st.DataObject, ignore_unsupported: bool
) -> None:
    """JWK Sets of mutated keys, wrong shapes and random JSON: a KeySet or a JWTWardError."""
    entries = data.draw(st.lists(mutated_jwk(seed_jwks) | member_values, max_size=4))
    doc: Any = data.draw(
        st.sampled_from(
            [{"keys": entries}, {"keys": entries, "extra": 1}, {"key": entries}, entries]
        ),
        label="document",
    )
    as_text = data.draw(st.booleans(), label="as JSON text")
    try:
        keyset = KeySet.from_jwks(
            json.dumps(doc) if as_text else doc, ignore_unsupported=ignore_unsupported
        )
    except JWTWardError as exc:
        event(f"refused: {type(exc).__name__}")
        return
    event(f"accepted {len(keyset)} keys")
    for key in keyset:
        _check_key(key)


@FUZZ
@given(raw=st.binary() | st.text(any_char))
def test_from_jwks_random_input(raw: bytes | str) -> None:
    """Random text or bytes are refused, or at most spell an empty key set."""
    try:
        keyset = KeySet.from_jwks(raw)
    except JWTWardError:
        return
    assert len(keyset) == 0  # random input can at most spell an empty set


# -- PEM and DER fuzz ------------------------------------------------------------

PEM_LABELS = [
    "PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
    "RSA PRIVATE KEY",
    "EC PRIVATE KEY",
    "PUBLIC KEY",
    "RSA PUBLIC KEY",
    "CERTIFICATE",
]


def _certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fuzz")])
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


@pytest.fixture(scope="module")
def seed_ders(signing_keys: dict[str, Key]) -> list[tuple[str, bytes, str]]:
    """(PEM label, DER, alg) of valid private keys, public keys and a certificate."""
    out: list[tuple[str, bytes, str]] = []
    for key in signing_keys.values():
        if key.kty == "oct":
            continue
        out.append(("PRIVATE KEY", _dearmor(key.to_pem(private=True)), key.alg))
        out.append(("PUBLIC KEY", _dearmor(key.to_pem()), key.alg))
    material = signing_keys["ES256"].cryptography_key()
    assert isinstance(material, ec.EllipticCurvePrivateKey)
    certificate = _certificate(material).public_bytes(serialization.Encoding.DER)
    out.append(("CERTIFICATE", certificate, "ES256"))
    return out


def _dearmor(pem: bytes) -> bytes:
    body = b"".join(line for line in pem.splitlines() if not line.startswith(b"-----"))
    return base64.b64decode(body, validate=True)


def _armor(label: str, der: bytes) -> bytes:
    body = base64.encodebytes(der)
    return b"-----BEGIN %s-----\n%s-----END %s-----\n" % (label.encode(), body, label.encode())


@st.composite
def key_file(draw: st.DrawFn, seeds: list[tuple[str, bytes, str]]) -> tuple[str, bytes, str]:
    """A seed key file with 0 to 4 byte-level mutations, its label and alg maybe swapped."""
    label, der, alg = draw(st.sampled_from(seeds))
    data = bytearray(der)
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, max(len(data) - 1, 0)))
        action = draw(st.integers(0, 2))
        if action == 0 and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif action == 1:
            del data[i : i + draw(st.integers(1, 16))]
        else:
            data[i:i] = draw(st.binary(min_size=1, max_size=4))
    label = draw(st.just(label) | st.sampled_from(PEM_LABELS))
    alg = draw(st.just(alg) | st.sampled_from(ALG_NAMES))
    return label, bytes(data), alg


@FUZZ
@given(data=st.data())
def test_from_pem_and_der_mutated(
    seed_ders: list[tuple[str, bytes, str]], data: st.DataObject
) -> None:
    """Damaged key files, PEM or DER, give a Key for the asked alg or a JWTWardError."""
    label, der, alg = data.draw(key_file(seed_ders), label="key file")
    loaders: list[Callable[[], Key]] = [
        lambda: Key.from_pem(_armor(label, der), alg=alg),
        lambda: Key.from_pem(_armor(label, der).decode("ascii"), alg=alg),
        lambda: Key.from_der(der, alg=alg),
    ]
    for load in loaders:
        try:
            key = load()
        except JWTWardError as exc:
            event(f"refused: {type(exc).__name__}")
            continue
        event("accepted")
        assert key.alg == alg
        _check_key(key)
    # from_secret parses DER-like secrets too, to refuse key files used as secrets.
    try:
        Key.from_secret(der, alg="HS256")
    except JWTWardError as exc:
        event(f"from_secret refused: {type(exc).__name__}")


def _relabelled_ed25519(key: Key, oid_last_byte: int, *, private: bool) -> bytes:
    """The Ed25519 key's PKCS#8/SPKI DER with its curve OID (1.3.101.112) changed."""
    der = _dearmor(key.to_pem(private=private))
    oid = b"\x06\x03\x2b\x65\x70"
    assert der.count(oid) == 1
    return der.replace(oid, oid[:-1] + bytes([oid_last_byte]))


@pytest.mark.parametrize("private", [True, False], ids=["PKCS8", "SPKI"])
@pytest.mark.parametrize("oid_last_byte", [0x6E, 0x6F, 0x71], ids=["X25519", "X448", "Ed448"])
def test_key_file_with_another_curve_oid(
    signing_keys: dict[str, Key], oid_last_byte: int, private: bool
) -> None:
    """A 32-byte Ed25519 key relabelled as X25519, X448 or Ed448 is no EdDSA key.

    Found by test_from_pem_and_der_mutated (one bit flip in the OID): for the
    PKCS#8 form relabelled X448/Ed448 the 32-byte key is too short for the
    curve and pyca/cryptography raises its InternalError, which must surface as
    a JWTWardError like every other unreadable key file.
    """
    der = _relabelled_ed25519(signing_keys["EdDSA"], oid_last_byte, private=private)
    label = "PRIVATE KEY" if private else "PUBLIC KEY"
    with pytest.raises(JWTWardError):
        Key.from_der(der, alg="EdDSA")
    with pytest.raises(JWTWardError):
        Key.from_pem(_armor(label, der), alg="EdDSA")
    # Refusing a secret that looks like a key file is right; so is taking it as
    # bytes. Any other exception escapes the suppress and fails the test.
    with contextlib.suppress(JWTWardError):
        Key.from_secret(der, alg="HS256")


@FUZZ
@given(raw=st.binary(), alg=st.sampled_from(ALG_NAMES), password=st.none() | st.binary(max_size=8))
def test_from_pem_and_der_random_bytes(raw: bytes, alg: str, password: bytes | None) -> None:
    """Random bytes are no key file: always a JWTWardError."""
    with pytest.raises(JWTWardError):
        Key.from_pem(raw, alg=alg, password=password)
    with pytest.raises(JWTWardError):
        Key.from_der(raw, alg=alg, password=password)


# -- the codecs ---------------------------------------------------------------------

b64_like = st.text(st.sampled_from(B64URL + "=+/ \n"), max_size=40)


@settings(max_examples=500, deadline=None)
@given(text=b64_like | st.text(any_char) | st.binary())
def test_b64decode_is_strict(text: str | bytes) -> None:
    """Decoding succeeds only for the one canonical encoding of the result."""
    try:
        raw = b64decode(text)
    except JWTWardError:
        return
    expected = text if isinstance(text, str) else text.decode("ascii")
    assert b64encode(raw) == expected


JSON_FRAGMENTS = [
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    '"a"',
    '"b"',
    '"\\ud800"',
    '"\\u00e9"',
    '"é"',
    "1",
    "-0",
    "1e999",
    "-1e999",
    "1.5",
    "9" * 5000,
    "NaN",
    "Infinity",
    "true",
    "null",
    " ",
    "\n",
    "\ufeff",
    "\x00",
]
json_like = st.lists(st.sampled_from(JSON_FRAGMENTS), max_size=30).map("".join)


@settings(max_examples=500, deadline=None)
@given(
    data=st.data(),
    text=json_like | st.text(any_char) | st.binary(),
)
def test_loads_object_is_strict(data: st.DataObject, text: str | bytes) -> None:
    """Random or JSON-like text parses to an object that serializes back, or is refused."""
    if isinstance(text, str) and data.draw(st.booleans(), label="as UTF-8 bytes"):
        text = text.encode("utf-8", "surrogatepass")
    try:
        value = loads_object(text, max_depth=4)
    except JWTWardError:
        return
    assert isinstance(value, dict)
    assert loads_object(dumps(value), max_depth=4) == value
