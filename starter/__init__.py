"""How other services act on info requests: one function per action, each taking a client.

    client = await starter.connect()
    state = await starter.request_info(client, starter.new_request(...))
    await starter.send_client_reply(client, case_id, ClientReply(...))
    summary = await starter.decide(client, case_id, Decision(...))

Each raises RequestError (with a `code` and a message a person understands) when the action is
refused; nothing is written in that case.
"""

from starter.actions import (
    RequestError,
    decide,
    extend_deadline,
    follow_up,
    get_state,
    new_request,
    request_info,
    review_items,
    send_client_reply,
    send_partner_message,
    withdraw,
)
from starter.connection import connect

__all__ = [
    "RequestError",
    "connect",
    "decide",
    "extend_deadline",
    "follow_up",
    "get_state",
    "new_request",
    "request_info",
    "review_items",
    "send_client_reply",
    "send_partner_message",
    "withdraw",
]
