import pytest

from pipelines.pii import find_pii, luhn_valid, mask_pii, my_number_valid


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


# -- addresses, check digits, bank accounts, names ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("東京都渋谷区神南1-2-3 コーポ101号室に住んでいます", "[住所]に住んでいます"),
        ("〒330-0063 埼玉県さいたま市浦和区高砂9-9-9", "[郵便番号] [住所]"),
        ("大阪市北区梅田三丁目1番1号まで", "[住所]まで"),
        ("市内の緑町3-12です", "市内の[住所]です"),
        ("普通預金 1234567 に返金を", "普通預金 [番号] に返金を"),
        ("ゆうちょ 記号12345 番号12345678", "ゆうちょ 記号[番号]"),
    ],
)
def test_masks_addresses_and_bank_accounts(text: str, expected: str) -> None:
    assert mask_pii(text) == expected


@pytest.mark.parametrize(
    "text", ["渋谷区の店舗で買いました", "東京都のお店で1-2人", "品川区の店舗で3-4人待ち"]
)
def test_a_place_without_a_house_number_is_not_an_address(text: str) -> None:
    assert mask_pii(text) == text


def test_luhn_and_my_number_check_digits_by_hand() -> None:
    assert luhn_valid("4111 1111 1111 1111") and luhn_valid("3782-822463-10005")  # Visa / Amex test numbers
    assert not luhn_valid("4111 1111 1111 1112")
    # 12345678901: sum P_n*Q_n from the right = 1*2+0*3+9*4+8*5+7*6+6*7+5*2+4*3+3*4+2*5+1*6 = 212;
    # 212 mod 11 = 3 -> check digit 11 - 3 = 8
    assert my_number_valid("1234 5678 9018")
    assert [c for c in range(10) if my_number_valid(f"12345678901{c}")] == [8]
    assert not my_number_valid("1234-5678-901")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4111111111111111", "[カード番号]"),  # no separators: Luhn says card
        ("4111 1111 1111 1112 で", "[番号] で"),  # card-shaped, fails Luhn: still masked
        ("注文番号 1234567890123", "注文番号 [番号]"),  # 13 digits, not a card
        ("123456789018", "[マイナンバー]"),  # valid check digit, no label needed
        ("伝票番号は 4481-2290-0175 です。", "伝票番号は [番号] です。"),  # 12 digits, wrong check digit
        ("個人番号 1234 5678 9012", "個人番号 [マイナンバー]"),  # labelled: the check digit is not needed
    ],
)
def test_check_digits_choose_the_tag_never_whether_to_mask(text: str, expected: str) -> None:
    assert mask_pii(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("担当の田中さんが親切でした", "担当の[氏名]さんが親切でした"),
        ("山田太郎様から連絡がありました", "[氏名]様から連絡がありました"),
        ("佐々木が対応しました", "[氏名]が対応しました"),
        ("高橋くんは優秀", "[氏名]くんは優秀"),
    ],
)
def test_names_are_masked_on_request(text: str, expected: str) -> None:
    assert mask_pii(text, names=True) == expected
    assert mask_pii(text) == text  # off by default: the models read what they were trained on


@pytest.mark.parametrize(
    "text", ["新宿店の店員さんが親切", "お客様番号の確認", "誠に申し訳ございません", "愛知県の店舗"]
)
def test_roles_and_places_are_not_names(text: str) -> None:
    assert "[氏名]" not in mask_pii(text, names=True)
