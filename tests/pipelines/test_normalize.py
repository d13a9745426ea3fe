from pipelines.normalize import normalize_text


def test_halfwidth_kana_and_fullwidth_ascii_fold() -> None:
    assert normalize_text("ｽﾀｯﾌの対応ＯＫ１２３") == "スタッフの対応OK123"


def test_whitespace_and_line_breaks() -> None:
    assert normalize_text("  とても\u3000 良い \r\n\r\n また来ます ") == "とても 良い\nまた来ます"


def test_repeated_punctuation_is_shortened_but_kept() -> None:
    assert normalize_text("最高！！！！！") == "最高!!"
    assert normalize_text("遅い。。。。") == "遅い。。"


def test_emoji_and_wave_dash_are_kept() -> None:
    assert normalize_text("ありがとう😊〜") == "ありがとう😊〜"


def test_empty() -> None:
    assert normalize_text("") == ""
    assert normalize_text("   ") == ""
