"""The JWA registry's own constants, checked against pyca/cryptography."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from jwtward.errors import UnsupportedAlgorithm
from jwtward.jose.algorithms import ALGORITHMS, algorithm
from jwtward.jose.material import EC_CURVES
from jwtward.jose.signers import CURVE_ORDERS


@pytest.mark.parametrize("crv", sorted(CURVE_ORDERS))
def test_curve_order_is_the_group_order(crv: str) -> None:
    """n - 1 is the largest private scalar and n is out of range: the ECDSA
    range check (0 < r, s < n) depends on this constant being exact."""
    curve_cls, size = EC_CURVES[crv]
    order = CURVE_ORDERS[crv]
    ec.derive_private_key(order - 1, curve_cls())
    with pytest.raises(ValueError):
        ec.derive_private_key(order, curve_cls())
    assert order.bit_length() <= size * 8


@pytest.mark.parametrize(
    "name", ["none", "None", "NONE", "nOnE", "RSA1_5", "PBES2-HS256+A128KW", "HS1", "", "ES521"]
)
def test_names_outside_the_registry_are_refused(name: str) -> None:
    assert name not in ALGORITHMS
    with pytest.raises(UnsupportedAlgorithm):
        algorithm(name)


def test_every_entry_is_sig_or_enc_with_a_key_type() -> None:
    for name, spec in ALGORITHMS.items():
        assert spec.name == name
        assert spec.use in ("sig", "enc")
        assert spec.ktys
        if spec.is_signature and spec.ktys == ("oct",):
            assert spec.min_secret >= 32
