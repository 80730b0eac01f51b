"""Behaviour of the public key API: ``Key``, ``KeySet`` and their use by ``jws``.

A ``Key`` is the one place where an algorithm, a use and key material meet
(invariant 1), so these tests pin what each constructor accepts and refuses,
what each export holds (and never holds: private members, secrets in a repr),
and that every way in and out of a key lands on the same key (thumbprints and
signatures agree). Attacks on tokens and the external vectors live elsewhere.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from jwtward import JWTWardError, Key, KeySet, jws
from jwtward.codecs import b64decode, b64encode, dumps
from jwtward.errors import (
    InvalidArgument,
    InvalidHeader,
    InvalidKey,
    InvalidSignature,
    KeyNotFound,
    KeyUsageError,
    UnsupportedAlgorithm,
)
from jwtward.jose.algorithms import ALGORITHMS
from jwtward.jose.keyset import MAX_JWKS_KEYS

ALL_ALGS = sorted(ALGORITHMS)
SIG_ALGS = [name for name in ALL_ALGS if ALGORITHMS[name].is_signature]
ASYMMETRIC_ALGS = [name for name in ALL_ALGS if "oct" not in ALGORITHMS[name].ktys]
SYMMETRIC_ALGS = [name for name in ALL_ALGS if "oct" in ALGORITHMS[name].ktys]
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
EXPECTED_PRIVATE = {
    "RSA": {"d", "p", "q", "dp", "dq", "qi"},
    "EC": {"d"},
    "OKP": {"d"},
    "oct": {"k"},
}
THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "oct": ("k", "kty"),
}
DATA = b"the signing input"


def rfc7638(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 thumbprint computed here, independently of jwtward."""
    required = {name: jwk[name] for name in THUMBPRINT_MEMBERS[jwk["kty"]]}
    text = json.dumps(required, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def secret_of(length: int) -> bytes:
    """Deterministic secret bytes that look like no key encoding (first byte '?')."""
    return hashlib.shake_256(b"jwtward-test").digest(length)


def without(jwk: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {name: value for name, value in jwk.items() if name not in names}


@pytest.fixture(scope="module")
def generated() -> dict[str, Key]:
    """One fresh key per registered alg (RSA at 2048 bits), made once per module."""
    keys: dict[str, Key] = {}
    for name in ALL_ALGS:
        size = 2048 if "RSA" in ALGORITHMS[name].ktys else None
        keys[name] = Key.generate(name, size=size)
    return keys


def verifier_of(key: Key) -> Key:
    """The key a verifier holds: the public half, or the secret itself."""
    return key if key.kty == "oct" else key.public_key()


# -- generate and the key's properties -------------------------------------------


@pytest.mark.parametrize("alg", ALL_ALGS)
def test_generate_gives_a_key_for_exactly_that_alg(alg: str, generated: dict[str, Key]) -> None:
    """alg, use, kty and crv follow the registry entry; the key is private."""
    key = generated[alg]
    spec = ALGORITHMS[alg]
    assert key.alg == alg
    assert key.use == spec.use
    assert key.use in ("sig", "enc")
    assert key.kty in spec.ktys
    if spec.curves:
        assert key.crv == spec.curves[0]
    else:
        assert key.crv is None
    assert key.is_private
    assert key.key_ops is None
    jwk = key.to_jwk(private=True)
    assert (jwk["kty"], jwk["alg"], jwk["use"], jwk["kid"]) == (key.kty, alg, key.use, key.kid)
    if key.crv is not None:
        assert jwk["crv"] == key.crv


@pytest.mark.parametrize("alg", ALL_ALGS)
def test_generated_key_strength(alg: str, generated: dict[str, Key]) -> None:
    """Generated secrets have a size the alg allows; RSA moduli have 2048 bits."""
    key = generated[alg]
    spec = ALGORITHMS[alg]
    jwk = key.to_jwk(private=True)
    if key.kty == "oct":
        size = len(b64decode(jwk["k"]))
        if spec.secret_sizes is not None:
            assert size in spec.secret_sizes
        else:
            assert size >= spec.min_secret
            assert size == {"HS256": 32, "HS384": 48, "HS512": 64}[alg]
    if key.kty == "RSA":
        assert int.from_bytes(b64decode(jwk["n"]), "big").bit_length() == 2048


@pytest.mark.parametrize("alg", ALL_ALGS)
def test_default_kid_is_the_rfc7638_thumbprint(alg: str, generated: dict[str, Key]) -> None:
    """Without kid= the kid is the SHA-256 JWK thumbprint, as computed independently."""
    key = generated[alg]
    assert key.kid == key.thumbprint()
    assert key.thumbprint() == rfc7638(key.to_jwk(private=True))
    assert len(b64decode(key.thumbprint())) == 32


@pytest.mark.parametrize("alg", ["HS256", "A128KW", "dir", "ES256", "EdDSA", "ECDH-ES"])
def test_generate_makes_a_new_key_each_time(alg: str) -> None:
    """Two generated keys never share material (nor, hence, a default kid)."""
    assert Key.generate(alg).thumbprint() != Key.generate(alg).thumbprint()


@pytest.mark.parametrize(
    ("alg", "crv", "kty"),
    [
        ("EdDSA", "Ed25519", "OKP"),
        ("EdDSA", "Ed448", "OKP"),
        ("Ed448", "Ed448", "OKP"),
        ("ECDH-ES", "P-384", "EC"),
        ("ECDH-ES+A256KW", "P-521", "EC"),
        ("ECDH-ES", "X25519", "OKP"),
        ("ECDH-ES+A128KW", "X448", "OKP"),
    ],
)
def test_generate_with_a_curve(alg: str, crv: str, kty: str) -> None:
    """crv= picks one of the curves the alg allows."""
    key = Key.generate(alg, crv=crv)
    assert (key.alg, key.crv, key.kty) == (alg, crv, kty)
    assert key.to_jwk()["crv"] == crv


@pytest.mark.parametrize(
    ("alg", "kwargs"),
    [
        ("ES256", {"crv": "P-384"}),
        ("ES256K", {"crv": "P-256"}),
        ("EdDSA", {"crv": "X25519"}),
        ("Ed25519", {"crv": "Ed448"}),
        ("ECDH-ES", {"crv": "Ed25519"}),
        ("RS256", {"size": 1024}),
        ("RSA-OAEP", {"size": 1024}),
        ("HS256", {"size": 128}),
        ("HS512", {"size": 256}),
        ("A128KW", {"size": 256}),
        ("dir", {"size": 40}),
    ],
)
def test_generate_refuses_weak_or_mismatched_parameters(alg: str, kwargs: dict[str, Any]) -> None:
    """A curve the alg does not name or a size below its minimum is refused."""
    with pytest.raises(InvalidKey):
        Key.generate(alg, **kwargs)


def test_generate_with_a_larger_secret() -> None:
    """size= (in bits) can raise an HMAC secret above the minimum."""
    key = Key.generate("HS256", size=512)
    assert len(b64decode(key.to_jwk(private=True)["k"])) == 64


@pytest.mark.parametrize(
    "alg", ["none", "None", "NONE", "RSA1_5", "PBES2-HS256+A128KW", "HS1", "", "hs256", "ES521"]
)
def test_generate_refuses_algorithms_outside_the_registry(alg: str) -> None:
    """Unregistered, refused or misspelled names are UnsupportedAlgorithm."""
    with pytest.raises(UnsupportedAlgorithm):
        Key.generate(alg)


# -- kid --------------------------------------------------------------------------


def test_custom_kid_is_kept_and_exported() -> None:
    """kid= replaces the default kid; the thumbprint stays the material's."""
    key = Key.generate("ES256", kid="signing-2024-01")
    assert key.kid == "signing-2024-01"
    assert key.thumbprint() != key.kid
    assert key.thumbprint() == rfc7638(key.to_jwk())
    assert key.to_jwk()["kid"] == "signing-2024-01"
    assert Key.from_jwk(key.to_jwk()).kid == "signing-2024-01"
    assert key.public_key().kid == "signing-2024-01"


GOOD_KIDS = ["a", "a" * 256, "key with spaces", "ключ-1", "../../etc/passwd", "https://x/y?z"]
BAD_KIDS: list[object] = ["", "a" * 257, "a\nb", "nul\x00", "tab\t", "del\x7f", "ls\u2028", 7, b"k"]


@pytest.mark.parametrize("kid", GOOD_KIDS)
def test_kid_accepted_verbatim_as_an_opaque_string(kid: str) -> None:
    """Any short printable string is a kid, kept as given (never read as a path)."""
    assert Key.generate("HS256", kid=kid).kid == kid
    assert Key.from_secret(secret_of(32), alg="HS256", kid=kid).kid == kid
    jwk = Key.generate("ES256").to_jwk() | {"kid": kid}
    assert Key.from_jwk(jwk).kid == kid


@pytest.mark.parametrize("kid", BAD_KIDS, ids=repr)
def test_kid_validation(kid: object) -> None:
    """Empty, over 256 characters, control/separator characters or non-str: refused."""
    with pytest.raises(InvalidKey):
        Key.generate("HS256", kid=kid)  # type: ignore[arg-type]
    with pytest.raises(InvalidKey):
        Key.from_secret(secret_of(32), alg="HS256", kid=kid)  # type: ignore[arg-type]
    jwk = Key.generate("ES256").to_jwk() | {"kid": kid}
    with pytest.raises(InvalidKey):
        Key.from_jwk(jwk)


# -- JWK export and round trips ---------------------------------------------------


@pytest.mark.parametrize("alg", ASYMMETRIC_ALGS)
def test_public_jwk_has_no_private_members_and_round_trips(
    alg: str, generated: dict[str, Key]
) -> None:
    """to_jwk() holds the public members only; reading it back gives the same key."""
    key = generated[alg]
    public = key.to_jwk()
    assert not PRIVATE_MEMBERS & public.keys()
    assert (public["alg"], public["use"], public["kid"]) == (alg, key.use, key.kid)
    back = Key.from_jwk(public)
    assert not back.is_private
    assert (back.alg, back.use, back.kid, back.kty, back.crv) == (
        alg,
        key.use,
        key.kid,
        key.kty,
        key.crv,
    )
    assert back.thumbprint() == key.thumbprint()
    assert back.to_jwk() == public
    with pytest.raises(InvalidKey):
        back.to_jwk(private=True)


@pytest.mark.parametrize("alg", SYMMETRIC_ALGS)
def test_symmetric_key_has_no_public_jwk(alg: str, generated: dict[str, Key]) -> None:
    """A secret has no public form: to_jwk() without private refuses."""
    with pytest.raises(InvalidKey):
        generated[alg].to_jwk()


@pytest.mark.parametrize("alg", ALL_ALGS)
def test_private_jwk_round_trips(alg: str, generated: dict[str, Key]) -> None:
    """to_jwk(private=True) holds the private members and reads back to the same key."""
    key = generated[alg]
    private = key.to_jwk(private=True)
    assert EXPECTED_PRIVATE[key.kty] <= private.keys()
    back = Key.from_jwk(private)
    assert back.is_private
    assert (back.alg, back.use, back.kid) == (alg, key.use, key.kid)
    assert back.thumbprint() == key.thumbprint()
    assert back.to_jwk(private=True) == private


@pytest.mark.parametrize("alg", SIG_ALGS)
def test_round_tripped_keys_sign_for_each_other(alg: str, generated: dict[str, Key]) -> None:
    """A key read back from its JWK verifies the original's signatures and vice versa."""
    key = generated[alg]
    back = Key.from_jwk(key.to_jwk(private=True))
    verifier_of(back).verify(DATA, key.sign(DATA))
    verifier_of(key).verify(DATA, back.sign(DATA))
    if key.kty != "oct":
        Key.from_jwk(key.to_jwk()).verify(DATA, key.sign(DATA))


@pytest.mark.parametrize("alg", ASYMMETRIC_ALGS)
def test_public_key(alg: str, generated: dict[str, Key]) -> None:
    """public_key() keeps alg, kid and use, drops the private part, and cannot sign."""
    key = generated[alg]
    public = key.public_key()
    assert not public.is_private
    assert (public.alg, public.kid, public.use) == (key.alg, key.kid, key.use)
    assert public.thumbprint() == key.thumbprint()
    assert public.to_jwk() == key.to_jwk()
    assert public.public_key().to_jwk() == public.to_jwk()
    with pytest.raises(InvalidKey):
        public.to_jwk(private=True)
    with pytest.raises(KeyUsageError):
        public.sign(DATA)
    if key.use == "sig":
        public.verify(DATA, key.sign(DATA))


@pytest.mark.parametrize("alg", SYMMETRIC_ALGS)
def test_symmetric_key_has_no_public_half(alg: str, generated: dict[str, Key]) -> None:
    """public_key() of a secret is refused rather than handing the secret out."""
    with pytest.raises(InvalidKey):
        generated[alg].public_key()


@pytest.mark.parametrize("alg", SIG_ALGS)
def test_sign_and_verify(alg: str, generated: dict[str, Key]) -> None:
    """A signature verifies over its data only."""
    key = generated[alg]
    signature = key.sign(DATA)
    key.verify(DATA, signature)
    with pytest.raises(InvalidSignature):
        key.verify(DATA + b"!", signature)


@pytest.mark.parametrize("alg", [name for name in ALL_ALGS if name not in SIG_ALGS])
def test_encryption_keys_neither_sign_nor_verify(alg: str, generated: dict[str, Key]) -> None:
    """A key for an encryption alg is refused for signatures (one key, one use)."""
    key = generated[alg]
    with pytest.raises(KeyUsageError):
        key.sign(DATA)
    with pytest.raises(KeyUsageError):
        key.verify(DATA, b"\x00" * 64)
    with pytest.raises(KeyUsageError):
        jws.sign(DATA, key)


# -- PEM and DER -------------------------------------------------------------------

PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER
PKCS8 = serialization.PrivateFormat.PKCS8
TRADITIONAL = serialization.PrivateFormat.TraditionalOpenSSL
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
PKCS1 = serialization.PublicFormat.PKCS1
NO_ENCRYPTION = serialization.NoEncryption()
PASSWORD = "correct horse ☃"


def private_encoding(encoding: serialization.Encoding, fmt: serialization.PrivateFormat) -> Any:
    def encode(material: Any) -> bytes:
        return material.private_bytes(encoding, fmt, NO_ENCRYPTION)  # type: ignore[no-any-return]

    return encode


def public_encoding(encoding: serialization.Encoding, fmt: serialization.PublicFormat) -> Any:
    def encode(material: Any) -> bytes:
        return material.public_key().public_bytes(encoding, fmt)  # type: ignore[no-any-return]

    return encode


# (case id, alg of the generated key, encoder, PEM marker or None for DER, is private)
ENCODINGS: list[tuple[str, str, Callable[[Any], bytes], str | None, bool]] = [
    ("rsa-pkcs8-pem", "RS256", private_encoding(PEM, PKCS8), "BEGIN PRIVATE KEY", True),
    ("rsa-pkcs1-pem", "RS256", private_encoding(PEM, TRADITIONAL), "BEGIN RSA PRIVATE KEY", True),
    ("rsa-spki-pem", "RS256", public_encoding(PEM, SPKI), "BEGIN PUBLIC KEY", False),
    ("rsa-pkcs1-public-pem", "RS256", public_encoding(PEM, PKCS1), "BEGIN RSA PUBLIC KEY", False),
    ("ec-pkcs8-pem", "ES256", private_encoding(PEM, PKCS8), "BEGIN PRIVATE KEY", True),
    ("ec-sec1-pem", "ES384", private_encoding(PEM, TRADITIONAL), "BEGIN EC PRIVATE KEY", True),
    ("ec-spki-pem", "ES512", public_encoding(PEM, SPKI), "BEGIN PUBLIC KEY", False),
    (
        "secp256k1-sec1-pem",
        "ES256K",
        private_encoding(PEM, TRADITIONAL),
        "BEGIN EC PRIVATE KEY",
        True,
    ),
    ("ed25519-pkcs8-pem", "EdDSA", private_encoding(PEM, PKCS8), "BEGIN PRIVATE KEY", True),
    ("ed25519-spki-pem", "EdDSA", public_encoding(PEM, SPKI), "BEGIN PUBLIC KEY", False),
    ("x25519-pkcs8-pem", "ECDH-ES", private_encoding(PEM, PKCS8), "BEGIN PRIVATE KEY", True),
    ("rsa-oaep-pkcs8-pem", "RSA-OAEP-256", private_encoding(PEM, PKCS8), "BEGIN PRIVATE KEY", True),
    ("rsa-pkcs8-der", "PS256", private_encoding(DER, PKCS8), None, True),
    ("rsa-pkcs1-der", "PS384", private_encoding(DER, TRADITIONAL), None, True),
    ("rsa-spki-der", "RS512", public_encoding(DER, SPKI), None, False),
    ("rsa-pkcs1-public-der", "RS256", public_encoding(DER, PKCS1), None, False),
    ("ec-pkcs8-der", "ES256", private_encoding(DER, PKCS8), None, True),
    ("ec-sec1-der", "ES256", private_encoding(DER, TRADITIONAL), None, True),
    ("ec-spki-der", "ES384", public_encoding(DER, SPKI), None, False),
    ("ed25519-pkcs8-der", "EdDSA", private_encoding(DER, PKCS8), None, True),
    ("ed25519-spki-der", "EdDSA", public_encoding(DER, SPKI), None, False),
]


@pytest.mark.parametrize(
    ("alg", "encode", "marker", "private"),
    [case[1:] for case in ENCODINGS],
    ids=[case[0] for case in ENCODINGS],
)
def test_from_pem_and_der_formats(
    alg: str,
    encode: Callable[[Any], bytes],
    marker: str | None,
    private: bool,
    generated: dict[str, Key],
) -> None:
    """PKCS#8, PKCS#1, SEC1, SPKI and PKCS#1 public load to the very same key."""
    source = generated[alg]
    data = encode(source.cryptography_key())
    if marker is None:
        key = Key.from_der(data, alg=alg)
    else:
        assert f"{marker}-----".encode() in data  # the format really is the one named
        key = Key.from_pem(data, alg=alg)
        assert Key.from_pem(data.decode("ascii"), alg=alg).thumbprint() == source.thumbprint()
    assert key.alg == alg
    assert key.is_private is private
    assert key.kid == key.thumbprint() == source.thumbprint()
    if private:
        assert key.to_jwk(private=True) == source.to_jwk(private=True)
    else:
        assert key.to_jwk() == source.to_jwk()


def test_from_pem_custom_kid(generated: dict[str, Key]) -> None:
    """kid= applies to PEM and DER keys too."""
    material = generated["ES256"].cryptography_key()
    pem = private_encoding(PEM, PKCS8)(material)
    der = private_encoding(DER, PKCS8)(material)
    assert Key.from_pem(pem, alg="ES256", kid="from-pem").kid == "from-pem"
    assert Key.from_der(der, alg="ES256", kid="from-der").kid == "from-der"


def self_signed_certificate(material: Any) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jwtward test")])
    now = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(material.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
    )
    digest = None if isinstance(material, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(material, digest)


@pytest.mark.parametrize("alg", ["RS256", "PS512", "ES256", "EdDSA"])
def test_from_x509_certificate_pem_and_der(alg: str, generated: dict[str, Key]) -> None:
    """A certificate yields its public key (only the key: the certificate is not trusted)."""
    source = generated[alg]
    certificate = self_signed_certificate(source.cryptography_key())
    pem = certificate.public_bytes(PEM)
    assert b"BEGIN CERTIFICATE" in pem
    for key in (
        Key.from_pem(pem, alg=alg),
        Key.from_pem(pem.decode("ascii"), alg=alg),
        Key.from_der(certificate.public_bytes(DER), alg=alg),
    ):
        assert not key.is_private
        assert key.alg == alg
        assert key.thumbprint() == source.thumbprint()
        key.verify(DATA, source.sign(DATA))


ENCRYPTED: list[tuple[str, serialization.Encoding, serialization.PrivateFormat]] = [
    ("pkcs8-pem", PEM, PKCS8),
    ("pkcs8-der", DER, PKCS8),
    ("traditional-pem", PEM, TRADITIONAL),
]


def encrypted_private(alg: str, generated: dict[str, Key], case: str) -> bytes:
    encoding, fmt = next((enc, fmt) for name, enc, fmt in ENCRYPTED if name == case)
    encryption = serialization.BestAvailableEncryption(PASSWORD.encode("utf-8"))
    return generated[alg].cryptography_key().private_bytes(encoding, fmt, encryption)  # type: ignore[union-attr]


def load(data: bytes, alg: str, password: str | bytes | None = None) -> Key:
    if data.startswith(b"-----"):
        return Key.from_pem(data, alg=alg, password=password)
    return Key.from_der(data, alg=alg, password=password)


@pytest.mark.parametrize("case", [name for name, _, _ in ENCRYPTED])
@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_encrypted_private_key_with_password(
    alg: str, case: str, generated: dict[str, Key]
) -> None:
    """An encrypted key loads with its password given as str (UTF-8) or bytes."""
    data = encrypted_private(alg, generated, case)
    if case == "pkcs8-pem":
        assert b"BEGIN ENCRYPTED PRIVATE KEY" in data
    if case == "traditional-pem":
        assert b"ENCRYPTED" in data
    for password in (PASSWORD, PASSWORD.encode("utf-8")):
        key = load(data, alg, password)
        assert key.is_private
        assert key.to_jwk(private=True) == generated[alg].to_jwk(private=True)


@pytest.mark.parametrize("case", [name for name, _, _ in ENCRYPTED])
@pytest.mark.parametrize("password", [None, "wrong", b"", PASSWORD.upper()], ids=repr)
def test_encrypted_private_key_wrong_or_missing_password(
    case: str, password: str | bytes | None, generated: dict[str, Key]
) -> None:
    """A wrong or missing password is InvalidKey, never a cryptography error."""
    data = encrypted_private("ES256", generated, case)
    with pytest.raises(InvalidKey):
        load(data, "ES256", password)


PLAIN_FOR_PASSWORD: list[tuple[str, Callable[[Any], bytes]]] = [
    ("pkcs8-pem", private_encoding(PEM, PKCS8)),
    ("pkcs8-der", private_encoding(DER, PKCS8)),
    ("sec1-pem", private_encoding(PEM, TRADITIONAL)),
    ("spki-pem", public_encoding(PEM, SPKI)),
    ("spki-der", public_encoding(DER, SPKI)),
    ("certificate-pem", lambda m: self_signed_certificate(m).public_bytes(PEM)),
    ("certificate-der", lambda m: self_signed_certificate(m).public_bytes(DER)),
]


@pytest.mark.parametrize(
    "encode", [case[1] for case in PLAIN_FOR_PASSWORD], ids=[case[0] for case in PLAIN_FOR_PASSWORD]
)
def test_password_for_unencrypted_input_is_refused(
    encode: Callable[[Any], bytes], generated: dict[str, Key]
) -> None:
    """A password given for something not encrypted means a mix-up: refused."""
    data = encode(generated["ES256"].cryptography_key())
    load(data, "ES256")  # loads without the password
    with pytest.raises(InvalidKey):
        load(data, "ES256", "secret")
    with pytest.raises(InvalidKey):
        load(data, "ES256", b"secret")


@pytest.mark.parametrize("alg", ["RS256", "ES384", "EdDSA", "RSA-OAEP", "ECDH-ES"])
def test_to_pem_round_trips(alg: str, generated: dict[str, Key]) -> None:
    """to_pem writes PKCS#8 (encrypted with a password) or SPKI, and reads back."""
    key = generated[alg]
    encrypted = key.to_pem(private=True, password=PASSWORD)
    assert encrypted.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    for password in (PASSWORD, PASSWORD.encode("utf-8")):
        back = Key.from_pem(encrypted, alg=alg, password=password)
        assert back.to_jwk(private=True) == key.to_jwk(private=True)
    with pytest.raises(InvalidKey):
        Key.from_pem(encrypted, alg=alg)
    with pytest.raises(InvalidKey):
        Key.from_pem(encrypted, alg=alg, password="not it")
    plain = key.to_pem(private=True)
    assert plain.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert Key.from_pem(plain, alg=alg).to_jwk(private=True) == key.to_jwk(private=True)
    public = key.to_pem()
    assert public.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert b"PRIVATE" not in public
    back_public = Key.from_pem(public, alg=alg)
    assert not back_public.is_private
    assert back_public.thumbprint() == key.thumbprint()
    assert key.public_key().to_pem() == public


def test_to_pem_refusals(generated: dict[str, Key]) -> None:
    """No PEM for a secret, no private PEM of a public key, no password for a public PEM."""
    with pytest.raises(InvalidKey):
        generated["HS256"].to_pem(private=True)
    with pytest.raises(InvalidKey):
        generated["ES256"].public_key().to_pem(private=True)
    with pytest.raises(InvalidKey):
        generated["ES256"].to_pem(password=PASSWORD)


@pytest.mark.parametrize("password", ["", b""], ids=["str", "bytes"])
def test_to_pem_refuses_an_empty_password(password: str | bytes, generated: dict[str, Key]) -> None:
    """An empty password must not silently write the private key unencrypted.

    The caller asked for encryption (a password argument was passed, perhaps an
    unset setting); writing cleartext PKCS#8 instead is the wrong failure mode.
    """
    with pytest.raises(InvalidKey):
        generated["ES256"].to_pem(private=True, password=password)


@pytest.mark.parametrize(
    ("source_alg", "alg"),
    [
        ("ES256", "RS256"),
        ("ES256", "ES384"),
        ("RS256", "ES256"),
        ("RS256", "HS256"),
        ("EdDSA", "ES256"),
        ("ES256", "A128KW"),
    ],
)
def test_from_pem_refuses_a_key_that_does_not_fit_the_alg(
    source_alg: str, alg: str, generated: dict[str, Key]
) -> None:
    """The alg= of from_pem must match the key type and curve in the file."""
    pem = generated[source_alg].to_pem(private=True)
    with pytest.raises(InvalidKey):
        Key.from_pem(pem, alg=alg)
    with pytest.raises(InvalidKey):
        Key.from_pem(generated[source_alg].to_pem(), alg=alg)


def test_from_pem_refuses_weak_and_unnamed_keys() -> None:
    """RSA under 2048 bits and curves without a JOSE name are refused."""
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the weak key under test
    with pytest.raises(InvalidKey):
        Key.from_pem(private_encoding(PEM, PKCS8)(weak), alg="RS256")
    p192 = ec.generate_private_key(ec.SECP192R1())
    with pytest.raises(InvalidKey):
        Key.from_pem(private_encoding(PEM, PKCS8)(p192), alg="ES256")
    with pytest.raises(InvalidKey):
        Key.from_der(public_encoding(DER, SPKI)(p192), alg="ES256")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a key",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        b"-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
        b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "-----BEGIN PRIVATE KEY-----\n☃\n-----END PRIVATE KEY-----\n",
    ],
)
def test_from_pem_refuses_garbage(data: bytes | str) -> None:
    """Unreadable PEM is InvalidKey."""
    with pytest.raises(InvalidKey):
        Key.from_pem(data, alg="ES256")


@pytest.mark.parametrize("data", [b"", b"\x30\x00", b"\x30\x82\xff\xff", b"garbage" * 10])
def test_from_der_refuses_garbage(data: bytes) -> None:
    """Unreadable DER is InvalidKey."""
    with pytest.raises(InvalidKey):
        Key.from_der(data, alg="ES256")


def test_from_der_refuses_text_with_a_typed_error(generated: dict[str, Key]) -> None:
    """A str where DER bytes belong is bad input: a JWTWardError, not a bare TypeError."""
    with pytest.raises(JWTWardError):
        Key.from_der(generated["ES256"].to_pem().decode("ascii"), alg="ES256")  # type: ignore[arg-type]


# -- from_secret -------------------------------------------------------------------

SECRET_SIZES: list[tuple[str, list[int], list[int]]] = [
    ("HS256", [32, 33, 64], [0, 16, 31]),
    ("HS384", [48, 64], [32, 47]),
    ("HS512", [64, 128], [48, 63]),
    ("A128KW", [16], [15, 17, 24, 32]),
    ("A192KW", [24], [16, 23, 25, 32]),
    ("A256KW", [32], [16, 24, 31, 33, 64]),
    ("A128GCMKW", [16], [15, 17, 32]),
    ("A192GCMKW", [24], [16, 32]),
    ("A256GCMKW", [32], [16, 24, 64]),
    ("dir", [16, 24, 32, 48, 64], [8, 15, 20, 33, 128]),
]


@pytest.mark.parametrize(
    ("alg", "good", "bad"), SECRET_SIZES, ids=[case[0] for case in SECRET_SIZES]
)
def test_from_secret_sizes(alg: str, good: list[int], bad: list[int]) -> None:
    """Each symmetric alg takes exactly the secret sizes RFC 7518 allows for it."""
    for size in good:
        secret = secret_of(size)
        key = Key.from_secret(secret, alg=alg)
        assert (key.alg, key.kty, key.crv, key.use) == (alg, "oct", None, ALGORITHMS[alg].use)
        assert key.is_private
        jwk = key.to_jwk(private=True)
        assert b64decode(jwk["k"]) == secret
        assert key.kid == key.thumbprint() == rfc7638(jwk)
    for size in bad:
        with pytest.raises(InvalidKey):
            Key.from_secret(secret_of(size), alg=alg)


def test_from_secret_input_types() -> None:
    """bytes-like secrets are accepted; text must be encoded by the caller."""
    secret = secret_of(32)
    expected = Key.from_secret(secret, alg="HS256").thumbprint()
    assert Key.from_secret(bytearray(secret), alg="HS256").thumbprint() == expected
    assert Key.from_secret(memoryview(secret), alg="HS256").thumbprint() == expected
    with pytest.raises(InvalidKey):
        Key.from_secret("x" * 32, alg="HS256")  # type: ignore[arg-type]


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA", "RSA-OAEP", "ECDH-ES"])
def test_from_secret_refuses_asymmetric_algs(alg: str) -> None:
    """A raw secret cannot become a key for an asymmetric alg."""
    with pytest.raises(InvalidKey):
        Key.from_secret(secret_of(64), alg=alg)


def test_from_secret_accepts_random_secrets_whatever_their_first_byte() -> None:
    """A random secret is never mistaken for a key file because of its first byte.

    Refusing PEM/JWK text as an HMAC secret is right, but a prefix test alone
    also refuses about 1 in 256 honest random secrets (those starting with
    ``{``), which makes key loading fail at random in production.
    """
    tail = secret_of(31)
    refused = []
    for first in range(256):
        try:
            Key.from_secret(bytes([first]) + tail, alg="HS256")
        except InvalidKey:
            refused.append(bytes([first]))
    for secret in (b" {" + tail[:30], b"\n{" + tail[:30], b"{\x00" + tail[:30]):
        try:
            Key.from_secret(secret, alg="HS256")
        except InvalidKey:
            refused.append(secret[:2])
    assert refused == []


# -- from_jwk: inference, binding, text ---------------------------------------------


@pytest.fixture(scope="module")
def ed448_key() -> Key:
    return Key.generate("EdDSA", crv="Ed448")


@pytest.fixture(scope="module")
def x25519_key() -> Key:
    return Key.generate("ECDH-ES", crv="X25519")


@pytest.mark.parametrize(
    ("source_alg", "expected"),
    [
        ("ES256", "ES256"),
        ("ES384", "ES384"),
        ("ES512", "ES512"),
        ("ES256K", "ES256K"),
        ("EdDSA", "EdDSA"),
        ("Ed448", "EdDSA"),
    ],
)
@pytest.mark.parametrize("form", ["public", "public-no-use", "private", "private-no-use"])
def test_from_jwk_infers_the_alg_of_a_curve(
    source_alg: str, expected: str, form: str, generated: dict[str, Key], ed448_key: Key
) -> None:
    """EC/OKP signing JWKs without alg take the curve's alg (Ed448 too: EdDSA)."""
    source = ed448_key if source_alg == "Ed448" else generated[source_alg]
    private = form.startswith("private")
    jwk = without(source.to_jwk(private=private), "alg", *(["use"] if "no-use" in form else []))
    key = Key.from_jwk(jwk)
    assert key.alg == expected
    assert key.use == "sig"
    assert key.thumbprint() == source.thumbprint()
    if private:
        key.public_key().verify(DATA, key.sign(DATA))


NO_ALG_CASES = [
    ("RS256", True),
    ("RS256", False),
    ("PS256", False),
    ("HS256", True),
    ("RSA-OAEP", True),
    ("RSA-OAEP", False),
    ("A128KW", True),
    ("dir", True),
    ("ECDH-ES", True),  # P-256 with use "enc": not a signing key
    ("ECDH-ES", False),
    ("X25519", True),
    ("X25519", False),
]


@pytest.mark.parametrize(
    ("source", "private"),
    NO_ALG_CASES,
    ids=[f"{s}-{'private' if p else 'public'}" for s, p in NO_ALG_CASES],
)
def test_from_jwk_without_alg_refused_where_nothing_implies_it(
    source: str, private: bool, generated: dict[str, Key], x25519_key: Key
) -> None:
    """RSA, oct and every encryption key need an alg; guessing one is refused."""
    key = x25519_key if source == "X25519" else generated[source]
    jwk = without(key.to_jwk(private=private), "alg")
    with pytest.raises(InvalidKey):
        Key.from_jwk(jwk)
    if source != "ECDH-ES":  # without its use "enc", a P-256 JWK is an ES256 key
        with pytest.raises(InvalidKey):
            Key.from_jwk(without(jwk, "use"))


@pytest.mark.parametrize(
    ("source_alg", "bound"),
    [
        ("RS256", "PS384"),
        ("RS256", "RSA-OAEP-256"),
        ("HS256", "A256KW"),
        ("HS256", "dir"),
        ("ES256", "ECDH-ES+A128KW"),
        ("ES256", "ES256"),
        ("EdDSA", "Ed25519"),
    ],
)
def test_from_jwk_alg_binds_a_jwk_without_alg(
    source_alg: str, bound: str, generated: dict[str, Key]
) -> None:
    """alg= gives an alg-less JWK its one alg (and with it its use)."""
    jwk = without(generated[source_alg].to_jwk(private=True), "alg", "use")
    key = Key.from_jwk(jwk, alg=bound)
    assert key.alg == bound
    assert key.use == ALGORITHMS[bound].use
    assert key.thumbprint() == generated[source_alg].thumbprint()


@pytest.mark.parametrize(
    ("source_alg", "bound"),
    [("RS256", "PS256"), ("RS256", "RS512"), ("ES256", "ES384"), ("HS256", "HS512")],
)
def test_from_jwk_alg_must_agree_with_the_jwk_alg(
    source_alg: str, bound: str, generated: dict[str, Key]
) -> None:
    """alg= never overrides an alg the JWK states; an equal alg= is fine."""
    jwk = generated[source_alg].to_jwk(private=True)
    assert Key.from_jwk(jwk, alg=source_alg).alg == source_alg
    with pytest.raises(InvalidKey):
        Key.from_jwk(jwk, alg=bound)


@pytest.mark.parametrize(
    ("source_alg", "bound"),
    [
        ("ES256", "ES384"),
        ("ES256", "RS256"),
        ("RS256", "ES256"),
        ("HS256", "HS512"),
        ("HS256", "A128KW"),
        ("EdDSA", "Ed448"),
        ("EdDSA", "ES256"),
    ],
)
def test_from_jwk_alg_must_fit_the_key(
    source_alg: str, bound: str, generated: dict[str, Key]
) -> None:
    """alg= cannot bind a JWK to an alg its type, curve or size does not fit."""
    jwk = without(generated[source_alg].to_jwk(private=True), "alg", "use")
    with pytest.raises(InvalidKey):
        Key.from_jwk(jwk, alg=bound)


def test_from_jwk_use_must_fit_the_alg(generated: dict[str, Key]) -> None:
    """A JWK whose use contradicts its alg is refused (RFC 7517 §4.2)."""
    with pytest.raises(KeyUsageError):
        Key.from_jwk(generated["ES256"].to_jwk() | {"use": "enc"})
    with pytest.raises(KeyUsageError):
        Key.from_jwk(without(generated["ES256"].to_jwk(), "alg") | {"use": "sig"}, alg="ECDH-ES")
    with pytest.raises(InvalidKey):
        Key.from_jwk(generated["ES256"].to_jwk() | {"use": "signature"})


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA", "HS256"])
def test_from_jwk_json_text(alg: str, generated: dict[str, Key]) -> None:
    """A JWK can be given as JSON text (str or bytes)."""
    key = generated[alg]
    text = json.dumps(key.to_jwk(private=True))
    for form in (text, text.encode("utf-8")):
        back = Key.from_jwk(form)
        assert back.to_jwk(private=True) == key.to_jwk(private=True)


@pytest.mark.parametrize(
    "value",
    [
        "{",
        "[]",
        '"kty"',
        '{"kty":"oct","kty":"oct","k":"AAAA","alg":"HS256"}',
        b"\xff",
        [],
        None,
        42,
        {"kty": 1},
        {"kty": "EC", "crv": "P-256", "alg": 256},
    ],
    ids=repr,
)
def test_from_jwk_refuses_what_is_not_a_jwk(value: Any) -> None:
    """Bad JSON, non-objects and members of the wrong type are InvalidKey."""
    with pytest.raises(InvalidKey):
        Key.from_jwk(value)


def test_rsa_jwk_with_only_n_e_d(generated: dict[str, Key]) -> None:
    """An RSA JWK with n, e, d alone recovers its primes and is the same key."""
    full_jwk = generated["RS256"].to_jwk(private=True)
    short = Key.from_jwk({name: full_jwk[name] for name in ("kty", "n", "e", "d", "alg")})
    full = Key.from_jwk(full_jwk)
    assert short.is_private
    assert short.kid == short.thumbprint() == full.thumbprint()
    recovered = short.to_jwk(private=True)
    for name in ("n", "e", "d"):
        assert recovered[name] == full_jwk[name]
    assert {recovered["p"], recovered["q"]} == {full_jwk["p"], full_jwk["q"]}
    assert short.sign(DATA) == full.sign(DATA)  # RS256 is deterministic
    full.verify(DATA, short.sign(DATA))


@pytest.mark.parametrize(
    "change",
    [
        {"p": None},  # only some CRT members
        {"qi": None, "dq": None},
        {"d": "AQAB"},  # d inconsistent with n, e
    ],
    ids=["no-p", "no-qi-dq", "bad-d"],
)
def test_rsa_jwk_partial_or_inconsistent_private_part(
    change: dict[str, str | None], generated: dict[str, Key]
) -> None:
    """A private RSA JWK must be complete (n, e, d [+ all CRT]) and consistent."""
    jwk = generated["RS256"].to_jwk(private=True)
    for name, value in change.items():
        if value is None:
            del jwk[name]
        else:
            jwk[name] = value
    with pytest.raises(InvalidKey):
        Key.from_jwk(jwk)


# -- key_ops -------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "RS256", "EdDSA"])
def test_key_ops_verify_only_private_key_verifies_but_cannot_sign(
    alg: str, generated: dict[str, Key]
) -> None:
    """key_ops ["verify"] on a private JWK is enforced: verify yes, sign no."""
    source = generated[alg]
    key = Key.from_jwk(source.to_jwk(private=True) | {"key_ops": ["verify"]})
    assert key.is_private
    assert key.key_ops == frozenset({"verify"})
    key.verify(DATA, source.sign(DATA))
    assert jws.verify(jws.sign(DATA, source), key) == DATA
    with pytest.raises(KeyUsageError):
        key.sign(DATA)
    with pytest.raises(KeyUsageError):
        jws.sign(DATA, key)


def test_key_ops_sign_only_key_cannot_verify(generated: dict[str, Key]) -> None:
    """key_ops ["sign"] permits signing and nothing else."""
    source = generated["ES256"]
    key = Key.from_jwk(source.to_jwk(private=True) | {"key_ops": ["sign"]})
    source.verify(DATA, key.sign(DATA))
    with pytest.raises(KeyUsageError):
        key.verify(DATA, source.sign(DATA))
    # Through a token the key was chosen by the token's kid: a client's fault
    # (401), not a server misconfiguration (500).
    with pytest.raises(KeyNotFound):
        jws.verify(jws.sign(DATA, source), key)


def test_key_ops_are_exported(generated: dict[str, Key]) -> None:
    """key_ops and use appear in the JWK; the public export keeps the public ops only."""
    source = generated["ES256"]
    key = Key.from_jwk(source.to_jwk(private=True) | {"key_ops": ["verify", "sign"]})
    assert key.to_jwk(private=True)["key_ops"] == ["sign", "verify"]
    public_jwk = key.to_jwk()
    assert public_jwk["key_ops"] == ["verify"]
    assert public_jwk["use"] == "sig"
    assert Key.from_jwk(public_jwk).key_ops == frozenset({"verify"})
    assert key.public_key().key_ops == frozenset({"verify"})
    assert "key_ops" not in source.to_jwk(private=True)
    assert generated["A128KW"].to_jwk(private=True)["use"] == "enc"
    wrap = Key.from_jwk(generated["A128KW"].to_jwk(private=True) | {"key_ops": ["wrapKey"]})
    assert wrap.key_ops == frozenset({"wrapKey"})
    assert wrap.to_jwk(private=True)["key_ops"] == ["wrapKey"]


@pytest.mark.parametrize(
    ("alg", "private", "ops"),
    [
        ("ES256", False, ["sign"]),  # a public key cannot have the private op alone
        ("ES256", True, ["encrypt"]),  # an encryption op on a signing key
        ("ES256", True, ["sign", "wrapKey"]),
        ("A128KW", True, ["sign"]),
        ("ES256", True, ["frobnicate"]),
        ("ES256", True, []),
        ("ES256", True, ["sign", "sign"]),
        ("ES256", True, "sign"),
        ("ES256", True, [1]),
        ("ES256", True, {"sign": True}),
    ],
    ids=repr,
)
def test_key_ops_refusals(alg: str, private: bool, ops: Any, generated: dict[str, Key]) -> None:
    """key_ops must be a non-empty list of distinct ops that fit the key's use."""
    with pytest.raises(InvalidKey):
        Key.from_jwk(generated[alg].to_jwk(private=private) | {"key_ops": ops})


def test_key_ops_must_agree_with_use(generated: dict[str, Key]) -> None:
    """When a JWK states both use and key_ops they must be consistent (RFC 7517 §4.3)."""
    jwk = without(generated["ES256"].to_jwk(private=True), "alg") | {
        "use": "enc",
        "key_ops": ["sign"],
    }
    with pytest.raises(InvalidKey):
        Key.from_jwk(jwk, alg="ECDH-ES")


# -- KeySet --------------------------------------------------------------------------

SET_ALGS = ["RS256", "ES256", "EdDSA", "HS256", "ECDH-ES", "A128KW"]


@pytest.fixture(scope="module")
def mixed(generated: dict[str, Key]) -> KeySet:
    return KeySet(generated[alg] for alg in SET_ALGS)


def test_to_jwks_public_leaves_out_secrets_and_private_members(
    mixed: KeySet, generated: dict[str, Key]
) -> None:
    """to_jwks() publishes the public keys only: no oct key, no private member."""
    doc = mixed.to_jwks()
    assert set(doc) == {"keys"}
    public_algs = [alg for alg in SET_ALGS if generated[alg].kty != "oct"]
    assert [entry["kid"] for entry in doc["keys"]] == [generated[a].kid for a in public_algs]
    for entry in doc["keys"]:
        assert entry["kty"] != "oct"
        assert not PRIVATE_MEMBERS & entry.keys()
    back = KeySet.from_jwks(doc)
    assert len(back) == len(public_algs)
    for key in back:
        assert not key.is_private
        assert key.thumbprint() == mixed[key.kid].thumbprint()
        assert key.alg == mixed[key.kid].alg
    assert back.to_jwks() == doc
    assert back.skipped == ()


def test_to_jwks_private_round_trips(mixed: KeySet) -> None:
    """to_jwks(private=True) includes secrets and private members, and reads back."""
    doc = mixed.to_jwks(private=True)
    assert len(doc["keys"]) == len(SET_ALGS)
    for entry, key in zip(doc["keys"], mixed, strict=True):
        assert EXPECTED_PRIVATE[entry["kty"]] <= entry.keys()
        assert entry["kid"] == key.kid
    back = KeySet.from_jwks(doc)
    assert all(key.is_private for key in back)
    assert back.to_jwks(private=True) == doc
    text = json.dumps(doc)
    assert KeySet.from_jwks(text).to_jwks(private=True) == doc
    assert KeySet.from_jwks(text.encode("utf-8")).to_jwks(private=True) == doc


def test_keyset_mapping_behaviour(mixed: KeySet, generated: dict[str, Key]) -> None:
    """get, [], in, len and iteration (in the given order) work by kid."""
    keys = [generated[alg] for alg in SET_ALGS]
    assert len(mixed) == len(keys)
    assert list(mixed) == keys
    for key in keys:
        assert key.kid in mixed
        assert mixed.get(key.kid) is key
        assert mixed[key.kid] is key
    assert "no-such-kid" not in mixed
    assert mixed.get("no-such-kid") is None
    with pytest.raises(KeyNotFound):
        mixed["no-such-kid"]
    empty = KeySet()
    assert len(empty) == 0
    assert list(empty) == []
    with pytest.raises(InvalidArgument):
        KeySet([generated["ES256"], "not a key"])  # type: ignore[list-item]
    with pytest.raises(InvalidArgument):
        KeySet(5)  # type: ignore[arg-type]


def test_keyset_refuses_duplicate_kids(generated: dict[str, Key]) -> None:
    """Two keys with one kid would make lookup ambiguous: refused everywhere."""
    one = generated["ES256"]
    with pytest.raises(InvalidKey):
        KeySet([one, one])
    a = Key.generate("HS256", kid="same")
    b = Key.generate("ES256", kid="same")
    with pytest.raises(InvalidKey):
        KeySet([a, b])
    doc = {"keys": [a.to_jwk(private=True), b.to_jwk(private=True)]}
    with pytest.raises(InvalidKey):
        KeySet.from_jwks(doc)
    with pytest.raises(InvalidKey):
        KeySet.from_jwks(json.dumps(doc))


@pytest.mark.parametrize(
    "doc",
    [{}, {"keys": {}}, {"keys": "x"}, [], "not json", "[]", '{"keys":[],"keys":[]}', 5],
    ids=repr,
)
def test_from_jwks_refuses_what_is_not_a_jwk_set(doc: Any) -> None:
    """A JWK Set is an object with a keys array; anything else is InvalidKey."""
    with pytest.raises(InvalidKey):
        KeySet.from_jwks(doc)


def unsupported_entries(generated: dict[str, Key]) -> dict[str, dict[str, Any]]:
    """JWKs of a kind jwtward does not offer (on purpose or because unknown)."""
    es256 = generated["ES256"].to_jwk()
    return {
        "RSA1_5": generated["RSA-OAEP"].to_jwk() | {"alg": "RSA1_5", "kid": "rsa1_5"},
        "PBES2": {"kty": "oct", "k": b64encode(secret_of(32)), "alg": "PBES2-HS256+A128KW"},
        "unknown-alg": es256 | {"alg": "ES999", "kid": "es999"},
        "alg-none": {"kty": "oct", "k": b64encode(secret_of(32)), "alg": "none", "kid": "n"},
        "kty-foo": {"kty": "foo", "kid": "foo-1", "alg": "FOO", "x": "AAAA"},
        "curve-P-192": {
            "kty": "EC",
            "crv": "P-192",
            "x": b64encode(b"\x01" * 24),
            "y": b64encode(b"\x02" * 24),
            "alg": "ES192",
            "kid": "p192",
        },
    }


UNSUPPORTED_IDS = ["RSA1_5", "PBES2", "unknown-alg", "alg-none", "kty-foo", "curve-P-192"]


@pytest.mark.parametrize("name", UNSUPPORTED_IDS)
def test_from_jwks_ignore_unsupported_skips_and_lists(name: str, generated: dict[str, Key]) -> None:
    """With ignore_unsupported, unknown kty/curve/alg entries are skipped and listed."""
    good = generated["ES256"].to_jwk()
    entry = unsupported_entries(generated)[name]
    doc = {"keys": [good, entry, generated["EdDSA"].to_jwk()]}
    with pytest.raises(InvalidKey):
        KeySet.from_jwks(doc)
    keyset = KeySet.from_jwks(doc, ignore_unsupported=True)
    assert [key.kid for key in keyset] == [good["kid"], generated["EdDSA"].kid]
    assert keyset.skipped == (entry,)


def test_from_jwks_ignore_unsupported_lists_every_skipped_entry(
    generated: dict[str, Key],
) -> None:
    """Several unsupported entries are all listed, in document order."""
    entries = unsupported_entries(generated)
    skippable = [entries["RSA1_5"], entries["PBES2"], entries["unknown-alg"]]
    doc = {"keys": [skippable[0], generated["ES256"].to_jwk(), *skippable[1:]]}
    keyset = KeySet.from_jwks(doc, ignore_unsupported=True)
    assert len(keyset) == 1
    assert list(keyset.skipped) == skippable
    with pytest.raises(UnsupportedAlgorithm):
        KeySet.from_jwks({"keys": [entries["RSA1_5"]]})


@pytest.mark.parametrize("case", ["weak-hmac", "weak-rsa", "off-curve", "bad-base64"])
def test_from_jwks_ignore_unsupported_still_refuses_bad_keys(
    case: str, generated: dict[str, Key]
) -> None:
    """Skipping is for kinds of key not offered, never for weak or broken keys."""
    if case == "weak-hmac":
        bad = {"kty": "oct", "k": b64encode(secret_of(16)), "alg": "HS256"}
    elif case == "weak-rsa":
        weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505
        numbers = weak.public_numbers()
        bad = {
            "kty": "RSA",
            "alg": "RS256",
            "n": b64encode(numbers.n.to_bytes(128, "big")),
            "e": b64encode(numbers.e.to_bytes(3, "big")),
        }
    elif case == "off-curve":
        bad = generated["ES256"].to_jwk() | {"y": b64encode(b"\x01" * 32), "kid": "off"}
    else:
        bad = generated["ES256"].to_jwk() | {"x": "AAAA=", "kid": "b64"}
    doc = {"keys": [generated["EdDSA"].to_jwk(), bad]}
    with pytest.raises(InvalidKey) as info:
        KeySet.from_jwks(doc, ignore_unsupported=True)
    assert not isinstance(info.value, UnsupportedAlgorithm)


def test_from_jwks_public_only(mixed: KeySet, generated: dict[str, Key]) -> None:
    """public_only accepts a public set and refuses any private member or secret."""
    public_doc = mixed.to_jwks()
    assert len(KeySet.from_jwks(public_doc, public_only=True)) == len(public_doc["keys"])
    with pytest.raises(InvalidKey):
        KeySet.from_jwks(mixed.to_jwks(private=True), public_only=True)
    with pytest.raises(InvalidKey):
        KeySet.from_jwks({"keys": [generated["HS256"].to_jwk(private=True)]}, public_only=True)
    with pytest.raises(InvalidKey):
        Key.from_jwk(generated["ES256"].to_jwk(private=True), public_only=True)
    assert not Key.from_jwk(generated["ES256"].to_jwk(), public_only=True).is_private


def hmac_entries(count: int) -> list[dict[str, str]]:
    """``count`` distinct HS256 JWKs (distinct secrets, hence distinct kids)."""
    return [
        {"kty": "oct", "alg": "HS256", "k": b64encode(i.to_bytes(32, "big"))} for i in range(count)
    ]


def test_from_jwks_max_keys_bound() -> None:
    """A JWK Set of MAX_JWKS_KEYS keys loads; one more key is refused."""
    entries = hmac_entries(MAX_JWKS_KEYS + 1)
    assert len(KeySet.from_jwks({"keys": entries[:MAX_JWKS_KEYS]})) == MAX_JWKS_KEYS
    with pytest.raises(InvalidKey):
        KeySet.from_jwks({"keys": entries})


# -- jws with keys and key sets ------------------------------------------------------

JWS_ALGS = ["RS256", "PS256", "ES256", "ES512", "EdDSA", "HS256", "HS512"]


@pytest.fixture(scope="module")
def verifiers(generated: dict[str, Key]) -> KeySet:
    return KeySet(verifier_of(generated[alg]) for alg in JWS_ALGS)


@pytest.mark.parametrize("alg", JWS_ALGS)
def test_jws_keyset_selects_the_key_by_kid(
    alg: str, generated: dict[str, Key], verifiers: KeySet
) -> None:
    """Each token verifies against a set of several keys, with the key its kid names."""
    signer = generated[alg]
    token = jws.sign(DATA, signer)
    assert jws.unverified_header(token)["kid"] == signer.kid
    assert jws.verify(token, verifiers) == DATA
    result = jws.decode(token, verifiers)
    assert result.key is verifiers[signer.kid]
    assert result.payload == DATA


def test_jws_unknown_kid_is_key_not_found(verifiers: KeySet) -> None:
    """A token from a key outside the set is KeyNotFound, even for a one-key set."""
    token = jws.sign(DATA, Key.generate("ES256"))
    with pytest.raises(KeyNotFound):
        jws.verify(token, verifiers)
    only = next(iter(verifiers))
    with pytest.raises(KeyNotFound):
        jws.verify(token, KeySet([only]))


def token_without_kid(key: Key, payload: bytes) -> str:
    """A compact JWS whose header has alg only (jws.sign always adds the kid)."""
    signing_input = f"{b64encode(dumps({'alg': key.alg}))}.{b64encode(payload)}"
    return f"{signing_input}.{b64encode(key.sign(signing_input.encode('ascii')))}"


@pytest.mark.parametrize("alg", ["HS256", "ES256"])
def test_jws_token_without_kid(alg: str, generated: dict[str, Key]) -> None:
    """No kid: the lone key (or a one-key set) serves; a larger set is KeyNotFound."""
    signer = generated[alg]
    token = token_without_kid(signer, DATA)
    assert "kid" not in jws.unverified_header(token)
    verifier = verifier_of(signer)
    assert jws.verify(token, verifier) == DATA
    assert jws.verify(token, KeySet([verifier])) == DATA
    other = verifier_of(generated["HS384"] if alg != "HS384" else generated["HS512"])
    with pytest.raises(KeyNotFound):
        jws.verify(token, KeySet([verifier, other]))


def test_jws_sign_headers_appear_in_the_header(generated: dict[str, Key]) -> None:
    """typ, cty and custom members are written to the protected header."""
    key = generated["ES256"]
    headers = {"typ": "at+jwt", "cty": "example", "x-tenant": "t1", "n": 5, "ext": {"a": [1, 2]}}
    token = jws.sign(DATA, key, headers=headers)
    header = jws.unverified_header(token)
    assert header["alg"] == "ES256"
    assert header["kid"] == key.kid
    for name in ("typ", "cty", "x-tenant", "n"):
        assert header[name] == headers[name]
    assert list(header["ext"]["a"]) == [1, 2]
    assert set(header) == {"alg", "kid", "typ", "cty", "x-tenant", "n", "ext"}
    assert jws.verify(token, key.public_key()) == DATA


def test_jws_sign_alg_and_kid_only_as_the_key_says(generated: dict[str, Key]) -> None:
    """alg/kid equal to the key's are allowed; different values are refused."""
    key = generated["HS256"]
    token = jws.sign(DATA, key, headers={"alg": "HS256", "kid": key.kid})
    assert jws.unverified_header(token)["alg"] == "HS256"
    assert token == jws.sign(DATA, key)
    for override in ({"alg": "HS512"}, {"alg": "none"}, {"kid": "another"}, {"kid": None}):
        with pytest.raises(InvalidArgument):
            jws.sign(DATA, key, headers=override)


@pytest.mark.parametrize("name", ["jku", "x5u", "jwk", "x5c", "crit", "b64", "zip", "enc"])
def test_jws_sign_refuses_headers_the_verifier_would_refuse(
    name: str, generated: dict[str, Key]
) -> None:
    """Headers that locate keys, crit, b64, zip and enc cannot be signed into a JWS."""
    value: Any = {
        "jku": "https://example.com/jwks",
        "x5u": "https://example.com/cert",
        "jwk": generated["ES256"].to_jwk(),
        "x5c": ["MIIB"],
        "crit": ["exp"],
        "b64": False,
        "zip": "DEF",
        "enc": "A256GCM",
    }[name]
    # The caller's mistake, not a client's: InvalidArgument, never a token error.
    with pytest.raises(InvalidArgument) as info:
        jws.sign(DATA, generated["ES256"], headers={name: value})
    assert not isinstance(info.value, InvalidHeader)


@pytest.mark.parametrize("payload", ["text", {"a": 1}, None, 42, ["x"]], ids=repr)
def test_jws_sign_refuses_a_payload_that_is_not_bytes(
    payload: Any, generated: dict[str, Key]
) -> None:
    """The payload must be bytes: a JWTWardError that is also a TypeError."""
    with pytest.raises(JWTWardError) as info:
        jws.sign(payload, generated["HS256"])
    assert isinstance(info.value, TypeError)


def test_jws_sign_accepts_bytes_like_payloads(generated: dict[str, Key]) -> None:
    """bytearray and memoryview payloads sign like bytes; verify returns bytes."""
    key = generated["HS256"]
    for payload in (bytearray(DATA), memoryview(DATA)):
        result = jws.verify(jws.sign(payload, key), key)
        assert type(result) is bytes
        assert result == DATA


def test_jws_sign_refuses_a_key_that_is_not_a_key(generated: dict[str, Key]) -> None:
    """Passing raw secret bytes (or a JWK dict) as the key is a typed usage error."""
    for not_a_key in (secret_of(32), generated["HS256"].to_jwk(private=True)):
        with pytest.raises(JWTWardError) as info:
            jws.sign(DATA, not_a_key)  # type: ignore[arg-type]
        assert isinstance(info.value, TypeError)


def test_jws_sign_with_a_public_key_is_refused(generated: dict[str, Key]) -> None:
    """A public key cannot sign."""
    with pytest.raises(KeyUsageError):
        jws.sign(DATA, generated["ES256"].public_key())


def test_jws_decode_returns_header_payload_and_key(
    generated: dict[str, Key], verifiers: KeySet
) -> None:
    """decode gives the verified protected header, the payload and the verifying key."""
    signer = generated["EdDSA"]
    token = jws.sign(b'{"sub":"u1"}', signer, headers={"typ": "JWT"})
    header, payload, key = jws.decode(token, verifiers)
    assert dict(header) == {"alg": "EdDSA", "kid": signer.kid, "typ": "JWT"}
    assert payload == b'{"sub":"u1"}'
    assert key is verifiers[signer.kid]
    assert not key.is_private


def test_jws_header_is_immutable(generated: dict[str, Key]) -> None:
    """Returned headers (decode and unverified_header) cannot be changed, nested parts too."""
    key = generated["HS256"]
    token = jws.sign(DATA, key, headers={"ext": {"a": [1]}})
    header = jws.decode(token, key).header
    assert isinstance(header, MappingProxyType)
    with pytest.raises(TypeError):
        header["alg"] = "none"  # type: ignore[index]
    with pytest.raises(TypeError):
        header["ext"]["a"] = []
    with pytest.raises((TypeError, AttributeError)):
        header["ext"]["a"].append(2)
    unverified = jws.unverified_header(token)
    with pytest.raises(TypeError):
        unverified["kid"] = "other"  # type: ignore[index]
    again = jws.decode(token, key).header
    assert again["alg"] == "HS256"
    assert list(again["ext"]["a"]) == [1]


# -- repr never shows secrets --------------------------------------------------------


@pytest.mark.parametrize("alg", ALL_ALGS)
def test_repr_never_contains_secret_material(alg: str, generated: dict[str, Key]) -> None:
    """repr (and str) of keys and key sets hold alg and kid, never secret members."""
    key = generated[alg]
    private = key.to_jwk(private=True)
    secrets = [private[name] for name in EXPECTED_PRIVATE[key.kty]]
    raw = [b64decode(value) for value in secrets]
    texts = [repr(key), str(key), repr(KeySet([key])), str(KeySet([key]))]
    for text in texts:
        assert alg in text
        for value, data in zip(secrets, raw, strict=True):
            assert value not in text
            assert data.hex() not in text
            assert repr(data) not in text
            assert str(int.from_bytes(data, "big")) not in text


def test_repr_of_a_secret_from_bytes() -> None:
    """A secret given as bytes is not echoed by repr in any encoding."""
    secret = b"my-very-secret-hmac-key-of-32-by"
    key = Key.from_secret(secret, alg="HS256", kid="k1")
    text = repr(key)
    assert "k1" in text
    for form in (secret.decode(), b64encode(secret), secret.hex(), repr(secret)):
        assert form not in text
