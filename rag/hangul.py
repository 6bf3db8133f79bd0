"""Korean words -> the articles' names they spell by sound.

A Korean question writes the articles' names in Hangul ("사카나" for SakanaAI,
"배경훈" for Bae Gyeong-hun), and the small model translating it guesses their
English spelling ("Kaana AI"); every later stage then looks for a name the
articles never write. Both scripts are reduced here to one sound key —
consonants by place ("b", "p", "f" and "v" are one), a vowel run as one mark,
"r" silent before a consonant as Korean loanwords hear it ("Naver" is
"네이버") — and a Korean word whose key is the key of a name the articles write
is taken to be that name. Only exact keys of at least MIN_KEY_LENGTH marks
count: shorter keys are shared by ordinary Korean words ("무엇", what, sounds
like "Meta"). Nothing here knows a particular name or article.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Set as AbstractSet

from .text import terms

# Shorter keys are common words' as well as names'.
MIN_KEY_LENGTH = 6

# Hangul syllable = 0xAC00 + (initial * 21 + vowel) * 28 + final.
_FIRST_SYLLABLE, _SYLLABLES = 0xAC00, 11172
# The initial consonants in Unicode order (ㄱ ㄲ ㄴ ㄷ ㄸ ㄹ ㅁ ㅂ ㅃ ㅅ ㅆ ㅇ ㅈ ㅉ ㅊ ㅋ ㅌ ㅍ ㅎ);
# ㅇ (index 11) is silent before a vowel.
_INITIALS = ("k", "k", "n", "t", "t", "l", "m", "p", "p", "s", "s", "", "j", "j", "j", "k", "t", "p", "h")
_SILENT_INITIAL = 11
# The finals in Unicode order (none ㄱ ㄲ ㄳ ㄴ ㄵ ㄶ ㄷ ㄹ ㄺ ㄻ ㄼ ㄽ ㄾ ㄿ ㅀ ㅁ ㅂ ㅄ ㅅ ㅆ ㅇ ㅈ ㅊ ㅋ ㅌ ㅍ ㅎ),
# as they sound at a syllable's end: ㅇ is "ng", ㅅ is "t".
_FINALS = ("", "k", "k", "k", "n", "n", "n", "t", "l", "k", "m", "l", "l", "l", "p", "l", "m", "p", "p", "t", "t",
           "nk", "t", "t", "k", "t", "p", "h")
# ㅡ after a consonant is the vowel Korean adds between an English word's
# consonants ("스탠퍼드", Stanford; "구글", Google): it stands for no vowel of
# the name, except before a final ㄴ or ㅇ ("바이든", Biden; "승", Seung).
_EU = 18
_NASAL_FINALS = frozenset((4, 21))
_HANGUL_WORD = re.compile(r"[\uac00-\ud7a3]+")

# Latin letters by the same classes; digraphs first.
_LATIN_DIGRAPHS = (("ph", "p"), ("th", "t"), ("sh", "s"), ("ch", "j"), ("ck", "k"), ("ng", "nk"), ("x", "ks"),
                   ("qu", "kv"))
_LATIN_LETTERS = {"b": "p", "p": "p", "f": "p", "v": "p", "d": "t", "t": "t", "g": "k", "k": "k", "q": "k", "j": "j",
                  "z": "j", "s": "s", "h": "h", "l": "l", "r": "l", "m": "m", "n": "n"}
_LATIN_VOWELS = frozenset("aeiouyw")
_NAME = re.compile(r"[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)*")
_POSSESSIVE = re.compile(r"['’]s?$")


def _squeeze(key: str) -> str:
    # A doubled letter is one sound ("Apple" is "애플"), and so is a vowel run.
    return re.sub(r"(.)\1+", r"\1", key)


def hangul_key(word: str) -> str:
    """The sound key of a Hangul word ("v" marks a vowel run).

    >>> hangul_key("배경훈"), hangul_key("스탠퍼드")
    ('pvkvnkhvn', 'stvnpvt')
    """
    out = []
    for char in word:
        code = ord(char) - _FIRST_SYLLABLE
        if not 0 <= code < _SYLLABLES:
            continue
        initial, vowel, final = code // 588, code % 588 // 28, code % 28
        out.append(_INITIALS[initial])
        if vowel != _EU or initial == _SILENT_INITIAL or final in _NASAL_FINALS:
            out.append("v")
        out.append(_FINALS[final])
    return _squeeze("".join(out))


def latin_key(name: str) -> str:
    """The sound key of a name in Latin letters.

    >>> latin_key("Bae Gyeong-hun"), latin_key("Stanford")
    ('pvkvnkhvn', 'stvnpvt')
    """
    # A silent final "e" ("Google", "Apple"): not "Lee" or "Bae".
    letters = re.sub(r"[^a-z]", "", re.sub(r"(?<=[a-df-z][^aeiouy\W])e\b", "", name.lower()))
    letters = re.sub(r"r(?![aeiouy])", "", letters)  # "Naver", "Stanford": no r in Korean
    letters = re.sub(r"c(?=[eiy])", "s", letters).replace("c", "k")
    out, i = [], 0
    while i < len(letters):
        for digraph, sound in _LATIN_DIGRAPHS:
            if letters.startswith(digraph, i):
                out.append(sound)
                i += len(digraph)
                break
        else:
            out.append("v" if letters[i] in _LATIN_VOWELS else _LATIN_LETTERS.get(letters[i], ""))
            i += 1
    return _squeeze("".join(out))


def name_keys(texts: Iterable[str], ordinary: AbstractSet[str]) -> dict[str, str]:
    """Sound key -> name, for the names `texts` write (see `_names`), each
    by its shortest spelling not in capitals. A key two names share is
    dropped: it tells neither."""
    found: dict[str, set[str]] = {}
    for text in texts:
        for name in _names(text, ordinary):
            key = latin_key(name)
            if len(key) >= MIN_KEY_LENGTH:
                found.setdefault(key, set()).add(name)
    return {key: min(spellings, key=lambda s: (s.isupper(), len(s)))
            for key, spellings in found.items() if _one_name(spellings)}


def _names(text: str, ordinary: AbstractSet[str]) -> Iterator[str]:
    """The names `text` writes: runs of capitalised words, split after a
    possessive ("Lee Jae-myung's"), less the leading words that are
    `ordinary` (written in lower case somewhere: "The", "According",
    "Professor"); a run of ordinary words alone is none."""
    for match in _NAME.finditer(text):
        words, run = match.group().split(), []
        for i, word in enumerate(words):
            possessive = _POSSESSIVE.search(word)
            run.append(word[:possessive.start()] if possessive else word)
            if possessive or i == len(words) - 1:
                while run and set(terms(run[0])) <= ordinary:
                    run = run[1:]
                if run:
                    yield " ".join(run)
                run = []


def _one_name(spellings: set[str]) -> bool:
    # "Lee Jae-myung" and "Lee Jae-Myung" are one name; "Kakao" and "Kokua" are not.
    return len({s.casefold().replace("-", "").replace(" ", "") for s in spellings}) == 1


def names_in(question: str, keys: Mapping[str, str]) -> dict[str, str]:
    """The Hangul words of `question` that spell a name of `keys` (see
    `name_keys`): word -> name. A word may end in a particle or suffix
    ("사카나의", "스탠퍼드대"), so its longest beginning that spells a name counts.
    Korean drops an initial "l" ("이" for Lee, "임" for Lim), which the key may
    lack.

    >>> names_in("배경훈의 박사 학위는?", {latin_key("Bae Gyeong-hun"): "Bae Gyeong-hun"})
    {'배경훈': 'Bae Gyeong-hun'}
    """
    found = {}
    for match in _HANGUL_WORD.finditer(question):
        word = match.group()
        for end in range(len(word), 0, -1):
            key = hangul_key(word[:end])
            if len(key) < MIN_KEY_LENGTH - 1:
                break  # too short even with an "l" put back
            # `keys` holds no key shorter than MIN_KEY_LENGTH (see `name_keys`).
            name = keys.get(key)
            if name is None and key.startswith(("v", "n")):
                name = keys.get("l" + key[key.startswith("n"):])
            if name is not None:
                found[word[:end]] = name
                break
    return found

