"""API tokens from the command line; the plain token is printed once and never stored.

    python -m api.tokens issue USER_ID [--label TEXT]
    python -m api.tokens revoke TOKEN
    python -m api.tokens revoke-user USER_ID

The database is DATABASE_URL (or the embedded default under .data/), as for every process.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from config import Settings
from store.cases import CaseStore
from store.migrate import upgrade
from store.tokens import UnknownUser, issue_token, revoke_token, revoke_user_tokens


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m api.tokens", description=(__doc__ or "").split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    issue = commands.add_parser("issue", help="issue a new token for a user and print it")
    issue.add_argument("user_id")
    issue.add_argument("--label", default="issued on the command line")
    revoke = commands.add_parser("revoke", help="revoke one token")
    revoke.add_argument("token")
    revoke_user = commands.add_parser("revoke-user", help="revoke every token of a user")
    revoke_user.add_argument("user_id")
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    store = CaseStore.from_url(settings.database_url)
    try:
        if args.command == "issue":
            try:
                print(issue_token(store, args.user_id, label=args.label))
            except UnknownUser as e:
                print(f"error: {e}", file=sys.stderr)
                return 1
        elif args.command == "revoke":
            if not revoke_token(store, args.token):
                print("error: no live token matches", file=sys.stderr)
                return 1
            print("revoked")
        else:
            print(f"revoked {revoke_user_tokens(store, args.user_id)} token(s)")
        return 0
    finally:
        store.engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
