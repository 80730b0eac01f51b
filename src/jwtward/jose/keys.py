"""``Key``: one key, one algorithm, one use (invariants 1 and 4).

A ``Key`` is validated once, when it is made, and then carries everything a
signature needs: the bound signer, its permitted operations and its ``kid``.
Weak or mismatched keys never become ``Key`` objects, so no later code path
has to remember to check them.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x448, x25519

from jwtward.codecs import loads_object
from jwtward.errors import (
    DecodeError,
    InvalidArgument,
    InvalidKey,
    InvalidSignature,
    KeyUsageError,
    UnsupportedAlgorithm,
)
from jwtward.jose import jwk as _jwk
from jwtward.jose import pem as _pem
from jwtward.jose.algorithms import (
    CURVE_DEFAULT_SIG_ALG,
    MAX_RSA_BITS,
    MIN_RSA_BITS,
    Algorithm,
    algorithm,
    describe,
)
from jwtward.jose.content_encryption import CONTENT_ENCRYPTIONS
from jwtward.jose.key_checks import (
    OPS_BY_USE,
    PUBLIC_OPS,
    check_key_ops,
    check_kid,
    check_strength,
)
from jwtward.jose.material import EC_CURVES, Material, describe_material, public_of
from jwtward.jose.signers import Signer, bind_signer

__all__ = ["MAX_SECRET_BITS", "Key", "MissingAlgorithm", "keys_of"]

MAX_SECRET_BITS = 8192

# The enc a dir key serves when none is named. A dir key *is* the CEK, so it is
# bound to exactly one enc (one key = one alg): a 32-byte key made for A256GCM
# never decrypts A128CBC-HS256 content. 32 bytes fit both; AES-GCM is the default.
DIR_DEFAULT_ENC = {
    16: "A128GCM",
    24: "A192GCM",
    32: "A256GCM",
    48: "A192CBC-HS384",
    64: "A256CBC-HS512",
}
# key_ops that let a key take part in encryption / decryption. Key agreement
# (deriveKey, deriveBits) counts for ECDH-ES keys only.
_ENCRYPT_OPS = frozenset({"encrypt", "wrapKey"})
_DECRYPT_OPS = frozenset({"decrypt", "unwrapKey"})
_AGREEMENT_OPS = frozenset({"deriveKey", "deriveBits"})


def _generate_material(spec: Algorithm, size: int | None, crv: str | None) -> Material:
    kty = spec.ktys[0] if crv is None or crv in EC_CURVES else "OKP"
    if kty == "oct":
        if size is not None:
            length = size // 8
        elif spec.secret_sizes is not None:
            # dir keys are CEKs: 32 bytes, bound to A256GCM unless enc= says otherwise.
            length = 32 if spec.name == "dir" else spec.secret_sizes[0]
        else:
            length = spec.min_secret
        return secrets.token_bytes(length)
    if kty == "RSA":
        bits = size or 2048
        if not MIN_RSA_BITS <= bits <= MAX_RSA_BITS:
            raise InvalidKey(f"RSA keys have {MIN_RSA_BITS} to {MAX_RSA_BITS} bits")
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    curve = crv or spec.curves[0]
    if curve not in spec.curves:
        raise InvalidKey(f"{spec.name} needs a key on {' or '.join(spec.curves)}, got {curve}")
    if curve in EC_CURVES:
        return ec.generate_private_key(EC_CURVES[curve][0]())
    okp_generators: dict[str, Any] = {
        "Ed25519": ed25519.Ed25519PrivateKey,
        "Ed448": ed448.Ed448PrivateKey,
        "X25519": x25519.X25519PrivateKey,
        "X448": x448.X448PrivateKey,
    }
    return okp_generators[curve].generate()  # type: ignore[no-any-return]


class Key:
    """One key for exactly one JWA algorithm (``alg``) and one ``use``.

    Make keys with :meth:`generate`, :meth:`from_jwk`, :meth:`from_pem`,
    :meth:`from_der` or :meth:`from_secret`. A key is immutable; its ``kid``
    defaults to its RFC 7638 thumbprint.
    """

    __slots__ = (
        "_can_decrypt",
        "_can_encrypt",
        "_can_sign",
        "_can_verify",
        "_enc",
        "_has_private",
        "_header_memo",
        "_key_ops",
        "_kid",
        "_material",
        "_signer",
        "_spec",
        "_thumbprint",
    )

    _spec: Algorithm
    _material: Material
    _kid: str
    _key_ops: frozenset[str] | None
    _signer: Signer | None
    _has_private: bool
    _can_sign: bool
    _can_verify: bool
    _can_encrypt: bool
    _can_decrypt: bool
    _enc: str | None
    _thumbprint: str | None
    # Encoded protected headers already made for this key, memoized by the
    # jws module (a key signs with the same few headers over and over).
    _header_memo: dict[tuple[tuple[str, Any], ...], str]

    def __init__(self) -> None:
        raise TypeError(
            "make keys with Key.generate, Key.from_jwk, Key.from_pem, Key.from_der "
            "or Key.from_secret"
        )

    # -- construction ---------------------------------------------------------

    @classmethod
    def _build(
        cls,
        spec: Algorithm,
        material: Material,
        *,
        kid: str | None = None,
        key_ops: object = None,
        enc: str | None = None,
    ) -> Key:
        check_strength(spec, material)
        bound_enc = _bind_enc(spec, material, enc)
        ops = check_key_ops(key_ops, spec.use)
        key = object.__new__(cls)
        key._spec = spec
        key._material = material
        key._has_private = describe_material(material)[2]
        key._key_ops = ops
        key._thumbprint = None
        key._header_memo = {}
        key._kid = check_kid(kid) if kid is not None else key.thumbprint()
        key._signer = bind_signer(spec, material)
        permitted = ops if ops is not None else OPS_BY_USE[spec.use]
        if not key._has_private:
            permitted = permitted & PUBLIC_OPS
            if not permitted:
                raise KeyUsageError(f"key_ops {sorted(ops or ())} need a private key")
        key._can_sign = key._signer is not None and key._has_private and "sign" in permitted
        key._can_verify = key._signer is not None and "verify" in permitted
        is_enc = spec.use == "enc"
        agreement = _AGREEMENT_OPS if spec.name.startswith("ECDH-ES") else frozenset()
        key._can_encrypt = is_enc and bool(permitted & (_ENCRYPT_OPS | agreement))
        key._can_decrypt = is_enc and key._has_private and bool(
            permitted & (_DECRYPT_OPS | agreement)
        )
        key._enc = bound_enc
        return key

    @classmethod
    def generate(
        cls,
        alg: str,
        *,
        kid: str | None = None,
        size: int | None = None,
        crv: str | None = None,
        enc: str | None = None,
    ) -> Key:
        """A fresh key for ``alg``.

        ``size`` is in bits (RSA: default 2048, at least 2048; oct: default the
        minimum the algorithm allows). ``crv`` picks the curve where an alg
        allows several (EdDSA: Ed25519 by default; ECDH-ES: P-256 by default).
        ``enc`` binds a ``dir`` key to its content encryption (default A256GCM)
        and sizes it to match.
        """
        spec = algorithm(alg)
        if enc is not None and not isinstance(enc, str):
            raise InvalidKey("enc must be a content encryption name such as 'A256GCM'")
        if enc is not None and size is None and spec.name == "dir" and enc in CONTENT_ENCRYPTIONS:
            size = CONTENT_ENCRYPTIONS[enc].key_size * 8
        if size is not None:
            if type(size) is not int or size <= 0 or size % 8:
                raise InvalidArgument("size must be a positive number of bits, a multiple of 8")
            if not {"RSA", "oct"} & set(spec.ktys):
                raise InvalidArgument(f"size does not apply to {spec.name}: its curve fixes it")
            if "oct" in spec.ktys and size > MAX_SECRET_BITS:
                raise InvalidArgument(f"a secret may have at most {MAX_SECRET_BITS} bits")
        if crv is not None:
            if not isinstance(crv, str):
                raise InvalidArgument("crv must be a curve name")
            if not spec.curves:
                raise InvalidArgument(f"crv does not apply to {spec.name}")
        return cls._build(spec, _generate_material(spec, size, crv), kid=kid, enc=enc)

    @classmethod
    def from_secret(
        cls, secret: bytes, *, alg: str, kid: str | None = None, enc: str | None = None
    ) -> Key:
        """A symmetric key (HS*, A*KW, A*GCMKW, dir) from raw secret bytes.

        A ``dir`` key is bound to one ``enc``: the one named, or the one its
        length implies (16: A128GCM, 24: A192GCM, 32: A256GCM, 48:
        A192CBC-HS384, 64: A256CBC-HS512).
        """
        if not isinstance(secret, bytes | bytearray | memoryview):
            raise InvalidKey("a secret must be bytes; encode text secrets explicitly")
        spec = algorithm(alg)
        if "oct" not in spec.ktys:
            raise InvalidKey(f"{spec.name} is not a symmetric algorithm; load its key from PEM/JWK")
        return cls._build(spec, bytes(secret), kid=kid, enc=enc)

    @classmethod
    def from_jwk(
        cls,
        jwk: Mapping[str, Any] | str | bytes,
        *,
        alg: str | None = None,
        public_only: bool = False,
    ) -> Key:
        """A key from a JWK object (or its JSON text).

        ``alg=`` binds a JWK that has no ``alg`` member, and must agree with it
        when it has one. EC and OKP signing keys without ``alg`` take the
        curve's algorithm (P-256: ES256, Ed25519: EdDSA, ...); RSA and oct keys
        and every encryption key need an explicit ``alg``. ``public_only``
        refuses any private member (for JWK Sets expected to be public).
        """
        if isinstance(jwk, str | bytes):
            try:
                jwk = loads_object(jwk, max_size=1 << 16)
            except DecodeError as exc:
                raise InvalidKey(f"JWK is not a JSON object: {exc}") from None
        if not isinstance(jwk, Mapping):
            raise InvalidKey("a JWK must be a JSON object")
        for name in ("kty", "alg", "use", "kid"):
            if name in jwk and not isinstance(jwk[name], str):
                raise InvalidKey(f"JWK member {name!r} must be a string")
        use = jwk.get("use")
        if use is not None and use not in OPS_BY_USE:
            raise InvalidKey(f"unknown JWK use {describe(use)}")
        # Everything cheap is decided before the key material is built (which
        # for RSA can mean recovering primes).
        if public_only and _jwk.PRIVATE_MEMBERS & jwk.keys():
            # Checked first: a leaked private key is reported, never skipped
            # as merely "unsupported".
            raise InvalidKey("JWK holds private key members where only public keys are expected")
        kty = jwk.get("kty")
        jwk_alg, enc = _dir_binding(jwk, alg)
        if alg in CONTENT_ENCRYPTIONS:
            alg = "dir"
        spec = algorithm(_choose_alg(jwk_alg, alg, kty, jwk.get("crv"), use))
        if spec.name != "dir":
            enc = None  # RFC 7517 §4: a member that means nothing for this key is ignored
        if use is not None and use != spec.use:
            raise KeyUsageError(f"JWK use {use!r} does not fit {spec.name} (use {spec.use!r})")
        key_ops = jwk.get("key_ops")
        if key_ops is not None and use is not None:
            check_key_ops(key_ops, use)  # RFC 7517 §4.3: consistent when both are given
        material = _jwk.material_from_jwk(jwk, public_only=public_only)
        return cls._build(spec, material, kid=jwk.get("kid"), key_ops=key_ops, enc=enc)

    @classmethod
    def from_pem(
        cls,
        pem: bytes | str,
        *,
        alg: str,
        password: bytes | str | None = None,
        kid: str | None = None,
    ) -> Key:
        """A key from PEM: PKCS#8/PKCS#1/SEC1 private, SPKI/PKCS#1 public, or X.509."""
        spec = algorithm(alg)
        return cls._build(spec, _pem.material_from_pem(pem, password), kid=kid)

    @classmethod
    def from_der(
        cls,
        der: bytes,
        *,
        alg: str,
        password: bytes | str | None = None,
        kid: str | None = None,
    ) -> Key:
        """A key from DER: PKCS#8/PKCS#1/SEC1 private, SPKI/PKCS#1 public, or X.509."""
        spec = algorithm(alg)
        return cls._build(spec, _pem.material_from_der(der, password), kid=kid)

    @classmethod
    def from_cryptography(cls, material: Material, *, alg: str, kid: str | None = None) -> Key:
        """A key from a pyca/cryptography key object you already hold."""
        return cls._build(algorithm(alg), material, kid=kid)

    # -- what the key is --------------------------------------------------------

    @property
    def alg(self) -> str:
        """The one JWA algorithm this key is for."""
        return self._spec.name

    @property
    def kid(self) -> str:
        return self._kid

    @property
    def use(self) -> str:
        """``sig`` or ``enc``."""
        return self._spec.use

    @property
    def enc(self) -> str | None:
        """The one content encryption a ``dir`` key serves; ``None`` for every other alg."""
        return self._enc

    @property
    def kty(self) -> str:
        return describe_material(self._material)[0]

    @property
    def crv(self) -> str | None:
        return describe_material(self._material)[1]

    @property
    def key_ops(self) -> frozenset[str] | None:
        return self._key_ops

    @property
    def is_private(self) -> bool:
        """True for a private or secret key (it can sign or decrypt)."""
        return self._has_private

    @property
    def spec(self) -> Algorithm:
        """The registry entry of :attr:`alg`."""
        return self._spec

    def thumbprint(self) -> str:
        """RFC 7638 thumbprint (SHA-256, base64url)."""
        if self._thumbprint is None:
            self._thumbprint = _jwk.thumbprint(self._material)
        return self._thumbprint

    def public_key(self) -> Key:
        """The public half, with the same alg, kid and use."""
        if isinstance(self._material, bytes):
            raise InvalidKey("a symmetric key has no public half")
        if not self._has_private:
            return self
        ops = None if self._key_ops is None else (self._key_ops & PUBLIC_OPS) or None
        return Key._build(self._spec, public_of(self._material), kid=self._kid, key_ops=ops)

    def cryptography_key(self) -> Material:
        """The pyca/cryptography object (or secret bytes) behind this key."""
        return self._material

    # -- export ---------------------------------------------------------------

    def to_jwk(self, *, private: bool = False) -> dict[str, Any]:
        """The JWK, with ``alg``, ``use`` and ``kid``; private members only if asked."""
        members: dict[str, Any] = _jwk.material_to_jwk(self._material, private=private)
        members["alg"] = self._spec.name
        members["use"] = self._spec.use
        members["kid"] = self._kid
        if self._enc is not None:
            members["enc"] = self._enc
        ops = self._key_ops
        if ops is not None:
            if not private:
                ops = ops & PUBLIC_OPS
            if ops:
                members["key_ops"] = sorted(ops)
        return members

    def to_pem(self, *, private: bool = False, password: bytes | str | None = None) -> bytes:
        """PKCS#8 PEM (encrypted with ``password``) if ``private``, else SPKI PEM."""
        return _pem.material_to_pem(self._material, private=private, password=password)

    # -- operations -------------------------------------------------------------

    def sign(self, data: bytes) -> bytes:
        """The raw JWS signature of ``data`` (for ECDSA: ``r || s``)."""
        if not self._can_sign or self._signer is None:
            raise KeyUsageError(self._refusal("sign"))
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidArgument("data to sign must be bytes")
        return self._signer.sign(bytes(data))

    def verify(self, data: bytes, signature: bytes) -> None:
        """Check a raw JWS signature; raise :class:`InvalidSignature` if it fails."""
        if not self._can_verify or self._signer is None:
            raise KeyUsageError(self._refusal("verify"))
        if not isinstance(data, bytes | bytearray | memoryview) or not isinstance(
            signature, bytes | bytearray | memoryview
        ):
            raise InvalidArgument("data and signature must be bytes")
        if not self._signer.verify(bytes(data), bytes(signature)):
            raise InvalidSignature("signature verification failed")

    def _refusal(self, operation: str) -> str:
        if self._signer is None:
            return f"{self._spec.name} is an encryption algorithm; this key cannot {operation}"
        if operation == "sign" and not self._has_private:
            return "a public key cannot sign"
        return f"key_ops of this key do not permit {operation!r}"

    def __repr__(self) -> str:
        kind = (
            "secret"
            if isinstance(self._material, bytes)
            else ("private" if self._has_private else "public")
        )
        return f"Key(alg={self._spec.name!r}, kid={self._kid!r}, {kind})"


def _dir_binding(jwk: Mapping[str, Any], asked: str | None) -> tuple[str | None, str | None]:
    """The JWK's alg and the enc a dir key is bound to, from ``alg``/``enc``/``alg=``.

    An ``alg`` naming a content encryption (as in RFC 7520 §5.6) means a dir
    key for it; it is only that for an oct key, anything else with such an
    alg is an unsupported key (skippable in a JWK Set).
    """
    jwk_alg = jwk.get("alg")
    named = [value for value in (jwk_alg, asked) if value in CONTENT_ENCRYPTIONS]
    enc = jwk.get("enc")
    if not named:
        return jwk_alg, enc if isinstance(enc, str) else None
    if jwk.get("kty") != "oct":
        raise UnsupportedAlgorithm(f"{named[0]} is a content encryption, not an alg for this key")
    if (isinstance(enc, str) and enc != named[0]) or len(set(named)) > 1:
        raise InvalidKey("the JWK's alg, enc and alg= name different content encryptions")
    return ("dir" if jwk_alg is not None else None), named[0]


def _bind_enc(spec: Algorithm, material: Material, enc: object) -> str | None:
    """The enc a dir key is bound to; ``enc`` is refused for every other alg."""
    if spec.name != "dir":
        if enc is not None:
            raise InvalidKey(f"enc binds dir keys only, not {spec.name} keys")
        return None
    assert isinstance(material, bytes)  # noqa: S101 - check_strength made sure
    if enc is None:
        return DIR_DEFAULT_ENC[len(material)]
    found = CONTENT_ENCRYPTIONS.get(enc) if isinstance(enc, str) else None
    if found is None:
        raise InvalidKey(f"unsupported enc {describe(enc)}")
    if found.key_size != len(material):
        raise InvalidKey(
            f"a dir key for {found.name} needs {found.key_size} bytes, got {len(material)}"
        )
    return found.name


class MissingAlgorithm(InvalidKey):
    """A JWK whose algorithm is neither given nor implied by its curve."""


def _choose_alg(
    jwk_alg: str | None, asked: str | None, kty: object, crv: object, use: str | None
) -> str:
    if jwk_alg is not None and asked is not None and jwk_alg != asked:
        raise InvalidKey(f"JWK alg {describe(jwk_alg)} disagrees with alg={describe(asked)}")
    chosen = jwk_alg if jwk_alg is not None else asked
    if chosen is not None:
        return chosen
    if use != "enc" and isinstance(crv, str) and crv in CURVE_DEFAULT_SIG_ALG:
        return CURVE_DEFAULT_SIG_ALG[crv]
    if kty in ("RSA", "oct"):
        raise MissingAlgorithm(f"a {kty} JWK without 'alg' needs alg= to say what it is for")
    raise MissingAlgorithm("this JWK has no 'alg' and none follows from its curve; pass alg=")


def keys_of(value: Key | Iterable[Key]) -> list[Key]:
    """A list of keys from one key or an iterable of them."""
    if isinstance(value, Key):
        return [value]
    try:
        keys = list(value)
    except TypeError:
        raise InvalidArgument(f"expected Key objects, got {type(value).__name__}") from None
    for item in keys:
        if not isinstance(item, Key):
            raise InvalidArgument(f"expected Key objects, got {type(item).__name__}")
    return keys
