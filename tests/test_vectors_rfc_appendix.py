"""Examples from the RFC appendices, transcribed from the RFC text.

RFC 7515 Appendix A (JWS: A.1 HS256, A.2 RS256, A.3 ES256, A.4 ES512, A.5
unsecured), RFC 7638 §3.1 (the thumbprint of the RFC 7517 A.1 RSA key) and
RFC 8037 Appendix A.1-A.5 (Ed25519 key, thumbprint, EdDSA signature).

The values were copied with the RFCs' display line breaks removed (long
strings below are split only to fit the line length). ``TestTranscription`` re-derives
every signature and thumbprint with pyca/cryptography and hashlib alone, so a
copying error fails there, not as a misleading jwtward failure.

The RFCs' own values are what jwtward is held to: the deterministic signatures
(HMAC, RSASSA-PKCS1-v1_5, Ed25519) must come out byte for byte from
``Key.sign`` over the RFC's signing input. ``jws.sign`` cannot recreate these
tokens whole: it writes ``{"alg":..,"kid":..}`` while the RFC headers are
``{"typ":"JWT",\\r\\n "alg":"HS256"}`` (A.1) or ``{"alg":..}`` without kid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from jwtward import Key, errors, jws


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int(text: str) -> int:
    return int.from_bytes(_b64(text), "big")


# -- RFC 7515 Appendix A --------------------------------------------------------

# A.1 (and the payload of A.2, A.3, A.5): a JWT claims set with CRLF line breaks.
A1_HEADER = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
CLAIMS_PAYLOAD = (
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
)
A1_JWK = {
    "kty": "oct",
    "k": "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
}
A1_SIGNATURE = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

A2_HEADER = "eyJhbGciOiJSUzI1NiJ9"
A2_JWK = {
    "kty": "RSA",
    "n": "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddx"
    "HmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMs"
    "D1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSH"
    "SXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdV"
    "MTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8"
    "NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ",
    "e": "AQAB",
    "d": "Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97I"
    "jlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJe46sui395IW_GO-pWJ1O0"
    "BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn"
    "439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYT"
    "CBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9pIuhLh"
    "BOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ",
    "p": "4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdi"
    "YrqBdss1l58BQ3KhooKeQTa9AB0Hw_Py5PJdTJNPY8cQn7ouZ2KKDcmnPG"
    "BY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc",
    "q": "uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxa"
    "ewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD_YwD66t62wDmpe_HlB-TnBA"
    "-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc",
    "dp": "BwKfV3Akq5_MFZDFZCnW-wzl-CCo83WoZvnLQwCTeDv8uzluRSnm71I3Q"
    "CLdhrqE2e9YkxvuxdBfpT_PI7Yz-FOKnu1R6HsJeDCjn12Sk3vmAktV2zb"
    "34MCdy7cpdTh_YVr7tss2u6vneTwrA86rZtu5Mbr1C1XsmvkxHQAdYo0",
    "dq": "h_96-mK1R_7glhsum81dZxjTnYynPbZpHziZjeeHcXYsXaaMwkOlODsWa"
    "7I9xXDoRwbKgB719rrmI2oKr6N3Do9U0ajaHF-NKJnwgjMd2w9cjz3_-ky"
    "NlxAr2v4IKhGNpmM5iIgOS1VZnOZ68m6_pbLBSp3nssTdlqvd0tIiTHU",
    "qi": "IYd7DHOhrWvxkwPQsRM2tOgrjbcrfvtQJipd-DlcxyVuuM9sQLdgjVk2o"
    "y26F0EmpScGLq2MowX7fhd_QJQ3ydy5cY7YIBi87w93IKLEdfnbJtoOPLU"
    "W0ITrJReOgo1cq9SbsxYawBgfp_gh6A5603k2-ZQwVK0JKSHuLFkuQ3U",
}
A2_SIGNATURE = (
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7"
    "AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4"
    "BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K"
    "0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqv"
    "hJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrB"
    "p0igcN_IoypGlUPQGe77Rw"
)

A3_HEADER = "eyJhbGciOiJFUzI1NiJ9"
A3_JWK = {
    "kty": "EC",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI",
}
A3_SIGNATURE = (
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
)

A4_HEADER = "eyJhbGciOiJFUzUxMiJ9"
A4_PAYLOAD = "UGF5bG9hZA"
A4_JWK = {
    "kty": "EC",
    "crv": "P-521",
    "x": "AekpBQ8ST8a8VcfVOTNl353vSrDCLLJXmPk06wTjxrrjcBpXp5EOnYG_NjFZ6OvLFV1jSfS9tsz4qUxcWceqwQGk",
    "y": "ADSmRA43Z1DSNx_RvcLI87cdL07l6jQyyBXMoxVg_l2Th-x3S1WDhjDly79ajL4Kkd0AZMaZmh9ubmf63e3kyMj2",
    "d": "AY5pb7A0UFiB3RELSD64fTLOSV_jazdF7fLYyuTw8lOfRhWg6Y6rUrPAxerEzgdRhajnu0ferB0d53vM9mE15j2C",
}
A4_SIGNATURE = (
    "AdwMgeerwtHoh-l192l60hp9wAHZFVJbLfD_UxMi70cwnZOYaRI1bKPWROc-mZZq"
    "wqT2SI-KGDKB34XO0aw_7XdtAG8GaSwFKdCAPZgoXD2YBJZCPEX3xKpRwcdOO8Kp"
    "EHwJjyqOgzDO7iKvU8vcnwNrmxYbSW9ERBXukOXolLzeO_Jn"
)

A5_TOKEN = f"eyJhbGciOiJub25lIn0.{CLAIMS_PAYLOAD}."

CLAIMS = b'{"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}'

# -- RFC 7638 §3.1: the RSA key of RFC 7517 Appendix A.1 --------------------------

RFC7517_A1_RSA = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86z"
    "wu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5Js"
    "GY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMic"
    "AtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-"
    "bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csF"
    "Cur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

# -- RFC 8037 Appendix A ----------------------------------------------------------

RFC8037_PRIVATE = {  # A.1
    "kty": "OKP",
    "crv": "Ed25519",
    "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
}
RFC8037_PUBLIC = {  # A.2
    "kty": "OKP",
    "crv": "Ed25519",
    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
}
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"  # A.3
RFC8037_HEADER = "eyJhbGciOiJFZERTQSJ9"  # A.4: {"alg":"EdDSA"}
RFC8037_PAYLOAD = "RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"  # "Example of Ed25519 signing"
RFC8037_SIGNATURE = (
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)


def _input(header: str, payload: str = CLAIMS_PAYLOAD) -> bytes:
    return f"{header}.{payload}".encode("ascii")


def _token(header: str, signature: str, payload: str = CLAIMS_PAYLOAD) -> str:
    return f"{header}.{payload}.{signature}"


def _thumbprint(members: dict[str, Any]) -> str:
    canonical = ",".join(f'"{name}":"{members[name]}"' for name in sorted(members))
    digest = hashlib.sha256(("{" + canonical + "}").encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class TestTranscription:
    """The transcribed values agree with each other under pyca/cryptography alone."""

    def test_a1_mac(self) -> None:
        mac = hmac.digest(_b64(A1_JWK["k"]), _input(A1_HEADER), "sha256")
        assert mac == _b64(A1_SIGNATURE)
        assert _b64(A1_HEADER) == b'{"typ":"JWT",\r\n "alg":"HS256"}'
        assert _b64(CLAIMS_PAYLOAD) == CLAIMS

    def test_a2_signature(self) -> None:
        n, e, d = (_int(A2_JWK[name]) for name in ("n", "e", "d"))
        p, q = _int(A2_JWK["p"]), _int(A2_JWK["q"])
        assert p * q == n
        numbers = rsa.RSAPrivateNumbers(
            p, q, d, _int(A2_JWK["dp"]), _int(A2_JWK["dq"]), _int(A2_JWK["qi"]),
            rsa.RSAPublicNumbers(e, n),
        )  # fmt: skip
        private = numbers.private_key()
        signature = private.sign(_input(A2_HEADER), padding.PKCS1v15(), hashes.SHA256())
        assert signature == _b64(A2_SIGNATURE)

    @pytest.mark.parametrize("appendix", ["A.3", "A.4"])
    def test_ecdsa_signatures(self, appendix: str) -> None:
        jwk, header, payload, signature = {
            "A.3": (A3_JWK, A3_HEADER, CLAIMS_PAYLOAD, A3_SIGNATURE),
            "A.4": (A4_JWK, A4_HEADER, A4_PAYLOAD, A4_SIGNATURE),
        }[appendix]
        curve, hash_ = (
            (ec.SECP256R1(), hashes.SHA256())
            if appendix == "A.3"
            else (ec.SECP521R1(), hashes.SHA512())
        )
        public = ec.EllipticCurvePublicNumbers(_int(jwk["x"]), _int(jwk["y"]), curve).public_key()
        private = ec.derive_private_key(_int(jwk["d"]), curve)
        assert private.public_key().public_numbers() == public.public_numbers()
        raw = _b64(signature)
        half = len(raw) // 2
        der = encode_dss_signature(int.from_bytes(raw[:half]), int.from_bytes(raw[half:]))
        public.verify(der, _input(header, payload), ec.ECDSA(hash_))

    def test_thumbprints(self) -> None:
        rsa_members = {name: RFC7517_A1_RSA[name] for name in ("e", "kty", "n")}
        assert _thumbprint(rsa_members) == RFC7638_THUMBPRINT
        assert _thumbprint(RFC8037_PUBLIC) == RFC8037_THUMBPRINT

    def test_rfc8037_signature(self) -> None:
        private = ed25519.Ed25519PrivateKey.from_private_bytes(_b64(RFC8037_PRIVATE["d"]))
        assert private.public_key().public_bytes_raw() == _b64(RFC8037_PUBLIC["x"])
        signature = private.sign(_input(RFC8037_HEADER, RFC8037_PAYLOAD))
        assert signature == _b64(RFC8037_SIGNATURE)
        assert _b64(RFC8037_PAYLOAD) == b"Example of Ed25519 signing"


# -- RFC 7515 Appendix A through jwtward ---------------------------------------------


@pytest.fixture(scope="module")
def a2_key() -> Key:
    return Key.from_jwk(A2_JWK, alg="RS256")


def test_a1_hs256() -> None:
    """A.1: a 64-byte HS256 key, a header with CRLF and a space, verified and re-MACed."""
    with pytest.raises(errors.InvalidKey):
        Key.from_jwk(A1_JWK)  # an oct JWK without alg says nothing of what it is for
    key = Key.from_jwk(A1_JWK, alg="HS256")
    assert key.alg == "HS256"
    secret = key.cryptography_key()
    assert isinstance(secret, bytes)
    assert len(secret) == 64
    decoded = jws.decode(_token(A1_HEADER, A1_SIGNATURE), key)
    assert decoded.payload == CLAIMS
    assert dict(decoded.header) == {"typ": "JWT", "alg": "HS256"}
    assert key.sign(_input(A1_HEADER)) == _b64(A1_SIGNATURE)


def test_a2_rs256(a2_key: Key) -> None:
    """A.2: RSASSA-PKCS1-v1_5 is deterministic, so the signature is recreated exactly."""
    assert a2_key.sign(_input(A2_HEADER)) == _b64(A2_SIGNATURE)
    public = a2_key.public_key()
    assert jws.verify(_token(A2_HEADER, A2_SIGNATURE), public) == CLAIMS
    assert jws.verify(_token(A2_HEADER, A2_SIGNATURE), a2_key) == CLAIMS


def test_a3_es256() -> None:
    """A.3: ES256 verifies; an EC key without alg takes its curve's alg."""
    assert Key.from_jwk(A3_JWK).alg == "ES256"
    key = Key.from_jwk(A3_JWK, alg="ES256")
    assert jws.verify(_token(A3_HEADER, A3_SIGNATURE), key.public_key()) == CLAIMS
    # ECDSA is randomized: the RFC's signature cannot be recreated, but one made
    # by jwtward with the RFC's key must verify the same way.
    fresh = key.sign(_input(A3_HEADER))
    key.public_key().verify(_input(A3_HEADER), fresh)


def test_a4_es512() -> None:
    """A.4: ES512 on P-521 (66-octet coordinates and a 132-octet ``r || s``), over "Payload"."""
    key = Key.from_jwk(A4_JWK, alg="ES512")
    token = _token(A4_HEADER, A4_SIGNATURE, A4_PAYLOAD)
    assert jws.verify(token, key.public_key()) == b"Payload"
    assert len(_b64(A4_SIGNATURE)) == 132


def test_a5_unsecured_is_refused(a2_key: Key) -> None:
    """A.5: ``alg: none`` is refused whatever key is offered, and no key can be made for it."""
    keys = [
        Key.from_jwk(A1_JWK, alg="HS256"),
        a2_key.public_key(),
        Key.from_jwk(A3_JWK, alg="ES256"),
    ]
    for key in keys:
        with pytest.raises(errors.InvalidHeader):
            jws.verify(A5_TOKEN, key)
    with pytest.raises(errors.UnsupportedAlgorithm):
        Key.from_jwk({"kty": "oct", "k": ""}, alg="none")
    with pytest.raises(errors.UnsupportedAlgorithm):
        Key.generate("none")


@pytest.mark.parametrize(
    ("header", "signature", "payload"),
    [
        (A1_HEADER, A1_SIGNATURE, CLAIMS_PAYLOAD),
        (A2_HEADER, A2_SIGNATURE, CLAIMS_PAYLOAD),
        (A3_HEADER, A3_SIGNATURE, CLAIMS_PAYLOAD),
        (A4_HEADER, A4_SIGNATURE, A4_PAYLOAD),
    ],
    ids=["A.1", "A.2", "A.3", "A.4"],
)
def test_examples_refuse_another_payload(
    a2_key: Key, header: str, signature: str, payload: str
) -> None:
    """Each example's signature is bound to its payload: the A.4 payload breaks A.1-A.3."""
    keys = {
        A1_HEADER: Key.from_jwk(A1_JWK, alg="HS256"),
        A2_HEADER: a2_key.public_key(),
        A3_HEADER: Key.from_jwk(A3_JWK, alg="ES256").public_key(),
        A4_HEADER: Key.from_jwk(A4_JWK, alg="ES512").public_key(),
    }
    other = A4_PAYLOAD if payload == CLAIMS_PAYLOAD else CLAIMS_PAYLOAD
    with pytest.raises(errors.InvalidSignature):
        jws.verify(_token(header, signature, other), keys[header])


# -- RFC 7638 -----------------------------------------------------------------------


def test_rfc7638_thumbprint() -> None:
    """§3.1: the thumbprint ignores alg/kid/use, and is the kid when the JWK has none."""
    key = Key.from_jwk(RFC7517_A1_RSA)
    assert key.kid == "2011-04-29"
    assert key.thumbprint() == RFC7638_THUMBPRINT
    bare = {name: RFC7517_A1_RSA[name] for name in ("kty", "n", "e")}
    assert Key.from_jwk(bare, alg="PS256").kid == RFC7638_THUMBPRINT


# -- RFC 8037 Appendix A --------------------------------------------------------------


def test_rfc8037_keys_and_thumbprint() -> None:
    """A.1/A.2 load as EdDSA keys (curve default); A.3 is their thumbprint and kid."""
    private = Key.from_jwk(RFC8037_PRIVATE)
    public = Key.from_jwk(RFC8037_PUBLIC)
    assert (private.alg, public.alg) == ("EdDSA", "EdDSA")
    assert private.is_private and not public.is_private
    assert private.to_jwk(private=True)["d"] == RFC8037_PRIVATE["d"]
    assert private.public_key().to_jwk()["x"] == RFC8037_PUBLIC["x"]
    assert private.thumbprint() == public.thumbprint() == RFC8037_THUMBPRINT
    assert private.kid == public.kid == RFC8037_THUMBPRINT


def test_rfc8037_sign_and_verify() -> None:
    """A.4: Ed25519 is deterministic, the signature is recreated; A.5: it verifies."""
    private = Key.from_jwk(RFC8037_PRIVATE, alg="EdDSA")
    assert private.sign(_input(RFC8037_HEADER, RFC8037_PAYLOAD)) == _b64(RFC8037_SIGNATURE)
    public = Key.from_jwk(RFC8037_PUBLIC, alg="EdDSA")
    token = _token(RFC8037_HEADER, RFC8037_SIGNATURE, RFC8037_PAYLOAD)
    assert jws.verify(token, public) == b"Example of Ed25519 signing"
    tampered = _token(RFC8037_HEADER, "A" + RFC8037_SIGNATURE[1:], RFC8037_PAYLOAD)
    with pytest.raises(errors.InvalidSignature):
        jws.verify(tampered, public)
