import pytest

from contactcentre.telephony.agi.protocol import (
    AgiProtocolError,
    AgiResult,
    encode_command,
    parse_env_line,
    parse_result,
)
from tests.captures import capture


@pytest.mark.parametrize(("line", "expected"), [
    ("200 result=0", AgiResult(0)),
    ("200 result=1 (1234)", AgiResult(1, "1234")),
    ("200 result= (timeout)", AgiResult(None, "timeout")),
    ("200 result=0 endpos=16000", AgiResult(0, None, 16000)),
    ("200 result=-1 endpos=24160", AgiResult(-1, None, 24160)),
    ("200 result=1 (+441632960201 on PJSIP/carrier-00000000)", AgiResult(1, "+441632960201 on PJSIP/carrier-00000000")),
])
def test_result_lines_as_asterisk_sends_them(line, expected):
    assert parse_result(line) == expected


@pytest.mark.parametrize(("line", "digits", "result"), [
    ("200 result=1234", "1234", 1234),
    ("200 result=0123", "0123", 123),  # GET DATA's keys keep their leading 0
    ("200 result=*", "*", None),  # a key that is no digit: res_agi sends what was collected
    ("200 result=12 (timeout)", "12", 12),
    ("200 result= (timeout)", "", None),
    ("200 result=-1", "", -1),  # hung up: no keys
])
def test_get_data_replies_give_the_keys_as_pressed(line, digits, result):
    parsed = parse_result(line)
    assert (parsed.digits, parsed.result) == (digits, result)


def test_every_200_line_of_the_agi_capture_parses():
    lines = [raw[2:] for raw in capture("agi-ivr.agi.txt").decode().splitlines() if raw.startswith("> 200")]
    assert len(lines) > 20
    assert all(isinstance(parse_result(line), AgiResult) for line in lines)


@pytest.mark.parametrize("line", ["200 result=" + "9" * 5000, "200 result=0 endpos=" + "1" * 5000])
def test_a_number_too_long_to_read_is_a_protocol_error_not_a_crash(line):
    with pytest.raises(AgiProtocolError, match=r"a number too long to read in '200 result="):
        parse_result(line)


def test_garbage_reply_is_a_protocol_error_naming_the_line():
    with pytest.raises(AgiProtocolError, match="banana"):
        parse_result("banana")


def test_environment_lines():
    assert parse_env_line("agi_accountcode: ") == ("agi_accountcode", "")
    assert parse_env_line("agi_calleridname: Jane Smith") == ("agi_calleridname", "Jane Smith")
    with pytest.raises(AgiProtocolError):
        parse_env_line("GET / HTTP/1.1")


def test_commands_quote_arguments_like_the_capture():
    assert encode_command("STREAM FILE", "custom/welcome", "") == b'STREAM FILE custom/welcome ""\n'
    assert encode_command("SET VARIABLE", "IVR_CHOICE", "1234") == b"SET VARIABLE IVR_CHOICE 1234\n"
    assert encode_command("EXEC", "Dial", "PJSIP/agent2,20,tT") == b"EXEC Dial PJSIP/agent2,20,tT\n"
    with pytest.raises(ValueError):
        encode_command("VERBOSE", "two\nlines")
