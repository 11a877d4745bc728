"""The default funnel of PRODUCT.md A1, lost reasons and channels, in zh-CN and en."""

from __future__ import annotations

from typing import Any

DEFAULT_PIPELINE = {"name": "销售漏斗", "name_en": "Sales funnel"}

# probability: default win chance (%); expected_days: after this a deal is "rotting".
DEFAULT_STAGES: list[dict[str, Any]] = [
    {
        "name": "潜在客户", "name_en": "Prospect", "probability": 10, "expected_days": 7, "follow_up_days": 3,
        "main_task": "识别客户画像与来源 / Identify the customer profile and source",
        "key_points": "精准营销 / Targeted marketing",
        "playbook": "确认行业、规模与决策链；记录线索来源。 / Confirm industry, size and buying chain; record the source.",
        "required_fields": [], "checklist": [],
    },
    {
        "name": "初步接触", "name_en": "First contact", "probability": 20, "expected_days": 10,
        "follow_up_days": 3,
        "main_task": "建立联系，了解基本需求 / Build contact and learn the basic needs",
        "key_points": "清晰介绍产品 / Present the product clearly",
        "playbook": "首次通话 15 分钟内讲清价值；约定下一步。 / Make the value clear in the first 15-minute call; agree the next step.",
        "required_fields": [], "checklist": [],
    },
    {
        "name": "需求分析", "name_en": "Needs analysis", "probability": 40, "expected_days": 14,
        "follow_up_days": 5,
        "main_task": "深入了解需求与痛点 / Understand needs and pain points",
        "key_points": "定制化方案 / A tailored plan",
        "playbook": "问清现状、痛点、预算、时间表和决策人。 / Ask for the situation, pain, budget, timeline and decision maker.",
        "required_fields": ["contact_id"], "checklist": [],
    },
    {
        "name": "方案建议", "name_en": "Proposal", "probability": 60, "expected_days": 14, "follow_up_days": 5,
        "main_task": "提供解决方案及实施计划 / Offer a solution with an implementation plan",
        "key_points": "说明预期效果 / Show the expected effect",
        "playbook": "方案写明范围、实施计划、预期收益与报价。 / State scope, plan, expected benefit and price.",
        "required_fields": ["amount", "company_id"], "checklist": [],
    },
    {
        "name": "谈判与签约", "name_en": "Negotiation & signing", "probability": 80, "expected_days": 21,
        "follow_up_days": 3,
        "main_task": "价格与条款谈判 / Negotiate price and terms",
        "key_points": "达成协议 / Reach agreement",
        "playbook": "守住价格底线，折扣换承诺；明确签约时间。 / Hold the price floor, trade discounts for commitments; fix the signing date.",
        "required_fields": ["amount", "expected_close_date"],
        "checklist": ["决策人已确认方案 / Decision maker accepted the proposal"],
    },
]

LOST_REASONS = [
    ("价格太高", "Price too high", "lost"),
    ("选择了竞争对手", "Chose a competitor", "lost"),
    ("没有预算", "No budget", "lost"),
    ("需求不匹配", "Not a fit", "lost"),
    ("时机不对", "Bad timing", "lost"),
    ("失去联系", "Went silent", "lost"),
    ("无效线索", "Invalid lead", "disqualify"),
    ("重复线索", "Duplicate lead", "disqualify"),
    ("无需求", "No need", "disqualify"),
    ("联系不上", "Unreachable", "disqualify"),
]

CHANNELS = [
    ("官网表单", "Website form", "web"),
    ("搜索广告", "Search ads", "web"),
    ("展会", "Trade show", "event"),
    ("客户推荐", "Referral", "referral"),
    ("电话外呼", "Cold call", "outbound"),
    ("微信公众号", "WeChat", "social"),
    ("合作伙伴", "Partner", "partner"),
    ("邮件营销", "Email campaign", "email"),
]
