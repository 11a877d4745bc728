"""Pools of names, companies, cities and phrases for the demo data, in zh and en.

Everything is drawn by index from these pools with numpy, so a million contacts cost a
few list comprehensions instead of a Python call per person. Pinyin is spelled out here
(not computed) because surnames such as 曾 (Zeng) read differently as ordinary words, and
looking them up would also load a large dictionary at start-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]

# (surname, pinyin), most common first: frequency falls with rank (see surname_weights).
ZH_SURNAMES: list[tuple[str, str]] = [
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"),
    ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("孙", "sun"),
    ("马", "ma"), ("朱", "zhu"), ("胡", "hu"), ("郭", "guo"), ("何", "he"), ("林", "lin"),
    ("高", "gao"), ("罗", "luo"), ("郑", "zheng"), ("梁", "liang"), ("谢", "xie"), ("宋", "song"),
    ("唐", "tang"), ("许", "xu"), ("韩", "han"), ("冯", "feng"), ("邓", "deng"), ("曹", "cao"),
    ("彭", "peng"), ("曾", "zeng"), ("肖", "xiao"), ("田", "tian"), ("董", "dong"), ("潘", "pan"),
    ("袁", "yuan"), ("蔡", "cai"), ("蒋", "jiang"), ("余", "yu"), ("于", "yu"), ("杜", "du"),
    ("叶", "ye"), ("程", "cheng"), ("魏", "wei"), ("苏", "su"), ("吕", "lv"), ("丁", "ding"),
    ("任", "ren"), ("卢", "lu"), ("姚", "yao"), ("沈", "shen"), ("钟", "zhong"), ("姜", "jiang"),
    ("崔", "cui"), ("谭", "tan"), ("陆", "lu"), ("范", "fan"), ("汪", "wang"), ("廖", "liao"),
    ("石", "shi"), ("金", "jin"), ("韦", "wei"), ("贾", "jia"), ("夏", "xia"), ("付", "fu"),
    ("方", "fang"), ("邹", "zou"), ("熊", "xiong"), ("白", "bai"), ("孟", "meng"), ("秦", "qin"),
    ("邱", "qiu"), ("侯", "hou"), ("江", "jiang"), ("尹", "yin"), ("薛", "xue"), ("闫", "yan"),
    ("段", "duan"), ("雷", "lei"), ("龙", "long"), ("黎", "li"), ("史", "shi"), ("陶", "tao"),
    ("贺", "he"), ("毛", "mao"), ("郝", "hao"), ("顾", "gu"), ("龚", "gong"), ("邵", "shao"),
    ("万", "wan"), ("钱", "qian"), ("戴", "dai"), ("严", "yan"), ("欧阳", "ouyang"), ("司马", "sima"),
]

ZH_GIVEN: list[tuple[str, str]] = [
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"),
    ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"),
    ("杰", "jie"), ("娟", "juan"), ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("秀", "xiu"),
    ("霞", "xia"), ("平", "ping"), ("刚", "gang"), ("英", "ying"), ("华", "hua"), ("玉", "yu"),
    ("萍", "ping"), ("红", "hong"), ("鹏", "peng"), ("辉", "hui"), ("宇", "yu"), ("浩", "hao"),
    ("凯", "kai"), ("博", "bo"), ("文", "wen"), ("斌", "bin"), ("雪", "xue"), ("琳", "lin"),
    ("晶", "jing"), ("颖", "ying"), ("倩", "qian"), ("婷", "ting"), ("欣", "xin"), ("怡", "yi"),
    ("佳", "jia"), ("晨", "chen"), ("阳", "yang"), ("志", "zhi"), ("建", "jian"), ("国", "guo"),
    ("海", "hai"), ("峰", "feng"), ("林", "lin"), ("鑫", "xin"), ("亮", "liang"), ("帆", "fan"),
    ("睿", "rui"), ("哲", "zhe"), ("轩", "xuan"), ("思", "si"), ("雨", "yu"), ("梓", "zi"),
    ("涵", "han"), ("嘉", "jia"), ("俊", "jun"), ("彤", "tong"), ("悦", "yue"), ("瑶", "yao"),
    ("蕾", "lei"), ("薇", "wei"), ("慧", "hui"), ("琪", "qi"), ("航", "hang"), ("昊", "hao"),
    ("然", "ran"), ("晓", "xiao"), ("天", "tian"), ("泽", "ze"), ("宁", "ning"), ("安", "an"),
    ("欢", "huan"), ("清", "qing"), ("振", "zhen"), ("立", "li"), ("春", "chun"), ("丹", "dan"),
    ("岚", "lan"), ("鸿", "hong"), ("毅", "yi"), ("诚", "cheng"), ("璐", "lu"), ("一", "yi"),
]

EN_FIRST: list[str] = [
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William", "Elizabeth",
    "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
    "Daniel", "Nancy", "Matthew", "Lisa", "Anthony", "Betty", "Mark", "Margaret", "Steven", "Sandra",
    "Paul", "Ashley", "Andrew", "Emily", "Joshua", "Donna", "Kevin", "Michelle", "Brian", "Carol",
    "George", "Amanda", "Timothy", "Melissa", "Ronald", "Deborah", "Jason", "Stephanie", "Ryan", "Rebecca",
    "Jacob", "Laura", "Gary", "Sharon", "Nicholas", "Cynthia", "Eric", "Kathleen", "Jonathan", "Amy",
    "Olivia", "Ethan", "Sophia", "Noah", "Grace", "Liam", "Chloe", "Lucas", "Hannah", "Owen",
]

EN_LAST: list[str] = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
    "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
    "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts",
    "Gomez", "Phillips", "Evans", "Turner", "Diaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes",
    "Stewart", "Morris", "Morales", "Murphy", "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper",
    "Peterson", "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson",
]

# Brand names of Chinese companies are two auspicious characters, e.g. 星辰, 恒达, 华创.
ZH_BRAND_FIRST: list[tuple[str, str]] = [
    ("恒", "heng"), ("华", "hua"), ("鼎", "ding"), ("宏", "hong"), ("瑞", "rui"), ("盛", "sheng"),
    ("嘉", "jia"), ("泰", "tai"), ("博", "bo"), ("信", "xin"), ("鑫", "xin"), ("星", "xing"),
    ("天", "tian"), ("中", "zhong"), ("金", "jin"), ("新", "xin"), ("安", "an"), ("宇", "yu"),
    ("海", "hai"), ("创", "chuang"), ("兴", "xing"), ("启", "qi"), ("汇", "hui"), ("远", "yuan"),
    ("凯", "kai"), ("正", "zheng"), ("永", "yong"), ("明", "ming"), ("德", "de"), ("润", "run"),
    ("易", "yi"), ("云", "yun"), ("智", "zhi"), ("领", "ling"), ("卓", "zhuo"), ("诺", "nuo"),
    ("锦", "jin"), ("佳", "jia"), ("优", "you"), ("腾", "teng"),
]
ZH_BRAND_SECOND: list[tuple[str, str]] = [
    ("达", "da"), ("通", "tong"), ("源", "yuan"), ("辰", "chen"), ("联", "lian"), ("成", "cheng"),
    ("和", "he"), ("丰", "feng"), ("锐", "rui"), ("航", "hang"), ("图", "tu"), ("诚", "cheng"),
    ("美", "mei"), ("顺", "shun"), ("景", "jing"), ("晟", "sheng"), ("科", "ke"), ("视", "shi"),
    ("微", "wei"), ("拓", "tuo"), ("峰", "feng"), ("翔", "xiang"), ("泽", "ze"), ("邦", "bang"),
    ("维", "wei"), ("网", "wang"), ("讯", "xun"), ("捷", "jie"), ("力", "li"), ("元", "yuan"),
    ("宸", "chen"), ("川", "chuan"), ("弘", "hong"), ("光", "guang"), ("耀", "yao"), ("恒", "heng"),
    ("瑞", "rui"), ("信", "xin"), ("启", "qi"), ("润", "run"),
]

EN_BRAND_FIRST: list[str] = [
    "Blue", "North", "Silver", "Iron", "Bright", "Red", "Green", "Summit", "Clear", "Stone",
    "Pine", "Oak", "Maple", "River", "Harbor", "Atlas", "Nova", "Apex", "Vertex", "Falcon",
    "Eagle", "Cedar", "Granite", "Crystal", "Golden", "Swift", "True", "Prime", "Bold", "Quantum",
]
EN_BRAND_SECOND: list[str] = [
    "peak", "wind", "stone", "field", "bridge", "wave", "point", "gate", "ridge", "light",
    "works", "line", "craft", "path", "well", "view", "core", "spark", "leaf", "port",
]


@dataclass(frozen=True)
class City:
    name: str
    slug: str
    area_code: str
    local_digits: int  # length of a landline number after the area code
    weight: float


ZH_CITIES: list[City] = [
    City("上海", "shanghai", "21", 8, 10), City("北京", "beijing", "10", 8, 10),
    City("深圳", "shenzhen", "755", 8, 8), City("广州", "guangzhou", "20", 8, 7),
    City("杭州", "hangzhou", "571", 8, 6), City("南京", "nanjing", "25", 8, 4),
    City("成都", "chengdu", "28", 8, 5), City("武汉", "wuhan", "27", 8, 4),
    City("西安", "xian", "29", 8, 3), City("苏州", "suzhou", "512", 8, 4),
    City("天津", "tianjin", "22", 8, 3), City("重庆", "chongqing", "23", 8, 3),
    City("长沙", "changsha", "731", 8, 2), City("青岛", "qingdao", "532", 8, 2),
    City("厦门", "xiamen", "592", 7, 2), City("合肥", "hefei", "551", 8, 2),
    City("郑州", "zhengzhou", "371", 8, 2), City("济南", "jinan", "531", 8, 2),
    City("宁波", "ningbo", "574", 8, 2), City("东莞", "dongguan", "769", 8, 2),
    City("佛山", "foshan", "757", 8, 2), City("沈阳", "shenyang", "24", 8, 1.5),
    City("大连", "dalian", "411", 8, 1.5), City("福州", "fuzhou", "591", 8, 1.5),
    City("昆明", "kunming", "871", 8, 1.5),
]

EN_CITIES: list[City] = [
    City("New York", "newyork", "212", 7, 10), City("San Francisco", "sanfrancisco", "415", 7, 7),
    City("Boston", "boston", "617", 7, 5), City("Chicago", "chicago", "312", 7, 6),
    City("Seattle", "seattle", "206", 7, 4), City("Austin", "austin", "512", 7, 4),
    City("Denver", "denver", "303", 7, 3), City("Los Angeles", "losangeles", "213", 7, 7),
    City("Atlanta", "atlanta", "404", 7, 4), City("Miami", "miami", "305", 7, 3),
    City("Dallas", "dallas", "214", 7, 4), City("Portland", "portland", "503", 7, 2),
]


@dataclass(frozen=True)
class Industry:
    word: str  # as it appears in the company name
    slug: str  # for the web domain
    label: str  # Company.industry


ZH_INDUSTRIES: list[Industry] = [
    Industry("科技", "keji", "软件与信息技术"), Industry("信息技术", "it", "软件与信息技术"),
    Industry("网络科技", "net", "互联网"), Industry("软件", "soft", "软件与信息技术"),
    Industry("电子", "dianzi", "电子制造"), Industry("智能装备", "zhineng", "装备制造"),
    Industry("机械", "jixie", "装备制造"), Industry("生物科技", "bio", "生物医药"),
    Industry("医疗器械", "yiliao", "医疗健康"), Industry("新能源", "energy", "新能源"),
    Industry("物流", "wuliu", "物流运输"), Industry("供应链管理", "scm", "物流运输"),
    Industry("贸易", "maoyi", "批发零售"), Industry("食品", "shipin", "食品饮料"),
    Industry("建筑工程", "jianzhu", "建筑地产"), Industry("教育科技", "edu", "教育培训"),
    Industry("文化传媒", "media", "文化传媒"), Industry("广告", "ad", "文化传媒"),
    Industry("环保科技", "huanbao", "节能环保"), Industry("汽车零部件", "auto", "汽车"),
    Industry("化工", "huagong", "化工材料"), Industry("新材料", "cailiao", "化工材料"),
    Industry("服饰", "fushi", "纺织服装"), Industry("家居", "jiaju", "家居建材"),
    Industry("企业管理咨询", "consulting", "专业服务"), Industry("金融信息服务", "fin", "金融"),
    Industry("餐饮管理", "canyin", "餐饮酒店"), Industry("医药", "yiyao", "生物医药"),
]

EN_INDUSTRIES: list[Industry] = [
    Industry("Analytics", "analytics", "Software"), Industry("Logistics", "logistics", "Logistics"),
    Industry("Software", "software", "Software"), Industry("Systems", "systems", "IT services"),
    Industry("Manufacturing", "mfg", "Manufacturing"), Industry("Foods", "foods", "Food & beverage"),
    Industry("Health", "health", "Healthcare"), Industry("Energy", "energy", "Energy"),
    Industry("Consulting", "consulting", "Professional services"), Industry("Media", "media", "Media"),
    Industry("Labs", "labs", "Biotech"), Industry("Robotics", "robotics", "Manufacturing"),
    Industry("Materials", "materials", "Chemicals"), Industry("Retail", "retail", "Retail"),
    Industry("Solutions", "solutions", "IT services"), Industry("Networks", "networks", "Telecom"),
    Industry("Biotech", "biotech", "Biotech"), Industry("Motors", "motors", "Automotive"),
    Industry("Apparel", "apparel", "Apparel"), Industry("Finance", "finance", "Financial services"),
]

ZH_LEGAL = ["有限公司", "有限公司", "有限公司", "有限公司", "有限公司", "有限公司", "股份有限公司", "集团有限公司"]
EN_LEGAL = ["Inc.", "Inc.", "LLC", "Ltd", "Corp."]

ZH_TLDS = ["com", "cn", "com.cn"]
EN_TLDS = ["com", "com", "io", "co"]

ZH_TITLES = [
    "总经理", "副总经理", "采购经理", "采购专员", "IT 经理", "信息部主管", "财务总监", "运营总监",
    "市场经理", "销售总监", "技术负责人", "行政主管", "项目经理", "董事长助理", "CTO", "数字化负责人",
]
EN_TITLES = [
    "CEO", "COO", "Head of Procurement", "Procurement Specialist", "IT Manager", "CFO", "VP Operations",
    "Marketing Manager", "Sales Director", "CTO", "Office Manager", "Project Manager", "Head of Digital",
]

ZH_PRODUCTS = [
    "CRM 系统采购", "数据中台建设", "智能客服上线", "ERP 升级", "年度维保续约", "私有化部署", "营销自动化",
    "SaaS 年度订阅", "渠道管理系统", "BI 报表项目", "移动办公平台", "供应链协同", "会员系统改造", "数据迁移服务",
]
EN_PRODUCTS = [
    "CRM rollout", "Data platform", "Support automation", "ERP upgrade", "Annual maintenance renewal",
    "On-prem deployment", "Marketing automation", "SaaS annual plan", "Partner portal", "BI dashboards",
    "Mobile workforce", "Supply chain integration", "Loyalty program revamp", "Data migration",
]

ZH_TEAMS = ["华东销售部", "华南销售部", "华北销售部", "西部销售部"]
EN_TEAMS = ["East Sales", "South Sales", "North Sales", "West Sales"]
#: The region of each team above: two teams per region, so a region report is not a
#: team report under another name.
ZH_REGIONS = ["南方大区", "南方大区", "北方大区", "北方大区"]
EN_REGIONS = ["South & East", "South & East", "North & West", "North & West"]

#: Product line and list price (yuan or dollars) of each product above, in the same order.
ZH_PRODUCT_LINES = [
    ("软件", 120_000), ("数据", 300_000), ("软件", 80_000), ("软件", 200_000), ("服务", 30_000),
    ("服务", 150_000), ("软件", 60_000), ("订阅", 40_000), ("软件", 90_000), ("数据", 70_000),
    ("软件", 50_000), ("数据", 180_000), ("软件", 100_000), ("服务", 45_000),
]
EN_PRODUCT_LINES = [
    ("Software", 120_000), ("Data", 300_000), ("Software", 80_000), ("Software", 200_000), ("Services", 30_000),
    ("Services", 150_000), ("Software", 60_000), ("Subscriptions", 40_000), ("Software", 90_000),
    ("Data", 70_000), ("Software", 50_000), ("Data", 180_000), ("Software", 100_000), ("Services", 45_000),
]

# Chinese mobile prefixes (all valid for phonenumbers' CN metadata).
ZH_MOBILE_PREFIXES = [
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153", "155",
    "156", "157", "158", "159", "166", "173", "175", "176", "177", "178", "180", "181", "182", "183",
    "185", "186", "187", "188", "189", "191", "198", "199",
]
# US area codes for mobiles of the en locale.
EN_MOBILE_AREAS = ["212", "415", "617", "312", "206", "512", "303", "646", "213", "404", "305", "214"]

# Activity subjects per ActivityKind value.
ZH_SUBJECTS: dict[str, list[str]] = {
    "call": ["电话跟进", "首次电话沟通", "确认需求细节", "回访客户", "电话确认报价", "约见面时间"],
    "email": ["发送产品资料", "发送报价单", "邮件跟进", "发送方案初稿", "发送合同草案", "会议纪要"],
    "meeting": ["线上产品演示", "需求调研会", "方案讲解会", "商务谈判", "技术交流会"],
    "visit": ["上门拜访", "现场调研", "拜访决策人", "签约拜访"],
    "note": ["客户预算有限", "决策链已理清", "竞品也在接触", "客户反馈积极", "需要法务审核", "等待客户内部审批"],
}
EN_SUBJECTS: dict[str, list[str]] = {
    "call": ["Follow-up call", "Discovery call", "Clarify requirements", "Check-in call", "Pricing call",
             "Schedule a meeting"],
    "email": ["Sent brochure", "Sent quote", "Follow-up email", "Sent draft proposal", "Sent draft contract",
              "Meeting notes"],
    "meeting": ["Online demo", "Requirements workshop", "Proposal walkthrough", "Commercial negotiation",
                "Technical deep dive"],
    "visit": ["On-site visit", "Site survey", "Meeting the decision maker", "Signing visit"],
    "note": ["Tight budget", "Buying committee mapped", "Talking to a competitor too", "Positive feedback",
             "Legal review needed", "Waiting for internal approval"],
}

ZH_TASKS = ["回电确认需求", "发送报价单", "安排产品演示", "跟进合同审批", "准备方案材料", "约见决策人", "确认付款条款"]
EN_TASKS = ["Call back about requirements", "Send the quote", "Book a product demo", "Chase contract approval",
            "Prepare proposal material", "Meet the decision maker", "Confirm payment terms"]


def surname_weights(n: int) -> npt.NDArray[np.float64]:
    """Zipf-like: 王, 李, 张 are far more common than 司马."""
    w = 1.0 / (np.arange(n, dtype=np.float64) + 4.0)
    return w / w.sum()


@dataclass
class People:
    """Names and e-mail local parts of ``n`` drawn people."""

    names: list[str]
    email_locals: list[str]


def draw_people(rng: np.random.Generator, n: int, locale: str) -> People:
    if locale == "zh":
        sur = rng.choice(len(ZH_SURNAMES), size=n, p=surname_weights(len(ZH_SURNAMES)))
        g1 = rng.integers(0, len(ZH_GIVEN), size=n)
        g2 = rng.integers(0, len(ZH_GIVEN), size=n)
        two = rng.random(n) < 0.6
        # A one-character given name: index -1 stands for "no second character".
        g2 = np.where(two, g2, -1)
        s_names = [s for s, _ in ZH_SURNAMES]
        s_py = [p for _, p in ZH_SURNAMES]
        g_names = [g for g, _ in ZH_GIVEN] + [""]
        g_py = [p for _, p in ZH_GIVEN] + [""]
        names = [s_names[a] + g_names[b] + g_names[c] for a, b, c in zip(sur.tolist(), g1.tolist(), g2.tolist(),
                                                                          strict=True)]
        locals_ = [g_py[b] + g_py[c] + "." + s_py[a] for a, b, c in zip(sur.tolist(), g1.tolist(), g2.tolist(),
                                                                          strict=True)]
        return People(names, locals_)
    first = rng.integers(0, len(EN_FIRST), size=n).tolist()
    last = rng.integers(0, len(EN_LAST), size=n).tolist()
    names = [EN_FIRST[a] + " " + EN_LAST[b] for a, b in zip(first, last, strict=True)]
    locals_ = [EN_FIRST[a].lower() + "." + EN_LAST[b].lower() for a, b in zip(first, last, strict=True)]
    return People(names, locals_)


def mobile_phones(rng: np.random.Generator, n: int, locale: str) -> list[str]:
    """E.164 mobiles: +86 13x… for zh, +1 NXX… for en."""
    if locale == "zh":
        prefix = np.array(["+86" + p for p in ZH_MOBILE_PREFIXES], dtype=object)[
            rng.integers(0, len(ZH_MOBILE_PREFIXES), size=n)]
        rest = rng.integers(0, 100_000_000, size=n)
        return [p + f"{r:08d}" for p, r in zip(prefix.tolist(), rest.tolist(), strict=True)]
    area = np.array(["+1" + a for a in EN_MOBILE_AREAS], dtype=object)[rng.integers(0, len(EN_MOBILE_AREAS), size=n)]
    exchange = rng.integers(200, 1000, size=n)
    # N11 exchanges (211, 311 …) are service codes, never subscriber numbers.
    exchange = np.where(exchange % 100 == 11, exchange + 1, exchange)
    line = rng.integers(0, 10_000, size=n)
    return [a + f"{e:03d}{x:04d}" for a, e, x in zip(area.tolist(), exchange.tolist(), line.tolist(), strict=True)]


def landline(rng: np.random.Generator, city_idx: IntArray, cities: Sequence[City], locale: str) -> list[str]:
    n = len(city_idx)
    first = rng.integers(2, 9, size=n)  # landlines never start with 0 or 1
    rest = rng.integers(0, 10_000_000, size=n)
    out: list[str] = []
    cc = "+86" if locale == "zh" else "+1"
    for c, f, r in zip(city_idx.tolist(), first.tolist(), rest.tolist(), strict=True):
        city = cities[c]
        digits = f"{f}{r:07d}"[: city.local_digits]
        out.append(cc + city.area_code + digits)
    return out
