import pytest

from models.taxonomy import Taxonomy, default_taxonomy, load_taxonomy
from pipelines.errors import ConfigError

EXPECTED = {
    "gratitude": "感謝",
    "empathy": "共感",
    "trust": "信頼",
    "inconvenience": "不便",
    "disappointment": "がっかり",
    "slow_response": "対応が遅い",
    "price": "価格・料金",
    "product_quality": "品質",
    "usability": "使いやすさ・UI",
    "support_staff": "スタッフ・サポート対応",
    "delivery": "配送・納期",
    "feature_request": "機能・改善要望",
    "bug": "不具合・エラー",
    "churn_intent": "解約・乗り換え意向",
}


def test_default_taxonomy_has_the_fourteen_themes() -> None:
    tax = default_taxonomy()
    assert {t.id: t.name for t in tax.themes} == EXPECTED
    for theme in tax.themes:
        assert theme.description and theme.name_en and len(theme.examples) >= 5
    assert tax.signals("positive_signal") == ["gratitude", "empathy", "trust"]


def test_edits_bump_the_version_and_keep_ids(tmp_path) -> None:
    tax = default_taxonomy()
    added = tax.add_theme("parking", "駐車場", examples=["駐車場が狭くて停めにくい"])
    renamed = added.rename("parking", "駐車場・アクセス")
    merged = renamed.merge("empathy", "trust")
    assert (added.version, renamed.version, merged.version) == (
        tax.version + 1,
        tax.version + 2,
        tax.version + 3,
    )
    assert merged.get("empathy").id == "trust"  # old id resolves through the alias
    assert merged.get("parking").name == "駐車場・アクセス"
    path = merged.save(tmp_path / "t.yaml")
    assert load_taxonomy(path) == merged


def test_invalid_themes_are_refused() -> None:
    tax = default_taxonomy()
    with pytest.raises(ConfigError, match="already exists"):
        tax.add_theme("price", "価格", examples=["高い"])
    with pytest.raises(ConfigError, match="at least one example"):
        tax.add_theme("parking", "駐車場", examples=[])
    with pytest.raises(ConfigError, match="polarity"):
        Taxonomy.from_dict({"themes": [{"id": "x_y", "name": "x", "polarity": "both"}]})
    with pytest.raises(ConfigError, match="'sentiment' of theme 'x_y'"):
        Taxonomy.from_dict({"themes": [{"id": "x_y", "name": "x", "sentiment": "angry"}]})


def test_a_bad_theme_in_a_taxonomy_file_names_the_file(tmp_path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("themes:\n  - {id: late, name: 遅い, sentiment: angry}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_taxonomy(path)
    assert str(err.value).startswith(f"{path}: The 'sentiment' of theme 'late'") and "'angry'" in str(
        err.value
    )


def test_a_fixed_sentiment_is_read_kept_through_edits_and_saved(tmp_path) -> None:
    tax = default_taxonomy()
    fixed = {t.id: t.sentiment for t in tax.themes if t.sentiment}
    assert fixed == {"gratitude": "positive", "inconvenience": "negative", "disappointment": "negative"}
    edited = (
        tax.add_theme("parking", "駐車場", examples=["駐車場が狭い"], sentiment="negative")
        .rename("disappointment", "残念")
        .merge("parking", "inconvenience")
    )
    again = load_taxonomy(edited.save(tmp_path / "t.yaml"))
    assert again.get("disappointment").sentiment == "negative" and again.get("parking").id == "inconvenience"
    assert again.get("inconvenience").sentiment == "negative" and again.get("price").sentiment is None


def test_broken_yaml_names_the_file(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("themes: [", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        load_taxonomy(bad)


def test_counter_examples_are_kept_and_the_later_decision_wins(tmp_path) -> None:
    tax = default_taxonomy().add_theme("parking", "駐車場", examples=["駐車場が狭い", "車が停めにくい"])
    edited = tax.edit("parking", add_counter_examples=["駐輪場がない", "車が停めにくい", "駐輪場がない"])
    theme = edited.get("parking")
    assert theme.counter_examples == ("駐輪場がない", "車が停めにくい") and theme.examples == (
        "駐車場が狭い",
    )
    again = edited.edit("parking", add_examples=["車が停めにくい"])
    assert again.get("parking").counter_examples == ("駐輪場がない",)
    assert again.get("parking").examples == ("駐車場が狭い", "車が停めにくい")
    assert load_taxonomy(again.save(tmp_path / "t.yaml")) == again
    assert again.to_dict()["themes"][-1]["counter_examples"] == ["駐輪場がない"]
    assert Taxonomy.from_dict({"themes": [{"id": "x_y", "name": "x"}]}).themes[0].counter_examples == ()
