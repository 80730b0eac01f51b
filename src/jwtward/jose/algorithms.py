"""The JWA registry: every algorithm jwtward offers, and nothing else.

Each entry says which key type and curve it needs, what the key is for
(``sig`` or ``enc``) and how strong the key must be. How a signature
algorithm runs lives in :mod:`jwtward.jose.signers`.

Names absent from the registry are refused everywhere. ``none`` is absent
under every spelling (invariant 2); so are RSA1_5 and PBES2 (invariant 8).
"""

from __future__ import annotations

from dataclasses import dataclass

from jwtward.errors import UnsupportedAlgorithm

__all__ = [
    "ALGORITHMS",
    "CURVE_DEFAULT_SIG_ALG",
    "MAX_RSA_BITS",
    "MIN_RSA_BITS",
    "Algorithm",
    "algorithm",
    "describe",
]

MIN_RSA_BITS = 2048
MAX_RSA_BITS = 16384


@dataclass(frozen=True, slots=True)
class Algorithm:
    """What a JWA algorithm name requires of its key.

    ``curves`` lists the curves allowed for EC/OKP keys (one for ECDSA, the
    Edwards curves for EdDSA); ``secret_sizes`` the allowed lengths of an oct
    key in bytes (``None``: at least ``min_secret``).
    """

    name: str
    ktys: tuple[str, ...]
    use: str
    curves: tuple[str, ...] = ()
    hash_name: str | None = None
    min_secret: int = 0
    secret_sizes: tuple[int, ...] | None = None

    @property
    def is_signature(self) -> bool:
        return self.use == "sig"


_EC_ENC_CURVES = ("P-256", "P-384", "P-521", "X25519", "X448")

_ALL = (
    Algorithm("HS256", ("oct",), "sig", hash_name="sha256", min_secret=32),
    Algorithm("HS384", ("oct",), "sig", hash_name="sha384", min_secret=48),
    Algorithm("HS512", ("oct",), "sig", hash_name="sha512", min_secret=64),
    Algorithm("RS256", ("RSA",), "sig", hash_name="sha256"),
    Algorithm("RS384", ("RSA",), "sig", hash_name="sha384"),
    Algorithm("RS512", ("RSA",), "sig", hash_name="sha512"),
    Algorithm("PS256", ("RSA",), "sig", hash_name="sha256"),
    Algorithm("PS384", ("RSA",), "sig", hash_name="sha384"),
    Algorithm("PS512", ("RSA",), "sig", hash_name="sha512"),
    Algorithm("ES256", ("EC",), "sig", curves=("P-256",), hash_name="sha256"),
    Algorithm("ES384", ("EC",), "sig", curves=("P-384",), hash_name="sha384"),
    Algorithm("ES512", ("EC",), "sig", curves=("P-521",), hash_name="sha512"),
    Algorithm("ES256K", ("EC",), "sig", curves=("secp256k1",), hash_name="sha256"),
    Algorithm("EdDSA", ("OKP",), "sig", curves=("Ed25519", "Ed448")),
    Algorithm("Ed25519", ("OKP",), "sig", curves=("Ed25519",)),
    Algorithm("Ed448", ("OKP",), "sig", curves=("Ed448",)),
    # Key management algorithms (JWE). Keys for them can be made and moved
    # now; the JWE layer gives them their operations.
    Algorithm("RSA-OAEP", ("RSA",), "enc", hash_name="sha1"),
    Algorithm("RSA-OAEP-256", ("RSA",), "enc", hash_name="sha256"),
    Algorithm("RSA-OAEP-384", ("RSA",), "enc", hash_name="sha384"),
    Algorithm("RSA-OAEP-512", ("RSA",), "enc", hash_name="sha512"),
    Algorithm("A128KW", ("oct",), "enc", secret_sizes=(16,)),
    Algorithm("A192KW", ("oct",), "enc", secret_sizes=(24,)),
    Algorithm("A256KW", ("oct",), "enc", secret_sizes=(32,)),
    Algorithm("A128GCMKW", ("oct",), "enc", secret_sizes=(16,)),
    Algorithm("A192GCMKW", ("oct",), "enc", secret_sizes=(24,)),
    Algorithm("A256GCMKW", ("oct",), "enc", secret_sizes=(32,)),
    # dir: the key is the CEK itself, so its size is that of some enc.
    Algorithm("dir", ("oct",), "enc", secret_sizes=(16, 24, 32, 48, 64)),
    Algorithm("ECDH-ES", ("EC", "OKP"), "enc", curves=_EC_ENC_CURVES),
    Algorithm("ECDH-ES+A128KW", ("EC", "OKP"), "enc", curves=_EC_ENC_CURVES),
    Algorithm("ECDH-ES+A192KW", ("EC", "OKP"), "enc", curves=_EC_ENC_CURVES),
    Algorithm("ECDH-ES+A256KW", ("EC", "OKP"), "enc", curves=_EC_ENC_CURVES),
)

ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in _ALL}

# Names that are registered elsewhere but refused here, with the reason, so the
# error tells a user that the refusal is deliberate.
_REFUSED = {
    "RSA1_5": "RSA1_5 is not offered: its padding oracle is unfixable (RFC 8725 §3.2)",
    "PBES2-HS256+A128KW": "PBES2 is not offered: password-based keys are too weak for tokens",
    "PBES2-HS384+A192KW": "PBES2 is not offered: password-based keys are too weak for tokens",
    "PBES2-HS512+A256KW": "PBES2 is not offered: password-based keys are too weak for tokens",
}

# The algorithm a signing key gets when its JWK names only a curve.
CURVE_DEFAULT_SIG_ALG = {
    "P-256": "ES256",
    "P-384": "ES384",
    "P-521": "ES512",
    "secp256k1": "ES256K",
    "Ed25519": "EdDSA",
    "Ed448": "EdDSA",
}


def describe(value: object, limit: int = 32) -> str:
    """A short, escaped rendering of an untrusted value for an error message.

    Only strings are shown (escaped and cut); other values by their type, so
    no ``repr`` of a huge or deeply nested value runs.
    """
    if not isinstance(value, str):
        return f"<{type(value).__name__}>"
    text = repr(value[:limit])
    return text if len(value) <= limit else text + "..."


def algorithm(name: object) -> Algorithm:
    """The registry entry for ``name``, or :class:`UnsupportedAlgorithm`."""
    if isinstance(name, str):
        found = ALGORITHMS.get(name)
        if found is not None:
            return found
        if name.lower() == "none":
            raise UnsupportedAlgorithm("alg 'none' (unsecured JWS) is never accepted")
        reason = _REFUSED.get(name)
        if reason is not None:
            raise UnsupportedAlgorithm(reason)
    raise UnsupportedAlgorithm(f"unsupported alg {describe(name)}")
