"""Which event fields are personal data: the table crypto-shredding encrypts by.

Every field of every event of a data subject's stream is classified here, by
event class name, as *personal* (encrypted with the subject's own data key;
unreadable once the key is destroyed) or *not personal* (kept in clear so
counts, durations, channel mix and every other non-personal figure survive an
erasure). A unit test walks every event class and fails when a field is not
classified, so a new field cannot slip into the log in clear by accident.

Rules of thumb used for the table: names, companies of private persons,
addresses, numbers, subjects, bodies, notes, free text, references to stored
documents and recordings, and what is often built from them (source keys,
correlation and causation ids, which may carry a number or an address) are
personal. Event type, ids the hub generated, timestamps, channel,
direction, queue, durations, outcomes, statuses, counts, amounts, the acting
staff member's id, and the opaque ids sources and mail software generate (call
and fax ids, form submission ids, Message-IDs and the thread ids derived from
them) are not: they are what keeps calls, threads and touch counts whole
after an erasure. A Message-ID whose left part embeds an address is a known
limit of that choice (see README, Privacy).
"""

from __future__ import annotations

from typing import Any, get_origin

# Provenance carried by every customer event.
PROVENANCE_CLEAR = frozenset(
    {"event_id", "occurred_at", "channel", "direction", "actor", "originator_id",
     "originator_version", "timestamp"}
)
PROVENANCE_PERSONAL = frozenset({"source_key", "correlation_id", "causation_id"})

# Event class name -> its personal fields (beyond the provenance ones above).
PERSONAL_FIELDS: dict[str, frozenset[str]] = {
    "Registered": frozenset({"name", "company"}),
    "ProfileChanged": frozenset({"changes"}),
    "ContactPointAdded": frozenset({"value", "label"}),
    "ContactPointRemoved": frozenset({"value", "reason"}),
    "LifecycleStageChanged": frozenset({"reason"}),
    "NoteAdded": frozenset({"text"}),
    "PartnerAssigned": frozenset(),
    "CallLogged": frozenset({"from_number", "to_number", "ivr_choices", "recording_ref",
                             "summary"}),
    "CallStepRecorded": frozenset({"from_number", "to_number", "details"}),
    "CallbackRequested": frozenset({"number", "reason"}),
    "CallbackCompleted": frozenset(),
    "EmailRecorded": frozenset({"from_address", "to", "cc", "subject", "body_text",
                                "body_ref", "attachments", "raw_ref"}),
    "EmailQueued": frozenset({"from_address", "to", "cc", "subject", "body_text"}),
    "EmailSent": frozenset({"response"}),
    "EmailSendFailed": frozenset({"reason"}),
    "EmailOutcomeUnknown": frozenset({"reason"}),
    "EmailBounced": frozenset({"recipient", "diagnostic", "raw_ref"}),
    "FaxRecorded": frozenset({"from_number", "to_number", "document_sha256"}),
    "VisitRecorded": frozenset({"place", "purpose", "notes"}),
    "WebFormSubmitted": frozenset({"page_url", "fields"}),
    "TouchpointVoided": frozenset({"reason"}),
    "TouchpointCorrected": frozenset({"changes", "reason"}),
    "MergedInto": frozenset(),
    "Unmerged": frozenset(),
    "Absorbed": frozenset(),
    "Released": frozenset(),
    "PersonalDataErased": frozenset(),
    # -- accounts
    "AccountLinkJoined": frozenset(),
    "AccountLinkLeft": frozenset(),
    # -- sales
    "OpportunityOpened": frozenset({"title"}),
    "OpportunityStageMoved": frozenset(),
    "OpportunityChanged": frozenset(),
    "OpportunityWon": frozenset(),
    "OpportunityLost": frozenset(),
    "OpportunityReopened": frozenset(),
    "QuoteSent": frozenset(),
    "OrderPlaced": frozenset(),
    "OrderPaid": frozenset(),
    "OrderShipped": frozenset(),
    "OrderReturned": frozenset({"reason"}),
    "OrderCancelled": frozenset({"reason"}),
    # -- marketing
    "ConsentRequested": frozenset(),
    "ConsentGiven": frozenset(),
    "ConsentWithdrawn": frozenset(),
    "ConsentExpired": frozenset(),
    "CampaignEmailQueued": frozenset({"unsubscribe_url"}),
    "CampaignEmailSuppressed": frozenset(),
    # -- service
    "CaseOpened": frozenset({"subject"}),
    "CaseAssigned": frozenset(),
    "CaseReprioritised": frozenset(),
    "CaseTouchpointLinked": frozenset(),
    "CaseNoteAdded": frozenset({"text"}),
    "CaseWaitingOnCustomer": frozenset({"reason"}),
    "CaseResumed": frozenset(),
    "CaseResolved": frozenset(),
    "CaseReopened": frozenset({"reason"}),
    "CaseClosed": frozenset(),
    "ComplaintCompensationOffered": frozenset(),
    "ComplaintCompensationAnswered": frozenset(),
    "ComplaintFollowUpScheduled": frozenset(),
    "CaseSatisfactionRecorded": frozenset({"comment"}),
    "ServiceContractAdded": frozenset(),
    "ServiceContractEnded": frozenset(),
    "InstalledProductRecorded": frozenset(),
    "InstalledProductRemoved": frozenset({"reason"}),
    # -- knowledge
    "CaseArticleLinked": frozenset(),
    # -- dispatch
    "WorkOrderCreated": frozenset({"address", "summary"}),
    "WorkOrderScheduled": frozenset(),
    "WorkOrderAssigned": frozenset(),
    "WorkOrderAccepted": frozenset(),
    "WorkOrderDeclined": frozenset({"reason"}),
    "WorkOrderEnRoute": frozenset(),
    "WorkOrderArrived": frozenset(),
    "WorkOrderCompleted": frozenset({"signature_ref", "notes"}),
    "WorkOrderClosed": frozenset({"reason"}),
    "WorkOrderCancelled": frozenset({"reason"}),
    # -- work
    "TaskCreated": frozenset({"title"}),
    "TaskAssigned": frozenset(),
    "TaskRescheduled": frozenset(),
    "TaskCompleted": frozenset({"outcome"}),
    "TaskCancelled": frozenset({"reason"}),
    "WorkRouted": frozenset(),
    "WorkMoved": frozenset({"reason"}),
    # -- replies (what was filled in and rendered is the customer's; the recipient key
    # is a keyed digest of an address, and the address itself where no secret is set)
    "TemplateRendered": frozenset({"variables", "body_html"}),
    "AutoReplyQueued": frozenset({"recipient_key"}),
    "AutoReplyWithheld": frozenset(),
    "MaterialSent": frozenset(),
    # -- territories
    "OpportunityTerritoryMoved": frozenset(),
}

# Fields that are explicitly not personal, per event class (documentation and the
# completeness test: every annotated field is in exactly one of the two tables).
CLEAR_FIELDS: dict[str, frozenset[str]] = {
    "Registered": frozenset({"lifecycle_stage"}),
    "ProfileChanged": frozenset(),
    "ContactPointAdded": frozenset({"kind"}),
    "ContactPointRemoved": frozenset({"kind"}),
    "LifecycleStageChanged": frozenset({"from_stage", "to_stage"}),
    "NoteAdded": frozenset({"visibility"}),
    "PartnerAssigned": frozenset({"partner_id"}),
    "CallLogged": frozenset({"call_id", "queue", "agent", "outcome", "duration_s", "wait_s"}),
    "CallStepRecorded": frozenset({"call_id", "step", "sequence", "queue", "agent"}),
    "CallbackRequested": frozenset({"callback_id", "requested_for"}),
    "CallbackCompleted": frozenset({"callback_id", "call_id", "outcome"}),
    "EmailRecorded": frozenset({"message_id", "thread_id", "in_reply_to", "references"}),
    "EmailQueued": frozenset({"message_id", "thread_id", "in_reply_to", "references",
                              "envelope_id"}),
    "EmailSent": frozenset({"message_id", "attempt"}),
    "EmailSendFailed": frozenset({"message_id", "attempt", "permanent"}),
    "EmailOutcomeUnknown": frozenset({"message_id", "attempt"}),
    "EmailBounced": frozenset({"original_message_id", "report_message_id", "action", "status"}),
    "FaxRecorded": frozenset({"fax_id", "pages", "document_size", "content_type", "status"}),
    "VisitRecorded": frozenset({"visit_kind", "staff", "outcome", "duration_min"}),
    "WebFormSubmitted": frozenset({"form_name", "submission_id"}),
    "TouchpointVoided": frozenset({"voided_event_id", "voided_channel",
                                   "channel_last_contact"}),
    "TouchpointCorrected": frozenset({"corrected_event_id", "corrected_channel",
                                      "corrected_occurred_at", "channel_last_contact"}),
    "MergedInto": frozenset({"target_id"}),
    "Unmerged": frozenset({"target_id"}),
    "Absorbed": frozenset({"source_id"}),
    "Released": frozenset({"source_id"}),
    "PersonalDataErased": frozenset({"reason"}),
    # -- accounts
    "AccountLinkJoined": frozenset({"link_id", "account_id", "role", "joined_at"}),
    "AccountLinkLeft": frozenset({"link_id", "account_id", "left_at"}),
    # -- sales (the loss reason is a code from the pipeline's list, not free text)
    "OpportunityOpened": frozenset({"opportunity_id", "amount", "currency", "expected_close",
                                    "owner", "stage", "probability", "source_campaign_id",
                                    "account_id"}),
    "OpportunityStageMoved": frozenset({"opportunity_id", "from_stage", "to_stage",
                                        "probability"}),
    "OpportunityChanged": frozenset({"opportunity_id", "changed", "amount", "currency",
                                     "expected_close", "owner"}),
    "OpportunityWon": frozenset({"opportunity_id", "from_stage", "order_reference", "amount",
                                 "currency", "probability"}),
    "OpportunityLost": frozenset({"opportunity_id", "from_stage", "reason", "probability"}),
    "OpportunityReopened": frozenset({"opportunity_id", "from_stage", "to_stage",
                                      "probability"}),
    "QuoteSent": frozenset({"quote_id", "opportunity_id", "lines", "total", "currency",
                            "valid_until"}),
    "OrderPlaced": frozenset({"order_number", "lines", "total", "currency", "opportunity_id"}),
    "OrderPaid": frozenset({"order_number", "amount", "currency"}),
    "OrderShipped": frozenset({"order_number"}),
    "OrderReturned": frozenset({"order_number", "amount", "currency"}),
    "OrderCancelled": frozenset({"order_number"}),
    # -- marketing
    "ConsentRequested": frozenset({"consent_request_id", "consent_channel", "purpose",
                                   "evidence_kind", "evidence_id"}),
    "ConsentGiven": frozenset({"consent_channel", "purpose", "evidence_kind", "evidence_id",
                               "expires_at"}),
    "ConsentWithdrawn": frozenset({"consent_channel", "purpose", "reason", "campaign_id"}),
    "ConsentExpired": frozenset({"consent_channel", "purpose"}),
    "CampaignEmailQueued": frozenset({"campaign_id", "message_id", "purpose"}),
    "CampaignEmailSuppressed": frozenset({"campaign_id", "message_id", "purpose", "reason"}),
    # -- service
    "CaseOpened": frozenset({"case_id", "case_kind", "category", "priority", "case_channel",
                             "queue", "origin_event_id", "thread_id", "account_id",
                             "product_id", "contract_id", "outside_contract", "sla_policy",
                             "severity", "cause_category"}),
    "CaseAssigned": frozenset({"case_id", "queue", "agent"}),
    "CaseReprioritised": frozenset({"case_id", "priority"}),
    "CaseTouchpointLinked": frozenset({"case_id", "touchpoint_event_id", "touchpoint_channel",
                                       "touchpoint_direction", "automatic"}),
    "CaseNoteAdded": frozenset({"case_id", "visibility"}),
    "CaseWaitingOnCustomer": frozenset({"case_id"}),
    "CaseResumed": frozenset({"case_id", "automatic"}),
    "CaseResolved": frozenset({"case_id", "resolution_code", "first_contact"}),
    "CaseReopened": frozenset({"case_id"}),
    "CaseClosed": frozenset({"case_id"}),
    "ComplaintCompensationOffered": frozenset({"case_id", "amount", "currency"}),
    "ComplaintCompensationAnswered": frozenset({"case_id", "accepted"}),
    "ComplaintFollowUpScheduled": frozenset({"case_id", "follow_up_on", "follow_up_channel"}),
    "CaseSatisfactionRecorded": frozenset({"case_id", "score"}),
    "ServiceContractAdded": frozenset({"contract_id", "starts_on", "ends_on",
                                       "covered_products", "sla_policy", "visits_included",
                                       "account_id"}),
    "ServiceContractEnded": frozenset({"contract_id", "ends_on"}),
    "InstalledProductRecorded": frozenset({"product_id", "product_code", "serial_number",
                                           "installed_on"}),
    "InstalledProductRemoved": frozenset({"product_id"}),
    # -- knowledge
    "CaseArticleLinked": frozenset({"case_id", "article_id", "relation", "view_id"}),
    # -- dispatch
    "WorkOrderCreated": frozenset({"work_order_id", "case_id", "skill", "priority",
                                   "window_start", "window_end"}),
    "WorkOrderScheduled": frozenset({"work_order_id", "window_start", "window_end"}),
    "WorkOrderAssigned": frozenset({"work_order_id", "technician_id", "previous_technician_id",
                                    "window_start", "window_end"}),
    "WorkOrderAccepted": frozenset({"work_order_id", "technician_id"}),
    "WorkOrderDeclined": frozenset({"work_order_id", "technician_id"}),
    "WorkOrderEnRoute": frozenset({"work_order_id", "technician_id", "eta"}),
    "WorkOrderArrived": frozenset({"work_order_id", "technician_id"}),
    "WorkOrderCompleted": frozenset({"work_order_id", "technician_id", "parts",
                                     "minutes_spent"}),
    "WorkOrderClosed": frozenset({"work_order_id"}),
    "WorkOrderCancelled": frozenset({"work_order_id", "technician_id"}),
    # -- work (staff ids, queues and rule names are the hub's own codes, not personal)
    "TaskCreated": frozenset({"task_id", "task_kind", "due_at", "ends_at", "reminder_at",
                              "assignee", "queue", "link_kind", "link_id", "origin_event_id",
                              "rule"}),
    "TaskAssigned": frozenset({"task_id", "assignee", "previous_assignee", "queue"}),
    "TaskRescheduled": frozenset({"task_id", "due_at", "ends_at", "reminder_at"}),
    "TaskCompleted": frozenset({"task_id"}),
    "TaskCancelled": frozenset({"task_id"}),
    "WorkRouted": frozenset({"item_kind", "item_id", "queue", "agent", "rule", "strategy",
                             "outcome"}),
    "WorkMoved": frozenset({"item_kind", "item_id", "from_agent", "to_agent", "queue"}),
    # -- replies (template ids and versions, loop-rule codes, Message-IDs; the material is
    # a library document the company publishes, named by its blob address and title)
    "TemplateRendered": frozenset({"message_id", "template_id", "template_version", "language",
                                   "purpose"}),
    "AutoReplyQueued": frozenset({"case_id", "trigger_event_id", "message_id"}),
    "AutoReplyWithheld": frozenset({"case_id", "trigger_event_id", "reason"}),
    "MaterialSent": frozenset({"material_id", "name", "content_type", "size", "send_channel",
                               "message_id", "fax_id", "rule"}),
    # -- territories (territory names, staff ids, move ids)
    "OpportunityTerritoryMoved": frozenset({"opportunity_id", "territory", "move_id",
                                            "from_owner", "to_owner"}),
}


# A touchpoint held for triage (``domain.claims.HeldTouchpoint``) belongs to nobody
# yet, so it is its own data subject: the fields of its ``Held`` event that carry
# what arrived are sealed under a key of the held item alone, destroyed once the
# item is assigned (then the customer's stream holds the touchpoint) or when the
# person it names is erased.
HELD_PERSONAL = frozenset({"source_key", "contact", "command"})
HELD_CLEAR = frozenset({"command_kind"})
HELD_SUBJECT_PREFIX = "held:"


# A message the email channel kept aside (``domain.mailbox:Mailbox.MessageQuarantined``)
# may belong to nobody yet either: what it says about its sender (the source key,
# built from the raw bytes' digest and the Message-ID, the reason's detail, which
# can quote an address, and the stored bytes' addresses) is sealed under a key of
# that entry alone, destroyed when the person it names is erased.
QUARANTINED_PERSONAL = frozenset({"source_key", "detail", "raw_ref", "header_ref"})
QUARANTINED_CLEAR = frozenset({"event_id", "reason", "message_id", "uidvalidity", "uid", "size"})
QUARANTINED_SUBJECT_PREFIX = "mailq:"


def quarantined_subject(event_id: object) -> str:
    """The data subject of the quarantined message whose event id is ``event_id``."""
    return f"{QUARANTINED_SUBJECT_PREFIX}{event_id}"


def held_subject(held_id: object) -> str:
    """The data subject of the held touchpoint whose stream id is ``held_id`` (a keyed
    digest of its source key)."""
    return f"{HELD_SUBJECT_PREFIX}{held_id}"


class UnclassifiedFieldError(KeyError):
    """Raised when an event class has no entry in the personal-data table."""


def personal_fields(event_class_name: str) -> frozenset[str]:
    """The personal fields of an event class, provenance included."""
    try:
        return PERSONAL_FIELDS[event_class_name] | PROVENANCE_PERSONAL
    except KeyError as exc:
        raise UnclassifiedFieldError(
            f"event class {event_class_name!r} is not in domain.personal's table"
        ) from exc


def redacted_value(annotation: Any) -> Any:
    """What an erased field reads as: empty collections for collections, else None."""
    origin = get_origin(annotation) or annotation
    if origin in (list, tuple, set, frozenset):
        return []
    if origin is dict:
        return {}
    if str(annotation).startswith(("list", "dict")):  # string annotations (PEP 563)
        return [] if str(annotation).startswith("list") else {}
    return None


def markdown_table() -> str:
    """The README's personal-data table (a test checks the README carries it verbatim)."""
    rows = ["| Event | Personal (sealed under the customer's key) | Not personal (in clear) |",
            "|---|---|---|"]
    shown = PROVENANCE_CLEAR - {"originator_id", "originator_version", "timestamp"}
    rows.append(f"| every event (provenance) | {', '.join(sorted(PROVENANCE_PERSONAL))} | "
                f"{', '.join(sorted(shown))}, stream id, version, recorded time |")
    for name, personal in PERSONAL_FIELDS.items():
        clear = CLEAR_FIELDS[name]
        rows.append(f"| {name} | {', '.join(sorted(personal)) or '—'} | "
                    f"{', '.join(sorted(clear)) or '—'} |")
    return "\n".join(rows)
