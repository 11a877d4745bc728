"""The searchable forms of names, phones and e-mail addresses, and of what a user types.

A record is found when what the user typed is a prefix of one of its terms. The terms of
张三 (+8613812345678, zhang.san@acme.cn) are: 张三, zhangsan, zs, 13812345678 and
zhang.san@acme.cn. Names also get a term from each later word ("smith" of "John Smith",
"营销自动化" of "兴诚汽车 · 营销自动化"), and a company's name one without its leading
city (华信软件有限公司 of 上海华信软件有限公司 in 上海), because that is how people recall
them; both forms get their pinyin and initials (shanghaihuaxin…, huaxin…, hxrj…). Deal
titles get no pinyin: they are found by their words, and deals are most of the rows (a
term less per deal is a million rows less at 1M deals).

Phones are stored as their national number (what follows the country code) and, for a
Chinese landline, also without its area code; what the user types is brought to the same
form: "+86 138…", "0086 138…" and "138…" all look up 138…, "021-6234 5678" 2162345678.

Pinyin comes from pypinyin's dictionaries and its segmentation (forward maximum matching
over its phrase dictionary, so 长城 reads chang cheng and 重庆 chong qing), computed here
with caches per run of Han characters: ``pypinyin.lazy_pinyin`` costs 0.1-0.4 ms per
company name, which made a bulk rebuild at 1M deals take many minutes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from functools import lru_cache

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE
from pypinyin import Style, lazy_pinyin, pinyin
from pypinyin.constants import PHRASES_DICT, RE_HANS

from loudou.search.models import TERM_MAX

#: Extra word-start terms per name: enough for "first last" and "brand · product"
#: names, while a long title does not turn into a dozen rows.
MAX_WORD_TERMS = 3
#: Readings of a polyphonic surname indexed (单: dan, shan, chan).
MAX_SURNAME_READINGS = 3

_SPACE = re.compile(r"\s+")
_NOT_ALNUM = re.compile(r"[\W_]+")
_WORDS = re.compile(r"[^\W_]+")
_PHONE_CHARS = re.compile(r"[\s\-().+/]")
# pypinyin's own definition of a Han character (RE_HANS matches whole strings of them),
# reused to split text into runs of Han characters and the rest.
_HAN_CLASS = RE_HANS.pattern.removeprefix("^(?:").removesuffix(")+$")
_HAN_RUNS = re.compile(f"({_HAN_CLASS}+)")
# A word starts where a letter, digit or Han character follows anything else.
_WORD_START = re.compile(r"(?<=[\W_])(?=[^\W_])")


def normalize(text: str | None) -> str:
    """Full-width to half-width, lowercase, single spaces: the form terms are kept in."""
    if not text:
        return ""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().lower()


# --------------------------------------------------------------------------- pinyin


@lru_cache(maxsize=1)
def _phrase_prefixes() -> frozenset[str]:
    """Every prefix of every dictionary phrase: where a longer match may still follow."""
    return frozenset(phrase[:end] for phrase in PHRASES_DICT for end in range(1, len(phrase) + 1))


def _segments(run: str) -> Iterator[str]:
    """Forward maximum matching of a run of Han characters against the phrase dictionary,
    as pypinyin's own ``mmseg`` segmenter does in its strict mode."""
    prefixes = _phrase_prefixes()
    i, n = 0, len(run)
    while i < n:
        best = 1
        end = i + 1
        while end <= n and run[i:end] in prefixes:
            if run[i:end] in PHRASES_DICT:
                best = end - i
            end += 1
        yield run[i:i + best]
        i += best


@lru_cache(maxsize=65_536)
def _reading(han: str) -> tuple[str, ...]:
    """Toneless readings of a dictionary phrase or a single character ('lv' for 吕)."""
    return tuple(lazy_pinyin(han, style=Style.NORMAL))


# Runs repeat far more than whole names (a surname, 科技, 有限公司, a brand, a product), so
# this cache is what makes a bulk rebuild fast.
@lru_cache(maxsize=262_144)
def _run_pinyin(run: str) -> tuple[str, str, int]:
    """A run of Han characters as (full pinyin, initials, length of its first syllable)."""
    syllables = [s for segment in _segments(run) for s in _reading(segment)]
    return "".join(syllables), "".join(s[:1] for s in syllables), len(syllables[0])


def syllables(text: str) -> list[str]:
    """The pinyin syllables of the Han characters of ``text``, other characters left out."""
    return [s for run in _HAN_RUNS.findall(text) for segment in _segments(run) for s in _reading(segment)]


@lru_cache(maxsize=4096)
def _surname_readings(char: str) -> tuple[str, ...]:
    return tuple(pinyin(char, style=Style.NORMAL, heteronym=True)[0])


def pinyin_forms(text: str, *, person: bool = False) -> set[str]:
    """Full pinyin (no spaces) and initials of ``text`` (normalized) if it has Han
    characters; other words are kept whole in the pinyin and by their first letter in the
    initials. For a person, every reading of a polyphonic surname is indexed too, since a
    surname is often read differently from the word (曾 zeng, not ceng; 单 shan)."""
    parts = _HAN_RUNS.split(text)
    if len(parts) == 1:
        return set()
    full: list[str] = []
    first: list[str] = []
    for i, part in enumerate(parts):
        if i % 2:  # split() with a group puts the Han runs at odd positions
            run_full, run_initials, _ = _run_pinyin(part)
            full.append(run_full)
            first.append(run_initials)
        elif part:
            full.append(_NOT_ALNUM.sub("", part))
            first.extend(word[:1] for word in _WORDS.findall(part))
    forms = {"".join(full)[:TERM_MAX], "".join(first)[:TERM_MAX]}
    if person and not parts[0]:
        # The name starts with its surname: the other readings of that character.
        own, _, length = _run_pinyin(parts[1])
        readings = [r for r in _surname_readings(parts[1][0]) if r != own[:length]]
        for reading in readings[: MAX_SURNAME_READINGS - 1]:
            forms.add((reading + "".join(full)[length:])[:TERM_MAX])
            forms.add((reading[:1] + "".join(first)[1:])[:TERM_MAX])
    forms.discard("")
    return forms


# --------------------------------------------------------------------------- names


def word_forms(norm: str) -> list[str]:
    """The suffixes of ``norm`` that start at its later words: 'smith' of 'john smith'."""
    return [norm[m.start():] for _, m in zip(range(MAX_WORD_TERMS), _WORD_START.finditer(norm), strict=False)]


# Cached: people's names and deal titles repeat a lot (王伟, "华信软件 · CRM 系统").
@lru_cache(maxsize=32_768)
def name_terms(name: str | None, *, person: bool = False, pinyin: bool = True,
               drop_prefix: str | None = None) -> frozenset[str]:
    """Terms of a record's name. ``drop_prefix``: a leading word people may leave out when
    they search (a company's city); the name is indexed with and without it."""
    norm = normalize(name)
    if not norm:
        return frozenset()
    texts = [norm]
    prefix = normalize(drop_prefix)
    if prefix:
        for candidate in (prefix + "市", prefix):
            if norm.startswith(candidate) and len(norm) > len(candidate):
                rest = norm[len(candidate):].lstrip(" ·-_,.()（）")
                if rest:
                    texts.append(rest)
                break
    terms: set[str] = set()
    for text in texts:
        terms.add(text[:TERM_MAX])
        if pinyin:
            terms.update(pinyin_forms(text, person=person))
    terms.update(w[:TERM_MAX] for w in word_forms(norm))
    return frozenset(terms)


# --------------------------------------------------------------------------- phones, e-mail


def phone_terms(e164: str | None) -> set[str]:
    """A stored (E.164) phone's national number, and a Chinese landline's number without
    its area code (how it is dialled inside the city)."""
    if not e164 or not e164.startswith("+"):
        return set()
    national = _national_digits(e164[1:]) or e164[1:]
    terms = {national}
    if e164.startswith("+86") and (national.startswith(("10", "2")) or not national.startswith("1")):
        # Beijing (10) and the 2x area codes have two digits, every other one three;
        # numbers starting with 1 otherwise are mobiles, which have no area code.
        terms.add(national[2 if national.startswith(("10", "2")) else 3:])
    return terms


def _national_digits(international: str) -> str | None:
    """The digits after the country code (codes are prefix-free: at most one matches)."""
    for length in (1, 2, 3):
        if int(international[:length] or 0) in COUNTRY_CODE_TO_REGION_CODE:
            return international[length:]
    return None


def email_terms(email: str | None) -> set[str]:
    norm = normalize(email)
    return {norm[:TERM_MAX]} if norm else set()


def company_terms(name: str | None, city: str | None, phone: str | None, email: str | None) -> list[str]:
    return sorted(name_terms(name, drop_prefix=city) | phone_terms(phone) | email_terms(email))


def contact_terms(name: str | None, phone: str | None, email: str | None) -> list[str]:
    return sorted(name_terms(name, person=True) | phone_terms(phone) | email_terms(email))


def deal_terms(title: str | None) -> list[str]:
    return sorted(name_terms(title, pinyin=False))


# --------------------------------------------------------------------------- queries


def _phone_prefixes(typed: str, digits: str) -> list[str]:
    """What a typed phone number is looked up as: its national digits."""
    if typed.startswith("+") or digits.startswith("00"):
        national = _national_digits(digits.removeprefix("00") if not typed.startswith("+") else digits)
        return [national] if national else []
    if digits.startswith("0"):
        return [digits[1:]]  # the trunk prefix: 021… is 21…, as stored
    if digits.startswith("86") and len(digits) >= 12:
        return [digits, digits[2:]]  # a Chinese number with its country code but no "+"
    return [digits]


def query_prefixes(query: str | None) -> list[str]:
    """The prefixes to look up for what the user typed: the text as typed (normalized);
    without spaces and apostrophes for pinyin ("zhang san", "xi'an"); for something that
    looks like a phone number, its national digits."""
    norm = normalize(query)[:TERM_MAX]
    if not norm:
        return []
    digits = _PHONE_CHARS.sub("", norm)
    if len(digits) >= 3 and digits.isascii() and digits.isdigit():
        return [p for p in _phone_prefixes(norm, digits) if p]
    compact = re.sub(r"[\s']+", "", norm)
    return [norm] if compact in ("", norm) else [norm, compact]


def prefix_range(prefix: str) -> tuple[str, str] | None:
    """[low, high) bounds of the strings that start with ``prefix`` in code point order;
    a range an index can serve where ``LIKE 'p%'`` often cannot."""
    stripped = prefix.rstrip("\U0010ffff")
    if not stripped:
        return None
    last = ord(stripped[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:  # surrogates are not characters; skip over them
        last = 0xE000
    return prefix, stripped[:-1] + chr(last)
