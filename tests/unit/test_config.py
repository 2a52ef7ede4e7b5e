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
