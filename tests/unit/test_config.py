import pytest

from contactcentre.config import ConfigError, Settings


def test_defaults_come_from_the_toml_file():
    settings = Settings.load(env={})
    assert settings.pbx.mode == "simulator"
    assert settings.ami.port == 5038
    assert settings.routing.dispositions[0] == "resolved"


def test_environment_overrides_the_file():
    settings = Settings.load(env={"CC_DATABASE_URL": "postgresql+asyncpg://u@db:5432/cc", "CC_AMI_PORT": "6038",
                                  "CC_ROUTING_DISPOSITIONS": "sale, no sale"})
    assert settings.database.url == "postgresql+asyncpg://u@db:5432/cc"
    assert settings.ami.port == 6038
    assert settings.routing.dispositions == ("sale", "no sale")


@pytest.mark.parametrize(("env", "message"), [
    ({"CC_PBX_MODE": "asterix"}, "pbx.mode: expected simulator|asterisk, got 'asterix'"),
    ({"CC_AMI_PORT": "http"}, "ami.port: expected a whole number, got 'http'"),
    ({"CC_AMI_PORT": "70000"}, "ami.port: expected a TCP port 0..65535, got '70000'"),
    ({"CC_DATABASE_URL": "mysql://x"}, "database.url: expected a sqlite+aiosqlite:// or postgresql+asyncpg:// URL"),
    ({"CC_OUTBOUND_CALLER_ID": "Contact centre"}, "outbound.caller_id: expected \"Name\" <number>"),
    ({"CC_OUTBOUND_CUSTOMER_RING_TIMEOUT": "2"}, "outbound.customer_ring_timeout: expected seconds from 5 to 120"),
    ({"CC_CALLBACKS_MAX_ATTEMPTS": "0"}, "callbacks.max_attempts: expected a count from 1 to 10, got '0'"),
    ({"CC_CRM_OFFERS": "offers.json"}, "crm.offers: expected a .yaml file"),
    ({"CC_SURVEY_ANSWER_TIMEOUT": "0"}, "survey.answer_timeout: expected seconds from 0.1 to 60, got '0'"),
    ({"CC_SURVEY_INTRO": "../../etc/passwd now"}, "survey.intro: expected a sound file name"),
    ({"CC_SURVEY_QUESTIONS": "agent"}, "survey.questions: expected a list of [[survey.questions]] tables"),
    ({"CC_ROUTING_MAX_TALK": "5"}, "routing.max_talk: expected seconds from 60 to 86400, got '5'"),
])
def test_a_wrong_value_names_the_key_the_value_and_what_is_allowed(env, message):
    with pytest.raises(ConfigError) as caught:
        Settings.load(env=env)
    assert str(caught.value).startswith(message)


def test_unknown_keys_and_broken_files_are_refused(tmp_path):
    path = tmp_path / "cc.toml"
    path.write_text("[ami]\nprot = 1\n")
    with pytest.raises(ConfigError, match="ami.prot: unknown key"):
        Settings.load(path, env={})
    path.write_text("[ami\n")
    with pytest.raises(ConfigError, match="cc.toml"):
        Settings.load(path, env={})


def test_the_survey_questions_come_from_the_toml_file():
    survey = Settings.load(env={}).survey
    assert [(q.key, q.prompt, q.lowest, q.highest) for q in survey.questions] == [
        ("agent", "custom/survey-agent", 1, 5), ("solved", "custom/survey-solved", 1, 2)]
    assert survey.enabled and survey.answer_timeout == 5.0


@pytest.mark.parametrize(("questions", "message"), [
    ('[[survey.questions]]\nkey = "agent"\nprompt = "custom/a"\nlowest = 1\nhighest = 12\n',
     "survey.questions[1].highest: expected one key, a whole number from 0 to 9, got 12"),
    ('[[survey.questions]]\nkey = "agent"\nprompt = "custom/a"\nlowest = 3\nhighest = 3\n',
     "survey.questions[1]: expected lowest below highest, got 3..3"),
    ('[[survey.questions]]\nkey = "Agent score"\nprompt = "custom/a"\n',
     "survey.questions[1].key: expected lower-case letters, digits and _"),
    ('[[survey.questions]]\nkey = "a"\nprompt = "custom/a"\n[[survey.questions]]\nkey = "b"\nprompt = "x y"\n',
     "survey.questions[2].prompt: expected a sound file name"),
    ('[[survey.questions]]\nkey = "a"\nprompt = "custom/a"\nscale = 5\n',
     "survey.questions[1].scale: unknown key; allowed: highest, key, lowest, prompt"),
    ('[[survey.questions]]\nkey = "a"\nprompt = "custom/a"\n[[survey.questions]]\nkey = "a"\nprompt = "custom/b"\n',
     "survey.questions: expected at least one question, each key used once"),
    ('questions = []\n', "survey.questions: expected at least one question"),
    ('questions = "agent"\n', "survey.questions: expected a list of [[survey.questions]] tables"),
])
def test_a_wrong_survey_question_is_named_by_its_place_and_key(tmp_path, questions, message):
    path = tmp_path / "cc.toml"
    header = "[survey]\n" if not questions.startswith("[[") else ""
    path.write_text(header + questions)
    with pytest.raises(ConfigError) as caught:
        Settings.load(path, env={})
    assert str(caught.value).startswith(message)


def test_a_broken_offers_file_stops_start_up_naming_it(tmp_path):
    from contactcentre.app import create_app

    bad = tmp_path / "offers.yaml"
    bad.write_text("offers:\n  - {id: a, title: A, why: w, when: {tier: [gold]}}\n")
    settings = Settings.load(env={"CC_CRM_OFFERS": str(bad)})
    with pytest.raises(ConfigError, match=r"crm.offers: .*offers.yaml: offer 1 \(a\): when.tier"):
        create_app(settings)
