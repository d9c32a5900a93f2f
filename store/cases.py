"""The case store: cases, parties, chat, tasks, status history and email records.

Writes made by workflow steps are idempotent: each carries a key (request ID and step) that is
unique in its table, so a retried step returns what the first attempt wrote. Each write is one
transaction, so a failure leaves nothing half-written.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, create_engine, event, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, selectinload, sessionmaker

from domain.lifecycle import check_transition
from domain.models import CaseStatus, CloseCode, FileRef
from store import views
from store.schema import (
    Case,
    CaseFile,
    ChatAttachment,
    ChatMessage,
    ClientTask,
    Email,
    InfoRequest,
    Party,
    StatusChange,
    User,
)


class UnknownCase(LookupError):
    def __init__(self, case_id: str) -> None:
        super().__init__(f"unknown case {case_id!r}: no case has that ID")
        self.case_id = case_id


class UnknownTask(LookupError):
    pass


class RequestIdReused(ValueError):
    def __init__(self, request_id: str) -> None:
        super().__init__(
            f"request ID {request_id!r} was already used by another request; every request "
            "needs a fresh ID"
        )


@dataclass(frozen=True)
class RequestRecord:
    """The request a status change opens, recorded in the same transaction."""

    request_id: str
    run_id: str
    requested_by: str
    items: list[dict[str, Any]]
    requested_at: datetime


# Execution option of the connections CaseStore.reading() uses.
READ_ONLY = "case_store_read_only"


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_engine(url: str) -> Engine:
    """An engine for SQLite (embedded default) or PostgreSQL (by URL)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy own transactions, and take the write lock at BEGIN so two writers
            # wait for each other instead of failing on a lock upgrade.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # A read-only transaction reads a WAL snapshot and needs no lock: it must not queue
            # behind (or hold up) the writers.
            read_only = conn.get_execution_options().get(READ_ONLY, False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@dataclass(frozen=True)
class NewCase:
    id: str
    client_id: str
    partner_id: str
    reference: str
    debtor_name: str
    amount_minor: int
    currency: str
    description: str


class CaseStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )

    @classmethod
    def from_url(cls, url: str) -> CaseStore:
        return cls(make_engine(url))

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A transaction for reads only (on SQLite it takes no write lock)."""
        with self._read_sessions.begin() as session:
            yield session

    # ---- setup and demo data -------------------------------------------------------------

    def add_party(self, party: views.PartyView) -> None:
        with self.session() as s:
            if s.get(Party, party.id) is None:
                s.add(Party(**party.model_dump()))

    def add_user(self, user_id: str, party_id: str, name: str, email: str) -> None:
        with self.session() as s:
            if s.get(User, user_id) is None:
                s.add(User(id=user_id, party_id=party_id, name=name, email=email))

    def add_case(self, new: NewCase, files: Sequence[FileRef] = (), uploaded_by: str = "") -> bool:
        """Submit a case as Pending Verification; False if a case with that ID exists."""
        now = utcnow()
        try:
            with self.session() as s:
                if s.get(Case, new.id) is not None:
                    return False
                s.add(
                    Case(
                        **new.__dict__,
                        status=CaseStatus.PENDING_VERIFICATION.value,
                        close_code=None,
                        created_at=now,
                        updated_at=now,
                    )
                )
                s.flush()
                for ref in files:
                    s.add(
                        CaseFile(
                            case_id=new.id,
                            uploaded_by=uploaded_by or new.client_id,
                            created_at=now,
                            **ref.model_dump(),
                        )
                    )
                s.add(
                    StatusChange(
                        case_id=new.id,
                        from_status=None,
                        to_status=CaseStatus.PENDING_VERIFICATION.value,
                        close_code=None,
                        changed_by=uploaded_by or new.client_id,
                        idempotency_key=f"case:{new.id}:submitted",
                        created_at=now,
                    )
                )
        except IntegrityError:
            return False
        return True

    # ---- idempotent writes made by workflow steps ---------------------------------------

    def change_status(
        self,
        *,
        case_id: str,
        new_status: CaseStatus,
        close_code: CloseCode | None,
        changed_by: str,
        idempotency_key: str,
        note: str | None = None,
        opens: RequestRecord | None = None,
        ends_request: tuple[str, str] | None = None,
    ) -> CaseStatus:
        """Move the case along the lifecycle; a repeated key returns the earlier result.

        With `opens`, the same transaction records the request it opens; a request ID that
        another run (or case) already used is refused rather than mistaken for a retry. With
        `ends_request` (request ID, outcome), it records how the request ended."""
        try:
            with self.session() as s:
                case = s.get(Case, case_id, with_for_update=True)  # same-key attempts queue here
                done = s.scalar(
                    select(StatusChange).where(StatusChange.idempotency_key == idempotency_key)
                )
                earlier = s.get(InfoRequest, opens.request_id) if opens else None
                if (
                    opens is not None
                    and earlier is not None
                    and (earlier.run_id != opens.run_id or earlier.case_id != case_id)
                ):
                    raise RequestIdReused(opens.request_id)
                if done is not None:
                    if done.case_id != case_id:
                        raise RequestIdReused(idempotency_key)
                    return CaseStatus(done.to_status)
                if case is None:
                    raise UnknownCase(case_id)
                current = CaseStatus(case.status)
                check_transition(case_id, current, new_status, close_code)
                if opens is not None:
                    s.add(
                        InfoRequest(
                            id=opens.request_id,
                            case_id=case_id,
                            run_id=opens.run_id,
                            requested_by=opens.requested_by,
                            items=opens.items,
                            requested_at=opens.requested_at,
                        )
                    )
                now = utcnow()
                case.status = new_status.value
                case.close_code = close_code.value if close_code else None
                case.updated_at = now
                s.add(
                    StatusChange(
                        case_id=case_id,
                        from_status=current.value,
                        to_status=new_status.value,
                        close_code=case.close_code,
                        changed_by=changed_by,
                        idempotency_key=idempotency_key,
                        created_at=now,
                    )
                )
                _add_note(s, case_id, note, idempotency_key, now)
                if ends_request is not None:
                    ended = s.get(InfoRequest, ends_request[0])
                    if ended is not None:
                        ended.outcome, ended.ended_at = ends_request[1], now
                        ended.close_code = case.close_code
                return new_status
        except IntegrityError:
            # A concurrent attempt with the same key won the race: its write is ours.
            with self.session() as s:
                done = s.scalar(
                    select(StatusChange).where(StatusChange.idempotency_key == idempotency_key)
                )
                if done is None:
                    raise
                return CaseStatus(done.to_status)

    def post_message(
        self,
        *,
        case_id: str,
        kind: str,
        author_user_id: str | None,
        body: str,
        attachments: Sequence[FileRef] = (),
        idempotency_key: str,
        first_reply_to: str | None = None,
    ) -> int:
        """Append to the case chat; a repeated key returns the earlier message's ID.

        `first_reply_to`: a request this message (new, or posted earlier under the same key,
        e.g. by the client portal) may be the client's first reply to; the request's
        first-reply time is set in the same transaction, unless already set (metrics)."""
        try:
            with self.session() as s:
                found = s.execute(
                    select(ChatMessage.id, ChatMessage.created_at).where(
                        ChatMessage.idempotency_key == idempotency_key
                    )
                ).first()
                if found is not None:
                    message_id, created_at = found
                else:
                    # An unknown case fails the insert (foreign key): see the except below.
                    message = ChatMessage(
                        case_id=case_id,
                        kind=kind,
                        author_user_id=author_user_id,
                        body=body,
                        idempotency_key=idempotency_key,
                        created_at=utcnow(),
                    )
                    s.add(message)
                    s.flush()
                    for ref in attachments:
                        s.add(ChatAttachment(message_id=message.id, **ref.model_dump()))
                    message_id, created_at = message.id, message.created_at
                if first_reply_to is not None:
                    request = s.get(InfoRequest, first_reply_to, with_for_update=True)
                    if request is not None and request.first_reply_at is None:
                        request.first_reply_at = created_at
                return message_id
        except IntegrityError:
            # A concurrent attempt with the same key won the race: take its message (and note
            # the first reply) as a repeat would. Or the case does not exist.
            with self.reading() as s:
                won = s.scalar(
                    select(ChatMessage.id).where(ChatMessage.idempotency_key == idempotency_key)
                )
                case_exists = s.get(Case, case_id) is not None
            if won is None:
                if not case_exists:
                    raise UnknownCase(case_id) from None
                raise
            return self.post_message(
                case_id=case_id,
                kind=kind,
                author_user_id=author_user_id,
                body=body,
                attachments=attachments,
                idempotency_key=idempotency_key,
                first_reply_to=first_reply_to,
            )

    def create_task(
        self,
        *,
        case_id: str,
        request_id: str,
        title: str,
        due_at: datetime,
        idempotency_key: str,
        note: str | None = None,
        requested_at: datetime | None = None,
        assignee_party_id: str | None = None,
    ) -> views.TaskRecordView:
        """Create the client's task; a repeated key returns the task created first. The
        assignee is the case's client (looked up unless the caller has just read it)."""
        try:
            with self.session() as s:
                found = s.scalar(
                    select(ClientTask).where(ClientTask.idempotency_key == idempotency_key)
                )
                if found is None:
                    if assignee_party_id is None:
                        case = s.get(Case, case_id)
                        if case is None:
                            raise UnknownCase(case_id)
                        assignee_party_id = case.client_id
                    found = ClientTask(
                        case_id=case_id,
                        request_id=request_id,
                        assignee_party_id=assignee_party_id,
                        title=title,
                        due_at=due_at,
                        status="open",
                        idempotency_key=idempotency_key,
                        created_at=utcnow(),
                        requested_at=requested_at,
                    )
                    s.add(found)
                    s.flush()
                    _add_note(s, case_id, note, idempotency_key, found.created_at)
                return _task_view(found)
        except IntegrityError:
            return self.task_by_key(idempotency_key)

    def task_by_key(self, idempotency_key: str) -> views.TaskRecordView:
        with self.reading() as s:
            found = s.scalar(
                select(ClientTask).where(ClientTask.idempotency_key == idempotency_key)
            )
            if found is None:
                raise UnknownTask(f"no task was created with key {idempotency_key!r}")
            return _task_view(found)

    def close_task(
        self, *, idempotency_key: str, outcome: str, note: str | None = None
    ) -> views.TaskRecordView:
        """Close an open task; closing one already closed keeps its first outcome."""
        with self.session() as s:
            task = s.scalar(
                select(ClientTask)
                .where(ClientTask.idempotency_key == idempotency_key)
                .with_for_update()
            )
            if task is None:
                raise UnknownTask(f"no task was created with key {idempotency_key!r}")
            if task.status == "open":
                task.status = outcome
                task.closed_at = utcnow()
                _add_note(s, task.case_id, note, f"{idempotency_key}:closed", task.closed_at)
            return _task_view(task)

    def move_task_deadline(
        self, *, idempotency_key: str, due_at: datetime, note: str, note_key: str
    ) -> views.TaskRecordView:
        """Move an open task's deadline (an extension); repeating the same move changes
        nothing more."""
        with self.session() as s:
            task = s.scalar(
                select(ClientTask)
                .where(ClientTask.idempotency_key == idempotency_key)
                .with_for_update()
            )
            if task is None:
                raise UnknownTask(f"no task was created with key {idempotency_key!r}")
            if task.status == "open" and task.due_at != due_at:
                task.due_at = due_at
                _add_note(s, task.case_id, note, note_key, utcnow())
            return _task_view(task)

    def record_checklist(
        self, *, request_id: str, items: list[dict[str, Any]], note: str | None, note_key: str
    ) -> None:
        """Keep the request's checklist current, with a chat note saying what changed."""
        with self.session() as s:
            request = s.get(InfoRequest, request_id, with_for_update=True)
            if request is None:
                raise LookupError(f"no info request {request_id!r}")
            request.items = items
            done = s.scalar(
                select(ChatMessage.id).where(ChatMessage.idempotency_key == f"{note_key}:note")
            )
            if done is None:
                _add_note(s, request.case_id, note, note_key, utcnow())

    def checklist(self, request_id: str) -> list[dict[str, Any]]:
        with self.reading() as s:
            request = s.get(InfoRequest, request_id)
            return list(request.items) if request else []

    # ---- email records ---------------------------------------------------------------------

    def email_by_key(self, idempotency_key: str) -> views.EmailView | None:
        with self.reading() as s:
            row = s.scalar(select(Email).where(Email.idempotency_key == idempotency_key))
            return _email_view(row) if row else None

    def claim_email(
        self,
        *,
        idempotency_key: str,
        case_id: str,
        to_email: str,
        to_name: str,
        subject: str,
        body: str,
        transport: str,
        status: str,
    ) -> tuple[views.EmailView, bool]:
        """Record an email before it goes out. Returns (row, created): an existing row means an
        earlier attempt of the same step got here first.

        One INSERT (Core, no ORM unit of work): the first attempt is the common case; a repeat
        fails on the key's unique index and reads the row it found."""
        now = utcnow()
        row = {
            "idempotency_key": idempotency_key,
            "case_id": case_id,
            "to_email": to_email,
            "to_name": to_name,
            "subject": subject,
            "body": body,
            "transport": transport,
            "status": status,
            "created_at": now,
            "sent_at": now if status == "outbox" else None,
        }
        try:
            with self.engine.begin() as conn:
                email_id = conn.execute(
                    insert(Email).values(attempts=1, **row).returning(Email.id)
                ).scalar_one()
        except IntegrityError:
            existing = self.email_by_key(idempotency_key)
            if existing is None:
                raise
            return existing, False
        del row["idempotency_key"]
        return views.EmailView(id=email_id, provider_message_id=None, error=None, **row), True

    def update_email(
        self,
        idempotency_key: str,
        *,
        status: str,
        error: str | None = None,
        provider_message_id: str | None = None,
        new_attempt: bool = False,
        only_if_status: str | None = None,
    ) -> views.EmailView:
        """Change an email row; with `only_if_status`, only while it still has that status
        (an attempt running alongside may have finished it meanwhile)."""
        with self.session() as s:
            row = s.scalar(
                select(Email).where(Email.idempotency_key == idempotency_key).with_for_update()
            )
            if row is None:
                raise LookupError(f"no email with key {idempotency_key!r}")
            if only_if_status is not None and row.status != only_if_status:
                return _email_view(row)
            row.status = status
            row.error = error
            if provider_message_id is not None:
                row.provider_message_id = provider_message_id
            if status == "sent":
                row.sent_at = utcnow()
            if new_attempt:
                row.attempts += 1
            return _email_view(row)

    # ---- reads ---------------------------------------------------------------------------

    def party(self, party_id: str) -> views.PartyView | None:
        with self.reading() as s:
            p = s.get(Party, party_id)
            return _party_view(p) if p else None

    def user(self, user_id: str) -> tuple[str, str, str] | None:
        """(party ID, name, email) of a user."""
        with self.reading() as s:
            u = s.get(User, user_id)
            return (u.party_id, u.name, u.email) if u else None

    def case_parties(
        self, case_id: str
    ) -> tuple[views.CaseSummaryView, views.PartyView, views.PartyView]:
        """The case with its client and partner; UnknownCase if there is none."""
        with self.reading() as s:
            return _case_parties(s, case_id)

    def email_parties(
        self, case_id: str, user_id: str
    ) -> tuple[views.CaseSummaryView, views.PartyView, views.PartyView, tuple[str, str] | None]:
        """What an email about a case needs, in one read: the case, its client and partner,
        and the (name, email) of a partner user (None if there is no such user)."""
        with self.reading() as s:
            user = s.get(User, user_id)
            return *_case_parties(s, case_id), ((user.name, user.email) if user else None)

    def list_cases(
        self,
        *,
        partner_id: str | None = None,
        client_id: str | None = None,
        status: CaseStatus | None = None,
    ) -> list[views.CaseSummaryView]:
        with self.reading() as s:
            query = select(Case, Party).join(Party, Party.id == Case.client_id)
            if partner_id:
                query = query.where(Case.partner_id == partner_id)
            if client_id:
                query = query.where(Case.client_id == client_id)
            if status:
                query = query.where(Case.status == status.value)
            rows = s.execute(query.order_by(Case.created_at.desc(), Case.id)).all()
            return [_case_summary(case, client) for case, client in rows]

    def case_detail(self, case_id: str) -> views.CaseDetailView:
        with self.reading() as s:
            case = s.get(Case, case_id, options=[selectinload(Case.files)])
            if case is None:
                raise UnknownCase(case_id)
            client = s.get(Party, case.client_id)
            assert client is not None
            return views.CaseDetailView(
                case=_case_summary(case, client),
                debtor_name=case.debtor_name,
                description=case.description,
                client=_party_view(client),
                files=[
                    views.CaseFileView(
                        file=_file_ref(f), uploaded_by=f.uploaded_by, created_at=f.created_at
                    )
                    for f in case.files
                ],
            )

    def case_status(self, case_id: str) -> CaseStatus:
        with self.reading() as s:
            case = s.get(Case, case_id)
            if case is None:
                raise UnknownCase(case_id)
            return CaseStatus(case.status)

    def chat(self, case_id: str) -> list[views.ChatMessageView]:
        with self.reading() as s:
            rows = s.scalars(
                select(ChatMessage)
                .where(ChatMessage.case_id == case_id)
                .options(selectinload(ChatMessage.attachments))
                .order_by(ChatMessage.id)
            ).all()
            return [
                views.ChatMessageView(
                    id=m.id,
                    case_id=m.case_id,
                    kind=m.kind,
                    author_user_id=m.author_user_id,
                    body=m.body,
                    attachments=[_file_ref(a) for a in m.attachments],
                    created_at=m.created_at,
                )
                for m in rows
            ]

    def tasks(
        self,
        *,
        case_id: str | None = None,
        assignee_party_id: str | None = None,
        status: str | None = None,
    ) -> list[views.TaskRecordView]:
        with self.reading() as s:
            query = select(ClientTask)
            if case_id:
                query = query.where(ClientTask.case_id == case_id)
            if assignee_party_id:
                query = query.where(ClientTask.assignee_party_id == assignee_party_id)
            if status:
                query = query.where(ClientTask.status == status)
            return [_task_view(t) for t in s.scalars(query.order_by(ClientTask.id)).all()]

    def status_history(self, case_id: str) -> list[views.StatusChangeView]:
        with self.reading() as s:
            rows = s.scalars(
                select(StatusChange)
                .where(StatusChange.case_id == case_id)
                .order_by(StatusChange.id)
            ).all()
            return [
                views.StatusChangeView(
                    case_id=r.case_id,
                    from_status=CaseStatus(r.from_status) if r.from_status else None,
                    to_status=CaseStatus(r.to_status),
                    close_code=CloseCode(r.close_code) if r.close_code else None,
                    changed_by=r.changed_by,
                    created_at=r.created_at,
                )
                for r in rows
            ]

    def emails(self, case_id: str | None = None) -> list[views.EmailView]:
        with self.reading() as s:
            query = select(Email)
            if case_id:
                query = query.where(Email.case_id == case_id)
            return [_email_view(e) for e in s.scalars(query.order_by(Email.id)).all()]


_CLIENT, _PARTNER = aliased(Party, name="client"), aliased(Party, name="partner")
_CASE_PARTIES = (
    select(Case, _CLIENT, _PARTNER)
    .join(_CLIENT, _CLIENT.id == Case.client_id)
    .join(_PARTNER, _PARTNER.id == Case.partner_id)
)


def _case_parties(
    s: Session, case_id: str
) -> tuple[views.CaseSummaryView, views.PartyView, views.PartyView]:
    """One query (every step that emails or creates a task asks this)."""
    found = s.execute(_CASE_PARTIES.where(Case.id == case_id)).first()
    if found is None:
        raise UnknownCase(case_id)
    case, client, partner = found
    return _case_summary(case, client), _party_view(client), _party_view(partner)


def _add_note(
    s: Session, case_id: str, note: str | None, idempotency_key: str, at: datetime
) -> None:
    """A system note in the case chat, written in the same transaction as what it reports."""
    if note:
        s.add(
            ChatMessage(
                case_id=case_id,
                kind="system",
                author_user_id=None,
                body=note,
                idempotency_key=f"{idempotency_key}:note",
                created_at=at,
            )
        )


def _file_ref(row: CaseFile | ChatAttachment) -> FileRef:
    return FileRef(
        sha256=row.sha256, filename=row.filename, content_type=row.content_type, size=row.size
    )


def _party_view(p: Party) -> views.PartyView:
    return views.PartyView(
        id=p.id,
        kind=p.kind,
        name=p.name,
        email=p.email,
        country=p.country,
        subdivision=p.subdivision,
        time_zone=p.time_zone,
    )


def _case_summary(case: Case, client: Party) -> views.CaseSummaryView:
    return views.CaseSummaryView(
        id=case.id,
        reference=case.reference,
        client_id=case.client_id,
        client_name=client.name,
        partner_id=case.partner_id,
        status=CaseStatus(case.status),
        close_code=CloseCode(case.close_code) if case.close_code else None,
        amount_minor=case.amount_minor,
        currency=case.currency,
        created_at=case.created_at,
        updated_at=case.updated_at,
    )


def _task_view(t: ClientTask) -> views.TaskRecordView:
    return views.TaskRecordView(
        id=t.id,
        case_id=t.case_id,
        request_id=t.request_id,
        assignee_party_id=t.assignee_party_id,
        title=t.title,
        due_at=t.due_at,
        status=t.status,
        created_at=t.created_at,
        closed_at=t.closed_at,
        requested_at=t.requested_at,
    )


def _email_view(e: Email) -> views.EmailView:
    return views.EmailView(
        id=e.id,
        case_id=e.case_id,
        to_email=e.to_email,
        to_name=e.to_name,
        subject=e.subject,
        body=e.body,
        transport=e.transport,
        status=e.status,
        provider_message_id=e.provider_message_id,
        error=e.error,
        created_at=e.created_at,
        sent_at=e.sent_at,
    )
