"""Who may do what: logins, the console page, and the socket.io door."""

import aiohttp
import pytest
import socketio

from contactcentre.crm.models import Role


async def test_wrong_password_is_refused_without_a_session(stack):
    await stack.add_agent("alice", "PJSIP/agent1")
    response = await stack.login("alice", "not the password")
    assert response.status == 401
    assert "cc_session" not in response.cookies
    assert "Wrong user name or password." in await response.text()


async def test_unknown_user_gets_the_same_answer_as_a_wrong_password(stack):
    response = await stack.login("mallory", "whatever")
    assert response.status == 401
    assert "Wrong user name or password." in await response.text()


async def test_console_page_needs_a_login_and_the_agent_role(stack):
    await stack.add_agent("sam", None, role=Role.SUPERVISOR)
    await stack.add_agent("alice", "PJSIP/agent1")
    async with aiohttp.ClientSession() as http:
        response = await http.get(f"{stack.base_url}console", allow_redirects=False)
        assert (response.status, response.headers["Location"]) == (302, "/login")
        response = await http.get(f"{stack.base_url}console", headers={"Cookie": await stack.cookie("sam")},
                                  allow_redirects=False)
        assert response.status == 403
        response = await http.get(f"{stack.base_url}console", headers={"Cookie": await stack.cookie("alice")})
        assert response.status == 200 and "Alice" in await response.text()


async def refusal(stack, cookie: str | None) -> str:
    """Connect as a browser would; return why the server refused (it must refuse)."""
    client = socketio.AsyncClient(reconnection=False)
    reasons = []
    client.on("connect_error", reasons.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(stack.base_url, headers={"Cookie": cookie} if cookie else {},
                             transports=["websocket"], wait_timeout=5)
    return reasons[0]["message"]


@pytest.mark.parametrize("cookie", [None, "cc_session=forged.token", "cc_session="])
async def test_socketio_connection_without_a_valid_session_is_refused(stack, cookie):
    assert await refusal(stack, cookie) == "not logged in"


async def test_socketio_console_is_refused_to_a_supervisor(stack):
    await stack.add_agent("sam", None, role=Role.SUPERVISOR)
    assert await refusal(stack, await stack.cookie("sam")) == "the console is for agents"


async def test_malformed_console_messages_get_an_error_naming_the_field(stack):
    await stack.add_agent("alice", "PJSIP/agent1")
    console = await stack.console("alice")
    assert await console.call("disposition", {"call_id": 42}) == {
        "ok": False, "error": "call_id: expected a string, got int", "id": "bad-request"}
    assert (await console.sio.call("answer", "not an object", timeout=5))["id"] == "bad-request"
    assert (await console.call("answer", {}))["error"] == "call_id: required"


async def test_templates_escape_what_users_typed(stack):
    response = await stack.login("<script>alert(1)</script>", "x")
    body = await response.text()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


async def test_health_reports_the_pbx_link(stack):
    async with aiohttp.ClientSession() as http:
        response = await http.get(f"{stack.base_url}health")
        body = await response.json()
    assert response.status == 200 and body["ok"] and body["ami"] == "connected"
