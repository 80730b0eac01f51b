"""The ``jwtward`` command line: serve, users, keys, tokens, purge.

Exit codes: 0 success; 1 a refused token or a failed check; 2 a usage or
configuration error. Errors print as one line on stderr; ``--debug`` shows
the traceback.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jwtward.errors import InvalidArgument, InvalidToken, JWTWardError

__all__ = ["main"]

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A command line that cannot be carried out as given."""


# -- helpers ------------------------------------------------------------------------------------


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="data directory (env JWTWARD_DATA_DIR)")
    parser.add_argument("--store", help="sqlite:///path, redis://... or postgresql://... "
                        "(env JWTWARD_STORE)")


def _backends(args: argparse.Namespace) -> Any:
    from jwtward.server.config import load_config  # noqa: PLC0415 - server extras on demand
    from jwtward.server.runtime import open_backends  # noqa: PLC0415

    config = load_config(
        data_dir=getattr(args, "data_dir", None), store=getattr(args, "store", None)
    )
    return open_backends(config)


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        password = line.removesuffix("\n").removesuffix("\r")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise UsageError("the passwords differ")
    if not password:
        raise UsageError("the password is empty")
    return password


def _read_token(value: str) -> str:
    token = sys.stdin.read() if value == "-" else value
    return token.strip()


def _when(seconds: object) -> str:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return str(seconds)
    try:  # an unverified token may carry any number: show it, do not fail on it
        moment = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"{seconds} (out of the range of dates)"
    delta = int(seconds - time.time())
    ago = f"in {_span(delta)}" if delta >= 0 else f"{_span(-delta)} ago"
    return f"{seconds} ({moment}, {ago})"


def _span(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))


# -- serve ---------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn  # noqa: PLC0415

    from jwtward.server.app import create_app  # noqa: PLC0415
    from jwtward.server.config import load_config  # noqa: PLC0415
    from jwtward.server.runtime import open_backends  # noqa: PLC0415

    config = load_config(
        host=args.host, port=args.port, data_dir=args.data_dir, store=args.store,
        issuer=args.issuer, log_level=args.log_level,
    )
    _configure_logging(config.log_level)
    backends = open_backends(config)
    first_start = not backends.key_store.load().records
    backends.ring()  # the first start makes (and seals) the signing key
    url = f"http://{config.host}:{config.port}"
    print(f"jwtward token server on {url}", flush=True)
    print(f"  data:  {config.data_dir.resolve()} (store: {config.store_kind})", flush=True)
    print(f"  keys:  {'generated and sealed' if first_start else 'loaded'} "
          f"({config.algorithm}); JWKS at {url}/.well-known/jwks.json", flush=True)
    if config.master_key is None and config.key_passphrase is None:
        print("  WARNING: the signing keys are sealed with master.key beside them; in "
              "production set JWTWARD_MASTER_KEY from a secret store", flush=True)
    print("  first user: jwtward users add NAME --data-dir "
          f"{config.data_dir} (add --password-stdin to read the password from stdin)", flush=True)
    app = create_app(backends)
    # Client addresses (rate limits, session list) come from X-Forwarded-For
    # only when the peer is one of JWTWARD_FORWARDED_ALLOW_IPS (none by default).
    uvicorn.run(app, host=config.host, port=config.port, log_level=config.log_level.lower(),
                access_log=False, proxy_headers=bool(config.forwarded_allow_ips),
                forwarded_allow_ips=config.forwarded_allow_ips or None)
    return EXIT_OK


class _JsonLines(logging.Formatter):
    """Audit events are JSON already; other records become one JSON line too."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.name == "jwtward.audit":
            return message
        return json.dumps({"level": record.levelname.lower(), "logger": record.name,
                           "message": message})


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonLines())
    root = logging.getLogger("jwtward")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


# -- users -----------------------------------------------------------------------------------------


def cmd_users(args: argparse.Namespace) -> int:
    from jwtward.server.passwords import PasswordHasher  # noqa: PLC0415
    from jwtward.server.users import normalize_username  # noqa: PLC0415

    backends = _backends(args)
    users = backends.users
    try:
        now = time.time()
        if args.action == "list":
            for user in users.list_users():
                state = "disabled" if user.disabled else "enabled"
                roles = ",".join(user.claims.get("roles", [])) or "-"
                print(f"{user.username}\t{state}\troles={roles}\tscope={user.scope or '-'}")
            return EXIT_OK
        name = normalize_username(args.name)
        if args.action == "add":
            claims = {"roles": list(args.role)} if args.role else {}
            password_hash = PasswordHasher().hash(_read_password(args))
            users.add(name, password_hash, claims=claims, scope=args.scope, now=now)
            print(f"added user {name}")
        elif args.action in ("disable", "enable"):
            if not users.set_disabled(name, args.action == "disable", now):
                raise UsageError(f"no user {name}")
            if args.action == "disable":
                backends.token_service().revoke_subject(name)
            print(f"{args.action}d user {name}")
        else:  # passwd
            password_hash = PasswordHasher().hash(_read_password(args))
            if not users.set_password_hash(name, password_hash, now):
                raise UsageError(f"no user {name}")
            backends.token_service().revoke_subject(name)
            print(f"changed the password of {name}; their sessions were ended")
        return EXIT_OK
    finally:
        backends.close()


# -- keys ------------------------------------------------------------------------------------------


def cmd_keys(args: argparse.Namespace) -> int:
    backends = _backends(args)
    try:
        ring = backends.ring()
        if args.action == "list":
            for record in ring.records():
                print("\t".join((
                    record.key.kid, record.key.alg, record.state.value,
                    f"activates={_iso(record.activates_at)}",
                    f"retires={_iso(record.retires_at)}",
                    f"expires={_iso(record.expires_at)}",
                )))
        elif args.action == "rotate":
            key = ring.rotate()
            print(f"new active key {key.kid}")
        elif args.action == "revoke":
            ring.revoke(args.kid)
            print(f"revoked key {args.kid}")
        else:
            _print_json(ring.jwks())
        return EXIT_OK
    finally:
        backends.close()


def _iso(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- tokens ----------------------------------------------------------------------------------------


def cmd_token(args: argparse.Namespace) -> int:
    if args.action == "decode":
        return _decode(args)
    if args.action == "verify" and args.jwks:
        return _verify_with_jwks(args)
    backends = _backends(args)
    try:
        service = backends.token_service()
        if args.action == "issue":
            claims = dict(_claim(item) for item in args.claim)
            pair = service.issue(args.subject, claims=claims or None, scope=args.scope)
            _print_json(pair.to_response() | {"refresh_expires_at": pair.refresh_expires_at})
            return EXIT_OK
        claims = service.verify(_read_token(args.token))
        _print_json(claims.to_dict())
        print("valid: signature, claims and revocation checked", file=sys.stderr)
        return EXIT_OK
    finally:
        backends.close()


def _claim(item: str) -> tuple[str, Any]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise UsageError(f"--claim takes NAME=VALUE, got {item!r:.40}")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def _load_keys(source: str) -> Any:
    from jwtward import Key, KeySet  # noqa: PLC0415

    if source.startswith(("https://", "http://")):
        from jwtward.keys import JWKSClient  # noqa: PLC0415

        return JWKSClient(source, allow_insecure_loopback=True)
    try:
        document = json.loads(Path(source).read_text())
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from None
    except ValueError:
        raise UsageError(f"{source} is not a JSON JWK or JWK Set") from None
    if isinstance(document, dict) and "keys" in document:
        return KeySet.from_jwks(document, ignore_unsupported=True)
    return Key.from_jwk(document)


def _verify_with_jwks(args: argparse.Namespace) -> int:
    from jwtward import Policy, jwt  # noqa: PLC0415
    from jwtward.server.config import load_config  # noqa: PLC0415

    keys = _load_keys(args.jwks)
    # The server's own issuer and audience unless told otherwise.
    config = load_config(data_dir=args.data_dir, store=args.store)
    policy = Policy(
        issuer=args.issuer or config.public_issuer,
        audience=args.audience or config.audience,
        typ=args.typ,
    )
    claims = jwt.decode(_read_token(args.token), keys, policy)
    _print_json(claims)
    print("valid: signature and claims checked (revocation is not, without the store)",
          file=sys.stderr)
    return EXIT_OK


def _decode(args: argparse.Namespace) -> int:
    from jwtward import jws  # noqa: PLC0415
    from jwtward.codecs import b64decode, loads_object  # noqa: PLC0415

    token = _read_token(args.token)
    if args.key or args.jwks:
        verified = jws.decode(token, _load_keys(args.key or args.jwks))
        header, payload, banner = dict(verified.header), verified.payload, "SIGNATURE VERIFIED"
    else:
        header = dict(jws.unverified_header(token))
        payload = b64decode(token.split(".")[1])
        banner = "UNVERIFIED: nothing below has been checked; do not trust it"
    print(f"== {banner} ==")
    print("header:")
    _print_json(header)
    try:
        claims: Any = loads_object(payload)
    except JWTWardError:
        print("payload (not JSON):", payload[:200])
        return EXIT_OK
    print("claims:")
    _print_json(claims)
    for name in ("iat", "nbf", "exp"):
        if name in claims:
            print(f"{name}: {_when(claims[name])}")
    return EXIT_OK


# -- purge -----------------------------------------------------------------------------------------


def cmd_purge(args: argparse.Namespace) -> int:
    backends = _backends(args)
    try:
        removed = backends.token_service().purge_expired()
        removed += backends.limiter.purge_expired(time.time())
        print(f"removed {removed} expired entries")
        return EXIT_OK
    finally:
        backends.close()


# -- the parser ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jwtward", description="jwtward token server and tools")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the token server")
    serve.add_argument("--host", help="bind address (env JWTWARD_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (env JWTWARD_PORT, default 8000)")
    serve.add_argument("--issuer", help="issuer URL (env JWTWARD_ISSUER)")
    serve.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    _store_options(serve)
    serve.set_defaults(handler=cmd_serve)

    _add_users_parser(commands)
    _add_keys_parser(commands)
    _add_token_parser(commands)

    purge = commands.add_parser("purge", help="delete expired store entries")
    _store_options(purge)
    purge.set_defaults(handler=cmd_purge)
    return parser


Subparsers = Any  # argparse's _SubParsersAction is private


def _add_users_parser(commands: Subparsers) -> None:
    users = commands.add_parser("users", help="manage users")
    user_actions = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = user_actions.add_parser("add", help="add a user")
    add.add_argument("name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument("--role", action="append", default=[], help="a role (repeatable)")
    add.add_argument("--scope", help="space-separated scopes granted at login")
    listing = user_actions.add_parser("list", help="list users")
    for action in ("disable", "enable"):
        sub = user_actions.add_parser(action, help=f"{action} a user")
        sub.add_argument("name")
    passwd = user_actions.add_parser("passwd", help="set a user's password")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true")
    for sub in (add, listing, passwd, *(user_actions.choices[a] for a in ("disable", "enable"))):
        _store_options(sub)
    users.set_defaults(handler=cmd_users)


def _add_keys_parser(commands: Subparsers) -> None:
    keys = commands.add_parser("keys", help="manage signing keys")
    key_actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (("list", "list keys"), ("rotate", "make a new active key now"),
                         ("export-jwks", "print the public JWK Set")):
        _store_options(key_actions.add_parser(action, help=text))
    revoke = key_actions.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("kid")
    _store_options(revoke)
    keys.set_defaults(handler=cmd_keys)


def _add_token_parser(commands: Subparsers) -> None:
    token = commands.add_parser("token", help="issue, verify or decode tokens")
    token_actions = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    issue = token_actions.add_parser("issue", help="issue a token pair for SUBJECT")
    issue.add_argument("subject")
    issue.add_argument("--scope")
    issue.add_argument("--claim", action="append", default=[], help="NAME=VALUE (JSON or text)")
    _store_options(issue)
    verify = token_actions.add_parser("verify", help="verify an access token ('-': stdin)")
    verify.add_argument("token")
    verify.add_argument("--jwks", help="verify against a JWK Set file or URL instead of the store")
    verify.add_argument("--issuer")
    verify.add_argument("--audience")
    verify.add_argument("--typ", default=None)
    _store_options(verify)
    decode = token_actions.add_parser("decode", help="show a token's header and claims")
    decode.add_argument("token")
    decode.add_argument("--key", help="a JWK file to verify the signature with")
    decode.add_argument("--jwks", help="a JWK Set file or URL to verify the signature with")
    token.set_defaults(handler=cmd_token)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return EXIT_REFUSED
    except Exception as exc:  # one readable line unless --debug
        if args.debug:
            raise
        print(f"jwtward: error: {_describe(exc)}", file=sys.stderr)
        return _exit_code(exc)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, JWTWardError | UsageError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc} ({getattr(exc, 'filename', '') or ''})".strip()
    return f"{type(exc).__name__}: {exc}"


def _exit_code(exc: BaseException) -> int:
    from jwtward.server.config import ConfigError  # noqa: PLC0415

    if isinstance(exc, UsageError | ConfigError | InvalidArgument):
        return EXIT_USAGE
    if isinstance(exc, InvalidToken | JWTWardError):
        return EXIT_REFUSED
    return EXIT_REFUSED


if __name__ == "__main__":
    sys.exit(main())
