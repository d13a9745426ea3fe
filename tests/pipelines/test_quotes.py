import random

import pytest

from pipelines.quotes import QuoteCandidate, bigram_jaccard, promoter_quotes, select_quotes, theme_quotes
from pipelines.records import AnalyzedRow, TextResult, ThemeHit

SLOW_A = "電話が全然つながらず三十分以上も待たされました。"
SLOW_A2 = "電話が全然つながらず四十分以上も待たされました。"  # near-duplicate of SLOW_A
SLOW_B = "メールの返信が一週間も来なくて困りました。"
SLOW_C = "返金処理がいつまで経っても終わらないままです。"


def _c(row: int, text: str, relevance: float, question: str = "理由") -> QuoteCandidate:
    return QuoteCandidate(row, question, text, "negative", 3, relevance)


def test_bigram_jaccard_by_hand() -> None:
    # "あいう" -> {あい, いう}; "あいえ" -> {あい, いえ}; intersection 1, union 3 -> 1/3
    assert bigram_jaccard("あいう", "あいえ") == pytest.approx(1 / 3)
    assert bigram_jaccard("同じ 文", "同じ文") == 1.0  # whitespace ignored
    assert bigram_jaccard(SLOW_A, SLOW_A2) >= 0.6


def test_typical_first_then_diverse_and_no_near_duplicates() -> None:
    candidates = [_c(5, SLOW_A, 0.95), _c(6, SLOW_A2, 0.94), _c(7, SLOW_B, 0.70), _c(8, SLOW_C, 0.60)]
    chosen = select_quotes(candidates, k=3)
    assert [c.row for c in chosen] == [5, 7, 8]  # row 6 is a near-duplicate of the typical quote


def test_exact_duplicates_collapse_and_k_is_respected() -> None:
    candidates = [_c(9, SLOW_B, 0.5), _c(3, SLOW_B, 0.9), _c(4, SLOW_C, 0.1)]
    assert [c.row for c in select_quotes(candidates, k=5)] == [3, 4]
    assert len(select_quotes(candidates, k=1)) == 1
    assert select_quotes([], k=3) == [] and select_quotes(candidates, k=0) == []


def test_medium_length_is_preferred_and_short_ones_only_fill_up() -> None:
    short = _c(1, "遅い。", 0.99)  # 3 characters: below 15
    long_ = _c(2, "遅い" * 80, 0.98)  # 160 characters: above 120
    medium = _c(3, SLOW_B, 0.2)
    assert [c.row for c in select_quotes([short, long_, medium], k=1)] == [3]
    # with room for more, the fallback comes nearest to the length range first (short misses by 12, long by 40)
    assert [c.row for c in select_quotes([short, long_, medium], k=3)] == [3, 1, 2]


def test_selection_is_deterministic_whatever_the_input_order() -> None:
    candidates = [_c(i, f"{SLOW_B}その{i}回目の問い合わせでした。", 0.5) for i in range(30)]
    expected = select_quotes(candidates, k=3)
    shuffled = candidates[:]
    random.Random(1).shuffle(shuffled)
    assert select_quotes(shuffled, k=3) == expected
    assert expected[0].row == 0  # equal relevance: the lowest row wins


def test_embeddings_typical_is_closest_to_centroid_and_diverse_is_far() -> None:
    # the centroid of the normalised vectors is ≈ (0.59, 0.57, 0.21)/0.85: row 2 is closest (cosine 0.999)
    candidates = [_c(1, SLOW_A, 0.1), _c(2, SLOW_B, 0.1), _c(3, SLOW_C, 0.1), _c(4, SLOW_A2, 0.9)]
    embeddings = {
        (1, "理由"): [1.0, 0.0, 0.0],
        (2, "理由"): [0.7, 0.7, 0.2],
        (3, "理由"): [0.0, 1.0, 0.5],
        (4, "理由"): [0.68, 0.72, 0.2],  # cosine ≈ 0.998 with row 2: a near-duplicate
    }
    chosen = select_quotes(candidates, k=3, embeddings=embeddings)
    assert [c.row for c in chosen] == [2, 3, 1]
    # a candidate without an embedding: the cell falls back to theme scores and bigram similarity
    partial = {key: v for key, v in embeddings.items() if key[0] != 4}
    assert select_quotes(candidates, k=1, embeddings=partial)[0].row == 4


def _row(
    row: int, score: int | None, text: str, sentiment: str, *hits: tuple[str, float, str]
) -> AnalyzedRow:
    result = TextResult(text, sentiment, {sentiment: 0.9}, [ThemeHit(t, t, s, sent) for t, s, sent in hits])
    return AnalyzedRow(row, score, None, {}, {"理由": result})


def test_theme_quotes_per_group_and_support_kind() -> None:
    rows = [
        _row(2, 2, SLOW_A, "negative", ("slow_response", 0.9, "negative")),
        _row(3, 9, SLOW_B, "neutral", ("slow_response", 0.8, "neutral")),
        _row(4, None, SLOW_C, "negative", ("slow_response", 0.9, "negative")),
        _row(
            5,
            10,
            "丁寧に対応していただき本当にありがとうございました。",
            "positive",
            ("gratitude", 0.9, "positive"),
        ),
    ]
    groups = ["detractors", "promoters", None, "promoters"]
    quotes = theme_quotes(rows, ["slow_response", "gratitude", "price"], groups)
    assert set(quotes) == {"slow_response", "gratitude"}  # price has no mention
    assert set(quotes["slow_response"]) == {"detractors", "passives", "promoters"}
    assert quotes["slow_response"]["detractors"] == [
        {"row": 2, "question": "理由", "text": SLOW_A, "sentiment": "negative", "score": 2}
    ]
    assert quotes["slow_response"]["passives"] == []
    assert all(q["row"] != 4 for qs in quotes["slow_response"].values() for q in qs)  # unscored: not quoted
    support = theme_quotes(rows, ["slow_response"], None)
    assert list(support["slow_response"]) == ["all"]
    assert [q["row"] for q in support["slow_response"]["all"]] == [2, 4, 3]


def test_promoter_quotes_filters() -> None:
    good = "いつも丁寧に対応していただき、安心して使えています。"
    rows = [
        _row(2, 10, good, "positive", ("support_staff", 0.9, "positive"), ("trust", 0.6, "positive")),
        _row(
            3,
            9,
            "料金は高いけれど、サポートはとても親切で助かっています。",
            "positive",
            ("price", 0.8, "negative"),
        ),
        _row(
            4,
            10,
            "対応が遅いのは残念ですが、全体としては満足しています。",
            "positive",
            ("slow_response", 0.7, "neutral"),
        ),
        _row(5, 8, "使いやすくて気に入っています、友人にも勧めました。", "positive"),  # passive
        _row(6, 10, "最高です", "positive"),  # too short to be informative
        _row(7, 9, "とくに大きな不満はありませんが、普通だと思います。", "neutral"),
    ]
    groups = ["promoters", "promoters", "promoters", "passives", "promoters", "promoters"]
    out = promoter_quotes(rows, groups, negative_themes={"slow_response"})
    assert out == [
        {
            "row": 2,
            "question": "理由",
            "text": good,
            "sentiment": "positive",
            "score": 10,
            "theme": "support_staff",
        }
    ]
