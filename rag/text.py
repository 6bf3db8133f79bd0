"""How the project reads text: sentence boundaries, terms and figures.

Chunking, BM25 and citation checking must agree on what a sentence and a term
are, so both live here. Sentences come back as character offsets into the
original text, never as copies that could drift from it. Terms are lowercase,
stemmed words and canonical numbers ("0.30", "-0.3" and "0.3" are one term).
The articles are read as English; a question or answer in another script
(Korean, say) is read into the same terms where a term can be common to both
languages: figures in digits, names in Latin letters, country names (from
ISO 3166's translations), so "2023년 일본의 1만 명당" and "Japan, per 10,000,
in 2023" share "japan", "10000" and "2023".
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Set as AbstractSet
from decimal import Decimal, InvalidOperation
from functools import lru_cache

import Stemmer
from bm25s.stopwords import STOPWORDS_EN

# Words that end in a period without ending a sentence; lowercase, without
# the final period.
_ABBREVIATIONS = frozenset(
    "u.s u.k u.n e.u mr mrs ms dr prof st no vs etc inc ltd co corp jr sr "
    "ph.d e.g i.e a.m p.m jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
# A sentence ends at . ! ? or … plus any closing quotes/brackets, when
# whitespace and then an opening character follow: a capital, or a letter of
# a script without capitals (Hangul, kana, CJK), as in a translated answer.
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+[\"'“‘(\[A-Z0-9◇▲\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7a3])")
_LAST_WORD = re.compile(r"([\w.]+)$")
_LINE = re.compile(r"[^\n]+")


def _is_abbreviation(line: str, period_at: int) -> bool:
    """True when the period at `period_at` closes an abbreviation or an initial."""
    word = _LAST_WORD.search(line[:period_at])
    if not word:
        return False
    token = word.group(1).lower().strip(".")
    return token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha())


def split_sentences(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Return (start, end) spans of the sentences of `text`, shifted by `offset`.

    Spans never include surrounding whitespace and never cross a line break,
    so a subheading or byline is a sentence of its own.

    >>> t = "Japan rose. The U.S. Government fell to -0.30 in 2023."
    >>> [t[s:e] for s, e in split_sentences(t)]
    ['Japan rose.', 'The U.S. Government fell to -0.30 in 2023.']
    """
    spans: list[tuple[int, int]] = []
    for line_match in _LINE.finditer(text):
        line, base = line_match.group(), line_match.start() + offset
        cuts = [0]
        for match in _BOUNDARY.finditer(line):
            if match.group()[0] == "." and _is_abbreviation(line, match.start()):
                continue
            cuts.append(match.end())
        cuts.append(len(line))
        for start, end in zip(cuts, cuts[1:]):
            piece = line[start:end]
            stripped = piece.strip()
            if stripped:
                lead = len(piece) - len(piece.lstrip())
                spans.append((base + start + lead, base + start + lead + len(stripped)))
    return spans


# --- terms -----------------------------------------------------------------

# Numbers: optional sign, digits with thousands commas, decimals, and an
# ordinal suffix ("3rd"). Words: Latin letters with inner apostrophes, or a
# run of another script's letters, so "Jung-woo를" splits where its script
# changes and "woo" stays comparable with the English article.
_LATIN = "A-Za-z\u00c0-\u024f"
_TOKEN = re.compile(rf"[+-]?\d[\d,]*(?:\.\d+)?(?:st|nd|rd|th)?|[{_LATIN}]+(?:['’][{_LATIN}]+)*"
                    rf"|(?:(?![{_LATIN}])[^\W\d_])+")
_CAMEL = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
_INNER_CAPITAL = re.compile(r"[a-z][A-Z]")
_NUMBER_WORDS = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "first": "1", "second": "2", "third": "3", "fourth": "4", "fifth": "5", "sixth": "6",
    "seventh": "7", "eighth": "8", "ninth": "9", "tenth": "10",
    "hundred": "100", "thousand": "1000", "million": "million", "billion": "billion",
}
# A country's adjective is the country: "Korean talent" is about Korea.
_DEMONYMS = {
    "korean": "korea", "japanese": "japan", "chinese": "china", "american": "america", "indian": "india",
    "israeli": "israel", "french": "franc", "british": "britain", "canadian": "canada",
    "australian": "australia", "european": "europ", "singaporean": "singapor", "german": "germani",
}
# Question words, function words and sentence openers ("However, ...") that
# say nothing about which passage answers; Lucene's list alone is 33 words.
_EXTRA_STOPWORDS = frozenset(
    "according article articles say says said tell much many what which who whom whose "
    "when where why how did does do per cent percent also among about above after again against all "
    "am any because been before being below between both can could during each few from further had has "
    "have having he her here hers him his i its itself just me more most my myself nor now only other our "
    "ours out over own same she should so some than too under until up very we were while would you your "
    "yes however additionally moreover furthermore overall meanwhile therefore thus still yet even though "
    "although whereas".split()
)
STOPWORDS = frozenset(STOPWORDS_EN) | _EXTRA_STOPWORDS
# One name or figure, several spellings: "the U.S." and "the United States"
# are one country to BM25 and to citation checks ("U.S." would otherwise be
# "u", "s").
_SAME_NAME = [
    (re.compile(r"\bU\.\s?S\.(?:\s?A\.)?|\bUnited States(?: of America)?\b|\bUSA?\b"), "America"),
    (re.compile(r"\bU\.\s?K\.|\bUnited Kingdom\b|\bUK\b"), "Britain"),
    (re.compile(r"\bEuropean Union\b|\bE\.U\.|\bEU\b"), "EU"),
    # Any other dotted abbreviation is its letters: "Ph.D." is "PhD".
    (re.compile(r"\b((?:[A-Za-z]{1,2}\.){2,})"), lambda m: m.group(1).replace(".", "")),
    # A figure in words is the figure: "per hundred thousand people" asks
    # about the passage's "for every 100,000".
    (re.compile(r"\b(?:(?:one|a) )?hundred thousand\b", re.IGNORECASE), "100,000"),
    (re.compile(r"\bten thousand\b", re.IGNORECASE), "10,000"),
]


def _same_names(text: str) -> str:
    for pattern, name in _SAME_NAME:
        text = pattern.sub(name, text)
    return text
_stemmer = Stemmer.Stemmer("english")


def canonical_number(token: str) -> str | None:
    """"+0.30" -> "0.3", "100,000" -> "100000", "3rd" -> "3", "17%" -> "17";
    None if not a number."""
    token = re.sub(r"(st|nd|rd|th|%)$", "", token.lstrip("+-").replace(",", ""))
    try:
        value = Decimal(token)
    except InvalidOperation:
        return None
    text = format(value.normalize(), "f")
    return text


@lru_cache(maxsize=65536)
def _word_terms(word: str) -> tuple[str, ...]:
    """Stemmed lowercase term(s) for one word; camel case adds its parts
    ("SakanaAI" -> sakanaai, sakana, ai) so a partial name still matches."""
    word = re.sub(r"['’]s$", "", word)  # possessive: "Japan's" is "Japan"
    lower = word.lower()
    if lower in _NUMBER_WORDS:
        return (_NUMBER_WORDS[lower],)
    if lower in _DEMONYMS:
        return (_DEMONYMS[lower],)
    terms = [_stemmer.stemWord(lower)]
    parts = _CAMEL.findall(word) if _INNER_CAPITAL.search(word) else []
    if len(parts) > 1:
        terms += [_stemmer.stemWord(p.lower()) for p in parts]
    return tuple(terms)


def terms(text: str, keep_stopwords: bool = False) -> list[str]:
    """All terms of `text` in order, for BM25 and overlap checks.

    >>> terms("Japan recorded a net inflow of +0.54 in 2023")
    ['japan', 'record', 'net', 'inflow', '0.54', '2023']
    >>> terms("per hundred thousand people")
    ['100000', 'peopl']
    """
    out: list[str] = []
    for token in _TOKEN.findall(_same_names(_plain_figures(text))):
        if token[0].isdigit() or token[0] in "+-":
            number = canonical_number(token)
            if number is not None:
                out.append(number)
            continue
        if not keep_stopwords and token.lower() in STOPWORDS:
            continue
        if not is_latin(token):
            out.append(foreign_country(token) or token.lower())
            continue
        out.extend(_word_terms(token))
    return out


def is_latin(term: str) -> bool:
    """Whether `term` is written in Latin letters or digits: a term an English
    article can share."""
    return not any(ch.isalpha() and not ("a" <= ch.lower() <= "z" or "\u00c0" <= ch <= "\u024f") for ch in term)


def script_of(term: str) -> str:
    """"LATIN" for a term in Latin letters or digits, else the Unicode script
    name of its first letter ("HANGUL")."""
    if is_latin(term):
        return "LATIN"
    return next(unicodedata.name(ch, "?").split()[0] for ch in term if ch.isalpha())


def main_scripts(all_terms: AbstractSet[str], share: float = 0.05) -> set[str]:
    """The scripts (see `script_of`) of at least `share` of `all_terms`, and
    Latin: a few words of a web page's furniture in another script ("기사
    닫기") do not make an article Korean."""
    counts = Counter(script_of(t) for t in all_terms)
    return {sc for sc, n in counts.items() if n >= share * len(all_terms)} | {"LATIN"}


# Scripts whose text the project can read as a question in another language,
# by the first word of their letters' Unicode names, with the language's name
# (for the prompt) and its ISO 3166 translation catalogue (for country names).
_SCRIPTS = {
    "HANGUL": ("Korean", "ko"), "HIRAGANA": ("Japanese", "ja"), "KATAKANA": ("Japanese", "ja"),
    "CJK": ("Chinese", "zh_CN"), "CYRILLIC": ("Russian", "ru"), "GREEK": ("Greek", "el"),
    "ARABIC": ("Arabic", "ar"), "HEBREW": ("Hebrew", "he"), "DEVANAGARI": ("Hindi", "hi"), "THAI": ("Thai", "th"),
}


def script_language(text: str) -> str:
    """The language of `text` when most of its letters are of a script other
    than Latin ("Korean"), else "" (read as English). Kana decides Japanese
    over Chinese, since Japanese is written with both.

    >>> script_language("2023년 일본의 AI 인재 순유입은?"), script_language("Japan's AI talent?")
    ('Korean', '')
    """
    scripts = Counter()
    for ch in text:
        if ch.isalpha():
            scripts["LATIN" if is_latin(ch) else unicodedata.name(ch, "?").split()[0]] += 1
    if not scripts:
        return ""
    if scripts["HIRAGANA"] + scripts["KATAKANA"]:
        scripts["HIRAGANA"] += scripts.pop("CJK", 0) + scripts.pop("KATAKANA", 0)
    script, count = scripts.most_common(1)[0]
    if script == "LATIN" or count * 2 < sum(scripts.values()):
        return ""
    return _SCRIPTS.get(script, ("", ""))[0]


@lru_cache(maxsize=1)
def _foreign_country_names() -> dict[str, str]:
    """Country names in the scripts of `_SCRIPTS`, from ISO 3166's translations
    (`pycountry`'s catalogues), each to its English country term: "일본" ->
    "japan". Korean's everyday name for Korea is added: the catalogue gives
    only the formal one."""
    import gettext

    import pycountry

    found: dict[str, str] = {"한국": "korea", "남한": "korea", "북한": "korea"}
    for _, locale in _SCRIPTS.values():
        try:
            catalogue = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[locale])
        except OSError:
            continue
        for country in pycountry.countries:
            english = getattr(country, "common_name", None) or country.name.split(",")[0]
            term = _country_term(english)
            for name in {catalogue.gettext(country.name), catalogue.gettext(english)}:
                if term and name and not is_latin(name) and " " not in name:
                    found[name.lower()] = term
    return found


def foreign_country_length(token: str) -> int:
    """How many characters of a word in another script are a country's name
    ("일본의" -> 2), 0 when it starts with none; the longest name wins, so
    "인도네시아" is Indonesia, not India ("인도")."""
    token = token.lower()
    names = _foreign_country_names()
    return next((end for end in range(len(token), 1, -1) if token[:end] in names), 0)


def foreign_country(token: str) -> str | None:
    """The country term of a word in another script that starts with a
    country's name ("일본의" -> "japan"), else None."""
    length = foreign_country_length(token)
    return _foreign_country_names()[token[:length].lower()] if length else None


# Figures written with East Asian myriad units: "1만" is 10,000, "72억 6천만"
# is 7,260,000,000, "1만 2,800" and "1만 2천 8백" are 12,800. They are
# rewritten in digits before reading, so they compare with an English
# article's "10,000".
_MYRIAD_UNITS = {"백": 10**2, "百": 10**2, "천": 10**3, "千": 10**3, "만": 10**4, "万": 10**4, "萬": 10**4,
                 "억": 10**8, "亿": 10**8, "億": 10**8, "조": 10**12, "兆": 10**12}
_UNIT_CHARS = "".join(_MYRIAD_UNITS)
_MYRIAD = re.compile(rf"(?:\d[\d,]*(?:\.\d+)?\s?[{_UNIT_CHARS}]+\s?)+(\d[\d,]*(?![\d.,%]|\s?[년年]))?")
_MYRIAD_PART = re.compile(rf"(\d[\d,]*(?:\.\d+)?)\s?([{_UNIT_CHARS}]+)")


def _plain_figures(text: str) -> str:
    """`text` with myriad-unit figures in plain digits ("1만 명" -> "10000 명")."""
    if not any(unit in text for unit in _MYRIAD_UNITS):
        return text

    def plain(match: re.Match) -> str:
        parts = []
        for digits, units in _MYRIAD_PART.findall(match.group()):
            scale = 1
            for unit in units:  # "7천만" is 7 x 1,000 x 10,000
                scale *= _MYRIAD_UNITS[unit]
            parts.append((Decimal(digits.replace(",", "")), scale))
        total = sum(value * scale for value, scale in parts)
        rest = match.group(1) or ""
        if rest and Decimal(rest.replace(",", "")) < min(scale for _, scale in parts):
            return format((total + Decimal(rest.replace(",", ""))).normalize(), "f")  # "1만 2,800"
        trailing = " " if match.group()[:len(match.group()) - len(rest)].endswith(" ") else ""
        return format(total.normalize(), "f") + trailing + rest

    return _MYRIAD.sub(plain, text)


_FIGURE = re.compile(r"(?<![\w.])([+-]?)(\d[\d,]*(?:\.\d+)?)(st|nd|rd|th)?(\s*(?:%|percent\b|per cent\b))?"
                     r"(?:\s+(thousand|million|billion|trillion)\b)?", re.IGNORECASE)
_SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}


_ORDINAL_WORDS = re.compile(r"\b(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth)\b", re.IGNORECASE)


def numbers(text: str, spelled_ordinals: bool = False) -> set[str]:
    """The figures written in digits in `text`, in a form that keeps what makes
    them different: a minus sign ("-0.30" -> "-0.3"), a percent ("17%" is not
    17 employees) and an ordinal ("3rd" is not "3.0"). Number words are left
    out, since "one of the" is rarely a figure; `spelled_ordinals` adds
    "third" as "3rd", for a text that may back an answer's "3rd".

    >>> sorted(numbers("-0.30 per 10,000, +0.54, 81.9 percent, the 3rd and 3.0"))
    ['-0.3', '0.54', '10000', '3', '3rd', '81.9%']
    >>> sorted(numbers("the third largest", spelled_ordinals=True))
    ['3rd']
    """
    found = set()
    if spelled_ordinals:
        for word in _ORDINAL_WORDS.findall(text):
            n = int(_NUMBER_WORDS[word.lower()])
            found.add(f"{n}{({1: 'st', 2: 'nd', 3: 'rd'}).get(n, 'th')}")
    for sign, digits, ordinal, percent, scale in _FIGURE.findall(_plain_figures(text)):
        number = canonical_number(digits)
        if number is None:
            continue
        if ordinal:
            number += ordinal.lower()
        elif percent:
            number += "%"
        elif scale:
            # "$7.26 billion" is also 7,260,000,000: what "72억 6천만 달러" says.
            whole = format((Decimal(number) * _SCALES[scale.lower()]).normalize(), "f")
            found.add("-" + whole if sign == "-" else whole)
        found.add("-" + number if sign == "-" and number != "0" else number)
    return found


def number_in(number: str, others: set[str]) -> bool:
    """True when `number` (from `numbers`) is among `others`. An unsigned
    figure also matches its negative ("an outflow of 0.30" states "-0.30"),
    but an explicit minus must match a minus: "-0.54" is not "+0.54".
    """
    return number in others or (not number.startswith("-") and "-" + number in others)


def names(text: str) -> set[str]:
    """Terms of the capitalised words of `text` (names, places, acronyms),
    leaving out capitalised common words ("The", "However").

    >>> sorted(names("The Korean government hired Bae Gyeong-hun in Seoul."))
    ['bae', 'gyeong', 'korea', 'seoul']
    """
    found: set[str] = set()
    for token in _TOKEN.findall(_same_names(text)):
        if token[0].isupper() and token.lower() not in STOPWORDS:
            found.update(_word_terms(token))
    return found


def acronyms(text: str) -> set[str]:
    """Terms of the words of `text` written in capitals ("AI", "OECD"):
    sources and subjects a passage names once and then leaves implicit.

    >>> sorted(acronyms("The OECD's AI survey, says Mr Kim"))
    ['ai', 'oecd']
    """
    words = (re.sub(r"['’]s$", "", token) for token in _TOKEN.findall(_same_names(text)))  # "OECD's" is "OECD"
    return {t for word in words if len(word) > 1 and word.isupper() for t in _word_terms(word)}


def _country_terms() -> frozenset[str]:
    """Every country and territory of ISO 3166 (from `pycountry`) with a name
    of its own, and the blocs news speaks of, as terms: a one-word name
    ("Norway", "Korea" of "Korea, Republic of"), or the last word of a
    longer one ("Zealand", "Arabia"). Names made of words like "Islands",
    "Territory" or "and" are left out: their words are common ones ("Cook",
    "Heard", "Man")."""
    import pycountry

    found = set()
    for country in pycountry.countries:
        term = _country_term(getattr(country, "common_name", None) or country.name.split(",")[0])
        if term:
            found.add(term)
    blocs = "Europe EU America USA Britain UK Russia Turkey"
    return frozenset(found | {t for name in blocs.split() for t in _word_terms(name)})


def _country_term(name: str) -> str | None:
    """The term that stands for the country `name` (its English name), or None
    when its words are common ones; see `_country_terms`."""
    words = re.findall(r"[^\W\d_]+", _same_names(name))
    if words and (len(words) == 1 or not {w.lower() for w in words} & _GENERIC_NAME_WORDS):
        return _word_terms(words[-1])[0]
    return None


# Words of country names that say what kind of place it is, not which one.
_GENERIC_NAME_WORDS = frozenset("islands island republic states state kingdom territory territories federation "
                                "see city of the and saint sint minor outlying".split())
# Countries and blocs, as terms. Names of the same kind are what a small model
# swaps (one country's figure given to another), so citation checking treats
# them specially; the list is ISO's, never the articles'.
COUNTRIES = _country_terms()


_POINTERS = ("in the same", "at the same", "this ", "these ", "that ", "those ", "it ", "they ", "he ", "she ",
             "the figure", "the number", "the company", "the country", "the same", "meanwhile", "however",
             "also", "in addition", "by contrast", "on the other hand", "accordingly", "as a result")


def points_back(sentence: str) -> bool:
    """Whether a sentence opens by referring to the one before it ("This
    indicator, which was 0.30 in 2020, ...", "In the same period, ...")."""
    head = sentence.lstrip("\"'“‘(◇▲ ").lower()
    return head.startswith(_POINTERS)
