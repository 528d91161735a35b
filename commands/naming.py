"""Stream naming: which aggregate id each kind of stream gets on each store.

Ids derive from the business key (UUIDv5), so every process names one
customer, contact point, mailbox or source key alike.
"""

from __future__ import annotations

from uuid import UUID, uuid5

NAMESPACE = UUID("5d1f0c8e-8e53-4d55-a1f6-0f3c2b7e9a10")


def event_id(key: str, seq: int = 0) -> UUID:
    """The id of the ``seq``-th event recorded under a source key (the same in every process)."""
    return uuid5(NAMESPACE, f"{key}#{seq}")


class StreamNaming:
    """Aggregate ids per store: ``customer-<uuid>`` streams on EventStoreDB, UUIDs on SQL."""

    def __init__(self, prefixed: bool) -> None:
        self.prefixed = prefixed

    def _id(self, prefix: str, value: UUID) -> UUID | str:
        return f"{prefix}-{value}" if self.prefixed else value

    def _keyed(self, prefix: str, key: str) -> UUID | str:
        # The prefix is hashed in too: on the SQL stores ids are bare UUIDs and
        # a contact claim and a reservation must never share one.
        return self._id(prefix, uuid5(NAMESPACE, f"{prefix}:{key}"))

    def customer(self, customer_id: UUID) -> UUID | str:
        return self._id("customer", customer_id)

    def claim(self, key: str) -> UUID | str:
        return self._keyed("contact", key)

    def mailbox(self, account: str, folder: str) -> UUID | str:
        return self._id("mailbox", uuid5(NAMESPACE, f"mailbox:{account}|{folder}"))

    def reservation(self, source_key: str) -> UUID | str:
        return self._keyed("sourcekey", source_key)

    def held(self, source_key: str) -> UUID | str:
        return self._keyed("triage", source_key)

    @staticmethod
    def customer_uuid(aggregate_id: UUID | str) -> UUID:
        if isinstance(aggregate_id, UUID):
            return aggregate_id
        return UUID(str(aggregate_id).removeprefix("customer-"))

    @staticmethod
    def prospect(contact: str) -> UUID:
        """The prospect owning an unknown contact point: concurrent first contacts converge."""
        return uuid5(NAMESPACE, f"prospect:{contact}")
