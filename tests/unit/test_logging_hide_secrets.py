"""``logging.hide_secrets``: the one rule for the secrets a line or a log event never shows
inside free text (a url's login, a bearer token)."""

from __future__ import annotations

import pytest

from preform_pipeline.logging import hide_secrets, redact_secrets


class TestAUrlsLogin:
    """A url's password is hidden and its user kept; an HTTP url's user alone is a token
    (sent as basic auth with no password) and is hidden whole (session 46)."""

    @pytest.mark.parametrize(("text", "shown"), [
        ("http://olivia:hunter2@printhost:44388", "http://olivia:[redacted]@printhost:44388"),
        ("http://:hunter2@printhost", "http://:[redacted]@printhost"),
        ("http://hunter2@printhost:44388/scene/", "http://[redacted]@printhost:44388/scene/"),
        ("GET HTTPS://hunter2@[::1]:8/x failed", "GET HTTPS://[redacted]@[::1]:8/x failed"),
        ("http://hunter2@a and http://b:hunter2@c",
         "http://[redacted]@a and http://b:[redacted]@c"),
        # What holds no secret is left as it is. A PostgreSQL store's user alone is its
        # role; the password is given apart.
        ("postgresql://pipeline@db.lab:5432/jobs", None),
        ("http://printhost:44388/files/a@b.stl", None),
        ("http://printhost?who=a@b", None),
        ("mail olivia@lab.example", None),
        # Review rv46-loose: a url without a login, and one with an address after it.
        ("http://printhost", None),
        ("http://printhost:44388 is down: mail olivia@lab.example", None),
        # Session 47: a url directly followed by a `"` that closes it, then an address (a
        # JSON text's or an HTML tag's next field): the words between were hidden as a login.
        ("see http://printhost/a, olivia@lab.example", None),
        ('{"url":"http://printhost","to":"olivia@lab.example"}', None),
        ('{"url":"http://printhost:44388","to":"olivia@lab.example"}', None),
        ('["http://printhost","olivia@lab.example"]', None),
        ('<a href="http://printhost">olivia@lab.example</a>', None),
        ('<a href="http://printhost">mail:olivia@lab.example</a>', None),
        ('"http://olivia:hunter2@printhost","bob@lab.example"',
         '"http://olivia:[redacted]@printhost","bob@lab.example"'),
        # A password may hold a comma: hidden whole, so a port directly followed by a comma
        # and an address is hidden too (erring toward hiding).
        ("http://olivia:hun,ter2@printhost", "http://olivia:[redacted]@printhost"),
        ("http://printhost:44388,olivia@lab.example", "http://printhost:[redacted]@lab.example"),
        # Review rv47-loose: a `,` or a `"` that closes nothing is part of a login (httpx sends
        # it): hidden. So a url directly followed by a comma and an address is hidden too.
        ("http://to,ken@printhost", "http://[redacted]@printhost"),
        ('http://to"ken@printhost', "http://[redacted]@printhost"),
        ("http://oli,via:hunter2@printhost", "http://oli,via:[redacted]@printhost"),
        ('http://oli"via:hunter2@printhost', 'http://oli"via:[redacted]@printhost'),
        ('http://olivia:hun"ter2@printhost', "http://olivia:[redacted]@printhost"),
        ('http://olivia:hunter2"@printhost', "http://olivia:[redacted]@printhost"),
        ('{"url":"http://olivia:hun\\"ter2@printhost"}',
         '{"url":"http://olivia:[redacted]@printhost"}'),
        ("http://printhost,olivia@lab.example", "http://[redacted]@lab.example"),
        ("http://printhost,owner:olivia@lab.example",
         "http://printhost,owner:[redacted]@lab.example"),
        # s48: each of the other marks after a `"` closes the url too (a JSON key, a field
        # of a semicolon list, the end of an array, an object, a call's arguments).
        ('{"http://printhost":"olivia@lab.example"}', None),
        ('"http://printhost";"olivia@lab.example"', None),
        ('[["http://printhost"],["olivia@lab.example"]]', None),
        ('[{"url":"http://printhost"},"olivia@lab.example"]', None),
        ('open("http://printhost"),mail("olivia@lab.example")', None),
    ], ids=["password", "password-alone", "token-as-user", "ipv6-upper-case", "two",
            "postgres-role", "at-in-path", "at-in-query", "an-address", "no-login",
            "an-address-after-a-url", "comma-space-address",
            "json-quote-address", "json-quote-port-address", "json-array-address",
            "html-quote-address", "html-quote-field-address", "a-password-then-a-field",
            "a-comma-in-a-password", "port-comma-address", "a-comma-in-a-token",
            "a-quote-in-a-token", "a-comma-in-a-user", "a-quote-in-a-user",
            "a-quote-in-a-password", "a-quote-ending-a-password", "an-escaped-quote-in-json",
            "comma-address", "comma-field-address", "json-key-address",
            "semicolon-address", "array-end-address", "object-end-address",
            "call-end-address"])
    def test_only_the_secret_is_hidden(self, text: str, shown: str | None) -> None:
        hidden = hide_secrets(text)
        assert hidden == (shown or text)
        assert hide_secrets(hidden) == hidden

    def test_a_log_events_url_is_hidden_by_the_same_rule(self) -> None:
        event = redact_secrets(None, "info", {"event": "server_added",
                                              "url": "http://hunter2@printhost:44388"})
        assert event["url"] == "http://[redacted]@printhost:44388"
