import pytest

from commands.identity import InvalidContactPointError, contact_key, normalise


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ada@Example.COM", "ada@example.com"),
        (" <ada@example.com> ", "ada@example.com"),
        ("anna@bücher.example", "anna@xn--bcher-kva.example"),
    ],
)
def test_emails_are_normalised(raw: str, expected: str) -> None:
    assert normalise("email", raw, None) == expected


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("020 7946 0018", "GB", "+442079460018"),
        ("+44 (0)20 7946 0018", None, "+442079460018"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("030 12345678", "DE", "+493012345678"),
        ("0131 496 0018", "gb", "+441314960018"),
    ],
)
def test_numbers_become_e164_with_the_configured_region(raw: str, region: str | None, expected: str) -> None:
    assert normalise("phone", raw, region) == expected


def test_national_number_without_region_is_refused_with_a_hint() -> None:
    with pytest.raises(InvalidContactPointError, match="TOUCHSTREAM_DEFAULT_REGION"):
        normalise("phone", "020 7946 0018", None)


@pytest.mark.parametrize("raw", ["+1 555 0100", "+44 20 7946 001", "+44 20 7946 00188",
                                 "+49 30 12", "+44 1 2345 6789"])
def test_numbers_outside_their_numbering_plan_are_refused(raw: str) -> None:
    with pytest.raises(InvalidContactPointError, match="not a valid phone number"):
        normalise("phone", raw, "GB")


@pytest.mark.parametrize(("raw", "expected"), [
    ("+1 202 555 0123", "+12025550123"),      # NANP fiction: 555-01xx behind a real area code
    ("020 7946 0018", "+442079460018"),       # Ofcom drama range inside an assigned block
    ("07700 900123", "+447700900123"),        # Ofcom drama mobiles: unknown to phonenumbers
    ("01632 960001", "+441632960001"),
])
def test_numbers_reserved_for_fiction_are_accepted(raw: str, expected: str) -> None:
    assert normalise("phone", raw, "GB") == expected


def test_a_number_with_a_country_code_gets_no_region_hint() -> None:
    with pytest.raises(InvalidContactPointError) as caught:
        normalise("phone", "+999 123", None)
    assert "TOUCHSTREAM_DEFAULT_REGION" not in str(caught.value)


@pytest.mark.parametrize("raw", ["not-an-email", "a@", "@b.example", "a b@c.example"])
def test_bad_emails_are_refused(raw: str) -> None:
    with pytest.raises(InvalidContactPointError):
        normalise("email", raw, None)


def test_phone_and_fax_share_one_number_space() -> None:
    assert contact_key("phone", "+1") == contact_key("fax", "+1") != contact_key("email", "+1")
