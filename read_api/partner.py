"""What a partner key sees (OWASP API3, property-level authorization): an allow-list.

A partner sees the customers assigned to it, and of them the business facts of
each touchpoint, never who on the staff did what, nor internal plumbing:

* timeline entries: every field except ``actor`` (shown as ``null``); internal
  notes are not in pages at all; a correction's entry (``touchpoint_corrected``)
  shows no ``summary`` (it is built from the changes, which may name staff);
* event payloads (``GET /events/{id}``): only the fields in ``EVENT_FIELDS``.
  Hidden: ``actor``, ``agent`` (call handler), ``staff`` (visit), ``source_key``,
  ``correlation_id``, ``causation_id``, blob references (``body_ref``, ``raw_ref``,
  ``recording_ref``, ``document_sha256``), provider ``details``, SMTP ``response``
  and ``envelope_id``. A field added to an event later stays hidden until added here.
  A correction's ``changes`` are filtered the same way (a changed ``agent`` or
  ``staff`` stays hidden).
* summary: ``events`` counts exclude internal notes, and ``notes`` shows only
  ``shared``.
"""

from __future__ import annotations

from typing import Any

ENTRY_HIDDEN = frozenset({"actor"})

EVENT_FIELDS = frozenset({
    # provenance a partner may know
    "occurred_at", "channel", "direction",
    # customer facts
    "name", "company", "lifecycle_stage", "changes", "kind", "value", "label", "reason",
    "from_stage", "to_stage", "partner_id",
    # notes (shared ones only reach a partner)
    "text", "visibility",
    # calls and callbacks
    "call_id", "from_number", "to_number", "queue", "ivr_choices", "outcome", "duration_s",
    "wait_s", "summary", "step", "sequence", "callback_id", "number", "requested_for",
    # email
    "message_id", "thread_id", "in_reply_to", "references", "from_address", "to", "cc",
    "subject", "body_text", "attachments", "attempt", "permanent", "original_message_id",
    "recipient", "action", "status", "diagnostic",
    # fax, visit, web form
    "fax_id", "pages", "document_size", "content_type", "visit_kind", "place", "purpose",
    "notes", "duration_min", "form_name", "submission_id", "page_url", "fields",
    # merges
    "target_id", "source_id",
    # voids and corrections (staff put a touchpoint right)
    "voided_event_id", "voided_channel", "corrected_event_id", "corrected_channel",
    "corrected_occurred_at",
    # sales (an opportunity's ``owner`` is staff: hidden like ``agent``)
    "opportunity_id", "title", "amount", "currency", "expected_close", "stage", "probability",
    "changed", "order_reference", "source_campaign_id", "account_id", "quote_id", "lines",
    "total", "valid_until", "order_number",
})

#: Timeline kinds whose summary a partner does not see (built from hidden fields too).
SUMMARY_HIDDEN_KINDS = frozenset({"touchpoint_corrected"})


def entry(item: dict[str, Any]) -> dict[str, Any]:
    """A timeline entry as a partner sees it."""
    shown = {k: (None if k in ENTRY_HIDDEN else v) for k, v in item.items()}
    if shown.get("kind") in SUMMARY_HIDDEN_KINDS:
        shown["summary"] = None
    return shown


def event_data(data: dict[str, Any]) -> dict[str, Any]:
    """An event's payload as a partner sees it."""
    shown = {k: v for k, v in data.items() if k in EVENT_FIELDS}
    if "corrected_event_id" in data and isinstance(shown.get("changes"), dict):
        # a correction's changes are a touchpoint's fields: the same allow-list applies
        # (a profile change's keys are the customer's own, shown as they are)
        shown["changes"] = {k: v for k, v in shown["changes"].items() if k in EVENT_FIELDS}
    return shown


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """A summary as a partner sees it: internal notes are not counted anywhere."""
    notes = result.get("notes", {})
    internal = int(notes.get("internal", 0))
    return {**result, "events": max(0, int(result["events"]) - internal),
            "notes": {"shared": int(notes.get("shared", 0))}}
