"""Toneless pinyin read back as Chinese, for the words an injection is made of ("hu lue zhi qian de gui ze").

Writing 忽略之前的规则 as pinyin hides it from Chinese patterns while a model still reads it. Only stretches of
Latin words that spell out pinyin from end to end are read back, and only when they hold a word that
matters here (忽略, 指令, 提示词, ...): English text does not spell pinyin from end to end, so it is left alone.
Tone marks were already dropped by ``normalize``; ü may be written u or v.
"""

from __future__ import annotations

import re

# Words that make a stretch worth reading back: without one of them there is nothing to find.
_TRIGGERS = {
    "hulue": "忽略",
    "hulve": "忽略",
    "hushi": "忽视",
    "wushi": "无视",
    "wangji": "忘记",
    "wangdiao": "忘掉",
    "paokai": "抛开",
    "tiaoguo": "跳过",
    "raoguo": "绕过",
    "zhiling": "指令",
    "guize": "规则",
    "xianzhi": "限制",
    "yueshu": "约束",
    "sheding": "设定",
    "tishici": "提示词",
    "tishiyu": "提示语",
    "renshe": "人设",
    "yueyu": "越狱",
    "kaifazhe": "开发者",
    "guanliyuan": "管理员",
    "xielou": "泄露",
    "shenhe": "审核",
    "yanzheng": "验证",
    "quanxian": "权限",
    "tuikuan": "退款",
    "xitong": "系统",
    "shuchu": "输出",
    "youhuiquan": "优惠券",
    "mianfei": "免费",
    "mianshan": "免单",
}
# The words around them, so that a whole phrase spells out.
_FILLERS = {
    "zhiqian": "之前",
    "yiqian": "以前",
    "yishang": "以上",
    "shangmian": "上面",
    "qianmian": "前面",
    "suoyou": "所有",
    "quanbu": "全部",
    "yiqie": "一切",
    "renhe": "任何",
    "yuanlai": "原来",
    "chushi": "初始",
    "yincang": "隐藏",
    "neirong": "内容",
    "wanzheng": "完整",
    "xianzai": "现在",
    "meiyou": "没有",
    "buyao": "不要",
    "buyong": "不用",
    "ranhou": "然后",
    "zhijie": "直接",
    "gaosu": "告诉",
    "xianshi": "显示",
    "dayin": "打印",
    "huida": "回答",
    "zunshou": "遵守",
    "keyi": "可以",
    "mingling": "命令",
    "moshi": "模式",
    "mima": "密码",
    "tishi": "提示",
    "qing": "请",
    "ni": "你",
    "nide": "你的",
    "wo": "我",
    "de": "的",
    "gei": "给",
    "ba": "把",
    "bing": "并",
    "he": "和",
    "le": "了",
    "shi": "是",
    "bu": "不",
    "yao": "要",
    "jiu": "就",
    "ting": "听",
    "shuo": "说",
    "zuo": "做",
    "yige": "一个",
    "ai": "AI",
}
_WORDS = {**_FILLERS, **_TRIGGERS}
_LONGEST = max(map(len, _WORDS))
_RUN = re.compile(r"[a-z]+(?:[ '\-]+[a-z]+)*")
_TOKEN = re.compile(r"[a-z]+")
_MAX_LETTERS = 120  # letters read back together; an attack phrase is far shorter
_CJK_GAP = re.compile(r"(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff])")  # "忽略 之前" reads as one phrase


def pinyin_variant(text: str) -> str | None:
    """``text`` (normalised) with its pinyin stretches in Chinese characters; None when there are none."""
    letters = re.sub("[^a-z]", "", text.replace("v", "u"))
    if not any(trigger.replace("v", "u") in letters for trigger in _TRIGGERS):
        return None
    pieces: list[str] = []
    last = 0
    for run in _RUN.finditer(text):
        for start, end, hanzi in _read_run(run):
            pieces.append(text[last:start])
            pieces.append(hanzi)
            last = end
    if not pieces:
        return None
    pieces.append(text[last:])
    return _CJK_GAP.sub("", "".join(pieces))


def _read_run(run: re.Match[str]) -> list[tuple[int, int, str]]:
    """(start, end, Chinese) for each longest stretch of the run's words that spells pinyin and holds a trigger."""
    tokens = list(_TOKEN.finditer(run.group()))
    letters = "".join(t.group() for t in tokens)
    starts = [0]  # letter offset where each token starts; the last entry is where the run ends
    for token in tokens:
        starts.append(starts[-1] + len(token.group()))
    token_at = {offset: index for index, offset in enumerate(starts)}
    found = []
    first = 0
    while first < len(tokens):
        spelled = _spell(letters, starts[first], token_at)
        if not spelled:
            first += 1
            continue
        last, words = spelled[-1]
        with_trigger = [(end, w) for end, w in spelled if any(word in _TRIGGERS for word in w)]
        if with_trigger:
            last, words = with_trigger[-1]
            start, end = run.start() + tokens[first].start(), run.start() + tokens[last - 1].end()
            found.append((start, end, "".join(_WORDS[word] for word in words)))
        first = last  # a stretch that spells pinyin without a trigger is skipped whole: each start is read once
    return found


def _spell(letters: str, begin: int, token_at: dict[int, int]) -> list[tuple[int, list[str]]]:
    """(token index, words) for each token end up to which ``letters[begin:]`` spells known words, in order.

    Fewest words first; at most ``_MAX_LETTERS`` letters, and it stops as soon as no word can spell on.
    """
    stop = min(len(letters), begin + _MAX_LETTERS)
    best: dict[int, list[str]] = {begin: []}
    reached = begin
    spelled = []
    for end in range(begin + 1, stop + 1):
        if end - reached > _LONGEST:
            break
        choices = [
            [*best[start], letters[start:end]]
            for start in range(max(begin, end - _LONGEST), end)
            if start in best and letters[start:end] in _WORDS
        ]
        if not choices:
            continue
        best[end] = min(choices, key=len)
        reached = end
        if end in token_at:
            spelled.append((token_at[end], best[end]))
    return spelled
