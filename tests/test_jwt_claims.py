"""The claims layer at its exact boundaries: every Policy rule, with an injected clock.

Tokens with claims that ``jwt.encode`` would refuse to write (a string ``exp``,
a bool ``iat``, duplicate names) are made with ``jws.sign`` directly: a
verifier must refuse what a careless or hostile issuer can still produce.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jwtward import Key, KeySet, Policy, jws, jwt
from jwtward.errors import (
    ClaimError,
    ExpiredToken,
    InvalidArgument,
    InvalidClaim,
    InvalidToken,
    InvalidType,
    JWTWardError,
    MalformedToken,
    MissingClaim,
    NotYetValid,
)

T = 1_767_225_600  # 2026-01-01T00:00:00Z, the fixed "now" of these tests
LEEWAY = 30
HOSTILE = "\n<script>alert(1)</script>\x1b[31m"
KEY = Key.generate("HS256", kid="claims-test")


def at(instant: float) -> Callable[[], float]:
    return lambda: instant


def policy(now: float = T, **options: Any) -> Policy:
    return Policy(clock=at(now), **options)


def signed(claims: Mapping[str, Any] | bytes, *, typ: str | None = "JWT") -> str:
    """A token signed by KEY whose payload is exactly ``claims`` (no claim added)."""
    payload = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
    headers = None if typ is None else {"typ": typ}
    return jws.sign(payload, KEY, headers=headers)


def refused(token: str, pol: Policy, error: type[InvalidToken]) -> InvalidToken:
    """Decode must refuse with exactly ``error`` (or a subclass), as a 401 invalid_token."""
    with pytest.raises(error) as caught:
        jwt.decode(token, KEY, pol)
    exc = caught.value
    assert isinstance(exc, InvalidToken)
    assert isinstance(exc, JWTWardError)
    assert exc.error == "invalid_token"
    assert exc.status_code == 401
    return exc


def assert_claim_error(exc: InvalidToken, claim: str) -> None:
    assert isinstance(exc, ClaimError)
    assert exc.claim == claim


def assert_not_echoed(exc: BaseException, value: str = HOSTILE) -> None:
    for text in (str(exc), repr(exc), *(str(arg) for arg in exc.args)):
        assert value not in text
        assert "<script>" not in text


# -- exp ---------------------------------------------------------------------------


def test_exp_accepted_until_just_before_exp_plus_leeway() -> None:
    token = signed({"exp": T})
    just_before = math.nextafter(T + LEEWAY, -math.inf)
    assert jwt.decode(token, KEY, policy(just_before)) == {"exp": T}


def test_exp_refused_exactly_at_exp_plus_leeway() -> None:
    exc = refused(signed({"exp": T}), policy(T + LEEWAY), ExpiredToken)
    assert_claim_error(exc, "exp")


def test_exp_with_zero_leeway_refused_at_exp() -> None:
    token = signed({"exp": T})
    no_leeway = {"leeway": timedelta(0)}
    assert jwt.decode(token, KEY, policy(math.nextafter(T, -math.inf), **no_leeway))
    refused(token, policy(T, **no_leeway), ExpiredToken)


def test_float_exp_boundary() -> None:
    token = signed({"exp": T + 0.5})
    assert jwt.decode(token, KEY, policy(math.nextafter(T + 0.5 + LEEWAY, -math.inf)))
    refused(token, policy(T + 0.5 + LEEWAY), ExpiredToken)


# -- nbf ---------------------------------------------------------------------------


def test_nbf_accepted_from_nbf_minus_leeway() -> None:
    token = signed({"exp": T + 3600, "nbf": T})
    assert jwt.decode(token, KEY, policy(T - LEEWAY))["nbf"] == T


def test_nbf_refused_one_instant_before_nbf_minus_leeway() -> None:
    token = signed({"exp": T + 3600, "nbf": T})
    exc = refused(token, policy(math.nextafter(T - LEEWAY, -math.inf)), NotYetValid)
    assert_claim_error(exc, "nbf")


# -- iat ---------------------------------------------------------------------------


def test_iat_accepted_at_exactly_now_plus_leeway() -> None:
    token = signed({"exp": T + 3600, "iat": T + LEEWAY})
    assert jwt.decode(token, KEY, policy(T))["iat"] == T + LEEWAY


def test_iat_in_the_future_beyond_leeway_refused() -> None:
    token = signed({"exp": T + 3600, "iat": math.nextafter(T + LEEWAY, math.inf)})
    exc = refused(token, policy(T), InvalidClaim)
    assert_claim_error(exc, "iat")
    assert "iat" in exc.claim


def test_iat_in_the_past_accepted() -> None:
    token = signed({"exp": T + 3600, "iat": T - 86400})
    assert jwt.decode(token, KEY, policy(T))["iat"] == T - 86400


# -- max_lifetime ------------------------------------------------------------------


def test_max_lifetime_at_the_limit_accepted() -> None:
    token = signed({"iat": T, "exp": T + 600})
    pol = policy(T, max_lifetime=timedelta(minutes=10))
    assert jwt.decode(token, KEY, pol) == {"iat": T, "exp": T + 600}


def test_max_lifetime_above_the_limit_refused() -> None:
    token = signed({"iat": T, "exp": T + 601})
    exc = refused(token, policy(T, max_lifetime=timedelta(minutes=10)), InvalidClaim)
    assert_claim_error(exc, "exp")


def test_max_lifetime_above_the_limit_by_a_fraction_refused() -> None:
    token = signed({"iat": T, "exp": math.nextafter(T + 600, math.inf)})
    refused(token, policy(T, max_lifetime=timedelta(minutes=10)), InvalidClaim)


@pytest.mark.parametrize("missing", ["iat", "exp"])
def test_max_lifetime_requires_iat_and_exp(missing: str) -> None:
    claims = {"iat": T, "exp": T + 60}
    del claims[missing]
    pol = policy(T, max_lifetime=timedelta(minutes=10), require=(), allow_missing_exp=True)
    exc = refused(signed(claims), pol, MissingClaim)
    assert_claim_error(exc, missing)
    # Without max_lifetime the same policy accepts the token.
    assert jwt.decode(signed(claims), KEY, policy(T, require=(), allow_missing_exp=True))


@pytest.mark.parametrize("value", [timedelta(0), timedelta(seconds=-1), 600, "600"])
def test_max_lifetime_must_be_a_positive_timedelta(value: Any) -> None:
    with pytest.raises(InvalidArgument):
        Policy(max_lifetime=value)


# -- leeway bounds -------------------------------------------------------------------


@pytest.mark.parametrize("leeway", [timedelta(0), timedelta(minutes=5), timedelta(seconds=1)])
def test_leeway_within_bounds_accepted(leeway: timedelta) -> None:
    pol = Policy(leeway=leeway)
    assert pol.leeway_seconds == leeway.total_seconds()


@pytest.mark.parametrize(
    "leeway",
    [
        timedelta(minutes=5, microseconds=1),
        timedelta(hours=1),
        timedelta(microseconds=-1),
        timedelta(seconds=-30),
        30,
        30.0,
        None,
    ],
)
def test_leeway_out_of_bounds_refused(leeway: Any) -> None:
    with pytest.raises(InvalidArgument) as caught:
        Policy(leeway=leeway)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, TypeError)


def test_five_minute_leeway_applies_to_every_time_rule() -> None:
    pol_now = T + 300
    five = {"leeway": timedelta(minutes=5)}
    assert jwt.decode(signed({"exp": T}), KEY, policy(pol_now - 1, **five))
    refused(signed({"exp": T}), policy(pol_now, **five), ExpiredToken)
    assert jwt.decode(signed({"exp": T + 900, "nbf": T + 300}), KEY, policy(T, **five))
    refused(signed({"exp": T + 900, "nbf": T + 301}), policy(T, **five), NotYetValid)
    assert jwt.decode(signed({"exp": T + 900, "iat": T + 300}), KEY, policy(T, **five))
    refused(signed({"exp": T + 900, "iat": T + 301}), policy(T, **five), InvalidClaim)


# -- NumericDate types ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", [True, False, str(T), None, [T], {"t": T}, "", "1e10", HOSTILE])
def test_numeric_date_of_the_wrong_type_refused(name: str, value: Any) -> None:
    claims: dict[str, Any] = {"exp": T + 3600, name: value}
    exc = refused(signed(claims), policy(T), InvalidClaim)
    assert_claim_error(exc, name)
    assert_not_echoed(exc)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_non_finite_numeric_date_cannot_pass_through_json(literal: str) -> None:
    payload = f'{{"exp":{literal}}}'.encode()
    refused(signed(payload), policy(T), MalformedToken)


def test_integer_and_float_numeric_dates_accepted() -> None:
    claims = {"exp": T + 60.25, "nbf": T - 1, "iat": float(T)}
    assert jwt.decode(signed(claims), KEY, policy(T)) == claims


# -- require ----------------------------------------------------------------------


def test_exp_required_by_default() -> None:
    exc = refused(signed({"sub": "alice"}), policy(T), MissingClaim)
    assert_claim_error(exc, "exp")
    assert Policy().required == ("exp",)


def test_default_policy_requires_exp_too() -> None:
    with pytest.raises(MissingClaim) as caught:
        jwt.decode(signed({"sub": "alice"}), KEY)
    assert caught.value.claim == "exp"


def test_require_custom_names() -> None:
    pol = policy(T, require=("exp", "sub", "tenant"))
    assert jwt.decode(signed({"exp": T + 60, "sub": "a", "tenant": "t"}), KEY, pol)
    exc = refused(signed({"exp": T + 60, "sub": "a"}), pol, MissingClaim)
    assert_claim_error(exc, "tenant")


def test_naming_other_claims_keeps_exp_required() -> None:
    """require= adds to exp; it never silently drops it (a token without exp
    would never expire)."""
    for require in ((), ("sub",), ["iss", "sub"]):
        with pytest.raises(MissingClaim) as caught:
            jwt.decode(signed({"sub": "alice", "iss": "me"}), KEY, policy(T, require=require))
        assert caught.value.claim == "exp"


def test_allow_missing_exp_accepts_a_token_without_exp() -> None:
    pol = policy(T, require=(), allow_missing_exp=True)
    assert jwt.decode(signed({"sub": "alice"}), KEY, pol) == {"sub": "alice"}
    with pytest.raises(InvalidArgument):
        Policy(allow_missing_exp=1)  # type: ignore[arg-type]


def test_typ_must_be_ascii_so_unicode_case_folding_cannot_match() -> None:
    """KELVIN SIGN lowercases to 'k': a non-ASCII typ never matches."""
    token = jwt.encode({"exp": T + 60}, KEY, typ="\u212ab+jwt")
    with pytest.raises(InvalidType):
        jwt.decode(token, KEY, policy(T, typ="kb+jwt"))
    with pytest.raises(InvalidArgument):
        Policy(typ="\u212ab+jwt")


def test_required_claim_present_with_null_value_is_present() -> None:
    pol = policy(T, require=("exp", "tenant"))
    assert jwt.decode(signed({"exp": T + 60, "tenant": None}), KEY, pol)["tenant"] is None


@pytest.mark.parametrize("require", ["exp", ["exp", ""], ["exp", 1], [None]])
def test_require_must_be_a_collection_of_names(require: Any) -> None:
    with pytest.raises(InvalidArgument):
        Policy(require=require)


# -- iss -------------------------------------------------------------------------


def test_iss_exact_match() -> None:
    pol = policy(T, issuer="https://issuer.example")
    claims = {"exp": T + 60, "iss": "https://issuer.example"}
    assert jwt.decode(signed(claims), KEY, pol) == claims


@pytest.mark.parametrize(
    "iss",
    ["https://issuer.example/", "HTTPS://issuer.example", "https://issuer.exampl", "", HOSTILE],
)
def test_iss_other_than_configured_refused(iss: str) -> None:
    pol = policy(T, issuer="https://issuer.example")
    exc = refused(signed({"exp": T + 60, "iss": iss}), pol, InvalidClaim)
    assert_claim_error(exc, "iss")
    assert_not_echoed(exc)


def test_iss_from_a_collection() -> None:
    pol = policy(T, issuer=["https://a.example", "https://b.example"])
    for iss in ("https://a.example", "https://b.example"):
        assert jwt.decode(signed({"exp": T + 60, "iss": iss}), KEY, pol)["iss"] == iss
    refused(signed({"exp": T + 60, "iss": "https://c.example"}), pol, InvalidClaim)


def test_missing_iss_when_configured() -> None:
    exc = refused(signed({"exp": T + 60}), policy(T, issuer="https://a.example"), MissingClaim)
    assert_claim_error(exc, "iss")


@pytest.mark.parametrize("iss", [1, True, None, ["https://a.example"], {"iss": "x"}])
def test_non_string_iss_refused(iss: Any) -> None:
    for pol in (policy(T, issuer="https://a.example"), policy(T)):
        exc = refused(signed({"exp": T + 60, "iss": iss}), pol, InvalidClaim)
        assert_claim_error(exc, "iss")


def test_iss_not_checked_when_not_configured() -> None:
    claims = {"exp": T + 60, "iss": "anyone"}
    assert jwt.decode(signed(claims), KEY, policy(T)) == claims


@pytest.mark.parametrize("issuer", ["", [], ["a", ""], [1], b"issuer"])
def test_issuer_configuration_must_be_names(issuer: Any) -> None:
    with pytest.raises(InvalidArgument):
        Policy(issuer=issuer)


# -- aud -------------------------------------------------------------------------


@pytest.mark.parametrize("aud", ["api", ["api"], ["other", "api"], ["api", "other", "third"]])
def test_aud_string_or_list_containing_the_audience(aud: Any) -> None:
    claims = {"exp": T + 60, "aud": aud}
    assert jwt.decode(signed(claims), KEY, policy(T, audience="api")) == claims


def test_aud_list_intersection_with_a_policy_collection() -> None:
    pol = policy(T, audience={"api", "admin"})
    assert jwt.decode(signed({"exp": T + 60, "aud": ["x", "admin"]}), KEY, pol)
    assert jwt.decode(signed({"exp": T + 60, "aud": "api"}), KEY, pol)
    refused(signed({"exp": T + 60, "aud": ["x", "y"]}), pol, InvalidClaim)


@pytest.mark.parametrize("aud", ["API", "ap", "api ", ["other"], HOSTILE, [HOSTILE]])
def test_aud_not_containing_the_audience_refused(aud: Any) -> None:
    exc = refused(signed({"exp": T + 60, "aud": aud}), policy(T, audience="api"), InvalidClaim)
    assert_claim_error(exc, "aud")
    assert_not_echoed(exc)


@pytest.mark.parametrize("aud", ["api", ["api"], HOSTILE])
def test_token_aud_refused_when_the_policy_has_none(aud: Any) -> None:
    exc = refused(signed({"exp": T + 60, "aud": aud}), policy(T), InvalidClaim)
    assert_claim_error(exc, "aud")
    assert_not_echoed(exc)


def test_policy_audience_but_token_without_aud() -> None:
    exc = refused(signed({"exp": T + 60}), policy(T, audience="api"), MissingClaim)
    assert_claim_error(exc, "aud")


@pytest.mark.parametrize("aud", [[], ["api", 1], ["api", None], [["api"]], 1, None, True, {}])
def test_aud_of_the_wrong_shape_refused(aud: Any) -> None:
    for pol in (policy(T, audience="api"), policy(T)):
        exc = refused(signed({"exp": T + 60, "aud": aud}), pol, InvalidClaim)
        assert_claim_error(exc, "aud")


# -- sub and jti -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sub", "jti"])
@pytest.mark.parametrize("value", [1, 1.5, True, None, ["x"], {"x": 1}])
def test_sub_and_jti_must_be_strings(name: str, value: Any) -> None:
    exc = refused(signed({"exp": T + 60, name: value}), policy(T), InvalidClaim)
    assert_claim_error(exc, name)


@pytest.mark.parametrize("name", ["sub", "jti"])
def test_sub_and_jti_strings_accepted(name: str) -> None:
    claims = {"exp": T + 60, name: HOSTILE}
    assert jwt.decode(signed(claims), KEY, policy(T)) == claims


# -- typ ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typ", ["at+jwt", "AT+JWT", "At+Jwt", "application/at+jwt", "APPLICATION/AT+JWT"]
)
def test_typ_accepted_case_insensitively_with_application_prefix(typ: str) -> None:
    token = signed({"exp": T + 60}, typ=typ)
    assert jwt.decode(token, KEY, policy(T, typ="at+jwt")) == {"exp": T + 60}


def test_policy_typ_with_prefix_is_the_same_type() -> None:
    token = signed({"exp": T + 60}, typ="at+jwt")
    assert jwt.decode(token, KEY, policy(T, typ="application/at+jwt"))


@pytest.mark.parametrize(
    "typ", ["JWT", "jwt", "rt+jwt", "at+jwt ", "text/at+jwt", "application/jwt"]
)
def test_other_typ_refused(typ: str) -> None:
    refused(signed({"exp": T + 60}, typ=typ), policy(T, typ="at+jwt"), InvalidType)


def test_absent_typ_refused_when_policy_names_one() -> None:
    token = signed({"exp": T + 60}, typ=None)
    assert "typ" not in jws.unverified_header(token)
    refused(token, policy(T, typ="at+jwt"), InvalidType)


def test_typ_hostile_value_not_echoed() -> None:
    exc = refused(signed({"exp": T + 60}, typ="x" + HOSTILE), policy(T, typ="at+jwt"), InvalidType)
    assert_not_echoed(exc)


def test_any_typ_accepted_without_policy_typ() -> None:
    for typ in ("JWT", "at+jwt", None):
        assert jwt.decode(signed({"exp": T + 60}, typ=typ), KEY, policy(T))


@pytest.mark.parametrize("typ", ["", 1])
def test_policy_typ_must_be_a_non_empty_string(typ: Any) -> None:
    with pytest.raises(InvalidArgument):
        Policy(typ=typ)


# -- clock and policy arguments -----------------------------------------------------


@pytest.mark.parametrize("reading", [math.nan, math.inf, "1767225600", None, True])
def test_policy_clock_must_read_finite_seconds(reading: Any) -> None:
    with pytest.raises(InvalidArgument):
        jwt.decode(signed({"exp": T + 60}), KEY, Policy(clock=lambda: reading))


def test_policy_clock_must_be_callable() -> None:
    with pytest.raises(InvalidArgument):
        Policy(clock=T)  # type: ignore[arg-type]


def test_policy_must_be_a_policy() -> None:
    with pytest.raises(InvalidArgument):
        jwt.decode(signed({"exp": T + 60}), KEY, {"issuer": "x"})  # type: ignore[arg-type]


def test_clock_is_read_per_decode() -> None:
    now = [float(T)]
    pol = Policy(clock=lambda: now[0])
    token = signed({"exp": T + 60})
    assert jwt.decode(token, KEY, pol)
    now[0] = T + 60 + LEEWAY
    with pytest.raises(ExpiredToken):
        jwt.decode(token, KEY, pol)


# -- malformed payloads ---------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b"[1,2]",
        b'"exp"',
        b"1767225600",
        b"null",
        b"",
        b" {}",
        b'{"exp":1}x',
        b'{"exp":1,"exp":9999999999}',
        b'{"exp":9999999999,"sub":"a","sub":"b"}',
        b'{"exp":9999999999,"sub":"\xff"}',
        b'{"exp":9999999999,"sub":"\xc3("}',
        b'{"exp":9999999999,"sub":"\\ud800"}',
        b"\xef\xbb\xbf{}",
        b"{",
    ],
)
def test_payload_not_a_strict_json_object_is_malformed(payload: bytes) -> None:
    refused(signed(payload), Policy(require=(), allow_missing_exp=True), MalformedToken)


def test_payload_depth_bounded() -> None:
    deep: Any = "x"
    for _ in range(40):
        deep = {"n": deep}
    refused(signed({"exp": T + 60, "deep": deep}), policy(T), MalformedToken)


# -- every refusal is an invalid_token and never echoes the value -----------------------


@pytest.mark.parametrize(
    ("claims", "options", "error"),
    [
        ({"exp": HOSTILE}, {}, InvalidClaim),
        ({"exp": T + 60, "iss": HOSTILE}, {"issuer": "a"}, InvalidClaim),
        ({"exp": T + 60, "aud": HOSTILE}, {"audience": "a"}, InvalidClaim),
        ({"exp": T + 60, "aud": [HOSTILE, 1]}, {"audience": "a"}, InvalidClaim),
        ({"exp": T + 60, "sub": [HOSTILE]}, {}, InvalidClaim),
        ({"exp": T + 60, "jti": {HOSTILE: HOSTILE}}, {}, InvalidClaim),
        ({"exp": T - 3600, "sub": HOSTILE}, {}, ExpiredToken),
        ({"exp": T + 60, "nbf": T + 3600, "sub": HOSTILE}, {}, NotYetValid),
        ({"sub": HOSTILE}, {"require": ("exp", "sub")}, MissingClaim),
    ],
)
def test_errors_never_echo_claim_values(
    claims: dict[str, Any], options: dict[str, Any], error: type[InvalidToken]
) -> None:
    exc = refused(signed(claims), policy(T, **options), error)
    assert_not_echoed(exc)


# -- encode -----------------------------------------------------------------------------


def _payload(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    result: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return result


def _header(token: str) -> dict[str, Any]:
    return dict(jws.unverified_header(token))


def test_encode_adds_iat_exp_jti() -> None:
    token = jwt.encode({"sub": "alice"}, KEY, clock=at(T + 0.75))
    claims = jwt.decode(token, KEY, policy(T))
    assert claims["sub"] == "alice"
    assert claims["iat"] == T
    assert claims["exp"] == T + 15 * 60
    assert set(claims) == {"sub", "iat", "exp", "jti"}
    assert _payload(token) == claims


def test_encode_jti_is_128_random_bits_and_distinct() -> None:
    jtis = {jwt.decode(jwt.encode({}, KEY, clock=at(T)), KEY, policy(T))["jti"] for _ in range(200)}
    assert len(jtis) == 200
    for jti in jtis:
        raw = base64.urlsafe_b64decode(jti + "=" * (-len(jti) % 4))
        assert len(raw) == 16


def test_encode_keeps_given_registered_claims() -> None:
    given_claims = {"iat": T - 10, "exp": T + 5, "jti": "fixed", "nbf": T - 10}
    token = jwt.encode(given_claims, KEY, clock=at(T + 1000))
    assert _payload(token) == given_claims


def test_encode_exp_follows_a_given_iat() -> None:
    token = jwt.encode({"iat": T - 100}, KEY, lifetime=timedelta(seconds=60), clock=at(T))
    assert _payload(token)["exp"] == T - 40


def test_encode_lifetime() -> None:
    token = jwt.encode({}, KEY, lifetime=timedelta(hours=2), clock=at(T))
    claims = _payload(token)
    assert claims["exp"] - claims["iat"] == 7200
    assert jwt.decode(token, KEY, policy(T + 7200 + LEEWAY - 1))
    refused(token, policy(T + 7200 + LEEWAY), ExpiredToken)


@pytest.mark.parametrize("lifetime", [timedelta(0), timedelta(seconds=-1), 900, None])
def test_encode_lifetime_must_be_positive_timedelta(lifetime: Any) -> None:
    with pytest.raises(InvalidArgument):
        jwt.encode({}, KEY, lifetime=lifetime)


def test_encode_clock_parameter_sets_iat() -> None:
    for instant in (T, T + 12345, 0):
        assert _payload(jwt.encode({}, KEY, clock=at(instant)))["iat"] == instant


def test_encode_typ_and_kid_headers() -> None:
    assert _header(jwt.encode({}, KEY)) == {"alg": "HS256", "kid": "claims-test", "typ": "JWT"}
    token = jwt.encode({}, KEY, typ="at+jwt", clock=at(T))
    assert _header(token)["typ"] == "at+jwt"
    assert jwt.decode(token, KEY, policy(T, typ="at+jwt"))


def test_encode_extra_headers_and_typ_conflict() -> None:
    token = jwt.encode({}, KEY, headers={"cty": "x", "typ": "JWT"})
    assert _header(token) == {"alg": "HS256", "kid": "claims-test", "typ": "JWT", "cty": "x"}
    with pytest.raises(InvalidArgument):
        jwt.encode({}, KEY, typ="at+jwt", headers={"typ": "JWT"})
    with pytest.raises(InvalidArgument):
        jwt.encode({}, KEY, headers={"typ": "at+jwt"})


@pytest.mark.parametrize("typ", ["", 1, None])
def test_encode_typ_must_be_a_non_empty_string(typ: Any) -> None:
    with pytest.raises(InvalidArgument):
        jwt.encode({}, KEY, typ=typ)


@pytest.mark.parametrize(
    "claims",
    [
        {"x": object()},
        {"x": {1, 2}},
        {"x": b"bytes"},
        {"x": math.nan},
        {"x": math.inf},
        {"x": "\ud800"},
        {1: "x"},
        {None: "x"},
        {"nested": {1: "x"}},
        {("a", "b"): "x"},
    ],
)
def test_encode_refuses_claims_json_cannot_carry(claims: dict[Any, Any]) -> None:
    with pytest.raises(InvalidArgument) as caught:
        jwt.encode(claims, KEY)
    assert isinstance(caught.value, TypeError)
    assert isinstance(caught.value, ValueError)


def test_encode_refuses_a_cycle() -> None:
    claims: dict[str, Any] = {}
    claims["self"] = claims
    with pytest.raises(InvalidArgument):
        jwt.encode(claims, KEY)


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": "1767225600"},
        {"exp": True},
        {"exp": math.nan},
        {"nbf": None},
        {"iat": [T]},
        {"iat": False},
        {"iss": 1},
        {"sub": 12345},
        {"jti": None},
        {"aud": 1},
        {"aud": []},
        {"aud": ["a", 1]},
        {"aud": ("a",)},
    ],
)
def test_encode_refuses_registered_claims_of_the_wrong_type(claims: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument) as caught:
        jwt.encode(claims, KEY)
    assert isinstance(caught.value, (TypeError, ValueError))


@pytest.mark.parametrize("claims", [[("sub", "x")], "sub", None])
def test_encode_claims_must_be_a_mapping(claims: Any) -> None:
    with pytest.raises(InvalidArgument):
        jwt.encode(claims, KEY)


def test_encode_does_not_modify_the_callers_claims() -> None:
    claims = {"sub": "alice"}
    jwt.encode(claims, KEY)
    assert claims == {"sub": "alice"}


def test_encode_with_a_public_key_refused() -> None:
    signing = Key.generate("ES256")
    with pytest.raises(JWTWardError):
        jwt.encode({}, signing.public_key())


def test_decode_with_a_keyset_picks_by_kid() -> None:
    other = Key.generate("HS256", kid="other")
    token = jwt.encode({}, KEY, clock=at(T))
    assert jwt.decode(token, KeySet([other, KEY]), policy(T))["iat"] == T


# -- property: decode accepts exactly what encode produced ----------------------------------

ISSUER = "https://issuer.example"
AUDIENCE = "https://api.example"
REGISTERED = {"iss", "sub", "aud", "exp", "nbf", "iat", "jti"}

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(st.characters(exclude_categories=("Cs",)), max_size=8), inner, max_size=4
        )
    ),
    max_leaves=12,
)
extra_claims = st.dictionaries(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=10).filter(
        lambda name: name not in REGISTERED
    ),
    json_values,
    max_size=6,
)


scenarios = st.fixed_dictionaries(
    {
        "extra": extra_claims,
        "sub": st.none() | st.text(st.characters(exclude_categories=("Cs",)), max_size=20),
        "aud_list": st.booleans(),
        "issued": st.integers(min_value=0, max_value=4_000_000_000),
        "issued_fraction": st.floats(min_value=0, max_value=0.999),
        "lifetime": st.integers(min_value=1, max_value=86_400),
        "nbf_offset": st.none() | st.integers(min_value=-600, max_value=600),
        "offset": st.floats(min_value=-200, max_value=86_700, allow_nan=False),
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios)
def test_decode_accepts_exactly_what_encode_produced(scenario: dict[str, Any]) -> None:
    """Inside the validity window decode returns exactly the claims encode was given
    (plus iat, exp and jti); outside it, the error names the rule that failed."""
    extra: dict[str, Any] = scenario["extra"]
    sub: str | None = scenario["sub"]
    issued: int = scenario["issued"]
    lifetime: int = scenario["lifetime"]
    nbf_offset: int | None = scenario["nbf_offset"]
    aud_list, issued_fraction, offset = (
        scenario["aud_list"],
        scenario["issued_fraction"],
        scenario["offset"],
    )
    claims: dict[str, Any] = {**extra, "iss": ISSUER}
    claims["aud"] = ["other", AUDIENCE] if aud_list else AUDIENCE
    if sub is not None:
        claims["sub"] = sub
    if nbf_offset is not None:
        claims["nbf"] = issued + nbf_offset
    token = jwt.encode(
        claims, KEY, lifetime=timedelta(seconds=lifetime), clock=at(issued + issued_fraction)
    )
    now = issued + offset
    pol = Policy(issuer=ISSUER, audience=AUDIENCE, clock=at(now))
    exp = issued + lifetime
    if now >= exp + LEEWAY:
        with pytest.raises(ExpiredToken):
            jwt.decode(token, KEY, pol)
    elif nbf_offset is not None and now < issued + nbf_offset - LEEWAY:
        with pytest.raises(NotYetValid):
            jwt.decode(token, KEY, pol)
    elif issued > now + LEEWAY:
        with pytest.raises(InvalidClaim) as caught:
            jwt.decode(token, KEY, pol)
        assert caught.value.claim == "iat"
    else:
        decoded = jwt.decode(token, KEY, pol)
        jti = decoded.pop("jti")
        assert isinstance(jti, str)
        assert len(jti) == 22
        assert decoded == {**claims, "iat": issued, "exp": exp}
        # A verifier for another issuer or audience refuses the same token.
        with pytest.raises(InvalidClaim):
            jwt.decode(
                token, KEY, Policy(issuer="https://other.example", audience=AUDIENCE, clock=at(now))
            )
        with pytest.raises(InvalidClaim):
            jwt.decode(
                token, KEY, Policy(issuer=ISSUER, audience="https://other.example", clock=at(now))
            )


# -- found in review: inputs that used to escape as non-JWTWardError -------------


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
def test_huge_integer_dates_are_invalid_claims(claim: str) -> None:
    key = Key.generate("HS256")
    token = jws.sign(json.dumps({claim: 10**400, "exp": 2**31}).encode(), key)
    if claim == "exp":
        token = jws.sign(json.dumps({"exp": 10**400}).encode(), key)
    with pytest.raises(InvalidClaim) as info:
        jwt.decode(token, key, Policy(clock=lambda: 1_000_000))
    assert info.value.claim == claim


@pytest.mark.parametrize(
    "clock", [lambda: float("nan"), lambda: float("inf"), lambda: None, lambda: "5", 5]
)
def test_encode_refuses_a_broken_clock(clock: Any) -> None:
    with pytest.raises(InvalidArgument):
        jwt.encode({}, Key.generate("HS256"), clock=clock)


@pytest.mark.parametrize("headers", [[("cty", "x")], "cty"])
def test_encode_refuses_headers_that_are_not_a_mapping(headers: Any) -> None:
    with pytest.raises(InvalidArgument):
        jwt.encode({}, Key.generate("HS256"), headers=headers)


@pytest.mark.parametrize(
    "options",
    [{"issuer": 1}, {"audience": [["a"]]}, {"audience": []}, {"require": 5}, {"require": None}],
)
def test_policy_refuses_malformed_options(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        Policy(**options)
