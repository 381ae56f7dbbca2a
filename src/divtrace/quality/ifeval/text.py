"""Text helpers for the IFEval checks: word counting, sentence splitting, word tokens, language.

The official implementation (google-research ``instruction_following_eval``) leans on NLTK and
``langdetect``. NLTK data (the punkt model) cannot be used here, so this module carries its own
tokenizers, written to reproduce the official counts where it matters:

* :func:`count_words` is exact: the official ``count_words`` is NLTK's ``RegexpTokenizer(r"\\w+")``,
  i.e. ``re.findall(r"\\w+", text)``.
* :func:`split_sentences` stands in for punkt's pre-trained English model (used by the official
  ``count_sentences``). Like punkt it splits only after ``.``, ``?`` or ``!`` (plus any closing
  quotes/brackets) followed by whitespace, never on bare newlines, and keeps a sentence going after
  known abbreviations, initials, and numbers/ellipses followed by a lower-case word. Punkt decides
  the abbreviation/initial cases with statistics learned from its training corpus (which words are
  abbreviations, which words are usually capitalised); here that is a fixed abbreviation list and a
  list of common sentence-starting words, so counts can differ on unusual abbreviations.
* :func:`word_tokenize` stands in for ``nltk.word_tokenize`` (Treebank rules), which the official
  ``capital_word_frequency`` check uses only to count all-caps tokens. It reproduces the splits that
  change that count: contractions (``DON'T`` -> ``DO`` ``N'T``), ``cannot`` -> ``can not``,
  commas/colons between words, and separated punctuation; hyphenated words stay one token.
* :func:`detect_language` uses ``langdetect`` (the official dependency) with a fixed seed so results
  are reproducible; without ``langdetect`` installed it falls back to a small script/stop-word
  heuristic (see :func:`_fallback_detect`).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from functools import lru_cache
from typing import Any

# --------------------------------------------------------------------------------------- words


def count_words(text: str) -> int:
    """Number of ``\\w+`` runs (the official word count; hyphenated words count twice)."""
    return len(re.findall(r"\w+", text))


# ----------------------------------------------------------------------------------- sentences


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Abbreviations that are (nearly) always followed by a name, so never end a sentence. Words that
# double as ordinary words ("no", "sun", "sat", "mar", "co") are left out of both lists.
_TITLE_ABBREVIATIONS = _wordset(
    "mr mrs ms dr prof st mt jr sr rev gen gov sen capt lt col sgt cpl pvt hon vs"
)
# Abbreviations that end a sentence only when a typical sentence-starting word follows.
_OTHER_ABBREVIATIONS = _wordset(
    "etc e.g i.e cf al inc ltd corp bros jan feb apr jun jul aug sept oct nov "
    "tue tues thu thur thurs fri fig vol pp approx dept a.m p.m u.s u.k u.n ph.d b.a m.a "
    "b.sc m.sc d.c n.y l.a"
)
# Capitalised words punkt's English model has seen in lower case (so treats as sentence
# starters after an abbreviation or initial); a compact stand-in for its orthographic statistics.
_COMMON_STARTERS = _wordset(
    "a an the this that these those it its he she they we i you there here his her their our my "
    "your in on at for from with by to of as if when while after before since because but and or "
    "so yet however also then thus therefore moreover furthermore finally first second third "
    "next now today what which who whom whose why how where all each every some many most no not "
    "one two is are was were be do does did has have had can could will would should may might "
    "must let please let's additionally overall instead meanwhile still"
)
_OPENERS = "\"'\u201c\u2018([{<`*_"
_CLOSERS = "\"'\u201d\u2019)]}>*_"
_ACRONYM = re.compile(r"^(?:[a-z]\.)+[a-z]$")
_NUMBER = re.compile(r"^[+-]?[\d.,:/]*\d$")


def _starts_upper(token: str) -> bool:
    word = token.lstrip(_OPENERS)
    return bool(word) and word[0].isupper()


def _starts_lower(token: str) -> bool:
    word = token.lstrip(_OPENERS)
    return bool(word) and word[0].islower()


def _is_starter(token: str) -> bool:
    word = token.lstrip(_OPENERS)
    return (
        bool(word)
        and word[0].isupper()
        and word.rstrip(".,;:!?)" + _CLOSERS).lower() in _COMMON_STARTERS
    )


def _ends_sentence(token: str, next_token: str) -> bool:
    """Whether a sentence ends after ``token`` (``next_token`` follows it after whitespace)."""
    core = token.rstrip(_CLOSERS)
    if not core or core[-1] not in ".?!":
        return False
    if core[-1] in "?!":
        return True
    if core.endswith(".."):  # ellipsis: a break only before a capitalised word
        return _starts_upper(next_token)
    stem = core[:-1].lstrip(_OPENERS)
    if not stem:
        return True
    low = stem.lower()
    if low in _TITLE_ABBREVIATIONS:
        return False
    if low in _OTHER_ABBREVIATIONS or _ACRONYM.match(low) or (len(stem) == 1 and stem.isalpha()):
        # abbreviations and initials ("J. Smith") continue unless a common starter follows
        return _is_starter(next_token)
    if _NUMBER.match(stem):  # "1. First" breaks (as punkt does), "3. items" does not
        return not _starts_lower(next_token)
    return True


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences (a stand-in for NLTK's punkt English model; see module doc)."""
    tokens = list(re.finditer(r"\S+", text))
    sentences: list[str] = []
    start: int | None = None
    for i, match in enumerate(tokens):
        if start is None:
            start = match.start()
        if i + 1 < len(tokens) and _ends_sentence(match.group(), tokens[i + 1].group()):
            sentences.append(text[start : match.end()])
            start = None
    if start is not None:
        sentences.append(text[start:].rstrip())
    return sentences


def count_sentences(text: str) -> int:
    """Number of sentences by :func:`split_sentences` (0 for blank text)."""
    return len(split_sentences(text))


# ------------------------------------------------------------------------------- word tokens

_CONTRACTION_SUFFIX = re.compile(r"(?i)^(.+?)(n't|'s|'m|'d|'ll|'re|'ve)$")
_BARE_SUFFIX = re.compile(r"(?i)^'(s|m|d|ll|re|ve|t)$")
_SPLIT_PAIRS = re.compile(
    r"(?i)^(can)(not)$|^(gon)(na)$|^(got)(ta)$|^(wan)(na)$|^(gim)(me)$|^(lem)(me)$"
)
# punctuation that the Treebank rules always separate from words
_ALWAYS_SPLIT = re.compile(r"([;@#$%&?!\[\](){}<>\"“”]|--|\.\.\.)")
# commas and colons are separated unless they sit between digits ("1,000", "10:30")
_COMMA_COLON = re.compile(r"([,:])(?!\d)|(?<!\d)([,:])")


def word_tokenize(text: str) -> list[str]:
    """Word tokens approximating ``nltk.word_tokenize`` (see module doc)."""
    out: list[str] = []
    for chunk in text.split():
        chunk = _ALWAYS_SPLIT.sub(r" \1 ", chunk)
        chunk = _COMMA_COLON.sub(lambda m: f" {m.group(1) or m.group(2)} ", chunk)
        for piece in chunk.split():
            if len(piece) > 1 and piece.startswith("'") and not _BARE_SUFFIX.match(piece):
                out.append("'")
                piece = piece[1:]
            closing_quote = len(piece) > 1 and piece.endswith("'") and piece[-2] != "'"
            if closing_quote:
                piece = piece[:-1]
            trail: list[str] = []
            while len(piece) > 1 and piece.endswith(".") and not piece.endswith(".."):
                # a sentence-final period is its own token; abbreviations keep theirs (no count
                # of all-caps tokens depends on which)
                if "." in piece[:-1]:
                    break
                trail.insert(0, ".")
                piece = piece[:-1]
            pair = _SPLIT_PAIRS.match(piece)
            contraction = _CONTRACTION_SUFFIX.match(piece)
            if pair:
                out.extend(g for g in pair.groups() if g)
            elif contraction:
                out.extend(contraction.groups())
            else:
                out.append(piece)
            out.extend(trail)
            if closing_quote:
                out.append("'")
    return out


# ---------------------------------------------------------------------------------- language


class LanguageNotDetected(Exception):
    """The text carries no language features (the official check then counts as followed)."""


@lru_cache(maxsize=1)
def _langdetect_factory() -> Any:
    """A private, seeded langdetect factory (None when langdetect is not installed)."""
    try:
        from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
    except ImportError:
        return None
    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.set_seed(0)
    return factory


def langdetect_available() -> bool:
    """Whether the ``langdetect`` package (the official detector) is installed."""
    return _langdetect_factory() is not None


def detect_language(text: str) -> str:
    """The ISO 639-1 code of ``text``'s language (langdetect codes, e.g. ``zh-cn``).

    Raises :class:`LanguageNotDetected` when no language can be determined.
    """
    factory = _langdetect_factory()
    if factory is None:
        return _fallback_detect(text)
    from langdetect.lang_detect_exception import LangDetectException

    try:
        detector = factory.create()
        detector.append(text)
        return str(detector.detect())
    except LangDetectException as error:
        raise LanguageNotDetected(str(error)) from error


# Fallback (no langdetect): Unicode script decides non-Latin languages, a few stop words decide
# Latin-script ones. Covers the languages the official generator draws from.
_SCRIPT_BY_NAME = (
    ("DEVANAGARI", "deva"),
    ("BENGALI", "bn"),
    ("GURMUKHI", "pa"),
    ("GUJARATI", "gu"),
    ("TAMIL", "ta"),
    ("TELUGU", "te"),
    ("KANNADA", "kn"),
    ("MALAYALAM", "ml"),
    ("THAI", "th"),
    ("HANGUL", "ko"),
    ("HIRAGANA", "ja"),
    ("KATAKANA", "ja"),
    ("CJK", "zh-cn"),
    ("HEBREW", "he"),
    ("ARABIC", "arab"),
    ("CYRILLIC", "cyrl"),
    ("GREEK", "el"),
    ("LATIN", "latn"),
)
_STOPWORDS = {
    "en": "the and of to is in that it for you with are this be on not have as",
    "es": "el la de que y en los las un una por con para es del se no",
    "pt": "o a de que e do da em um uma para com não os as é dos",
    "fr": "le la les de des et un une est que en du pour pas dans qui",
    "de": "der die das und ist nicht ein eine zu den mit von sich auf für ich",
    "it": "il lo la di che e un una per non è sono gli della del con",
    "pl": "i w nie się na że z do to jest jak o ale po co",
    "fi": "ja on ei että se oli hän mutta kun ovat myös tai niin",
    "sw": "na ya wa kwa ni za katika la kuwa hii cha pia vya",
    "vi": "và của là có không những được cho trong một người các với",
    "deva_hi": "है के में की और को से हैं यह था",
    "deva_mr": "आहे आणि या च्या हे ते होते आहेत नाही",
    "deva_ne": "छ र को हो गर्न पनि छन् भएको यो",
}


def _fallback_detect(text: str) -> str:
    scripts: Counter[str] = Counter()
    for char in text:
        if char.isalpha():
            name = unicodedata.name(char, "")
            for key, script in _SCRIPT_BY_NAME:
                if name.startswith(key):
                    scripts[script] += 1
                    break
    if not scripts:
        raise LanguageNotDetected("no letters")
    script = scripts.most_common(1)[0][0]
    if script == "zh-cn" and scripts["ja"]:
        return "ja"
    words = set(re.findall(r"\w+", text.lower()))
    if script == "deva":
        return _best_stopword_match(words, ("deva_hi", "deva_mr", "deva_ne"))[5:]
    if script == "arab":
        if re.search("[ٹڈڑںے]", text):
            return "ur"
        return "fa" if re.search("[پچژگکی]", text) else "ar"
    if script == "cyrl":
        if re.search("[іїєґІЇЄҐ]", text):
            return "uk"
        return "bg" if "ъ" in text and not re.search("[ыэ]", text) else "ru"
    if script == "latn":
        return _best_stopword_match(
            words, ("en", "es", "pt", "fr", "de", "it", "pl", "fi", "sw", "vi")
        )
    return script


def _best_stopword_match(words: set[str], languages: tuple[str, ...]) -> str:
    scores = {lang: len(words & set(_STOPWORDS[lang].split())) for lang in languages}
    best = max(languages, key=lambda lang: scores[lang])
    if scores[best] == 0:
        raise LanguageNotDetected("no stop words")
    return best
