"""Korean words -> the articles' names they spell (rag/hangul.py): the sound
keys of both scripts, and which names a question's words are taken for."""

import pytest

from rag.hangul import MIN_KEY_LENGTH, hangul_key, latin_key, name_keys, names_in


@pytest.mark.parametrize("korean, latin", [
    ("마이크로소프트", "Microsoft"),  # ㅡ added between consonants stands for no vowel
    ("스탠퍼드", "Stanford"),  # nor does an "r" before a consonant
    ("구글", "Google"),  # a silent final "e"
    ("바이든", "Biden"),  # ㅡ before a final ㄴ is a vowel
    ("박지성", "Park Ji-sung"),
    ("문재인", "Moon Jae-in"),
    ("현대", "Hyundai"),
    ("애플", "Apple"),  # a doubled letter is one sound
])
def test_a_name_and_its_hangul_spelling_share_a_key(korean, latin):
    assert hangul_key(korean) == latin_key(latin)


@pytest.mark.parametrize("korean, latin", [("서울", "Seattle"), ("삼성", "Sony"), ("인재", "Inje University")])
def test_other_words_do_not(korean, latin):
    assert hangul_key(korean) != latin_key(latin)


TEXTS = ["According to Park Ji-sung, the Stanford team met Microsoft. The team was small.",
         "Lim Ji-hoon joined Meta in Seoul."]


def test_a_question_s_words_are_read_as_the_names_the_articles_write():
    keys = name_keys(TEXTS, frozenset({"according", "the", "team"}))
    assert set(keys.values()) >= {"Park Ji-sung", "Stanford", "Microsoft", "Lim Ji-hoon"}
    # A particle or suffix after the name ("의", "대"); Korean drops the "L" of "Lim".
    assert names_in("박지성의 스탠퍼드대 동료는 마이크로소프트에서 임지훈을 만났나요?", keys) == {
        "박지성": "Park Ji-sung", "스탠퍼드": "Stanford", "마이크로소프트": "Microsoft", "임지훈": "Lim Ji-hoon"}


def test_a_possessive_ends_a_name():
    keys = name_keys(["Park Ji-sung's Stanford Lab met 'Microsoft'"], frozenset({"lab"}))
    assert sorted(keys.values()) == ["Microsoft", "Park Ji-sung", "Stanford Lab"]


def test_short_keys_are_no_names():
    # "메타" is Meta's key, and "무엇" (what) sounds like it: too short to tell.
    keys = name_keys(TEXTS, frozenset())
    assert len(latin_key("Meta")) < MIN_KEY_LENGTH and names_in("메타는 무엇인가요?", keys) == {}


def test_a_key_two_names_share_tells_neither():
    assert latin_key("Kakao Bank") == latin_key("Kokua Bank")
    assert not {"Kakao Bank", "Kokua Bank"} & set(name_keys(["Kakao Bank met Kokua Bank."], frozenset()).values())
