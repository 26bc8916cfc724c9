"""An address httpx refuses for its scheme, said as it is: without one, or with another.

httpx raises ``UnsupportedProtocol`` (httpcore's connection pool, read in httpx 0.29) for an
address with no scheme and for one whose scheme is not http, https, ws or wss; the words said
"the address's scheme is not http:// or https://" of both, though the first has none. Real
httpx requests: both are refused before any connection is made.
"""

from __future__ import annotations

import httpx
import pytest

from preform_pipeline.transportwords import transport_failure


def _refused(url: str) -> httpx.UnsupportedProtocol:
    with httpx.Client() as client, pytest.raises(httpx.UnsupportedProtocol) as caught:
        client.get(url)
    return caught.value


class TestASchemeRefused:

    @pytest.mark.parametrize("url", ["example.com/status", "//127.0.0.1:9/status"])
    def test_an_address_without_a_scheme_is_said_to_have_none(self, url: str) -> None:
        assert transport_failure(_refused(url)) == (
            "the address has no scheme: it must begin with http:// or https://")

    def test_another_scheme_is_named(self) -> None:
        assert transport_failure(_refused("ftp://127.0.0.1:9/status")) == (
            "the address's scheme ftp:// is not http:// or https://")

    def test_one_raised_outside_a_request_names_no_scheme(self) -> None:
        assert transport_failure(httpx.UnsupportedProtocol("refused")) == (
            "the address's scheme is not http:// or https://")
