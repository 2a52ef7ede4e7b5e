"""The simulator runs config/asterisk/extensions.conf itself: the parser reads it as Asterisk would."""

import pytest

from contactcentre.telephony.simulator.dialplan import DialplanError, evaluate, load, parse, pattern_matches, substitute


def test_the_shipped_dialplan_has_the_places_the_server_uses():
    plan = load()

    inbound = plan.find("from-carrier", "0800200200")
    assert [s.app for s in inbound.steps.values()][:2] == ["NoOp", "AGI"]
    assert inbound.priority_of("fallback") == 6
    out = plan.find("from-agents", "+441632960101")
    assert out.steps[out.priority_of("dial")].data == "PJSIP/${EXTEN}@carrier,${RING},T"
    assert plan.step("from-agents", "2003", 1).data == "PJSIP/agent3,20,tT"  # through `include => xfer`
    assert [plan.step("cc-hold", e, p).app for e, p in (("s", 3), ("wait", 2), ("resume", 2))] == [
        "MusicOnHold", "Wait", "Bridge"]
    assert plan.step("cc-hold", "wait", 1).data == "CHANNEL(hangup_handler_push)=cc-hold,release,1"
    assert [s.app for s in plan.find("cc-hold", "release").steps.values()] == ["GotoIf", "ChannelRedirect", "Return"]
    assert plan.step("cc-hold", "resume", 2).data == "${CC_HELD},F(cc-survey^s^1)"  # the agent hangs up: survey
    assert (plan.step("cc-survey", "s", 1).app, plan.step("cc-survey", "s", 1).data) == \
        ("AGI", "agi://${CC_HOST}:4573/survey")
    assert plan.globals["CC_HOST"] == "127.0.0.1"


@pytest.mark.parametrize("pattern, exten, matches", [
    ("_X.", "0800100100", True), ("_X.", "+44", False), ("_+X.", "+441632960101", True), ("_0X.", "2001", False),
    ("_NXX", "200", True), ("_NXX", "100", False), ("_[7-8]000", "8000", True), ("2001", "2001", True),
    ("_X.", "0", False),  # `.` wants at least one more character
])
def test_patterns_match_as_asterisks_do(pattern, exten, matches):
    assert pattern_matches(pattern, exten) is matches


def test_an_exact_extension_wins_over_a_pattern_and_comments_are_dropped():
    plan = parse("[ctx]\nexten => _X.,1,NoOp(pattern) ; a comment\nexten => 123,1,NoOp(exact\\;semi)\n"
                 " same => n(end),Hangup()\n")

    assert plan.step("ctx", "123", 1).data == "exact;semi"
    assert plan.step("ctx", "123", 2).label == "end"
    assert plan.step("ctx", "124", 1).data == "pattern"


def test_a_bad_line_names_its_file_and_line():
    with pytest.raises(DialplanError, match=r"x.conf:3: priority 'first'"):
        parse("[ctx]\nexten => 1,1,NoOp()\nexten => 2,first,NoOp()\n", "x.conf")


def test_variables_and_expressions_expand():
    values = {"CALLERID(num)": "+44", "AGISTATUS": "FAILURE"}
    assert substitute("from ${CALLERID(num)} to ${EXTEN}", values.get) == "from +44 to "
    assert evaluate(substitute('$["${AGISTATUS}" = "FAILURE"]', values.get))
    assert not evaluate('$["SUCCESS" = "FAILURE"]') and evaluate('$["a" != "b"]')
