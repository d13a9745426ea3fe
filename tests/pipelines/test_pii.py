import pytest

from pipelines.pii import find_pii, mask_pii


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("連絡は taro.yamada@example.co.jp まで", "連絡は [メール] まで"),
        ("携帯 090-1234-5678 に", "携帯 [電話番号] に"),
        ("固定 03-1234-5678、フリー 0120-123-456", "固定 [電話番号]、フリー [電話番号]"),
        ("+81-90-1234-5678", "[電話番号]"),
        ("〒150-0001 東京都", "[郵便番号] 東京都"),
        ("カード 4111 1111 1111 1111 で", "カード [カード番号] で"),
        ("マイナンバー 1234-5678-9012", "マイナンバー [マイナンバー]"),
        ("会員番号: 12345678 です", "会員番号: [番号] です"),
        ("詳細 https://example.jp/help?q=1 を見た", "詳細 [URL] を見た"),
        ("０９０－１２３４－５６７８", "[電話番号]"),
    ],
)
def test_masks_each_kind(text: str, expected: str) -> None:
    assert mask_pii(text) == expected


@pytest.mark.parametrize(
    "text", ["料金は5,000円でした", "2026-11-20に届いた", "3回目です", "012345", "第2四半期"]
)
def test_leaves_ordinary_numbers_alone(text: str) -> None:
    assert mask_pii(text) == text


def test_two_phone_numbers_side_by_side_are_two_matches() -> None:
    assert [m.kind for m in find_pii("03-1234-5678 0120-123-456")] == ["phone", "phone"]
