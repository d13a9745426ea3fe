"""Prompts for the tasks the pipeline stages describe (``pipelines.assistant.TASKS``), in Japanese.

Each builder takes the stage's payload and returns chat messages. The answer's shape is the JSON schema the
stage sends along; the prompt repeats it in words because small local models follow examples better than
schemas. Texts arrive PII-masked and are masked again by the client before they are sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["PROMPTS", "build_messages", "repair_message"]

Message = dict[str, str]

_SYSTEM = (
    "あなたは日本企業の顧客の声（NPSアンケートの自由回答やサポートへの問い合わせ）を分析するアナリストです。"
    "与えられたデータだけに基づいて、事実に忠実に、簡潔な日本語で答えてください。"
    "データにないことを推測で書いてはいけません。[メール] や [氏名] のような括弧書きは伏せ字なので、そのまま扱ってください。"
    "回答は指定された形式のJSONオブジェクトだけにしてください（説明文やコードブロックは不要です）。"
)


def _summarize(p: dict[str, Any]) -> list[Message]:
    quotes = "\n".join(f"[{q['id']}] {q['text']}" for q in p["quotes"])
    where = f"（{p['group_label']}）" if p.get("group_label") else ""
    segment = f"対象セグメント: {p['segment']}\n" if p.get("segment") else ""
    user = (
        f"テーマ「{p['theme_label']}」{where}について、{p['n']}件の回答から選んだ次の引用を読み、"
        f"このテーマで顧客が何を言っているかを2〜{p.get('max_sentences', 3)}文で要約してください。\n"
        f"{segment}"
        "ルール:\n"
        "- 各文は、その根拠となる引用のID（q1 など）を quote_ids に1つ以上挙げること。\n"
        "- 下の一覧にないIDを挙げてはいけない。引用に書かれていないことは書かない。\n"
        "- 件数や割合は書かない（数値は別に表示されます）。\n"
        '出力形式: {"sentences": [{"text": "要約の文。", "quote_ids": ["q1", "q3"]}]}\n\n'
        f"引用:\n{quotes}"
    )
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


def _name_cluster(p: dict[str, Any]) -> list[Message]:
    sentences = "\n".join(f"- {s}" for s in p["sentences"])
    user = (
        "どのテーマにも当てはまらなかった顧客の声を似たもの同士でまとめたところ、次のまとまりができました。"
        f"（{p['size']}文）\n"
        f"特徴語: {'、'.join(p['keywords'])}\n"
        f"代表的な文:\n{sentences}\n\n"
        "このまとまりを新しいテーマとして名付けてください。\n"
        "- name: 分析者が一目で分かる短い日本語のテーマ名（15文字以内、例: 「解約手続き」「アプリの不具合」）\n"
        "- description: どんな声が入るかの説明（80文字以内）\n"
        "- id: 英小文字とアンダースコアの識別子（例: cancellation_process）\n"
        "- polarity: そのテーマ自体が不満を表すなら negative_signal、好意を表すなら positive_signal、"
        "話題にすぎないなら topic\n"
        '出力形式: {"name": "...", "description": "...", "id": "...", "polarity": "topic"}'
    )
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


def _propose_labels(p: dict[str, Any]) -> list[Message]:
    theme = p["theme"]
    examples = "\n".join(f"- {e}" for e in theme.get("examples", []))
    items = "\n".join(f"[{it['id']}] {it['text']}" for it in p["items"])
    user = (
        f"テーマ「{theme['name']}」の判定をしてください。\n"
        f"テーマの説明: {theme.get('description') or '（なし）'}\n"
        f"このテーマに当てはまる文の例:\n{examples or '（なし）'}\n\n"
        "次の各文がこのテーマについて述べているかどうかを判定し、label を true / false で答えてください。"
        "reason には判断の理由を20文字程度で書いてください。すべてのIDに1回ずつ答えること。\n"
        '出力形式: {"labels": [{"id": "t1", "label": true, "reason": "..."}]}\n\n'
        f"文:\n{items}"
    )
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


PROMPTS: dict[str, Callable[[dict[str, Any]], list[Message]]] = {
    "summarize": _summarize,
    "name_cluster": _name_cluster,
    "propose_labels": _propose_labels,
}


def build_messages(task: str, payload: dict[str, Any]) -> list[Message]:
    try:
        builder = PROMPTS[task]
    except KeyError:
        raise ValueError(f"The 'task' parameter must be one of {', '.join(PROMPTS)}; got {task!r}") from None
    return builder(payload)


def repair_message(problems: list[str]) -> str:
    listed = "\n".join(f"- {p}" for p in problems[:8])
    return (
        "直前の回答は次の理由で受け付けられませんでした:\n"
        f"{listed}\n"
        "同じ指示に従い、問題を直したJSONオブジェクトだけをもう一度出力してください。"
    )
