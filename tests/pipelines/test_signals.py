from pipelines.signals import DEFAULT_NEGATIVE, DEFAULT_POSITIVE, engagement_signals, signal_counts

RESPONSES = [
    {"gratitude": "positive"},  # positive signal
    {"empathy": "negative"},  # "they did not understand me": not a positive signal
    {"slow_response": "positive"},  # "the reply was quick": not a negative signal
    {"slow_response": "negative", "trust": "neutral"},  # both a negative and a positive signal
    {"inconvenience": "neutral", "price": "negative"},  # negative signal (neutral counts; price is no signal)
    {},  # answered, no theme
]


def test_signal_counts_by_hand() -> None:
    # positive: responses 1 and 4 -> 2; negative: responses 4 and 5 -> 2; n = 6
    # index = (2 − 2) / 6 = 0
    assert signal_counts(RESPONSES) == {"n": 6, "positive": 2, "negative": 2, "index": 0.0}
    # without the last two: positive 2 (1, 4), negative 1 (4) -> (2 − 1) / 4 = 0.25
    assert signal_counts(RESPONSES[:4]) == {"n": 4, "positive": 2, "negative": 1, "index": 0.25}


def test_empty_input_has_no_index() -> None:
    assert signal_counts([]) == {"n": 0, "positive": 0, "negative": 0, "index": None}


def test_lists_come_from_parameters() -> None:
    assert DEFAULT_POSITIVE == ("gratitude", "empathy", "trust")
    assert DEFAULT_NEGATIVE == ("inconvenience", "disappointment", "slow_response")
    out = signal_counts(RESPONSES, positive=["price"], negative=["churn_intent"])
    assert (out["positive"], out["negative"]) == (0, 0)  # price is negative in response 5; no churn_intent


def test_engagement_signals_overall_and_by_period() -> None:
    periods = ["2026-W47", "2026-W46", "2026-W47", None, "2026-W46", "2026-W46"]
    out = engagement_signals(RESPONSES, periods, granularity="week")
    assert out["positive"] == list(DEFAULT_POSITIVE) and out["negative"] == list(DEFAULT_NEGATIVE)
    assert out["overall"]["n"] == 6 and out["granularity"] == "week"
    # W46: responses 2, 5, 6 -> positive 0, negative 1 -> −1/3; W47: responses 1, 3 -> positive 1 -> 0.5
    assert out["by_period"] == [
        {"period": "2026-W46", "n": 3, "positive": 0, "negative": 1, "index": -0.333},
        {"period": "2026-W47", "n": 2, "positive": 1, "negative": 0, "index": 0.5},
    ]


def test_no_date_column() -> None:
    out = engagement_signals(RESPONSES)
    assert out["by_period"] is None and out["granularity"] is None
