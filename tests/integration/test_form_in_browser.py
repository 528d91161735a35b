"""A real browser (headless Debian Chromium over CDP) fills in and submits a public form;
the submission appears on the customer's stream."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from channels.web.config import FormsConfig
from channels.web.forms import forms_router
from domain.customer import Customer
from tests.support.browser import chromium_missing, chromium_page, live_server
from tests.support.phone import app_with, provider, sqlite_hub

pytestmark = pytest.mark.skipif(chromium_missing() is not None,
                                reason=chromium_missing() or "")


def test_person_in_a_browser_submits_the_contact_form_and_it_lands_on_the_customer(
    tmp_path: Path,
) -> None:
    hub = sqlite_hub(tmp_path)
    config = FormsConfig(secret="browser-test-secret-123", default_region="GB", min_fill_s=1.0)
    try:
        with live_server(app_with(forms_router(provider(hub), config))) as base, \
                chromium_page() as page:
            page.navigate(f"{base}/forms/contact")
            assert page.evaluate("document.querySelector('h1').textContent") == "Contact us"
            # Submitting empty first: the errors come back next to the fields.
            time.sleep(1.1)  # the form refuses submissions faster than its minimum fill time
            page.evaluate("document.querySelector('button[type=submit]').click()")
            page.wait_for("Page.loadEventFired")
            assert page.evaluate(
                "document.getElementById('field-email').getAttribute('aria-invalid')") == "true"
            assert "Enter your email address" in page.evaluate(
                "document.getElementById('field-email-error').textContent")
            page.type_into("#field-name", "Grace Hopper")
            page.type_into("#field-email", "grace@example.com")
            page.type_into("#field-phone", "020 7946 0123")
            page.type_into("#field-message", "My invoice is wrong.")
            time.sleep(1.1)  # the re-rendered form carries a fresh render time
            page.evaluate("document.querySelector('button[type=submit]').click()")
            page.wait_for("Page.loadEventFired")
            assert page.evaluate("document.querySelector('h1').textContent") == "Thank you"
            reference = page.evaluate("document.querySelector('strong').textContent")
        customer = hub.find_by_contact("email", "grace@example.com")
        assert customer is not None
        (event,) = [e for e in hub.stream(customer) if isinstance(e, Customer.WebFormSubmitted)]
        assert event.submission_id == reference
        assert event.fields["message"] == "My invoice is wrong."
        assert event.fields["phone"] == "+442079460123"
        assert event.page_url == f"{base}/forms/contact"
    finally:
        hub.close()
