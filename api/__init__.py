"""The HTTP API for client portals and partners' apps (FastAPI): `api.app.create_app(...)`.

It works on the same case store and file store as the workflow's activities and acts on info
requests through the `starter` functions, so HTTP callers and Temporal callers see one truth.
"""
