"""The dashboard's access rules over real HTTP on 127.0.0.1: tokens, sessions, roles, cross-site
requests, and what reaches the logs."""

from __future__ import annotations

import html
import http.client
import re
from contextlib import closing
from http.cookies import SimpleCookie

import httpx
import pytest
from structlog.testing import capture_logs

from preform_pipeline.settings.web import WebSettings, WebUser
from preform_pipeline.store import JobState
from preform_pipeline.web import WebServer, auth
from preform_pipeline.web.auth import SESSION_COOKIE
from tests.unit.web import clients
from tests.unit.web.conftest import OPERATOR_SECRET, VIEWER_SECRET, Served, logged_in


def _ended_client(served: Served) -> httpx.Client:
    """A browser whose session cookie names a session the dashboard no longer knows (as
    after a restart)."""
    return clients.Client(base_url=served.url, follow_redirects=False,
                        cookies={SESSION_COOKIE: "a-session-before-the-restart"})


#: What a browser sends with a form's press (a navigation to its answer).
_BROWSER_PRESS = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
                  "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "same-origin"}


def _form_value(page: str, name: str) -> str:
    found = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)">', page)
    assert found is not None, page
    return html.unescape(found.group(1))


def _set_cookies(answer: httpx.Response) -> SimpleCookie:
    """The cookies ``answer`` sets, with their attributes."""
    cookies = SimpleCookie()
    for line in answer.headers.get_list("set-cookie"):
        cookies.load(line)
    return cookies


def _kept_over_a_restart(answer: httpx.Response) -> dict[str, str]:
    """The cookies ``answer`` set that a browser keeps when it is closed and opened again:
    those with a lifetime of their own (a session cookie, without one, is dropped)."""
    return {name: morsel.value for name, morsel in _set_cookies(answer).items()
            if morsel["max-age"] or morsel["expires"]}


def _bearer(name: str, secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {name}:{secret}"}


class TestTokens:
    """Only a right token (or session) reads anything but /healthz."""

    def test_a_wrong_token_gets_401_everywhere(self, served: Served) -> None:
        for path in ("/metrics", "/", f"/builds/{served.held_id}", "/failed"):
            answer = clients.get(served.url + path, headers=_bearer("olivia", "wrong-secret"))
            assert answer.status_code == 401, path
        # Another scheme is a credential too, and wrong: a page says 401 rather than sending
        # it to the login page (session 43's mutation run: pages were not tried).
        for path in ("/metrics", "/failed"):
            answer = clients.get(served.url + path, headers={"Authorization": "Basic b2xpdmlh"})
            assert answer.status_code == 401, path

    def test_no_credential_is_sent_to_the_login_page_and_metrics_says_401(
        self, served: Served
    ) -> None:
        page = clients.get(served.url + "/failed")
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        assert clients.get(served.url + "/metrics").status_code == 401

    def test_a_right_token_reads_metrics_and_healthz_needs_none(self, served: Served) -> None:
        answer = clients.get(served.url + "/metrics", headers=_bearer("victor", VIEWER_SECRET))
        assert answer.status_code == 200
        assert clients.get(served.url + "/healthz").json()["status"] == "ok"

    def test_a_wrong_password_on_the_login_page_gets_401_and_no_cookie(
        self, served: Served
    ) -> None:
        answer = clients.post(served.url + "/login",
                            data={"name": "olivia", "secret": "not-her-password"})
        assert answer.status_code == 401 and "pp_session" not in answer.headers.get(
            "set-cookie", "")

    def test_the_server_listens_on_loopback_by_default(self, served: Served) -> None:
        assert served.url.startswith("http://127.0.0.1:")


class TestRoles:
    """A viewer looks; an operator acts, and the audit row names them."""

    def test_a_viewer_cannot_approve(self, served: Served) -> None:
        answer = clients.post(f"{served.url}/builds/{served.held_id}/approve",
                            headers=_bearer("victor", VIEWER_SECRET))
        assert answer.status_code == 403
        assert served.store.get_build(served.held_id).state is JobState.AWAITING_APPROVAL

    def test_a_viewer_session_cannot_cancel_even_with_its_csrf_token(
        self, served: Served
    ) -> None:
        client, csrf = logged_in(served, "victor", VIEWER_SECRET)
        with closing(client):
            answer = client.post("/cases/cancel", data={"csrf": csrf, "target": "case:C-7"})
        assert answer.status_code == 403
        assert served.store.get_build(served.held_id).state is JobState.AWAITING_APPROVAL

    def test_an_operator_approves_and_the_audit_row_names_them(self, served: Served) -> None:
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            answer = client.post(f"/builds/{served.held_id}/approve",
                                 data={"csrf": csrf, "next": "/"})
        assert answer.status_code == 303
        build = served.store.get_build(served.held_id)
        assert build.state is JobState.WAITING_FOR_PRINTER
        assert served.store.build_history(build.id)[-1].reason == "approved by olivia (web)"


class TestLoginReturns:
    """The login returns to the whole URL that was asked for, and only ever to this site."""

    def test_a_filtered_queue_comes_back_filtered_after_the_login(
        self, served: Served
    ) -> None:
        # `next` kept only the path: the lab logged in and saw the unfiltered queue.
        asked = clients.get(served.url + "/", params={"state": "failed", "q": "C-7"})
        assert asked.status_code == 303
        assert asked.headers["location"] == "/login?next=/%3Fstate%3Dfailed%26q%3DC-7"
        with closing(clients.Client(base_url=served.url)) as client:
            login = client.get(asked.headers["location"])
            assert '<input type="hidden" name="next" value="/?state=failed&amp;q=C-7">' in (
                login.text)
            answer = client.post("/login", data={"name": "victor", "secret": VIEWER_SECRET,
                                                 "next": "/?state=failed&q=C-7"})
            assert answer.status_code == 303
            assert answer.headers["location"] == "/?state=failed&q=C-7"
            queue = client.get(answer.headers["location"]).text
        assert '<option value="failed" selected>' in queue
        assert '<input name="q" value="C-7"' in queue

    def test_a_next_on_another_site_is_refused(self, served: Served) -> None:
        for target in ("https://evil.example/", "//evil.example", "/\\evil.example",
                       "javascript:alert(1)"):
            answer = clients.post(served.url + "/login", data={
                "name": "victor", "secret": VIEWER_SECRET, "next": target})
            assert answer.status_code == 303 and answer.headers["location"] == "/", target
            page = clients.get(served.url + "/login", params={"next": target}).text
            assert '<input type="hidden" name="next" value="/">' in page, target
        # A tab is dropped from URLs by browsers ("/\t/evil.example" would be "//evil…"):
        # the answer escapes it, so it stays a path on this site.
        answer = clients.post(served.url + "/login", data={
            "name": "victor", "secret": VIEWER_SECRET, "next": "/\t/evil.example"})
        assert httpx.URL(served.url).join(answer.headers["location"]).host == "127.0.0.1"


class TestCrossSite:
    """A POST that did not come from the dashboard's own pages changes nothing."""

    def test_a_post_without_the_csrf_token_is_refused(self, served: Served) -> None:
        client, _ = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            answer = client.post(f"/builds/{served.held_id}/approve", data={"next": "/"})
        assert answer.status_code == 403
        assert served.store.get_build(served.held_id).state is JobState.AWAITING_APPROVAL

    def test_a_post_from_another_origin_is_refused_even_with_the_token(
        self, served: Served
    ) -> None:
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            for headers in ({"Origin": "http://evil.example"},
                            {"Sec-Fetch-Site": "cross-site"},
                            {"Sec-Fetch-Site": "same-site"},
                            {"Origin": "null"}):
                answer = client.post(f"/builds/{served.held_id}/reject",
                                     data={"csrf": csrf, "reason": "forged"}, headers=headers)
                assert answer.status_code == 403, headers
        assert served.store.get_build(served.held_id).state is JobState.AWAITING_APPROVAL

    def test_the_session_cookie_is_http_only_and_same_site_strict(
        self, served: Served
    ) -> None:
        answer = clients.post(served.url + "/login",
                            data={"name": "olivia", "secret": OPERATOR_SECRET})
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie


class TestASessionThatEnded:
    """A tab opened before the dashboard restarted (or before its session went 12 hours
    unused) still shows its buttons: a press goes to the login page, which says that nothing
    was done, and back to the button's page (session 43: a bare "401 unauthorised" text)."""

    def test_an_approval_after_a_restart_is_sent_to_log_in_again_and_changes_nothing(
        self, served: Served, users: tuple[WebUser, ...]
    ) -> None:
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        page = f"/builds/{served.held_id}"
        restarted = WebServer(served.store, WebSettings(port=0, users=users))
        restarted.start()  # a new process knows no session of the old one
        try:
            with closing(client), capture_logs() as events:
                answer = client.post(f"{restarted.url}{page}/approve",
                                     data={"csrf": csrf, "next": page})
                login = client.get(restarted.url + answer.headers.get("location", "/"))
        finally:
            restarted.stop()

        assert (answer.status_code, answer.headers["location"]) == (
            303, f"/login?next={page}")
        assert login.status_code == 200 and 'id="ended"' in login.text
        assert "was not done" in login.text
        assert f'name="next" value="{page}"' in login.text
        assert served.store.get_build(served.held_id).state is JobState.AWAITING_APPROVAL
        assert [e for e in events if e["event"] == "web_session_ended"] == [
            {"event": "web_session_ended", "path": f"{page}/approve", "why": "ended",
             "log_level": "info"}]

    @pytest.mark.parametrize("target", [
        "//evil.example/builds/1", "https://evil.example/", "/\\evil.example/",
        "/\t/evil.example/", "javascript:alert(1)", " //evil.example/",
    ])
    def test_the_way_back_is_a_path_on_this_site_only(self, served: Served, target: str
                                                      ) -> None:
        # Review of session 43: the `next` an ended session's action carries goes through the
        # login and back; a page another site made may post any `next` it likes.
        with closing(_ended_client(served)) as client:
            answer = client.post(f"/builds/{served.held_id}/approve", data={"next": target})
            login = client.get(answer.headers["location"])
            back = _form_value(login.text, "next")
            after = client.post("/login", data={"name": "olivia", "secret": OPERATOR_SECRET,
                                                "next": back})

        assert answer.headers["location"] == "/login?next=/"
        assert (after.status_code, after.headers["location"]) == (303, "/")

    def test_after_logging_in_again_the_button_is_offered_not_pressed(
        self, served: Served
    ) -> None:
        # Review of session 43: the login's redirect is a GET of the page, never the POST
        # again: nothing is done until the button is pressed once more.
        page = f"/builds/{served.held_id}"
        with closing(_ended_client(served)) as client, capture_logs() as events:
            answer = client.post(f"{page}/reject", data={"next": page, "reason": "cracked"})
            assert answer.status_code == 303  # a GET of the login page, not the POST again
            login = client.get(answer.headers["location"])
            after = client.post("/login", data={"name": "olivia", "secret": OPERATOR_SECRET,
                                                "next": _form_value(login.text, "next")})
            back = client.get(after.headers["location"])

        assert after.headers["location"] == page
        assert "a reason typed for it was not kept" in login.text  # not kept: said so
        assert back.status_code == 200 and f'action="{page}/reject"' in back.text
        assert served.store.get_build(served.held_id).state is JobState.AWAITING_APPROVAL
        assert [e["event"] for e in events if e["event"].startswith("web_")] == [
            "web_session_ended", "web_login"]

    def test_a_session_idle_too_long_is_sent_to_log_in_again_not_refused(
        self, served: Served, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Review of session 43: the browser dropped the cookie 12 hours after the login
        # (its Max-Age), by when an idle session had not yet ended on the server: the press
        # came with no cookie and got the bare 401. The cookie now lives as long as the
        # session does on the server, which ends it after 12 hours without a request.
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            cookie = SimpleCookie(client.post(
                "/login", data={"name": "olivia", "secret": OPERATOR_SECRET, "next": "/"},
            ).headers["set-cookie"])[SESSION_COOKIE]
            monkeypatch.setattr(auth, "SESSION_TTL_S", 0.0)  # now idle for too long
            answer = client.post(f"/builds/{served.held_id}/approve",
                                 data={"csrf": csrf, "next": "/"})

        assert (cookie["max-age"], cookie["expires"]) == ("", "")
        assert (answer.status_code, answer.headers["location"]) == (303, "/login?next=/")
        assert served.store.get_build(served.held_id).state is JobState.AWAITING_APPROVAL

    def test_a_script_without_a_credential_still_gets_401(self, served: Served) -> None:
        answer = clients.post(f"{served.url}/builds/{served.held_id}/approve",
                            data={"next": "/"})
        assert answer.status_code == 401
        assert served.store.get_build(served.held_id).state is JobState.AWAITING_APPROVAL

    def test_a_restarted_browsers_press_is_sent_to_log_in_again_keeping_nothing_of_its_form(
        self, served: Served
    ) -> None:
        # Session 44: a browser restarted with the page left open has no cookie at all (the
        # session cookie has no expiry, so a browser drops it on closing): its press got the
        # bare 401 that session 43 took away from an ended session's.
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        client.close()
        page = f"/builds/{served.held_id}"
        with closing(clients.Client(base_url=served.url, headers=_BROWSER_PRESS)) as restarted, \
                capture_logs() as events:
            answer = restarted.post(f"{page}/reject", data={
                "csrf": csrf, "next": page, "reason": "margin-cracked-xq"})
            login = restarted.get(answer.headers.get("location", "/"))

        assert (answer.status_code, answer.headers["location"]) == (
            303, f"/login?next={page}&again=1")
        assert login.status_code == 200 and 'id="ended"' in login.text
        assert "this browser was restarted" in login.text and "was not done" in login.text
        assert _form_value(login.text, "next") == page
        assert "margin-cracked-xq" not in login.text and csrf not in login.text
        assert served.store.get_build(served.held_id).state is JobState.AWAITING_APPROVAL
        assert [e for e in events if e["event"] == "web_session_ended"] == [
            {"event": "web_session_ended", "path": f"{page}/reject", "why": "no cookie",
             "log_level": "info"}]

    def test_a_page_left_open_in_a_restarted_browser_refreshes_into_a_login_saying_so(
        self, served: Served
    ) -> None:
        answer = clients.get(f"{served.url}/failed?recipe=grey", headers={"X-Live": "1"})
        first_visit = clients.get(f"{served.url}/failed", headers=_BROWSER_PRESS)

        assert (answer.status_code, answer.headers["location"]) == (
            303, "/login?next=/failed%3Frecipe%3Dgrey&again=1")
        login = clients.get(served.url + answer.headers["location"])
        assert 'id="ended"' in login.text
        # A page opened with no session is a first visit as often: its login says nothing.
        assert first_visit.headers["location"] == "/login?next=/failed"

    def test_a_plain_reload_in_a_restarted_browser_says_the_session_ended(
        self, served: Served
    ) -> None:
        # Session 44 could not tell a restarted browser's plain reload from a first visit:
        # both came without a cookie. The login now leaves a mark that outlives the browser.
        with closing(clients.Client(base_url=served.url)) as browser:
            login = browser.post("/login", data={"name": "olivia",
                                                 "secret": OPERATOR_SECRET, "next": "/"})
        restarted = clients.Client(base_url=served.url, headers=_BROWSER_PRESS,
                                 cookies=_kept_over_a_restart(login))
        with closing(restarted):
            answer = restarted.get("/failed")
            page = restarted.get(answer.headers["location"])

        assert (answer.status_code, answer.headers["location"]) == (303, "/login?next=/failed")
        assert 'id="ended"' in page.text and "this browser was restarted" in page.text

    def test_the_mark_holds_no_secret_and_is_kept_from_scripts_and_other_sites(
        self, served: Served
    ) -> None:
        login = clients.post(f"{served.url}/login", data={"name": "olivia",
                                                         "secret": OPERATOR_SECRET})
        mark = _set_cookies(login)[auth.SESSION_MARK_COOKIE]
        session = _set_cookies(login)[SESSION_COOKIE]

        assert mark.value == "1" and session.value not in mark.OutputString()
        assert (mark["httponly"], mark["samesite"], mark["max-age"]) == (
            True, "strict", str(400 * 86400))

    def test_a_failed_login_sets_no_cookie(self, served: Served) -> None:
        # A wrong password leaves no mark: the next visit is not told a session ended.
        failed = clients.post(f"{served.url}/login", data={"name": "olivia", "secret": "wrong"})
        assert failed.status_code == 401
        assert failed.headers.get_list("set-cookie") == []

    @pytest.mark.parametrize("scheme", ["https", "http"])
    def test_the_mark_is_secure_over_https_as_the_session_is(
        self, served: Served, scheme: str
    ) -> None:
        # Behind an HTTPS reverse proxy (docs/web.md), which uvicorn trusts from 127.0.0.1.
        login = clients.post(f"{served.url}/login", headers={"X-Forwarded-Proto": scheme},
                           data={"name": "olivia", "secret": OPERATOR_SECRET})
        assert login.status_code == 303
        secure = {name: bool(m["secure"]) for name, m in _set_cookies(login).items()}
        assert secure == {SESSION_COOKIE: scheme == "https",
                          auth.SESSION_MARK_COOKIE: scheme == "https"}

    def test_a_logout_takes_the_mark_away_and_the_next_visit_is_a_first_one(
        self, served: Served
    ) -> None:
        client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            out = client.post("/logout", data={"csrf": csrf})
            assert out.headers["location"] == "/login"
            assert dict(client.cookies) == {}
            page = client.get("/login")
        assert 'id="ended"' not in page.text

    def test_a_first_visit_is_not_told_a_session_ended(self, served: Served) -> None:
        first = clients.get(f"{served.url}/", headers=_BROWSER_PRESS, follow_redirects=True)
        assert first.url.path == "/login" and 'id="ended"' not in first.text

    def test_a_browser_still_logged_in_is_not_told_its_session_ended(
        self, served: Served
    ) -> None:
        client, _ = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            page = client.get("/login")
        assert auth.SESSION_MARK_COOKIE in client.cookies
        assert 'id="ended"' not in page.text

    def test_a_cross_site_press_without_a_cookie_is_still_401(self, served: Served) -> None:
        # SameSite=Strict keeps the cookie off another site's form: it is no signed-out
        # browser of ours, and nothing is logged as a session that ended.
        with capture_logs() as events:
            answer = clients.post(f"{served.url}/builds/{served.held_id}/approve",
                                data={"next": "/"}, headers={
                                    **_BROWSER_PRESS, "Sec-Fetch-Site": "cross-site"})
        assert answer.status_code == 401
        assert [e for e in events if e["event"] == "web_session_ended"] == []

    # s44-mutants: a browser sends one of the three signs alone too (an older browser sends
    # no Sec-Fetch-* headers; a fetch of a live page is no navigation and accepts anything).
    @pytest.mark.parametrize("headers", [
        {"Accept": "*/*", "Sec-Fetch-Mode": "navigate"},
        {"Accept": "*/*", "X-Live": "1"},
        {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"},
    ], ids=["navigation", "live-refresh", "accepts-a-page"])
    def test_each_sign_of_a_browser_alone_sends_its_press_to_log_in_again(
        self, served: Served, headers: dict[str, str]
    ) -> None:
        page = f"/builds/{served.held_id}"
        with capture_logs() as events:
            answer = clients.post(f"{served.url}{page}/approve", data={"next": page},
                                headers=headers)
        assert (answer.status_code, answer.headers["location"]) == (
            303, f"/login?next={page}&again=1")
        assert [e["why"] for e in events if e["event"] == "web_session_ended"] == ["no cookie"]
        assert served.store.get_build(served.held_id).state is JobState.AWAITING_APPROVAL

    def test_a_scripts_press_without_an_accept_header_is_401(self, served: Served) -> None:
        # http.client sends no Accept header (httpx always sends one): a bare script's POST.
        host, port = served.url.removeprefix("http://").rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            connection.request("POST", f"/builds/{served.held_id}/approve", body="next=/",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
            answer = connection.getresponse()
            answer.read()
        finally:
            connection.close()
        assert answer.status == 401
        assert served.store.get_build(served.held_id).state is JobState.AWAITING_APPROVAL


class TestFraming:
    """No other page may frame the dashboard, so no click on it can be stolen under a decoy."""

    def test_every_answer_forbids_framing(self, served: Served) -> None:
        client, _ = logged_in(served, "olivia", OPERATOR_SECRET)
        with closing(client):
            answers = [client.get(path) for path in (
                "/", f"/builds/{served.held_id}", "/builds/999", "/login", "/static/style.css")]
            answers.append(clients.get(served.url + "/"))  # not logged in: the redirect
        for answer in answers:
            assert answer.headers["x-frame-options"] == "DENY", answer.url
            assert answer.headers["content-security-policy"] == "frame-ancestors 'none'"


class TestLogs:
    """Logins, refusals and actions are logged by user name; no secret is."""

    def test_no_secret_token_or_cookie_appears_in_any_event(self, served: Served) -> None:
        with capture_logs() as events:
            clients.get(served.url + "/metrics", headers=_bearer("olivia", "guessed-secret-1"))
            clients.post(served.url + "/login", data={"name": "victor",
                                                     "secret": "guessed-secret-2"})
            # A password typed into the name field is not logged either.
            clients.post(served.url + "/login", data={"name": "guessed-secret-3",
                                                     "secret": ""})
            client, csrf = logged_in(served, "olivia", OPERATOR_SECRET)
            with closing(client):
                cookie = client.cookies["pp_session"]
                client.post(f"/builds/{served.held_id}/reject",
                            data={"csrf": csrf, "reason": "margin cut", "next": "/"})
        text = repr(events)
        for secret in (OPERATOR_SECRET, VIEWER_SECRET, "guessed-secret-1", "guessed-secret-2",
                       "guessed-secret-3", cookie, csrf):
            assert secret not in text
        names = [e["event"] for e in events]
        assert "web_token_refused" in names and "web_login_refused" in names
        assert any(e["event"] == "web_action" and e["user"] == "olivia" for e in events)
        assert served.store.get_build(served.held_id).state is JobState.FAILED
