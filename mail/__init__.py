"""Outgoing email: the message shape and the SendGrid transport."""
