"""XSum (EdinburghNLP/xsum, test): a one-sentence summary of a BBC article.

Records hold ``document``, ``summary`` (the article's one-sentence introduction; the reference)
and ``id`` (the BBC id). Prompts and stops as in :mod:`divtrace.tasks.news_summary`.
"""

from __future__ import annotations

from divtrace.tasks.news_summary import news_summary_family

INSTRUCTION = "Summarize the following article in one sentence."

FAMILY = news_summary_family(
    "xsum",
    "EdinburghNLP/xsum",
    article_field="document",
    reference_field="summary",
    instruction=INSTRUCTION,
    paper_stop=("\n",),
)
