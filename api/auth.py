"""Bearer-token authentication and the two roles (client users and partner users).

Every route depends on `current_principal`; a missing, unknown or revoked token is a 401.
Role checks come before any case is looked up, so a 403 never says whether a case exists.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.context import ApiContext, get_context
from api.errors import ApiError
from store.tokens import Principal, resolve_token

bearer_scheme = HTTPBearer(
    auto_error=False,
    bearerFormat="opaque",
    description="A token from `python -m api.tokens issue USER_ID`",
)


def _unauthenticated(message: str) -> ApiError:
    return ApiError(401, "unauthenticated", message, headers={"WWW-Authenticate": "Bearer"})


async def current_principal(
    ctx: Annotated[ApiContext, Depends(get_context)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    if credentials is None:
        raise _unauthenticated("send `Authorization: Bearer <token>`")
    principal = await run_in_threadpool(resolve_token, ctx.store, credentials.credentials)
    if principal is None:
        raise _unauthenticated("the token is unknown or revoked")
    return principal


async def client_user(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if principal.party_kind != "client":
        raise ApiError(403, "forbidden", "only users of a client (creditor) may do this")
    return principal


async def partner_user(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if principal.party_kind != "partner":
        raise ApiError(403, "forbidden", "only users of a collection partner may do this")
    return principal


AnyUser = Annotated[Principal, Depends(current_principal)]
ClientUser = Annotated[Principal, Depends(client_user)]
PartnerUser = Annotated[Principal, Depends(partner_user)]
Context = Annotated[ApiContext, Depends(get_context)]
