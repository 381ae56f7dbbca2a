"""One checker per IFEval instruction id, with the semantics of the official registry.

Each checker is built from the instruction's (sparse) kwargs and answers ``check(response)``.
The semantics follow google-research ``instruction_following_eval/instructions.py``; the places
where this implementation deliberately differs are noted on the class:

* keywords, forbidden words, section splitters and custom postscript markers are matched
  literally (``re.escape``) where the original interpolates them into a regex unescaped (no IFEval
  keyword contains a regex metacharacter, so verdicts on the dataset are the same);
* a missing or invalid required kwarg is a :class:`~divtrace.errors.JudgeError` (a
  ``ValueError``) where the original draws a random value;
* sentence counts and word tokens come from :mod:`divtrace.quality.ifeval.text` instead of NLTK.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from divtrace.errors import JudgeError
from divtrace.quality.ifeval.text import (
    LanguageNotDetected,
    count_sentences,
    count_words,
    detect_language,
    word_tokenize,
)

RELATIONS = ("less than", "at least")


def _relation(name: str, value: Any) -> str:
    if value not in RELATIONS:
        raise JudgeError(f"{name} must be one of {RELATIONS}, got {value!r}")
    return str(value)


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise JudgeError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise JudgeError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _words(name: str, value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise JudgeError(f"{name} must be a non-empty list of strings, got {value!r}")
    return [_text(name, word) for word in value]


def _compare(actual: int, relation: str, threshold: int) -> bool:
    """``less than``: actual < threshold; ``at least``: actual >= threshold."""
    return actual < threshold if relation == "less than" else actual >= threshold


def _language_is(response: str, language: str) -> bool:
    """Official behaviour: a text whose language cannot be detected counts as followed."""
    try:
        return detect_language(response) == language
    except LanguageNotDetected:
        return True


class Instruction(ABC):
    """A verifiable instruction bound to its kwargs."""

    id: ClassVar[str]

    @abstractmethod
    def check(self, response: str) -> bool:
        """Whether ``response`` follows the instruction."""


# ----------------------------------------------------------------------------------- keywords


class KeywordExistence(Instruction):
    """Every keyword occurs, case-insensitively, as a substring (no word boundaries)."""

    id = "keywords:existence"

    def __init__(self, *, keywords: Any) -> None:
        self.keywords = sorted(_words("keywords", keywords))

    def check(self, response: str) -> bool:
        return all(re.search(re.escape(k), response, flags=re.IGNORECASE) for k in self.keywords)


class KeywordFrequency(Instruction):
    """Case-insensitive substring occurrences of ``keyword`` compared with ``frequency``.

    Like the original, occurrences are counted without word boundaries (``re.findall(keyword)``),
    so "cat" also counts inside "category".
    """

    id = "keywords:frequency"

    def __init__(self, *, keyword: Any, frequency: Any, relation: Any) -> None:
        self.keyword = _text("keyword", keyword).strip()
        self.frequency = _count("frequency", frequency)
        self.relation = _relation("relation", relation)

    def check(self, response: str) -> bool:
        found = len(re.findall(re.escape(self.keyword), response, flags=re.IGNORECASE))
        return _compare(found, self.relation, self.frequency)


class ForbiddenWords(Instruction):
    """None of the words occurs as a whole word (``\\b`` boundaries), case-insensitively."""

    id = "keywords:forbidden_words"

    def __init__(self, *, forbidden_words: Any) -> None:
        self.forbidden_words = sorted(set(_words("forbidden_words", forbidden_words)))

    def check(self, response: str) -> bool:
        return not any(
            re.search(r"\b" + re.escape(w) + r"\b", response, flags=re.IGNORECASE)
            for w in self.forbidden_words
        )


class LetterFrequency(Instruction):
    """Occurrences of ``letter`` (case-insensitive) compared with ``let_frequency``."""

    id = "keywords:letter_frequency"

    def __init__(self, *, letter: Any, let_frequency: Any, let_relation: Any) -> None:
        letter = _text("letter", letter).strip()
        if len(letter) != 1:
            raise JudgeError(f"letter must be a single character, got {letter!r}")
        self.letter = letter.lower()
        self.frequency = _count("let_frequency", let_frequency)
        self.relation = _relation("let_relation", let_relation)

    def check(self, response: str) -> bool:
        return _compare(response.lower().count(self.letter), self.relation, self.frequency)


# ----------------------------------------------------------------------------------- language


class ResponseLanguage(Instruction):
    """The detected language of the whole response is ``language`` (undetectable: followed)."""

    id = "language:response_language"

    def __init__(self, *, language: Any) -> None:
        self.language = _text("language", language)

    def check(self, response: str) -> bool:
        return _language_is(response, self.language)


# ------------------------------------------------------------------------------------- length


class NumberOfSentences(Instruction):
    """Sentence count (punkt in the original; see :func:`text.split_sentences`) vs threshold."""

    id = "length_constraints:number_sentences"

    def __init__(self, *, num_sentences: Any, relation: Any) -> None:
        self.num_sentences = _count("num_sentences", num_sentences)
        self.relation = _relation("relation", relation)

    def check(self, response: str) -> bool:
        return _compare(count_sentences(response), self.relation, self.num_sentences)


class NumberOfParagraphs(Instruction):
    """Exactly ``num_paragraphs`` paragraphs separated by ``***`` dividers.

    Splits on ``\\s?\\*\\*\\*\\s?``; an empty first or last part is dropped, an empty part in the
    middle (two dividers in a row) fails the check.
    """

    id = "length_constraints:number_paragraphs"

    def __init__(self, *, num_paragraphs: Any) -> None:
        self.num_paragraphs = _count("num_paragraphs", num_paragraphs)

    def check(self, response: str) -> bool:
        parts = re.split(r"\s?\*\*\*\s?", response)
        count = len(parts)
        for index, part in enumerate(parts):
            if not part.strip():
                if index in (0, len(parts) - 1):
                    count -= 1
                else:
                    return False
        return count == self.num_paragraphs


class NumberOfWords(Instruction):
    """``\\w+`` word count vs threshold."""

    id = "length_constraints:number_words"

    def __init__(self, *, num_words: Any, relation: Any) -> None:
        self.num_words = _count("num_words", num_words)
        self.relation = _relation("relation", relation)

    def check(self, response: str) -> bool:
        return _compare(count_words(response), self.relation, self.num_words)


class NthParagraphFirstWord(Instruction):
    """Exactly ``num_paragraphs`` ``\\n\\n``-separated paragraphs, paragraph ``nth_paragraph``
    starting with ``first_word``.

    As in the original: blank parts do not count as paragraphs, but the n-th paragraph is looked
    up among all parts (blank ones included); the first word is the first whitespace token with
    leading quotes removed, cut at the first ``. , ? ! ' "``, compared case-insensitively.
    """

    id = "length_constraints:nth_paragraph_first_word"

    def __init__(self, *, num_paragraphs: Any, nth_paragraph: Any, first_word: Any) -> None:
        self.num_paragraphs = _count("num_paragraphs", num_paragraphs)
        self.nth_paragraph = _count("nth_paragraph", nth_paragraph)
        if self.nth_paragraph < 1:
            raise JudgeError(f"nth_paragraph must be at least 1, got {nth_paragraph!r}")
        self.first_word = _text("first_word", first_word).lower()

    def check(self, response: str) -> bool:
        parts = response.split("\n\n")
        count = sum(1 for part in parts if part.strip())
        if self.nth_paragraph > count:
            return False
        paragraph = parts[self.nth_paragraph - 1].strip()
        if not paragraph:
            return False
        word = paragraph.split()[0].strip().lstrip("'").lstrip('"')
        first = ""
        for char in word:
            if char in ".,?!'\"":
                break
            first += char.lower()
        return count == self.num_paragraphs and first == self.first_word


# ------------------------------------------------------------------------------------ content


class Placeholders(Instruction):
    """At least ``num_placeholders`` square-bracket placeholders (``\\[.*?\\]``)."""

    id = "detectable_content:number_placeholders"

    def __init__(self, *, num_placeholders: Any) -> None:
        self.num_placeholders = _count("num_placeholders", num_placeholders)

    def check(self, response: str) -> bool:
        return len(re.findall(r"\[.*?\]", response)) >= self.num_placeholders


class Postscript(Instruction):
    """A line containing the postscript marker (case-insensitive).

    ``P.S.`` matches ``p\\.\\s?s\\.``, ``P.P.S`` matches ``p\\.\\s?p\\.\\s?s``, other markers
    literally; the marker may appear anywhere in a line (``re.MULTILINE``, ``\\s*marker.*$``).
    """

    id = "detectable_content:postscript"

    def __init__(self, *, postscript_marker: Any) -> None:
        self.marker = _text("postscript_marker", postscript_marker).strip()

    def check(self, response: str) -> bool:
        if self.marker == "P.P.S":
            pattern = r"\s*p\.\s?p\.\s?s.*$"
        elif self.marker == "P.S.":
            pattern = r"\s*p\.\s?s\..*$"
        else:
            pattern = r"\s*" + re.escape(self.marker.lower()) + r".*$"
        return bool(re.findall(pattern, response.lower(), flags=re.MULTILINE))


# ------------------------------------------------------------------------------------- format


class BulletLists(Instruction):
    """Exactly ``num_bullets`` markdown bullet lines (``* item`` or ``- item``)."""

    id = "detectable_format:number_bullet_lists"

    def __init__(self, *, num_bullets: Any) -> None:
        self.num_bullets = _count("num_bullets", num_bullets)

    def check(self, response: str) -> bool:
        stars = re.findall(r"^\s*\*[^\*].*$", response, flags=re.MULTILINE)
        dashes = re.findall(r"^\s*-.*$", response, flags=re.MULTILINE)
        return len(stars) + len(dashes) == self.num_bullets


CONSTRAINED_RESPONSES = ("My answer is yes.", "My answer is no.", "My answer is maybe.")


class ConstrainedResponse(Instruction):
    """The response contains one of "My answer is yes./no./maybe." (case-sensitive)."""

    id = "detectable_format:constrained_response"

    def check(self, response: str) -> bool:
        response = response.strip()
        return any(option in response for option in CONSTRAINED_RESPONSES)


class HighlightedSections(Instruction):
    """At least ``num_highlights`` non-empty ``*single*`` or ``**double**`` highlights.

    Counts ``\\*[^\\n\\*]*\\*`` and ``\\*\\*[^\\n\\*]*\\*\\*`` matches whose inner text is not blank,
    as the current official code does (a ``**bold**`` span counts once, as a double highlight).
    """

    id = "detectable_format:number_highlighted_sections"

    def __init__(self, *, num_highlights: Any) -> None:
        self.num_highlights = _count("num_highlights", num_highlights)

    def check(self, response: str) -> bool:
        single = re.findall(r"\*[^\n\*]*\*", response)
        double = re.findall(r"\*\*[^\n\*]*\*\*", response)
        count = sum(1 for h in single if h.strip("*").strip())
        count += sum(1 for h in double if h.removeprefix("**").removesuffix("**").strip())
        return count >= self.num_highlights


class MultipleSections(Instruction):
    """At least ``num_sections`` sections, each opened by ``<section_spliter> <number>``.

    Splits on ``\\s?<spliter>\\s?\\d+\\s?`` (case-sensitive); the sections are the parts after the
    first split point.
    """

    id = "detectable_format:multiple_sections"

    def __init__(self, *, section_spliter: Any, num_sections: Any) -> None:
        self.spliter = _text("section_spliter", section_spliter).strip()
        self.num_sections = _count("num_sections", num_sections)

    def check(self, response: str) -> bool:
        pattern = r"\s?" + re.escape(self.spliter) + r"\s?\d+\s?"
        return len(re.split(pattern, response)) - 1 >= self.num_sections


class JsonFormat(Instruction):
    """The whole response parses as JSON after removing a surrounding ``` / ```json fence."""

    id = "detectable_format:json_format"

    def check(self, response: str) -> bool:
        value = (
            response.strip()
            .removeprefix("```json")
            .removeprefix("```Json")
            .removeprefix("```JSON")
            .removeprefix("```")
            .removesuffix("```")
            .strip()
        )
        try:
            json.loads(value)
        except ValueError:
            return False
        return True


class Title(Instruction):
    """A non-blank title in double angular brackets, ``<<title>>``, on one line."""

    id = "detectable_format:title"

    def check(self, response: str) -> bool:
        return any(
            title.lstrip("<").rstrip(">").strip() for title in re.findall(r"<<[^\n]+>>", response)
        )


# -------------------------------------------------------------------------------- combination


class TwoResponses(Instruction):
    """Exactly two different non-blank responses separated by ``******``.

    A blank part is allowed only at the very start or end.
    """

    id = "combination:two_responses"

    def check(self, response: str) -> bool:
        parts = response.split("******")
        valid: list[str] = []
        for index, part in enumerate(parts):
            if part.strip():
                valid.append(part)
            elif index not in (0, len(parts) - 1):
                return False
        return len(valid) == 2 and valid[0].strip() != valid[1].strip()


class RepeatPrompt(Instruction):
    """The response starts with ``prompt_to_repeat`` (both stripped, case-insensitive)."""

    id = "combination:repeat_prompt"

    def __init__(self, *, prompt_to_repeat: Any) -> None:
        self.prompt_to_repeat = _text("prompt_to_repeat", prompt_to_repeat)

    def check(self, response: str) -> bool:
        return response.strip().lower().startswith(self.prompt_to_repeat.strip().lower())


# ----------------------------------------------------------------------------------- startend


class EndChecker(Instruction):
    """The response (stripped of whitespace and double quotes) ends with ``end_phrase``,
    case-insensitively."""

    id = "startend:end_checker"

    def __init__(self, *, end_phrase: Any) -> None:
        self.end_phrase = _text("end_phrase", end_phrase).strip().lower()

    def check(self, response: str) -> bool:
        return response.strip().strip('"').lower().endswith(self.end_phrase)


class Quotation(Instruction):
    """The stripped response is wrapped in double quotes (``"..."``, at least 2 characters)."""

    id = "startend:quotation"

    def check(self, response: str) -> bool:
        value = response.strip()
        return len(value) > 1 and value[0] == '"' and value[-1] == '"'


# -------------------------------------------------------------------------------- change case


class CapitalWordFrequency(Instruction):
    """Number of all-caps word tokens (``str.isupper``) vs ``capital_frequency``."""

    id = "change_case:capital_word_frequency"

    def __init__(self, *, capital_frequency: Any, capital_relation: Any) -> None:
        self.frequency = _count("capital_frequency", capital_frequency)
        self.relation = _relation("capital_relation", capital_relation)

    def check(self, response: str) -> bool:
        capitals = sum(1 for token in word_tokenize(response) if token.isupper())
        return _compare(capitals, self.relation, self.frequency)


class EnglishCapital(Instruction):
    """``str.isupper()`` and detected as English (undetectable language: followed)."""

    id = "change_case:english_capital"

    def check(self, response: str) -> bool:
        return response.isupper() and _language_is(response, "en")


class EnglishLowercase(Instruction):
    """``str.islower()`` and detected as English (undetectable language: followed)."""

    id = "change_case:english_lowercase"

    def check(self, response: str) -> bool:
        return response.islower() and _language_is(response, "en")


# -------------------------------------------------------------------------------- punctuation


class NoComma(Instruction):
    """No ASCII comma anywhere."""

    id = "punctuation:no_comma"

    def check(self, response: str) -> bool:
        return "," not in response


CHECKERS: tuple[type[Instruction], ...] = (
    KeywordExistence,
    KeywordFrequency,
    ForbiddenWords,
    LetterFrequency,
    ResponseLanguage,
    NumberOfSentences,
    NumberOfParagraphs,
    NumberOfWords,
    NthParagraphFirstWord,
    Placeholders,
    Postscript,
    BulletLists,
    ConstrainedResponse,
    HighlightedSections,
    MultipleSections,
    JsonFormat,
    Title,
    TwoResponses,
    RepeatPrompt,
    EndChecker,
    CapitalWordFrequency,
    EnglishCapital,
    EnglishLowercase,
    NoComma,
    Quotation,
)
