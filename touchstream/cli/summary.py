"""A customer summary (the summary read model's row) as a readable page of text."""

from __future__ import annotations

from projections.summary.view import CustomerSummary
from touchstream.cli.reading import table, when


def render_summary(s: CustomerSummary) -> list[str]:
    notes = s["notes"]
    stage = s["lifecycle_stage"] or "-"
    if s["stage_changed_at"]:
        stage += f" (since {when(s['stage_changed_at'])})"
    facts = [
        ("customer", s["customer_id"]),
        ("company", s["company"]),
        ("stage", stage),
        ("partner", s["partner_id"]),
        ("registered", when(s["registered_at"])),
        ("last contact", when(s["last_contact_at"])),
        ("events", (f"{s['events']} (notes: {notes['shared']} shared, "
                   f"{notes['internal']} internal)")),
    ]
    facts += [(f"profile {key}", value) for key, value in sorted(s["profile"].items())
              if key not in ("name", "company")]  # shown above already
    if s["merged_from"]:
        facts.append(("merged from", ", ".join(s["merged_from"])))
    lines = [s["name"], ""]
    width = max(len(k) for k, _ in facts)
    lines += [f"{k:<{width}}  {'-' if v is None else v}" for k, v in facts]
    lines += ["", "Contact points"]
    lines += table(("KIND", "VALUE", "LABEL"),
                   [(c["kind"], c["value"], c["label"]) for c in s["contact_points"]])
    lines += ["", "Channels"]
    lines += table(("CHANNEL", "TOUCHES", "LAST CONTACT (UTC)"),
                   [(name, stats["touches"], when(stats["last_contact_at"]))
                    for name, stats in s["channels"].items()])
    if s["open_items"]:
        lines += ["", "Open callbacks"]
        lines += table(("REQUESTED", "FOR", "NUMBER", "REASON"),
                       [(when(cb["requested_at"]), when(cb["requested_for"]), cb["number"],
                         cb["reason"]) for cb in s["open_items"]], stretch=3)
    return lines
