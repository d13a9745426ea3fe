"""``koe user create|list|disable|enable|role``: dashboard accounts (wired into ``service.cli``)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from pipelines.errors import ConfigError
from service.config import Settings
from service.web.users import ROLES, create_user, list_users, set_disabled, set_role

__all__ = ["add_parser", "cmd_user"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("user", help="dashboard users (admin, analyst, viewer)")
    actions = p.add_subparsers(dest="action", required=True)
    c = actions.add_parser("create", help="create a user; the password is asked for (or read from stdin)")
    c.add_argument("--email", required=True)
    c.add_argument("--role", choices=ROLES, default="viewer")
    c.add_argument("--name", default="")
    c.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first line of stdin"
    )
    actions.add_parser("list", help="list users (never their passwords)")
    for name in ("disable", "enable"):
        d = actions.add_parser(name, help=f"{name} a user by e-mail")
        d.add_argument("--email", required=True)
    r = actions.add_parser("role", help="change a user's role")
    r.add_argument("--email", required=True)
    r.add_argument("--role", choices=ROLES, required=True)
    p.set_defaults(func=cmd_user)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise ConfigError("the two passwords differ")
    return first


def cmd_user(args: argparse.Namespace, settings: Settings) -> int:
    from service.runtime import Runtime

    runtime = Runtime(settings)
    try:
        db = runtime.db
        if args.action == "create":
            user = create_user(db, args.email, _password(args), args.role, args.name)
            print(f"created user {user.id} {user.email} ({user.role})", file=sys.stderr)
            return 0
        users = {u.email: u for u in list_users(db)}
        if args.action == "list":
            for u in users.values():
                row = {"id": u.id, "email": u.email, "name": u.name, "role": u.role, "disabled": u.disabled}
                print(json.dumps(row, ensure_ascii=False))
            return 0
        found = users.get(args.email.strip().lower())
        if found is None:
            raise ConfigError("no user with this e-mail address", value=args.email)
        if args.action == "role":
            set_role(db, found.id, args.role)
        else:
            set_disabled(db, found.id, args.action == "disable")
        print(f"{args.action}: {found.email}", file=sys.stderr)
        return 0
    finally:
        runtime.close()
