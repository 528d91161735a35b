"""Mounting the phone, fax, web-form, visit and email-quarantine routers into ``create_app``.

``channel_routers(settings)`` returns the router factories to pass as
``create_app(deps, routers=...)``; each builds its router from the app's
dependencies (``ctx.deps``). Public forms, marketing's link pages and link-signing
commands (``touchstream.marketing_routes``), the staff visit sync, the admins'
list of quarantined mail (``GET /admin/email/quarantine``) and the screen-pop
(over the directory/summary/timeline read models, which the projection runner
keeps up to date) are always mounted; each webhook only when
its secret is configured (an endpoint that could only ever answer 403 is not
worth exposing):

* Twilio voice: ``TOUCHSTREAM_TWILIO_AUTH_TOKEN`` and ``TOUCHSTREAM_PUBLIC_BASE_URL``
* CTI: ``TOUCHSTREAM_CTI_SECRET``
* fax: ``TOUCHSTREAM_FAX_SECRET`` (and ``TOUCHSTREAM_FAX_MEDIA_HOSTS``)
"""

from __future__ import annotations

from typing import Any

from channels.email.routes import quarantine_router
from channels.phone.cti import cti_router
from channels.phone.fax import fax_router
from channels.phone.group_commit import GroupCommit
from channels.phone.twilio import twilio_router
from channels.web.dispatch_commands import signature_router
from channels.web.forms import forms_router
from channels.web.survey import survey_router
from channels.web.visits import visits_router
from commands.identity import normalise_number
from read_api.screen_pop import screen_pop_router
from touchstream.app import AppContext, RouterFactory
from touchstream.email_wiring import imap_state
from touchstream.marketing_routes import marketing_routers
from touchstream.read_side import read_audit
from touchstream.selfservice_routes import selfservice_routes
from touchstream.settings import Settings


def channel_routers(settings: Settings) -> list[RouterFactory]:
    """The channel routers these settings call for; each built from the app's ``deps``."""
    factories: list[RouterFactory] = [
        # before the forms router: its /forms/{name} would take /forms/survey/{link}
        lambda ctx: survey_router(ctx.hub, ctx.deps.forms),
        lambda ctx: forms_router(ctx.hub, ctx.deps.forms),
        selfservice_routes,  # /help: the knowledge base and case status by signed link
        lambda ctx: visits_router(ctx.hub, ctx.authorize),
        lambda ctx: quarantine_router(ctx.hub, ctx.authorize,
                                      lambda: imap_state(ctx.deps.settings)),
        _screen_pop,
        *marketing_routers(),
        lambda ctx: signature_router(ctx.authorize, lambda: ctx.deps.blobs),
    ]
    def committer(ctx: AppContext) -> GroupCommit:
        # One writer per app, closed (drained) with its dependencies at shutdown.
        return ctx.deps.webhook_committer

    if settings.twilio.auth_token.get_secret_value() and settings.core.public_base_url:
        factories.append(lambda ctx: twilio_router(ctx.hub, ctx.deps.twilio,
                                                   ctx.deps.call_directory, committer(ctx),
                                                   on_step=ctx.deps.call_feed.publish))
    if settings.cti.secret.get_secret_value():
        factories.append(lambda ctx: cti_router(ctx.hub, ctx.deps.cti, ctx.deps.call_directory,
                                                committer(ctx), on_step=ctx.deps.call_feed.publish))
    if settings.fax.secret.get_secret_value():
        factories.append(lambda ctx: fax_router(ctx.hub, ctx.deps.fax, ctx.deps.blobs))
    return factories


def _screen_pop(ctx: AppContext) -> Any:
    region = ctx.settings.default_region
    return screen_pop_router(ctx.deps.read_views, ctx.authorize,
                             normalise_phone=lambda raw: normalise_number(raw, region),
                             audit=read_audit(ctx.deps))
