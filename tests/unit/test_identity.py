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
        ("030 1234567", "DE", "+49301234567"),
    ],
)
def test_numbers_become_e164_with_the_configured_region(raw: str, region: str | None, expected: str) -> None:
    assert normalise("phone", raw, region) == expected


def test_national_number_without_region_is_refused_with_a_hint() -> None:
    with pytest.raises(InvalidContactPointError, match="TOUCHSTREAM_DEFAULT_REGION"):
        normalise("phone", "020 7946 0018", None)


@pytest.mark.parametrize("raw", ["not-an-email", "a@", "@b.example", "a b@c.example"])
def test_bad_emails_are_refused(raw: str) -> None:
    with pytest.raises(InvalidContactPointError):
        normalise("email", raw, None)


def test_phone_and_fax_share_one_number_space() -> None:
    assert contact_key("phone", "+1") == contact_key("fax", "+1") != contact_key("email", "+1")
