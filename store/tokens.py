"""API bearer tokens: issued to one user, stored only as a SHA-256 hash, revocable.

A token is 32 random bytes (256 bits), so its plain SHA-256 is enough to store it: nobody can
guess a preimage, and looking a token up by its hash needs no constant-time compare (the
secret is never compared, only its hash is used as a key). The plain token is shown once, when
it is issued, and never stored.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from store.cases import CaseStore, utcnow
from store.schema import Base, Party, User, UTCDateTime

# Recognisable in logs and secret scanners; the random part carries all the entropy.
TOKEN_PREFIX = "irq_"
TOKEN_BYTES = 32


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    label: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class UnknownUser(LookupError):
    def __init__(self, user_id: str) -> None:
        super().__init__(f"unknown user {user_id!r}: no user has that ID")
        self.user_id = user_id


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user, and the party (client or partner) the user acts for."""

    user_id: str
    party_id: str
    party_kind: str  # client | partner


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(store: CaseStore, user_id: str, label: str = "") -> str:
    """A new token for the user; returns the plain token (the only time it exists)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    with store.session() as s:
        if s.get(User, user_id) is None:
            raise UnknownUser(user_id)
        s.add(
            ApiToken(
                token_hash=hash_token(token),
                user_id=user_id,
                label=label[:255],
                created_at=utcnow(),
            )
        )
    return token


def revoke_token(store: CaseStore, token: str) -> bool:
    """Revoke one token; False if it is unknown or already revoked."""
    with store.session() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at = utcnow()
        return True


def revoke_user_tokens(store: CaseStore, user_id: str, *, label: str | None = None) -> int:
    """Revoke every live token of a user (only those with `label`, if given); returns how
    many were revoked."""
    query = select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
    if label is not None:
        query = query.where(ApiToken.label == label)
    with store.session() as s:
        rows = s.scalars(query).all()
        now = utcnow()
        for row in rows:
            row.revoked_at = now
        return len(rows)


def resolve_token(store: CaseStore, token: str) -> Principal | None:
    """The user and party a live token belongs to; None for an unknown or revoked token."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None  # not one of ours: spare the database
    with store.reading() as s:
        row = s.execute(
            select(User.id, Party.id, Party.kind)
            .join(ApiToken, ApiToken.user_id == User.id)
            .join(Party, Party.id == User.party_id)
            .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None))
        ).first()
        if row is None:
            return None
        user_id, party_id, party_kind = row
        return Principal(user_id=user_id, party_id=party_id, party_kind=party_kind)
