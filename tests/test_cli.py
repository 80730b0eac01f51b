"""The ``jwtward`` command line (issue 7): every command, its exit codes and its error lines.

Most tests call :func:`jwtward.cli.main` in-process (fast, stdin replaced); a
few run ``python -m jwtward`` as a subprocess, because only a real process
shows the exit status and what reaches the terminal when something fails.
Exit codes are the contract scripts rely on: 0 success, 1 a refused token
or failed check, 2 a usage or configuration error.

Every test gets its own data directory and a working directory of its own,
with no ``JWTWARD_*`` variable inherited from the shell, so nothing leaks
between tests or into the repository.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from jwtward.cli import main
from jwtward.codecs import b64encode
from jwtward.errors import MalformedToken
from jwtward.server.config import load_config
from jwtward.server.passwords import PasswordHasher
from jwtward.server.runtime import Backends, open_backends
from jwtward.tokens import TokenService

PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
ERROR_PREFIX = "jwtward: error: "


@dataclass(frozen=True)
class Outcome:
    """What one command did: its exit code and what it printed."""

    code: int
    out: str
    err: str


class Cli:
    """Runs ``jwtward`` in-process with a given stdin and captures its output."""

    def __init__(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, data_dir: Path
    ) -> None:
        self._capsys = capsys
        self._monkeypatch = monkeypatch
        self.data_dir = data_dir

    def __call__(self, *argv: str, stdin: str = "") -> Outcome:
        self._capsys.readouterr()  # drop anything printed before the command
        self._monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(list(argv))
        captured = self._capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    def data(self, *argv: str, stdin: str = "", data_dir: Path | None = None) -> Outcome:
        """The command against this test's data directory (or ``data_dir``)."""
        where = self.data_dir if data_dir is None else data_dir
        return self(*argv, "--data-dir", str(where), stdin=stdin)

    def issue(self, subject: str, *extra: str, data_dir: Path | None = None) -> dict[str, Any]:
        result = self.data("token", "issue", subject, *extra, data_dir=data_dir)
        assert result.code == 0, result.err
        pair: dict[str, Any] = json.loads(result.out)
        return pair

    def access_token(self, subject: str, data_dir: Path | None = None) -> str:
        token: str = self.issue(subject, data_dir=data_dir)["access_token"]
        return token


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ``JWTWARD_*`` setting from the shell; a working directory of the test's own."""
    for name in list(os.environ):
        if name.startswith("JWTWARD_"):
            monkeypatch.delenv(name)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Cli:
    return Cli(capsys, monkeypatch, tmp_path / "data")


@pytest.fixture
def ready(cli: Cli) -> Cli:
    """A data directory whose master key and signing key exist already.

    The first command in a directory warns (once) that it made a master key;
    starting from a made directory keeps that warning out of the error checks.
    """
    assert cli.data("keys", "list").code == 0
    return cli


@pytest.fixture
def backends(ready: Cli) -> Iterator[Backends]:
    """The same stores the CLI opens, for checks the CLI cannot make itself."""
    opened = open_backends(load_config(data_dir=str(ready.data_dir)))
    try:
        yield opened
    finally:
        opened.close()


def assert_error(result: Outcome, code: int, *fragments: str) -> None:
    """A failure: the exit code, and exactly one readable stderr line with no traceback."""
    assert result.code == code, (result.code, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith(ERROR_PREFIX), lines[0]
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


DEFAULT_PASSWORD = "correct horse"


def add_user(cli: Cli, name: str, password: str = DEFAULT_PASSWORD, *extra: str) -> None:
    result = cli.data("users", "add", name, "--password-stdin", *extra, stdin=password + "\n")
    assert result.code == 0, result.err
    assert result.out == f"added user {name.casefold()}\n"


def user_lines(cli: Cli) -> list[str]:
    result = cli.data("users", "list")
    assert result.code == 0, result.err
    return result.out.splitlines()


def key_rows(cli: Cli) -> list[list[str]]:
    result = cli.data("keys", "list")
    assert result.code == 0, result.err
    return [line.split("\t") for line in result.out.splitlines()]


def active_kids(cli: Cli) -> list[str]:
    return [row[0] for row in key_rows(cli) if row[2] == "active"]


def password_matches(backends: Backends, name: str, password: str) -> bool:
    user = backends.users.get(name)
    assert user is not None
    return PasswordHasher().verify(user.password_hash, password).ok


def decode_sections(out: str) -> tuple[str, dict[str, Any], dict[str, Any], list[str]]:
    """Split ``token decode`` output into banner, header, claims and the time lines."""
    banner, rest = out.split("\n", 1)
    assert rest.startswith("header:\n"), out
    header_text, rest = rest.removeprefix("header:\n").split("claims:\n", 1)
    claims_text, times = rest.split("\n}\n", 1)
    return banner, json.loads(header_text), json.loads(claims_text + "\n}"), times.splitlines()


def backdated_service(backends: Backends, seconds: float) -> TokenService:
    """The store's own service, with a clock ``seconds`` in the past (for expired tokens)."""
    return TokenService(
        backends.ring(),
        store=backends.token_store,
        clock=lambda: time.time() - seconds,
        **backends.service_options(),
    )


# -- help and usage errors ------------------------------------------------------------------------

COMMAND_PATHS = [
    (),
    ("serve",),
    ("users",),
    ("users", "add"),
    ("users", "list"),
    ("users", "disable"),
    ("users", "enable"),
    ("users", "passwd"),
    ("keys",),
    ("keys", "list"),
    ("keys", "rotate"),
    ("keys", "revoke"),
    ("keys", "export-jwks"),
    ("token",),
    ("token", "issue"),
    ("token", "verify"),
    ("token", "decode"),
    ("purge",),
]


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda p: " ".join(p) or "jwtward")
def test_help_for_every_command(
    cli: Cli, capsys: pytest.CaptureFixture[str], path: tuple[str, ...]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli(*path, "--help")
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(" ".join(("usage: jwtward", *path)))
    assert "-h, --help" in out


@pytest.mark.parametrize(
    ("path", "listed"),
    [
        ((), ("serve", "users", "keys", "token", "purge")),
        (("users",), ("add", "list", "disable", "enable", "passwd")),
        (("keys",), ("list", "rotate", "revoke", "export-jwks")),
        (("token",), ("issue", "verify", "decode")),
        (("users", "add"), ("--password-stdin", "--data-dir", "--store")),
        (("users", "passwd"), ("--password-stdin", "--data-dir")),
        (("token", "verify"), ("--jwks", "--data-dir")),
        (("token", "decode"), ("--jwks", "--key")),
        (("serve",), ("--host", "--port", "--data-dir", "--store")),
    ],
)
def test_help_lists_the_subcommands_and_options(
    cli: Cli, capsys: pytest.CaptureFixture[str], path: tuple[str, ...], listed: tuple[str, ...]
) -> None:
    with pytest.raises(SystemExit):
        cli(*path, "--help")
    out = capsys.readouterr().out
    for word in listed:
        assert word in out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["users"],
        ["users", "add"],
        ["users", "add", "alice", "--bogus"],
        ["keys", "revoke"],
        ["token", "verify"],
        ["serve", "--port", "abc"],
        ["serve", "--log-level", "LOUD"],
    ],
    ids=" ".join,
)
def test_usage_errors_exit_2(cli: Cli, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli(*argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: jwtward" in err
    assert "Traceback" not in err


# -- the data directory ---------------------------------------------------------------------------


def test_master_key_is_made_0600_once_and_reused(cli: Cli) -> None:
    assert not cli.data_dir.exists()
    assert cli.data("users", "list").code == 0
    master = cli.data_dir / "master.key"
    assert stat.S_IMODE(master.stat().st_mode) == 0o600
    first = master.read_bytes()
    assert len(first.strip()) == 43  # 32 random bytes, base64url without padding
    assert stat.S_IMODE((cli.data_dir / "jwtward.sqlite3").stat().st_mode) == 0o600

    token = cli.access_token("alice")
    # Each command is a new process start: the sealed signing key only opens
    # again (and the token only verifies) if the same master key is read back.
    assert cli.data("token", "verify", token).code == 0
    assert len(key_rows(cli)) == 1
    assert master.read_bytes() == first
    assert stat.S_IMODE(master.stat().st_mode) == 0o600


def test_store_option_puts_the_database_where_it_says(cli: Cli, tmp_path: Path) -> None:
    database = tmp_path / "elsewhere" / "x.db"
    store = f"sqlite:///{database}"
    result = cli.data("users", "add", "carol", "--password-stdin", "--store", store, stdin="pw\n")
    assert result.code == 0, result.err
    assert database.exists()
    assert not (cli.data_dir / "jwtward.sqlite3").exists()
    assert (cli.data_dir / "master.key").exists()  # the sealing secret stays in the data dir

    listed = cli.data("users", "list", "--store", store)
    assert listed.out.startswith("carol\tenabled")
    assert user_lines(cli) == []  # the default store of the data dir knows no carol

    token = cli.access_token("carol")
    assert cli.data("token", "verify", token, "--store", store).code == 1  # other store, other key
    pair = json.loads(cli.data("token", "issue", "carol", "--store", store).out)
    assert cli.data("token", "verify", pair["access_token"], "--store", store).code == 0


# -- users ----------------------------------------------------------------------------------------


def test_users_add_and_list(ready: Cli, backends: Backends) -> None:
    add_user(
        ready, "alice", "s3cret pass", "--role", "admin", "--role", "ops", "--scope", "read write"
    )
    add_user(ready, "Bob")  # stored in its normalized form
    assert user_lines(ready) == [
        "alice\tenabled\troles=admin,ops\tscope=read write",
        "bob\tenabled\troles=-\tscope=-",
    ]
    assert password_matches(backends, "alice", "s3cret pass")
    assert not password_matches(backends, "alice", "s3cret pas")


@pytest.mark.parametrize(
    ("stdin", "password"),
    [
        ("hunter2 x\n", "hunter2 x"),
        ("hunter2 x", "hunter2 x"),
        ("  spaced out  \n", "  spaced out  "),
        ("first line\nsecond line\n", "first line"),
    ],
    ids=["newline", "no-newline", "spaces-kept", "first-line-only"],
)
def test_password_from_stdin(ready: Cli, backends: Backends, stdin: str, password: str) -> None:
    result = ready.data("users", "add", "dora", "--password-stdin", stdin=stdin)
    assert result.code == 0, result.err
    assert password_matches(backends, "dora", password)
    assert not password_matches(backends, "dora", password + "\n")


@pytest.mark.parametrize("stdin", ["", "\n"], ids=["nothing", "empty-line"])
def test_empty_password_is_refused(ready: Cli, stdin: str) -> None:
    result = ready.data("users", "add", "erin", "--password-stdin", stdin=stdin)
    assert_error(result, 2, "empty")
    assert user_lines(ready) == []


def test_interactive_password_is_read_without_echo(
    ready: Cli, backends: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter(["typed secret", "typed secret", "one", "another"])
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    result = ready.data("users", "add", "fay", stdin="not this\n")
    assert result.code == 0, result.err
    assert len(prompts) == 2  # asked twice, without echo, stdin untouched
    assert password_matches(backends, "fay", "typed secret")

    assert_error(ready.data("users", "passwd", "fay"), 2, "differ")
    assert password_matches(backends, "fay", "typed secret")


def test_duplicate_user(ready: Cli) -> None:
    add_user(ready, "alice")
    # UserExists is a JWTWardError, not a usage error: the CLI reports a failed check (1).
    result = ready.data("users", "add", "ALICE", "--password-stdin", stdin="other\n")
    assert_error(result, 1, "alice", "already exists")
    assert user_lines(ready) == ["alice\tenabled\troles=-\tscope=-"]


@pytest.mark.parametrize("action", ["disable", "enable", "passwd"])
def test_unknown_user_is_a_usage_error(ready: Cli, action: str) -> None:
    extra = ["--password-stdin"] if action == "passwd" else []
    result = ready.data("users", action, "ghost", *extra, stdin="pw\n")
    assert_error(result, 2, "no user ghost")


@pytest.mark.parametrize("name", ["a:b", "tab\there", "   "])
def test_invalid_username_is_a_usage_error(ready: Cli, name: str) -> None:
    result = ready.data("users", "add", name, "--password-stdin", stdin="pw\n")
    assert_error(result, 2, "username")
    assert user_lines(ready) == []


def test_disable_ends_the_users_sessions(ready: Cli) -> None:
    add_user(ready, "alice")
    old = ready.access_token("alice")
    assert ready.data("token", "verify", old).code == 0

    result = ready.data("users", "disable", "alice")
    assert result == Outcome(0, "disabled user alice\n", "")
    assert user_lines(ready) == ["alice\tdisabled\troles=-\tscope=-"]
    assert_error(ready.data("token", "verify", old), 1)

    assert ready.data("users", "enable", "alice").out == "enabled user alice\n"
    assert user_lines(ready) == ["alice\tenabled\troles=-\tscope=-"]
    assert ready.data("token", "verify", old).code == 1  # enabling does not revive old tokens
    assert ready.data("token", "verify", ready.access_token("alice")).code == 0


def test_passwd_changes_the_password_and_ends_sessions(ready: Cli, backends: Backends) -> None:
    add_user(ready, "gus", "old password")
    old = ready.access_token("gus")
    result = ready.data("users", "passwd", "gus", "--password-stdin", stdin="new password\n")
    assert result.code == 0, result.err
    assert "gus" in result.out
    assert password_matches(backends, "gus", "new password")
    assert not password_matches(backends, "gus", "old password")
    assert_error(ready.data("token", "verify", old), 1)


# -- keys -----------------------------------------------------------------------------------------


def test_keys_list_shows_one_active_key(ready: Cli) -> None:
    rows = key_rows(ready)
    assert len(rows) == 1
    kid, alg, state, activates, retires, expires = rows[0]
    assert (alg, state) == ("ES256", "active")
    assert re.fullmatch(r"activates=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", activates)
    assert (retires, expires) == ("retires=-", "expires=-")
    header = decode_sections(ready("token", "decode", ready.access_token("x")).out)[1]
    assert header["kid"] == kid


def test_keys_rotate_makes_a_new_active_key(ready: Cli) -> None:
    (old_kid,) = active_kids(ready)
    before = ready.access_token("alice")
    result = ready.data("keys", "rotate")
    assert result.code == 0, result.err
    new_kid = result.out.removeprefix("new active key ").strip()
    assert new_kid != old_kid
    assert active_kids(ready) == [new_kid]
    states = {row[0]: row[2] for row in key_rows(ready)}
    assert states[old_kid] == "retired"
    # A retired key still verifies what it signed until those tokens expire.
    assert ready.data("token", "verify", before).code == 0
    header = decode_sections(ready("token", "decode", ready.access_token("alice")).out)[1]
    assert header["kid"] == new_kid


def test_keys_revoke(ready: Cli) -> None:
    (kid,) = active_kids(ready)
    token = ready.access_token("alice")
    result = ready.data("keys", "revoke", kid)
    assert result == Outcome(0, f"revoked key {kid}\n", "")
    states = {row[0]: row[2] for row in key_rows(ready)}
    assert states[kid] == "revoked"
    assert len(active_kids(ready)) == 1  # another key signs at once
    assert kid not in active_kids(ready)
    assert_error(ready.data("token", "verify", token), 1)
    jwks = json.loads(ready.data("keys", "export-jwks").out)
    assert kid not in {jwk["kid"] for jwk in jwks["keys"]}


def test_keys_revoke_unknown_kid(ready: Cli) -> None:
    # Naming a key the ring does not hold is a usage error, as naming an unknown user is.
    assert_error(ready.data("keys", "revoke", "no-such-kid"), 2, "kid")
    assert len(key_rows(ready)) == 1


def test_export_jwks_is_public_only(ready: Cli) -> None:
    ready.data("keys", "rotate")
    result = ready.data("keys", "export-jwks")
    assert result.code == 0, result.err
    document = json.loads(result.out)
    assert set(document) == {"keys"}
    assert {jwk["kid"] for jwk in document["keys"]} == {row[0] for row in key_rows(ready)}
    for jwk in document["keys"]:
        assert not PRIVATE_JWK_MEMBERS & set(jwk), jwk
        assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-256", "ES256", "sig")


# -- tokens ---------------------------------------------------------------------------------------


def test_token_issue_prints_a_json_pair(ready: Cli) -> None:
    pair = ready.issue(
        "alice",
        "--scope",
        "read write",
        "--claim",
        "role=admin",
        "--claim",
        "level=3",
        "--claim",
        'tags=["a","b"]',
    )
    assert pair["token_type"] == "Bearer"
    assert pair["expires_in"] == 900
    assert pair["access_token"].count(".") == 2
    assert pair["refresh_token"].count(".") == 2
    assert pair["refresh_expires_at"] > time.time() + 13 * 86400

    verified = ready.data("token", "verify", pair["access_token"])
    assert verified.code == 0
    assert "revocation checked" in verified.err
    claims = json.loads(verified.out)
    assert claims["sub"] == "alice"
    assert (claims["role"], claims["level"], claims["tags"]) == ("admin", 3, ["a", "b"])
    assert claims["scope"] == "read write"


@pytest.mark.parametrize("claim", ["novalue", "=x"])
def test_token_issue_bad_claim_is_a_usage_error(ready: Cli, claim: str) -> None:
    assert_error(ready.data("token", "issue", "alice", "--claim", claim), 2, "--claim")


def test_token_verify_from_stdin(ready: Cli) -> None:
    token = ready.access_token("alice")
    result = ready.data("token", "verify", "-", stdin=token + "\n")
    assert result.code == 0, result.err
    assert json.loads(result.out)["sub"] == "alice"


@pytest.mark.parametrize("garbage", ["garbage", "a.b.c", "", "x" * 100])
def test_token_verify_garbage(ready: Cli, garbage: str) -> None:
    assert_error(ready.data("token", "verify", garbage), 1)


def test_token_verify_expired(ready: Cli, backends: Backends) -> None:
    token = backdated_service(backends, 3600).issue("alice").access_token
    assert_error(ready.data("token", "verify", token), 1, "expired")
    _, _, claims, times = decode_sections(ready("token", "decode", token).out)
    assert claims["exp"] < time.time()
    (exp_line,) = [line for line in times if line.startswith("exp: ")]
    assert re.search(r", 4[45]m \d+s ago\)$", exp_line), exp_line


def test_token_verify_refuses_another_stores_key(ready: Cli, tmp_path: Path) -> None:
    foreign = ready.access_token("alice", data_dir=tmp_path / "other")
    assert_error(ready.data("token", "verify", foreign), 1)


def test_token_verify_refuses_a_revoked_token(ready: Cli, backends: Backends) -> None:
    token = ready.access_token("alice")
    backends.token_service().revoke(token)
    assert_error(ready.data("token", "verify", token), 1)


def test_token_verify_with_exported_jwks(ready: Cli, tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(ready.data("keys", "export-jwks").out)
    token = ready.access_token("alice")
    policy = ["--audience", "jwtward", "--issuer", "http://127.0.0.1:8000", "--typ", "at+jwt"]
    result = ready("token", "verify", token, "--jwks", str(jwks), *policy)
    assert result.code == 0, result.err
    assert json.loads(result.out)["sub"] == "alice"
    assert "revocation is not" in result.err  # says what it could not check

    assert_error(ready("token", "verify", token, "--jwks", str(jwks), "--audience", "other"), 1)
    foreign = ready.access_token("alice", data_dir=tmp_path / "other")
    assert_error(ready("token", "verify", foreign, "--jwks", str(jwks), *policy), 1)


def test_token_decode_unverified(ready: Cli) -> None:
    token = ready.access_token("alice")
    result = ready("token", "decode", token)
    assert result.code == 0, result.err
    banner, header, claims, times = decode_sections(result.out)
    assert "UNVERIFIED" in banner
    assert "VERIFIED" not in banner.replace("UNVERIFIED", "")
    assert (header["alg"], header["typ"]) == ("ES256", "at+jwt")
    assert claims["sub"] == "alice"
    moments = dict(line.split(": ", 1) for line in times)
    assert set(moments) == {"iat", "exp"}
    exp_text = datetime.fromtimestamp(claims["exp"], UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert moments["exp"].startswith(f"{claims['exp']} ({exp_text}, in 1")
    assert re.search(r", in 1[45]m \d+s\)$", moments["exp"]), moments["exp"]


@pytest.mark.parametrize("option", ["--jwks", "--key"])
def test_token_decode_verified(ready: Cli, tmp_path: Path, option: str) -> None:
    document = json.loads(ready.data("keys", "export-jwks").out)
    source = tmp_path / "keys.json"
    source.write_text(json.dumps(document if option == "--jwks" else document["keys"][0]))
    token = ready.access_token("alice")
    result = ready("token", "decode", token, option, str(source))
    assert result.code == 0, result.err
    banner, _, claims, _ = decode_sections(result.out)
    assert "SIGNATURE VERIFIED" in banner
    assert "UNVERIFIED" not in result.out
    assert claims["sub"] == "alice"

    foreign = ready.access_token("alice", data_dir=tmp_path / "other")
    assert_error(ready("token", "decode", foreign, option, str(source)), 1)


@pytest.mark.parametrize("garbage", ["garbage", "a.@@@.c", "e30.e30"])
def test_token_decode_garbage(ready: Cli, garbage: str) -> None:
    result = ready("token", "decode", garbage)
    assert_error(result, 1)
    assert result.out == ""


def test_token_decode_shows_out_of_range_times(ready: Cli) -> None:
    """An unverified token can carry any number; decode must still show it."""
    header = "eyJhbGciOiJFUzI1NiJ9"  # {"alg":"ES256"}
    payload = b64encode(b'{"sub":"x","exp":1e20,"iat":-1e300,"nbf":99999999999999}')
    result = ready("token", "decode", f"{header}.{payload}.c2ln")
    assert result.code == 0, result.err
    _, _, claims, times = decode_sections(result.out)
    assert claims["sub"] == "x"
    assert len(times) == 3


# -- purge ----------------------------------------------------------------------------------------


def test_purge_prints_the_count(ready: Cli, backends: Backends) -> None:
    ready.access_token("alice")  # a live session: purge must keep it
    backdated_service(backends, 40 * 86400).issue("old")
    first = ready.data("purge")
    assert first.code == 0, first.err
    count = int(re.fullmatch(r"removed (\d+) expired entries\n", first.out)[1])  # type: ignore[index]
    assert count >= 2  # at least the old refresh record and its session
    assert ready.data("purge").out == "removed 0 expired entries\n"


# -- configuration and errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("JWTWARD_ALGORITHM", "HS256"),
        ("JWTWARD_PORT", "abc"),
        ("JWTWARD_STORE", "ftp://example.invalid/x"),
        ("JWTWARD_ACCESS_LIFETIME", "5"),
    ],
)
def test_invalid_configuration_exits_2_naming_the_setting(
    ready: Cli, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    assert_error(ready.data("keys", "list"), 2, variable)


def test_debug_raises_the_exception(ready: Cli) -> None:
    with pytest.raises(MalformedToken):
        ready("--debug", "token", "decode", "garbage")


def test_json_file_errors_are_one_line_usage_errors(ready: Cli, tmp_path: Path) -> None:
    token = ready.access_token("alice")
    assert_error(ready("token", "decode", token, "--jwks", str(tmp_path / "missing.json")), 2)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert_error(ready("token", "decode", token, "--jwks", str(broken)), 2)


# -- as a process ---------------------------------------------------------------------------------


def run_module(
    cwd: Path, *argv: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m jwtward`` with no inherited ``JWTWARD_*`` setting (but those of ``env``)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("JWTWARD_")}
    environment.update(env or {})
    return subprocess.run(  # noqa: S603 - our own interpreter running our own package
        [sys.executable, "-m", "jwtward", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=60,
        check=False,
    )


def test_process_stable_user_add_and_exit_codes(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    added = run_module(
        tmp_path,
        "users",
        "add",
        "NAME",
        "--password-stdin",
        "--data-dir",
        data,
        stdin="pw from a pipe\n",
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout == "added user name\n"

    duplicate = run_module(
        tmp_path, "users", "add", "name", "--password-stdin", "--data-dir", data, stdin="x\n"
    )
    assert duplicate.returncode == 1
    assert duplicate.stderr.splitlines() == ["jwtward: error: a user named 'name' already exists"]

    usage = run_module(tmp_path, "users", "add")
    assert usage.returncode == 2
    assert "usage: jwtward users add" in usage.stderr
    assert "Traceback" not in usage.stderr

    helped = run_module(tmp_path, "token", "decode", "--help")
    assert helped.returncode == 0
    assert helped.stdout.startswith("usage: jwtward token decode")


def test_process_errors_are_one_line_unless_debug(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    refused = run_module(tmp_path, "token", "verify", "not.a.token", "--data-dir", data)
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    errors = [line for line in refused.stderr.splitlines() if line.startswith(ERROR_PREFIX)]
    assert len(errors) == 1
    # Besides the error, only the first start's warning about the new master key.
    others = [line for line in refused.stderr.splitlines() if not line.startswith(ERROR_PREFIX)]
    assert all("master key" in line for line in others), others

    garbage = run_module(tmp_path, "token", "decode", "garbage")
    assert garbage.returncode == 1
    assert garbage.stderr.splitlines() == [
        "jwtward: error: a compact JWS has 3 segments, this token has 1"
    ]

    debug = run_module(tmp_path, "--debug", "token", "decode", "garbage")
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "MalformedToken" in debug.stderr


def test_process_configuration_error(tmp_path: Path) -> None:
    data = str(tmp_path / "d")
    result = run_module(
        tmp_path, "keys", "list", "--data-dir", data, env={"JWTWARD_ALGORITHM": "HS256"}
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(ERROR_PREFIX)
    assert "JWTWARD_ALGORITHM" in lines[0]
    assert not (tmp_path / "d").exists()  # refused before anything was made
