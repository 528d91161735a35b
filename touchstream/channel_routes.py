"""Mounting the phone, fax, web-form and visit routers into ``create_app``.

``channel_routers(settings)`` returns the router factories to pass as
``create_app(settings, routers=...)``. Public forms, the staff visit sync and
the screen-pop (over the directory/summary/timeline read models, which the
projection runner keeps up to date) are always mounted; each webhook only when its secret is configured (an
endpoint that could only ever answer 403 is not worth exposing):

* Twilio voice: ``TOUCHSTREAM_TWILIO_AUTH_TOKEN`` and ``TOUCHSTREAM_PUBLIC_BASE_URL``
* CTI: ``TOUCHSTREAM_CTI_SECRET``
* fax: ``TOUCHSTREAM_FAX_SECRET`` (and ``TOUCHSTREAM_FAX_MEDIA_HOSTS``)
"""

from __future__ import annotations

from collections.abc import Mapping

from channels.blobs import BlobStore
from channels.email.routes import quarantine_router
from channels.phone.cti import cti_router
from channels.phone.directory import SQLiteCallDirectory
from channels.phone.fax import fax_router
from channels.phone.group_commit import GroupCommit
from channels.phone.twilio import twilio_router
from channels.web.forms import forms_router
from channels.web.visits import visits_router
from commands.identity import normalise_number
from read_api.screen_pop import screen_pop_router
from touchstream import channel_settings
from touchstream.app import AppContext, RouterFactory
from touchstream.email_wiring import imap_state
from touchstream.read_side import read_views
from touchstream.settings import Settings


def channel_routers(settings: Settings, env: Mapping[str, str] | None = None) -> list[RouterFactory]:
    forms = channel_settings.forms(settings, env)
    twilio = channel_settings.twilio(env)
    cti = channel_settings.cti(env)
    fax = channel_settings.fax(env)
    directory_path = channel_settings.call_directory_path(settings.data_dir)
    directories: list[SQLiteCallDirectory] = []

    def directory() -> SQLiteCallDirectory:
        if not directories:
            directories.append(SQLiteCallDirectory(directory_path))
        return directories[0]

    region = settings.default_region
    factories: list[RouterFactory] = [
        lambda ctx: forms_router(ctx.hub, forms),
        lambda ctx: visits_router(ctx.hub, ctx.authorize),
        lambda ctx: quarantine_router(ctx.hub, ctx.authorize, lambda: imap_state(settings)),
        lambda ctx: screen_pop_router(read_views(settings), ctx.authorize,
                                      normalise_phone=lambda raw: normalise_number(raw, region)),
    ]
    committers: dict[int, GroupCommit] = {}

    def committer(ctx: AppContext) -> GroupCommit:
        # One writer per app: the Twilio and CTI webhooks share its transactions.
        return committers.setdefault(id(ctx), GroupCommit(ctx.hub))

    if twilio.auth_token and twilio.public_base_url:
        factories.append(lambda ctx: twilio_router(ctx.hub, twilio, directory(), committer(ctx)))
    if cti.secret:
        factories.append(lambda ctx: cti_router(ctx.hub, cti, directory(), committer(ctx)))
    if fax.secret:
        blobs = BlobStore(settings.data_dir / "blobs")
        factories.append(lambda ctx: fax_router(ctx.hub, fax, blobs))
    return factories

