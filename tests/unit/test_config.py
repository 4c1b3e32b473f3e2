import pytest

from streamrec.settings import Settings


def test_precedence_defaults_file_env_flags(tmp_path) -> None:
    config = tmp_path / "streamrec.toml"
    config.write_text('[streamrec]\nk = 5\nwindow = 20\ntopic_events = "ev"\n')
    settings = Settings.load(file=config, env={"STREAMREC_K": "7"}, overrides={"window": 30, "partitions": None})
    assert (settings.k, settings.window, settings.topic_events, settings.partitions) == (7, 30, "ev", 4)


def test_bad_values_and_unknown_settings_are_clear_errors(tmp_path) -> None:
    with pytest.raises(ValueError, match="STREAMREC|k='many'|not a valid int"):
        Settings.load(env={"STREAMREC_K": "many"})
    config = tmp_path / "bad.toml"
    config.write_text("colour = 'blue'\n")
    with pytest.raises(ValueError, match="unknown settings"):
        Settings.load(file=config, env={})


def test_as_env_reproduces_the_settings() -> None:
    settings = Settings.load(env={}, overrides={"broker": "kafka://h:1", "batch_window_s": 0.5})
    assert Settings.load(env=settings.as_env()) == settings
    assert settings.bootstrap_servers == "h:1"


def test_config_command_hides_secrets_but_children_get_them() -> None:
    from click.testing import CliRunner

    from streamrec.infra.cli import main

    env = {"STREAMREC_HTTP_API_KEYS": "k" * 20, "STREAMREC_KAFKA_SASL_PASSWORD": "pw-123"}
    printed = CliRunner().invoke(main, ["config"], env=env).output
    assert "k" * 20 not in printed and "pw-123" not in printed
    assert "STREAMREC_KAFKA_SASL_PASSWORD=<hidden>" in printed
    assert Settings.load(env=env).as_env()["STREAMREC_KAFKA_SASL_PASSWORD"] == "pw-123"
