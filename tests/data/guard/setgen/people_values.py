"""Random but realistic postal addresses (zh and en) and personal names."""

from random import Random

from .common import digits, weighted, words

# province, city, district, sub-district ("-" where a municipality has no province)
ZH_PLACES = tuple(
    tuple("" if part == "-" else part for part in place.split("/"))
    for place in words(
        "广东省/深圳市/南山区/粤海街道 广东省/广州市/天河区/石牌街道 -/北京市/朝阳区/望京街道 "
        "-/北京市/海淀区/中关村街道 -/上海市/浦东新区/陆家嘴街道 -/上海市/徐汇区/田林街道 "
        "浙江省/杭州市/西湖区/文新街道 江苏省/南京市/鼓楼区/湖南路街道 四川省/成都市/武侯区/玉林街道 "
        "湖北省/武汉市/洪山区/珞南街道 山东省/青岛市/市南区/八大关街道 福建省/厦门市/思明区/鹭江街道 "
        "陕西省/西安市/雁塔区/小寨路街道 -/天津市/南开区/学府街道 -/重庆市/渝北区/龙溪街道 "
        "湖南省/长沙市/岳麓区/橘子洲街道 河南省/郑州市/金水区/文化路街道 辽宁省/大连市/沙河口区/春柳街道 "
        "江苏省/苏州市/工业园区/金鸡湖街道 广东省/东莞市/松山湖/大朗镇 云南省/昆明市/五华区/华山街道"
    )
)
ZH_ROADS = words(
    "科技园南路 中山路 人民路 建设大道 解放西路 文三路 长江路 学府路 滨海大道 南京东路 世纪大道 天府大道 珞喻路 "
    "望京街 五四路 金水路 雁塔北路 湖滨路 花园街 新华路 高新南一道 环城北路"
)
ZH_ESTATES = words("阳光花园 碧桂园 万科城 华润城 金地名苑 翠湖小区 世纪华庭 龙湖天街 保利香槟国际 绿地新都会")


def zh_address(rng: Random) -> str:
    province, city, district, street = rng.choice(ZH_PLACES)
    road = f"{rng.choice(ZH_ROADS)}{rng.randrange(1, 300)}号"
    estate, floor, room = rng.choice(ZH_ESTATES), rng.randrange(1, 33), rng.randrange(1, 10)
    building = weighted(
        rng,
        [
            (f"{rng.randrange(1, 30)}栋{floor}{room:02d}", 25),
            (f"{estate}{rng.randrange(1, 20)}幢{floor}{room:02d}室", 25),
            (f"{rng.randrange(1, 12)}号楼{rng.randrange(1, 6)}单元{floor}{room:02d}", 25),
            (f"{estate}{rng.randrange(1, 15)}-{rng.randrange(1, 4)}-{floor}02", 10),
            (f"{rng.choice(('A', 'B', 'C'))}座{rng.randrange(2, 40)}楼", 15),
        ],
    )
    if rng.random() < 0.12:  # some people put spaces between the parts
        return " ".join(part for part in (province, city, district, road, building) if part)
    head = weighted(rng, [(province + city + district, 55), (city + district, 35), (district, 10)])
    street_part = street if rng.random() < 0.25 else ""
    return f"{head}{street_part}{road}{building}"


US_PLACES = tuple(
    tuple(place.replace("_", " ").split("/"))
    for place in words(
        "Mountain_View/CA/940 San_Francisco/CA/941 Seattle/WA/981 Austin/TX/787 Brooklyn/NY/112 Chicago/IL/606 "
        "Boston/MA/021 Denver/CO/802 Portland/OR/972 Atlanta/GA/303 Miami/FL/331 Phoenix/AZ/850"
    )
)
STREETS = words("Maple Oak Pine Cedar Elm Market Main Washington Lincoln Sunset Mission Park")
SUFFIXES = words("Street St Avenue Ave Road Rd Boulevard Blvd Drive Dr Lane Way")
UK_PLACES = tuple(
    tuple(place.split("/"))
    for place in words("London/NW1 London/SE1 London/E14 Manchester/M1 Edinburgh/EH3 Bristol/BS1 Leeds/LS1 Oxford/OX1")
)
POSTCODE_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


def en_address(rng: Random) -> str:
    city, state, zip_head = rng.choice(US_PLACES)
    unit = weighted(
        rng,
        [
            ("", 50),
            (f", Apt {rng.randrange(1, 30)}{rng.choice('ABCD')}", 20),
            (f" #{digits(rng, 3)}", 15),
            (f", Suite {rng.randrange(100, 900)}", 15),
        ],
    )
    zip_code = zip_head + digits(rng, 2) + (f"-{digits(rng, 4)}" if rng.random() < 0.1 else "")
    us = f"{rng.randrange(1, 9999)} {rng.choice(STREETS)} {rng.choice(SUFFIXES)}{unit}, {city}, {state} {zip_code}"
    town, area = rng.choice(UK_PLACES)
    postcode = f"{area} {rng.randrange(1, 10)}{rng.choice(POSTCODE_LETTERS)}{rng.choice(POSTCODE_LETTERS)}"
    flat = rng.choice(("", f"Flat {rng.randrange(1, 20)}, "))
    uk_street = f"{rng.randrange(1, 300)} {rng.choice(STREETS)} {rng.choice(('Road', 'Street', 'Lane'))}"
    uk = f"{flat}{uk_street}, {town} {postcode}"
    singapore = (
        f"Blk {rng.randrange(100, 700)} Ang Mo Kio Ave {rng.randrange(1, 10)}, "
        f"#{rng.randrange(2, 20):02d}-{digits(rng, 3)}, Singapore 56{digits(rng, 4)}"
    )
    hong_kong = (
        f"Flat {rng.choice('ABCD')}, {rng.randrange(2, 40)}/F, {rng.randrange(1, 200)} Nathan Road, Tsim Sha Tsui"
    )
    shenzhen = (
        f"Room {rng.randrange(1, 30)}0{rng.randrange(1, 9)}, Building {rng.randrange(1, 12)}, "
        f"{rng.randrange(1, 200)} Keyuan South Road, Nanshan District, Shenzhen, Guangdong"
    )
    address = weighted(
        rng,
        [
            (us, 45),
            (uk, 20),
            (f"{rng.randrange(1, 900)} Bay St, Toronto, ON M5H {rng.randrange(1, 9)}S{rng.randrange(1, 9)}", 6),
            (singapore, 6),
            (f"{hong_kong}, Tsim Sha Tsui, Kowloon", 6),
            (f"{rng.randrange(1, 200)} George St, Sydney NSW 2000", 5),
            (shenzhen, 8),
            (f"{rng.randrange(1, 500)} Zhongshan Road, Xuhui District, Shanghai {200000 + rng.randrange(1, 300)}", 4),
        ],
    )
    return address.lower().replace(",", "") if rng.random() < 0.05 else address


ZH_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余于杜叶程魏苏吕丁"
    "任卢姚沈钟姜崔谭陆范汪廖石金韦贾夏付方邹熊白孟秦邱侯江尹薛闫段雷龙黎史陶贺毛郝顾龚邵万覃武钱严莫孔"
    "向常汤康易乔赖文"
)
ZH_DOUBLE_SURNAMES = words("欧阳 司马 上官 诸葛 东方")
ZH_GIVEN = words(
    "伟 芳 娜 秀英 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀兰 霞 小明 建华 子涵 浩然 雨涵 欣怡 梓轩 一诺 "
    "思远 佳琪 晓东 文博 俊杰 嘉怡 诗涵 宇轩 志强 海燕 春梅 国庆 晓红 立新 婷婷 晨 昊 鑫 琳"
)
EN_FIRST = words(
    "Emily James Olivia Liam Sofia Noah Priya Carlos Aisha Mei Daniel Grace Hiroshi Chloe Fatima Lucas Wei "
    "Mohammed Isabella Ethan Zoe Arjun Hannah Mateo Yuki"
)
EN_LAST = (
    *words("Carter O'Neil Smith Nguyen Patel García Müller Kowalski Johnson Brown Williams Chen Kim Rossi Dubois"),
    *words("Anderson MacLeod Okafor Hernández Lee Singh Zhang"),
    "Van der Berg",
)


def zh_surname(rng: Random) -> str:
    return rng.choice(ZH_DOUBLE_SURNAMES) if rng.random() < 0.04 else rng.choice(ZH_SURNAMES)


def name(rng: Random, lang: str, variant: str | None) -> str:
    if lang == "zh":
        return zh_surname(rng) if variant == "surname" else zh_surname(rng) + rng.choice(ZH_GIVEN)
    last = rng.choice(EN_LAST)
    if variant == "surname":
        return last
    first = rng.choice(EN_FIRST)
    initial = rng.choice("ABCDJMRST")
    return weighted(rng, [(f"{first} {last}", 85), (f"{first} {initial}. {last}", 8), (f"{first} {last}".lower(), 7)])


def address(rng: Random, lang: str, variant: str | None) -> str:
    return zh_address(rng) if lang == "zh" else en_address(rng)
