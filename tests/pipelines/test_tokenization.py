from models.tokenizer import get_tokenizer
from pipelines.tokenization import split_clauses, split_sentences


def test_sentences_split_on_japanese_punctuation_and_newlines() -> None:
    assert split_sentences("良かった。また来ます！本当に?\n次も") == [
        "良かった。",
        "また来ます！",
        "本当に?",
        "次も",
    ]


def test_contrastive_clauses_are_split() -> None:
    assert split_clauses("スタッフは親切でしたが、待ち時間が長すぎました。") == [
        "スタッフは親切でしたが、",
        "待ち時間が長すぎました。",
    ]
    assert split_clauses("安いけど品質が悪い") == ["安いけど", "品質が悪い"]


def test_subject_marker_ga_does_not_split() -> None:
    assert split_clauses("対応が遅いです") == ["対応が遅いです"]


def test_negation_is_folded_into_lemmas() -> None:
    tok = get_tokenizer()
    assert tok.lemmas("遅くはないです") == ["遅い:NEG"]
    assert tok.lemmas("対応が遅い") == ["対応", "遅い"]
    assert "悪い:NEG" in tok.lemmas("対応は悪くなかったけど料金が高い")
    assert "対応" in tok.lemmas("対応は悪くなかったけど料金が高い")  # the noun itself is not negated
    assert tok.lemmas("使えません") == ["使う:NEG"]
