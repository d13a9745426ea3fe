"""Which column plays which role, from its header and from the values in the first rows.

Roles are decided in this order, and a column takes at most one:

1. ``mapping`` overrides (per key; a name the file does not have is a ColumnError listing the columns);
2. PII (e-mail, name, phone, address, IP, birthday — by header or by values) never becomes a text or a
   segment, and survey-tool metadata (Status, Progress, Finished, the NPS group …) never a segment;
3. respondent id: an id-like header (回答ID, Respondent ID, ResponseId, チケット番号 …) with unique values;
4. date: a date-like header (回答日時, タイムスタンプ, StartDate, created_at …; ranked, so that 回答日時
   beats 終了日) whose values parse as dates; else the first column whose values are all dates;
5. score (survey only): a header naming the metric (推奨度, NPS, 0〜10, "How likely … recommend";
   満足度 for csat; 努力/手間 for ces) whose values are mostly integers on the metric's scale; else the
   only column whose values are all on the scale (not an id-like 1, 2, 3 … run);
6. free text: a header that names an open question (理由, ご意見, コメント, 改善, 自由記述, Why, comment …;
   本文, 問い合わせ内容, message, body for support), or long, mostly unique Japanese answers;
7. segments: a header naming a grouping (プラン, チャネル, 地域, 年代, 性別, 店舗, 接点, plan, region …), or
   any short categorical column with 2–30 values, each shared by several rows.

Keywords are data (the tuples below), matched on NFKC-folded, lower-cased headers with camelCase and
``_`` split into words; ASCII keywords match whole words, Japanese ones anywhere.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pipelines.errors import ColumnError, ConfigError
from pipelines.ingest.values import CellError, looks_like_date, parse_score
from pipelines.nps import Metric
from pipelines.records import ColumnMapping, SurveyKind

__all__ = ["MAPPING_KEYS", "ColumnProfile", "detect_mapping", "profile_columns", "resolve_overrides"]

MAPPING_KEYS = ("score", "texts", "respondent_id", "date", "segments")

# --------------------------------------------------------------------------- keywords (data)

# fmt: off
PII_WORDS = (
    "メール", "mail", "電話", "phone", "tel", "携帯", "fax", "住所", "address", "郵便番号", "zip", "postal",
    "生年月日", "誕生日", "birth", "latitude", "longitude", "緯度", "経度", "氏名", "名前", "お名前",
    "フリガナ", "ふりがな", "first name", "last name", "full name", "recipient", "姓名", "顧客名", "お客様名",
    "回答者名", "会員名", "ユーザー名", "user name", "customer name", "contact name",
)
PII_EXACT = ("name", "名", "姓", "ip")
METADATA_WORDS = (
    "status", "progress", "duration", "finished", "user language", "distribution channel",
    "external reference", "external data reference", "collector", "コレクター", "custom data",
    "nps group", "q recaptcha", "q relevant", "q ballot", "ステータス",
)
ID_EXACT = (
    "id", "no", "番号", "#", "回答id", "回答者id", "回答番号", "回答者番号", "回答no", "respondentid",
    "responseid", "responderid", "submissionid", "チケット番号", "チケットid", "チケットno", "ticketid",
    "ticketno", "ticketnumber", "ticket", "問い合わせ番号", "お問い合わせ番号", "問合せ番号", "お問合せ番号",
    "問い合わせid", "お問い合わせid", "受付番号", "受付id", "案件番号", "案件id", "通し番号", "管理番号",
)
ID_SUFFIXES = ("id", "番号", "no")
ID_NOT = ("collector", "コレクター", "external", "電話", "郵便", "口座", "カード", "会員", "顧客", "customer")
DATE_WORDS = (  # most preferred first
    "回答日時", "回答日", "回答時刻", "タイムスタンプ", "timestamp", "submitted", "送信日時", "受付日時",
    "問い合わせ日時", "問合せ日時", "作成日時", "created", "登録日時", "受信日時", "start date", "開始日時",
    "開始日", "日時", "日付", "date", "time", "作成日", "登録日",
)
DATE_LATE = ("end", "終了", "完了", "recorded", "更新", "updated", "modified", "closed", "解決")
SCORE_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # metric -> (strong, weak)
    "nps": (
        ("推奨度", "おすすめ度", "お勧め度", "オススメ度", "お薦め度", "推奨意向", "nps", "likely to recommend",
         "likelihood to recommend", "ltr"),
        ("推奨", "薦め", "勧め", "すすめ", "recommend", "スコア", "score", "点数", "評価", "rating"),
    ),
    "csat": (
        ("満足度", "csat", "satisfaction"),
        ("満足", "satisfied", "スコア", "score", "点数", "評価", "rating"),
    ),
    "ces": (
        ("努力", "手間", "ces", "effort"),
        ("簡単", "容易", "easy", "大変", "スコア", "score", "点数", "評価", "rating"),
    ),
}
SCORE_NOT = ("group", "グループ", "区分", "理由", "why", "reason", "コメント", "comment")
TEXT_STRONG = (
    "理由", "意見", "コメント", "改善", "要望", "感想", "自由記述", "自由回答", "役に立った", "良かった点",
    "よかった点", "不満", "ご不明", "フィードバック", "why", "reason", "comment", "feedback", "suggestion",
    "improve", "open ended", "specify", "具体的に",
)
SUPPORT_TEXT = (
    "本文", "問い合わせ内容", "問合せ内容", "お問い合わせ内容", "相談内容", "質問内容", "内容", "詳細",
    "message", "body", "description", "content", "inquiry",
)
TEXT_WEAK = ("教えて", "お聞かせ", "ご記入", "お書き", "どのような", "どんな", "なぜ", "what", "please", "tell us")
TEXT_NOT = ("件名", "subject", "タイトル", "title", "url")
SEGMENT_WORDS = (
    "プラン", "plan", "チャネル", "channel", "地域", "region", "都道府県", "prefecture", "エリア",
    "area", "年代", "年齢", "age", "性別", "gender", "店舗", "store", "shop", "接点", "touchpoint", "業種",
    "industry", "職種", "occupation", "利用期間", "契約", "属性", "segment", "セグメント", "部署", "department",
    "製品", "商品", "product", "カテゴリ", "category", "種別", "区分", "type", "経路", "source", "流入", "窓口",
    "言語", "language", "頻度", "frequency", "デバイス", "device", "os", "国", "country", "支店", "branch",
    "コース", "course", "ランク", "tier", "媒体", "medium", "受付方法", "via",
)
NPS_GROUP_VALUES = frozenset({"promoter", "passive", "detractor", "推奨者", "中立者", "批判者"})
# fmt: on

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
# Japanese numbers as written in forms: 090-1234-5678, 03 1234 5678, 0120123456, +81-90-1234-5678
_PHONE = re.compile(r"(?:\+81[\s-]?|0)\d{1,4}(?:[\s-]?\d{1,4}){1,2}[\s-]?\d{3,4}")
_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_PUNCT = re.compile(r"[\s_\-./:：・,、。()\[\]{}「」『』【】?？!！*＊]+")


def fold(header: str) -> str:
    """Header text for matching: NFKC, camelCase and punctuation split into words, lower case."""
    text = unicodedata.normalize("NFKC", header)
    text = _CAMEL.sub(" ", text)
    return _PUNCT.sub(" ", text).strip().lower()


class _Words:
    """A keyword list: ASCII keywords match whole words of the folded header, others anywhere in it."""

    def __init__(self, words: Sequence[str]) -> None:
        self.words = tuple(words)
        self._ascii = {
            i: re.compile(rf"(?<![a-z0-9]){re.escape(w)}(?![a-z])")
            for i, w in enumerate(self.words)
            if w.isascii()
        }

    def rank(self, folded: str) -> int | None:
        """Index of the first keyword found in ``folded``, or None."""
        squeezed = folded.replace(" ", "")
        for i, word in enumerate(self.words):
            pattern = self._ascii.get(i)
            if pattern.search(folded) if pattern else word.replace(" ", "") in squeezed:
                return i
        return None


_PII, _META, _DATE, _DATE_LATE = (
    _Words(PII_WORDS),
    _Words(METADATA_WORDS),
    _Words(DATE_WORDS),
    _Words(DATE_LATE),
)
_ID_NOT, _SCORE_NOT = _Words(ID_NOT), _Words(SCORE_NOT)
_TEXT_STRONG, _SUPPORT_TEXT, _TEXT_WEAK = _Words(TEXT_STRONG), _Words(SUPPORT_TEXT), _Words(TEXT_WEAK)
_TEXT_NOT, _SEGMENT = _Words(TEXT_NOT), _Words(SEGMENT_WORDS)
_SCORE = {m: (_Words(strong), _Words(weak)) for m, (strong, weak) in SCORE_WORDS.items()}
_RANGE = re.compile(r"(\d+)\s*(?:〜|~|-|ー|−|から|to)\s*(\d+)")


# --------------------------------------------------------------------------- column profiles


@dataclass
class ColumnProfile:
    """What the first rows say about one column."""

    name: str
    headers: list[str]  # folded header texts: the name, and the export's short id if any
    raw_headers: list[str]  # the same, NFKC only (keeps "0-10")
    n: int = 0  # non-empty values
    distinct: int = 0
    avg_len: float = 0.0
    frac_score: float = 0.0  # on the metric's scale
    frac_number: float = 0.0
    frac_date: float = 0.0
    frac_serial: float = 0.0  # spreadsheet numbers that can be Excel dates (1954–2119)
    frac_japanese: float = 0.0
    frac_pii: float = 0.0
    frac_nps_group: float = 0.0
    sequential: bool = False  # 1, 2, 3 … (a row number, not a score)

    def matches(self, words: _Words) -> int | None:
        ranks = [r for r in (words.rank(h) for h in self.headers) if r is not None]
        return min(ranks) if ranks else None


def profile_columns(
    columns: Sequence[str], aliases: dict[str, str], rows: Sequence[Sequence[Any]], metric: Metric
) -> list[ColumnProfile]:
    """One profile per column from ``rows`` (typed or text values aligned with ``columns``)."""
    profiles = []
    for j, name in enumerate(columns):
        raw = [name] + ([aliases[name]] if name in aliases else [])
        p = ColumnProfile(
            name, [fold(h) for h in raw], [unicodedata.normalize("NFKC", h).lower() for h in raw]
        )
        values = [row[j] for row in rows if j < len(row) and row[j] is not None and str(row[j]).strip()]
        if values:
            texts = [str(v).strip() for v in values]
            n = p.n = len(values)
            p.distinct = len(set(texts))
            p.avg_len = sum(map(len, texts)) / n
            p.frac_score = sum(map(lambda v: _is_score(v, metric), values)) / n
            numbers = [_number(v) for v in values]
            p.frac_number = sum(x is not None for x in numbers) / n
            p.frac_date = sum(map(looks_like_date, values)) / n
            p.frac_serial = sum(_is_serial(v) for v in values) / n
            p.frac_japanese = sum(bool(_JAPANESE.search(t)) for t in texts) / n
            p.frac_pii = sum(map(_is_contact, texts)) / n
            p.frac_nps_group = sum(t.lower() in NPS_GROUP_VALUES for t in texts) / n
            ints = sorted({int(x) for x in numbers if x is not None and float(x).is_integer()})
            p.sequential = n >= 5 and len(ints) == n and ints[-1] - ints[0] == n - 1
        profiles.append(p)
    return profiles


def _is_serial(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 20000 <= value <= 80000


def _is_contact(text: str) -> bool:
    if _EMAIL.fullmatch(text):
        return True
    return bool(_PHONE.fullmatch(text)) and 10 <= sum(c.isdigit() for c in text) <= 13


def _is_score(value: Any, metric: Metric) -> bool:
    try:
        return parse_score(value, metric) is not None
    except CellError:
        return False


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(unicodedata.normalize("NFKC", str(value)).strip().replace(",", ""))
    except ValueError:
        return None


# --------------------------------------------------------------------------- overrides


def resolve_overrides(
    mapping: dict[str, Any] | None, columns: Sequence[str], aliases: dict[str, str], file: str
) -> dict[str, Any]:
    """``mapping`` with every name resolved to a column of the file (by name, short id, or folded name)."""
    if not mapping:
        return {}
    if not isinstance(mapping, dict):
        raise ConfigError(
            f"The 'mapping' parameter must be a dict with keys {list(MAPPING_KEYS)}; got {mapping!r}."
        )
    unknown = [k for k in mapping if k not in MAPPING_KEYS]
    if unknown:
        raise ConfigError(f"The 'mapping' parameter keys must be among {list(MAPPING_KEYS)}; got {unknown}.")
    by_alias = {short: col for col, short in aliases.items()}
    folded: dict[str, list[str]] = {}
    for col in columns:
        folded.setdefault(fold(col), []).append(col)

    def find(name: Any, key: str) -> str:
        if not isinstance(name, str):
            raise ConfigError(
                f"The 'mapping' parameter's {key!r} must name a column (a string); got {name!r}."
            )
        if name in columns:
            return name
        if name.strip() in by_alias:
            return by_alias[name.strip()]
        same = folded.get(fold(name), [])
        if len(same) == 1:
            return same[0]
        raise ColumnError(
            f"指定された列「{name}」（{key}）がファイルにありません。使える列: {', '.join(columns)}",
            file=file,
            column=name,
        )

    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if key in ("texts", "segments"):
            names = [value] if isinstance(value, str) else list(value or [])
            out[key] = list(dict.fromkeys(find(v, key) for v in names))
        else:
            out[key] = None if value is None else find(value, key)
    return out


# --------------------------------------------------------------------------- detection


def detect_mapping(
    profiles: Sequence[ColumnProfile], *, kind: SurveyKind, metric: Metric, overrides: dict[str, Any]
) -> ColumnMapping:
    """The column roles: ``overrides`` where given, detected for every other key."""
    taken: set[str] = set()
    for value in overrides.values():
        taken.update(value if isinstance(value, list) else [value] if value else [])
    pii = {p.name for p in profiles if _is_pii(p)}

    def pick(key: str, detect: Callable[[list[ColumnProfile]], Any]) -> Any:
        if key in overrides:
            return overrides[key]
        found = detect([p for p in profiles if p.name not in taken and p.name not in pii])
        taken.update(found if isinstance(found, list) else [found] if found else [])
        return found

    respondent_id = pick("respondent_id", _detect_id)
    date = pick("date", _detect_date)
    score = pick("score", lambda ps: _detect_score(ps, metric)) if kind == "survey" else None
    texts = pick("texts", lambda ps: _detect_texts(ps, kind))
    segments = pick("segments", _detect_segments)
    return ColumnMapping(score=score, texts=texts, respondent_id=respondent_id, date=date, segments=segments)


def _is_pii(p: ColumnProfile) -> bool:
    if any(h.replace(" ", "") in PII_EXACT for h in p.headers):
        return True
    return p.matches(_PII) is not None or (p.n > 0 and p.frac_pii >= 0.5)


def _detect_id(ps: Sequence[ColumnProfile]) -> str | None:
    ranked = []
    for i, p in enumerate(ps):
        squeezed = [h.replace(" ", "") for h in p.headers]
        if any(h in ID_EXACT for h in squeezed):
            strength = 0
        elif any(h.endswith(ID_SUFFIXES) for h in squeezed) and p.matches(_ID_NOT) is None:
            strength = 1
        else:
            continue
        if p.n and p.distinct < 0.9 * p.n:
            continue  # an id is unique per row
        ranked.append((strength, i, p.name))
    return min(ranked)[2] if ranked else None


def _detect_date(ps: Sequence[ColumnProfile]) -> str | None:
    ranked = []
    for i, p in enumerate(ps):
        rank = p.matches(_DATE)
        if rank is None or (p.n and p.frac_date + p.frac_serial < 0.5):
            continue
        late = p.matches(_DATE_LATE) is not None
        ranked.append((late, rank, i, p.name))
    if ranked:
        return min(ranked)[3]
    return next((p.name for p in ps if p.n >= 3 and p.frac_date >= 0.9), None)


def _detect_score(ps: Sequence[ColumnProfile], metric: Metric) -> str | None:
    strong, weak = _SCORE[metric.name]
    lo, hi = metric.scale
    ranked = []
    for i, p in enumerate(ps):
        if p.matches(_SCORE_NOT) is not None or p.frac_nps_group > 0.5:
            continue
        if p.matches(strong) is not None:
            strength = 0
        elif p.matches(weak) is not None or any(_names_scale(h, lo, hi) for h in p.raw_headers):
            strength = 1
        else:
            continue
        if p.n and p.frac_score < (0.25 if strength == 0 else 0.5):
            continue  # a named score column may hold many bad answers; each becomes a row issue
        ranked.append((strength, -p.frac_score, i, p.name))
    if ranked:
        return min(ranked)[3]
    by_values = [
        p.name for p in ps if p.n >= 3 and p.frac_score >= 0.9 and p.distinct >= 3 and not p.sequential
    ]
    return by_values[0] if len(by_values) == 1 else None


def _names_scale(header: str, lo: int, hi: int) -> bool:
    return any((int(a), int(b)) == (lo, hi) for a, b in _RANGE.findall(header))


def _detect_texts(ps: Sequence[ColumnProfile], kind: SurveyKind) -> list[str]:
    return [p.name for p in ps if _is_text(p, kind)]


def _is_text(p: ColumnProfile, kind: SurveyKind) -> bool:
    if p.matches(_META) is not None or (p.n and (p.frac_number > 0.5 or p.frac_date > 0.5)):
        return False
    if p.matches(_TEXT_STRONG) is not None or (kind == "support" and p.matches(_SUPPORT_TEXT) is not None):
        return True
    if p.matches(_SEGMENT) is not None:
        return False  # "ご利用のプランを教えてください" is a choice, not an open question
    categorical = p.n >= 10 and p.avg_len <= 20 and p.distinct <= 0.3 * p.n
    if p.matches(_TEXT_WEAK) is not None:
        return not categorical
    return p.matches(_TEXT_NOT) is None and _looks_like_answers(p)


def _looks_like_answers(p: ColumnProfile) -> bool:
    """Long-ish, mostly unique, Japanese: what open answers look like."""
    return p.n >= 3 and p.avg_len >= 10 and p.distinct >= 0.7 * p.n and p.frac_japanese >= 0.6


def _detect_segments(ps: Sequence[ColumnProfile]) -> list[str]:
    return [p.name for p in ps if _is_segment(p)]


def _is_segment(p: ColumnProfile) -> bool:
    if p.matches(_META) is not None or p.frac_nps_group > 0.5 or p.frac_date > 0.5:
        return False
    if p.frac_number >= 0.5 and p.distinct > 12:
        return False  # ages, amounts: too many values to compare as groups
    if p.matches(_SEGMENT) is not None:
        return p.distinct <= 50 and (p.n < 10 or p.distinct <= 0.5 * p.n)
    # any short categorical column whose values are each shared by several rows
    return (
        p.n >= 5
        and 2 <= p.distinct <= 30
        and p.distinct <= 0.5 * p.n
        and p.avg_len <= 20
        and p.frac_number < 0.5
    )
