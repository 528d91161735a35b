"""The bootstrap: every dependency of the CLI, the app and ``serve``, built once.

``Dependencies(settings)`` holds the validated settings tree and builds each
shared dependency on first use, at most once per process (thread-safe): the
write model, the data keys (shared by the write model and the sealed blob
store), the read store and its views, the blob store, the call directory,
the CDR quarantine, the eraser, the API key store, the leases and the email channel's
config. The channels' state (call directory, IMAP state, form rate limits, leases)
is in PostgreSQL when the stores are (``touchstream.fleet``), else in SQLite files. ``close()`` closes what it
built, never what it was given (tests pass their own hub or key store). Nothing
is built at import time; ``bootstrap()`` reads and validates the settings first,
so a bad setting fails before anything opens.

The other composition modules only assemble from it: ``touchstream.app`` (the
FastAPI app), ``touchstream.read_side`` (projection runner, read routes),
``touchstream.channel_routes`` (phone/fax/form/visit routes),
``touchstream.email_wiring`` (IMAP follower, SMTP sender) and
``touchstream.serve`` (uvicorn).
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from channels.blobs import BlobStore
from channels.email.config import ImapConfig, InboundRules, SmtpConfig
from channels.email.state import ImapState
from channels.phone.cdr_tail import Quarantine
from channels.phone.config import CtiConfig, FaxConfig, TwilioConfig
from channels.phone.directory import SQLiteCallDirectory
from channels.web.config import FormsConfig
from commands.hub import Hub
from projections.engine import EventSource, Projection, Worker
from projections.store import ReadStore
from touchstream import settings as settings_mod
from touchstream.adapters.keys import KeyStore, open_key_store
from touchstream.fleet import wiring as fleet
from touchstream.fleet.calls import PostgresCallDirectory
from touchstream.fleet.leases import Leases
from touchstream.privacy.blobs import SealedBlobs
from touchstream.privacy.datakeys import DataKeys
from touchstream.privacy.erasure import Eraser
from touchstream.privacy.mapper import PersonalDataMapper
from touchstream.settings import Settings, store_kind
from touchstream.wiring import build_data_keys, build_hub

if TYPE_CHECKING:  # FastAPI loads only where routes are served
    from channels.phone.group_commit import GroupCommit
    from read_api.routes import ReadViews
    from touchstream.console.feed import CallFeed
    from touchstream.console.sessions import SessionStore
    from touchstream.metrics import Metrics

T = TypeVar("T")
_DRAIN_FIRST = frozenset({"webhook_committer"})


class Dependencies:
    """What the entry points run on; each piece built on first use and then shared."""

    def __init__(self, settings: Settings, *, hub: Hub | None = None,
                 keys: KeyStore | None = None) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._built: dict[str, Any] = {}
        self._owned: list[tuple[str, Callable[[], None]]] = []
        if hub is not None:
            self._built["hub"] = hub
        if keys is not None:
            self._built["keys"] = keys

    def _once(self, name: str, build: Callable[[], T],
              close: Callable[[T], None] | None = None) -> T:
        found = self._built.get(name)
        if found is None:
            with self._lock:
                found = self._built.get(name)
                if found is None:
                    found = self._built[name] = build()
                    if close is not None:
                        self._owned.append((name, lambda: close(found)))
        return found  # type: ignore[no-any-return]

    # ------------------------------------------------------------- shared pieces

    @property
    def hub(self) -> Hub:
        """The write model on the configured event store (its commands and appended
        events counted in ``metrics``)."""
        return self._once("hub", lambda: self.metrics.instrument_hub(
            build_hub(self.settings, keys=self.data_keys)), _close)

    @property
    def metrics(self) -> Metrics:
        """This process's counters for ``GET /metrics``."""
        from touchstream.metrics import Metrics

        return self._once("metrics", Metrics)

    @property
    def webhook_committer(self) -> GroupCommit:
        """The phone webhooks' group commit (Twilio and CTI share its transactions);
        closed, after what is queued is written, when these dependencies close."""
        from channels.phone.group_commit import GroupCommit

        return self._once("webhook_committer", lambda: self.metrics.instrument_committer(
            GroupCommit(lambda: self.hub)), _close)

    @property
    def data_keys(self) -> DataKeys:
        """Per-subject data keys: the write model's (a given hub's own when it has them),
        so an erasure seen by one part is seen by all."""
        def build() -> DataKeys:
            given = self._built.get("hub")
            mapper = getattr(given, "mapper", None)
            if isinstance(mapper, PersonalDataMapper):
                return mapper.keys
            return build_data_keys(self.settings)

        return self._once("data_keys", build)

    @property
    def read_store(self) -> ReadStore:
        return self._once("read_store", lambda: ReadStore(
            self.settings.read_store, timeout_s=self.settings.store_timeout_s))

    @property
    def read_views(self) -> ReadViews:
        """The views the read API and the screen-pop serve from."""
        from read_api.routes import ReadViews

        return self._once("read_views", lambda: ReadViews.on(self.read_store))

    @property
    def blobs(self) -> BlobStore:
        """Raw mail, attachments, fax documents: keyed addresses, sealed at rest."""
        return self._once("blobs", lambda: BlobStore(self.settings.data_dir / "blobs",
                                                     SealedBlobs(self.data_keys)))

    @property
    def cdr_quarantine(self) -> Quarantine:
        """CDR rows that could not be recorded (``touchstream import cdr``)."""
        return self._once("cdr_quarantine", lambda: Quarantine(cdr_quarantine_path(self.settings)))

    @property
    def eraser(self) -> Eraser:
        """Erasure of a person everywhere the hub keeps their data."""
        return self._once("eraser", lambda: Eraser(
            self.hub, self.data_keys, self.blobs, quarantine=self.cdr_quarantine,
            calls=self.call_directory, email_state=lambda: email_state(self.settings)))

    @property
    def call_directory(self) -> SQLiteCallDirectory | PostgresCallDirectory:
        return self._once("call_directory",
                          lambda: fleet.open_call_directory(self.settings),  # type: ignore[arg-type,return-value]
                          _close)

    def console_sessions(self, idle_s: float) -> SessionStore:
        """The console's sessions: in PostgreSQL when the stores are (every host sees a
        sign-in), else a SQLite file for this host's processes."""
        return self._once(f"console_sessions_{idle_s}",
                          lambda: fleet.open_session_store(self.settings, idle_s), _close)

    @property
    def leases(self) -> Leases:
        """Who follows which mailbox folder, runs which projection, sends which email."""
        return self._once("leases", lambda: fleet.open_leases(self.settings), _close)

    @property
    def call_feed(self) -> CallFeed:
        """Call steps as the phone webhooks verify them, to the console's live screen-pop."""
        from touchstream.console.feed import CallFeed

        return self._once("call_feed", CallFeed)

    @property
    def keys(self) -> KeyStore:
        """The API key store (in the read store's database)."""
        return self._once("keys", lambda: open_key_store(self.settings), _close)

    def event_source(self) -> EventSource:
        """A new reader of the log (the caller closes it); LISTEN/NOTIFY wakes it on
        PostgreSQL, a 2 ms poll on SQLite; on EventStoreDB the runner follows ``$all``
        through a catch-up subscription."""
        settings = self.settings
        kind = store_kind(settings.event_store)
        listen = settings.event_store if kind == "postgres" else None
        poll = 0.002 if kind == "sqlite" else 0.05
        hub = self.hub
        return EventSource(hub.recorder, hub.mapper, listen_uri=listen, poll_interval=poll,
                           subscribe=(kind == "kurrentdb"))

    def catch_up(self, projection: Projection) -> None:
        """Bring one read model up to the log's head now (a policy asks it what is left to
        do: the outbox sender, the work policies), under the engine's position check."""
        db = self.read_store.connect()
        source = self.event_source()
        try:
            Worker(db, source, [(projection, None)]).catch_up()
        finally:
            source.close()
            db.close()

    # ------------------------------------------------------- channel configuration

    @property
    def twilio(self) -> TwilioConfig:
        return self.settings.twilio.config(self.settings.core.public_base_url)

    @property
    def cti(self) -> CtiConfig:
        return self.settings.cti.config()

    @property
    def fax(self) -> FaxConfig:
        return self.settings.fax.config()

    @property
    def forms(self) -> FormsConfig:
        """The forms' settings, with their rate limit counted in the state store."""
        def build() -> FormsConfig:
            config = self.settings.forms.config(forms_secret(self.settings),
                                                self.settings.default_region)
            return replace(config, limiter=self._once(
                "rate_limiter", lambda: fleet.open_rate_limiter(self.settings, config), _close))

        return self._once("forms", build)

    @property
    def imap(self) -> ImapConfig | None:
        return self.settings.imap.config()

    @property
    def smtp(self) -> SmtpConfig | None:
        return self.settings.smtp.config()

    @property
    def inbound_rules(self) -> InboundRules:
        return self.settings.email.rules()

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Close what was built here, last built first."""
        with self._lock:
            owned, self._owned = self._owned, []
            # writers that drain a queue go first, while what they write to is still open
            owned.sort(key=lambda item: item[0] in _DRAIN_FIRST)
            for name, close in reversed(owned):
                self._built.pop(name, None)
                with suppress(Exception):  # closing one must not keep the others open
                    close()

    def start(self) -> None:
        """As a service of the app: nothing to start (everything is built on first use)."""

    def stop(self) -> None:
        self.close()


def email_state(settings: Settings) -> ImapState | None:
    """The email channel's IMAP state, if the channel may have run here (the caller
    closes it)."""
    return fleet.existing_imap_state(settings)


class OwningEventSource(EventSource):
    """A reader of the log that keeps what it reads through alive (the library's
    application closes its store when collected) and closes it with itself."""

    def __init__(self, hub: Hub, closing: Callable[[], None]) -> None:
        super().__init__(hub.recorder, hub.mapper)
        self._keep = hub
        self._closing = closing

    def close(self) -> None:
        super().close()
        self._closing()


def event_source_of(settings: Settings) -> EventSource:
    """A reader of the log built from ``settings`` alone: a rebuild's helper processes
    call it (``replays.fill``; picklable as ``partial(event_source_of, settings)``)."""
    deps = Dependencies(settings)
    return OwningEventSource(deps.hub, deps.close)


def bootstrap(env: Mapping[str, str] | None = None, **given: Any) -> Dependencies:
    """The settings from ``env`` (``os.environ`` when None), validated, and the
    dependencies over them; SettingsError before anything is built."""
    return Dependencies(settings_mod.load(env), **given)


@contextmanager
def opened(env: Mapping[str, str] | None = None) -> Iterator[Dependencies]:
    """``bootstrap()`` for one command: closed when the block ends."""
    deps = bootstrap(env)
    try:
        yield deps
    finally:
        deps.close()


def call_directory_path(settings: Settings) -> Path:
    return fleet.call_directory_path(settings)


def cdr_quarantine_path(settings: Settings) -> Path:
    return settings.data_dir / "quarantine" / "cdr.jsonl"


def forms_secret(settings: Settings) -> str:
    """``TOUCHSTREAM_FORMS_SECRET``, else one generated once for the fleet (in the state
    store when it is PostgreSQL, so a form rendered by one host is accepted by another),
    else one generated once and kept in the data dir."""
    configured = settings.forms.secret.get_secret_value()
    if configured:
        return configured
    shared = fleet.shared_secret(settings, "forms")
    if shared is not None:
        return shared
    path = settings.data_dir / "forms.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with suppress(FileExistsError):  # another process made it first: use theirs
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def _close(thing: Any) -> None:
    thing.close()  # the instance's own close (a subclass may override it)
