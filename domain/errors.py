"""Domain errors: raised when a command would break a business rule."""


class DomainError(Exception):
    """Base class of every rule the domain refuses to break."""


class CustomerMergedError(DomainError):
    """Raised when a command targets a customer that was merged into another."""

    def __init__(self, customer_id: object, merged_into: object) -> None:
        super().__init__(f"customer {customer_id} was merged into {merged_into}")
        self.merged_into = merged_into


class CustomerErasedError(DomainError):
    """Raised when a command targets a customer whose personal data was erased."""


class InvalidTransitionError(DomainError):
    """Raised when a lifecycle stage, merge or unmerge is not allowed from the current state."""


class ContactPointTakenError(DomainError):
    """Raised when a contact point already belongs to another customer."""

    def __init__(self, contact: str, owner: object) -> None:
        super().__init__(f"{contact} already belongs to customer {owner}")
        self.owner = owner


class ContactPointUnknownError(DomainError):
    """Raised when a contact point is removed from a customer that does not own it."""


class FutureOccurrenceError(DomainError):
    """Raised when something is dated further ahead of the clock than the allowed skew."""


class TouchpointUnknownError(DomainError):
    """Raised when a void or correction names an event that is not a touchpoint of the customer."""


class TouchpointVoidedError(DomainError):
    """Raised when a voided touchpoint is voided again or corrected."""


class InvalidInputError(DomainError, ValueError):
    """Raised when a command's input is invalid on its face (an amount with too many
    decimals, a total that does not match its lines): bad input (HTTP 422), not a rule
    refusing good input."""
