"""The agent console in a real browser: sign in, take a call from the screen pop, wrap it up."""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import Page, expect

from contactcentre.crm.models import ServiceTier
from tests.support import PASSWORD, add_customer, new_interactions

pytestmark = pytest.mark.browser


async def sign_in(page: Page, username: str, password: str) -> None:
    await page.goto("/login")
    await page.get_by_label("User name").fill(username)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def sign_in_and_go_ready(page: Page, username: str, password: str) -> None:
    await sign_in(page, username, password)
    await expect(page).to_have_url(re.compile(r"/console$"))
    await expect(page.locator("#state")).to_contain_text("not ready")
    await page.get_by_role("button", name="Ready", exact=True).click()
    await expect(page.locator("#state")).to_have_text("ready")


async def test_agent_logs_in_goes_ready_takes_a_call_and_submits_the_wrap_up(stack, page):
    sessions = stack.services.sessions
    customer = await add_customer(sessions, "Jane", "Smith", "+441632960101", ServiceTier.PROACTIVE,
                                  notes=("Asked about the March invoice.", "Reported a broken router."))
    agent = await stack.add_agent("alice", "PJSIP/agent1", name="Alice Agent")
    state = page.locator("#state")

    await sign_in_and_go_ready(page, "alice", PASSWORD)
    await expect(page.get_by_role("heading", name="No call")).to_be_visible()

    call = stack.sim.place_call("+441632960101", "Jane Smith")

    await expect(page.locator("#pop-name")).to_have_text("Jane Smith")
    await expect(page.locator("#pop-number")).to_have_text("+441632960101")
    await expect(page.locator("#pop-tier")).to_have_text("Proactive", use_inner_text=True)  # as the CSS shows it
    await expect(page.locator("#pop-account")).to_have_text("AC-960101")
    await expect(page.get_by_role("heading", name="Last interactions")).to_be_visible()
    await expect(page.locator("#pop-history li")).to_have_count(2)
    await expect(page.locator("#pop-history li").nth(0)).to_contain_text("Asked about the March invoice.")
    await expect(page.locator("#pop-history li").nth(1)).to_contain_text("Reported a broken router.")
    await expect(state).to_have_text("call offered")

    await page.get_by_role("button", name="Answer").click()
    await expect(page.locator("#call-state")).to_have_text("answered")
    await expect(state).to_have_text("on a call")
    await asyncio.wait_for(call.bridged.wait(), 5)

    await page.get_by_role("button", name="Hang up").click()
    await expect(page.get_by_role("heading", name="Wrap-up", exact=True)).to_be_visible()
    await expect(page.locator("#call-state")).to_have_text("wrap-up")
    await page.get_by_label("Disposition").select_option("follow-up")
    await page.get_by_label("Notes").fill("Call back on Friday about the refund.")
    await page.get_by_role("button", name="Submit").click()

    await expect(page.get_by_role("heading", name="No call")).to_be_visible()
    await expect(page.locator("#call")).to_be_hidden()
    await expect(state).to_have_text("ready")
    await expect(page.locator("#notice")).to_be_hidden()
    await asyncio.wait_for(call.finished.wait(), 5)
    await stack.services.bus.drain()
    rows = await new_interactions(sessions)
    assert [(r.call_id, r.customer_id, r.agent_id, r.disposition, r.notes) for r in rows] == [
        (call.call_id, customer.id, agent.id, "follow-up", "Call back on Friday about the refund.")]


async def test_wrong_password_shows_an_error_and_no_console(stack, page):
    await stack.add_agent("alice", "PJSIP/agent1")

    await sign_in(page, "alice", PASSWORD + " wrong")

    await expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")
    await expect(page.get_by_label("User name")).to_have_value("alice")
    await page.goto("/console")
    await expect(page).to_have_url(re.compile(r"/login$"))
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    await expect(page.locator("#state")).to_have_count(0)


async def test_unknown_caller_pop_says_unknown_caller_with_the_number(stack, page):
    await stack.add_agent("bob", "PJSIP/agent2")
    await sign_in_and_go_ready(page, "bob", PASSWORD)

    call = stack.sim.place_call("+12025550143", "")

    await expect(page.locator("#pop-name")).to_have_text("Unknown caller")
    await expect(page.locator("#pop-number")).to_have_text("+12025550143")
    await expect(page.get_by_text("Tier")).to_be_hidden()
    await expect(page.get_by_text("Account")).to_be_hidden()
    await expect(page.get_by_role("heading", name="Last interactions")).to_be_hidden()
    await expect(page.get_by_role("button", name="Answer")).to_be_enabled()

    call.caller_hangup()
    await expect(page.get_by_role("status")).to_have_text("The caller hung up before you answered.")
    await expect(page.get_by_role("heading", name="No call")).to_be_visible()
    await expect(page.locator("#state")).to_have_text("ready")


async def test_customer_text_is_escaped(stack, page):
    payload = "<img src=x onerror=alert(1)>"
    await add_customer(stack.services.sessions, "Eve", payload, "+441632960199", ServiceTier.BASIC,
                       notes=("<script>alert(2)</script>",))
    await stack.add_agent("carol", "PJSIP/agent3")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await sign_in_and_go_ready(page, "carol", PASSWORD)

    call = stack.sim.place_call("+441632960199", "")

    await expect(page.locator("#pop-name")).to_have_text(f"Eve {payload}")
    await expect(page.locator("#pop-history li")).to_contain_text("<script>alert(2)</script>")
    assert await page.locator("img").count() == 0
    assert await page.locator("#pop script").count() == 0
    call.caller_hangup()
    await expect(page.get_by_role("heading", name="No call")).to_be_visible()
    assert dialogs == []
