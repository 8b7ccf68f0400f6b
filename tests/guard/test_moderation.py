"""Moderation: the built-in zh + en lexicons (flagged examples per category, hard negatives from customer-service
reality, obfuscation, speed) and the external provider against a real HTTP server on 127.0.0.1, both styles,
with every way it can fail (timeout, HTTP 500, garbage, wrong shape, nothing listening)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any

import httpx
import pytest
import yaml

from kefu.guard.lexicons import CATEGORIES, LANGUAGES, _LexiconBuilder, normalise
from kefu.guard.moderation import HttpModerator, LexiconModerator, ModerationVerdict, Moderator
from kefu.llm.local import free_port
from tests.guard.cpu_time import p99_thread_seconds

FLAGGED_EN = [
    ("you are an idiot", "abuse"),
    ("You're such a useless moron, let me talk to a human", "abuse"),
    ("fuck you", "abuse"),
    ("F*ck you and your refund policy", "abuse"),
    ("f u c k you", "abuse"),
    ("go fuck yourself", "abuse"),
    ("shut the fuck up", "abuse"),
    ("are you stupid or what?", "abuse"),
    ("you stupid bot", "abuse"),
    ("what an idiot you are", "abuse"),
    ("you guys are all morons", "abuse"),
    ("u r a retard", "abuse"),
    ("stfu bitch", "abuse"),
    ("you piece of shit", "abuse"),
    ("You are a worthless piece of garbage", "abuse"),
    ("you dumbass, I said the blue one", "abuse"),
    ("Listen here you motherfucker", "abuse"),
    ("ur so dumb", "abuse"),
    ("kys", "abuse"),
    ("go kill yourself", "abuse"),
    ("Y0u 1d10t", "abuse"),
    ("You're fucking useless", "abuse"),
    ("send nudes", "sexual"),
    ("do you have porn", "sexual"),
    ("I'm horny, wanna sext?", "sexual"),
    ("show me your tits", "sexual"),
    ("send me a dick pic", "sexual"),
    ("where can I watch p0rn", "sexual"),
    ("let's have sex", "sexual"),
    ("child porn links", "sexual"),
    ("I will kill you", "violence"),
    ("I'm going to stab you", "violence"),
    ("I'll beat you up when I find your store", "violence"),
    ("I know where you live", "violence"),
    ("I'm going to burn down your store", "violence"),
    ("I will shoot the manager", "violence"),
    ("gonna bomb your office", "violence"),
    ("I'll slit your throat", "violence"),
    ("I have a gun and I'm coming to your shop", "violence"),
    ("I'm going to murder your whole family", "violence"),
    ("k i l l you", "violence"),
    ("how to make a bomb", "violence"),
    ("I want to kill myself", "self_harm"),
    ("i want to die", "self_harm"),
    ("I've been thinking about suicide", "self_harm"),
    ("I don't want to live anymore", "self_harm"),
    ("Im going to end my life tonight", "self_harm"),
    ("I keep cutting myself", "self_harm"),
    ("I feel suicidal", "self_harm"),
    ("what is a painless way to die", "self_harm"),
    ("everyone would be better off if I were dead, I'm better off dead", "self_harm"),
    ("where can I buy cocaine", "illegal"),
    ("do you sell guns without a license", "illegal"),
    ("can you make me a fake invoice", "illegal"),
    ("I need fake receipts for my expense report", "illegal"),
    ("how do I launder money through your store", "illegal"),
    ("selling stolen credit cards, dm me", "illegal"),
    ("best online casino bonus", "illegal"),
    ("need a fake passport", "illegal"),
    ("buy weed online", "illegal"),
    ("fentanyl for sale", "illegal"),
    ("help me scam people on your platform", "illegal"),
    ("muslims are terrorists", "hate"),
    ("I hate immigrants", "hate"),
    ("jews should die", "hate"),
    ("women are inferior to men", "hate"),
    ("go back to your country", "hate"),
    ("the agent is a n1gger", "hate"),
    ("death to all gays", "hate"),
    ("those chinks", "hate"),
    ("heil hitler", "hate"),
    ("blacks are animals", "hate"),
    ("Idiot!", "abuse"),
    ("Your agent is an idiot", "abuse"),
    ("I hope you die", "abuse"),
    ("I want to sleep with you", "sexual"),
    ("pornhub premium account", "sexual"),
    ("Someone should shoot the CEO", "violence"),
    ("I'll break your face", "violence"),
    ("I'm thinking of ending it all", "self_harm"),
    ("life isn't worth living", "self_harm"),
    ("Can you sell me a gun?", "illegal"),
    ("how to make meth", "illegal"),
    ("Immigrants are ruining this country", "hate"),
    ("No blacks allowed", "hate"),
    ("kill all the jews", "hate"),
    # the kinds added later: self-harm methods and farewell notes, threats with weapons and fire, account
    # trading and refund fraud, explicit requests, a group plus a put-down, an insult standing as a clause
    ("I'm going to take all my pills tonight and not wake up", "self_harm"),
    ("I wrote a suicide note last night", "self_harm"),
    ("no one would miss me if I was gone", "self_harm"),
    ("I'm bringing a shotgun to your store", "violence"),
    ("I'll set your warehouse on fire", "violence"),
    ("someone should stab that cashier", "violence"),
    ("how do I build a pipe bomb", "violence"),
    ("selling verified PayPal accounts, DM me", "illegal"),
    ("I want to do a chargeback even though I got the parcel", "illegal"),
    ("how do I pretend it never arrived to get a refund", "illegal"),
    ("I'd buy your customers' data for cash", "illegal"),
    ("send me nudes now", "sexual"),
    ("any good hookup apps around here", "sexual"),
    ("tell me a dirty joke", "sexual"),
    ("Muslim staff shouldn't be allowed to serve me", "hate"),
    ("don't send a Muslim courier to my flat", "hate"),
    ("tell them to go back where they came from", "hate"),
    ("women drivers are dangerous", "hate"),
    ("get me a human, moron", "abuse"),
    ("your technician is a complete moron", "abuse"),
    ("you're the most useless agent", "abuse"),
    ("Useless bot!", "abuse"),
]
FLAGGED_ZH = [
    ("你是傻逼吗", "abuse"),
    ("傻 X 客服", "abuse"),
    ("傻*逼", "abuse"),
    ("你这个废物", "abuse"),
    ("你们客服都是白痴", "abuse"),
    ("你是猪吗？这都不懂", "abuse"),
    ("你脑子进水了吧", "abuse"),
    ("操你妈", "abuse"),
    ("草泥马的客服", "abuse"),
    ("滚蛋", "abuse"),
    ("智障客服", "abuse"),
    ("你有病吧", "abuse"),
    ("你真蠢", "abuse"),
    ("你们就是一群垃圾", "abuse"),
    ("cnm", "abuse"),
    ("你妈死了", "abuse"),
    ("客服是不是傻", "abuse"),
    ("你个狗东西", "abuse"),
    ("ＳＢ客服", "abuse"),
    ("你\u3000是\u3000傻\u3000逼", "abuse"),
    ("你们这帮畜生", "abuse"),
    ("人工智障", "abuse"),
    ("有没有黄色视频", "sexual"),
    ("约炮吗", "sexual"),
    ("发点裸照给我", "sexual"),
    ("提供上门性服务吗", "sexual"),
    ("想看色情片", "sexual"),
    ("你们有没有一夜情服务", "sexual"),
    ("可以裸聊吗", "sexual"),
    ("我要杀了你", "violence"),
    ("信不信我弄死你", "violence"),
    ("我知道你住哪", "violence"),
    ("我要炸了你们公司", "violence"),
    ("再不退款我就砍死快递员", "violence"),
    ("我拿刀砍人", "violence"),
    ("我一把火烧了你们店", "violence"),
    ("我要去报复社会", "violence"),
    ("打死你", "violence"),
    ("我不想活了", "self_harm"),
    ("我想自杀", "self_harm"),
    ("活不下去了，想割腕", "self_harm"),
    ("我想死", "self_harm"),
    ("真想从楼上跳下去", "self_harm"),
    ("我准备吃安眠药", "self_harm"),
    ("活着没意思，一了百了算了", "self_harm"),
    ("能代开发票吗", "illegal"),
    ("出售假发票", "illegal"),
    ("哪里可以买到冰毒", "illegal"),
    ("办证 13800000000", "illegal"),
    ("卖枪支弹药", "illegal"),
    ("网赌平台推荐", "illegal"),
    ("帮我洗钱", "illegal"),
    ("收购银行卡，高价", "illegal"),
    ("信用卡套现找我", "illegal"),
    ("有大麻吗", "illegal"),
    ("虚开增值税发票", "illegal"),
    ("代 开 发 票", "illegal"),
    ("黑鬼都是小偷", "hate"),
    ("河南人都是骗子", "hate"),
    ("同性恋都该死", "hate"),
    ("女人都是贱货", "hate"),
    ("小日本", "hate"),
    ("支那人", "hate"),
    ("杀光外地人", "hate"),
    ("白痴！", "abuse"),
    ("你听不懂人话吗", "abuse"),
    ("狗客服", "abuse"),
    ("你瞎啊", "abuse"),
    ("能给我看看你的胸吗", "sexual"),
    ("信不信我砍你", "violence"),
    ("我有刀，你等着", "violence"),
    ("我想结束这一切", "self_harm"),
    ("发票可以代开吗", "illegal"),
    ("卖肾", "illegal"),
    ("黑人都很脏", "hate"),
    ("穆斯林滚出去", "hate"),
    ("东北人素质低", "hate"),
    ("桌上留了遗书", "self_harm"),
    ("我想把自己饿死", "self_harm"),
    ("最近总忍不住划手腕", "self_harm"),
    ("我拿着刀去你们店找你", "violence"),
    ("把你们仓库炸了", "violence"),
    ("找人上门收拾你", "violence"),
    ("出售实名微信号", "illegal"),
    ("高价收QQ号", "illegal"),
    ("能帮我把黑钱洗白吗", "illegal"),
    ("发点黄段子", "sexual"),
    ("残疾人就别出来添乱", "hate"),
    ("我不要黑人送的外卖", "hate"),
    ("外地人都滚回老家", "hate"),
    ("蠢货，听懂了吗", "abuse"),
    ("快递员是个瞎子吧", "abuse"),
]
# Several categories at once: prostitution is sexual and illegal, sexual talk aimed at the agent is abuse too.
FLAGGED_SEVERAL = [
    ("looking for an escort service tonight", ("illegal", "sexual")),
    ("call girl to my hotel tonight", ("illegal", "sexual")),
    ("what are you wearing right now", ("abuse", "sexual")),
    ("you idiot, I'll break your legs", ("abuse", "violence")),
    ("你的三围多少", ("abuse", "sexual")),
    ("安排个妹子到酒店", ("illegal", "sexual")),
]
CLEAN_EN = [
    "This is crap service, I want a refund",
    "scam?",
    "is this a scam?",
    "Your app is garbage, it keeps crashing",
    "kill the app and restart it",
    "killer deal on these earbuds!",
    "shoot me an email when it ships",
    "I'll shoot you an email with the label",
    "Where is the self-checkout?",
    "I live in Scunthorpe",
    "Do you have Assassin's Creed for PS5?",
    "classic edition please",
    "what skills does the assistant have",
    "I'm such an idiot, I ordered the wrong size",
    "I feel stupid for asking, but how do returns work?",
    "this stupid app logged me out again",
    "the weed killer arrived damaged",
    "Can I return the bath bomb set?",
    "this wait is killing me",
    "I'm dying to get my order",
    "That dress is to die for",
    "my card was stolen, please block it",
    "I want to report a stolen card",
    "Is this product counterfeit?",
    "the blender is a beast, it can crush ice",
    "Do you sell kitchen knife sets?",
    "Do you sell glue guns?",
    "I need medicine for my cold, do you sell drugs like ibuprofen?",
    "Can I get a nude lipstick shade?",
    "sexy red dress size M",
    "unisex hoodie",
    "Sussex address",
    "hit me up when it's back in stock",
    "I'll get back to you tomorrow",
    "let me find you a replacement",
    "we'll beat any price",
    "the price shot up overnight",
    "prices shoot up at Christmas",
    "the battery exploded, is that a safety recall?",
    "How do I hack into my own account, I forgot the password",
    "I hate this new update",
    "I hate waiting on hold",
    "women's shoes size 38",
    "Chinese manual please",
    "Do you ship to Niger?",
    "my order 100001 and tracking SF1234567890",
    "Order 7175 was wrong",
    "Is the cocktail shaker in stock?",
    "the Dickens collection box set",
    "Are you a bot or a human?",
    "Are you open on Sunday?",
    "you are amazing, thanks!",
    "you guys are the best",
    "Thank you, that helped",
    "I'm going to execute the order now",
    "I want to shoot a video of the unboxing",
    "I could kill for a coffee right now",
    "that's a killer feature",
    "Please don't ban my account",
    "the shipping fee is a rip-off",
    "what a joke of a delivery service",
    "your support is useless",
    "this is a pain in the ass",
    "damn, it's late again",
    "the Maine Coon cat food is out of stock",
    "Spic and Span cleaner",
    "my pussy willow plant arrived dead",
    "cocker spaniel leash",
    "sell me the dragon costume",
    "how do I die the fabric",
    "Can I buy a gun-metal grey case?",
    "This is bullshit, where is my refund?",
    "I'm dead tired",
    "I'd die for that bag",
    "these prices are criminal",
    "You must be joking",
    "kill them with kindness",
    "Do you have To Kill a Mockingbird?",
    "murder mystery party game",
    "I'm so pissed off",
    "Your stupid app crashed again",
    "therapist appointment reminder",
    "grape juice",
    "fire retardant spray",
    "We must follow anti-money-laundering law",
    "you're killing me with these delays",
    "I'm an idiot",
    "I'll file a chargeback if the parcel never arrives",
    "is the knife set dishwasher safe",
    "I'm such a moron, wrong address again",
    "I'll bring my receipt to your store",
    "I want to cut my losses and return it",
    "the knife sharpener arrived broken",
    "I don't want a black case, I want white",
    "my grandma is old and can't use the app",
    "this update kills the battery",
    "the happy ending of the film made me cry",
    "can I hook up the speaker to my TV",
    "do you sell ammo boxes for tools",
    "our family is moving, please send my parcel to the new address",
]
CLEAN_ZH = [
    "垃圾产品，我要退货",
    "太坑了吧",
    "你们的服务太差了",
    "这个app真垃圾",
    "是不是骗局？",
    "毒舌评论家推荐的",
    "杀毒软件怎么安装",
    "秒杀活动什么时候开始",
    "能砍价吗",
    "刀具套装有货吗",
    "药品可以退吗",
    "跳楼价清仓",
    "想死你了，终于到货了",
    "笑死我了，包装好可爱",
    "累死了，快递员还不来",
    "气死我了，又延迟发货",
    "手机死机了怎么办",
    "垃圾袋多少钱",
    "狗粮有优惠吗",
    "猪肉脯是哪里产的",
    "傻瓜相机还有吗",
    "你好，猪肉多少钱",
    "我真是个白痴，地址填错了",
    "我是不是傻，买错型号了",
    "开发票需要提供什么信息",
    "增值税专用发票怎么开",
    "补办身份证期间能下单吗",
    "请提供身份证号码",
    "我的银行卡被盗刷了",
    "我被盗号了怎么办",
    "是不是遇到诈骗了？",
    "这是诈骗吗",
    "大麻烦你帮我查一下",
    "情趣内衣可以退吗",
    "成人用品发货包装保密吗",
    "性价比高的耳机推荐",
    "手机跑分多少",
    "这个耳机性能怎么样",
    "个性服务有哪些",
    "出口交易需要什么手续",
    "支援交付时间",
    "电池炸了你们要负责",
    "屏幕废了你们怎么赔",
    "我被宰了你们还不管",
    "打死也不买了",
    "玩具枪适合几岁孩子",
    "热熔胶枪有货吗",
    "筋膜枪怎么用",
    "扫码枪连不上",
    "狼人杀卡牌有吗",
    "剧本杀道具",
    "防偷拍检测器",
    "道德绑架",
    "暴打柠檬茶好喝",
    "今日你们发货吗",
    "迷你音箱多少钱",
    "4片装的面膜",
    "买枪色的手机壳",
    "黑人牙膏还有吗",
    "女人都喜欢这个颜色吗",
    "我是河南人，能发货吗",
    "外国人可以注册吗",
    "我要跳楼价的那款",
    "你们有病毒防护软件吗",
    "你好傻瓜相机还有吗",
    "快餐服务",
    "网吧包夜",
    "看黄金价格",
    "颜色绿绿的很好看",
    "干你们这行挺辛苦",
    "你们太让人失望了",
    "能不能快点，等死了",
    "你们这是欺诈",
    "打死我也不会再买了",
    "我要炸毛了",
    "老鼠药有吗",
    "你的胸针很好看",
    "找小姐姐帮忙",
    "根据反洗钱法规我们需要核实身份",
    "彩色图片打印",
    "大麻哈鱼罐头",
    "不要在一棵树上吊死",
    "噼噼啪啪的声音",
    "这个充电宝就是个定时炸弹",
    "滚动条坏了",
    "滚筒洗衣机",
    "你真棒",
    "客服是机器人吗",
    "手机跑分多少",
    "我宁愿等一周也不要换货",
    "我快饿死了，外卖还没到",
    "我真是个蠢货，填错地址了",
    "废物回收箱有卖吗",
    "老人机有大字版吗",
    "你们收银行卡付款吗",
    "不小心划伤了手",
    "这瓶药一次吃几粒",
    "遗嘱公证怎么办理",
    "我要给同事写告别信",
    "音量开大一点",
    "代收货款怎么收费",
    "衣服能洗干净吗",
    "我点了你们的外卖",
]


@pytest.fixture(scope="module")
def lexicon() -> LexiconModerator:
    return LexiconModerator()


@pytest.mark.parametrize(("text", "category"), FLAGGED_EN + FLAGGED_ZH)
def test_flagged(lexicon: LexiconModerator, text: str, category: str) -> None:
    verdict = lexicon.check(text)
    assert verdict.flagged and verdict.categories == (category,), (text, verdict)
    assert verdict.source == "lexicon" and verdict.error is None
    assert verdict.matches and all(len(m) <= 40 for m in verdict.matches)


@pytest.mark.parametrize(("text", "categories"), FLAGGED_SEVERAL)
def test_flagged_in_several_categories(lexicon: LexiconModerator, text: str, categories: tuple[str, ...]) -> None:
    assert lexicon.check(text).categories == categories, text


@pytest.mark.parametrize("text", CLEAN_EN + CLEAN_ZH)
def test_clean_look_alikes(lexicon: LexiconModerator, text: str) -> None:
    verdict = lexicon.check(text)
    assert verdict == ModerationVerdict(flagged=False, categories=(), source="none"), (text, verdict)


def test_examples_cover_every_category_in_both_languages() -> None:
    for flagged in (FLAGGED_EN, FLAGGED_ZH):
        assert {category for _, category in flagged} == set(CATEGORIES)
        assert len(flagged) >= 60
    assert len(CLEAN_EN) >= 60 and len(CLEAN_ZH) >= 60


def test_lexicon_files_ship_with_the_package() -> None:
    for language in LANGUAGES:
        data = yaml.safe_load(files("kefu.guard.lexicons").joinpath(f"{language}.yaml").read_text("utf-8"))
        assert set(data) == {*CATEGORIES, "groups", "allow"}
        for category in CATEGORIES:
            assert len(data[category]) >= 25, (language, category)


@pytest.mark.parametrize(
    "text",
    ["ｆｕｃｋ　ｙｏｕ", "fu\u200bck you", "FUCK YOU", "fuuuuuck you", "f-u-c-k you", "f.u.c.k you", "fvck you"],
)
def test_obfuscated_english(lexicon: LexiconModerator, text: str) -> None:
    assert lexicon.check(text).categories == ("abuse",), text


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("k1ll you", "violence"),
        ("p0rn", "sexual"),
        ("c0ca1ne", "illegal"),
        ("sh1thead", "abuse"),
        ("b!tch", "abuse"),
        ("you аre аn idiot", "abuse"),  # Cyrillic а
        ("傻 逼", "abuse"),
        ("傻.逼", "abuse"),
        ("傻~~逼", "abuse"),
        ("傻\u200b逼", "abuse"),
        ("代-开-发-票", "illegal"),
        ("约 炮", "sexual"),
        ("自 杀", "self_harm"),
    ],
)
def test_obfuscated(lexicon: LexiconModerator, text: str, category: str) -> None:
    assert lexicon.check(text).categories == (category,), text


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        ("蠢货，赶紧给我转人工", True),  # an insult standing as a clause of its own
        ("喂，废物一个", True),
        ("ok, get me a human, idiot!", True),
        ("我真是个蠢货，地址又填错了", False),  # the same word inside a longer clause: about oneself
        ("I'm such an idiot, wrong size again", False),
        ("the idiot-proof setup guide, please", False),
        ("Useless bot.", True),  # whole-message entries of several words
        ("useless bot for the garden, does it mow?", False),
    ],
)
def test_insults_that_stand_alone(lexicon: LexiconModerator, text: str, flagged: bool) -> None:
    assert lexicon.check(text).flagged is flagged, text


def test_a_template_listed_under_two_categories_gives_both() -> None:
    builder = _LexiconBuilder()
    data = {
        "groups": {"thing": ["widget", "gadget"]},
        "abuse": ["smash {thing} now"],
        "violence": ["smash {thing} now"],
    }
    builder.add_file("en", data)
    compiled = builder.compile()
    found = [m for p in compiled.patterns for m in p.finditer(normalise("please smash gadget now"))]
    assert len(found) == 1 and compiled.entries[str(found[0].lastgroup)].categories == ("abuse", "violence")


@pytest.mark.parametrize("text", ["order 7175", "5B pencil", "4片装", "****", "code 1d10", "sku 8008-5"])
def test_digits_and_masks_alone_are_not_words(lexicon: LexiconModerator, text: str) -> None:
    assert not lexicon.check(text).flagged, text


def test_several_categories_sorted_and_matches_are_terms_not_the_text(lexicon: LexiconModerator) -> None:
    text = "Hello, my order 100001 is late. " * 10 + "I will kill you, you idiot. 我想自杀。" + " thanks" * 20
    verdict = lexicon.check(text)
    assert verdict.categories == ("abuse", "self_harm", "violence")
    assert verdict.matches == ("kill you", "you idiot", "我想自杀")  # what matched, never the message
    assert lexicon.check("He raped her").categories == ("sexual", "violence")


def test_operator_terms(lexicon: LexiconModerator) -> None:
    assert not lexicon.check("你这个大冤种").flagged and not lexicon.check("buy ACME-X grey pills").flagged
    custom = LexiconModerator({"abuse": ["冤种"], "illegal": ["ACME-X grey pills"]})
    assert custom.check("你这个大冤种").categories == ("abuse",)
    assert custom.check("where can I buy acme x grey pills").categories == ("illegal",)
    assert custom.check("你们这个产品不错").flagged is False
    with pytest.raises(ValueError, match="unknown moderation category"):
        LexiconModerator({"spam": ["buy now"]})


def test_lexicon_is_fast(lexicon: LexiconModerator) -> None:
    """p99 ≤ 1 ms for 500 characters, measured in this thread's CPU time: the suite shares the machine, and
    wall-clock time would measure the neighbours."""
    zh = (
        "您好，我想查询一下订单100001的物流，顺丰单号SF1234567890，三天没更新了，你们的服务太差了，垃圾产品，能退款吗？"
    )
    en = "Hi, I ordered the Wireless Earbuds Pro (order 100001); tracking SF1234567890 is stuck. Crap service! "
    texts = [((zh + en) * 8)[i * 7 : i * 7 + 500] for i in range(60)] + [(en * 5)[:500], (zh * 9)[:500]]
    assert p99_thread_seconds(lexicon.check, texts, rounds=5) <= 0.001


def test_realistic_messages_are_checked_well_under_a_millisecond(lexicon: LexiconModerator) -> None:
    """Every example of this file, flagged or clean: what customers type, terms and model together."""
    texts = [t for t, _ in FLAGGED_EN + FLAGGED_ZH + FLAGGED_SEVERAL] + CLEAN_EN + CLEAN_ZH
    assert p99_thread_seconds(lexicon.check, texts, rounds=3) <= 0.0005


@pytest.mark.parametrize(
    "text", ["1" * 5000, "4@*1!|0$5" * 550, "*" * 5000, "you are so " * 450, "傻" * 5000, "你们这个这个" * 800]
)
def test_long_adversarial_text_takes_linear_time(lexicon: LexiconModerator, text: str) -> None:
    started = time.thread_time()  # "1" * 5000 once took minutes: every "1" can stand for i or l
    lexicon.check(text)
    assert time.thread_time() - started < 0.05


# --- the external provider ------------------------------------------------------------------------------------


def openai_answer(body: dict[str, Any]) -> tuple[int, bytes]:
    text = body["input"]
    flags = {"harassment": "idiot" in text, "violence": "bomb" in text, "illicit": "bomb" in text}
    flags |= {"self-harm": False, "sexual/minors": False, "brand-new-label": "new" in text}
    return 200, json.dumps(
        {"id": "modr-1", "results": [{"flagged": any(flags.values()), "categories": flags}]}
    ).encode()


def generic_answer(body: dict[str, Any]) -> tuple[int, bytes]:
    text = body["text"]
    labels = [label for word, label in (("nude", "porn"), ("bomb", "terrorism"), ("new", "weird")) if word in text]
    return 200, json.dumps({"flagged": bool(labels), "categories": labels}).encode()


def slow_answer(body: dict[str, Any]) -> tuple[int, bytes]:
    time.sleep(3)
    return 200, b'{"results": []}'


ANSWERS: dict[str, Callable[[dict[str, Any]], tuple[int, bytes]]] = {
    "/v1/moderations": openai_answer,
    "/generic": generic_answer,
    "/slow": slow_answer,
    "/broken/error": lambda body: (500, b'{"error": "overloaded"}'),
    "/broken/garbage": lambda body: (200, b"<html>not json</html>"),
    "/broken/shape": lambda body: (200, b'{"results": "not a list"}'),
}


class ProviderServer(ThreadingHTTPServer):
    """A moderation provider on 127.0.0.1 that answers per path, well or badly, and keeps what it was sent."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ProviderHandler)
        self.seen: list[dict[str, Any]] = []  # newest last

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """The slow path answers a client that gave up long ago; that broken pipe is expected, not news."""


class ProviderHandler(BaseHTTPRequestHandler):
    server: ProviderServer

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.seen.append({"path": self.path, "body": body, "authorization": self.headers["Authorization"]})
        status, answer = ANSWERS[self.path](body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:  # the test output stays readable
        return


@pytest.fixture(scope="module")
def provider() -> Iterator[ProviderServer]:
    server = ProviderServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


async def test_openai_style(provider: ProviderServer) -> None:
    external = HttpModerator(f"{provider.url}/v1/moderations", api_key="sk-test", model="omni-moderation-latest")
    try:
        assert await external.check("where is my parcel") == ModerationVerdict(False, (), "none")
        verdict = await external.check("you idiot, I will bomb the depot")
        assert verdict == ModerationVerdict(True, ("abuse", "illegal", "violence"), "external")
    finally:
        await external.close()
    assert provider.seen[-1] == {
        "path": "/v1/moderations",
        "body": {"input": "you idiot, I will bomb the depot", "model": "omni-moderation-latest"},
        "authorization": "Bearer sk-test",
    }


async def test_openai_style_without_key_or_model_and_a_caller_client(provider: ProviderServer) -> None:
    async with httpx.AsyncClient() as client:
        external = HttpModerator(f"{provider.url}/v1/moderations", client=client)
        verdict = await external.check("idiot")
        await external.close()  # the caller's client stays open
        assert not client.is_closed
    assert verdict.categories == ("abuse",)
    assert provider.seen[-1] == {"path": "/v1/moderations", "body": {"input": "idiot"}, "authorization": None}


async def test_generic_style_maps_labels(provider: ProviderServer, caplog: pytest.LogCaptureFixture) -> None:
    external = HttpModerator(
        f"{provider.url}/generic",
        style="generic",
        category_map={"porn": "sexual", "terrorism": "violence", "abuse": "abuse", "contraband": "illegal"},
    )
    caplog.set_level(logging.DEBUG, logger="kefu.guard.moderation")
    try:
        assert (await external.check("nude photos, bomb")).categories == ("sexual", "violence")
        assert provider.seen[-1] == {"path": "/generic", "body": {"text": "nude photos, bomb"}, "authorization": None}
        for _ in range(2):  # an unknown label is left out and logged once
            assert await external.check("something new") == ModerationVerdict(False, (), "none")
        assert (await external.check("new nude")).categories == ("sexual",)
    finally:
        await external.close()
    assert sum("'weird'" in r.getMessage() for r in caplog.records) == 1
    with pytest.raises(ValueError, match="unknown categories"):
        HttpModerator(f"{provider.url}/generic", style="generic", category_map={"porn": "adult"})


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/broken/error", "HTTP 500"),
        ("/broken/garbage", "bad JSON"),
        ("/broken/shape", "unexpected answer"),
        ("/slow", "timeout"),
    ],
)
async def test_failures_give_the_lexicon_verdict_with_an_error(
    provider: ProviderServer, lexicon: LexiconModerator, path: str, error: str
) -> None:
    moderator = Moderator(lexicon, HttpModerator(f"{provider.url}{path}", timeout_s=0.3))
    started = time.monotonic()
    try:
        flagged = await moderator.check("你这个废物")
        clean = await moderator.check("where is my parcel")
    finally:
        await moderator.close()
    assert time.monotonic() - started < 2.5  # the slow server never holds a turn past the timeout
    assert flagged.categories == ("abuse",) and flagged.source == "lexicon" and error in (flagged.error or "")
    assert not clean.flagged and clean.source == "none" and error in (clean.error or "")


async def test_nothing_listening(lexicon: LexiconModerator) -> None:
    moderator = Moderator(lexicon, HttpModerator(f"http://127.0.0.1:{free_port()}/v1/moderations"))
    try:
        verdict = await moderator.check("I will kill you")
    finally:
        await moderator.close()
    assert verdict.categories == ("violence",) and verdict.source == "lexicon"
    assert verdict.error and "cannot connect" in verdict.error


async def test_moderator_combines_lexicon_and_provider(provider: ProviderServer, lexicon: LexiconModerator) -> None:
    assert (await Moderator(lexicon).check("你这个废物")).source == "lexicon"
    moderator = Moderator(lexicon, HttpModerator(f"{provider.url}/v1/moderations"))
    try:
        both = await moderator.check("you idiot")
        external_only = await moderator.check("this deal is the bomb")
        lexicon_only = await moderator.check("我要杀了你")
        neither = await moderator.check("退货地址是哪里")
    finally:
        await moderator.close()
    assert both == ModerationVerdict(True, ("abuse",), "lexicon+external", ("you idiot",))
    assert external_only == ModerationVerdict(True, ("illegal", "violence"), "external")
    assert lexicon_only.categories == ("violence",) and lexicon_only.source == "lexicon"
    assert neither == ModerationVerdict(False, (), "none")
