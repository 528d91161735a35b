"""Header decoding, address normalisation and body fallbacks of the email parser."""

from __future__ import annotations

from channels.email.inbound import header_message_id
from channels.email.parse import normalise_address, parse_message


def test_raw_utf8_headers_decode_like_policy_default_and_idn_domains_are_normalised() -> None:
    raw = ("From: Kunde <Kunde@Bücher.Example>\r\nTo: =?iso-8859-1?q?J=F6rg?= <j@x.de>\r\n"
           "Subject: Überweisung für Rechnung №42 — danke 🙂\r\n\r\nbody\r\n").encode()
    parsed = parse_message(raw)
    assert parsed.subject == "Überweisung für Rechnung №42 — danke 🙂"
    assert parsed.from_address == "Kunde@xn--bcher-kva.example"
    assert parsed.to == ["j@x.de"]


def test_header_bytes_that_are_not_utf8_become_replacement_characters() -> None:
    parsed = parse_message(b"From: a@example.com\r\nSubject: Gr\xfc\xdfe\r\n\r\nx\r\n")
    assert parsed.subject == "Gr\ufffd\ufffde"


def test_encoded_words_in_other_charsets_and_folded_subjects_are_decoded() -> None:
    raw = (b"From: a@example.com\r\nSubject: =?koi8-r?B?8NLJ18XU?=\r\n =?utf-8?q?_caf=C3=A9?="
           b"\r\n\r\nx\r\n")
    assert parse_message(raw).subject == "Привет café"


def test_an_idn_domain_idna_refuses_is_kept_lower_cased() -> None:
    assert normalise_address("ada@EXAMPLE.com") == "ada@example.com"
    assert normalise_address("x@a..b") == "x@a..b"


def test_text_in_an_inline_part_with_a_filename_is_the_body_and_kept_as_a_file() -> None:
    raw = (b'From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; '
           b'boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain; name="n.txt"\r\n'
           b'Content-Disposition: inline; filename="n.txt"\r\n\r\nthe text\r\n--b--\r\n')
    parsed = parse_message(raw)
    assert parsed.body_text == "the text"
    assert [a.filename for a in parsed.attachments] == ["n.txt"]


def test_text_behind_a_boundary_that_was_never_declared_is_found() -> None:
    raw = (b'From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; '
           b'boundary="declared"\r\n\r\n--actual\r\nContent-Type: text/html\r\n\r\n'
           b"<p>hello <b>you</b></p>\r\n--actual--\r\n")
    assert parse_message(raw).body_text == "hello you"


def test_the_message_id_of_a_header_block_is_read() -> None:
    header = b"From: a@example.com\r\nMessage-ID:\r\n <big@example.com>\r\nSubject: x\r\n"
    assert header_message_id(header) == "<big@example.com>"


def test_the_plain_address_fast_path_reads_what_the_header_registry_reads() -> None:
    from email import policy

    from channels.email.parse import plain_addresses

    plain = ["a@example.com", " Ada Lovelace <ada.l+x@Example.COM> ", "Customer 5 <c5@example.com>",
             "<bare@x.de>", "a@b.c, Bob O'Neil <bob@d.e>,c#d@f", "Ada<a@x.y>", "a@b\t,\t<c@d>"]
    for text in plain:
        expected = [a.addr_spec for a in policy.default.header_factory("To", text).addresses]
        assert plain_addresses(text) == expected, text
    others = ['"Lovelace, Ada" <a@x.y>', "=?utf-8?q?J=C3=B6rg?= <j@x.de>", "a@b (comment)",
              "undisclosed-recipients:;", "a@b,", "Ada <a@x.y", "a@[127.0.0.1]", "a..b@x.y",
              "Dr. Ada <a@x.y>", "a@b\r\n <c@d>", "Jörg <j@x.de>", ""]
    for text in others:
        assert plain_addresses(text) is None, text


def _tree(msg: object) -> object:
    from email.message import Message
    assert isinstance(msg, Message)
    payload = msg.get_payload()
    return (msg.items(), msg.get_unixfrom(), msg.preamble, msg.epilogue, msg.get_default_type(),
            [_tree(p) for p in payload] if isinstance(payload, list) else payload)


def test_the_split_of_plain_messages_builds_the_feed_parsers_tree() -> None:
    from email import policy
    from email.parser import BytesParser
    from pathlib import Path

    from channels.email.parse import _split_plain
    from touchstream.bench.email import realistic_messages

    b = b"Content-Type: multipart/mixed; boundary=b\r\n"
    crafted = [
        b + b"\r\npre\r\n--b\r\nContent-Type: text/plain\r\n\r\none\r\n--b \r\n\r\ntwo\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\n--b--\r\nepi\r\nlogue",
        b + b"\r\n--b\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\n\r\nx\r\n"
        b"--c\r\nContent-Type: text/html\r\n\r\n<p>y</p>\r\n--c--\r\n\r\n--b1\r\n--b\r\n\r\nz\r\n--b--",
        b + b"\r\n--b\r\n\r\nno close\r\n",           # no close delimiter
        b + b"\r\n--b\r\n--b\r\n\r\nx\r\n--b--\r\n",  # repeated delimiter lines
        b + b"\r\nno delimiter at all\r\n",
        b"Subject: x\r\nnot a header\r\n\r\nbody\r\n",
        b"Subject: x\nTo: a@b\n\nbare LF\n",
        b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nbody\r\n",
        b"Content-Type: multipart/digest; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n",
    ]
    plain = [*crafted[:2], b"\r\nno headers\r\n"]
    fixtures = sorted((Path(__file__).parents[1] / "fixtures" / "mail").glob("*.eml"))
    corpus = [*crafted, plain[2], *(f.read_bytes() for f in fixtures), *realistic_messages(60)]
    split = 0
    for raw in corpus:
        fast = _split_plain(raw)
        if fast is not None:
            split += 1
            assert _tree(fast) == _tree(BytesParser(policy=policy.compat32).parsebytes(raw))
    assert split >= 60  # the bench's messages and the plain fixtures take the fast path
    assert all(_split_plain(raw) is not None for raw in plain)
    assert all(_split_plain(raw) is None for raw in crafted[2:])


def test_plain_one_line_subjects_skip_the_registry_and_read_the_same() -> None:
    from email import policy

    from channels.email.parse import _decode

    for text in ["Invoice 42", "  two  spaces\tand a tab ", "a ?= b", "", "[#1] {x} ~!@$%^&*()"]:
        assert _decode("Subject", text) == str(policy.default.header_factory("Subject", text))
    assert _decode("Subject", "=?utf-8?q?caf=C3=A9?=") == "café"  # encoded words still decoded
